//! The command line, declared once. Every option can also come from a `TWEETSIM_*`
//! environment variable.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use tweetsim::corpus::Format;
use tweetsim::embed::{DeviceSpec, Precision, DEFAULT_MODEL};
use tweetsim::search::Mode;

#[derive(Debug, Parser)]
#[command(
    name = "tweetsim",
    version,
    about = "Find similar tweets with a local MiniLM encoder and an HNSW index",
    after_help = "With no command, `tweetsim` prints the bundled corpus summary. Start with:\n  tweetsim similar \"tesla autopilot data engine\""
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Model: a Hugging Face id or a local directory with config.json, tokenizer.json and
    /// model.safetensors.
    #[arg(long, global = true, env = "TWEETSIM_MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,

    /// Folder holding fetched models as <folder>/<name>/ [default: ./models if it exists,
    /// else the user cache].
    #[arg(long, global = true, env = "TWEETSIM_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// Where the encoder runs: cpu, cuda, cuda:N, or auto (CUDA when built with the `cuda`
    /// feature and a GPU is present).
    #[arg(long, global = true, env = "TWEETSIM_DEVICE", default_value = "auto")]
    pub device: DeviceSpec,

    /// Encoder precision [default: f32 on CPU, bf16 on CUDA].
    #[arg(long, global = true, env = "TWEETSIM_DTYPE", value_enum)]
    pub dtype: Option<Precision>,

    /// Padded tokens per encoder batch (texts × longest text) [default: on a GPU 16384
    /// tokens; on the CPU, f32 texts go unpadded in groups of ~384 tokens, one group per
    /// core, other precisions 32 per batch].
    #[arg(long, global = true, env = "TWEETSIM_BATCH_TOKENS", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_tokens: Option<u32>,

    /// CPU encoder: batches run at once, each on one thread (1 = one batch at a time on
    /// all threads); asks for batches instead of groups per core.
    #[arg(long, global = true, env = "TWEETSIM_WORKERS", value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: Option<u32>,

    /// CPU threads for the encoder [default: all cores].
    #[arg(long, global = true, env = "TWEETSIM_THREADS")]
    pub threads: Option<usize>,

    /// No progress bars or notes on stderr (errors and warnings still print).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Count what a corpus file holds: entries, unique tweets, replies, dates, merges.
    Corpus {
        #[command(flatten)]
        corpus: CorpusArgs,
        /// Print the counts as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Build or update the store (tweets, vectors, HNSW graph) for a corpus.
    Index {
        #[command(flatten)]
        corpus: CorpusArgs,
        #[command(flatten)]
        store: StoreArgs,
        /// HNSW links per node.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(2..=256))]
        m: u16,
        /// HNSW candidate list size while building.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
        ef_construction: u32,
        /// HNSW candidate list size while searching, recorded in the store; changing it does
        /// not rebuild the graph [default: the store's, else 2048, which reaches recall@10 ≥
        /// 0.99 on a million synthetic tweets at ~2 ms per query; lower it for speed].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        ef_search: Option<u32>,
        /// Take the vectors from FILE.npy (with FILE.ids) or FILE.parquet (its embedding
        /// column), from `tweetsim embed`, e.g. on a GPU machine, instead of embedding the
        /// corpus here.
        #[arg(long, value_name = "FILE.npy|FILE.parquet")]
        embeddings: Option<PathBuf>,
    },
    /// Take tweets out of a store (by status id or URL). They become tombstones, filtered
    /// from every search, until enough accumulate to compact the store; indexing a corpus
    /// that still holds them adds them back.
    Remove {
        /// Status ids or status URLs.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[command(flatten)]
        corpus: CorpusArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a store in full: every file against its checksum (opening a store skips files
    /// unchanged since they last matched), then every tweet read back.
    Verify {
        #[command(flatten)]
        corpus: CorpusArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Find the tweets most similar to a text or to a tweet of the corpus.
    Similar(SimilarArgs),
    /// Group the tweets into topics and report size, dates, engagement, keywords and examples.
    Topics(TopicsArgs),
    /// List groups of near-identical tweets (through the HNSW graph, not all pairs).
    Dups(DupsArgs),
    /// Make a synthetic corpus (JSONL) recombined from the bundled tweets, optionally with
    /// vectors, for scale tests and benchmarks.
    Synth(SynthArgs),
    /// Serve a store over HTTP: a JSON API (similar, tweets, topics, embed, metrics), a
    /// search page at /, and each new generation that `index` or `remove` publishes.
    Serve(ServeArgs),
    /// Write the corpus embeddings as FILE.npy (float32 rows × dim), FILE.ids and
    /// FILE.meta.json, streaming any size of input (an interrupted run resumes); or as
    /// FILE.parquet: the tweets' columns and an embedding column, one row group per chunk.
    Embed {
        #[command(flatten)]
        corpus: CorpusArgs,
        /// Output .npy file (the status ids go to the same name with the .ids extension), or
        /// .parquet file.
        #[arg(long)]
        out: PathBuf,
        /// Embed each text exactly as given (no removal of reply @handles and links), e.g.
        /// to compare with another encoder; such vectors cannot make a store.
        #[arg(long)]
        verbatim: bool,
        /// Tweets per chunk: memory use and the unit of resumption.
        #[arg(long, default_value_t = tweetsim::stream::DEFAULT_CHUNK as u32, value_parser = clap::value_parser!(u32).range(1..))]
        chunk: u32,
    },
}

#[derive(Debug, Args)]
pub struct DupsArgs {
    /// Cosine at or above which two tweets count as near-identical.
    #[arg(long, default_value_t = tweetsim::search::DUPLICATE_COSINE)]
    pub threshold: f32,
    /// One JSON object per group.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one. The bound address is printed.
    #[arg(long, env = "TWEETSIM_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Largest k a request may ask for.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_k: u32,
    /// Longest query text (q), in bytes; at most 32768, as the whole request line must stay
    /// under the HTTP layer's 64 KiB.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub max_query_bytes: u32,
    /// Largest request body (POST /embed), in bytes.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_body_bytes: u32,
    /// Most texts in one POST /embed.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_texts: u32,
    /// Most texts waiting for the encoder; requests beyond get a 503 to retry.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_queued_texts: u32,
    /// Most queued texts the encoder embeds in one call (1 turns batching across
    /// concurrent requests off).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_texts: u32,
    /// How often to look for a new store generation, in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..))]
    pub poll_ms: u64,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// How many tweets to make (at most 37,537,988: their ids are a minute apart and must fit in 64 bits).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=tweetsim::synth::MAX_TWEETS))]
    pub tweets: u64,
    /// Output JSONL file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: PathBuf,
    /// Also write vectors near real ones (FILE.npy, FILE.ids, FILE.meta.json): the model's
    /// embeddings of the halves each tweet is made of, combined as mean pooling would, for
    /// index-scale work without embedding every text.
    #[arg(long)]
    pub vectors: bool,
    /// Seed: the same seed gives the same tweets and vectors.
    #[arg(long, default_value_t = 2022)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Corpus file [default: the bundled 2022 corpus, data/karpathy-2022.txt].
    #[arg(long, env = "TWEETSIM_CORPUS")]
    pub corpus: Option<PathBuf>,
    /// Corpus format [default: from the extension: .txt/.md bundled, .js archive, .jsonl,
    /// .parquet].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Store directory [default: under the user cache, keyed by corpus and model].
    #[arg(long, env = "TWEETSIM_STORE")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SimilarArgs {
    /// Free text to search for.
    #[arg(required_unless_present = "tweet", conflicts_with = "tweet")]
    pub query: Option<String>,
    /// Find tweets like this one: a status id or its URL (the tweet itself is left out).
    #[arg(long)]
    pub tweet: Option<String>,
    /// Number of results.
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Only tweets on or after this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub since: Option<NaiveDate>,
    /// Only tweets on or before this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub until: Option<NaiveDate>,
    /// Leave out replies.
    #[arg(long)]
    pub no_replies: bool,
    /// Only tweets with at least this many likes.
    #[arg(long, default_value_t = 0)]
    pub min_likes: u64,
    /// Exact search over all vectors instead of the HNSW graph.
    #[arg(long)]
    pub exact: bool,
    /// Ranking: dense (embedding cosine), lexical (BM25 over word stems) or hybrid (both
    /// fused, parts of a thread lifted toward its best part; the best on the judged queries).
    #[arg(long, value_enum, default_value_t = Mode::Hybrid)]
    pub mode: Mode,
    /// List near-duplicate hits separately instead of folding them into the best one.
    #[arg(long)]
    pub no_collapse: bool,
    /// Show per hit the dense and BM25 scores, the query words it matched and what its
    /// thread added.
    #[arg(long)]
    pub explain: bool,
    /// Print on stderr how long each stage took (store, encoder load, embed, search, print).
    #[arg(long)]
    pub timings: bool,
    /// One JSON object per result line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct TopicsArgs {
    /// Smallest group of similar tweets that makes a topic.
    #[arg(long, default_value_t = 8, conflicts_with_all = ["themes", "themes_file"])]
    pub min_size: usize,
    /// Merge the closest topics until this many remain [default: at most 50].
    #[arg(long, conflicts_with_all = ["themes", "themes_file"])]
    pub topics: Option<usize>,
    /// Guided mode: sort tweets into these comma-separated themes (or "other").
    #[arg(long, conflicts_with = "themes_file")]
    pub themes: Option<String>,
    /// Guided mode with themes from a TOML file: [[theme]] tables with name, optional
    /// description and seeds (a list of words).
    #[arg(long, value_name = "FILE")]
    pub themes_file: Option<PathBuf>,
    /// Louvain resolution: higher finds more, smaller topics.
    #[arg(long, default_value_t = 1.5, conflicts_with_all = ["themes", "themes_file"])]
    pub resolution: f64,
    /// Print the report as JSON (topics, hierarchy, and every tweet's topic).
    #[arg(long)]
    pub json: bool,
    /// Also write the report as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page with charts to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("'{s}' is not a date like 2022-06-30"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
