//! The runtime's one error type. Every variant says which step failed and why, so that
//! `berth-runc` (and later the engine) can report it verbatim and map it to an HTTP code.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle or the spec asks for something invalid or unsupported; nothing was changed.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),

    /// A request that is well formed but cannot be honoured on this host (e.g. a capability the
    /// caller's bounding set lacks, an rlimit above the inherited hard limit).
    #[error("{0}")]
    NotPermitted(String),

    #[error("container {0} does not exist")]
    NotFound(String),

    #[error("container {0} already exists")]
    AlreadyExists(String),

    /// The container has no live process (containerd matches the words "container not running").
    #[error("cannot signal container {0}: container not running")]
    NotRunning(String),

    /// The container is in the wrong state for the operation (Docker's 409).
    #[error("container {id} is {status}: cannot {op}")]
    WrongState { id: String, status: String, op: String },

    /// A system call failed: `step` names what was being done, e.g.
    /// `mount proc on /run/x/rootfs/proc`.
    #[error("{step}: {errno}")]
    Sys { step: String, errno: nix::errno::Errno },

    // `err` is not marked as the error's source: the message already includes it, and a
    // source would make `{:#}` chains print it twice.
    #[error("{step} {path}: {err}")]
    Io { step: String, path: PathBuf, err: std::io::Error },

    #[error("cgroup: {0}")]
    Cgroup(String),

    #[error("seccomp: {0}")]
    Seccomp(String),

    #[error("hook {kind} {path}: {reason}")]
    Hook { kind: String, path: String, reason: String },

    /// An error reported by the container's init process during setup, relayed to the caller.
    /// (The relayed text may itself be an Init error: one prefix is enough.)
    #[error("container init: {}", .0.strip_prefix("container init: ").unwrap_or(.0))]
    Init(String),

    /// Several independent cleanup steps failed; all are reported.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Multiple(Vec<Error>),
}

impl Error {
    pub fn sys(step: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::Sys { step: step.into(), errno }
    }

    pub fn io(step: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { step: step.into(), path: path.into(), err: source }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidSpec(msg.into())
    }

    /// The HTTP status Docker would answer for this kind of failure.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::InvalidSpec(_) => 400,
            Error::NotPermitted(_) => 403,
            Error::NotFound(_) => 404,
            Error::AlreadyExists(_) | Error::WrongState { .. } | Error::NotRunning(_) => 409,
            _ => 500,
        }
    }
}

/// Extension to attach a step description to a nix result.
pub trait SysContext<T> {
    fn step<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn step<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::sys(f(), e))
    }
}

/// Collects errors from cleanup steps that must all run even when some fail.
#[derive(Default)]
pub struct Errors(Vec<Error>);

impl Errors {
    pub fn push<T>(&mut self, r: Result<T>) {
        if let Err(e) = r {
            self.0.push(e);
        }
    }

    pub fn into_result(mut self) -> Result<()> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.pop().unwrap()),
            _ => Err(Error::Multiple(self.0)),
        }
    }
}
