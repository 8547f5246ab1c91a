//! Specs built by berth-spec, run for real by berth-runc in a busybox rootfs: what Docker's
//! defaults promise is what the container sees (capabilities, seccomp, masked paths, /dev/shm,
//! hostname, env, user, ulimits, read-only rootfs, memory limit, --privileged on a host that
//! lacks CAP_SYS_RESOURCE, --init).
//!
//! Needs root, /bin/busybox (Debian's busybox-static) and a built berth-runc
//! (`cargo build -p berth-runc`; `$BERTH_RUNC` overrides the path). Skipped, with the reason,
//! when not root.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use berth_api::container_config::{ContainerConfig, HostConfig};
use berth_spec::{build, DaemonDefaults, EtcFiles, HostInfo, ImageDefaults, NetNs, SpecInput};
use serde_json::{json, Value};

/// Parent cgroup of the test containers (removed at the end of each test).
const CGROUP_PARENT: &str = "berth-spec-tests";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// target/{debug,release}/berth-runc, the newest, or `$BERTH_RUNC`.
fn runc() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNC").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("berth-runc"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("berth-runc not found under {}: cargo build -p berth-runc", target.display()))
}

/// A busybox rootfs with one symlink per applet, /etc/passwd and /etc/group naming `app`.
fn busybox_rootfs(root: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "home/app"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let bb = root.join("bin/busybox");
    std::fs::copy("/bin/busybox", &bb).expect("/bin/busybox (apt-get install busybox-static)");
    // Ask the host's copy: executing the fresh copy races with other test threads' forks,
    // which may still hold its write descriptor (ETXTBSY).
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnobody:x:65534:\n").unwrap();
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Builds the spec for `config` + `host`, writes the bundle, runs it with berth-runc.
fn run(config: Value, host: Value, daemon: DaemonDefaults, info: &HostInfo) -> Run {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("hostname"), "spec-test\n").unwrap();
    std::fs::write(etc.join("hosts"), "127.0.0.1\tlocalhost\n").unwrap();
    std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    let (h, hs, r) = (etc.join("hostname"), etc.join("hosts"), etc.join("resolv.conf"));

    let id = format!("{:0>64}", format!("{:x}{:x}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let config: ContainerConfig = serde_json::from_value(config).unwrap();
    let host: HostConfig = serde_json::from_value(host).unwrap();
    let image = ImageDefaults {
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let daemon = DaemonDefaults { cgroup_parent: CGROUP_PARENT.into(), ..daemon };
    let spec = build(&SpecInput {
        id: &id,
        config: &config,
        host: &host,
        image: &image,
        rootfs: &rootfs,
        etc_files: Some(EtcFiles { hostname: Some(&h), hosts: Some(&hs), resolv_conf: Some(&r) }),
        net_ns: NetNs::New,
        join_ns: vec![],
        ipc_shm: None,
        volumes: Default::default(),
        daemon: &daemon,
        host_info: info,
    })
    .expect("build spec");
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    let state = dir.path().join("state");
    let out = Command::new(runc())
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id[..16])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let _ = std::fs::remove_dir(h.path().join(CGROUP_PARENT));
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(CGROUP_PARENT));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sh(script: &str) -> Value {
    json!(["sh", "-c", script])
}

/// `key value` lines printed by a container script.
fn field<'a>(out: &'a Run, key: &str) -> &'a str {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {key:?} in output:\n{}\nstderr:\n{}", out.stdout, out.stderr))
        .trim()
}

fn setup() -> Option<HostInfo> {
    if !is_root() {
        eprintln!("skipped: needs root to run containers");
        return None;
    }
    Some(HostInfo::detect().expect("detect the host"))
}

const MEMORY: i64 = 64 << 20;

#[test]
fn docker_defaults_in_a_running_container() {
    let Some(info) = setup() else { return };
    let script = r#"
        echo capeff $(grep CapEff /proc/self/status | cut -f2)
        echo capbnd $(grep CapBnd /proc/self/status | cut -f2)
        echo seccomp $(grep '^Seccomp:' /proc/self/status | cut -f2)
        echo kcore $(test -e /proc/kcore && stat -c %F /proc/kcore || echo absent)
        echo timer_list $(stat -c %F /proc/timer_list) $(wc -c < /proc/timer_list)
        echo firmware $(ls -A /sys/firmware | wc -l) $(stat -f -c %T /sys/firmware)
        echo shm $(df -k /dev/shm | tail -n 1 | awk '{print $2}')
        echo hostname $(hostname)
        echo etchostname $(cat /etc/hostname)
        echo env_a "$A"
        echo env_path "$PATH"
        echo user $(id -u):$(id -g)
        echo nofile $(ulimit -n)
        echo nofile_hard $(ulimit -Hn)
        echo memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)
        echo procsys $(grep ' /proc/sys ' /proc/mounts | awk '{print $4}' | cut -d, -f1)
        echo nnp $(grep NoNewPrivs /proc/self/status | cut -f2)
        echo pid1 $(cat /proc/1/cmdline | tr '\0' ' ')
    "#;
    let out = run(
        json!({"Hostname": "spec-test", "Env": ["A=1"], "Cmd": sh(script)}),
        json!({"Memory": MEMORY, "ShmSize": 8 << 20, "NetworkMode": "none",
               "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]}),
        DaemonDefaults::default(),
        &info,
    );
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(field(&out, "capeff"), "00000000a80425fb", "Docker's 14 default capabilities");
    assert_eq!(field(&out, "capbnd"), "00000000a80425fb");
    assert_eq!(field(&out, "seccomp"), "2", "seccomp filter mode");
    // Masked: files are /dev/null, directories an empty read-only tmpfs. (This VM's kernel
    // has no /proc/kcore; where it exists it is masked like /proc/timer_list.)
    let kcore_on_host = Path::new("/proc/kcore").exists();
    assert_eq!(field(&out, "kcore"), if kcore_on_host { "character special file" } else { "absent" });
    assert_eq!(field(&out, "timer_list"), "character special file 0", "/proc/timer_list is masked");
    assert_eq!(field(&out, "firmware"), "0 tmpfs", "/sys/firmware is masked");
    assert_eq!(field(&out, "shm"), "8192", "/dev/shm is ShmSize");
    assert_eq!(field(&out, "hostname"), "spec-test");
    assert_eq!(field(&out, "etchostname"), "spec-test");
    assert_eq!(field(&out, "env_a"), "1");
    assert_eq!(field(&out, "env_path"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    assert_eq!(field(&out, "user"), "0:0");
    assert_eq!(field(&out, "nofile"), "1024");
    assert_eq!(field(&out, "nofile_hard"), "2048");
    assert_eq!(field(&out, "memory"), MEMORY.to_string(), "memory limit in the container's cgroup");
    assert_eq!(field(&out, "procsys"), "ro", "/proc/sys is read-only");
    assert_eq!(field(&out, "nnp"), "0");
}

#[test]
fn user_from_etc_passwd() {
    let Some(info) = setup() else { return };
    let script = "echo ids $(id -u) $(id -g) $(id -G); echo capeff $(grep CapEff /proc/self/status | cut -f2); \
                  echo capbnd $(grep CapBnd /proc/self/status | cut -f2); echo home $HOME; echo nnp $(grep NoNewPrivs /proc/self/status | cut -f2)";
    let out = run(
        json!({"User": "app", "Cmd": sh(script)}),
        json!({"NetworkMode": "none", "GroupAdd": ["nobody"], "SecurityOpt": ["no-new-privileges"]}),
        DaemonDefaults::default(),
        &info,
    );
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(field(&out, "ids"), "1000 1000 1000 50 65534");
    // Docker: a non-root user starts with no effective capabilities, within the usual bounds.
    assert_eq!(field(&out, "capeff"), "0000000000000000");
    assert_eq!(field(&out, "capbnd"), "00000000a80425fb");
    assert_eq!(field(&out, "nnp"), "1");
    assert_eq!(field(&out, "home"), "/home/app");
}

#[test]
fn read_only_rootfs_refuses_writes() {
    let Some(info) = setup() else { return };
    let script = "touch /newfile 2>&1 && echo root writable; touch /run/ok && echo run ok; \
                  touch /dev/shm/ok && echo shm ok; echo etc $(grep ' /etc/hosts ' /proc/mounts | awk '{print $4}' | cut -d, -f1)";
    let out = run(
        json!({"Cmd": sh(script)}),
        json!({"ReadonlyRootfs": true, "Tmpfs": {"/run": ""}, "NetworkMode": "none"}),
        DaemonDefaults::default(),
        &info,
    );
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Read-only file system"), "{}", out.stdout);
    assert!(!out.stdout.contains("root writable"), "{}", out.stdout);
    assert_eq!(field(&out, "run"), "ok");
    assert_eq!(field(&out, "shm"), "ok");
    assert_eq!(field(&out, "etc"), "ro", "/etc files are read-only too");
}

#[test]
fn privileged_gets_what_the_host_has() {
    let Some(info) = setup() else { return };
    let script = "echo capeff $(grep CapEff /proc/self/status | cut -f2); echo seccomp $(grep '^Seccomp:' /proc/self/status | cut -f2); \
                  echo sys $(grep ' /sys ' /proc/mounts | awk '{print $4}' | cut -d, -f1); \
                  echo timer_list $(stat -c %F /proc/timer_list); echo firmware $(ls -A /sys/firmware | wc -l); \
                  echo null $(stat -c %t:%T /dev/null)";
    let out = run(json!({"Cmd": sh(script)}), json!({"Privileged": true, "NetworkMode": "none"}), DaemonDefaults::default(), &info);
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(field(&out, "capeff"), format!("{:016x}", info.bounding_caps), "every capability the host has");
    assert_eq!(field(&out, "seccomp"), "0");
    assert_eq!(field(&out, "sys"), "rw");
    assert_ne!(field(&out, "timer_list"), "character special file", "nothing is masked");
    assert_ne!(field(&out, "firmware"), "0");
    assert_eq!(field(&out, "null"), "1:3");
}

#[test]
fn init_runs_as_pid_1() {
    let Some(info) = setup() else { return };
    let Some(init) = ["/usr/bin/docker-init", "/usr/bin/tini-static"].iter().map(PathBuf::from).find(|p| p.exists()) else {
        eprintln!("skipped: no docker-init / tini-static on this host");
        return;
    };
    let daemon = DaemonDefaults { init_path: Some(init), ..Default::default() };
    let out = run(
        json!({"Cmd": sh("echo pid1 $(cat /proc/1/cmdline | tr '\\0' ' '); echo me $$")}),
        json!({"Init": true, "NetworkMode": "none"}),
        daemon,
        &info,
    );
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(field(&out, "pid1").starts_with("/sbin/docker-init -- sh -c"), "{}", out.stdout);
    assert_ne!(field(&out, "me"), "1");
}
