//! berth-runtime: turns an OCI bundle (config.json + rootfs, runtime-spec 1.2) into an isolated
//! running process. `berth-runc` is a thin CLI over this crate; the engine drives it through the
//! per-container monitor.
//!
//! Process model: the caller (single-threaded) validates everything, claims the id (state
//! directory) and creates the cgroup2 directory, then clones the init into it with a new PID
//! namespace. The init unshares its other namespaces while the parent creates the rest of the
//! cgroup and applies the limits; then it joins the cgroup, builds the root filesystem, drops to
//! the container's identity and blocks on the exec fifo until `start`, while the parent stages
//! the state it publishes once the init is ready. At `start` the init execs the user's program
//! directly, so a running container is exactly one process, with no runtime left behind.
//!
//! Profiling: `BERTH_RUNTIME_TIMING=1` makes create, start, delete and the init print
//! timestamped steps to stderr (see [`timing`]).

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
mod mountapi;
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
pub mod timing;

pub use error::{Error, Result};
