//! The core's one error type. Each kind is one a caller can act on: fix a setting, fix or replace a
//! file, lower the learning rate, resume from the checkpoint that was kept.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of range or settings contradict each other.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A checkpoint (or metrics log) that cannot be read or does not fit.
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    /// Unreadable or malformed data; names the file.
    #[error(transparent)]
    Data(#[from] leoclr_data::DataError),
    /// Reading or writing a file of a run failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The loss stopped being a number.
    #[error("training diverged: loss {loss} at step {step} (learning rate {lr:.4} too high?)")]
    Diverged { step: usize, loss: f32, lr: f64 },
    /// A run stopped by an error after at least one checkpoint was written.
    #[error("{cause}; the last checkpoint, {checkpoint}, is kept")]
    Interrupted {
        cause: Box<Error>,
        checkpoint: PathBuf,
    },
    /// A new run aimed at a directory that already holds one.
    #[error(
        "{dir} already holds a run: continue it with --resume {dir}, replace it with --overwrite, or choose another --out"
    )]
    RunExists { dir: PathBuf },
    /// Another process trains in this run directory.
    #[error(
        "{dir} is in use by another training process (pid {pid}); wait for it or choose another --out"
    )]
    Busy { dir: PathBuf, pid: String },
    /// The compute backend failed (a read-back, a device that cannot be made).
    #[error("{0}")]
    Backend(String),
    /// An embedding index (index.json, metadata.tsv, features, HNSW graph) that cannot be read or
    /// does not fit.
    #[error("{path}: {message}")]
    Index { path: PathBuf, message: String },
    /// A command declined to write where it was told: the path would replace an input, a file of
    /// another kind, or something that exists without `--overwrite` (see `destination`).
    #[error("{path}: {message}")]
    Refused { path: PathBuf, message: String },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn index(path: &Path, message: impl Into<String>) -> Self {
        Self::Index {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub fn checkpoint(path: &Path, message: impl Into<String>) -> Self {
        Self::Checkpoint {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
