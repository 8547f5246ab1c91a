//! The image crate's one error type; kinds map to the HTTP codes Docker answers with.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the user (a malformed reference, a bad --change): 400.
    #[error("{0}")]
    InvalidArgument(String),

    /// No such image, blob or tag: 404.
    #[error("{0}")]
    NotFound(String),

    /// The operation conflicts with the store's state (image in use, tag exists): 409.
    #[error("{0}")]
    Conflict(String),

    /// Content does not match its digest or size: the data is refused and nothing is kept.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: String, actual: String },

    /// A layer or archive entry that would escape its target or is otherwise unsafe; the whole
    /// operation is aborted and its partial result removed.
    #[error("unsafe archive entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },

    /// A malformed manifest, config, index or archive.
    #[error("{0}")]
    Malformed(String),

    #[error("{step} {path}: {err}")]
    Io { step: String, path: PathBuf, err: std::io::Error },

    #[error("metadata store: {0}")]
    Store(String),
}

impl Error {
    pub fn io(step: impl Into<String>, path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io { step: step.into(), path: path.into(), err }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Error::InvalidArgument(_) | Error::UnsafeEntry { .. } | Error::Malformed(_) => 400,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            _ => 500,
        }
    }
}
