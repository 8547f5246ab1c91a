//! Creating processes in new namespaces (clone3 with fork semantics), joining namespaces by path,
//! and writing user-namespace id maps (directly as root, through newuidmap/newgidmap otherwise).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use oci_spec::runtime::LinuxIdMapping;

use crate::error::{Error, Result, SysContext};

/// clone3(2)'s argument, as the kernel lays it out (also used by berth-monitor).
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

pub enum Forked {
    Child,
    Parent(i32),
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(2) with namespace flags. The caller must be single-threaded (berth-runc is): the child
/// continues on a copy of the parent's stack, like fork.
pub fn fork_with(flags: libc::c_int) -> Result<Forked> {
    fork_into(flags, None)
}

/// fork_with, born directly in the cgroup2 directory `cgroup` when given (CLONE_INTO_CGROUP):
/// moving a process in afterwards costs an RCU grace period (~10 ms); being born there is free.
/// Where the kernel refuses, the child is born in the caller's cgroup and must move itself.
pub fn fork_into(flags: libc::c_int, cgroup: Option<RawFd>) -> Result<Forked> {
    let mut args = CloneArgs { flags: flags as u64, exit_signal: libc::SIGCHLD as u64, ..Default::default() };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack behaves as fork.
    let mut r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if r < 0 && cgroup.is_some() && matches!(Errno::last(), Errno::EINVAL | Errno::EOPNOTSUPP | Errno::EBUSY | Errno::EACCES) {
        args.flags &= !CLONE_INTO_CGROUP;
        args.cgroup = 0;
        // SAFETY: as above.
        r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    }
    let r = if r < 0 && Errno::last() == Errno::ENOSYS {
        // SAFETY: the legacy clone with a null stack also behaves as fork.
        unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) }
    } else {
        r
    };
    match r {
        0 => Ok(Forked::Child),
        n if n > 0 => Ok(Forked::Parent(n as i32)),
        _ => Err(Error::sys(format!("clone with namespace flags {flags:#x}"), Errno::last())),
    }
}

pub fn open_ns(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(path, nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .step(|| format!("open namespace {}", path.display()))?;
    Ok(fd)
}

pub fn setns(fd: &OwnedFd, flag: libc::c_int, what: &str) -> Result<()> {
    // SAFETY: valid namespace fd.
    if unsafe { libc::setns(fd.as_raw_fd(), flag) } != 0 {
        return Err(Error::sys(format!("join {what} namespace"), Errno::last()));
    }
    Ok(())
}

pub fn unshare(flags: libc::c_int) -> Result<()> {
    if flags == 0 {
        return Ok(());
    }
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(Error::sys(format!("unshare namespaces {flags:#x}"), Errno::last()));
    }
    Ok(())
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

/// Writes uid_map and gid_map of `pid`. Root writes them itself; an unprivileged caller goes
/// through the setuid helpers newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
pub fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
            let p = format!("/proc/{pid}/{file}");
            std::fs::write(&p, map_text(maps)).map_err(|e| Error::io("write id map", &p, e))?;
        }
        return Ok(());
    }
    for (helper, maps) in [("newuidmap", uids), ("newgidmap", gids)] {
        let mut cmd = Command::new(helper);
        cmd.arg(pid.to_string());
        for m in maps {
            cmd.args([m.container_id().to_string(), m.host_id().to_string(), m.size().to_string()]);
        }
        let out = cmd.output().map_err(|e| Error::io(format!("run {helper}"), helper, e))?;
        if !out.status.success() {
            return Err(Error::NotPermitted(format!(
                "{helper} {pid}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// Time namespace offsets must be written by the process that unshared it, before any process
/// enters it.
pub fn unshare_time(offsets: &[(String, i64, u32)]) -> Result<()> {
    unshare(libc::CLONE_NEWTIME)?;
    if offsets.is_empty() {
        return Ok(());
    }
    let text: String = offsets.iter().map(|(clock, s, ns)| format!("{clock} {s} {ns}\n")).collect();
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| Error::io("write time namespace offsets", "/proc/self/timens_offsets", e))
}

/// A pidfd for any process: lets a non-parent wait for its exit with poll(2).
pub fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes integers.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(Error::sys(format!("pidfd_open {pid}"), Errno::last()));
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Waits until the process behind `pidfd` has exited, or `timeout_ms` passed (-1: forever).
pub fn wait_pidfd(pidfd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        return r > 0;
    }
}
