//! berth-spec's error: bad input (Docker's 400s, with Docker's wording where Docker has one),
//! features not implemented yet, and host failures.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request asks for something invalid — or something Berth does not implement yet
    /// (named volumes, device requests), said so in the message; the message is Docker's where
    /// Docker has one (the server answers 400 with it).
    #[error("{0}")]
    InvalidParameter(String),

    /// Reading something on the host failed (a device node, the rootfs's /etc/passwd, ...).
    #[error("{step} {path}: {err}")]
    Io { step: String, path: PathBuf, err: std::io::Error },
}

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidParameter(msg.into())
    }

    pub(crate) fn io(step: impl Into<String>, path: impl Into<PathBuf>, err: std::io::Error) -> Error {
        Error::Io { step: step.into(), path: path.into(), err }
    }
}
