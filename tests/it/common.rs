//! Shared fixtures: the encoder and a store of the bundled corpus, each built once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use tweetsim::corpus::Corpus;
use tweetsim::embed::{Encoder, Resolver, DEFAULT_MODEL};
use tweetsim::index::{self, HnswParams};

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn data(rel: &str) -> PathBuf {
    repo().join("tests/data").join(rel)
}

/// The real all-MiniLM-L6-v2, shared by the tests that only embed.
pub fn encoder() -> &'static Encoder {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    ENCODER.get_or_init(load_encoder)
}

/// A new encoder instance, found (or fetched) the way the binary does.
pub fn load_encoder() -> Encoder {
    // One resolution at a time: the first may fetch the model into models/.
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let files = Resolver::from_env(Some(repo().join("models")))
        .resolve(DEFAULT_MODEL)
        .expect("the model resolves (fetched into models/ on first use)");
    Encoder::load(&files).expect("the model loads")
}

/// A store of the bundled corpus, built once per test run; tests only read it.
pub fn bundled_store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("tweetsim-it-store")
            .tempdir()
            .unwrap()
            .keep();
        index::build(
            &dir,
            &Corpus::bundled(),
            encoder(),
            HnswParams::default(),
            |_, _| {},
        )
        .unwrap();
        dir
    })
}

/// A private copy of the shared bundled store, which a test may damage: (its temp dir, the
/// copied generation folder).
pub fn store_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = bundled_store();
    let m = index::read_manifest(src).unwrap();
    let dst = dir.path().join("store");
    for f in m.files.keys() {
        let to = dst.join(&m.generation).join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(&m.generation).join(f), to).unwrap();
    }
    std::fs::copy(src.join("manifest.json"), dst.join("manifest.json")).unwrap();
    let gen = dst.join(&m.generation);
    (dir, gen)
}

/// The `tweetsim` binary, pointed at the repo's models and an isolated cache.
pub fn tweetsim() -> Command {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().unwrap().keep());
    let mut c = Command::new(env!("CARGO_BIN_EXE_tweetsim"));
    c.env("TWEETSIM_MODELS_DIR", repo().join("models"))
        .env("XDG_CACHE_HOME", cache)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("TWEETSIM_STORE")
        .env_remove("TWEETSIM_CORPUS")
        .env_remove("TWEETSIM_MODEL");
    c
}

/// Runs `tweetsim args...`: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = tweetsim().args(args).output().expect("tweetsim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A failing run: exit code ≠ 0, exactly one `error:` line on stderr (notes may precede
/// it), no panic. Returns that line.
pub fn fails(args: &[&str]) -> String {
    one_error(args, run(args))
}

/// The one `error:` line of a failed run's (exit code, stdout, stderr), checked as
/// [`fails`] does.
pub fn one_error(args: &[&str], (code, out, err): (i32, String, String)) -> String {
    assert_ne!(code, 0, "{args:?} succeeded: {out}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{args:?}: {err}");
    errors[0].to_string()
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[derive(Deserialize)]
pub struct RefText {
    pub num: usize,
    pub id: String,
    pub text: String,
}

/// The 680 texts sentence-transformers embedded, raw (entities not decoded).
pub fn reference_texts() -> Vec<RefText> {
    let s = std::fs::read_to_string(data("reference/minilm-tweets-texts.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Writes tweets as JSON Lines, the format users bring their own corpora in.
pub fn write_jsonl(path: &Path, tweets: &[tweetsim::corpus::Tweet]) {
    let mut s = String::new();
    for t in tweets {
        let v = serde_json::json!({
            "id": t.id.to_string(), "text": t.text, "date": t.date.map(|d| d.to_string()),
            "author": t.author, "likes": t.metrics.likes, "retweets": t.metrics.retweets,
            "replies": t.metrics.replies, "quotes": t.metrics.quotes, "views": t.metrics.views,
            "bookmarks": t.metrics.bookmarks, "is_reply": t.is_reply, "url": t.url,
            "translation": t.translation,
        });
        s.push_str(&v.to_string());
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}
