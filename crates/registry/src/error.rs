//! The registry crate's one error type; kinds map to the HTTP codes dockerd answers with.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad reference, platform or auth header from the caller: 400.
    #[error("{0}")]
    InvalidArgument(String),
    /// The registry has no such repository, tag or manifest: 404.
    #[error("{0}")]
    NotFound(String),
    /// The registry refused the credentials: 401.
    #[error("{0}")]
    Unauthorized(String),
    /// The registry could not be reached or answered what the spec does not allow: 500.
    #[error("{0}")]
    Registry(String),
    /// The image store failed (digest mismatch, disk): as the store says.
    #[error("{0}")]
    Image(#[from] berth_image::Error),
}

impl Error {
    pub fn http_status(&self) -> u16 {
        match self {
            Error::InvalidArgument(_) => 400,
            Error::NotFound(_) => 404,
            Error::Unauthorized(_) => 401,
            Error::Registry(_) => 500,
            Error::Image(e) => e.http_status(),
        }
    }
}
