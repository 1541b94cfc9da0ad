//! The store: tweets, their vectors and an HNSW graph on disk, and search over them.
//!
//! Layout of a store directory:
//!
//! ```text
//! <store>/manifest.json      what the store holds; names the current generation
//! <store>/gen-<stamp>/       one immutable generation:
//!     tweets.jsonl           one Tweet per line, row order
//!     embeddings.npy         rows × dim float32 unit vectors
//!     graph.hnsw.graph       hnsw_rs graph (data ids = rows)
//!     graph.hnsw.data        hnsw_rs copy of the vectors
//! <store>/.lock              held by the one writer
//! ```
//!
//! A build writes a complete new generation, fsyncs it, then atomically replaces
//! `manifest.json`: a reader or a crash sees the old store or the new one, never a mix.
//! Every file's size and xxh3 checksum is in the manifest and checked on open.

mod graph;
pub mod lexical;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::corpus::{Corpus, Format, Tweet, EMBEDDING_TEXT_POLICY};
use crate::embed::{Encoder, ModelIdentity};
use crate::error::{Error, Result};
use crate::{fsutil, npy};
use graph::Graph;
pub use graph::{dot, HnswParams};
use lexical::Lexical;

/// Bumped whenever the layout or meaning of store files changes.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
const TWEETS: &str = "tweets.jsonl";
const EMBEDDINGS: &str = "embeddings.npy";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Folder of the current generation, relative to the store.
    pub generation: String,
    pub model: ModelIdentity,
    /// How tweet text became encoder input ([`EMBEDDING_TEXT_POLICY`]).
    pub embedding_text: String,
    pub corpus: CorpusInfo,
    pub tweets: usize,
    pub hnsw: HnswParams,
    /// File name → size and checksum, for every file of the generation.
    pub files: BTreeMap<String, FileSum>,
}

/// Which corpus a store was built from, to tell when it is stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusInfo {
    pub source: String,
    pub format: Format,
    pub content_hash: String,
    pub entries: usize,
    pub merged: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub size: u64,
    pub xxh3: String,
}

/// What a build did; `embedded` counts only texts that went through the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildReport {
    pub tweets: usize,
    pub embedded: usize,
    pub reused: usize,
}

/// Conditions on the tweets a search may return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub no_replies: bool,
    pub min_likes: u64,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Tweets without a date fail any date bound.
    pub fn accepts(&self, t: &Tweet) -> bool {
        let date_ok = |bound: Option<NaiveDate>, ok: fn(NaiveDate, NaiveDate) -> bool| {
            bound.is_none_or(|b| t.date.is_some_and(|d| ok(d, b)))
        };
        date_ok(self.since, |d, b| d >= b)
            && date_ok(self.until, |d, b| d <= b)
            && !(self.no_replies && t.is_reply)
            && t.metrics.likes >= self.min_likes
    }
}

/// A subset of a store's rows, with its size known up front (so searches restricted to it
/// need not count it again for every query).
#[derive(Debug, Clone)]
pub struct RowSet {
    mask: Vec<bool>,
    len: usize,
}

impl RowSet {
    /// The rows `0..n` for which `keep` holds.
    pub fn new(n: usize, keep: impl Fn(usize) -> bool) -> RowSet {
        let mask: Vec<bool> = (0..n).map(keep).collect();
        let len = mask.iter().filter(|&&m| m).count();
        RowSet { mask, len }
    }

    pub fn contains(&self, row: usize) -> bool {
        self.mask.get(row).copied().unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One search result: a row of the store and its cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub row: usize,
    pub score: f32,
}

/// An opened, verified store.
pub struct Store {
    dir: PathBuf,
    manifest: Manifest,
    tweets: Vec<Tweet>,
    vectors: Vec<f32>,
    rows_by_id: HashMap<u64, usize>,
    graph: Graph,
    lexical: Lexical,
}

/// The default store folder for a corpus and model, under the user cache directory.
pub fn default_store_dir(corpus_key: &str, model_id: &str) -> Result<PathBuf> {
    let base = dirs::cache_dir().ok_or_else(|| {
        Error::Invalid(
            "no user cache directory (set HOME or XDG_CACHE_HOME), or pass --store DIR".into(),
        )
    })?;
    let key = format!("{corpus_key}\n{model_id}");
    let slug = format!(
        "{}-{:016x}",
        crate::embed::short_name(model_id),
        xxhash_rust::xxh3::xxh3_64(key.as_bytes())
    );
    Ok(base.join("tweetsim").join("stores").join(slug))
}

/// Reads just the manifest, to decide whether a store is stale without loading it.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::store(
                dir,
                "no store here (manifest.json is missing)",
            ))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    // Check the version before the rest, so a future layout gets the right message.
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let v: Version = serde_json::from_str(&text)
        .map_err(|e| Error::store(dir, format!("manifest.json is corrupt ({e})")))?;
    if v.format_version != FORMAT_VERSION {
        return Err(Error::store(
            dir,
            format!(
                "store format version {} is not the version this tweetsim reads ({FORMAT_VERSION})",
                v.format_version
            ),
        ));
    }
    serde_json::from_str(&text)
        .map_err(|e| Error::store(dir, format!("manifest.json is corrupt ({e})")))
}

/// Builds (or rebuilds) the store in `dir` from `corpus`. Vectors of unchanged texts are
/// taken from the store's previous generation when it was built with the same model.
pub fn build(
    dir: &Path,
    corpus: &Corpus,
    encoder: &Encoder,
    params: HnswParams,
    mut progress: impl FnMut(usize, usize),
) -> Result<BuildReport> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let _lock = lock(dir)?;
    let previous = read_manifest(dir).ok();
    let dim = encoder.dim();

    // Reuse vectors by text hash; an unreadable previous store just means embedding again.
    let mut cache: HashMap<u128, Vec<f32>> = HashMap::new();
    if previous.as_ref().is_some_and(|m| {
        &m.model == encoder.identity() && m.embedding_text == EMBEDDING_TEXT_POLICY
    }) {
        if let Ok(old) = Store::open(dir) {
            for (t, v) in old.tweets.iter().zip(old.vectors.chunks_exact(dim)) {
                cache.insert(text_key(&t.embedding_text()), v.to_vec());
            }
        }
    }
    let n = corpus.tweets.len();
    let mut vectors = vec![0f32; n * dim];
    let mut missing: Vec<usize> = Vec::new();
    let inputs: Vec<String> = corpus.tweets.iter().map(Tweet::embedding_text).collect();
    for (row, text) in inputs.iter().enumerate() {
        match cache.get(&text_key(text)) {
            Some(v) => vectors[row * dim..(row + 1) * dim].copy_from_slice(v),
            None => missing.push(row),
        }
    }
    let texts: Vec<&str> = missing.iter().map(|&r| inputs[r].as_str()).collect();
    let mut done = 0;
    let fresh = encoder.embed_with_progress(&texts, |b| {
        done += b;
        progress(done, texts.len());
    })?;
    for (&row, v) in missing.iter().zip(fresh.chunks_exact(dim)) {
        vectors[row * dim..(row + 1) * dim].copy_from_slice(v);
    }

    commit(dir, previous, corpus, &vectors, encoder.identity(), params)?;
    Ok(BuildReport {
        tweets: n,
        embedded: missing.len(),
        reused: n - missing.len(),
    })
}

/// Builds a store from vectors computed elsewhere (a GPU run, a benchmark's synthetic set):
/// row i of `vectors` (row-major, `model.dim` wide) belongs to `corpus.tweets[i]`.
pub fn build_from_vectors(
    dir: &Path,
    corpus: &Corpus,
    vectors: &[f32],
    model: &ModelIdentity,
    params: HnswParams,
) -> Result<()> {
    let n = corpus.tweets.len();
    if vectors.len() != n * model.dim {
        return Err(Error::Invalid(format!(
            "{} vector values for {n} tweets of dimension {}: expected {}",
            vectors.len(),
            model.dim,
            n * model.dim
        )));
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let _lock = lock(dir)?;
    let previous = read_manifest(dir).ok();
    commit(dir, previous, corpus, vectors, model, params)
}

/// Writes a new generation, then points the manifest at it (the atomic step), then removes
/// generations no reader can still be using. The caller holds the lock.
fn commit(
    dir: &Path,
    previous: Option<Manifest>,
    corpus: &Corpus,
    vectors: &[f32],
    model: &ModelIdentity,
    params: HnswParams,
) -> Result<()> {
    let (n, dim) = (corpus.tweets.len(), model.dim);
    // A new generation, complete and synced before the manifest names it.
    let generation = format!(
        "gen-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.9f"),
        std::process::id()
    );
    let gen_dir = dir.join(&generation);
    fs::create_dir(&gen_dir).map_err(|e| Error::io(&gen_dir, e))?;
    let write = |name: &str, f: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| -> Result<()> {
        let path = gen_dir.join(name);
        let file = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = std::io::BufWriter::new(&file);
        f(&mut w)
            .and_then(|_| w.flush())
            .map_err(|e| Error::io(&path, e))
    };
    write(TWEETS, &|w| {
        for t in &corpus.tweets {
            serde_json::to_writer(&mut *w, t)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    write(EMBEDDINGS, &|w| npy::write(&mut NpyOut(w), vectors, n, dim))?;
    let mut names = vec![TWEETS.to_string(), EMBEDDINGS.to_string()];
    names.extend(
        graph::build_and_dump(vectors, dim, params, &gen_dir).map_err(|m| Error::store(dir, m))?,
    );
    let texts: Vec<String> = corpus.tweets.iter().map(Tweet::embedding_text).collect();
    let lex_dir = gen_dir.join(lexical::DIR);
    lexical::build(texts.iter().map(String::as_str), Some(&lex_dir))
        .map_err(|m| Error::store(dir, m))?;
    for e in fs::read_dir(&lex_dir).map_err(|e| Error::io(&lex_dir, e))? {
        let e = e.map_err(|e| Error::io(&lex_dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        // tantivy's lock files are empty markers, not part of the index.
        if e.path().is_file() && !name.ends_with(".lock") {
            names.push(format!("{}/{name}", lexical::DIR));
        }
    }
    fsutil::sync_dir(&lex_dir).map_err(|e| Error::io(&lex_dir, e))?;
    let mut files = BTreeMap::new();
    for name in &names {
        let path = gen_dir.join(name);
        fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        files.insert(name.clone(), checksum(&path)?);
    }
    fsutil::sync_dir(&gen_dir).map_err(|e| Error::io(&gen_dir, e))?;

    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        generation: generation.clone(),
        model: model.clone(),
        embedding_text: EMBEDDING_TEXT_POLICY.to_string(),
        corpus: CorpusInfo {
            source: corpus.source.clone(),
            format: corpus.format,
            content_hash: corpus.content_hash.clone(),
            entries: corpus.entries,
            merged: corpus.merges.len(),
        },
        tweets: n,
        hnsw: params,
        files,
    };
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::store(dir, e.to_string()))?;
    fsutil::write_atomic(&dir.join(MANIFEST), &json)?;

    // Keep the previous generation for readers that opened it a moment ago; drop the rest
    // (older ones and leftovers of killed builds).
    let keep = [Some(generation), previous.map(|m| m.generation)];
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("gen-") && !keep.iter().flatten().any(|k| *k == name) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

impl Store {
    /// Opens and verifies a store: manifest, checksums, shapes, then the graph.
    pub fn open(dir: &Path) -> Result<Store> {
        let manifest = read_manifest(dir)?;
        let gen_dir = dir.join(&manifest.generation);
        let corrupt = |msg: String| Error::store(dir, msg);
        let mut expected = graph::graph_files();
        expected.extend([TWEETS.to_string(), EMBEDDINGS.to_string()]);
        let lexical_prefix = format!("{}/", lexical::DIR);
        let has_lexical = manifest
            .files
            .keys()
            .any(|k| k.starts_with(&lexical_prefix));
        expected.extend(
            manifest
                .files
                .keys()
                .filter(|k| k.starts_with(&lexical_prefix))
                .cloned(),
        );
        for name in &expected {
            let want = manifest
                .files
                .get(name)
                .ok_or_else(|| corrupt(format!("manifest does not list {name}")))?;
            let path = gen_dir.join(name);
            let got =
                checksum(&path).map_err(|_| corrupt(format!("{} is missing", path.display())))?;
            if got != *want {
                return Err(corrupt(format!(
                    "{} is corrupt or truncated ({} bytes, checksum {}; manifest says {} bytes, checksum {})",
                    path.display(),
                    got.size,
                    got.xxh3,
                    want.size,
                    want.xxh3
                )));
            }
        }

        let text = fs::read_to_string(gen_dir.join(TWEETS))
            .map_err(|e| Error::io(gen_dir.join(TWEETS), e))?;
        let tweets: Vec<Tweet> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| corrupt(format!("{TWEETS}:{}: {e}", i + 1)))
            })
            .collect::<Result<_>>()?;
        let (vectors, rows, dim) = npy::read(&gen_dir.join(EMBEDDINGS))?;
        if rows != manifest.tweets || tweets.len() != rows || dim != manifest.model.dim {
            return Err(corrupt(format!(
                "shapes disagree: manifest {} tweets × {} dims, {TWEETS} {} tweets, {EMBEDDINGS} {rows} × {dim}",
                manifest.tweets,
                manifest.model.dim,
                tweets.len()
            )));
        }
        let graph = Graph::load(&gen_dir).map_err(corrupt)?;
        if graph.len() != rows {
            return Err(corrupt(format!(
                "graph holds {} points, store {rows}",
                graph.len()
            )));
        }
        // Stores written before the lexical index existed get one in memory.
        let lexical = if has_lexical {
            Lexical::open(&gen_dir.join(lexical::DIR))
        } else {
            let texts: Vec<String> = tweets.iter().map(Tweet::embedding_text).collect();
            lexical::build(texts.iter().map(String::as_str), None)
        }
        .map_err(corrupt)?;
        let rows_by_id = tweets.iter().enumerate().map(|(r, t)| (t.id, r)).collect();
        Ok(Store {
            lexical,
            dir: dir.to_path_buf(),
            manifest,
            tweets,
            vectors,
            rows_by_id,
            graph,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn tweets(&self) -> &[Tweet] {
        &self.tweets
    }

    pub fn dim(&self) -> usize {
        self.manifest.model.dim
    }

    /// The row of a status id.
    pub fn row(&self, id: u64) -> Option<usize> {
        self.rows_by_id.get(&id).copied()
    }

    /// All vectors, row-major (`tweets().len() × dim()`).
    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    pub fn vector(&self, row: usize) -> &[f32] {
        let d = self.dim();
        &self.vectors[row * d..(row + 1) * d]
    }

    /// Refuses to answer queries embedded by a different model than the store's vectors.
    pub fn check_model(&self, model: &ModelIdentity) -> Result<()> {
        let have = &self.manifest.model;
        if have != model {
            return Err(Error::store(
                &self.dir,
                format!(
                    "built with model {} (sha256 {}…, {} dims), not {} (sha256 {}…, {} dims)",
                    have.id,
                    &have.weights_sha256[..12.min(have.weights_sha256.len())],
                    have.dim,
                    model.id,
                    &model.weights_sha256[..12.min(model.weights_sha256.len())],
                    model.dim
                ),
            ));
        }
        Ok(())
    }

    /// The `k` rows most similar to `query` that pass `filter`, best first, never `exclude`.
    ///
    /// Uses the graph; when the filter is selective enough that the graph walk could come back
    /// short, or it does, the allowed rows are scanned exactly instead, so a search returns
    /// `k` hits whenever `k` tweets pass the filter.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        exclude: Option<usize>,
    ) -> Result<Vec<Hit>> {
        self.check_query(query, k)?;
        if filter.is_empty() && exclude.is_none() {
            return Ok(self.search_where(query, k, None));
        }
        let allowed = |row: usize| Some(row) != exclude && filter.accepts(&self.tweets[row]);
        let count = (0..self.tweets.len()).filter(|&r| allowed(r)).count();
        Ok(self.search_where(query, k, Some((&allowed, count))))
    }

    /// The best `k` rows by BM25 for `text` that pass `filter`, never `exclude`; `Hit::score`
    /// is the BM25 score. Tweets sharing no word stem with the text are not returned.
    pub fn search_lexical(
        &self,
        text: &str,
        k: usize,
        filter: &Filter,
        exclude: Option<usize>,
    ) -> Vec<Hit> {
        let among = std::sync::Arc::new(RowSet::new(self.tweets.len(), |r| {
            Some(r) != exclude && filter.accepts(&self.tweets[r])
        }));
        self.lexical
            .search(text, k, &among)
            .into_iter()
            .map(|(row, score)| Hit { row, score })
            .collect()
    }

    /// The lexical index, for explaining matches.
    pub fn lexical(&self) -> &Lexical {
        &self.lexical
    }

    /// The `k` nearest rows to `row` within `among` (never `row` itself).
    pub fn neighbors(&self, row: usize, k: usize, among: &RowSet) -> Vec<Hit> {
        let allowed = |r: usize| r != row && among.contains(r);
        // When most rows are in the set, an unfiltered walk for a few extra hits is cheaper
        // than a filtered one; fall back to the filtered walk when too few survive.
        if among.len() * 4 >= self.tweets.len() * 3 {
            let mut hits = self.search_where(self.vector(row), k + k / 2 + 2, None);
            hits.retain(|h| allowed(h.row));
            if hits.len() >= k {
                hits.truncate(k);
                return hits;
            }
        }
        let count = among.len() - usize::from(among.contains(row));
        self.search_where(self.vector(row), k, Some((&allowed, count)))
    }

    /// Graph search restricted to rows `allowed` accepts (`count` of them), falling back to an
    /// exact scan when the graph walk could come back short.
    fn search_where(
        &self,
        query: &[f32],
        k: usize,
        allowed: Option<(&dyn Fn(usize) -> bool, usize)>,
    ) -> Vec<Hit> {
        let n = self.tweets.len();
        let (pred, n_allowed) = match allowed {
            None => (None, n),
            Some((f, count)) => (Some(f), count),
        };
        let want = k.min(n_allowed);
        let scan = || self.scan(query, want, |r| pred.is_none_or(|f| f(r)));
        // Below ~10% of the rows, a filtered graph walk visits mostly rejected nodes.
        if n_allowed * 10 < n {
            return scan();
        }
        let found = self
            .graph
            .search(query, want, self.manifest.hnsw.ef_search, pred);
        if found.len() < want {
            return scan();
        }
        let mut hits: Vec<Hit> = found
            .into_iter()
            .map(|(row, _)| Hit {
                row,
                score: dot(query, self.vector(row)),
            })
            .collect();
        sort_hits(&mut hits);
        hits.truncate(want);
        hits
    }

    /// Exact search over every row: the ground truth the graph is measured against.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        exclude: Option<usize>,
    ) -> Result<Vec<Hit>> {
        self.check_query(query, k)?;
        Ok(self.scan(query, k, |row| {
            Some(row) != exclude && filter.accepts(&self.tweets[row])
        }))
    }

    fn check_query(&self, query: &[f32], k: usize) -> Result<()> {
        if query.len() != self.dim() {
            return Err(Error::Invalid(format!(
                "query vector has {} dimensions, the store {} has {}",
                query.len(),
                self.dir.display(),
                self.dim()
            )));
        }
        if k == 0 {
            return Err(Error::Invalid("k must be at least 1".into()));
        }
        Ok(())
    }

    fn scan(&self, query: &[f32], k: usize, allowed: impl Fn(usize) -> bool) -> Vec<Hit> {
        let mut hits: Vec<Hit> = (0..self.tweets.len())
            .filter(|&r| allowed(r))
            .map(|row| Hit {
                row,
                score: dot(query, self.vector(row)),
            })
            .collect();
        sort_hits(&mut hits);
        hits.truncate(k);
        hits
    }
}

/// Best first; ties by row so results are stable.
fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
}

fn text_key(text: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(text.as_bytes())
}

fn checksum(path: &Path) -> Result<FileSum> {
    let (size, xxh3) = fsutil::xxh3_file(path)?;
    Ok(FileSum { size, xxh3 })
}

/// Takes the store's writer lock, waiting (with a note) while another writer holds it.
fn lock(dir: &Path) -> Result<fs::File> {
    let path = dir.join(".lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => {
            eprintln!("waiting for another tweetsim writing {} ...", dir.display());
            file.lock().map_err(|e| Error::io(&path, e))?;
            Ok(file)
        }
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Adapts `&mut dyn Write` to the `impl Write` that [`npy::write`] takes.
struct NpyOut<'a>(&'a mut dyn Write);

impl Write for NpyOut<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
