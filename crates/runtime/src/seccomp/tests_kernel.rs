//! Tests against the real kernel: a forked child loads a filter and tries syscalls; the parent
//! checks how it ended. The child only makes raw syscalls and always leaves with `_exit`.

use serde_json::json;

use super::docker_profile::{convert, DOCKER_DEFAULT_CAPS, DOCKER_DEFAULT_PROFILE_JSON};
use super::*;

fn filter(v: serde_json::Value) -> Filter {
    compile(&serde_json::from_value(v).expect("spec")).expect("compile")
}

fn errno() -> i32 {
    // SAFETY: reading the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// `syscall(2)`: the result, and errno when it failed.
fn sys(nr: libc::c_long, a: [libc::c_long; 3]) -> Result<libc::c_long, i32> {
    // SAFETY: the tests only pass plain integers or valid pointers.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2]) };
    if r == -1 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// Forks; the child loads `f`, runs `body` (which may use the listener fd) and exits with its
/// result (100 if loading failed). Returns the raw wait status.
fn in_child(f: &Filter, body: impl FnOnce(Option<i32>) -> i32) -> i32 {
    use std::os::fd::IntoRawFd;
    // SAFETY: the child makes only raw syscalls (no allocation: `load` allocates only when it
    // fails, and then the error is leaked) and leaves with `_exit`.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match f.load() {
                Ok(fd) => body(fd.map(|fd| fd.into_raw_fd())),
                Err(e) => {
                    std::mem::forget(e);
                    100
                }
            };
            libc::_exit(code);
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        status
    }
}

fn assert_exit_0(status: i32) {
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: exited {} with {}, signaled {} by {}",
        libc::WIFEXITED(status),
        libc::WEXITSTATUS(status),
        libc::WIFSIGNALED(status),
        libc::WTERMSIG(status)
    );
}

fn assert_sigsys(status: i32) {
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "child should die of SIGSYS: exited {} with {}, signaled {} by {}",
        libc::WIFEXITED(status),
        libc::WEXITSTATUS(status),
        libc::WIFSIGNALED(status),
        libc::WTERMSIG(status)
    );
}

const BAD_PATH: &[u8] = b"/nonexistent-berth-seccomp-test/dir\0";

#[test]
fn seccomp_kernel_errno_and_allow() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV},
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
         "args": [{"index": 1, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GT"}]},
    ]}));
    let status = in_child(&f, |_| {
        let path = BAD_PATH.as_ptr() as libc::c_long;
        if !matches!(sys(libc::SYS_getpid, [0; 3]), Ok(p) if p > 0) {
            return 1;
        }
        if sys(libc::SYS_mkdir, [path, 0o755, 0]) != Err(libc::EPERM) {
            return 2;
        }
        if sys(libc::SYS_mkdirat, [libc::AT_FDCWD as libc::c_long, path, 0o755]) != Err(libc::EPERM) {
            return 3;
        }
        if sys(libc::SYS_rmdir, [path, 0, 0]) != Err(libc::EXDEV) {
            return 4;
        }
        // 64-bit argument compare: only offsets above 4 GiB are refused.
        if sys(libc::SYS_lseek, [-1, 0x2_0000_0000, 0]) != Err(libc::EACCES) {
            return 5;
        }
        if sys(libc::SYS_lseek, [-1, 0x1_0000_0000, 0]) != Err(libc::EBADF) {
            return 6;
        }
        if sys(libc::SYS_lseek, [-1, 5, 0]) != Err(libc::EBADF) {
            return 7;
        }
        0
    });
    assert_exit_0(status);
}

#[test]
fn seccomp_kernel_docker_default_profile() {
    let s = convert(DOCKER_DEFAULT_PROFILE_JSON, &DOCKER_DEFAULT_CAPS, native_go_arch(), Some((6, 0, 0)))
        .unwrap();
    let f = compile(&s).unwrap();
    let status = in_child(&f, |_| {
        if !matches!(sys(libc::SYS_getpid, [0; 3]), Ok(p) if p > 0) {
            return 1;
        }
        // Query-only personality call is allowed; setting an odd persona is not.
        if sys(libc::SYS_personality, [0xffff_ffff, 0, 0]).is_err() {
            return 2;
        }
        if sys(libc::SYS_personality, [0x1234, 0, 0]) != Err(libc::EPERM) {
            return 3;
        }
        // mount(2) is refused before the kernel looks at the (bad) arguments.
        if sys(libc::SYS_mount, [0, 0, 0]) != Err(libc::EPERM) {
            return 4;
        }
        // clone with CLONE_NEWUSER is refused; should it ever succeed, the new child leaves.
        match sys(libc::SYS_clone, [(libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_long, 0, 0]) {
            Err(libc::EPERM) => {}
            Ok(0) => unsafe { libc::_exit(0) },
            _ => return 5,
        }
        if sys(libc::SYS_clone3, [0, 0, 0]) != Err(libc::ENOSYS) {
            return 6;
        }
        // A number past every syscall the profile names: ENOSYS, not EPERM.
        if sys(1000, [0; 3]) != Err(libc::ENOSYS) {
            return 7;
        }
        0
    });
    assert_exit_0(status);
}

fn native_go_arch() -> &'static str {
    super::docker_profile::native_arch()
}

fn single_rule(action: &str) -> Filter {
    filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
                  "syscalls": [{"names": ["getppid"], "action": action}]}))
}

#[test]
fn seccomp_kernel_kill_process() {
    let f = single_rule("SCMP_ACT_KILL_PROCESS");
    assert_sigsys(in_child(&f, |_| {
        let _ = sys(libc::SYS_getppid, [0; 3]);
        50
    }));
}

#[test]
fn seccomp_kernel_kill_thread() {
    let f = single_rule("SCMP_ACT_KILL");
    assert_sigsys(in_child(&f, |_| {
        let _ = sys(libc::SYS_getppid, [0; 3]);
        50
    }));
}

#[test]
fn seccomp_kernel_trap() {
    let f = single_rule("SCMP_ACT_TRAP");
    assert_sigsys(in_child(&f, |_| {
        let _ = sys(libc::SYS_getppid, [0; 3]);
        50
    }));
}

#[test]
fn seccomp_kernel_trace_log_and_flags() {
    // TRACE with no tracer attached fails the call with ENOSYS; LOG lets it through.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRACE"},
                     {"names": ["getpid"], "action": "SCMP_ACT_LOG"}]}));
    assert_exit_0(in_child(&f, |fd| {
        if fd.is_some() {
            return 1;
        }
        if sys(libc::SYS_getppid, [0; 3]) != Err(libc::ENOSYS) {
            return 2;
        }
        if !matches!(sys(libc::SYS_getpid, [0; 3]), Ok(p) if p > 0) {
            return 3;
        }
        0
    }));
}

/// A bad-architecture syscall: an x86_64 process making an x32 call on a filter without x32.
#[cfg(target_arch = "x86_64")]
#[test]
fn seccomp_kernel_x32_call_is_bad_arch() {
    let f = single_rule("SCMP_ACT_ERRNO");
    assert_sigsys(in_child(&f, |_| {
        let _ = sys(X32_SYSCALL_BIT as libc::c_long | libc::SYS_getpid, [0; 3]);
        50
    }));
}

#[test]
fn seccomp_kernel_notify_round_trip() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(f.needs_listener());
    let mut pipe = [0i32; 2];
    // SAFETY: plain pipe(2) and fork(2); see `in_child` for the child's rules.
    unsafe {
        assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            libc::close(pipe[0]);
            let fd = match f.load() {
                Ok(Some(fd)) => std::os::fd::IntoRawFd::into_raw_fd(fd),
                Ok(None) => libc::_exit(101),
                Err(e) => {
                    std::mem::forget(e);
                    libc::_exit(100)
                }
            };
            // Tell the parent the listener's number, then make the notified call.
            let n = fd.to_ne_bytes();
            libc::write(pipe[1], n.as_ptr().cast(), 4);
            let r = libc::syscall(libc::SYS_getppid);
            libc::_exit(if r == 4242 { 0 } else { 1 });
        }
        libc::close(pipe[1]);
        let mut n = [0u8; 4];
        assert_eq!(libc::read(pipe[0], n.as_mut_ptr().cast(), 4), 4, "child did not report a listener");
        libc::close(pipe[0]);
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        assert!(pidfd >= 0, "pidfd_open: {}", errno());
        let listener = libc::syscall(libc::SYS_pidfd_getfd, pidfd, i32::from_ne_bytes(n), 0) as i32;
        assert!(listener >= 0, "pidfd_getfd: {}", errno());
        let mut pfd = libc::pollfd { fd: listener, events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut pfd, 1, 10_000) != 1 {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
            panic!("no notification within 10 s");
        }
        let mut req: libc::seccomp_notif = std::mem::zeroed();
        assert_eq!(libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req), 0, "NOTIF_RECV: {}", errno());
        assert_eq!(req.pid as i32, pid);
        assert_eq!(req.data.nr as libc::c_long, libc::SYS_getppid);
        let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
        resp.id = req.id;
        resp.val = 4242;
        assert_eq!(libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp), 0, "NOTIF_SEND: {}", errno());
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        libc::close(listener);
        libc::close(pidfd);
        assert_exit_0(status);
    }
}
