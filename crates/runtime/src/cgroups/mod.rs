//! Control groups: detect the host's cgroup layout, resolve an OCI `cgroupsPath`, and manage
//! one container's cgroup (create, join, limit, freeze, signal, remove) on cgroup v1, cgroup v2
//! and the hybrid layout (v1 controllers plus a cgroup2 mount, usually `/sys/fs/cgroup/unified`).
//!
//! Everything goes through cgroupfs; there is no systemd D-Bus client. With `systemd = true`,
//! [`resolve_path`] turns `slice:prefix:name` into the path systemd would use
//! (`/system.slice/prefix-name.scope`), and that directory is then managed through cgroupfs like
//! any other: systemd does not know about the scope.
//!
//! Typical use (`berth-runc create` does the same, with `create_cgroup2` before cloning the
//! init into [`CgroupManager::cgroup2_dir`] and `create_rest` + `set` after):
//! ```no_run
//! # fn main() -> berth_runtime::Result<()> {
//! use berth_runtime::cgroups;
//! let layout = cgroups::detect()?;
//! let path = cgroups::resolve_path(Some("/berth/abc"), "abc", false)?;
//! let cg = cgroups::manager(&layout, &path)?;
//! cg.create()?;
//! # let resources = oci_spec::runtime::LinuxResources::default();
//! cg.set(&resources)?;
//! // in the forked init, before it leaves the host's namespaces (or cg.apply(pid) from the
//! // parent, which is slower: see apply_self):
//! cg.apply_self()?;
//! // ... later, on delete:
//! cg.kill_all(libc::SIGKILL)?;
//! cg.destroy()?;
//! # Ok(()) }
//! ```
//!
//! Cost: `detect` reads `/proc/self/mountinfo` once per process while no mount changes;
//! `create`, `apply` and `destroy` do one `mkdir`/write/`rmdir` per hierarchy (plus two reads on cgroup2 to check that the
//! controllers are enabled, and on v1 cpuset two reads to check `cpuset.cpus`/`cpuset.mems`);
//! `set` writes only the knobs the spec sets and reads only what validation needs. Measured
//! on the hybrid development VM (10 hierarchies), release build: detect+resolve+manager
//! ~0.1 ms, create ~0.4 ms, set (memory, pids, shares, 12 device rules) ~0.15 ms, destroy
//! ~0.3 ms; joining is dominated by the kernel (see [`CgroupManager::apply_self`]).
//!
//! Not supported: systemd D-Bus (scopes/slices are plain cgroupfs directories), rootless
//! delegation/ownership changes, and the v1 `kernel`/`kernelTCP` memory limits (ignored, as
//! runc does; deprecated since Linux 5.4).

mod convert;
mod detect;
mod devices_bpf;
mod fs;
mod path;
mod plan;
mod v1;
mod v2;

#[cfg(test)]
mod host_tests;

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

pub use convert::{shares_to_weight, v2_swap_max};
pub use detect::{detect, detect_fresh, Hierarchy, Layout};
pub use path::resolve_path;

use crate::{Error, Result};

/// One container's cgroup, in every hierarchy it uses.
pub trait CgroupManager: Send + Sync + std::fmt::Debug {
    /// Creates the cgroup directory (and missing parents): v1 in every mounted hierarchy (cpuset
    /// gets `cpuset.cpus`/`cpuset.mems` copied from its parent so that tasks can join); v2 (and
    /// the unified mount of a hybrid host) also enables every available controller in the
    /// ancestors' `cgroup.subtree_control`. Existing directories are fine.
    fn create(&self) -> Result<()> {
        self.create_cgroup2()?;
        self.create_rest()
    }

    /// The part of [`CgroupManager::create`] that `clone3(CLONE_INTO_CGROUP)` needs: the
    /// cgroup2 directory ([`CgroupManager::cgroup2_dir`]) with its controllers enabled. `create`
    /// of the container does this before cloning the init and [`CgroupManager::create_rest`]
    /// after, while the init sets itself up.
    fn create_cgroup2(&self) -> Result<()>;

    /// The rest of [`CgroupManager::create`]: the v1 hierarchies.
    fn create_rest(&self) -> Result<()>;

    /// Moves `pid` (a whole process) into the cgroup, in every hierarchy.
    ///
    /// Cost: moving another process takes the kernel's global threadgroup lock for writing,
    /// which waits for an RCU grace period whenever that lock was idle (6-15 ms measured on
    /// the development VM). Prefer [`CgroupManager::apply_self`] from the child.
    fn apply(&self, pid: i32) -> Result<()>;

    /// Moves the calling process into the cgroup, in every hierarchy. The caller must have a
    /// single thread (a freshly forked child), and still see the host's cgroup filesystems.
    ///
    /// v1 hierarchies: writes `0` to `tasks`, which moves the calling thread without the
    /// global lock (about 0.2 ms for 9 hierarchies instead of a grace period). cgroup2 (pure
    /// v2, or the unified mount of a hybrid host): writes `0` to `cgroup.procs`, which does
    /// take that lock, unless `/proc/self/cgroup` shows the process already there, as after
    /// `clone3(CLONE_INTO_CGROUP)` into [`CgroupManager::cgroup2_dir`], the cheap way for
    /// cgroup2. Measured on the development VM (hybrid), averaged over spaced runs: parent
    /// `apply(pid)` ~10 ms; child `apply_self` ~9 ms; `CLONE_INTO_CGROUP` + `apply_self` ~1 ms.
    fn apply_self(&self) -> Result<()>;

    /// The container's cgroup2 directory (pure v2, or the unified mount of a hybrid host),
    /// e.g. to open for `clone3(CLONE_INTO_CGROUP)`; `None` on pure v1.
    fn cgroup2_dir(&self) -> Option<&std::path::Path>;

    /// Applies `resources` (create time and `update`). Validates everything first (values, and
    /// that this host supports each knob that is set); nothing is written if that fails. Then
    /// writes only the knobs that are set.
    fn set(&self, resources: &LinuxResources) -> Result<()>;

    /// Freezes every process of the cgroup and waits until the kernel reports it frozen.
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    fn is_frozen(&self) -> Result<bool>;

    /// Every process in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>>;

    /// Sends `sig` to every process in the cgroup (and descendants). SIGKILL uses `cgroup.kill`
    /// where the kernel has it; otherwise the cgroup is frozen while it is signalled, so that
    /// nothing forks past the signal, and thawed again (left frozen for a non-KILL signal when
    /// it was frozen before). A cgroup that does not exist has no process: `Ok`.
    fn kill_all(&self, sig: i32) -> Result<()>;

    /// Removes the cgroup (and any sub-cgroups the container made) everywhere, retrying
    /// briefly while the kernel still reports it busy. A missing directory is not an error.
    /// Goes on past failures and reports all of them.
    fn destroy(&self) -> Result<()>;

    /// What to mount in the container for a spec mount of type `cgroup`.
    fn container_mounts(&self) -> Vec<CgroupMount>;
}

/// One hierarchy to show inside the container.
///
/// Without a cgroup namespace, bind-mount `source` at `<dest>/<subdir>`. With one, mount a
/// fresh filesystem there instead: `fstype` with data `controllers.join(",")` (v1) or no data
/// (cgroup2). For a v1 hierarchy that has several controllers (`cpu,cpuacct`), runc also makes
/// a symlink per controller (`cpu -> cpu,cpuacct`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// `"cgroup"` (a v1 hierarchy) or `"cgroup2"`.
    pub fstype: &'static str,
    /// Where the hierarchy is mounted on the host, e.g. `/sys/fs/cgroup/memory`.
    pub host_mountpoint: PathBuf,
    /// v1: the hierarchy's controllers as in its mount options (`["cpu", "cpuacct"]`,
    /// `["name=systemd"]`); empty for cgroup2.
    pub controllers: Vec<String>,
    /// The container's cgroup directory in this hierarchy, on the host.
    pub source: PathBuf,
    /// Where it goes under the mount's destination: v1: the basename of the host mountpoint
    /// (`memory`, `cpu,cpuacct`, `systemd`); hybrid: `unified` for the cgroup2 mount; pure v2:
    /// `""` (the destination itself).
    pub subdir: String,
}

/// The manager for the cgroup at `path` (absolute, as returned by [`resolve_path`]) on `layout`.
/// Touches nothing on disk.
pub fn manager(layout: &Layout, path: &str) -> Result<Box<dyn CgroupManager>> {
    path::check_absolute(path)?;
    Ok(match layout {
        Layout::V1 { hierarchies } => Box::new(v1::V1Manager::new(hierarchies, None, path)),
        Layout::Hybrid {
            hierarchies,
            unified,
        } => Box::new(v1::V1Manager::new(hierarchies, Some(unified), path)),
        Layout::V2 { mountpoint } => Box::new(v2::V2Manager::new(mountpoint, path)),
    })
}

fn cg_err(msg: impl Into<String>) -> Error {
    Error::Cgroup(msg.into())
}

/// Signals every process of `m`, frozen meanwhile when `can_freeze` so that nothing forks past
/// the signal. Leaves the cgroup as it was (thawed after SIGKILL in any case, so the processes
/// can die on v1).
fn signal_all(m: &(impl CgroupManager + ?Sized), sig: i32, can_freeze: bool) -> Result<()> {
    let was_frozen = can_freeze && m.is_frozen().unwrap_or(false);
    let froze = can_freeze && !was_frozen && m.freeze().is_ok();
    let result = m.pids().and_then(|pids| fs::signal_pids(&pids, sig));
    if froze || (was_frozen && sig == libc::SIGKILL) {
        let thawed = m.thaw();
        result?;
        return thawed;
    }
    result
}

/// Whether `/proc/self/cgroup` shows the calling process in cgroup2 cgroup `path`.
fn self_in_unified(path: &str) -> bool {
    fs::read(std::path::Path::new("/proc/self/cgroup"))
        .map(|t| t.lines().any(|l| l.strip_prefix("0::") == Some(path)))
        .unwrap_or(false)
}
