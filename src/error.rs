//! One error type for the whole library, so the binary can print any failure as a
//! single line and map it to an exit code.

use std::path::PathBuf;

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
    #[error("store {}: {msg}; rebuild with `tweetsim index --store {}`", dir.display(), dir.display())]
    Store { dir: PathBuf, msg: String },

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

    pub(crate) fn store(dir: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Store {
            dir: dir.into(),
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
