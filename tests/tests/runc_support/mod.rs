//! Helpers shared by the runc_* end-to-end tests (lifecycle, cgroups, hooks,
//! failures): output checks, cgroup paths in every hierarchy, host mounts and
//! processes, polling. Included with `mod runc_support;`.

#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use berth_e2e::Runtime;

/// How long the helpers wait for a container to get somewhere.
const WAIT: Duration = Duration::from_secs(10);

/// berth-runc from this workspace with a private `--root`, 30 s per command.
pub fn berth() -> Runtime {
    Runtime::berth().with_timeout(Duration::from_secs(30))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success; returns stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts failure; returns stderr.
#[track_caller]
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
    stderr(out)
}

/// Polls `f` every 10 ms until it is true or `timeout` passes; returns the last value.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every cgroup mountpoint (v1 hierarchies and cgroup2) from /proc/self/mountinfo.
pub fn cgroup_mountpoints() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let mp = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(unescape(mp)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The directories of cgroup `path` (absolute, e.g. "/berth/ID") in every hierarchy.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    cgroup_mountpoints()
        .into_iter()
        .map(|m| m.join(path.trim_start_matches('/')))
        .collect()
}

/// `/sys/fs/cgroup/<ctrl><path>/<file>`, trimmed.
pub fn cg_read(ctrl: &str, path: &str, file: &str) -> String {
    let p = Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(path.trim_start_matches('/'))
        .join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Asserts that cgroup `path` exists in no hierarchy.
#[track_caller]
pub fn assert_cgroup_gone(path: &str) {
    let left: Vec<PathBuf> = cgroup_dirs(path)
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "cgroup {path} left behind: {left:?}");
}

/// Mount points at or under `dir` (mountinfo field 5).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let dir = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape))
        .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap(), 8);
            if let Ok(n) = n {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Host pids of live (non-zombie) processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return vec![];
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(marker) && !is_zombie(pid)
        })
        .collect()
}

pub fn is_zombie(pid: i32) -> bool {
    proc_state(pid).is_none_or(|s| s == 'Z' || s == 'X')
}

fn proc_state(pid: i32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

/// Waits (up to 10 s) until no live process carries `marker`; asserts it.
#[track_caller]
pub fn assert_no_process(marker: &str) {
    let gone = wait_until(Duration::from_secs(10), || {
        processes_with(marker).is_empty()
    });
    assert!(
        gone,
        "processes with {marker:?} still alive: {:?}",
        processes_with(marker)
    );
}

/// Kills leftovers carrying `marker` (used by guards, never asserted).
pub fn kill_marked(marker: &str) {
    for pid in processes_with(marker) {
        // SAFETY: kill takes integers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Pids of the container's init as the runtime reports it.
pub fn init_pid(rt: &Runtime, id: &str) -> i32 {
    rt.state(id)["pid"].as_i64().expect("state has pid") as i32
}

pub fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A child process killed (and reaped) on drop, so a failing test leaks none.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let head = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let tail = &s[19.min(s.len())..];
    let tail = tail
        .strip_prefix('.')
        .map(|t| t.trim_start_matches(|c: char| c.is_ascii_digit()))
        .unwrap_or(tail);
    head && (tail == "Z" || (tail.len() == 6 && (tail.starts_with('+') || tail.starts_with('-'))))
}

/// A console socket: receives pty masters sent with SCM_RIGHTS.
pub struct ConsoleSocket {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    /// Accepts one connection and receives the fd sent on it.
    pub fn recv_master(&self) -> OwnedFd {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + WAIT;
        let conn: UnixStream = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("no connection on the console socket: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut data = [0u8; 64];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: zeroed msghdr is valid; pointers below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: valid socket and msghdr.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
        // SAFETY: the kernel filled msg; we check the header before reading the data.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            assert!(!c.is_null(), "console socket message without an fd");
            assert_eq!(
                ((*c).cmsg_level, (*c).cmsg_type),
                (libc::SOL_SOCKET, libc::SCM_RIGHTS)
            );
            OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32))
        }
    }
}

/// Reads a pty master until `want` appears or the slave side is gone.
pub fn read_pty(master: OwnedFd, want: &str) -> String {
    let mut f = fs::File::from(master);
    let deadline = Instant::now() + WAIT;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(want) && Instant::now() < deadline {
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
            continue;
        }
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO: every slave fd is closed
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text
}
