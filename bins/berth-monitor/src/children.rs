//! The runtime's heavy work (create, delete) runs in short-lived forked children. The monitor
//! itself never runs berth-runtime's code nor grows its heap with the spec, so what stays
//! resident for the container's whole life is only the relay; and a crash in that work cannot
//! take the monitor (and the container's exit record) down with it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime::container::{self, CreateOpts};
use berth_runtime::{cgroups, state::StateDir};

use crate::{sys, MonitorConfig};

/// Signals the monitor ignores; its children put them back to the default before running
/// the runtime (hooks and the container must not inherit an ignored SIGINT or SIGPIPE).
pub(crate) const IGNORED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGHUP, libc::SIGPIPE, libc::SIGTERM];

/// A child's report, well under a pipe's capacity (64 KiB).
const MAX_REPORT: usize = 16 * 1024;

/// Forks; the child runs `work` and reports its result as text on a pipe, then exits. Returns
/// what the child reported, or why it reported nothing.
pub(crate) fn in_child(what: &str, work: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
    in_child_in(what, None, work)
}

/// `in_child` with the child born in the cgroup2 directory `cgroup` (when the kernel allows).
fn in_child_in(what: &str, cgroup: Option<RawFd>, work: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
    let (r, w) = sys::pipe().map_err(|e| format!("{what}: pipe: {e}"))?;
    // The monitor is single-threaded, so the child may run anything.
    let pid = sys::fork_into(cgroup).map_err(|e| format!("{what}: fork: {e}"))?;
    if pid == 0 {
        drop(r);
        for s in IGNORED {
            sys::default_signal(s);
        }
        sys::block_sigchld(false);
        // A panic must end here, never unwind back into a second copy of the monitor.
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| Err(format!("{what}: panicked")));
        let msg = match res {
            Ok(t) => format!("ok {t}"),
            Err(t) => format!("error {t}"),
        };
        // The whole report must fit in the pipe: it is read only after this process exits.
        let mut end = msg.len().min(MAX_REPORT);
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        let _ = sys::write_all(w.as_raw_fd(), &msg.as_bytes()[..end]);
        // SAFETY: leave without running the monitor's destructors or atexit handlers.
        unsafe { libc::_exit(0) };
    }
    drop(w);
    // Reap first, then read what is buffered: the container's init is forked from this child
    // and holds a copy of the pipe until it execs, so the pipe does not reach EOF before that.
    let status = sys::waitpid(pid, 0).map(|(_, s)| s);
    let out = sys::set_nonblocking(r.as_raw_fd()).and_then(|()| sys::read_available(&r, MAX_REPORT)).unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    if let Some(t) = text.strip_prefix("ok ") {
        return Ok(t.to_string());
    }
    if let Some(t) = text.strip_prefix("error ") {
        return Err(t.to_string());
    }
    Err(match status {
        Ok(s) => format!("{what}: the child process died without a result ({})", sys::describe_status(s)),
        Err(e) => format!("{what}: the child process died without a result ({e})"),
    })
}

/// The container's OOM-kill counter: `memory.oom_control` (cgroup v1) or `memory.events`
/// (cgroup v2), both with an `oom_kill N` line, and its value when the container was created.
pub(crate) struct OomCounter {
    path: Option<CString>,
    baseline: u64,
}

impl OomCounter {
    /// No counter: an exec's process shares the container's cgroup, whose OOM kills the
    /// container's monitor reports.
    pub(crate) fn none() -> OomCounter {
        OomCounter { path: None, baseline: 0 }
    }

    /// Whether the kernel OOM-killed a process of the container since it was created. Must be
    /// read before the cgroup is removed.
    pub(crate) fn fired(&self) -> bool {
        self.path.as_deref().and_then(read_oom_kill).is_some_and(|n| n > self.baseline)
    }
}

fn read_oom_kill(path: &std::ffi::CStr) -> Option<u64> {
    let mut buf = [0u8; 512];
    let n = sys::read_small(path, &mut buf).ok()?;
    parse_oom_kill(&buf[..n])
}

fn parse_oom_kill(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|v| v.trim().parse().ok())
}

/// Where the OOM-kill counter of the cgroup at `cgroup_path` is on this host.
fn oom_file(cgroup_path: &str) -> Option<PathBuf> {
    let layout = cgroups::detect().ok()?;
    let rel = cgroup_path.trim_start_matches('/');
    if let Some(h) = layout.hierarchies().iter().find(|h| h.has("memory")) {
        return Some(h.mountpoint.join(rel).join("memory.oom_control"));
    }
    layout.unified_mountpoint().map(|m| m.join(rel).join("memory.events"))
}

pub(crate) struct Created {
    pub(crate) init_pid: i32,
    pub(crate) oom: OomCounter,
}

/// The container's ends of its stdio, for the create child's fds 0, 1 and 2 (which the init
/// inherits), and the monitor's own descriptors that the init must not hold.
pub(crate) struct ChildStdio<'a> {
    pub(crate) stdio: [RawFd; 3],
    pub(crate) close: &'a [RawFd],
    pub(crate) console: Option<&'a OwnedFd>,
}

/// Creates the container in a forked child: the init is that child's child and, once the
/// child exits, reparents to the monitor (a child subreaper).
pub(crate) fn create(cfg: &MonitorConfig, io: ChildStdio) -> Result<Created, String> {
    let text = in_child("create container", || {
        for (i, fd) in io.stdio.iter().enumerate() {
            sys::dup2(*fd, i as RawFd).map_err(|e| format!("set up the container's stdio: {e}"))?;
        }
        for fd in io.close {
            // SAFETY: the monitor's descriptors; this process exits without using them.
            unsafe { libc::close(*fd) };
        }
        let console = match io.console {
            Some(c) => Some(Arc::new(c.try_clone().map_err(|e| format!("dup console socket: {e}"))?)),
            None => None,
        };
        let opts = CreateOpts {
            id: cfg.id.clone(),
            bundle: cfg.bundle.clone(),
            root: cfg.runtime_root.clone(),
            console_fd: console,
            systemd_cgroup: cfg.systemd_cgroup,
            ..Default::default()
        };
        let pid = container::create(&opts).map_err(|e| e.to_string())?;
        // The init waits on the exec fifo from here: what the monitor needs to know later.
        let oom = StateDir::load(&cfg.runtime_root, &cfg.id).ok().and_then(|(_, rec)| oom_file(&rec.cgroup_path));
        let baseline = oom.as_ref().and_then(|p| sys::cstring(p).ok()).and_then(|p| read_oom_kill(&p)).unwrap_or(0);
        let path = oom.map(|p| p.into_os_string().into_string().unwrap_or_default()).unwrap_or_default();
        Ok(format!("{pid} {baseline} {path}"))
    })?;
    let mut parts = text.splitn(3, ' ');
    let bad = || format!("create container: bad report from the create child: {text:?}");
    let init_pid = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let baseline = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let path = parts.next().filter(|p| !p.is_empty()).and_then(|p| CString::new(p).ok());
    Ok(Created { init_pid, oom: OomCounter { path, baseline } })
}

/// Starts an exec's process in the running container, from a forked child as `create` does:
/// the process (a grandchild) reparents to the monitor once the child exits.
pub(crate) fn exec(cfg: &MonitorConfig, e: &crate::ExecMode, io: ChildStdio) -> Result<Created, String> {
    // Born in the container's cgroup2, the runtime has no cgroup2 move to make (the costly one;
    // cgroup v1 moves of a thread are cheap).
    let cgroup = e.cgroup2.as_ref().and_then(|p| sys::cstring(p).ok()).and_then(|p| sys::open(&p, libc::O_RDONLY | libc::O_DIRECTORY, 0).ok());
    let text = in_child_in("exec", cgroup.as_ref().map(|f| f.as_raw_fd()), || {
        for (i, fd) in io.stdio.iter().enumerate() {
            sys::dup2(*fd, i as RawFd).map_err(|e| format!("set up the exec's stdio: {e}"))?;
        }
        for fd in io.close {
            // SAFETY: the monitor's descriptors; this process exits without using them.
            unsafe { libc::close(*fd) };
        }
        let opts = berth_runtime::exec::ExecOpts {
            root: cfg.runtime_root.clone(),
            id: cfg.id.clone(),
            process: serde_json::from_str(&e.process).map_err(|e| format!("bad exec process: {e}"))?,
            console_fd: io.console.map(|c| c.try_clone()).transpose().map_err(|e| format!("dup console socket: {e}"))?,
            ..Default::default()
        };
        let pid = berth_runtime::exec::exec(&opts).map_err(|e| e.to_string())?;
        Ok(pid.to_string())
    })?;
    let init_pid = text.trim().parse().map_err(|_| format!("exec: bad report from the exec child: {text:?}"))?;
    Ok(Created { init_pid, oom: OomCounter::none() })
}

/// Removes the container in a forked child: kills whatever is left in its cgroup (processes
/// that outlived the init, when it has no PID namespace of its own), removes the cgroup and
/// the runtime state, and runs the poststop hooks. A container already gone is fine.
pub(crate) fn delete(root: &Path, id: &str) -> Result<(), String> {
    in_child("delete container", || {
        let Ok((_, rec)) = StateDir::load(root, id) else { return Ok(String::new()) };
        let mut errs = vec![];
        if let Err(e) = container::cgroup_manager(&rec.cgroup_path).and_then(|cg| cg.kill_all(libc::SIGKILL)) {
            errs.push(format!("kill the container's processes: {e}"));
        }
        if let Err(e) = container::delete(root, id, true) {
            errs.push(e.to_string());
        }
        if errs.is_empty() {
            Ok(String::new())
        } else {
            Err(errs.join("; "))
        }
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_counter_parses_from_v1_and_v2_files() {
        assert_eq!(parse_oom_kill(b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), Some(3));
        assert_eq!(parse_oom_kill(b"low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n"), Some(1));
        assert_eq!(parse_oom_kill(b"oom_kill_disable 0\nunder_oom 0\n"), None);
    }

    #[test]
    fn child_results_come_back() {
        assert_eq!(in_child("t", || Ok("fine".into())), Ok("fine".into()));
        assert_eq!(in_child("t", || Err("bad".into())), Err("bad".into()));
        let died = in_child("t", || {
            // SAFETY: ends the forked child at once.
            unsafe { libc::_exit(3) }
        });
        assert!(died.unwrap_err().contains("exit status 3"));
    }
}
