//! The HNSW graph (hnsw_rs) over unit vectors, and its files.
//!
//! hnsw_rs's reloaded graph borrows its loader (`Hnsw<'a>` from `&'a HnswIo`), so the two
//! are kept together in one self-referential cell.

use std::path::Path;

use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};

use super::flat::{self, Flat};
use crate::simd::dot;

/// Cosine distance for unit vectors: `1 − a·b`, clamped at 0.
///
/// hnsw_rs's `DistDot` computes the same but asserts the result is ≥ 0, which rounding
/// breaks for duplicate vectors (this corpus has 23 repeated tweets).
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// Graph shape and search effort. Recorded in the store manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HnswParams {
    /// Links per node (hnsw_rs's `max_nb_connection`).
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
}

impl Default for HnswParams {
    /// M = 16 and ef_construction = 200 are the usual choice for sentence embeddings.
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: DEFAULT_EF_SEARCH,
        }
    }
}

/// The search beam a store gets unless `index --ef-search` says otherwise. Synthetic tweets
/// come in groups of near-identical vectors that grow with the corpus, and a walk must score
/// most of a group to rank its best ten: on a million of them recall@10 is 0.974 at ef 64 and
/// crosses 0.99 only between ef 1024 and 1536 (0.995 at 2048, docs/performance.md). A query
/// at ef 2048 costs ~1.8 ms there (single thread, walks on codes), small beside a `similar`
/// process; in a store of fewer rows than the beam every row is visited. Bulk neighbour
/// queries (topics, duplicates) use a narrower beam ([`super::NEIGHBORS_EF`]).
pub const DEFAULT_EF_SEARCH: usize = 2048;

const MAX_LAYERS: usize = 16;
/// File base name inside a store generation: hnsw_rs writes `<base>.hnsw.graph` and `.hnsw.data`.
pub const BASENAME: &str = "graph";

type Loaded<'a> = Hnsw<'a, f32, UnitCosine>;

self_cell::self_cell!(
    struct Reloaded {
        owner: HnswIo,
        #[not_covariant]
        dependent: Loaded,
    }
);

/// A searchable graph whose data ids are matrix rows.
pub struct Graph(Reloaded);

/// Builds a graph over the rows of `vectors` (row-major, `dim` wide) and dumps it into `dir`.
/// Returns the file names written. Insertion is serial, so the graph is deterministic.
pub fn build_and_dump(
    vectors: &[f32],
    dim: usize,
    params: HnswParams,
    dir: &Path,
) -> Result<Vec<String>, String> {
    let n = vectors.len() / dim;
    let hnsw: Hnsw<f32, UnitCosine> = Hnsw::new(
        params.m,
        n.max(1),
        MAX_LAYERS,
        params.ef_construction,
        UnitCosine,
    );
    for (row, v) in vectors.chunks_exact(dim).enumerate() {
        hnsw.insert_slice((v, row));
    }
    dump(&hnsw, vectors, dim, None, dir)
}

/// Writes hnsw_rs's files (reloaded to extend the graph later) and the flat copy searches
/// read.
fn dump(
    hnsw: &Hnsw<f32, UnitCosine>,
    vectors: &[f32],
    dim: usize,
    previous: Option<&Flat>,
    dir: &Path,
) -> Result<Vec<String>, String> {
    let base = hnsw
        .file_dump(dir, BASENAME)
        .map_err(|e| format!("cannot write the HNSW graph: {e}"))?;
    if base != BASENAME {
        return Err(format!("hnsw_rs wrote '{base}' instead of '{BASENAME}'"));
    }
    let flat = dir.join(flat::FILE);
    Flat::from_hnsw(hnsw, vectors, dim, previous)?
        .write(&flat)
        .map_err(|e| format!("{}: {e}", flat.display()))?;
    let mut files = graph_files();
    files.push(flat::FILE.to_string());
    Ok(files)
}

/// The files hnsw_rs writes for [`BASENAME`] (not the flat copy, which older stores lack).
pub fn graph_files() -> Vec<String> {
    ["hnsw.graph", "hnsw.data"]
        .iter()
        .map(|ext| format!("{BASENAME}.{ext}"))
        .collect()
}

impl Graph {
    /// Reloads a dumped graph. The caller has already checked the files' checksums:
    /// hnsw_rs asserts (panics) on some malformed input.
    pub fn load(dir: &Path) -> Result<Graph, String> {
        let io = HnswIo::new(dir, BASENAME);
        Reloaded::try_new(io, |io| io.load_hnsw_with_dist(UnitCosine))
            .map(Graph)
            .map_err(|e| format!("cannot load the HNSW graph: {e}"))
    }

    pub fn len(&self) -> usize {
        self.0.with_dependent(|_, h| h.get_nb_point())
    }

    /// Inserts rows `from..` of `vectors` (the graph holds rows `..from`) and dumps the
    /// grown graph into `dir`: an update costs its new tweets, not a rebuild. `previous` is
    /// the flat copy of the graph before, if the store has one.
    pub fn extend_and_dump(
        &self,
        vectors: &[f32],
        dim: usize,
        from: usize,
        previous: Option<&Flat>,
        dir: &Path,
    ) -> Result<Vec<String>, String> {
        if self.len() != from {
            return Err(format!(
                "the graph holds {} points, not the {from} rows it is extended from",
                self.len()
            ));
        }
        self.0.with_dependent(|_, h| {
            for (i, v) in vectors.chunks_exact(dim).enumerate().skip(from) {
                h.insert_slice((v, i));
            }
            dump(h, vectors, dim, previous, dir)
        })
    }

    /// The flat copy of the links over `vectors`, for stores written before `graph.flat`
    /// existed.
    pub fn flat(&self, vectors: &[f32], dim: usize) -> Result<Flat, String> {
        self.0
            .with_dependent(|_, h| Flat::from_hnsw(h, vectors, dim, None))
    }

    #[cfg(test)]
    pub(super) fn with_hnsw<T>(&self, f: impl FnOnce(&Hnsw<f32, UnitCosine>) -> T) -> T {
        self.0.with_dependent(|_, h| f(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_do_not_panic_and_distance_is_never_negative() {
        let v = [0.6f32, 0.8, 0.0];
        assert_eq!(UnitCosine.eval(&v, &v), 0.0_f32.max(1.0 - dot(&v, &v)));
        assert!(UnitCosine.eval(&v, &v) >= 0.0);
        let dir = tempfile::tempdir().unwrap();
        let vectors: Vec<f32> = [v, v, [0.0, 0.0, 1.0], v].concat();
        build_and_dump(&vectors, 3, HnswParams::default(), dir.path()).unwrap();
        let g = Graph::load(dir.path()).unwrap();
        assert_eq!(g.len(), 4);
        let f = Flat::read(&dir.path().join(flat::FILE)).unwrap();
        assert_eq!(f.len(), 4);
        let hits = f.search(&vectors, 3, &[0.0, 0.0, 1.0], 1, 16, None);
        assert_eq!(hits[0].0, 2);
        let hits = f.search(&vectors, 3, &v, 4, 16, Some(&|row| row != 0 && row != 2));
        let mut rows: Vec<usize> = hits.iter().map(|h| h.0).collect();
        rows.sort();
        assert_eq!(rows, [1, 3]);
    }
}
