//! berth-runtime: turns an OCI bundle (config.json + rootfs, runtime-spec 1.2) into an isolated
//! running process. `berth-runc` is a thin CLI over this crate; the engine drives it through the
//! per-container monitor.
//!
//! Process model: the caller (single-threaded) validates everything, creates the cgroup, then
//! clones the init with the new namespaces. The init builds the root filesystem, drops to the
//! container's identity and blocks on the exec fifo until `start`; then it execs the user's
//! program directly, so a running container is exactly one process, with no runtime left behind.

pub mod capabilities;
pub mod cgroups;
pub mod container;
mod copyup;
pub mod devices;
pub mod error;
pub mod exec;
pub mod fsutil;
pub mod hooks;
mod init;
pub mod lsm;
pub mod mountopts;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod selfexe;
pub mod spec;
pub mod state;
pub mod sync;
pub mod terminal;

pub use error::{Error, Result};
