//! A generation's files: reading one back verified, and writing the next one beside it,
//! published by replacing `manifest.json`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::flat;
use super::graph;
use super::{lexical, read_manifest, CorpusInfo, FileSum, HnswParams, Manifest, FORMAT_VERSION};
use crate::corpus::{Tweet, EMBEDDING_TEXT_POLICY};
use crate::embed::ModelIdentity;
use crate::error::{Error, Result};
use crate::{fsutil, npy};

const MANIFEST: &str = "manifest.json";
const TWEETS: &str = "tweets.jsonl";
const EMBEDDINGS: &str = "embeddings.npy";
/// Rows of the generation's files that no longer count (removed or replaced tweets): a JSON
/// array of row numbers, present only when there are some.
const TOMBSTONES: &str = "tombstones.json";

/// Everything in a generation, rows in file order, tombstoned rows included.
pub(super) struct Generation {
    pub manifest: Manifest,
    pub dir: PathBuf,
    pub tweets: Vec<Tweet>,
    pub vectors: npy::Vectors,
    /// One flag per row.
    pub dead: Vec<bool>,
    /// Whether a lexical index and a flat graph were written with it (stores from before
    /// they existed have neither).
    pub has_lexical: bool,
    pub has_flat: bool,
}

impl Generation {
    /// Reads the current generation of the store in `dir`: manifest, checksums, shapes,
    /// tombstones, then the graph.
    pub fn read(dir: &Path) -> Result<Generation> {
        let manifest = read_manifest(dir)?;
        let gen_dir = dir.join(&manifest.generation);
        let corrupt = |msg: String| Error::store(dir, msg);
        let lexical_prefix = format!("{}/", lexical::DIR);
        // hnsw_rs's files are verified when an update loads them (`hnsw`), not on every open.
        let mut expected = vec![TWEETS.to_string(), EMBEDDINGS.to_string()];
        if !manifest.files.contains_key(flat::FILE) {
            expected.extend(graph::graph_files());
        }
        expected.extend(
            manifest
                .files
                .keys()
                .filter(|k| k.starts_with(&lexical_prefix))
                .cloned(),
        );
        if manifest.tombstones > 0 {
            expected.push(TOMBSTONES.to_string());
        }
        let has_flat = manifest.files.contains_key(flat::FILE);
        if has_flat {
            expected.push(flat::FILE.to_string());
        }
        verify(dir, &manifest, &expected)?;

        let tweets = read_tweets(&gen_dir.join(TWEETS)).map_err(corrupt)?;
        let (vectors, rows, dim) = npy::map(&gen_dir.join(EMBEDDINGS))?;
        if rows != manifest.tweets || tweets.len() != rows || dim != manifest.model.dim {
            return Err(corrupt(format!(
                "shapes disagree: manifest {} tweets × {} dims, {TWEETS} {} tweets, {EMBEDDINGS} {rows} × {dim}",
                manifest.tweets,
                manifest.model.dim,
                tweets.len()
            )));
        }
        let mut dead = vec![false; rows];
        if manifest.tombstones > 0 {
            let path = gen_dir.join(TOMBSTONES);
            let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let list: Vec<usize> = serde_json::from_str(&text)
                .map_err(|e| corrupt(format!("{TOMBSTONES} is corrupt ({e})")))?;
            for &row in &list {
                match dead.get_mut(row) {
                    Some(d) if !*d => *d = true,
                    _ => {
                        return Err(corrupt(format!(
                            "{TOMBSTONES} names row {row} twice or outside the {rows} rows"
                        )))
                    }
                }
            }
            if list.len() != manifest.tombstones {
                return Err(corrupt(format!(
                    "{TOMBSTONES} holds {} rows, the manifest says {}",
                    list.len(),
                    manifest.tombstones
                )));
            }
        }
        let has_lexical = manifest
            .files
            .keys()
            .any(|k| k.starts_with(&lexical_prefix));
        Ok(Generation {
            manifest,
            dir: gen_dir,
            tweets,
            vectors,
            dead,
            has_lexical,
            has_flat,
        })
    }

    /// Whether hnsw_rs's files are intact, so a next generation may link them.
    pub fn hnsw_intact(&self, store: &Path) -> bool {
        verify(store, &self.manifest, &graph::graph_files()).is_ok()
    }

    /// hnsw_rs's graph of this generation, to extend it.
    pub fn hnsw(&self, store: &Path) -> Result<graph::Graph> {
        verify(store, &self.manifest, &graph::graph_files())?;
        let g = graph::Graph::load(&self.dir).map_err(|m| Error::store(store, m))?;
        self.check_points(store, g.len())?;
        Ok(g)
    }

    /// The graph searches walk: `graph.flat`, or (older stores) a copy of hnsw_rs's links.
    pub fn flat(&self, store: &Path) -> Result<flat::Flat> {
        let f = if self.has_flat {
            flat::Flat::read(&self.dir.join(flat::FILE))
        } else {
            self.hnsw(store)?.flat()
        }
        .map_err(|m| Error::store(store, m))?;
        self.check_points(store, f.len())?;
        Ok(f)
    }

    /// A graph of this generation must hold one point per row.
    fn check_points(&self, store: &Path, points: usize) -> Result<()> {
        if points != self.tweets.len() {
            return Err(Error::store(
                store,
                format!("graph holds {points} points, store {}", self.tweets.len()),
            ));
        }
        Ok(())
    }
}

/// Parses `tweets.jsonl`, mapped and on all cores: at a million tweets this is most of the
/// time a store takes to open.
fn read_tweets(path: &Path) -> std::result::Result<Vec<Tweet>, String> {
    use rayon::prelude::*;
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: generation files are never modified once written.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("{}: {e}", path.display()))?;
    let body = map.strip_suffix(b"\n").unwrap_or(&map);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    lines
        .par_iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_slice(l.strip_suffix(b"\r").unwrap_or(l))
                .map_err(|e| format!("{TWEETS}:{}: {e}", i + 1))
        })
        .collect()
}

/// Checks the size and checksum of each named file of the current generation against the
/// manifest: hnsw_rs asserts (panics) on malformed input, so it never sees an unverified file.
fn verify(dir: &Path, manifest: &Manifest, names: &[String]) -> Result<()> {
    let gen_dir = dir.join(&manifest.generation);
    let corrupt = |msg: String| Error::store(dir, msg);
    for name in names {
        let want = manifest
            .files
            .get(name)
            .ok_or_else(|| corrupt(format!("manifest does not list {name}")))?;
        let path = gen_dir.join(name);
        let got = checksum(&path).map_err(|_| corrupt(format!("{} is missing", path.display())))?;
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
    Ok(())
}

/// What the next generation holds.
pub(super) struct Next<'a> {
    /// Every row, tombstoned ones included, in file order.
    pub tweets: &'a [Tweet],
    pub dead: &'a [bool],
    pub vectors: Source<'a>,
    pub corpus: CorpusInfo,
    pub model: &'a ModelIdentity,
    pub params: HnswParams,
}

/// Where the next generation's vectors and graph come from.
pub(super) enum Source<'a> {
    /// These rows, inserted one by one into a new graph.
    Build(&'a [f32]),
    /// These rows, of which `..from` are already in `graph` (the previous generation's):
    /// rows `from..` are inserted into it. No rebuild.
    Extend {
        vectors: &'a [f32],
        graph: &'a graph::Graph,
        from: usize,
    },
    /// The previous generation's, unchanged: its files are linked, not rewritten.
    Same(&'a Generation),
}

/// Writes a new generation, then points the manifest at it (the atomic step), then removes
/// generations no reader can still be using. The caller holds the lock.
pub(super) fn commit(dir: &Path, previous: Option<&str>, next: Next) -> Result<()> {
    let (n, dim) = (next.tweets.len(), next.model.dim);
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
        for t in next.tweets {
            serde_json::to_writer(&mut *w, t)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    let mut names = vec![TWEETS.to_string(), EMBEDDINGS.to_string()];
    let store_err = |m: String| Error::store(dir, m);
    match next.vectors {
        Source::Build(v) => {
            check_len(v, n, dim)?;
            write(EMBEDDINGS, &|w| npy::write(&mut NpyOut(w), v, n, dim))?;
            names.extend(graph::build_and_dump(v, dim, next.params, &gen_dir).map_err(store_err)?);
        }
        Source::Extend {
            vectors,
            graph,
            from,
        } => {
            check_len(vectors, n, dim)?;
            write(EMBEDDINGS, &|w| npy::write(&mut NpyOut(w), vectors, n, dim))?;
            names.extend(
                graph
                    .extend_and_dump(vectors, dim, from, &gen_dir)
                    .map_err(store_err)?,
            );
        }
        Source::Same(prev) => {
            let mut same = graph::graph_files();
            same.push(EMBEDDINGS.to_string());
            for name in &same {
                link_or_copy(&prev.dir.join(name), &gen_dir.join(name))?;
            }
            names.extend(same.into_iter().filter(|n| n != EMBEDDINGS));
            let flat = gen_dir.join(flat::FILE);
            if prev.has_flat {
                link_or_copy(&prev.dir.join(flat::FILE), &flat)?;
            } else {
                prev.flat(dir)?
                    .write(&flat)
                    .map_err(|e| Error::io(&flat, e))?;
            }
            names.push(flat::FILE.to_string());
        }
    }
    let dead_rows: Vec<usize> = (0..n).filter(|&r| next.dead[r]).collect();
    if !dead_rows.is_empty() {
        write(TOMBSTONES, &|w| {
            serde_json::to_writer(&mut *w, &dead_rows)?;
            Ok(())
        })?;
        names.push(TOMBSTONES.to_string());
    }
    // BM25 over the live rows only, so its statistics are those of a fresh build.
    let texts: Vec<(usize, String)> = (0..n)
        .filter(|&r| !next.dead[r])
        .map(|r| (r, next.tweets[r].embedding_text()))
        .collect();
    let lex_dir = gen_dir.join(lexical::DIR);
    lexical::build(texts.iter().map(|(r, t)| (*r, t.as_str())), Some(&lex_dir))
        .map_err(store_err)?;
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
        model: next.model.clone(),
        embedding_text: EMBEDDING_TEXT_POLICY.to_string(),
        corpus: next.corpus,
        tweets: n,
        tombstones: dead_rows.len(),
        hnsw: next.params,
        files,
    };
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::store(dir, e.to_string()))?;
    fsutil::write_atomic(&dir.join(MANIFEST), &json)?;

    // Keep the previous generation for readers that opened it a moment ago; drop the rest
    // (older ones and leftovers of killed builds).
    let keep = [Some(generation.as_str()), previous];
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

fn check_len(vectors: &[f32], n: usize, dim: usize) -> Result<()> {
    if vectors.len() != n * dim {
        return Err(Error::Invalid(format!(
            "{} vector values for {n} tweets of dimension {dim}: expected {}",
            vectors.len(),
            n * dim
        )));
    }
    Ok(())
}

/// Generation files are never modified after they are written, so two generations may share
/// them; copy where the file system cannot link.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to).map(|_| ()).map_err(|e| Error::io(to, e))
}

pub(super) fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST)
}

fn checksum(path: &Path) -> Result<FileSum> {
    let (size, xxh3) = fsutil::xxh3_immutable_file(path)?;
    Ok(FileSum { size, xxh3 })
}

/// Takes the store's writer lock, waiting (with a note) while another writer holds it.
pub(super) fn lock(dir: &Path) -> Result<fs::File> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
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
