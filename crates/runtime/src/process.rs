//! The container process's identity and final steps before execve, shared by the container init
//! and `exec`: everything is precomputed in the parent (`ProcessPlan::new`) so the child only
//! issues syscalls.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::{LinuxSeccomp, Process};

use crate::capabilities::CapSets;
use crate::error::{Error, Result, SysContext};
use crate::lsm::Labels;
use crate::seccomp::Filter;

pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub path_env: String,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: Option<u32>,
    pub caps: Option<CapSets>,
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub no_new_privs: bool,
    pub oom_score_adj: Option<i32>,
    pub seccomp: Option<Filter>,
    pub labels: Labels,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    /// Where a SCMP_ACT_NOTIFY listener goes: a socket connected (by the parent, on the host) to
    /// seccomp.listenerPath, and the listenerMetadata to send with it.
    pub listener: Option<(std::os::fd::OwnedFd, String)>,
    /// The OCI state sent along with the listener fd (filled in by the caller).
    pub listener_state: serde_json::Value,
}

/// The process's pid as the host sees it, recorded before pivot_root (inside, it is 1).
pub static HOST_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

fn cstrings(v: &[String], what: &str) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| Error::invalid(format!("{what} {s:?} contains a NUL byte"))))
        .collect()
}

impl ProcessPlan {
    pub fn new(p: &Process, seccomp: Option<&LinuxSeccomp>, warn: &mut dyn FnMut(String)) -> Result<ProcessPlan> {
        let args = p.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(Error::invalid("process.args must not be empty"));
        }
        let env = p.env().clone().unwrap_or_default();
        let path_env = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        let caps = match p.capabilities() {
            Some(c) => {
                // Read here, before the fork, so that the init finds it cached.
                crate::capabilities::last_cap();
                let mut s = CapSets::from_spec(c)?;
                s.check_bounding()?;
                s.effective_ambient(warn);
                Some(s)
            }
            None => None,
        };
        let rlimits = match p.rlimits() {
            Some(l) => {
                crate::rlimits::validate(l)?;
                crate::rlimits::plan(l)
            }
            None => vec![],
        };
        let compiled = seccomp.map(crate::seccomp::compile).transpose()?;
        let listener = match (seccomp, &compiled) {
            (Some(s), Some(f)) if f.needs_listener() => {
                let path = s.listener_path().as_ref().ok_or_else(|| {
                    Error::Seccomp("SCMP_ACT_NOTIFY needs listenerPath (where to send the listener)".into())
                })?;
                let sock = std::os::unix::net::UnixStream::connect(path)
                    .map_err(|e| Error::io("connect to seccomp listenerPath", path, e))?;
                Some((sock.into(), s.listener_metadata().clone().unwrap_or_default()))
            }
            _ => None,
        };
        let seccomp = compiled;
        Ok(ProcessPlan {
            args: cstrings(&args, "argument")?,
            env: cstrings(&env, "environment entry")?,
            path_env,
            cwd: p.cwd().clone(),
            uid: p.user().uid(),
            gid: p.user().gid(),
            groups: p.user().additional_gids().clone().unwrap_or_default(),
            umask: p.user().umask(),
            caps,
            rlimits,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            oom_score_adj: p.oom_score_adj(),
            seccomp,
            labels: crate::lsm::plan(p.apparmor_profile().as_deref(), p.selinux_label().as_deref(), warn),
            terminal: p.terminal().unwrap_or(false),
            console_size: p.console_size().map(|b| (b.height() as u16, b.width() as u16)),
            listener,
            listener_state: serde_json::Value::Null,
        })
    }

    /// Resolves args[0] against the process's own PATH (not the runtime's), as seen from inside
    /// the container. The message matches runc's, which Docker maps to exit codes 126/127.
    pub fn lookup(&self) -> Result<CString> {
        let arg0 = self.args[0].to_string_lossy().into_owned();
        let check = |p: &Path| -> std::result::Result<(), Errno> {
            let meta = std::fs::metadata(p).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
            if meta.is_dir() {
                return Err(Errno::EISDIR);
            }
            nix::unistd::access(p, nix::unistd::AccessFlags::X_OK)
        };
        if arg0.contains('/') {
            let p = if Path::new(&arg0).is_absolute() { PathBuf::from(&arg0) } else { self.cwd.join(&arg0) };
            return match check(&p) {
                Ok(()) => Ok(self.args[0].clone()),
                Err(Errno::EACCES) | Err(Errno::EISDIR) => Err(Error::Init(format!("exec: {arg0:?}: permission denied"))),
                Err(_) => Err(Error::Init(format!("exec: {arg0:?}: stat {arg0}: no such file or directory"))),
            };
        }
        let mut denied = false;
        for dir in self.path_env.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let p = Path::new(dir).join(&arg0);
            match check(&p) {
                Ok(()) => {
                    return CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| Error::invalid("NUL in path"));
                }
                Err(Errno::EACCES) => denied = true,
                Err(_) => {}
            }
        }
        if denied {
            Err(Error::Init(format!("exec: {arg0:?}: permission denied")))
        } else {
            Err(Error::Init(format!("exec: {arg0:?}: executable file not found in $PATH")))
        }
    }

    /// rlimits, umask, labels, seccomp (when it needs privileges), capabilities and user. Runs as
    /// root in the container's namespaces; afterwards the process has its final identity.
    pub fn set_identity(&self) -> Result<()> {
        crate::rlimits::apply(&self.rlimits)?;
        if let Some(m) = self.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
        }
        self.labels.apply()?;
        // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it while we have it.
        if !self.no_new_privs {
            crate::timing::mark("init: load seccomp");
            self.load_seccomp()?;
            crate::timing::mark("init: seccomp loaded");
        }
        if let Some(c) = &self.caps {
            c.drop_bounding()?;
        }
        crate::timing::mark("init: bounding set dropped");
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
        let gids: Vec<nix::unistd::Gid> = self.groups.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
        match nix::unistd::setgroups(&gids) {
            // In a user namespace with setgroups denied, only an empty list is possible anyway.
            Err(Errno::EPERM) if gids.is_empty() => {}
            r => r.step(|| format!("setgroups {:?}", self.groups))?,
        }
        let g = nix::unistd::Gid::from_raw(self.gid);
        nix::unistd::setresgid(g, g, g).step(|| format!("setgid {}", self.gid))?;
        let u = nix::unistd::Uid::from_raw(self.uid);
        nix::unistd::setresuid(u, u, u).step(|| format!("setuid {}", self.uid))?;
        if let Some(c) = &self.caps {
            c.apply()?;
        }
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
        Ok(())
    }

    fn load_seccomp(&self) -> Result<()> {
        let Some(f) = &self.seccomp else { return Ok(()) };
        let Some(fd) = f.load()? else { return Ok(()) };
        let Some((sock, metadata)) = &self.listener else {
            return Err(Error::Seccomp("a notify listener was created but there is nowhere to send it".into()));
        };
        // The runtime-spec's ContainerProcessState, with the listener as its one fd.
        let pid = HOST_PID.load(std::sync::atomic::Ordering::Relaxed);
        let mut state = self.listener_state.clone();
        if let Some(o) = state.as_object_mut() {
            o.insert("pid".into(), pid.into());
        }
        let msg = serde_json::json!({
            "ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": pid, "metadata": metadata, "state": state
        });
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let body = msg.to_string();
        let fds = [std::os::fd::AsRawFd::as_raw_fd(&fd)];
        sendmsg::<()>(std::os::fd::AsRawFd::as_raw_fd(sock), &[std::io::IoSlice::new(body.as_bytes())], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
            .step(|| "send the seccomp listener to listenerPath")?;
        Ok(())
    }

    /// The last steps: no_new_privs, the seccomp filter (as late as possible, so it does not
    /// constrain the runtime), closing inherited fds, execve.
    pub fn exec(&self, path: &CString, preserve_fds: u32) -> Error {
        if self.no_new_privs {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Error::sys("set no_new_privs", Errno::last());
            }
            if let Err(e) = self.load_seccomp() {
                return e;
            }
        }
        close_fds_from(3 + preserve_fds);
        reset_signals();
        crate::timing::mark("init: execve");
        match nix::unistd::execve(path, &self.args, &self.env) {
            Err(e) => Error::sys(format!("exec {}", path.to_string_lossy()), e),
        }
    }
}

/// The runtime ignores SIGPIPE (Rust's default) and its caller may block signals; an ignored
/// or blocked signal would survive execve, so the container starts from the defaults.
///
/// Raw rt_sigaction: glibc's signal()/sigaction() refuse signals 32 and 33 (reserved for its
/// threads), yet a caller can hand them over ignored (glibc's posix_spawn sets them to SIG_IGN in
/// the child when the parent has handlers for them).
pub fn reset_signals() {
    // SIG_DFL with no flags, restorer or mask: all zeroes, whatever the arch's struct layout.
    let dfl = [0u64; 4];
    for sig in 1..65 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: a zeroed kernel sigaction (SIG_DFL) and a null old-action pointer; the
            // sigset size is the kernel's (64 signals).
            unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), std::ptr::null_mut::<u64>(), 8usize) };
        }
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// Marks every descriptor from `first` up close-on-exec, so nothing of the runtime (state dir,
/// sockets, the host's fds) leaks into the container.
pub fn close_fds_from(first: u32) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with flags only changes descriptor flags.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r != 0 {
        for fd in first..4096 {
            // SAFETY: fcntl on possibly-invalid fds is harmless.
            unsafe { libc::fcntl(fd as i32, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

pub fn set_oom_score_adj(pid: &str, v: i32) -> Result<()> {
    let p = format!("/proc/{pid}/oom_score_adj");
    std::fs::write(&p, v.to_string()).map_err(|e| Error::io(format!("set oom_score_adj {v} via"), p, e))
}
