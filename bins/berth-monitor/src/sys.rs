//! Thin wrappers over the few system calls the monitor makes, on raw libc: the monitor's loop
//! must not allocate or pull in more code than it needs (its memory is the point).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Turns a -1 return into the errno.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Wraps a fresh descriptor.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass descriptors the kernel just returned to us.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid two-int array.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// A close-on-exec stream socketpair.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid two-int array.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

pub(crate) fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) }).map(owned)
}

/// fork(2), born in the cgroup2 directory `cgroup` when given (clone3 CLONE_INTO_CGROUP):
/// moving a process into a cgroup2 afterwards waits for an RCU grace period (~15 ms on some
/// hosts); being born there does not. Where the kernel refuses that, a plain fork.
pub(crate) fn fork_into(cgroup: Option<RawFd>) -> io::Result<libc::pid_t> {
    use berth_runtime::namespaces::CloneArgs;
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    if let Some(fd) = cgroup {
        let args = CloneArgs { flags: CLONE_INTO_CGROUP, exit_signal: libc::SIGCHLD as u64, cgroup: fd as u64, ..Default::default() };
        // SAFETY: clone3 without CLONE_VM and without a stack behaves as fork; the monitor is
        // single-threaded.
        let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
        if r >= 0 {
            return Ok(r as libc::pid_t);
        }
    }
    // SAFETY: fork in a single-threaded process.
    cvt(unsafe { libc::fork() })
}

/// A detached, read-only (nosuid, nodev) bind mount of the file at `path` (open_tree +
/// mount_setattr; needs CAP_SYS_ADMIN): executing through it gives a process whose binary cannot
/// be written through /proc/<pid>/exe.
pub(crate) fn readonly_view(path: &Path) -> io::Result<OwnedFd> {
    #[repr(C)]
    struct MountAttr {
        set: u64,
        clear: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const RDONLY_NOSUID_NODEV: u64 = 0x1 | 0x2 | 0x4;
    let p = cstring(path)?;
    // SAFETY: valid C string; flags only.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let tree = owned(fd as RawFd);
    let attr = MountAttr { set: RDONLY_NOSUID_NODEV, clear: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, attr struct of the size passed.
    let r = unsafe {
        libc::syscall(libc::SYS_mount_setattr, tree.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH as libc::c_uint, &attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tree)
}

pub(crate) fn dev_null(flags: libc::c_int) -> io::Result<OwnedFd> {
    open(c"/dev/null", flags, 0)
}

pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(drop)
}

pub(crate) fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: plain descriptor numbers.
    cvt(unsafe { libc::dup2(from, to) }).map(drop)
}

pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: valid buffer and length.
        match cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: valid buffer and length.
        match cvt_size(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Two buffers in one write (a frame header and its payload), without copying them together.
pub(crate) fn writev2(fd: RawFd, a: &[u8], b: &[u8]) -> io::Result<usize> {
    let iov = [
        libc::iovec { iov_base: a.as_ptr() as *mut _, iov_len: a.len() },
        libc::iovec { iov_base: b.as_ptr() as *mut _, iov_len: b.len() },
    ];
    loop {
        // SAFETY: two valid iovecs.
        match cvt_size(unsafe { libc::writev(fd, iov.as_ptr(), 2) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Writes everything to a blocking descriptor (files, the sync pipes).
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Reads a non-blocking descriptor until EOF or until nothing more is available.
pub(crate) fn read_available(fd: &OwnedFd, max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n.min(max.saturating_sub(out.len()))]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// waitpid that retries on EINTR; returns the raw wait status.
pub(crate) fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    loop {
        // SAFETY: valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r >= 0 {
            return Ok((r, status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Docker's exit code convention: the status, or 128 + the signal that killed the process.
pub(crate) fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// A wait status for humans: "exit status 1", "signal 9".
pub(crate) fn describe_status(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

pub(crate) fn ignore_signal(sig: libc::c_int) {
    // SAFETY: SIG_IGN is a valid disposition for these catchable signals.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
}

pub(crate) fn default_signal(sig: libc::c_int) {
    // SAFETY: SIG_DFL is always valid.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Blocks or unblocks SIGCHLD for the (only) thread.
pub(crate) fn block_sigchld(block: bool) -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local, zero-initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(if block { libc::SIG_BLOCK } else { libc::SIG_UNBLOCK }, &set, std::ptr::null_mut());
        set
    }
}

/// A signalfd for SIGCHLD (which the caller has blocked), non-blocking.
pub(crate) fn sigchld_fd(set: &libc::sigset_t) -> io::Result<OwnedFd> {
    // SAFETY: valid sigset pointer.
    cvt(unsafe { libc::signalfd(-1, set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) }).map(owned)
}

/// Empties a signalfd (the loop reaps every child after any SIGCHLD anyway).
pub(crate) fn drain_signalfd(fd: RawFd) {
    let mut info = [0u8; 128 * 4];
    while matches!(read(fd, &mut info), Ok(n) if n > 0) {}
}

/// CLOCK_REALTIME as (seconds, nanoseconds).
pub(crate) fn now() -> (i64, u32) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, ts.tv_nsec as u32)
}

/// CLOCK_MONOTONIC in milliseconds, for deadlines.
pub(crate) fn monotonic_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// The start time (field 22 of /proc/<pid>/stat) and state letter of a process.
pub(crate) fn proc_stat(pid: i32) -> Option<(u64, u8)> {
    let mut path = [0u8; 32];
    let p = fmt_proc_stat_path(&mut path, pid);
    let f = open(p, libc::O_RDONLY, 0).ok()?;
    let mut buf = [0u8; 1024];
    let n = read(f.as_raw_fd(), &mut buf).ok()?;
    parse_stat(&buf[..n])
}

/// "/proc/<pid>/stat" into a stack buffer, as a C string (no allocation).
fn fmt_proc_stat_path(buf: &mut [u8; 32], pid: i32) -> &CStr {
    let mut digits = [0u8; 12];
    let mut n = pid.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let parts: [&[u8]; 3] = [b"/proc/", &digits[i..], b"/stat\0"];
    let mut len = 0;
    for p in parts {
        buf[len..len + p.len()].copy_from_slice(p);
        len += p.len();
    }
    CStr::from_bytes_with_nul(&buf[..len]).unwrap_or(c"/proc/0/stat")
}

/// Parses /proc/<pid>/stat: the command name may hold spaces and parentheses, so fields are
/// counted after the last ')'.
pub(crate) fn parse_stat(text: &[u8]) -> Option<(u64, u8)> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    // state is field 3; starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// A path as a C string.
pub(crate) fn cstring(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Reads a small file whole (cgroup counters).
pub(crate) fn read_small(path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    let f = open(path, libc::O_RDONLY, 0)?;
    read(f.as_raw_fd(), buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let line = b"42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some((987654, b'S')));
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn proc_stat_path_has_no_allocation_and_is_right() {
        let mut b = [0u8; 32];
        assert_eq!(fmt_proc_stat_path(&mut b, 12345).to_bytes(), b"/proc/12345/stat");
        let mut b = [0u8; 32];
        assert_eq!(fmt_proc_stat_path(&mut b, 0).to_bytes(), b"/proc/0/stat");
    }

    #[test]
    fn own_stat_is_readable() {
        let (start, state) = proc_stat(std::process::id() as i32).unwrap();
        assert!(start > 0);
        // The main thread's state: running, or asleep while this test's thread runs.
        assert!(matches!(state, b'R' | b'S'), "{}", state as char);
    }

    #[test]
    fn exit_codes_follow_docker() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 137);
    }
}
