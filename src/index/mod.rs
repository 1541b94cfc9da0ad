//! The store: tweets, their vectors and an HNSW graph on disk, and search over them.
//!
//! Layout of a store directory:
//!
//! ```text
//! <store>/manifest.json      what the store holds; names the current generation
//! <store>/gen-<stamp>/       one immutable generation:
//!     tweets.jsonl           one Tweet per line, row order
//!     tweets.idx             where each line starts; ids, dates, likes, replies per row
//!     embeddings.npy         rows × dim float32 unit vectors
//!     graph.hnsw.graph       hnsw_rs graph (data ids = rows)
//!     graph.hnsw.data        hnsw_rs copy of the vectors
//!     graph.flat             the graph's links as flat arrays and the vectors' one-byte
//!                            codes, which searches walk
//!     lexical/               BM25 index (tantivy)
//!     tombstones.json        rows that no longer count, when there are any
//!     checked.json           stat of each file when its checksum last matched
//! <store>/.lock              held by the one writer
//! ```
//!
//! A build writes a complete new generation, fsyncs it, then atomically replaces
//! `manifest.json`: a reader or a crash sees the old store or the new one, never a mix.
//! Every file's size and xxh3 checksum is in the manifest, checked on open unless the file
//! is unchanged since it last matched; files are mapped, and tweets parsed only when shown.

mod files;
mod flat;
mod graph;
pub mod lexical;
mod table;
mod update;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::corpus::{Format, Tweet};
use crate::embed::ModelIdentity;
use crate::error::{Error, Result};
use crate::simd::dot;
pub use files::verify_all;
use files::Generation;
use flat::Flat;
pub use graph::{HnswParams, DEFAULT_EF_SEARCH};
use lexical::Lexical;
use table::Table;
pub use update::{build, build_from_vectors, remove, BuildReport, COMPACT_SHARE};

/// The beam of [`Store::neighbors`], whatever the store's `ef_search`: topics and duplicates
/// ask for every row's neighbours, where ef 64 costs a tenth of the default 2048 (1M: 0.14
/// against 1.8 ms per query) and clustering does not need the last percent of recall.
pub const NEIGHBORS_EF: usize = 64;

/// Bumped whenever the layout or meaning of store files changes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Folder of the current generation, relative to the store.
    pub generation: String,
    pub model: ModelIdentity,
    /// How tweet text became encoder input ([`crate::corpus::EMBEDDING_TEXT_POLICY`]).
    pub embedding_text: String,
    pub corpus: CorpusInfo,
    /// Rows in the generation's files, tombstoned ones included.
    pub tweets: usize,
    /// Rows that no longer count (removed or replaced tweets); they stay in the graph, are
    /// filtered out of every search, and go at the next compaction.
    #[serde(default)]
    pub tombstones: usize,
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
        self.accepts_fields(t.date, t.is_reply, t.metrics.likes)
    }

    fn accepts_fields(&self, date: Option<NaiveDate>, is_reply: bool, likes: u64) -> bool {
        let date_ok = |bound: Option<NaiveDate>, ok: fn(NaiveDate, NaiveDate) -> bool| {
            bound.is_none_or(|b| date.is_some_and(|d| ok(d, b)))
        };
        date_ok(self.since, |d, b| d >= b)
            && date_ok(self.until, |d, b| d <= b)
            && !(self.no_replies && is_reply)
            && likes >= self.min_likes
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
    /// Every file row's tweet (tombstones included), parsed when asked for.
    table: Table,
    /// The live tweets, parsed, when a caller wants them all and there are tombstones.
    live: OnceLock<std::result::Result<Vec<Tweet>, String>>,
    /// Every file row's vector (tombstones included), mapped from `embeddings.npy`.
    vectors: crate::npy::Vectors,
    graph: Flat,
    lexical: Lexical,
    rows: Rows,
}

/// How the rows callers see (live tweets, numbered densely) map to rows of the generation's
/// files, which the graph and the lexical index use.
enum Rows {
    /// No tombstones: the two numberings are the same.
    All,
    Live {
        /// File row of each live row.
        file: Vec<usize>,
        /// Live row of each file row; `u32::MAX` for a tombstone.
        view: Vec<u32>,
    },
}

impl Rows {
    fn file(&self, row: usize) -> usize {
        match self {
            Rows::All => row,
            Rows::Live { file, .. } => file[row],
        }
    }

    fn view(&self, file_row: usize) -> Option<usize> {
        match self {
            Rows::All => Some(file_row),
            Rows::Live { view, .. } => view
                .get(file_row)
                .filter(|&&v| v != u32::MAX)
                .map(|&v| v as usize),
        }
    }
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

/// The store's manifest as plain JSON, if it parses at all: for the error paths that want
/// one field of it (which generation it names, which corpus it records) even from a
/// manifest [`read_manifest`] would refuse.
pub(crate) fn peek_manifest(dir: &Path) -> Option<serde_json::Value> {
    let bytes = fs::read(files::manifest_path(dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads just the manifest, to decide whether a store is stale without loading it.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    files::not_a_file(dir)?;
    let path = files::manifest_path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::store(
                dir,
                "no store here (manifest.json is missing)",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(Error::store(
                dir,
                "manifest.json is corrupt (not UTF-8 text)",
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

impl Store {
    /// Opens and verifies a store: manifest, checksums, shapes, then the graph.
    pub fn open(dir: &Path) -> Result<Store> {
        let g = Generation::read(dir)?;
        let corrupt = |msg: String| Error::store(dir, msg);
        let live = |dead: &[bool]| {
            (0..dead.len())
                .filter(|&r| !dead[r])
                .collect::<Vec<usize>>()
        };
        // Stores written before the lexical index existed get one in memory.
        let lexical = if g.has_lexical {
            Lexical::open(&g.dir.join(lexical::DIR))
        } else {
            let tweets = g.tweets(dir)?;
            let texts: Vec<(usize, String)> = live(&g.dead)
                .into_iter()
                .map(|r| (r, tweets[r].embedding_text()))
                .collect();
            lexical::build(texts.iter().map(|(r, t)| (*r, t.as_str())), None)
        }
        .map_err(corrupt)?;
        let graph = g.flat(dir)?;
        let Generation {
            manifest,
            table,
            vectors,
            dead,
            ..
        } = g;
        // Callers see only the live rows, renumbered densely; the graph, the lexical index,
        // the vectors and the tweet table keep file rows, translated at the edges.
        let rows = if manifest.tombstones == 0 {
            Rows::All
        } else {
            let file = live(&dead);
            let mut view = vec![u32::MAX; table.len()];
            for (v, &r) in file.iter().enumerate() {
                view[r] = v as u32;
            }
            Rows::Live { file, view }
        };
        Ok(Store {
            lexical,
            dir: dir.to_path_buf(),
            manifest,
            table,
            live: OnceLock::new(),
            vectors,
            graph,
            rows,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Live tweets in the store.
    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::All => self.table.len(),
            Rows::Live { file, .. } => file.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tweet of a row, parsed from its line of `tweets.jsonl`.
    pub fn tweet(&self, row: usize) -> Result<Tweet> {
        self.table
            .tweet(self.rows.file(row))
            .map_err(|m| Error::store(&self.dir, m))
    }

    /// The status id of a row, without parsing its tweet.
    pub fn id(&self, row: usize) -> u64 {
        self.table.id(self.rows.file(row))
    }

    /// Every live tweet, by row: parsed (on all cores) the first time it is asked for.
    pub fn tweets(&self) -> Result<&[Tweet]> {
        let all = match &self.rows {
            Rows::All => self.table.all(),
            Rows::Live { file, .. } => self
                .live
                .get_or_init(|| {
                    let all = self.table.all()?;
                    Ok(file.iter().map(|&f| all[f].clone()).collect())
                })
                .as_deref()
                .map_err(Clone::clone),
        };
        all.map_err(|m| Error::store(&self.dir, m))
    }

    /// Whether a row passes a filter, read from the table without parsing the tweet.
    pub(crate) fn passes(&self, filter: &Filter, row: usize) -> bool {
        let f = self.rows.file(row);
        filter.accepts_fields(
            self.table.date(f),
            self.table.is_reply(f),
            self.table.likes(f),
        )
    }

    pub fn dim(&self) -> usize {
        self.manifest.model.dim
    }

    /// Candidate list size of graph searches from now on (recall against speed); a store
    /// opens with the one recorded when it was built.
    pub fn set_ef_search(&mut self, ef: usize) {
        self.manifest.hnsw.ef_search = ef.max(1);
    }

    /// The row of a status id.
    pub fn row(&self, id: u64) -> Option<usize> {
        self.table.rows_of(id).find_map(|f| self.rows.view(f))
    }

    /// The rows of the self-thread `row` is part of ([`crate::corpus::threads`]), in posting
    /// order and `row` among them; just `row` when it stands alone. Removed parts are left out.
    pub fn thread(&self, row: usize) -> Vec<usize> {
        use crate::corpus::threads::MAX_THREAD;
        let mut first = self.rows.file(row);
        // Bounded walks: a damaged table cannot loop.
        for _ in 0..MAX_THREAD {
            match self.table.thread_links(first).0 {
                Some(p) => first = p,
                None => break,
            }
        }
        let mut parts = Vec::new();
        let mut at = Some(first);
        for _ in 0..2 * MAX_THREAD {
            let Some(f) = at else { break };
            parts.extend(self.rows.view(f));
            at = self.table.thread_links(f).1;
        }
        if !parts.contains(&row) {
            return vec![row];
        }
        parts
    }

    /// All vectors, row-major (`tweets().len() × dim()`); copied only when the store has
    /// tombstones to leave out.
    pub fn vectors(&self) -> std::borrow::Cow<'_, [f32]> {
        match self.rows {
            Rows::All => std::borrow::Cow::Borrowed(self.vectors.as_slice()),
            Rows::Live { .. } => (0..self.len())
                .flat_map(|r| self.vector(r).iter().copied())
                .collect(),
        }
    }

    pub fn vector(&self, row: usize) -> &[f32] {
        let (d, f) = (self.dim(), self.rows.file(row));
        &self.vectors[f * d..(f + 1) * d]
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
            return Ok(self.search_where(query, k, self.manifest.hnsw.ef_search, None));
        }
        let allowed = |row: usize| Some(row) != exclude && self.passes(filter, row);
        // Leaving out one tweet needs no count (a --tweet query on a million-tweet store).
        let count = if filter.is_empty() {
            self.len() - 1
        } else {
            (0..self.len()).filter(|&r| allowed(r)).count()
        };
        Ok(self.search_where(
            query,
            k,
            self.manifest.hnsw.ef_search,
            Some((&allowed, count)),
        ))
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
        // The lexical index holds only live rows, under their file numbers. Leaving out one
        // tweet is cheaper done on k + 1 hits than with a row set over every row.
        if filter.is_empty() {
            let mut hits: Vec<Hit> = self
                .lexical
                .search(text, k + usize::from(exclude.is_some()), None)
                .into_iter()
                .filter_map(|(f, score)| {
                    Some(Hit {
                        row: self.rows.view(f)?,
                        score,
                    })
                })
                .filter(|h| Some(h.row) != exclude)
                .collect();
            hits.truncate(k);
            return hits;
        }
        let among = std::sync::Arc::new(RowSet::new(self.table.len(), |f| {
            self.rows
                .view(f)
                .is_some_and(|r| Some(r) != exclude && self.passes(filter, r))
        }));
        self.lexical
            .search(text, k, Some(&among))
            .into_iter()
            .filter_map(|(f, score)| {
                Some(Hit {
                    row: self.rows.view(f)?,
                    score,
                })
            })
            .collect()
    }

    /// The lexical index, for explaining matches.
    pub fn lexical(&self) -> &Lexical {
        &self.lexical
    }

    /// The `k` nearest rows to `row` within `among` (never `row` itself), with a beam of at
    /// most [`NEIGHBORS_EF`]: callers ask for every row's neighbours.
    pub fn neighbors(&self, row: usize, k: usize, among: &RowSet) -> Vec<Hit> {
        let allowed = |r: usize| r != row && among.contains(r);
        let ef = self.manifest.hnsw.ef_search.min(NEIGHBORS_EF);
        // When most rows are in the set, an unfiltered walk for a few extra hits is cheaper
        // than a filtered one; fall back to the filtered walk when too few survive.
        if among.len() * 4 >= self.len() * 3 {
            let mut hits = self.search_where(self.vector(row), k + k / 2 + 2, ef, None);
            hits.retain(|h| allowed(h.row));
            if hits.len() >= k {
                hits.truncate(k);
                return hits;
            }
        }
        let count = among.len() - usize::from(among.contains(row));
        self.search_where(self.vector(row), k, ef, Some((&allowed, count)))
    }

    /// Graph search restricted to rows `allowed` accepts (`count` of them), falling back to an
    /// exact scan when the graph walk could come back short.
    fn search_where(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: Option<(&dyn Fn(usize) -> bool, usize)>,
    ) -> Vec<Hit> {
        let n = self.len();
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
        // The graph knows file rows: translate, and keep tombstones out.
        let in_graph = |f: usize| self.rows.view(f).is_some_and(|r| pred.is_none_or(|p| p(r)));
        let graph_pred: Option<&dyn Fn(usize) -> bool> = match (&self.rows, pred) {
            (Rows::All, None) => None,
            _ => Some(&in_graph),
        };
        let found = self
            .graph
            .search(&self.vectors, self.dim(), query, want, ef, graph_pred);
        if found.len() < want {
            return scan();
        }
        let mut hits: Vec<Hit> = found
            .into_iter()
            .filter_map(|(f, score)| {
                Some(Hit {
                    row: self.rows.view(f)?,
                    score,
                })
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
            Some(row) != exclude && self.passes(filter, row)
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
        let mut hits: Vec<Hit> = (0..self.len())
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
