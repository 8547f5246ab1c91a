//! The engine's one error type. Each kind maps to the HTTP status Docker answers with.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// Not allowed in the current state (403).
    #[error("{0}")]
    Forbidden(String),
    /// The operation had nothing to do (start of a running container): HTTP 304.
    #[error("{0}")]
    NotModified(String),
    #[error("{0}")]
    Image(#[from] berth_image::Error),
    #[error("{0}")]
    Spec(#[from] berth_spec::Error),
    #[error("{0}")]
    Runtime(#[from] berth_runtime::Error),
    #[error("{0}")]
    Monitor(#[from] berth_monitor::Error),
    #[error("{0}")]
    Network(#[from] berth_network::Error),
    #[error("{0}")]
    Registry(#[from] berth_registry::Error),
    #[error("state store: {0}")]
    Store(String),
    #[error("{step} {path}: {err}")]
    Io { step: &'static str, path: PathBuf, err: std::io::Error },
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(step: &'static str, path: impl Into<PathBuf>, err: std::io::Error) -> Error {
        Error::Io { step, path: path.into(), err }
    }

    pub fn no_such_container(id: &str) -> Error {
        Error::NotFound(format!("No such container: {id}"))
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::InvalidParameter(_) => 400,
            Error::NotModified(_) => 304,
            Error::Image(e) => e.http_status(),
            Error::Registry(e) => e.http_status(),
            Error::Runtime(e) => e.http_status(),
            Error::Spec(berth_spec::Error::InvalidParameter(_)) => 400,
            Error::Network(berth_network::Error::InvalidParameter(_)) => 400,
            Error::Network(berth_network::Error::Conflict(_)) => 409,
            Error::Network(berth_network::Error::Forbidden(_)) => 403,
            Error::Network(berth_network::Error::NotFound(_)) => 404,
            Error::Forbidden(_) => 403,
            _ => 500,
        }
    }
}

macro_rules! store_err {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Store(e.to_string())
            }
        }
    )*};
}
store_err!(redb::Error, redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError, serde_json::Error);
