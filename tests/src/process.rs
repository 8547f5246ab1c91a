//! Process plumbing shared by the fixtures and the bench: pidfds, waiting
//! with a timeout, and capturing output of commands whose children outlive
//! them.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `pidfd_open(2)`: a handle that becomes readable when `pid` exits, even if
/// it is not our child (a container init reparented away from the runtime).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success it returns a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor returned above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Wait until the pidfd's process exits. Returns false on timeout
/// (`None` waits forever).
pub fn pidfd_wait(pidfd: &OwnedFd, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32,
        };
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            1 => return Ok(true),
            0 => return Ok(false),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Reap a child through its pidfd (`waitid(P_PIDFD)`), returning its wait
/// status as `ExitStatus`-style raw value, or `None` if it is not our child.
pub fn pidfd_reap(pidfd: &OwnedFd) -> io::Result<Option<i32>> {
    // SAFETY: zeroed siginfo is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pidfd and out-pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if r == 0 {
            // SAFETY: waitid filled a SIGCHLD siginfo.
            let (code, status) = unsafe { (info.si_code, info.si_status()) };
            // Encode like wait(2) so ExitStatus::from_raw can decode it.
            let raw = if code == libc::CLD_EXITED {
                (status & 0xff) << 8
            } else {
                status & 0x7f
            };
            return Ok(Some(raw));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Run `cmd` to completion with stdin closed, capturing stdout/stderr, and
/// panic if it takes longer than `timeout` (after killing it).
///
/// Output goes to unnamed temp files rather than pipes: `runc create` hands
/// its stdio to the container, so a pipe would not reach EOF until the
/// container exits and `Command::output()` would hang.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let mut out = tempfile::tempfile().expect("temp file for stdout");
    let mut err = tempfile::tempfile().expect("temp file for stderr");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup stdout file"))
        .stderr(err.try_clone().expect("dup stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {desc}: {e}"));
    let status = match pidfd_open(child.id() as libc::pid_t) {
        Ok(fd) => {
            if !pidfd_wait(&fd, Some(timeout)).unwrap_or(false) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "timed out after {timeout:?}: {desc}\nstderr: {}",
                    read_all(&mut err)
                );
            }
            child.wait().expect("wait")
        }
        Err(_) => child.wait().expect("wait"), // no pidfds (old kernel): no timeout
    };
    Output {
        status,
        stdout: read_all(&mut out).into_bytes(),
        stderr: read_all(&mut err).into_bytes(),
    }
}

fn read_all(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn captures_output_and_status() {
        let out = output_with_timeout(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn does_not_wait_for_grandchildren_holding_stdout() {
        let t = Instant::now();
        let out = output_with_timeout(
            Command::new("sh").args(["-c", "sleep 5 & echo started"]),
            Duration::from_secs(10),
        );
        assert!(out.status.success());
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    }

    #[test]
    #[should_panic(expected = "timed out")]
    fn times_out() {
        output_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(100));
    }

    #[test]
    #[allow(clippy::zombie_processes, reason = "reaped through the pidfd")]
    fn pidfd_waits_and_reaps() {
        let child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let fd = pidfd_open(child.id() as i32).unwrap();
        assert!(pidfd_wait(&fd, Some(Duration::from_secs(10))).unwrap());
        let raw = pidfd_reap(&fd).unwrap().unwrap();
        assert_eq!(std::process::ExitStatus::from_raw(raw).code(), Some(7));
    }
}
