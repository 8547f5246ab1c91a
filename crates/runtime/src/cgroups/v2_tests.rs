//! The v2 manager against a fake cgroup2 tree in a temporary directory, files pre-created as
//! the kernel would have them.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use tempfile::TempDir;

use super::*;
use crate::cgroups::{manager, Layout};

const LEAF_FILES: &[(&str, &str)] = &[
    ("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n"),
    ("cgroup.procs", ""),
    ("cgroup.freeze", "0\n"),
    ("cgroup.events", "populated 0\nfrozen 0\n"),
    ("cgroup.kill", ""),
    ("memory.max", "max\n"),
    ("memory.low", "0\n"),
    ("memory.high", "max\n"),
    ("memory.swap.max", "max\n"),
    ("memory.current", "1048576\n"),
    ("cpu.weight", "100\n"),
    ("cpu.max", "max 100000\n"),
    ("cpu.max.burst", "0\n"),
    ("cpu.idle", "0\n"),
    ("cpuset.cpus", "\n"),
    ("cpuset.mems", "\n"),
    ("pids.max", "max\n"),
    ("io.weight", "default 100\n"),
    ("io.max", ""),
    ("hugetlb.2MB.max", "max\n"),
    ("hugetlb.2MB.rsvd.max", "max\n"),
    ("hugetlb.1GB.max", "max\n"),
];

struct Fake {
    _tmp: TempDir,
    mp: PathBuf,
    leaf: PathBuf,
}

/// root (all controllers) -> berth (cpu, memory enabled below it) -> c1 (the container).
fn fake() -> Fake {
    let tmp = tempfile::tempdir().unwrap();
    let mp = tmp.path().join("sys/fs/cgroup");
    let mk = |dir: &Path, files: &[(&str, &str)]| {
        fs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            fs::write(dir.join(f), v).unwrap();
        }
    };
    mk(
        &mp,
        &[
            (
                "cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma misc\n",
            ),
            ("cgroup.subtree_control", "\n"),
            ("cgroup.procs", ""),
        ],
    );
    mk(
        &mp.join("berth"),
        &[
            ("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n"),
            ("cgroup.subtree_control", "cpu memory\n"),
        ],
    );
    let leaf = mp.join("berth/c1");
    mk(&leaf, LEAF_FILES);
    fs::write(leaf.join("cgroup.controllers"), "cpu memory\n").unwrap();
    Fake {
        _tmp: tmp,
        mp,
        leaf,
    }
}

impl Fake {
    fn mgr(&self) -> V2Manager {
        V2Manager::new(&self.mp, "/berth/c1")
    }
    fn read(&self, f: &str) -> String {
        fs::read_to_string(self.leaf.join(f)).unwrap()
    }
    fn enable_all(&self) {
        fs::write(
            self.leaf.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .unwrap();
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn create_enables_controllers_in_ancestors() {
    let f = fake();
    f.mgr().create().unwrap();
    assert_eq!(
        fs::read_to_string(f.mp.join("cgroup.subtree_control")).unwrap(),
        "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc"
    );
    // only the missing ones, and never in the leaf itself
    assert_eq!(
        fs::read_to_string(f.mp.join("berth/cgroup.subtree_control")).unwrap(),
        "+cpuset +io +hugetlb +pids"
    );
    assert!(!f.leaf.join("cgroup.subtree_control").exists());
}

#[test]
fn create_fast_path_writes_nothing_and_makes_missing_dirs() {
    let f = fake();
    fs::write(f.mp.join("cgroup.controllers"), "cpu memory\n").unwrap();
    f.mgr().create().unwrap();
    assert_eq!(
        fs::read_to_string(f.mp.join("cgroup.subtree_control")).unwrap(),
        "\n"
    );
    // a cgroup whose directory does not exist yet is made (the kernel would fill it; the
    // fake tree has no cgroup.controllers there, so controller enabling reports it)
    let m = V2Manager::new(&f.mp, "/new/deep/c2");
    let err = m.create().unwrap_err();
    assert!(f.mp.join("new/deep/c2").is_dir());
    assert!(
        err.to_string().contains("new/deep/c2/cgroup.controllers"),
        "{err}"
    );
}

#[test]
fn set_writes_each_knob() {
    let f = fake();
    f.enable_all();
    let r = res(r#"{
        "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200, "kernel": -1},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10000,
                "cpus": "0-1", "mems": "0", "idle": 1},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
    }"#);
    let m = f.mgr();
    let ops = m.plan(&r).unwrap();
    let files: Vec<String> = ops
        .iter()
        .map(|o| match o {
            Op::Write(p, v) => format!("{}={v}", p.file_name().unwrap().to_string_lossy()),
            Op::DeviceFilter(..) => "devices".into(),
        })
        .collect();
    assert_eq!(
        files,
        [
            "memory.max=104857600",
            "memory.low=52428800",
            "memory.swap.max=104857600",
            "cpu.weight=39",
            "cpu.max.burst=0",
            "cpu.max=50000 100000",
            "cpu.max.burst=10000",
            "cpuset.cpus=0-1",
            "cpuset.mems=0",
            "cpu.idle=1",
            "pids.max=100",
            "io.weight=4950",
            "io.weight=8:0 1",
            "io.max=8:0 rbps=1048576",
            "io.max=8:16 wiops=max",
            "hugetlb.2MB.max=4194304",
            "hugetlb.2MB.rsvd.max=4194304",
        ]
    );
    m.set(&r).unwrap();
    assert_eq!(f.read("memory.max"), "104857600");
    assert_eq!(f.read("memory.swap.max"), "104857600");
    assert_eq!(f.read("cpu.max"), "50000 100000");
    assert_eq!(f.read("cpu.max.burst"), "10000");
    assert_eq!(f.read("pids.max"), "100");
    // Both io.max lines went through one open file: concatenated in a fake regular file.
    assert_eq!(f.read("io.max"), "8:0 rbps=10485768:16 wiops=max");
    assert_eq!(f.read("hugetlb.2MB.rsvd.max"), "4194304");
    // untouched knobs keep the kernel's value
    assert_eq!(f.read("hugetlb.1GB.max"), "max\n");
}

#[test]
fn set_special_values() {
    let f = fake();
    f.enable_all();
    let m = f.mgr();
    m.set(&res(
        r#"{"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("memory.max"), "max");
    assert_eq!(f.read("memory.swap.max"), "max");
    assert_eq!(f.read("pids.max"), "max");
    assert_eq!(f.read("cpu.max"), "max");
    // period alone keeps the current quota
    fs::write(f.leaf.join("cpu.max"), "20000 100000\n").unwrap();
    m.set(&res(r#"{"cpu": {"period": 50000}}"#)).unwrap();
    assert_eq!(f.read("cpu.max"), "20000 50000");
    // pids limit 0: oci-spec cannot tell it from unset -> unlimited
    m.set(&res(r#"{"pids": {}}"#)).unwrap();
    assert_eq!(f.read("pids.max"), "max");
    // io.bfq.weight takes the v1 value unconverted
    fs::write(f.leaf.join("io.bfq.weight"), "default 100\n").unwrap();
    m.set(&res(r#"{"blockIO": {"weight": 300}}"#)).unwrap();
    assert_eq!(f.read("io.bfq.weight"), "300");
    // unified keys are written as is
    m.set(&res(
        r#"{"unified": {"memory.high": "1000000", "pids.max": "7"}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("pids.max"), "7");
    assert_eq!(f.read("memory.high"), "1000000");
}

#[test]
fn set_validates_before_writing() {
    let f = fake(); // leaf has only cpu and memory enabled
    let m = f.mgr();
    let cases: &[(&str, &str)] = &[
        (
            r#"{"memory": {"limit": 1000}, "pids": {"limit": 5}}"#,
            "pids controller",
        ),
        (
            r#"{"memory": {"limit": 1000}, "blockIO": {"weight": 100}}"#,
            "io controller",
        ),
        (
            r#"{"memory": {"limit": 1000, "swappiness": 10}}"#,
            "swappiness",
        ),
        (
            r#"{"memory": {"limit": 1000, "disableOOMKiller": true}}"#,
            "disableOOMKiller",
        ),
        (
            r#"{"memory": {"limit": 1000, "swap": 500}}"#,
            ">= memory.limit",
        ),
        (
            r#"{"memory": {"limit": 1000}, "cpu": {"quota": 1000, "burst": 2000}}"#,
            "burst",
        ),
        (
            r#"{"memory": {"limit": 1000}, "cpu": {"realtimeRuntime": 100}}"#,
            "realtime",
        ),
        (
            r#"{"memory": {"limit": 1000}, "network": {"classID": 5}}"#,
            "net_cls",
        ),
        (
            r#"{"memory": {"limit": 1000}, "unified": {"memory.nope": "1"}}"#,
            "memory.nope",
        ),
        (
            r#"{"memory": {"limit": 1000}, "unified": {"../x": "1"}}"#,
            "not a cgroup file",
        ),
        (
            r#"{"memory": {"limit": 1000}, "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
            "hugetlb controller",
        ),
        (
            r#"{"memory": {"limit": 1000}, "cpu": {"cpus": "0-a"}}"#,
            "cpuset controller",
        ),
        (
            r#"{"memory": {"limit": 1000}, "devices": [{"allow": true, "access": "rwx"}]}"#,
            "only r, w and m",
        ),
        (
            r#"{"memory": {"limit": 500, "checkBeforeUpdate": true}}"#,
            "below the current usage",
        ),
    ];
    for (json, want) in cases {
        let err = m.set(&res(json)).unwrap_err();
        assert!(err.to_string().contains(want), "{json}: {err}");
        assert_eq!(f.read("memory.max"), "max\n", "{json} wrote before failing");
    }
    f.enable_all();
    let err = m
        .set(&res(
            r#"{"hugepageLimits": [{"pageSize": "64KB", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(
        err.to_string().contains("hugetlb.64KB.max does not exist"),
        "{err}"
    );
    fs::remove_file(f.leaf.join("memory.swap.max")).unwrap();
    let err = m
        .set(&res(r#"{"memory": {"limit": 1000, "swap": 2000}}"#))
        .unwrap_err();
    assert!(
        err.to_string().contains("memory.swap.max does not exist"),
        "{err}"
    );
    // ... but an implicit "max" for unlimited memory is skipped quietly
    m.set(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
}

#[test]
fn freeze_thaw_kill_pids_on_fake_tree() {
    let f = fake();
    let m = f.mgr();
    fs::write(f.leaf.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(f.read("cgroup.freeze"), "1");
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
    m.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(f.read("cgroup.kill"), "1");
    fs::write(f.leaf.join("cgroup.procs"), "10\n11\n").unwrap();
    fs::create_dir(f.leaf.join("sub")).unwrap();
    fs::write(f.leaf.join("sub/cgroup.procs"), "12\n").unwrap();
    let mut pids = m.pids().unwrap();
    pids.sort();
    assert_eq!(pids, [10, 11, 12]);
    // not frozen in time: error, and thawed again
    let f = fake();
    let err = freeze_within(&f.leaf, std::time::Duration::from_millis(20)).unwrap_err();
    assert!(err.to_string().contains("not frozen"), "{err}");
    assert_eq!(f.read("cgroup.freeze"), "0");
}

#[test]
fn manager_and_mounts() {
    let f = fake();
    let layout = Layout::V2 {
        mountpoint: f.mp.clone(),
    };
    assert!(manager(&layout, "berth/c1").is_err());
    let m = manager(&layout, "/berth/c1").unwrap();
    assert_eq!(
        m.container_mounts(),
        [CgroupMount {
            fstype: "cgroup2",
            host_mountpoint: f.mp.clone(),
            controllers: vec![],
            source: f.leaf.clone(),
            subdir: String::new(),
        }]
    );
    assert_eq!(m.cgroup2_dir(), Some(f.leaf.as_path()));
    m.apply(4242).unwrap();
    assert_eq!(f.read("cgroup.procs"), "4242");
    // nothing to signal in a cgroup that is gone; listing it is an error
    let gone = manager(&layout, "/berth/gone").unwrap();
    gone.kill_all(libc::SIGKILL).unwrap();
    gone.kill_all(libc::SIGTERM).unwrap();
    assert!(gone.pids().is_err());
    gone.destroy().unwrap();
}
