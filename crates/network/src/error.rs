//! The network crate's one error type; kinds map to the Docker API's status codes.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request the caller can fix (400).
    #[error("{0}")]
    InvalidParameter(String),
    /// The request conflicts with what exists (409), e.g. an exhausted address pool.
    #[error("{0}")]
    Conflict(String),
    /// Not allowed in the network's state (403), e.g. removing one with endpoints.
    #[error("{0}")]
    Forbidden(String),
    /// No such network (404).
    #[error("{0}")]
    NotFound(String),
    /// A kernel or file operation failed (500).
    #[error("{op}: {source}")]
    Io { op: String, source: std::io::Error },
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { op: op.into(), source }
    }

    pub fn path(op: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Io { op: format!("{op} {}", path.display()), source }
    }

    pub fn errno(op: impl Into<String>, e: nix::errno::Errno) -> Error {
        Error::Io { op: op.into(), source: std::io::Error::from(e) }
    }
}
