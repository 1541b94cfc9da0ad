//! Crash-safe file writes: write beside the target, fsync, rename over it, fsync the folder.
//! A reader (or a run after a crash) sees the old file or the new one, never a torn one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A temporary path next to `path`, unique to this process.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Replaces `path` with `bytes` atomically, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Writes several output files together: every replaced file is written and synced beside
/// its target before any is renamed into place, so a failure (an unwritable folder, a full
/// disk) leaves all the old files, not some new and some old. A symlink is written through;
/// a device or pipe (`/dev/stdout`, a FIFO) is written in place, never replaced by a file; a
/// folder, or two entries naming one file (however spelled), are refused before anything is
/// written.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut targets: Vec<(PathBuf, bool)> = Vec::with_capacity(files.len());
    for &(path, _) in files {
        let (target, in_place) = target_of(path)?;
        if targets.iter().any(|(t, _)| *t == target) {
            return Err(Error::Invalid(format!(
                "{} is given for two outputs",
                path.display()
            )));
        }
        targets.push((target, in_place));
    }
    let both = || files.iter().zip(&targets);
    // A failure anywhere below drops the staged files, which removes them.
    let staged = both()
        .filter(|(_, (_, in_place))| !in_place)
        .map(|(&(path, bytes), (target, _))| stage(path, target, |w| w.write_all(bytes)))
        .collect::<Result<Vec<Staged>>>()?;
    // Devices and pipes next: one that fails leaves every file as it was.
    for (&(path, bytes), (target, _)) in both().filter(|(_, (_, in_place))| *in_place) {
        write_in_place(path, target, |w| w.write_all(bytes))?;
    }
    staged.into_iter().try_for_each(Staged::commit)
}

/// Replaces `path` with what `write` produces, atomically (through a symlink; a device or
/// pipe is written in place, as [`write_all_atomic`] does).
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&File>) -> std::io::Result<()>,
) -> Result<()> {
    let (target, in_place) = target_of(path)?;
    if in_place {
        write_in_place(path, &target, write)
    } else {
        stage(path, &target, write)?.commit()
    }
}

/// Where a write to `path` really goes, and whether it goes there in place: a symlink is
/// followed, and a device or pipe (`/dev/null`, a FIFO) is written in place, never replaced by
/// a file. A folder is refused.
fn target_of(path: &Path) -> Result<(PathBuf, bool)> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| {
        let parent = fs::canonicalize(parent_of(path));
        match (parent, path.file_name()) {
            (Ok(dir), Some(name)) => dir.join(name),
            _ => path.to_path_buf(),
        }
    });
    let meta = fs::metadata(&target).ok();
    if meta.as_ref().is_some_and(fs::Metadata::is_dir) {
        return Err(Error::Invalid(format!("{} is a folder", path.display())));
    }
    let in_place = meta.is_some_and(|m| !m.is_file());
    Ok((target, in_place))
}

/// The folder `path` is in ("." for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A new version of a file, written and synced beside its target but not yet in place.
/// [`Staged::commit`] renames it over the target; dropping it uncommitted removes it.
struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    /// The path as the caller named it, for errors.
    path: PathBuf,
    committed: bool,
}

/// Writes what `write` produces beside `target` (the real file behind `path`), synced.
fn stage(
    path: &Path,
    target: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&File>) -> std::io::Result<()>,
) -> Result<Staged> {
    let parent = parent_of(target);
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    remove_stale_temps(target, parent);
    let staged = Staged {
        tmp: temp_path(target),
        target: target.to_path_buf(),
        path: path.to_path_buf(),
        committed: false,
    };
    let file = File::create(&staged.tmp).map_err(|e| Error::io(path, e))?;
    let mut w = std::io::BufWriter::new(&file);
    write(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| Error::io(path, e))?;
    drop(w);
    file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(staged)
}

impl Staged {
    fn commit(mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.target)
            .and_then(|()| sync_dir(parent_of(&self.target)))
            .map_err(|e| Error::io(&self.path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a device or pipe as it is (truncating what can be).
fn write_in_place(
    path: &Path,
    target: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&File>) -> std::io::Result<()>,
) -> Result<()> {
    let file = File::options()
        .write(true)
        .truncate(true)
        .open(target)
        .map_err(|e| Error::io(path, e))?;
    let mut w = std::io::BufWriter::new(&file);
    write(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| Error::io(path, e))
}

/// Removes the temporaries of `path` that killed runs left (their process is gone): an
/// interrupted write costs at most one stray file, until the next write to the same path.
fn remove_stale_temps(path: &Path, parent: &Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let pid = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !process_alive(p)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` still runs; where this cannot be told, it is taken to.
fn process_alive(pid: u32) -> bool {
    !cfg!(target_os = "linux") || Path::new(&format!("/proc/{pid}")).exists()
}

/// Size and hex xxh3-128 of a file, read in 1 MiB pieces (store files reach gigabytes).
pub fn xxh3_file(path: &Path) -> Result<(u64, String)> {
    use std::io::Read;
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let (mut buf, mut size) = (vec![0u8; 1 << 20], 0u64);
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok((size, format!("{:032x}", hasher.digest128())));
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
}

/// Like [`xxh3_file`] (same digest), hashing the file's mapped pages instead of copying
/// them out: for files nobody modifies once written (store generations), where a big store's
/// open is bound by this copy.
pub fn xxh3_immutable_file(path: &Path) -> Result<(u64, String)> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if size < 1 << 20 {
        return xxh3_file(path);
    }
    let map = map_immutable(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&map);
    Ok((map.len() as u64, format!("{:032x}", hasher.digest128())))
}

/// Memory-maps a file tweetsim never modifies in place: a store generation's files (written
/// once, then only read until removed) or model weights (replaced, never edited). The one
/// place the soundness of tweetsim's mappings rests on that.
pub fn map_immutable(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let file = File::open(path)?;
    // SAFETY: the bytes under the map do not change while it lives (see above).
    unsafe { memmap2::Mmap::map(&file) }
}

/// Part of a file as a slice of `T`s (bytes, little-endian words or floats): the file's pages,
/// read in place where this machine can take them as they are (aligned, little-endian), else
/// a decoded copy in memory; or built in memory to begin with. Opening a big store this way
/// copies nothing.
pub enum Contents<T> {
    Mapped {
        map: memmap2::Mmap,
        /// Byte offset of the first `T`.
        start: usize,
        /// Number of `T`s.
        len: usize,
    },
    Owned(Vec<T>),
}

impl<T: bytemuck::Pod> Contents<T> {
    /// `len` `T`s from byte `start` of `map`, which must hold them; `from_le` decodes one `T`
    /// from its little-endian bytes where they cannot be read in place.
    pub fn of(map: memmap2::Mmap, start: usize, len: usize, from_le: fn(&[u8]) -> T) -> Self {
        let size = std::mem::size_of::<T>();
        let bytes = &map[start..start + len * size];
        if cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, T>(bytes).is_ok() {
            return Contents::Mapped { map, start, len };
        }
        Contents::Owned(bytes.chunks_exact(size).map(from_le).collect())
    }

    pub fn as_slice(&self) -> &[T] {
        match self {
            // `of` checked that these bytes are aligned `T`s, and store files never change
            // under a map.
            Contents::Mapped { map, start, len } => {
                bytemuck::cast_slice(&map[*start..*start + *len * std::mem::size_of::<T>()])
            }
            Contents::Owned(v) => v,
        }
    }

    /// The contents in memory, to edit: a mapped file is copied first.
    pub fn make_owned(&mut self) -> &mut Vec<T> {
        if let Contents::Mapped { .. } = self {
            *self = Contents::Owned(self.as_slice().to_vec());
        }
        match self {
            Contents::Owned(v) => v,
            Contents::Mapped { .. } => unreachable!("just made owned"),
        }
    }

    pub fn into_vec(self) -> Vec<T> {
        match self {
            Contents::Owned(v) => v,
            mapped => mapped.as_slice().to_vec(),
        }
    }
}

impl<T: bytemuck::Pod> std::ops::Deref for Contents<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words at an aligned offset are read in place; one byte later they cannot be, and are
    /// decoded into the same values.
    #[test]
    fn contents_are_read_in_place_when_aligned_else_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("words");
        let words: Vec<u32> = (0..1000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let mut bytes = vec![0u8; 8];
        bytes.extend(words.iter().flat_map(|w| w.to_le_bytes()));
        bytes.push(0);
        fs::write(&path, &bytes).unwrap();
        let le = |c: &[u8]| u32::from_le_bytes(c.try_into().unwrap());

        let aligned = Contents::of(map_immutable(&path).unwrap(), 8, words.len(), le);
        assert_eq!(
            matches!(aligned, Contents::Mapped { .. }),
            cfg!(target_endian = "little")
        );
        assert_eq!(&*aligned, &words[..]);

        let shifted: Vec<u32> = (0..words.len())
            .map(|i| le(&bytes[9 + 4 * i..13 + 4 * i]))
            .collect();
        let mut odd = Contents::of(map_immutable(&path).unwrap(), 9, words.len(), le);
        assert!(matches!(odd, Contents::Owned(_)));
        assert_eq!(&*odd, &shifted[..]);
        odd.make_owned()[0] = 7;
        assert_eq!(odd.into_vec()[0], 7);
    }

    #[test]
    fn mapped_and_streamed_hashes_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let bytes: Vec<u8> = (0..3_000_017u32).map(|i| (i * 31 % 251) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            xxh3_immutable_file(&path).unwrap(),
            xxh3_file(&path).unwrap()
        );
    }

    /// Outputs written together: a failure on one leaves every old file and no temporary;
    /// one path given twice is refused before anything is written.
    #[test]
    fn files_written_together_land_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.md"), dir.path().join("b.html"));
        write_all_atomic(&[(&a, b"a1"), (&b, b"b1")]).unwrap();
        assert_eq!(
            (fs::read(&a).unwrap(), fs::read(&b).unwrap()),
            (b"a1".to_vec(), b"b1".to_vec())
        );
        // A folder where the second file should go: it cannot be created.
        let blocked = dir.path().join("blocked");
        fs::write(&blocked, b"a file").unwrap();
        let e = write_all_atomic(&[(&a, b"a2"), (&blocked.join("c.html"), b"c")]).unwrap_err();
        assert!(e.to_string().contains("blocked"), "{e}");
        assert_eq!(fs::read(&a).unwrap(), b"a1");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            3,
            "a temporary was left"
        );
        let e = write_all_atomic(&[(&a, b"x"), (&a, b"y")]).unwrap_err();
        assert!(e.to_string().contains("given for two outputs"), "{e}");
        // The same file spelled another way, and a folder: refused before anything is written.
        fs::create_dir(dir.path().join("sub")).unwrap();
        let other_spelling = dir.path().join("sub/../a.md");
        let e = write_all_atomic(&[(&a, b"a2"), (&other_spelling, b"y")]).unwrap_err();
        assert!(e.to_string().contains("given for two outputs"), "{e}");
        let folder = dir.path().join("d.html");
        fs::create_dir(&folder).unwrap();
        let e = write_all_atomic(&[(&a, b"a3"), (&folder, b"d")]).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
        assert_eq!(
            (fs::read(&a).unwrap(), fs::read(&b).unwrap()),
            (b"a1".to_vec(), b"b1".to_vec())
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            5,
            "a temporary was left"
        );
    }

    /// A symlink is written through, a pipe or device in place: neither becomes a file.
    #[cfg(unix)]
    #[test]
    fn links_and_devices_are_written_through_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.md");
        let link = dir.path().join("link.md");
        fs::write(&real, b"old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_all_atomic(&[(&link, b"new")]).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        let null = Path::new("/dev/null");
        write_all_atomic(&[(null, b"gone")]).unwrap();
        write_atomic(null, b"gone").unwrap();
        write_atomic(&link, b"newer").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"newer");
        assert!(
            !fs::metadata(null).unwrap().is_file(),
            "/dev/null was replaced"
        );
    }

    /// A temporary of a killed run goes at the next write; a running process's stays.
    #[test]
    fn the_next_write_removes_a_dead_runs_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        // Above Linux's largest pid (2^22): no such process.
        let dead = dir.path().join(".out.jsonl.tmp-4194305");
        let alive = dir.path().join(".out.jsonl.tmp-1");
        fs::write(&dead, b"half").unwrap();
        fs::write(&alive, b"half").unwrap();
        write_atomic(&p, b"whole").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"whole");
        assert_eq!(dead.exists(), !cfg!(target_os = "linux"));
        assert!(alive.exists());
    }

    #[test]
    fn replaces_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/f.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.txt");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("killed"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
