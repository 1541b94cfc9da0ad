//! What each command does, from validated arguments to printed output.

pub mod args;
mod output;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tweetsim::corpus::{self, Corpus};
use tweetsim::embed::{Encoder, Resolver};
use tweetsim::index::{self, Filter, HnswParams, Store};
use tweetsim::{fsutil, npy};

use args::{Cli, Command, CorpusArgs, Global, SimilarArgs, StoreArgs, TopicsArgs};

pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        None => corpus_cmd(
            g,
            &CorpusArgs {
                corpus: None,
                format: None,
            },
            false,
        ),
        Some(Command::Corpus { corpus, json }) => corpus_cmd(g, &corpus, json),
        Some(Command::Index {
            corpus,
            store,
            m,
            ef_construction,
            ef_search,
        }) => {
            let params = HnswParams {
                m: m.into(),
                ef_construction: ef_construction as usize,
                ef_search: ef_search as usize,
            };
            index_cmd(g, &corpus, &store, params)
        }
        Some(Command::Similar(a)) => similar_cmd(g, &a),
        Some(Command::Embed { corpus, out }) => embed_cmd(g, &corpus, &out),
        Some(Command::Topics(a)) => topics_cmd(g, &a),
    }
}

fn corpus_cmd(g: &Global, args: &CorpusArgs, json: bool) -> Result<()> {
    let c = load_corpus(g, args)?;
    output::corpus_summary(&c, json)
}

fn index_cmd(g: &Global, corpus: &CorpusArgs, store: &StoreArgs, params: HnswParams) -> Result<()> {
    let c = load_corpus(g, corpus)?;
    let encoder = load_encoder(g)?;
    let dir = store_dir(corpus, store, &encoder.identity().id)?;
    let started = Instant::now();
    let report = build_store(g, &dir, &c, &encoder, params)?;
    println!(
        "indexed {} tweets ({} embedded, {} reused) in {:.1} s → {}",
        report.tweets,
        report.embedded,
        report.reused,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

fn similar_cmd(g: &Global, a: &SimilarArgs) -> Result<()> {
    let filter = Filter {
        since: a.since,
        until: a.until,
        no_replies: a.no_replies,
        min_likes: a.min_likes,
    };
    if let (Some(s), Some(u)) = (a.since, a.until) {
        if s > u {
            bail!("--since {s} is after --until {u}");
        }
    }
    let query_text = match &a.query {
        Some(q) if q.trim().is_empty() => bail!("empty query: give some text, or --tweet ID"),
        Some(q) => Some(q.trim().to_string()),
        None => None,
    };
    // The encoder is needed for a text query, or to build the store.
    let mut encoder: Option<Encoder> = None;
    let dir = store_dir(&a.corpus, &a.store, &g.model)?;
    let store = open_fresh_store(g, &a.corpus, &a.store, &dir, &mut encoder)?;

    let (query, exclude, header) = match (&query_text, &a.tweet) {
        (Some(text), _) => {
            let enc = take_or_load(g, &mut encoder)?;
            store.check_model(enc.identity())?;
            (enc.embed(&[text])?, None, format!("similar to: {text}"))
        }
        (None, Some(id)) => {
            let id = parse_tweet_id(id)?;
            let row = store.row(id).with_context(|| {
                format!(
                    "tweet {id} is not in the store {} ({} tweets from {})",
                    store.dir().display(),
                    store.tweets().len(),
                    store.manifest().corpus.source
                )
            })?;
            let t = &store.tweets()[row];
            let header = format!(
                "similar to tweet {id} ({}): {}",
                output::date(t),
                output::one_line(&t.text, 100)
            );
            (store.vector(row).to_vec(), Some(row), header)
        }
        (None, None) => bail!("give a query text or --tweet ID"),
    };
    let k = a.k as usize;
    let hits = if a.exact {
        store.search_exact(&query, k, &filter, exclude)?
    } else {
        store.search(&query, k, &filter, exclude)?
    };
    if hits.is_empty() && !g.quiet {
        eprintln!("no tweet passes the filters");
    }
    if a.json {
        output::hits_json(&store, &hits)
    } else {
        output::hits_table(&store, &hits, &header)
    }
}

fn topics_cmd(g: &Global, a: &TopicsArgs) -> Result<()> {
    let opts = tweetsim::topics::Options {
        min_size: a.min_size,
        topics: a.topics,
        resolution: a.resolution,
        ..Default::default()
    };
    if !(a.resolution > 0.0 && a.resolution.is_finite()) {
        bail!(
            "--resolution must be a positive number, not {}",
            a.resolution
        );
    }
    let themes = match (&a.themes, &a.themes_file) {
        (Some(list), _) => Some(tweetsim::topics::themes::parse_list(list)?),
        (None, Some(path)) => Some(tweetsim::topics::themes::load_file(path)?),
        (None, None) => None,
    };
    let dir = store_dir(&a.corpus, &a.store, &g.model)?;
    let mut encoder = None;
    let store = open_fresh_store(g, &a.corpus, &a.store, &dir, &mut encoder)?;
    let (topics, terms) = match &themes {
        Some(themes) => {
            let enc = take_or_load(g, &mut encoder)?;
            tweetsim::topics::themes::assign(&store, &enc, themes)?
        }
        None => (tweetsim::topics::discover(&store, &opts)?, Vec::new()),
    };
    let mut report = tweetsim::report::Report::new(&store, &topics);
    report.guided = themes.is_some();
    for (t, terms) in report.topics.iter_mut().zip(terms) {
        t.terms = terms;
    }
    if let Some(path) = &a.markdown {
        fsutil::write_atomic(path, report.to_markdown().as_bytes())?;
        if !g.quiet {
            eprintln!("wrote {}", path.display());
        }
    }
    if let Some(path) = &a.html {
        fsutil::write_atomic(path, report.to_html(&store, &topics).as_bytes())?;
        if !g.quiet {
            eprintln!("wrote {}", path.display());
        }
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(out, "{}", report.to_text(output::width()))?;
    }
    Ok(())
}

fn embed_cmd(g: &Global, args: &CorpusArgs, out: &Path) -> Result<()> {
    if out.extension().is_none_or(|e| e != "npy") {
        bail!("--out {} must end in .npy", out.display());
    }
    let c = load_corpus(g, args)?;
    let encoder = load_encoder(g)?;
    let inputs: Vec<String> = c.tweets.iter().map(|t| t.embedding_text()).collect();
    let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let bar = progress_bar(g, texts.len() as u64, "embedding");
    let started = Instant::now();
    let vectors = encoder.embed_with_progress(&texts, |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let ids_path = out.with_extension("ids");
    let ids: String = c.tweets.iter().map(|t| format!("{}\n", t.id)).collect();
    // The .ids first: a run killed between the two renames leaves a .npy whose row count
    // disagrees with the .ids, which readers check, rather than a plausible mismatch.
    fsutil::write_atomic(&ids_path, ids.as_bytes())?;
    fsutil::write_atomic_with(out, |w| npy::write(w, &vectors, texts.len(), encoder.dim()))?;
    if !g.quiet {
        eprintln!(
            "embedded {} tweets in {secs:.1} s ({:.0} tweets/s)",
            texts.len(),
            texts.len() as f64 / secs
        );
    }
    println!(
        "wrote {} ({} × {}) and {}",
        out.display(),
        texts.len(),
        encoder.dim(),
        ids_path.display()
    );
    Ok(())
}

/// Loads the corpus (the bundled one by default) and reports merged repeats on stderr.
fn load_corpus(g: &Global, args: &CorpusArgs) -> Result<Corpus> {
    let c = match &args.corpus {
        Some(path) => Corpus::load(path, args.format)?,
        None => Corpus::bundled(),
    };
    for m in c.merges.iter().filter(|m| !m.same_text) {
        eprintln!(
            "warning: {}: status {} appears as entries {} and {} with different texts; kept the first",
            c.source, m.id, m.kept, m.dropped
        );
    }
    if !g.quiet && !c.merges.is_empty() {
        eprintln!(
            "note: {}: {} repeated status ids merged ({} entries → {} tweets)",
            c.source,
            c.merges.len(),
            c.entries,
            c.tweets.len()
        );
    }
    Ok(c)
}

fn load_encoder(g: &Global) -> Result<Encoder> {
    let files = Resolver::from_env(g.models_dir.clone()).resolve(&g.model)?;
    let opts = tweetsim::embed::Options {
        device: g.device,
        precision: g.dtype,
    };
    Ok(Encoder::load_with(&files, opts)?)
}

/// The encoder an earlier step already loaded (building a store), or a freshly loaded one:
/// loading costs a model map and a tokenizer parse, so it happens at most once per command.
fn take_or_load(g: &Global, loaded: &mut Option<Encoder>) -> Result<Encoder> {
    match loaded.take() {
        Some(e) => Ok(e),
        None => load_encoder(g),
    }
}

/// `--store`, or the default folder for this corpus and model.
fn store_dir(corpus: &CorpusArgs, store: &StoreArgs, model_id: &str) -> Result<PathBuf> {
    if let Some(dir) = &store.store {
        return Ok(dir.clone());
    }
    let key = match &corpus.corpus {
        None => corpus::BUNDLED_NAME.to_string(),
        Some(p) => std::fs::canonicalize(p)
            .with_context(|| format!("corpus {}", p.display()))?
            .display()
            .to_string(),
    };
    Ok(index::default_store_dir(&key, model_id)?)
}

/// Opens the store for `similar`, building it on first use and updating it when its corpus
/// file has changed since. A store built for another model is refused, not rebuilt.
fn open_fresh_store(
    g: &Global,
    corpus: &CorpusArgs,
    store: &StoreArgs,
    dir: &Path,
    encoder: &mut Option<Encoder>,
) -> Result<Store> {
    let manifest = match index::read_manifest(dir) {
        Ok(m) => Some(m),
        Err(_) if !dir.join("manifest.json").exists() => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(m) = manifest
        .as_ref()
        .filter(|m| m.embedding_text != corpus::EMBEDDING_TEXT_POLICY)
    {
        bail!(tweetsim::Error::Store {
            dir: dir.to_path_buf(),
            msg: format!(
                "its vectors embed text as '{}', this tweetsim as '{}'",
                m.embedding_text,
                corpus::EMBEDDING_TEXT_POLICY
            ),
        });
    }
    // Which corpus the store should reflect: the one named, else the one it was built from.
    let current: Option<Corpus> = match (&manifest, &corpus.corpus) {
        (None, _) | (Some(_), Some(_)) => Some(load_corpus(g, corpus)?),
        (Some(m), None) if store.store.is_none() || m.corpus.source == corpus::BUNDLED_NAME => {
            let bundled_hash = corpus::content_hash(Corpus::bundled_text().as_bytes());
            (m.corpus.content_hash != bundled_hash)
                .then(|| load_corpus(g, corpus))
                .transpose()?
        }
        (Some(m), None) => {
            let path = Path::new(&m.corpus.source);
            match std::fs::read(path) {
                Ok(bytes) if corpus::content_hash(&bytes) != m.corpus.content_hash => {
                    Some(Corpus::load(path, Some(m.corpus.format))?)
                }
                _ => None,
            }
        }
    };
    let stale = match (&manifest, &current) {
        (None, _) => true,
        (Some(m), Some(c)) => m.corpus.content_hash != c.content_hash,
        (Some(_), None) => false,
    };
    if stale {
        let c = current.expect("a stale store always has a corpus to build from");
        if !g.quiet {
            let why = if manifest.is_some() {
                "corpus changed; updating"
            } else {
                "first use; building"
            };
            eprintln!("{why} the store at {}", dir.display());
        }
        let enc = take_or_load(g, encoder)?;
        if let Some(m) = &manifest {
            if &m.model != enc.identity() {
                bail!(tweetsim::Error::Store {
                    dir: dir.to_path_buf(),
                    msg: format!("built with model {}, not {}", m.model.id, enc.identity().id),
                });
            }
        }
        build_store(g, dir, &c, &enc, HnswParams::default())?;
        *encoder = Some(enc);
    }
    Ok(Store::open(dir)?)
}

fn build_store(
    g: &Global,
    dir: &Path,
    c: &Corpus,
    enc: &Encoder,
    params: HnswParams,
) -> Result<index::BuildReport> {
    let bar = progress_bar(g, 0, "embedding");
    let report = index::build(dir, c, enc, params, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    Ok(report)
}

fn progress_bar(g: &Global, len: u64, what: &str) -> ProgressBar {
    if g.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tweets ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// A status id, or a status URL ending in one.
fn parse_tweet_id(s: &str) -> Result<u64> {
    let tail = s.trim().trim_end_matches('/');
    let tail = tail.rsplit_once("/status/").map_or(tail, |(_, t)| t);
    let tail = tail.split(['?', '/']).next().unwrap_or("");
    match tail.parse::<u64>() {
        Ok(id) if !tail.is_empty() => Ok(id),
        _ => bail!("'{s}' is not a status id (digits) or a status URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tweet_ids_from_numbers_and_urls() {
        assert_eq!(parse_tweet_id("42").unwrap(), 42);
        assert_eq!(
            parse_tweet_id("https://x.com/karpathy/status/42?s=20").unwrap(),
            42
        );
        assert!(parse_tweet_id("abc").is_err());
        assert!(parse_tweet_id("").is_err());
    }
}
