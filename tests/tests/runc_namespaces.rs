//! End-to-end tests of the container's namespaces as berth-runc sets them up: pid (the process
//! is PID 1), uts (hostname, domainname), ipc, network (only lo), cgroup (rooted at the
//! container's cgroup), user (uid/gid maps, seen from inside and from the host), time (clock
//! offsets), and joining existing namespaces by path.
//!
//! Each test runs real containers (busybox `sh -c` scripts that print what they see) and asserts
//! on their output, or inspects a created container's init from the host through /proc/<pid>.
//! Needs root and `cargo build -p berth-runc`.

mod runc_script;

use std::fs;

use berth_e2e::{unique_id, Bundle, Runtime};
use runc_script::*;
use serde_json::json;

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let mut b = Bundle::new();
    let out = run_sh(
        &mut b,
        "echo pid=$$; echo ns=$(readlink /proc/self/ns/pid); echo comm1=$(cat /proc/1/comm); \
         cd /proc; echo procs=$(echo [0-9]*)",
    );
    assert_eq!(
        field(&out, "pid"),
        "1",
        "the container process is not PID 1"
    );
    assert_eq!(field(&out, "comm1"), "sh");
    assert_ne!(
        field(&out, "ns"),
        host_ns("self", "pid"),
        "container shares the host PID namespace"
    );
    // Only the shell and its own children: no host process is visible.
    let procs: Vec<u32> = field(&out, "procs")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        procs.contains(&1) && procs.iter().all(|&p| p < 10),
        "processes visible in the container: {procs:?}"
    );
}

#[test]
fn uts_namespace_sets_hostname_and_domainname() {
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut b = Bundle::new();
    b.config_mut()["hostname"] = json!("box-e2e");
    b.config_mut()["domainname"] = json!("example.test");
    let out = run_sh(&mut b, "echo host=$(hostname); echo uname=$(uname -n); echo domain=$(cat /proc/sys/kernel/domainname)");
    assert_eq!(field(&out, "host"), "box-e2e");
    assert_eq!(field(&out, "uname"), "box-e2e");
    assert_eq!(field(&out, "domain"), "example.test");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name,
        "host's hostname changed"
    );
}

/// A SysV shared memory segment of the host, removed on drop.
struct HostShm(i32);

impl Drop for HostShm {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID with a null buffer.
        unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

#[test]
fn ipc_namespace_hides_host_ipc_objects() {
    // SAFETY: plain syscall.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    let shm = HostShm(id);
    let host = fs::read_to_string("/proc/sysvipc/shm").unwrap();
    assert!(host
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some(&shm.0.to_string())));
    let mut b = Bundle::new();
    let out = run_sh(
        &mut b,
        "echo segs=$(tail -n +2 /proc/sysvipc/shm | wc -l); echo ns=$(readlink /proc/self/ns/ipc)",
    );
    assert_eq!(
        field(&out, "segs"),
        "0",
        "host SysV shm segments are visible in the container"
    );
    assert_ne!(field(&out, "ns"), host_ns("self", "ipc"));
}

#[test]
fn network_namespace_has_only_loopback() {
    let mut b = Bundle::new();
    let out = run_sh(
        &mut b,
        "echo ifs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '); echo ns=$(readlink /proc/self/ns/net)",
    );
    assert_eq!(
        field(&out, "ifs"),
        "lo",
        "network interfaces in the container"
    );
    assert_ne!(field(&out, "ns"), host_ns("self", "net"));
}

#[test]
fn cgroup_namespace_roots_the_containers_cgroup() {
    for cgroupns in [true, false] {
        let mut b = Bundle::new();
        if !cgroupns {
            namespaces(&mut b).retain(|n| n["type"] != "cgroup");
        }
        b.set_args(&["cat", "/proc/self/cgroup"]);
        let rt = Runtime::berth();
        let id = unique_id("cgns");
        let out = rt.run(&id, &b);
        assert!(out.status.success(), "{}", describe("run", &out));
        let out = text(&out.stdout);
        let paths: Vec<&str> = out
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .collect();
        assert!(!paths.is_empty(), "{out}");
        let want = if cgroupns {
            "/".to_string()
        } else {
            format!("/berth/{id}")
        };
        for p in paths {
            assert_eq!(
                p, want,
                "cgroup path (cgroup namespace: {cgroupns}):\n{out}"
            );
        }
    }
}

/// lchown -R, for a rootfs owned by a user namespace's root.
fn chown_tree(path: &std::path::Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for e in fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

#[test]
fn user_namespace_maps_container_root_to_a_host_range() {
    let mut b = Bundle::with_private_rootfs();
    chown_tree(b.rootfs(), 100000, 100000);
    namespaces(&mut b).push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config_mut()["linux"]["uidMappings"] = map.clone();
    b.config_mut()["linux"]["gidMappings"] = map;
    let out = run_sh(
        &mut b,
        "echo uidmap=$(cat /proc/self/uid_map); echo gidmap=$(cat /proc/self/gid_map); \
         echo id=$(id -u):$(id -g); echo owner=$(stat -c %u:%g /bin/busybox); \
         echo devnull=$(stat -c %t:%T /dev/null); echo x > /dev/null && echo nullwrite=ok",
    );
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(field(&out, "uidmap")), "0 100000 65536", "uid_map");
    assert_eq!(words(field(&out, "gidmap")), "0 100000 65536", "gid_map");
    assert_eq!(
        field(&out, "id"),
        "0:0",
        "not root inside the user namespace"
    );
    assert_eq!(
        field(&out, "owner"),
        "0:0",
        "host uid 100000 does not show as 0 inside"
    );
    assert_eq!(field(&out, "devnull"), "1:3");
    assert_eq!(field(&out, "nullwrite"), "ok");
    // From the host, the container's root is uid/gid 100000.
    b.set_args(&["true"]);
    let rt = Runtime::berth();
    let id = unique_id("userns");
    let pid = create(&rt, &id, &b);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        words(field(&status, "Uid")),
        "100000 100000 100000 100000",
        "host view of the uid"
    );
    assert_eq!(
        words(field(&status, "Gid")),
        "100000 100000 100000 100000",
        "host view of the gid"
    );
    assert_ne!(host_ns(&pid.to_string(), "user"), host_ns("self", "user"));
}

fn uptime(s: &str) -> f64 {
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad uptime {s:?}"))
}

#[test]
fn time_namespace_offsets_shift_the_clocks() {
    const OFFSET: i64 = 1000 * 86400;
    let mut b = Bundle::new();
    namespaces(&mut b).push(json!({"type": "time"}));
    b.config_mut()["linux"]["timeOffsets"] = json!({
        "boottime": {"secs": OFFSET, "nanosecs": 0},
        "monotonic": {"secs": OFFSET, "nanosecs": 0}
    });
    let before = uptime(&fs::read_to_string("/proc/uptime").unwrap());
    let out = run_sh(
        &mut b,
        "echo up=$(cat /proc/uptime); echo ns=$(readlink /proc/self/ns/time)",
    );
    let after = uptime(&fs::read_to_string("/proc/uptime").unwrap());
    let inside = uptime(field(&out, "up"));
    assert!(
        inside >= before + OFFSET as f64 && inside <= after + OFFSET as f64 + 1.0,
        "uptime in the container {inside} is not the host's ({before}..{after}) + {OFFSET}"
    );
    assert_ne!(field(&out, "ns"), host_ns("self", "time"));
}

#[test]
fn namespaces_are_joined_by_path() {
    let rt = Runtime::berth();
    let mut a = Bundle::new();
    a.set_args(&["true"]);
    a.config_mut()["hostname"] = json!("container-a");
    let id_a = unique_id("ns-a");
    let pid_a = create(&rt, &id_a, &a).to_string();
    let mut b = Bundle::new();
    b.config_mut().as_object_mut().unwrap().remove("hostname");
    for n in namespaces(&mut b).iter_mut() {
        let kind = match n["type"].as_str().unwrap() {
            "network" => "net",
            "uts" => "uts",
            "ipc" => "ipc",
            "pid" => "pid",
            _ => continue,
        };
        n["path"] = json!(format!("/proc/{pid_a}/ns/{kind}"));
    }
    let out = run_sh(
        &mut b,
        "for n in net uts ipc pid mnt; do echo $n=$(readlink /proc/self/ns/$n); done; \
         echo host=$(hostname); echo self=$$",
    );
    for kind in ["net", "uts", "ipc", "pid"] {
        assert_eq!(
            field(&out, kind),
            host_ns(&pid_a, kind),
            "{kind} namespace not joined"
        );
        assert_ne!(field(&out, kind), host_ns("self", kind));
    }
    assert_ne!(
        field(&out, "mnt"),
        host_ns(&pid_a, "mnt"),
        "mount namespace joined though not asked"
    );
    assert_eq!(
        field(&out, "host"),
        "container-a",
        "hostname of the joined UTS namespace"
    );
    assert_ne!(
        field(&out, "self"),
        "1",
        "a process joining A's PID namespace cannot be its PID 1"
    );
    let mut c = Bundle::new();
    namespaces(&mut c)[1] = json!({"type": "network", "path": "/proc/999999999/ns/net"});
    assert_refused(
        &c,
        &["namespace", "/proc/999999999/ns/net", "does not exist"],
    );
}
