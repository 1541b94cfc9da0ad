//! One error type for the whole library, so the binary can print any failure as a
//! single line and map it to an exit code.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A corpus file that cannot be read as tweets. `line` is 1-based; 0 means "the file".
    #[error("{}:{line}: {msg}", path.display())]
    Corpus {
        path: PathBuf,
        line: usize,
        msg: String,
    },

    /// No source could provide the model; `tried` lists each source and why it failed.
    #[error("model '{model}' not found: {}. Fix: run scripts/fetch-model.sh, or pass --model DIR with config.json, tokenizer.json and model.safetensors", tried.join("; "))]
    ModelNotFound { model: String, tried: Vec<String> },

    /// The model files exist but are unusable (bad config, wrong checksum, unsupported layout).
    #[error("model {}: {msg}", path.display())]
    Model { path: PathBuf, msg: String },

    /// Inference failed inside candle or the tokenizer.
    #[error("encoder: {0}")]
    Encoder(String),

    /// A store that cannot be used as it is: missing, corrupt, or built for something else.
    #[error("store {}: {msg}; rebuild with {}", dir.display(), corpus.rebuild_command(dir))]
    Store {
        dir: PathBuf,
        msg: String,
        corpus: BuiltFrom,
    },

    /// A request that cannot be answered (empty query, unknown id, k = 0, ...).
    #[error("{0}")]
    Invalid(String),

    /// A streaming `embed` that failed after committing some chunks: they stay on disk, and
    /// the user should know what a rerun does with them.
    #[error("{cause} ({rows} tweets embedded before this are kept in {}: the same command on the same input resumes from there; a changed input starts over)", partial.display())]
    Interrupted {
        cause: Box<Error>,
        rows: usize,
        partial: PathBuf,
    },

    /// The I/O error is part of the message (not a `source`), so a printed cause chain does
    /// not repeat it.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err,
        }
    }

    /// A store error whose rebuild hint names the corpus the store's manifest records, so
    /// following it does not rebuild a store of another corpus from the bundled one.
    pub fn store(dir: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        let dir = dir.into();
        Error::Store {
            corpus: BuiltFrom::recorded(&dir),
            dir,
            msg: msg.into(),
        }
    }

    pub(crate) fn encoder(e: impl std::fmt::Display) -> Self {
        Error::Encoder(e.to_string())
    }

    pub(crate) fn candle(e: candle_core::Error) -> Self {
        Error::Encoder(candle_message(&e))
    }
}

/// candle's message without the backtrace it attaches when RUST_BACKTRACE is set: a user needs
/// one line, not forty.
pub(crate) fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        other => other.to_string(),
    }
}

/// The corpus a store was built from, as far as its manifest still says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuiltFrom {
    Bundled,
    File(String),
    /// No readable manifest: the hint cannot say.
    Unknown,
}

impl BuiltFrom {
    /// Best effort, on the error path only: the manifest's `corpus.source`, if it parses.
    fn recorded(dir: &Path) -> BuiltFrom {
        let source = std::fs::read(dir.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|m| m["corpus"]["source"].as_str().map(str::to_string));
        match source {
            Some(s) if s == crate::corpus::BUNDLED_NAME => BuiltFrom::Bundled,
            Some(s) => BuiltFrom::File(s),
            None => BuiltFrom::Unknown,
        }
    }

    /// The command that rebuilds the store at `dir` from the same corpus.
    fn rebuild_command(&self, dir: &Path) -> String {
        let store = shell_word(&dir.display().to_string());
        match self {
            BuiltFrom::Bundled => format!("`tweetsim index --store {store}`"),
            BuiltFrom::File(path) => {
                format!(
                    "`tweetsim index --store {store} --corpus {}`",
                    shell_word(path)
                )
            }
            BuiltFrom::Unknown => format!(
                "`tweetsim index --store {store}`, plus `--corpus FILE` if it was built from a file"
            ),
        }
    }
}

/// `path` as one shell word: quoted when it holds anything a shell would split or expand.
fn shell_word(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c);
    if !path.is_empty() && path.chars().all(plain) {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}
