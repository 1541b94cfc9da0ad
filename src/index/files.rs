//! A generation's files: reading one back verified, and writing the next one beside it,
//! published by replacing `manifest.json`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::flat;
use super::graph;
use super::table::{self, Table};
use super::{lexical, read_manifest, CorpusInfo, FileSum, HnswParams, Manifest, FORMAT_VERSION};
use crate::corpus::{Tweet, EMBEDDING_TEXT_POLICY};
use crate::embed::ModelIdentity;
use crate::error::{Error, Result};
use crate::{fsutil, npy};

const MANIFEST: &str = "manifest.json";
const TWEETS: &str = table::JSONL;
const EMBEDDINGS: &str = "embeddings.npy";
/// Rows of the generation's files that no longer count (removed or replaced tweets): a JSON
/// array of row numbers, present only when there are some.
const TOMBSTONES: &str = "tombstones.json";

/// Everything in a generation, rows in file order, tombstoned rows included.
pub(super) struct Generation {
    pub manifest: Manifest,
    pub dir: PathBuf,
    pub table: Table,
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
        // Stores from before the table existed parse every tweet on open instead.
        if manifest.files.contains_key(table::IDX) {
            expected.push(table::IDX.to_string());
        }
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

        let (vectors, rows, dim) = npy::map(&gen_dir.join(EMBEDDINGS))?;
        if rows != manifest.tweets || dim != manifest.model.dim {
            return Err(corrupt(format!(
                "shapes disagree: manifest {} tweets × {} dims, {EMBEDDINGS} {rows} × {dim}",
                manifest.tweets, manifest.model.dim,
            )));
        }
        let table = Table::open(&gen_dir, rows).map_err(corrupt)?;
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
            table,
            vectors,
            dead,
            has_lexical,
            has_flat,
        })
    }

    /// Every row's tweet (parsed on first use).
    pub fn tweets(&self, store: &Path) -> Result<&[Tweet]> {
        self.table.all().map_err(|m| Error::store(store, m))
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
            self.hnsw(store)?
                .flat(self.vectors.as_slice(), self.manifest.model.dim)
        }
        .map_err(|m| Error::store(store, m))?;
        self.check_points(store, f.len())?;
        Ok(f)
    }

    /// A graph of this generation must hold one point per row.
    fn check_points(&self, store: &Path, points: usize) -> Result<()> {
        if points != self.table.len() {
            return Err(Error::store(
                store,
                format!("graph holds {points} points, store {}", self.table.len()),
            ));
        }
        Ok(())
    }
}

/// Checks the size and checksum of each named file of the current generation against the
/// manifest: hnsw_rs asserts (panics) on malformed input, so it never sees an unverified file.
///
/// A file whose checksum matched before and whose size, inode and change times are still
/// what they were then (kept in `checked.json`) is not hashed again: hashing the files of a
/// million-tweet store took longer than the search. Any write to a file changes its change
/// time, which no one can set back; [`verify_all`] hashes everything regardless.
fn verify(dir: &Path, manifest: &Manifest, names: &[String]) -> Result<()> {
    let gen_dir = dir.join(&manifest.generation);
    let mut checked = read_checked(&gen_dir);
    let mut learned = false;
    for name in names {
        let stat = check_file(dir, manifest, name, checked.get(name))?;
        if let Some(stat) = stat {
            checked.insert(name.clone(), stat);
            learned = true;
        }
    }
    if learned {
        // Only saves later opens some work: a reader that cannot write here goes on.
        let _ = write_checked(&gen_dir, &checked);
    }
    Ok(())
}

/// Hashes every file of the store's current generation, trusting no earlier check (`tweetsim
/// verify`). Returns how many files and bytes were checked.
pub fn verify_all(dir: &Path) -> Result<(usize, u64)> {
    let manifest = read_manifest(dir)?;
    let mut bytes = 0;
    for (name, sum) in &manifest.files {
        check_file(dir, &manifest, name, None)?;
        bytes += sum.size;
    }
    Ok((manifest.files.len(), bytes))
}

/// Checks one file against the manifest, unless `known` is still its stat; returns the stat
/// to remember when the file was hashed and has not changed for a while.
fn check_file(
    dir: &Path,
    manifest: &Manifest,
    name: &str,
    known: Option<&Stat>,
) -> Result<Option<Stat>> {
    let corrupt = |msg: String| Error::store(dir, msg);
    let want = manifest
        .files
        .get(name)
        .ok_or_else(|| corrupt(format!("manifest does not list {name}")))?;
    let path = dir.join(&manifest.generation).join(name);
    let missing = || corrupt(format!("{} is missing", path.display()));
    let before = Stat::of(&path).map_err(|_| missing())?;
    if before.size == want.size && known == Some(&before) {
        return Ok(None);
    }
    let got = checksum(&path).map_err(|_| missing())?;
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
    let after = Stat::of(&path).map_err(|_| missing())?;
    Ok((after == before && before.settled()).then_some(before))
}

/// Per file of a generation, its stat when its checksum last matched the manifest.
const CHECKED: &str = "checked.json";

type Checked = BTreeMap<String, Stat>;

/// Missing or unreadable: nothing is known, everything gets hashed.
fn read_checked(gen_dir: &Path) -> Checked {
    fs::read(gen_dir.join(CHECKED))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Replaces the file by rename; never creates the generation folder (a writer may have
/// removed it since this reader opened it).
fn write_checked(gen_dir: &Path, checked: &Checked) -> std::io::Result<()> {
    let path = gen_dir.join(CHECKED);
    let tmp = fsutil::temp_path(&path);
    fs::write(&tmp, serde_json::to_vec(checked)?)?;
    fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// What changes when a file's bytes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    size: u64,
    inode: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stat {
    #[cfg(unix)]
    fn of(path: &Path) -> std::io::Result<Stat> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path)?;
        Ok(Stat {
            size: m.len(),
            inode: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Elsewhere nothing is remembered: every open hashes.
    #[cfg(not(unix))]
    fn of(path: &Path) -> std::io::Result<Stat> {
        let m = fs::metadata(path)?;
        Ok(Stat {
            size: m.len(),
            inode: 0,
            mtime: (0, 0),
            ctime: (i64::MAX, 0),
        })
    }

    /// File times tick coarsely (a few ms): a file changed within the same tick as the
    /// check could keep its times. Only a file unchanged for two seconds is remembered.
    fn settled(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let changed = self.ctime.0 as i128 * 1_000_000_000 + self.ctime.1 as i128;
        now - changed >= 2_000_000_000
    }
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
    /// rows `from..` are inserted into it. No rebuild. `previous` is that generation's flat
    /// copy, whose extra links are carried over.
    Extend {
        vectors: &'a [f32],
        graph: &'a graph::Graph,
        previous: Option<&'a flat::Flat>,
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
    let unfinished = Unfinished {
        store: dir.to_path_buf(),
        generation: generation.clone(),
        kept: false,
    };
    let write = |name: &str, f: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| -> Result<()> {
        let path = gen_dir.join(name);
        let file = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = std::io::BufWriter::new(&file);
        f(&mut w)
            .and_then(|_| w.flush())
            .map_err(|e| Error::io(&path, e))
    };
    table::write(&gen_dir, next.tweets).map_err(|e| Error::io(gen_dir.join(TWEETS), e))?;
    let mut names = vec![
        TWEETS.to_string(),
        table::IDX.to_string(),
        EMBEDDINGS.to_string(),
    ];
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
            previous,
            from,
        } => {
            check_len(vectors, n, dim)?;
            write(EMBEDDINGS, &|w| npy::write(&mut NpyOut(w), vectors, n, dim))?;
            names.extend(
                graph
                    .extend_and_dump(vectors, dim, from, previous, &gen_dir)
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
    let mut checked = Checked::new();
    for name in &names {
        let path = gen_dir.join(name);
        fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        let before = Stat::of(&path).map_err(|e| Error::io(&path, e))?;
        files.insert(name.clone(), checksum(&path)?);
        if before.settled() && Stat::of(&path).is_ok_and(|after| after == before) {
            checked.insert(name.clone(), before);
        }
    }
    let _ = write_checked(&gen_dir, &checked);
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
    unfinished.keep();

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

/// A generation being written: removed if the commit fails before the manifest names it,
/// so a failed build (disk full, a bad file) leaves no folder behind. A killed build's
/// folder is removed by the next commit.
struct Unfinished {
    store: PathBuf,
    generation: String,
    kept: bool,
}

impl Unfinished {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        // The manifest swap can fail after its rename (syncing the folder): then the manifest
        // names this generation, and removing it would break the store.
        let named = || {
            super::peek_manifest(&self.store)
                .is_some_and(|m| m["generation"] == self.generation.as_str())
        };
        if !self.kept && !named() {
            let _ = fs::remove_dir_all(self.store.join(&self.generation));
        }
    }
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

/// Refuses a store path that names a file (a corpus given as `--store`, say).
pub(super) fn not_a_file(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is a file; a store is a folder (give --store a folder path)",
            dir.display()
        )));
    }
    Ok(())
}

/// Takes the store's writer lock, waiting (with a note) while another writer holds it.
pub(super) fn lock(dir: &Path) -> Result<fs::File> {
    not_a_file(dir)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_generation_is_removed_unless_kept_or_named() {
        let dir = tempfile::tempdir().unwrap();
        let unfinished = |generation: &str| Unfinished {
            store: dir.path().to_path_buf(),
            generation: generation.to_string(),
            kept: false,
        };
        for g in ["gen-failed", "gen-kept", "gen-named"] {
            fs::create_dir(dir.path().join(g)).unwrap();
        }
        // A manifest naming gen-named, as when the swap's rename landed but its sync failed.
        fs::write(
            manifest_path(dir.path()),
            r#"{"format_version": 1, "generation": "gen-named"}"#,
        )
        .unwrap();

        drop(unfinished("gen-failed"));
        unfinished("gen-kept").keep();
        drop(unfinished("gen-named"));
        assert!(!dir.path().join("gen-failed").exists());
        assert!(dir.path().join("gen-kept").exists());
        assert!(dir.path().join("gen-named").exists());
    }
}
