//! Tests against the real kernel: need root. They use single-level cgroups named
//! `/berth-test-<what>-<pid>`, and a guard that kills the test's children, removes the cgroups
//! and restores the cgroup2 root's `cgroup.subtree_control` (when no other cgroup is there),
//! even when the test fails. They run one at a time (they share that root file).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::convert::{dev_rule, ACC_MKNOD, ACC_READ, ACC_WRITE};
use super::{detect, devices_bpf, fs, manager, CgroupManager, Layout};

static HOST: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Kills the children, destroys the cgroup, restores the cgroup2 root's subtree_control.
struct Guard {
    cg: Box<dyn CgroupManager>,
    children: Vec<i32>,
    unified_root: Option<(PathBuf, String)>,
}

impl Guard {
    fn new(layout: &Layout, path: &str) -> Guard {
        let cg = manager(layout, path).unwrap();
        let unified_root = layout.unified_mountpoint().map(|u| {
            (
                u.to_path_buf(),
                fs::read(&u.join("cgroup.subtree_control")).unwrap(),
            )
        });
        // a leftover from an earlier crashed run
        let _ = cg.kill_all(libc::SIGKILL);
        let _ = cg.destroy();
        Guard {
            cg,
            children: Vec::new(),
            unified_root,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // thaw first: a v1-frozen child cannot die
        let _ = self.cg.thaw();
        for &pid in &self.children {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
            }
        }
        if let Err(e) = self.cg.destroy() {
            eprintln!("cleanup: {e}");
        }
        if let Some((u, before)) = &self.unified_root {
            // Only when no other cgroup exists there: another process (a container, a
            // colleague's test) may rely on what got enabled meanwhile.
            let others = std::fs::read_dir(u)
                .map(|rd| {
                    rd.flatten()
                        .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                })
                .unwrap_or(true);
            if others {
                return;
            }
            let sub = u.join("cgroup.subtree_control");
            let now = fs::read(&sub).unwrap_or_default();
            for c in fs::words(&now).filter(|c| !fs::words(before).any(|b| b == *c)) {
                if let Err(e) = fs::write(&sub, &format!("-{c}")) {
                    eprintln!("cleanup: {e}");
                }
            }
        }
    }
}

/// What a forked child does once the parent lets it go (a byte on the pipe).
#[derive(Clone, Copy)]
enum Child {
    /// `pause()` until killed.
    Sleep,
    /// Exit 0 when opening /dev/zero for reading fails with EPERM and /dev/null opens;
    /// 2 if /dev/zero opened, 3 for another errno, 4 if /dev/null failed.
    CheckDevices,
}

/// Forks a child that waits for `go`. Only async-signal-safe calls in the child.
fn spawn(kind: Child) -> (i32, i32) {
    spawn_joining(kind, None)
}

/// Same, the child first moving itself into `join` with `apply_self` (exit 5 on failure).
/// That allocates in the forked child, which glibc's fork makes safe.
fn spawn_joining(kind: Child, join: Option<&dyn CgroupManager>) -> (i32, i32) {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        if let Some(cg) = join {
            if cg.apply_self().is_err() {
                unsafe { libc::_exit(5) };
            }
        }
        unsafe {
            libc::close(fds[1]);
            let mut b = 0u8;
            if libc::read(fds[0], (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(10);
            }
            match kind {
                Child::Sleep => loop {
                    libc::pause();
                },
                Child::CheckDevices => {
                    let fd = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY);
                    if fd >= 0 {
                        libc::_exit(2);
                    }
                    if *libc::__errno_location() != libc::EPERM {
                        libc::_exit(3);
                    }
                    if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) < 0 {
                        libc::_exit(4);
                    }
                    libc::_exit(0);
                }
            }
        }
    }
    unsafe { libc::close(fds[0]) };
    (pid, fds[1])
}

fn go(fd: i32) {
    let b = 1u8;
    assert_eq!(unsafe { libc::write(fd, (&b as *const u8).cast(), 1) }, 1);
    unsafe { libc::close(fd) };
}

/// Waits (at most 10 s) and returns the raw wait status.
fn wait(pid: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut status = 0;
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return status;
        }
        assert!(r == 0, "waitpid {pid} failed");
        if Instant::now() > deadline {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("child {pid} did not exit");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(p: &Path) -> String {
    fs::read(p).unwrap().trim().to_string()
}

#[test]
fn host_v1_lifecycle() {
    let _l = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let layout = detect().unwrap();
    let needed = ["memory", "pids", "cpu", "devices", "freezer", "cpuset"];
    let hs = layout.hierarchies();
    if !is_root() || !needed.iter().all(|c| hs.iter().any(|h| h.has(c))) {
        eprintln!("skipped: needs root and cgroup v1 {needed:?} (layout: {layout:?})");
        return;
    }
    let path = format!("/berth-test-v1-{}", std::process::id());
    let dir = |ctrl: &str| {
        let h = hs.iter().find(|h| h.has(ctrl)).unwrap();
        fs::join(&h.mountpoint, &path)
    };
    let mut g = Guard::new(&layout, &path);
    g.cg.create().unwrap();
    for h in hs {
        assert!(fs::join(&h.mountpoint, &path).is_dir(), "{h:?}");
    }
    assert_eq!(
        read(&dir("cpuset").join("cpuset.cpus")),
        read(&dir("cpuset").parent().unwrap().join("cpuset.cpus"))
    );

    let (child, go_fd) = spawn(Child::CheckDevices);
    g.children.push(child);
    g.cg.apply(child).unwrap();
    for h in hs {
        let procs = read(&fs::join(&h.mountpoint, &path).join("cgroup.procs"));
        assert_eq!(procs, child.to_string(), "{h:?}");
    }
    g.cg.set(&res(r#"{
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    }"#))
        .unwrap();
    assert_eq!(
        read(&dir("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(&dir("pids").join("pids.max")), "50");
    assert_eq!(read(&dir("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&dir("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&dir("cpu").join("cpu.shares")), "512");
    assert_eq!(read(&dir("devices").join("devices.list")), "c 1:3 rwm");
    // the kernel enforces the v1 device list
    go(go_fd);
    let status = wait(child);
    g.children.clear();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "device check child: status {status:#x}"
    );

    // validation failure writes nothing: a knob this host cannot do (no net_cls hierarchy
    // here), else a bad value
    let bad = if hs.iter().any(|h| h.has("net_cls")) {
        r#"{"memory": {"limit": 33554432}, "blockIO": {"weight": 5000}}"#
    } else {
        r#"{"memory": {"limit": 33554432}, "network": {"classID": 1}}"#
    };
    let err = g.cg.set(&res(bad)).unwrap_err();
    eprintln!("expected refusal: {err}");
    assert_eq!(
        read(&dir("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    // blkio weight: CFQ's blkio.weight or BFQ's blkio.bfq.weight, whichever the kernel has
    let blk = dir("blkio");
    if blk.join("blkio.weight").exists() || blk.join("blkio.bfq.weight").exists() {
        g.cg.set(&res(r#"{"blockIO": {"weight": 300}}"#)).unwrap();
        let f = if blk.join("blkio.weight").exists() {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        assert!(read(&blk.join(f)).contains("300"), "{}", read(&blk.join(f)));
    }
    // an update
    g.cg.set(&res(r#"{"pids": {"limit": -1}}"#)).unwrap();
    assert_eq!(read(&dir("pids").join("pids.max")), "max");

    // freeze / thaw / pids / kill
    let (a, fa) = spawn(Child::Sleep);
    let (b, fb) = spawn(Child::Sleep);
    g.children.extend([a, b]);
    g.cg.apply(a).unwrap();
    g.cg.apply(b).unwrap();
    go(fa);
    go(fb);
    let mut pids = g.cg.pids().unwrap();
    pids.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(pids, want);
    g.cg.freeze().unwrap();
    assert!(g.cg.is_frozen().unwrap());
    assert_eq!(read(&dir("freezer").join("freezer.state")), "FROZEN");
    g.cg.thaw().unwrap();
    assert!(!g.cg.is_frozen().unwrap());
    // SIGTERM: freeze, signal each, thaw
    g.cg.kill_all(libc::SIGTERM).unwrap();
    for pid in [a, b] {
        let st = wait(pid);
        assert!(
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGTERM,
            "{pid}: {st:#x}"
        );
    }
    g.children.clear();
    assert!(!g.cg.is_frozen().unwrap());
    // SIGKILL of a frozen cgroup (cgroup.kill on a hybrid host, else signals) still kills
    let (c, fc) = spawn(Child::Sleep);
    g.children.push(c);
    g.cg.apply(c).unwrap();
    go(fc);
    g.cg.freeze().unwrap();
    g.cg.kill_all(libc::SIGKILL).unwrap();
    let st = wait(c);
    g.children.clear();
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL,
        "{st:#x}"
    );
    assert!(g.cg.pids().unwrap().is_empty());

    g.cg.destroy().unwrap();
    for h in hs {
        assert!(!fs::join(&h.mountpoint, &path).exists(), "{h:?}");
    }
    if let Some(u) = layout.unified_mountpoint() {
        assert!(!fs::join(u, &path).exists());
    }
}

#[test]
fn host_hybrid_hugetlb_through_cgroup2() {
    let _l = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let layout = detect().unwrap();
    let Layout::Hybrid {
        unified,
        hierarchies,
    } = &layout
    else {
        eprintln!("skipped: not a hybrid host ({layout:?})");
        return;
    };
    let avail = fs::read(&unified.join("cgroup.controllers")).unwrap_or_default();
    if !is_root()
        || hierarchies.iter().any(|h| h.has("hugetlb"))
        || !fs::words(&avail).any(|c| c == "hugetlb")
    {
        eprintln!("skipped: needs root and hugetlb on the cgroup2 mount");
        return;
    }
    let path = format!("/berth-test-huge-{}", std::process::id());
    let g = Guard::new(&layout, &path);
    g.cg.create().unwrap();
    let dir = fs::join(unified, &path);
    let size = if dir.join("hugetlb.2MB.max").exists() {
        "2MB"
    } else {
        "1GB"
    };
    g.cg.set(&res(&format!(
        r#"{{"hugepageLimits": [{{"pageSize": "{size}", "limit": 4194304}}]}}"#
    )))
    .unwrap();
    assert_eq!(read(&dir.join(format!("hugetlb.{size}.max"))), "4194304");
    let err =
        g.cg.set(&res(
            r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("hugepage size 3MB is not supported"),
        "{err}"
    );
}

#[test]
fn host_v2_device_filter_freeze_kill() {
    let _l = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let layout = detect().unwrap();
    let Some(unified) = layout.unified_mountpoint() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // The cgroup2 mount alone, as a pure v2 host would have it: the device filter and
    // cgroup.freeze/cgroup.kill need no controller.
    let v2 = Layout::V2 {
        mountpoint: unified.to_path_buf(),
    };
    let path = format!("/berth-test-bpf-{}", std::process::id());
    let dir = fs::join(unified, &path);
    let mut g = Guard::new(&v2, &path);
    g.cg.create().unwrap();
    let (child, go_fd) = spawn(Child::CheckDevices);
    g.children.push(child);
    g.cg.apply(child).unwrap();
    assert_eq!(read(&dir.join("cgroup.procs")), child.to_string());
    let rules = r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#;
    g.cg.set(&res(rules)).unwrap();
    assert_eq!(devices_bpf::attached_count(&dir).unwrap(), 1);
    // an update replaces the filter instead of stacking another
    g.cg.set(&res(rules)).unwrap();
    assert_eq!(devices_bpf::attached_count(&dir).unwrap(), 1);
    go(go_fd);
    let status = wait(child);
    g.children.clear();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "device check child: status {status:#x}"
    );

    // freeze waits for "frozen 1"; SIGKILL goes through cgroup.kill
    let (c, fc) = spawn(Child::Sleep);
    g.children.push(c);
    g.cg.apply(c).unwrap();
    go(fc);
    g.cg.freeze().unwrap();
    assert!(g.cg.is_frozen().unwrap());
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    g.cg.thaw().unwrap();
    assert!(!g.cg.is_frozen().unwrap());
    assert_eq!(g.cg.pids().unwrap(), [c]);
    g.cg.kill_all(libc::SIGKILL).unwrap();
    let st = wait(c);
    g.children.clear();
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL,
        "{st:#x}"
    );
    g.cg.destroy().unwrap();
    assert!(!dir.exists());
}

#[test]
fn host_kernel_accepts_generated_programs() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mk = |json: &str| {
        let r = res(json);
        r.devices()
            .as_ref()
            .unwrap()
            .iter()
            .map(|d| dev_rule(d).unwrap())
            .collect::<Vec<_>>()
    };
    for json in [
        r#"{"devices": []}"#,
        r#"{"devices": [{"allow": true}]}"#,
        r#"{"devices": [{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "b", "minor": 0, "access": "r"},
            {"allow": true, "type": "a", "access": "m"},
            {"allow": false, "type": "c", "major": 4095, "minor": 1048575, "access": "w"}]}"#,
    ] {
        let prog = devices_bpf::compile(&mk(json));
        devices_bpf::load(&prog).unwrap_or_else(|e| panic!("{json}: {e}"));
    }
    assert_eq!(ACC_MKNOD | ACC_READ | ACC_WRITE, 7);
}

#[test]
fn host_apply_self_joins_every_hierarchy() {
    let _l = HOST.lock().unwrap_or_else(|e| e.into_inner());
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let layout = detect().unwrap();
    let path = format!("/berth-test-self-{}", std::process::id());
    let mut g = Guard::new(&layout, &path);
    g.cg.create().unwrap();
    let (child, go_fd) = spawn_joining(Child::Sleep, Some(g.cg.as_ref()));
    g.children.push(child);
    let mut dirs: Vec<PathBuf> = layout
        .hierarchies()
        .iter()
        .map(|h| fs::join(&h.mountpoint, &path))
        .collect();
    dirs.extend(layout.unified_mountpoint().map(|u| fs::join(u, &path)));
    let pid = child.to_string();
    let joined = fs::wait_until(Duration::from_secs(5), || {
        Ok(dirs.iter().all(|d| {
            fs::read(&d.join("cgroup.procs"))
                .unwrap()
                .lines()
                .any(|l| l == pid)
        }))
    })
    .unwrap();
    if !joined {
        let mut st = 0;
        let r = unsafe { libc::waitpid(child, &mut st, libc::WNOHANG) };
        panic!("child not in every cgroup (waitpid {r}, status {st:#x}): {dirs:?}");
    }
    assert_eq!(g.cg.pids().unwrap(), [child]);
    go(go_fd);
    g.cg.kill_all(libc::SIGKILL).unwrap();
    let st = wait(child);
    g.children.clear();
    assert!(libc::WIFSIGNALED(st), "{st:#x}");
    g.cg.destroy().unwrap();
}

#[test]
fn self_in_unified_reads_proc_self_cgroup() {
    let text = fs::read(Path::new("/proc/self/cgroup")).unwrap();
    if let Some(own) = text.lines().find_map(|l| l.strip_prefix("0::")) {
        assert!(super::self_in_unified(own));
    }
    assert!(!super::self_in_unified("/berth-surely-not-here"));
}
