//! seccomp user notification: with SCMP_ACT_NOTIFY the runtime sends the listener fd to
//! `listenerPath` with the container's process state; a supervisor holding it decides the
//! result of the trapped system call.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use berth_e2e::{unique_id, Bundle, Runtime};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

/// Receives the listener and the state the runtime sends with it.
fn receive(listener: &UnixListener) -> (OwnedFd, Value) {
    let (conn, _) = listener.accept().expect("runtime connects to listenerPath");
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed this descriptor for us.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    let state: Value = serde_json::from_slice(&buf[..n]).expect("state JSON");
    (fd.expect("a listener fd"), state)
}

/// Answers the next notification with `-errno` and returns the trapped syscall number.
fn answer_with_errno(listener: &OwnedFd, errno: i32) -> i32 {
    // SAFETY: zeroed structs of the kernel's layout, ioctls on a seccomp listener fd.
    unsafe {
        let mut req: libc::seccomp_notif = std::mem::zeroed();
        assert_eq!(libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req), 0, "NOTIF_RECV");
        let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
        resp.id = req.id;
        resp.error = -errno;
        assert_eq!(libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp), 0, "NOTIF_SEND");
        req.data.nr
    }
}

#[test]
fn notify_listener_reaches_the_supervisor_which_decides_the_call() {
    let rt = Runtime::berth();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("notify.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::new();
    b.set_args(&["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"]);
    let c = b.config_mut();
    c["process"]["terminal"] = json!(false);
    c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "berth-e2e",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let id = unique_id("notify");
    let supervisor = std::thread::spawn(move || {
        let (fd, state) = receive(&listener);
        let nr = answer_with_errno(&fd, libc::EXDEV);
        (state, nr)
    });
    let out = rt.run(&id, &b);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "run: {out:?}");
    let (state, nr) = supervisor.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], json!("berth-e2e"), "{state}");
    assert!(state["pid"].as_i64().unwrap() > 1, "host pid expected: {state}");
    assert_eq!(state["state"]["id"], json!(id), "{state}");
    assert!(nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32, "trapped syscall {nr}");
    // The supervisor's answer is what the container saw.
    assert!(stdout.contains("Invalid cross-device link") && stdout.contains("rc=1"), "{stdout}");
}

#[test]
fn notify_without_listener_path_is_refused_before_anything_runs() {
    let rt = Runtime::berth();
    let mut b = Bundle::new();
    b.set_args(&["true"]);
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let id = unique_id("notify");
    let out = rt.create(&id, &b);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listenerPath"), "{err}");
    assert!(!rt.root().join(&id).exists(), "no state may be left");
}
