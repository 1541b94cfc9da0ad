//! One error type for the whole library, so the binary can print any failure as a
//! single line and map it to an exit code.

use std::path::{Path, PathBuf};

use crate::corpus::Format;

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

    /// `tweetsim serve` could not start or stopped: the address is taken, the runtime or a
    /// thread could not be created.
    #[error("server: {0}")]
    Server(String),

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

    /// A store error met while building from `corpus`: its rebuild hint names that corpus,
    /// not the one the store's manifest recorded before.
    pub(crate) fn building_from(self, corpus: &crate::corpus::Corpus) -> Self {
        match self {
            Error::Store { dir, msg, .. } => Error::Store {
                dir,
                msg,
                corpus: BuiltFrom::corpus(&corpus.source, corpus.format),
            },
            other => other,
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
    /// A corpus file, and the format it was read as.
    File {
        path: String,
        format: Format,
    },
    /// No readable manifest: the hint cannot say.
    Unknown,
}

impl BuiltFrom {
    /// The corpus a build was reading.
    pub(crate) fn corpus(source: &str, format: Format) -> BuiltFrom {
        if source == crate::corpus::BUNDLED_NAME {
            BuiltFrom::Bundled
        } else {
            BuiltFrom::File {
                path: source.to_string(),
                format,
            }
        }
    }

    /// Best effort, on the error path only: the manifest's corpus, if it parses.
    fn recorded(dir: &Path) -> BuiltFrom {
        let manifest = crate::index::peek_manifest(dir);
        let corpus = manifest.as_ref().and_then(|m| {
            let source = m["corpus"]["source"].as_str()?;
            let format = serde_json::from_value(m["corpus"]["format"].clone()).ok()?;
            Some(BuiltFrom::corpus(source, format))
        });
        corpus.unwrap_or(BuiltFrom::Unknown)
    }

    /// The command that rebuilds the store at `dir` from the same corpus (with `--format`
    /// where the file's extension would not choose the format it was read as).
    fn rebuild_command(&self, dir: &Path) -> String {
        let store = shell_word(&dir.display().to_string());
        match self {
            BuiltFrom::Bundled => format!("`tweetsim index --store {store}`"),
            BuiltFrom::File { path, format } => {
                let by_extension = Format::from_path(Path::new(path)).ok();
                let format = if by_extension == Some(*format) {
                    String::new()
                } else {
                    format!(" --format {format}")
                };
                format!(
                    "`tweetsim index --store {store} --corpus {}{format}`",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;

    /// Building from a new corpus, the hint names it, not the one the manifest recorded.
    #[test]
    fn the_rebuild_hint_follows_the_corpus_being_built() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = r#"{"corpus": {"source": "/data/old.jsonl", "format": "jsonl"}}"#;
        std::fs::write(dir.path().join("manifest.json"), manifest).unwrap();
        let recorded = Error::store(dir.path(), "broken").to_string();
        assert!(
            recorded.ends_with("--corpus /data/old.jsonl`"),
            "{recorded}"
        );

        let text = r#"{"id": "1", "text": "hello"}"#;
        let new = Corpus::parse(Path::new("/data/new tweets.txt"), text, Format::Jsonl).unwrap();
        let building = Error::store(dir.path(), "broken").building_from(&new);
        let hint = building.to_string();
        assert!(
            hint.ends_with("--corpus '/data/new tweets.txt' --format jsonl`"),
            "{hint}"
        );
    }
}
