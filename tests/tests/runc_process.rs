//! End-to-end tests of `process` as berth-runc applies it: args, env, cwd, user and groups,
//! umask, rlimits, capabilities, no_new_privs, oom_score_adj, sysctls, a terminal through the
//! console socket, seccomp, inherited fds and signal state.
//!
//! Each test runs real containers (busybox `sh -c` scripts that print what they see) and asserts
//! on their output. Refused specs must fail with a message naming the problem and leave nothing
//! behind (no state, no cgroup). Needs root and `cargo build -p berth-runc`.

mod runc_script;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::{output_with_timeout, unique_id, Bundle, Runtime};
use runc_script::*;
use serde_json::{json, Value};

#[test]
fn args_reach_the_process_verbatim() {
    let mut b = Bundle::new();
    b.set_args(&[
        "sh",
        "-c",
        "for a in \"$@\"; do echo \"[$a]\"; done",
        "sh",
        "a b",
        "",
        "*",
        "$HOME",
        "ü;|",
    ]);
    assert_eq!(run_ok(&b), "[a b]\n[]\n[*]\n[$HOME]\n[ü;|]\n");
}

#[test]
fn env_is_exactly_the_specs() {
    let mut b = Bundle::new();
    b.config_mut()["process"]["env"] = json!(["PATH=/bin:/usr/bin", "A=1", "B=x y=z", "EMPTY="]);
    b.set_args(&["env"]);
    let rt = Runtime::berth();
    let mut cmd = rt.command();
    cmd.env("BERTH_E2E_LEAK_CANARY", "1");
    let out = run_cmd(&rt, cmd, &b, &[]);
    assert!(out.status.success(), "{}", describe("run", &out));
    let mut got: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    got.sort();
    assert_eq!(
        got,
        ["A=1", "B=x y=z", "EMPTY=", "PATH=/bin:/usr/bin"],
        "container environment"
    );
}

#[test]
fn cwd_must_exist_and_is_used() {
    let mut b = Bundle::new();
    b.set_cwd("/usr/bin");
    assert_eq!(field(&run_sh(&mut b, "echo pwd=$(pwd)"), "pwd"), "/usr/bin");
    // A cwd only root can enter still works for another user (entered before dropping root).
    b.set_cwd("/root").set_user(1000, 1000);
    assert_eq!(field(&run_sh(&mut b, "echo pwd=$(pwd)"), "pwd"), "/root");
    let mut b = Bundle::new();
    b.set_cwd("/does/not/exist");
    assert_refused(&b, &["cwd", "/does/not/exist"]);
    b.set_cwd("relative/dir");
    assert_refused(&b, &["cwd", "absolute"]);
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let mut b = Bundle::new();
    b.config_mut()["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 2000]});
    let out = run_sh(
        &mut b,
        "grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo id=$(id)",
    );
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        words(field(&out, "Uid")),
        "1000 1000 1000 1000",
        "real/effective/saved/fs uid"
    );
    assert_eq!(
        words(field(&out, "Gid")),
        "1001 1001 1001 1001",
        "real/effective/saved/fs gid"
    );
    assert_eq!(
        words(field(&out, "Groups")),
        "10 2000",
        "supplementary groups"
    );
    assert!(field(&out, "id").starts_with("uid=1000 gid=1001"), "{out}");
}

#[test]
fn umask_applies_to_created_files() {
    for (umask, file, dir) in [(0o077, "600", "700"), (0o022, "644", "755")] {
        let mut b = Bundle::new();
        b.config_mut()["process"]["user"]["umask"] = json!(umask);
        let out = run_sh(
            &mut b,
            "echo umask=$(umask); touch /dev/shm/f; mkdir /dev/shm/d; \
             echo file=$(stat -c %a /dev/shm/f); echo dir=$(stat -c %a /dev/shm/d)",
        );
        assert_eq!(field(&out, "umask"), format!("{umask:04o}"));
        assert_eq!(
            field(&out, "file"),
            file,
            "mode of a new file with umask {umask:o}"
        );
        assert_eq!(
            field(&out, "dir"),
            dir,
            "mode of a new dir with umask {umask:o}"
        );
    }
}

#[test]
fn rlimits_are_applied() {
    let mut b = Bundle::new();
    b.config_mut()["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}
    ]);
    let out = run_sh(&mut b, "echo soft=$(ulimit -n); echo hard=$(ulimit -Hn); grep -E '^Max (open files|core)' /proc/self/limits");
    assert_eq!(field(&out, "soft"), "512");
    assert_eq!(field(&out, "hard"), "1024");
    let limits = |name: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}:\n{out}"));
        line[name.len()..]
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(limits("Max open files"), ["512", "1024", "files"]);
    assert_eq!(limits("Max core file size"), ["0", "4096", "bytes"]);
}

fn has_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    u64::from_str_radix(field(&status, "CapEff"), 16).unwrap() & (1 << 24) != 0 // CAP_SYS_RESOURCE
}

#[test]
fn rlimit_above_the_inherited_hard_limit_is_refused() {
    if has_cap_sys_resource() {
        eprintln!("skipped: this process has CAP_SYS_RESOURCE, so any hard limit can be raised");
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let mut b = Bundle::new();
    b.config_mut()["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": lim.rlim_max + 1}]);
    assert_refused(
        &b,
        &[
            "RLIMIT_NOFILE",
            "CAP_SYS_RESOURCE",
            &(lim.rlim_max + 1).to_string(),
        ],
    );
}

/// Cap{Inh,Prm,Eff,Bnd,Amb} of /proc/self/status as read by the container's `grep`.
fn cap_masks(out: &str) -> BTreeMap<String, u64> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Cap")?.split_once(":\t"))
        .map(|(k, v)| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap()))
        .collect()
}

fn mask(caps: &[u32]) -> u64 {
    caps.iter().map(|c| 1u64 << c).sum()
}

#[test]
fn capabilities_match_the_requested_sets() {
    const CAP_CHOWN: u32 = 0;
    const CAP_KILL: u32 = 5;
    const CAP_SETUID: u32 = 7;
    const CAP_NET_BIND_SERVICE: u32 = 10;
    const CAP_NET_RAW: u32 = 13;
    // Root: with no file capabilities execve gives root everything in the bounding set.
    let set = [CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE];
    let names = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut b = Bundle::new();
    b.config_mut()["process"]["capabilities"] = json!({"bounding": names, "effective": names, "permitted": names, "inheritable": names, "ambient": names});
    let out = run_sh(
        &mut b,
        "grep ^Cap /proc/self/status; chown 1 /dev/shm 2>&1 && echo chown=ok",
    );
    let want: BTreeMap<String, u64> = ["Inh", "Prm", "Eff", "Bnd", "Amb"]
        .iter()
        .map(|k| (k.to_string(), mask(&set)))
        .collect();
    assert_eq!(cap_masks(&out), want, "root's capability sets:\n{out}");
    assert_eq!(
        field(&out, "chown"),
        "ok",
        "CAP_CHOWN granted but chown fails"
    );
    // Non-root: only ambient capabilities survive execve, into permitted and effective.
    let mut b = Bundle::new();
    b.set_user(1000, 1000);
    b.config_mut()["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    });
    let out = run_sh(&mut b, "grep ^Cap /proc/self/status; chown 1 /dev/shm 2>/dev/null && echo chown=ok || echo chown=refused");
    let amb = mask(&[CAP_KILL, CAP_NET_BIND_SERVICE]);
    let want = BTreeMap::from([
        ("Inh".to_string(), amb),
        ("Prm".to_string(), amb),
        ("Eff".to_string(), amb),
        (
            "Bnd".to_string(),
            mask(&[
                CAP_CHOWN,
                CAP_KILL,
                CAP_NET_BIND_SERVICE,
                CAP_NET_RAW,
                CAP_SETUID,
            ]),
        ),
        ("Amb".to_string(), amb),
    ]);
    assert_eq!(cap_masks(&out), want, "uid 1000's capability sets:\n{out}");
    assert_eq!(field(&out, "chown"), "refused", "chown without CAP_CHOWN");
}

#[test]
fn capability_outside_the_runtimes_bounding_set_is_refused() {
    let setpriv = berth_e2e::find_in_path("setpriv").expect("setpriv (util-linux) is installed");
    let mut b = Bundle::new();
    for set in ["bounding", "effective", "permitted"] {
        b.config_mut()["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_MODULE"));
    }
    let rt = Runtime::berth();
    let id = unique_id("nocap");
    let mut cmd = Command::new(setpriv);
    cmd.args(["--bounding-set", "-sys_module", "--"])
        .arg(rt.bin())
        .arg("--root")
        .arg(rt.root());
    cmd.arg("create").arg("--bundle").arg(b.path()).arg(&id);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(30));
    let _ = rt.delete_force(&id);
    assert!(
        !out.status.success(),
        "{}",
        describe("create with CAP_SYS_MODULE should fail", &out)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("CAP_SYS_MODULE") && err.contains("bounding set"),
        "unclear error: {err}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn no_new_privileges_is_set_as_asked() {
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = Bundle::new();
        b.config_mut()["process"]["noNewPrivileges"] = json!(nnp);
        let out = run_sh(&mut b, "grep NoNewPrivs /proc/self/status");
        assert_eq!(field(&out, "NoNewPrivs"), want, "noNewPrivileges: {nnp}");
    }
}

#[test]
fn oom_score_adj_is_applied() {
    let mut b = Bundle::new();
    b.config_mut()["process"]["oomScoreAdj"] = json!(500);
    let out = run_sh(
        &mut b,
        "echo adj=$(cat /proc/self/oom_score_adj); echo init=$(cat /proc/1/oom_score_adj)",
    );
    assert_eq!(field(&out, "adj"), "500");
    assert_eq!(field(&out, "init"), "500");
    if !has_cap_sys_resource()
        && fs::read_to_string("/proc/self/oom_score_adj")
            .unwrap()
            .trim()
            == "0"
    {
        // Lowering it needs CAP_SYS_RESOURCE: refused, and said so.
        b.config_mut()["process"]["oomScoreAdj"] = json!(-500);
        assert_refused(&b, &["oom_score_adj", "-500"]);
    }
}

#[test]
fn namespaced_sysctls_are_set_and_others_refused() {
    let host_ttl = fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap();
    let host_shmmax = fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let mut b = Bundle::new();
    b.config_mut()["linux"]["sysctl"] = json!({
        "kernel.shmmax": "123456789",
        "fs.mqueue.msg_max": "20",
        "net.ipv4.ip_default_ttl": "42"
    });
    let out = run_sh(
        &mut b,
        "echo shmmax=$(cat /proc/sys/kernel/shmmax); echo msgmax=$(cat /proc/sys/fs/mqueue/msg_max); \
         echo ttl=$(cat /proc/sys/net/ipv4/ip_default_ttl)",
    );
    assert_eq!(field(&out, "shmmax"), "123456789");
    assert_eq!(field(&out, "msgmax"), "20");
    assert_eq!(field(&out, "ttl"), "42");
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap(),
        host_ttl,
        "host sysctl changed"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax,
        "host sysctl changed"
    );
    let swappiness = fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    b.config_mut()["linux"]["sysctl"] = json!({"vm.swappiness": "7"});
    assert_refused(&b, &["vm.swappiness", "not namespaced"]);
    assert_eq!(
        fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        swappiness
    );
    b.config_mut()["linux"]["sysctl"] = json!({"net.ipv4.ip_default_ttl": "42"});
    namespaces(&mut b).retain(|n| n["type"] != "network");
    assert_refused(&b, &["net.ipv4.ip_default_ttl", "namespace"]);
}

/// Receives one fd sent with SCM_RIGHTS on a connected unix socket.
fn recv_fd(sock: &impl AsRawFd) -> OwnedFd {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cmsg = [0u64; 16];
    // SAFETY: zeroed msghdr is valid; we point it at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: valid socket and msghdr.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    assert!(
        n >= 0,
        "recvmsg on the console socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel filled msg; CMSG_* walk the control buffer it describes.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "console socket message carried no fd");
        assert_eq!(
            ((*c).cmsg_level, (*c).cmsg_type),
            (libc::SOL_SOCKET, libc::SCM_RIGHTS)
        );
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()))
    }
}

/// Reads from the pty master until `done(output)` or the timeout; returns what was read.
fn read_until(master: &mut fs::File, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !done(&got) {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as i32;
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if left == 0 || unsafe { libc::poll(&mut p, 1, left) } <= 0 {
            break;
        }
        match master.read(&mut buf) {
            Ok(n) if n > 0 => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => break,
        }
    }
    got
}

#[test]
fn terminal_is_sent_over_the_console_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::new();
    b.config_mut()["process"]["terminal"] = json!(true);
    b.set_args(&["sh"]);
    let rt = Runtime::berth();
    let id = unique_id("tty");
    let mut cmd = rt.command();
    cmd.arg("create")
        .arg("--console-socket")
        .arg(&sock)
        .arg("--bundle")
        .arg(b.path())
        .arg(&id);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(30));
    struct Delete<'a>(&'a Runtime, &'a str);
    impl Drop for Delete<'_> {
        fn drop(&mut self) {
            let _ = self.0.delete_force(self.1);
        }
    }
    let _cleanup = Delete(&rt, &id);
    assert!(
        out.status.success(),
        "{}",
        describe("create with a terminal", &out)
    );
    listener.set_nonblocking(false).unwrap();
    let (conn, _) = listener.accept().unwrap();
    let mut master = fs::File::from(recv_fd(&conn));
    let out = rt.start(&id);
    assert!(out.status.success(), "{}", describe("start", &out));
    // The quotes keep the typed command (echoed by the tty) from matching the expected output.
    master
        .write_all(b"tty; [ -t 0 ] && [ -t 1 ] && echo std''io-tty; [ -c /dev/console ] && echo con''sole-ok; echo $((6*7))\n")
        .unwrap();
    let got = read_until(&mut master, Duration::from_secs(10), |s| {
        s.lines().any(|l| l.trim() == "42")
    });
    let lines: Vec<&str> = got.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"42"),
        "no 42 from the shell on the pty:\n{got:?}"
    );
    assert!(
        lines.contains(&"/dev/pts/0"),
        "tty is not /dev/pts/0:\n{got:?}"
    );
    assert!(
        lines.contains(&"stdio-tty"),
        "stdin/stdout are not the terminal:\n{got:?}"
    );
    assert!(
        lines.contains(&"console-ok"),
        "/dev/console missing:\n{got:?}"
    );
    master.write_all(b"exit 3\n").unwrap();
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
}

fn seccomp_mkdir_errno(errno_ret: Option<u32>) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"});
    if let Some(e) = errno_ret {
        rule["errnoRet"] = json!(e);
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [rule]})
}

#[test]
fn seccomp_profile_denies_listed_syscalls_only() {
    for (errno_ret, msg) in [
        (None, "Operation not permitted"),
        (Some(libc::EACCES as u32), "Permission denied"),
    ] {
        let mut b = Bundle::new();
        b.config_mut()["linux"]["seccomp"] = seccomp_mkdir_errno(errno_ret);
        let out = run_sh(
            &mut b,
            "echo mkdir=$(mkdir /dev/shm/d 2>&1 && echo ok); touch /dev/shm/f && echo touch=ok; \
             grep Seccomp: /proc/self/status",
        );
        assert!(
            field(&out, "mkdir").ends_with(msg),
            "mkdir under an ERRNO rule ({errno_ret:?}):\n{out}"
        );
        assert_eq!(
            field(&out, "touch"),
            "ok",
            "a syscall outside the profile's rules was denied"
        );
        assert_eq!(
            field(&out, "Seccomp"),
            "2",
            "no seccomp filter on the process"
        );
    }
}

#[test]
fn seccomp_docker_default_profile_blocks_user_namespaces() {
    let caps: Vec<&str> = berth_runtime::seccomp::docker_profile::DOCKER_DEFAULT_CAPS.to_vec();
    let profile = berth_runtime::seccomp::docker_default_profile(
        berth_runtime::seccomp::docker_profile::DOCKER_DEFAULT_PROFILE_JSON,
        &caps,
        berth_runtime::seccomp::docker_profile::native_arch(),
    )
    .expect("docker default profile converts");
    let script = "unshare -U true 2>&1 && echo userns=ok; ls / >/dev/null && echo ls=ok; grep Seccomp: /proc/self/status";
    let mut b = Bundle::new();
    let out = run_sh(&mut b, script);
    assert_eq!(
        field(&out, "userns"),
        "ok",
        "control: unshare -U fails even without seccomp:\n{out}"
    );
    b.config_mut()["linux"]["seccomp"] = serde_json::to_value(&profile).unwrap();
    let out = run_sh(&mut b, script);
    assert!(
        out.contains("Operation not permitted"),
        "Docker's profile let unshare(CLONE_NEWUSER) through:\n{out}"
    );
    assert_eq!(field(&out, "ls"), "ok");
    assert_eq!(field(&out, "Seccomp"), "2");
}

#[test]
fn no_runtime_fds_leak_into_the_container() {
    // Open fds of berth-runc's caller (3 and 9 without CLOEXEC) must not reach the container;
    // with --preserve-fds 1, fd 3 must.
    let file = tempfile::tempfile().unwrap();
    let raw = file.as_raw_fd();
    for preserve in [None, Some("1")] {
        let mut b = Bundle::new();
        b.set_args(&["ls", "-l", "/proc/self/fd"]);
        let rt = Runtime::berth();
        let mut cmd = rt.command();
        // SAFETY: dup2 is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                for target in [3, 9] {
                    // dup2 onto itself would keep FD_CLOEXEC: clear it instead.
                    let r = if raw == target {
                        libc::fcntl(target, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(raw, target)
                    };
                    if r < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let flags: &[&str] = match preserve {
            Some(n) => &["--preserve-fds", n],
            None => &[],
        };
        let out = run_cmd(&rt, cmd, &b, flags);
        assert!(out.status.success(), "{}", describe("run", &out));
        let listing = text(&out.stdout);
        let fds: BTreeMap<u32, String> = listing
            .lines()
            .filter_map(|l| {
                let (name, target) = l.split_once(" -> ")?;
                Some((
                    name.split_whitespace().last()?.parse().ok()?,
                    target.to_string(),
                ))
            })
            .collect();
        // ls may list the fd of the directory it reads: not a leak.
        let nums: Vec<u32> = fds
            .iter()
            .filter(|(_, t)| !t.starts_with("/proc/"))
            .map(|(n, _)| *n)
            .collect();
        let want: &[u32] = if preserve.is_some() {
            &[0, 1, 2, 3]
        } else {
            &[0, 1, 2]
        };
        assert_eq!(
            nums, want,
            "fds of the container process (preserve-fds {preserve:?}):\n{listing}"
        );
        if preserve.is_some() {
            assert!(
                fds[&3].contains("(deleted)") || fds[&3].starts_with("/tmp"),
                "fd 3 is not the preserved file:\n{listing}"
            );
        }
    }
}

#[test]
fn signals_start_from_the_defaults() {
    // The caller ignores SIGINT, SIGPIPE and signals 32 and 33 (which glibc's posix_spawn
    // ignores in a child of a threaded parent) and blocks SIGUSR1 and SIGRTMAX; none of it may
    // reach the container's init, nor what `run` blocks for forwarding.
    let mut b = Bundle::new();
    b.set_args(&["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    let rt = Runtime::berth();
    let mut cmd = rt.command();
    // SAFETY: signal and sigprocmask are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            // 32 and 33 through the raw syscall (glibc's wrappers refuse them): a kernel
            // sigaction whose first field is SIG_IGN, the rest zero (x86_64, aarch64, ...).
            let ign = [1u64, 0, 0, 0];
            for sig in [32, 33] {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    ign.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                );
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigaddset(&mut set, libc::SIGRTMAX());
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let out = run_cmd(&rt, cmd, &b, &[]);
    assert!(out.status.success(), "{}", describe("run", &out));
    let out = text(&out.stdout);
    assert_eq!(
        field(&out, "SigBlk"),
        "0000000000000000",
        "blocked signals in PID 1:\n{out}"
    );
    assert_eq!(
        field(&out, "SigIgn"),
        "0000000000000000",
        "ignored signals in PID 1:\n{out}"
    );
}
