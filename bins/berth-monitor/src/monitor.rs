//! The berth-monitor process: started by `spawn` with the config as its one argument and the
//! sync pipe as stdout/stderr. It re-executes from a protected view of its binary, leaves the
//! caller (setsid + fork: the caller only reaps the short-lived first process), creates the
//! container, listens on monitor.sock, reports `created ...` or `error ...` on the sync pipe, and
//! then relays until the container exits and its exit is recorded.
//!
//! Exec mode (`spawn_exec`: the argument is "-" and the config comes on stdin, a socket that then
//! stays connected as the first attached client): the same, but the process is started in the
//! running container (berth_runtime::exec) instead of a container being created.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::children::{self, ChildStdio, IGNORED};
use crate::jsonlog::JsonLog;
use crate::relay::{Outcome, Relay};
use crate::{sys, ExitRecord, MonitorConfig};

/// The monitor's entry point (its `main`); never returns.
pub fn main() -> ! {
    // Started through a descriptor (/proc/self/fd/N), the kernel would name the process "N".
    // SAFETY: prctl with a static C string.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-monitor".as_ptr(), 0, 0, 0) };
    let args: Vec<OsString> = std::env::args_os().collect();
    // "-": the config comes on stdin (a third argument, the bundle, is for ps only).
    let from_stdin = (2..=3).contains(&args.len()) && args[1] == "-";
    let parsed: Option<MonitorConfig> = match args.get(1).map(|a| serde_json::from_slice(a.as_bytes())) {
        _ if from_stdin => None,
        Some(Ok(c)) if args.len() == 2 => Some(c),
        Some(Err(e)) => fail(&format!("berth-monitor: bad config argument: {e}")),
        _ => fail("usage: berth-monitor <config JSON> | - [bundle] (started by berth_monitor::spawn)"),
    };
    drop(args);
    // A container could otherwise reach this binary through /proc/<monitor>/exe and rewrite it
    // (CVE-2019-5736). The env switch is berth-runc's, for measuring the cost only.
    if std::env::var_os("BERTH_RUNC_UNSAFE_NO_EXE_PROTECTION").is_none() {
        if let Err(e) = berth_runtime::selfexe::reexec_protected() {
            fail(&format!("berth-monitor: {e}"));
        }
    }
    // Read only now: the re-executed process starts over, and stdin can be read only once.
    let cfg = match parsed {
        Some(c) => c,
        None => read_config_from_stdin().unwrap_or_else(|e| fail(&format!("error berth-monitor: config on stdin: {e}"))),
    };
    daemonize();
    match setup(&cfg) {
        Ok(mut relay) => {
            if let Some(c) = attached_stdin_client(&cfg) {
                relay.clients.push(c);
            }
            let (pid, start) = own_pid_and_start();
            report(&format!("created {} {pid} {start}\n", relay.init_pid));
            detach_stdio();
            let outcome = relay.run();
            record_exit(&cfg, outcome);
            // SAFETY: plain exit; nothing is left to flush.
            unsafe { libc::_exit(0) }
        }
        Err(e) => fail(&format!("error {e}")),
    }
}

/// `<len>\n<JSON>` from stdin, read exactly: what follows is the attached client's input.
fn read_config_from_stdin() -> Result<MonitorConfig, String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while b[0] != b'\n' {
        match sys::read(0, &mut b) {
            Ok(1) if b[0] == b'\n' => {}
            Ok(1) if line.len() < 20 => line.push(b[0]),
            Ok(_) => return Err("bad length line".into()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let len: usize = std::str::from_utf8(&line).ok().and_then(|l| l.parse().ok()).filter(|l| *l <= 16 << 20).ok_or("bad length")?;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match sys::read(0, &mut buf[got..]) {
            Ok(0) => return Err("truncated".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    serde_json::from_slice(&buf).map_err(|e| e.to_string())
}

/// Exec mode: the socket on stdin stays as a client attached to the streams it asked for.
fn attached_stdin_client(cfg: &MonitorConfig) -> Option<crate::clients::Client> {
    let [stdin, stdout, stderr] = cfg.exec.as_ref()?.attach?;
    // SAFETY: fcntl on our own stdin; the result is a new descriptor (or -1).
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a descriptor fcntl just returned.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    sys::set_nonblocking(fd.as_raw_fd()).ok()?;
    let mut c = crate::clients::Client::new(fd);
    c.attached = true;
    (c.stdin, c.stdout, c.stderr) = (stdin, stdout, stderr);
    Some(c)
}

/// Reports `msg` to the caller and exits 1.
fn fail(msg: &str) -> ! {
    report(&format!("{msg}\n"));
    // SAFETY: plain exit.
    unsafe { libc::_exit(1) }
}

/// The sync pipe is our stdout.
fn report(msg: &str) {
    let _ = sys::write_all(1, msg.as_bytes());
}

/// Leaves the caller: a new session (no signal to the caller's process group or terminal
/// reaches us), then a fork so that the caller's child exits at once and this process, no
/// session leader and nobody's child but init's (or a subreaper's), carries on.
fn daemonize() {
    // Nothing the caller leaked past exec may stay open in the container's monitor.
    // SAFETY: close_range on our own descriptor table.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    // SAFETY: setsid and fork in a single-threaded process.
    unsafe {
        libc::setsid();
        match libc::fork() {
            -1 => fail(&format!("error berth-monitor: fork: {}", std::io::Error::last_os_error())),
            0 => {}
            _ => libc::_exit(0),
        }
    }
    for s in IGNORED {
        sys::ignore_signal(s);
    }
    // SAFETY: prctl with integer arguments; chdir with a static path.
    unsafe {
        // Container processes orphaned by the create child (the init) come to us.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        // Keep no directory of the caller's busy.
        libc::chdir(c"/".as_ptr());
    }
}

/// After the report: the sync pipe closes (the caller sees EOF) and stray writes go nowhere.
fn detach_stdio() {
    if let Ok(null) = sys::dev_null(libc::O_RDWR) {
        for fd in 0..3 {
            let _ = sys::dup2(null.as_raw_fd(), fd);
        }
    }
}

fn own_pid_and_start() -> (i32, u64) {
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    (pid, sys::proc_stat(pid).map_or(0, |(s, _)| s))
}

/// The container's stdio as the monitor holds it and as the create child passes it on.
struct Stdio {
    /// Monitor side: stdout, stderr (pipes) or the console socket's end (tty).
    outputs: [Option<OwnedFd>; 2],
    stdin: Option<OwnedFd>,
    console: Option<OwnedFd>,
    /// Container side: fds 0, 1, 2 of the create child, and the console socket's other end.
    child: [OwnedFd; 3],
    child_console: Option<OwnedFd>,
}

fn make_stdio(cfg: &MonitorConfig) -> std::io::Result<Stdio> {
    let null = || sys::dev_null(libc::O_RDWR);
    if cfg.tty {
        // The init opens the pty in the container and sends us the master.
        let (mine, theirs) = sys::socketpair()?;
        return Ok(Stdio { outputs: [None, None], stdin: None, console: Some(mine), child: [null()?, null()?, null()?], child_console: Some(theirs) });
    }
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let (stdin, child_in) = if cfg.open_stdin {
        let (r, w) = sys::pipe()?;
        (Some(w), r)
    } else {
        (None, sys::dev_null(libc::O_RDONLY)?)
    };
    Ok(Stdio { outputs: [Some(out_r), Some(err_r)], stdin, console: None, child: [child_in, out_w, err_w], child_console: None })
}

fn remove_stale(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("remove stale {}: {e}", path.display())),
        _ => Ok(()),
    }
}

/// Everything up to a created container with its monitor listening. On failure, nothing is
/// left behind: the create child rolls its own work back, and what follows a successful create
/// deletes the container again.
fn setup(cfg: &MonitorConfig) -> Result<Relay<'_>, String> {
    let sock = cfg.socket();
    remove_stale(&cfg.exit_file())?;
    remove_stale(&sock)?;
    let log = match &cfg.log_path {
        Some(p) => Some(JsonLog::open(p, &cfg.log).map_err(|e| format!("open container log {}: {e}", p.display()))?),
        None => None,
    };
    let mut io = make_stdio(cfg).map_err(|e| format!("set up the container's stdio: {e}"))?;
    let mut close: Vec<i32> = io.outputs.iter().flatten().chain(&io.stdin).chain(&io.console).map(|f| f.as_raw_fd()).collect();
    close.extend(log.as_ref().map(|l| l.raw_fd()));
    let child_io = ChildStdio { stdio: [0, 1, 2].map(|i| io.child[i].as_raw_fd()), close: &close, console: io.child_console.as_ref() };
    let created = match &cfg.exec {
        Some(e) => children::exec(cfg, e, child_io)?,
        None => children::create(cfg, child_io)?,
    };
    // Our copies of the container's ends must go, or its output would never reach EOF.
    drop(io.child);
    drop(io.child_console.take());
    let init_pid = created.init_pid;
    let rest = (|| -> Result<Relay<'_>, String> {
        let mut master = None;
        if let Some(console) = io.console.take() {
            // The init sent the master before create returned: it is queued, never waited for.
            sys::set_nonblocking(console.as_raw_fd()).map_err(|e| format!("console socket: {e}"))?;
            let m = berth_runtime::terminal::recv_master(console.as_raw_fd())
                .map_err(|e| format!("receive the container's terminal (is process.terminal set in config.json?): {e}"))?;
            if let Some((rows, cols)) = cfg.console_size {
                berth_runtime::terminal::set_size(m.as_raw_fd(), rows, cols).map_err(|e| e.to_string())?;
            }
            if cfg.open_stdin {
                io.stdin = Some(m.try_clone().map_err(|e| format!("dup the terminal: {e}"))?);
            }
            master = Some(m.as_raw_fd());
            io.outputs[0] = Some(m);
        }
        for f in io.outputs.iter().flatten().chain(&io.stdin) {
            sys::set_nonblocking(f.as_raw_fd()).map_err(|e| format!("set up the container's stdio: {e}"))?;
        }
        let listener = listen(&sock).map_err(|e| format!("listen on {}: {e}", sock.display()))?;
        write_pid_file(&cfg.pid_file()).map_err(|e| format!("write {}: {e}", cfg.pid_file().display()))?;
        // From here SIGCHLD arrives through a descriptor (blocked only now: the create child
        // must not pass a blocked SIGCHLD on to the container).
        let set = sys::block_sigchld(true);
        let sigfd = sys::sigchld_fd(&set).map_err(|e| format!("signalfd: {e}"))?;
        let outputs = [io.outputs[0].take(), io.outputs[1].take()];
        Ok(Relay::new(cfg, init_pid, created.oom, outputs, io.stdin.take(), master, log, listener, sigfd))
    })();
    rest.inspect_err(|_| {
        if cfg.exec.is_some() {
            // SAFETY: kill of our own child (not reaped yet, so the pid is still its).
            unsafe { libc::kill(init_pid, libc::SIGKILL) };
        } else {
            let _ = children::delete(&cfg.runtime_root, &cfg.id);
        }
        let _ = sys::waitpid(init_pid, 0);
        let _ = std::fs::remove_file(&sock);
        let _ = std::fs::remove_file(cfg.pid_file());
    })
}

/// Binds monitor.sock, owner-only (the umask covers the window between bind and chmod).
fn listen(path: &Path) -> std::io::Result<OwnedFd> {
    let (short, _dir) = crate::short_socket_path(path)?;
    // SAFETY: umask only changes the process's file mode mask; single-threaded.
    let old = unsafe { libc::umask(0o177) };
    let l = std::os::unix::net::UnixListener::bind(&short);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let l = l?;
    l.set_nonblocking(true)?;
    Ok(l.into())
}

fn write_pid_file(path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("pid.tmp");
    // SAFETY: getpid cannot fail.
    std::fs::write(&tmp, format!("{}\n", unsafe { libc::getpid() }))?;
    std::fs::rename(&tmp, path)
}

/// After the container is gone: unmount its rootfs if asked, record exit.json, let the
/// attached clients see EOF, remove the socket and the pid file.
fn record_exit(cfg: &MonitorConfig, out: Outcome) {
    let mut errors = out.errors;
    if cfg.unmount_rootfs {
        let rootfs = cfg.bundle.join("rootfs");
        if let Ok(p) = sys::cstring(&rootfs) {
            // SAFETY: valid C string.
            if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } != 0 {
                let e = std::io::Error::last_os_error();
                // Not mounted (any more) is what we want.
                if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOENT) {
                    errors.push(format!("unmount {}: {e}", rootfs.display()));
                }
            }
        }
    }
    let rec = ExitRecord {
        exit_code: out.exit_code,
        oom_killed: out.oom_killed,
        finished_at: out.finished_at,
        error: if errors.is_empty() { None } else { Some(errors.join("; ")) },
    };
    // Written before the clients see EOF: a client that then asks berthd for the exit code
    // (the docker CLI after `exec`) finds it.
    let _ = crate::write_exit(&cfg.exit_file(), &rec, cfg.exec.is_none());
    drop(out.clients);
    let _ = std::fs::remove_file(cfg.socket());
    let _ = std::fs::remove_file(cfg.pid_file());
}
