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
use tweetsim::{fsutil, search};

/// A status line on stdout: an error, not a panic, when stdout is closed or full (a closed
/// pipe is then a quiet success, in `main`).
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).context("writing to stdout")?
    };
}

use args::{
    Cli, Command, CorpusArgs, DupsArgs, Global, ServeArgs, SimilarArgs, StoreArgs, SynthArgs,
    TopicsArgs,
};

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
            embeddings,
        }) => {
            let params = |dir: &Path| HnswParams {
                m: m.into(),
                ef_construction: ef_construction as usize,
                ef_search: ef_search.map_or_else(|| recorded_ef(dir), |ef| ef as usize),
            };
            match embeddings {
                Some(npy) => index_vectors_cmd(g, &corpus, &store, params, &npy),
                None => index_cmd(g, &corpus, &store, params),
            }
        }
        Some(Command::Remove { ids, corpus, store }) => remove_cmd(g, &ids, &corpus, &store),
        Some(Command::Verify { corpus, store }) => verify_cmd(g, &corpus, &store),
        Some(Command::Similar(a)) => similar_cmd(g, &a),
        Some(Command::Embed {
            corpus,
            out,
            chunk,
            verbatim,
        }) => embed_cmd(g, &corpus, &out, chunk as usize, verbatim),
        Some(Command::Topics(a)) => topics_cmd(g, &a),
        Some(Command::Synth(a)) => synth_cmd(g, &a),
        Some(Command::Dups(a)) => dups_cmd(g, &a),
        Some(Command::Serve(a)) => serve_cmd(g, &a),
    }
}

fn corpus_cmd(g: &Global, args: &CorpusArgs, json: bool) -> Result<()> {
    let c = load_corpus(g, args)?;
    output::corpus_summary(&c, json)
}

/// The search beam a store recorded, or the default for a new one: `index` without
/// `--ef-search` keeps what the user chose before.
fn recorded_ef(dir: &Path) -> usize {
    index::read_manifest(dir).map_or(index::DEFAULT_EF_SEARCH, |m| m.hnsw.ef_search)
}

fn index_cmd(
    g: &Global,
    corpus: &CorpusArgs,
    store: &StoreArgs,
    params: impl Fn(&Path) -> HnswParams,
) -> Result<()> {
    let c = load_corpus(g, corpus)?;
    let encoder = load_encoder(g)?;
    let dir = store_dir(corpus, store, &encoder.identity().id)?;
    let started = Instant::now();
    let report = build_store(g, &dir, &c, &encoder, params(&dir))?;
    say!(
        "indexed {} tweets ({} embedded, {} reused; {}) in {:.1} s → {}",
        report.tweets,
        report.embedded,
        report.reused,
        graph_change(&report),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// How a write changed the graph, for the one-line summaries.
fn graph_change(r: &index::BuildReport) -> String {
    if r.rebuilt {
        return match r.removed {
            0 => "graph built".into(),
            n => format!("{n} dropped, graph rebuilt without tombstones"),
        };
    }
    let revived = match r.revived {
        0 => String::new(),
        n => format!(", {n} brought back from tombstones"),
    };
    format!(
        "graph: {} appended, {} tombstoned{revived}, {} tombstones in all",
        r.appended, r.removed, r.tombstones
    )
}

fn remove_cmd(g: &Global, ids: &[String], corpus: &CorpusArgs, store: &StoreArgs) -> Result<()> {
    let ids: Vec<u64> = ids
        .iter()
        .map(|s| parse_tweet_id(s))
        .collect::<Result<_>>()?;
    let dir = store_dir(corpus, store, &g.model)?;
    let report = index::remove(&dir, &ids)?;
    say!(
        "removed {}, {} remain ({}) → {}",
        tweetsim::report::tweets(report.removed),
        report.tweets,
        graph_change(&report),
        dir.display()
    );
    Ok(())
}

fn verify_cmd(g: &Global, corpus: &CorpusArgs, store: &StoreArgs) -> Result<()> {
    let dir = store_dir(corpus, store, &g.model)?;
    let started = Instant::now();
    let (files, bytes) = index::verify_all(&dir)?;
    let store = Store::open(&dir)?;
    let tweets = store.tweets()?.len();
    say!(
        "{}: {files} files ({:.1} MB) match their checksums, {tweets} tweets read back ({:.1} s)",
        dir.display(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
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
    let mut clock = Stages::new(a.timings);
    // The encoder is needed for a text query, or to build the store.
    let mut encoder: Option<Encoder> = None;
    let dir = store_dir(&a.corpus, &a.store, &g.model)?;
    let store = open_fresh_store(g, &a.corpus, &a.store, &dir, &mut encoder)?;
    clock.mark("store open");

    let (query, exclude, header, lexical_text) = match (&query_text, &a.tweet) {
        (Some(text), _) => {
            let enc = take_or_load(g, &mut encoder)?;
            clock.mark("encoder load (weights map + tokenizer)");
            store.check_model(enc.identity())?;
            let v = enc.embed(&[text])?;
            clock.mark("embed query");
            (v, None, format!("similar to: {text}"), text.clone())
        }
        (None, Some(id)) => {
            let id = parse_tweet_id(id)?;
            let row = store.row(id).with_context(|| {
                format!(
                    "tweet {id} is not in the store {} ({} tweets from {})",
                    store.dir().display(),
                    store.len(),
                    store.manifest().corpus.source
                )
            })?;
            let t = store.tweet(row)?;
            let header = format!(
                "similar to tweet {id} ({}): {}",
                output::date(&t),
                output::one_line(&t.text, 100)
            );
            (
                store.vector(row).to_vec(),
                Some(row),
                header,
                t.embedding_text(),
            )
        }
        (None, None) => bail!("give a query text or --tweet ID"),
    };
    let opts = search::Options {
        mode: a.mode,
        k: a.k as usize,
        filter,
        exact: a.exact,
        collapse: (!a.no_collapse).then_some(search::DUPLICATE_COSINE),
        explain: a.explain,
        dense_weight: search::HYBRID_DENSE_WEIGHT,
        thread_weight: search::THREAD_WEIGHT,
    };
    let q = search::Query {
        text: &lexical_text,
        vector: &query,
        exclude,
    };
    let hits = search::search(&store, &q, &opts)?;
    clock.mark("search");
    if hits.is_empty() && !g.quiet {
        let passing = if opts.filter.is_empty() {
            ""
        } else {
            " that passes the filters"
        };
        match (a.mode, exclude) {
            (search::Mode::Lexical, _) => {
                eprintln!("no tweet{passing} shares a word with the query")
            }
            (_, Some(_)) if passing.is_empty() => eprintln!("no other tweet in the store"),
            _ => eprintln!("no tweet{passing}"),
        }
    }
    let explain = a.explain.then_some(lexical_text.as_str());
    if a.json {
        output::hits_json(&store, &hits, explain)?;
    } else {
        output::hits_table(&store, &hits, &header, explain)?;
    }
    clock.mark("print");
    clock.report();
    Ok(())
}

/// `--timings`: wall time per stage of one command, on stderr.
struct Stages {
    on: bool,
    last: Instant,
    marks: Vec<(&'static str, f64)>,
}

impl Stages {
    fn new(on: bool) -> Stages {
        Stages {
            on,
            last: Instant::now(),
            marks: Vec::new(),
        }
    }

    fn mark(&mut self, what: &'static str) {
        let now = Instant::now();
        self.marks
            .push((what, (now - self.last).as_secs_f64() * 1e3));
        self.last = now;
    }

    fn report(&self) {
        if self.on {
            let total: f64 = self.marks.iter().map(|m| m.1).sum();
            let parts: Vec<String> = self
                .marks
                .iter()
                .map(|(w, ms)| format!("{w} {ms:.1} ms"))
                .collect();
            eprintln!(
                "timings: {}; total {total:.1} ms after start-up",
                parts.join(", ")
            );
        }
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
    if let Some(themes) = themes.as_ref().filter(|_| !g.quiet) {
        for ((theme, terms), topic) in themes.iter().zip(&terms).zip(&topics.topics) {
            if terms.is_empty() {
                eprintln!(
                    "note: no tweet has any of the words or seeds of theme '{}' (stop words do not count); it takes only tweets within cosine {} of its name and description ({} here)",
                    theme.name,
                    tweetsim::topics::themes::MEANING_ONLY_MIN_COSINE,
                    tweetsim::report::tweets(topic.rows.len())
                );
            }
        }
    }
    let mut report = tweetsim::report::Report::new(&store, &topics)?;
    report.guided = themes.is_some();
    for (t, terms) in report.topics.iter_mut().zip(terms) {
        t.terms = terms;
    }
    // The report files land together or not at all.
    let markdown = a.markdown.as_ref().map(|p| (p, report.to_markdown()));
    let html = match &a.html {
        Some(p) => Some((p, report.to_html(&store, &topics)?)),
        None => None,
    };
    let files: Vec<(&Path, &[u8])> = [&markdown, &html]
        .into_iter()
        .flatten()
        .map(|(p, text)| (p.as_path(), text.as_bytes()))
        .collect();
    fsutil::write_all_atomic(&files)?;
    for (path, _) in files.iter().filter(|_| !g.quiet) {
        eprintln!("wrote {}", path.display());
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(out, "{}", report.to_text(output::width()))?;
    }
    Ok(())
}

fn embed_cmd(
    g: &Global,
    args: &CorpusArgs,
    out: &Path,
    chunk: usize,
    verbatim: bool,
) -> Result<()> {
    let parquet = tweetsim::stream::is_parquet(out);
    if !parquet && out.extension().is_none_or(|e| e != "npy") {
        bail!("--out {} must end in .npy or .parquet", out.display());
    }
    let encoder = load_encoder(g)?;
    let input = tweetsim::stream::Input {
        path: args.corpus.as_deref(),
        format: args.format,
        verbatim,
    };
    let bar = progress_bar(g, 0, "embedding");
    let done = tweetsim::stream::embed(&input, out, chunk, &encoder, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let fresh = done.rows - done.resumed;
    if !g.quiet {
        let resumed = match done.resumed {
            0 => String::new(),
            n => format!(", resumed after {n} done before"),
        };
        eprintln!(
            "embedded {fresh} tweets in {:.1} s ({:.0} tweets/s on {}, {}{resumed})",
            done.seconds,
            fresh as f64 / done.seconds,
            encoder.device_label(),
            encoder.precision(),
        );
    }
    if parquet {
        say!(
            "wrote {} ({} rows: tweets and their {}-d vectors)",
            out.display(),
            done.rows,
            encoder.dim()
        );
        return Ok(());
    }
    say!(
        "wrote {} ({} × {}), {} and {}",
        out.display(),
        done.rows,
        encoder.dim(),
        done.ids_path.display(),
        done.meta_path.display()
    );
    Ok(())
}

fn dups_cmd(g: &Global, a: &DupsArgs) -> Result<()> {
    if !(a.threshold > 0.0 && a.threshold <= 1.0) {
        bail!("--threshold must be in (0, 1], not {}", a.threshold);
    }
    let dir = store_dir(&a.corpus, &a.store, &g.model)?;
    let mut encoder = None;
    let store = open_fresh_store(g, &a.corpus, &a.store, &dir, &mut encoder)?;
    let started = Instant::now();
    let groups = tweetsim::dups::find(&store, a.threshold);
    if !g.quiet {
        eprintln!(
            "{} groups ({} tweets) at cosine >= {} among {} tweets in {:.2} s",
            groups.len(),
            groups.iter().map(|g| g.rows.len()).sum::<usize>(),
            a.threshold,
            store.len(),
            started.elapsed().as_secs_f64()
        );
    }
    output::dup_groups(&store, &groups, a.json)
}

fn serve_cmd(g: &Global, a: &ServeArgs) -> Result<()> {
    let dir = store_dir(&a.corpus, &a.store, &g.model)?;
    let mut encoder = None;
    // Built or brought up to date like `similar` does; from then on the server follows the
    // generations that `index` and `remove` publish.
    let store = open_fresh_store(g, &a.corpus, &a.store, &dir, &mut encoder)?;
    let encoder = take_or_load(g, &mut encoder)?;
    let config = tweetsim::serve::Config {
        addr: a.addr,
        limits: tweetsim::serve::Limits {
            max_k: a.max_k as usize,
            max_query_bytes: a.max_query_bytes as usize,
            max_body_bytes: a.max_body_bytes as usize,
            max_texts: a.max_texts as usize,
            max_queued_texts: a.max_queued_texts as usize,
        },
        batch_texts: a.batch_texts as usize,
        poll: std::time::Duration::from_millis(a.poll_ms),
        quiet: g.quiet,
    };
    tweetsim::serve::run(store, encoder, config, |addr| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr} (store {})", dir.display())?;
        out.flush()
    })?;
    Ok(())
}

fn synth_cmd(g: &Global, a: &SynthArgs) -> Result<()> {
    use tweetsim::synth;
    if a.out.extension().is_none_or(|e| e != "jsonl") {
        bail!("--out {} must end in .jsonl", a.out.display());
    }
    let n = a.tweets as usize;
    let base = Corpus::bundled().tweets;
    // Vectors are made from the model's embeddings of the bundled tweets' halves.
    let halves = if a.vectors {
        let encoder = load_encoder(g)?;
        Some((
            synth::Halves::embed(&base, &encoder)?,
            encoder.identity().clone(),
        ))
    } else {
        None
    };
    let bar = progress_bar(g, n as u64, "making");
    let npy_path = a.out.with_extension("npy");
    let mut gen = synth::Tweets::new(&base, a.seed);
    let mut made = Vec::new();
    fsutil::write_atomic_with(&a.out, |w| {
        for _ in 0..n {
            let m = gen.next().expect("--tweets is at most synth::MAX_TWEETS");
            writeln!(w, "{}", synth::to_jsonl(&m.tweet))?;
            if halves.is_some() {
                made.push((m.tweet.id, m.parents));
            }
            bar.inc(1);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    say!("wrote {} ({n} tweets, seed {})", a.out.display(), a.seed);
    let Some((halves, model)) = halves else {
        return Ok(());
    };
    let dim = halves.dim();
    let mut rng = synth::vector_rng(a.seed);
    let ids: String = made.iter().map(|(id, _)| format!("{id}\n")).collect();
    fsutil::write_atomic(&tweetsim::stream::ids_path(&npy_path), ids.as_bytes())?;
    fsutil::write_atomic_with(&npy_path, |w| {
        w.write_all(&tweetsim::npy::header(n, dim))?;
        for (_, parents) in &made {
            tweetsim::npy::write_rows(w, &halves.vector(*parents, &mut rng))?;
        }
        Ok(())
    })?;
    tweetsim::stream::seal(
        &npy_path,
        tweetsim::stream::Meta {
            rows: n,
            dim,
            model,
            embedding_text: corpus::EMBEDDING_TEXT_POLICY.into(),
            precision: tweetsim::embed::Precision::F32,
            device: "synthetic".into(),
            input: std::fs::canonicalize(&a.out)?.display().to_string(),
            npy_xxh3: String::new(),
            ids_xxh3: String::new(),
        },
    )?;
    say!(
        "wrote {} ({n} × {dim}, from the model's embeddings of the bundled tweets' halves), {} and {}",
        npy_path.display(),
        tweetsim::stream::ids_path(&npy_path).display(),
        tweetsim::stream::meta_path(&npy_path).display()
    );
    Ok(())
}

/// `index --embeddings`: a store from vectors made elsewhere, matched to the corpus by id.
fn index_vectors_cmd(
    g: &Global,
    corpus: &CorpusArgs,
    store: &StoreArgs,
    params: impl Fn(&Path) -> HnswParams,
    npy_path: &Path,
) -> Result<()> {
    let started = Instant::now();
    let c = load_corpus(g, corpus)?;
    let tweetsim::stream::Exported {
        vectors: data,
        dim,
        ids,
        meta,
    } = tweetsim::stream::read(npy_path)?;
    // Vectors without metadata are taken to come from --model; with it, they say which.
    let model = match &meta {
        Some(m) => {
            if m.embedding_text != corpus::EMBEDDING_TEXT_POLICY {
                bail!(
                    "{}: its vectors embed text as '{}', this tweetsim as '{}'",
                    npy_path.display(),
                    m.embedding_text,
                    corpus::EMBEDDING_TEXT_POLICY
                );
            }
            m.model.clone()
        }
        None => load_encoder(g)?.identity().clone(),
    };
    if dim != model.dim {
        bail!(
            "{}: vectors have {dim} dimensions, model {} makes {}",
            npy_path.display(),
            model.id,
            model.dim
        );
    }
    // First row of each id, as the corpus keeps the first record of a repeated id.
    let mut row_of: std::collections::HashMap<u64, usize> =
        std::collections::HashMap::with_capacity(ids.len());
    for (row, &id) in ids.iter().enumerate() {
        row_of.entry(id).or_insert(row);
    }
    let mut vectors = Vec::with_capacity(c.tweets.len() * dim);
    for t in &c.tweets {
        let Some(&row) = row_of.get(&t.id) else {
            bail!(
                "tweet {} of {} has no vector in {}: embed this corpus with `tweetsim embed`",
                t.id,
                c.source,
                npy_path.display()
            );
        };
        vectors.extend_from_slice(&data[row * dim..(row + 1) * dim]);
    }
    if row_of.len() != c.tweets.len() {
        bail!(
            "{} holds {} ids, the corpus {} has {} tweets: were they embedded from another corpus?",
            npy_path.display(),
            row_of.len(),
            c.source,
            c.tweets.len()
        );
    }
    drop(data);
    let dir = store_dir(corpus, store, &model.id)?;
    let report = index::build_from_vectors(&dir, &c, &vectors, &model, params(&dir))?;
    say!(
        "indexed {} tweets (vectors from {}; {}) in {:.1} s → {}",
        c.tweets.len(),
        npy_path.display(),
        graph_change(&report),
        started.elapsed().as_secs_f64(),
        dir.display()
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
    if let Some(first) = c.blank.first().filter(|_| !g.quiet) {
        eprintln!(
            "note: {}: {} records without text left out (e.g. status {first})",
            c.source,
            c.blank.len()
        );
    }
    Ok(c)
}

fn load_encoder(g: &Global) -> Result<Encoder> {
    let files = Resolver::from_env(g.models_dir.clone()).resolve(&g.model)?;
    let opts = tweetsim::embed::Options {
        device: g.device,
        precision: g.dtype,
        batching: g
            .batch_tokens
            .map(|n| tweetsim::embed::Batching::Tokens(n as usize)),
        workers: g.workers.map(|n| n as usize),
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
        bail!(tweetsim::Error::store(
            dir,
            format!(
                "its vectors embed text as '{}', this tweetsim as '{}'",
                m.embedding_text,
                corpus::EMBEDDING_TEXT_POLICY
            ),
        ));
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
                    // The store was not asked to follow a file mid-edit: it answers as built.
                    match Corpus::load(path, Some(m.corpus.format)) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            eprintln!(
                                "warning: the store's corpus changed but cannot be read ({e}); searching the store as it was built"
                            );
                            None
                        }
                    }
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
        // `similar` follows edits to a store's own corpus; replacing its tweets with another
        // file's is `index`'s job, said out loud there (how many tweets go).
        if let Some(m) = manifest.as_ref().filter(|m| m.corpus.source != c.source) {
            bail!(
                "the store at {} holds {} ({} tweets), not {}; searches only follow changes to a store's own corpus. To replace its tweets: tweetsim index --corpus {} --store {}",
                dir.display(),
                m.corpus.source,
                m.tweets,
                c.source,
                c.source,
                dir.display()
            );
        }
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
                bail!(tweetsim::Error::store(
                    dir,
                    format!("built with model {}, not {}", m.model.id, enc.identity().id),
                ));
            }
        }
        // An update keeps the graph's shape and search beam as the store recorded them.
        let params = manifest
            .as_ref()
            .map_or_else(HnswParams::default, |m| m.hnsw);
        build_store(g, dir, &c, &enc, params)?;
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
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => {
            bail!("'{s}' is too large for a status id (at most {})", u64::MAX)
        }
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
        let e = parse_tweet_id("99999999999999999999999").unwrap_err();
        assert!(e.to_string().contains("too large for a status id"), "{e}");
    }
}
