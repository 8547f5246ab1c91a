//! The v1/hybrid manager against a fake tree of v1 hierarchies (and a fake cgroup2 mount).

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use tempfile::TempDir;

use super::*;
use crate::cgroups::{manager, Layout};

struct Fake {
    _tmp: TempDir,
    root: PathBuf,
    layout: Layout,
}

/// (mount dir name, controllers, files with the kernel's initial values)
type FakeHierarchy = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const HIERARCHIES: &[FakeHierarchy] = &[
    (
        "cpu,cpuacct",
        &["cpu", "cpuacct"],
        &[
            ("cpu.shares", "1024\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.cfs_burst_us", "0\n"),
            ("cpu.rt_period_us", "1000000\n"),
            ("cpu.rt_runtime_us", "0\n"),
        ],
    ),
    (
        "cpuset",
        &["cpuset"],
        &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")],
    ),
    (
        "memory",
        &["memory"],
        &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
            ("memory.soft_limit_in_bytes", "9223372036854771712\n"),
            ("memory.usage_in_bytes", "4096\n"),
            ("memory.swappiness", "60\n"),
            ("memory.oom_control", "oom_kill_disable 0\n"),
        ],
    ),
    ("pids", &["pids"], &[("pids.max", "max\n")]),
    (
        "devices",
        &["devices"],
        &[("devices.allow", ""), ("devices.deny", "")],
    ),
    ("freezer", &["freezer"], &[("freezer.state", "THAWED\n")]),
    // no CFQ/BFQ: no weight files, as on this development host
    (
        "blkio",
        &["blkio"],
        &[
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ],
    ),
    ("systemd", &["name=systemd"], &[]),
];

/// Each hierarchy with `/berth/c1` pre-created (files as the kernel makes them); the cpuset
/// mount has `0-1`/`0` at its root and empty values below.
fn fake(hybrid: bool) -> Fake {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let mut hierarchies = Vec::new();
    for (name, ctrls, files) in HIERARCHIES {
        let mp = root.join(name);
        for dir in [mp.clone(), mp.join("berth"), mp.join("berth/c1")] {
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("cgroup.procs"), "").unwrap();
            for (f, v) in *files {
                fs::write(dir.join(f), v).unwrap();
            }
        }
        if *name == "cpuset" {
            fs::write(mp.join("cpuset.cpus"), "0-1\n").unwrap();
            fs::write(mp.join("cpuset.mems"), "0\n").unwrap();
        }
        hierarchies.push(Hierarchy {
            mountpoint: mp,
            controllers: ctrls.iter().map(|s| s.to_string()).collect(),
        });
    }
    let layout = if hybrid {
        let u = root.join("unified");
        fs::create_dir_all(u.join("berth/c1")).unwrap();
        fs::write(u.join("cgroup.controllers"), "hugetlb\n").unwrap();
        fs::write(u.join("cgroup.subtree_control"), "\n").unwrap();
        fs::write(u.join("berth/cgroup.controllers"), "hugetlb\n").unwrap();
        fs::write(u.join("berth/cgroup.subtree_control"), "hugetlb\n").unwrap();
        for (f, v) in [
            ("cgroup.controllers", ""),
            ("cgroup.procs", ""),
            ("cgroup.kill", ""),
            ("cgroup.freeze", "0\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("memory.pressure", ""),
        ] {
            fs::write(u.join("berth/c1").join(f), v).unwrap();
        }
        Layout::Hybrid {
            hierarchies,
            unified: u,
        }
    } else {
        Layout::V1 { hierarchies }
    };
    Fake {
        _tmp: tmp,
        root,
        layout,
    }
}

impl Fake {
    fn mgr(&self) -> V1Manager {
        let (h, u) = match &self.layout {
            Layout::V1 { hierarchies } => (hierarchies, None),
            Layout::Hybrid {
                hierarchies,
                unified,
            } => (hierarchies, Some(unified)),
            Layout::V2 { .. } => unreachable!(),
        };
        V1Manager::new(h, u, "/berth/c1")
    }
    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }
    fn ops(&self, json: &str) -> Result<Vec<String>> {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        Ok(self
            .mgr()
            .plan(&r)?
            .iter()
            .map(|o| match o {
                Op::Write(p, v) => format!("{}={v}", p.strip_prefix(&self.root).unwrap().display()),
                Op::DeviceFilter(d, rules) => {
                    format!(
                        "bpf:{}:{}",
                        d.strip_prefix(&self.root).unwrap().display(),
                        rules.len()
                    )
                }
            })
            .collect())
    }
}

fn set(f: &Fake, json: &str) -> Result<()> {
    f.mgr().set(&serde_json::from_str(json).unwrap())
}

#[test]
fn create_fills_cpuset_from_parents() {
    let f = fake(false);
    f.mgr().create().unwrap();
    assert_eq!(f.read("cpuset/berth/c1/cpuset.cpus"), "0-1");
    assert_eq!(f.read("cpuset/berth/c1/cpuset.mems"), "0");
    assert_eq!(f.read("cpuset/berth/cpuset.cpus"), "0-1");
    // an existing non-empty value is kept
    fs::write(f.root.join("cpuset/berth/c1/cpuset.cpus"), "1\n").unwrap();
    f.mgr().create().unwrap();
    assert_eq!(f.read("cpuset/berth/c1/cpuset.cpus"), "1\n");
}

#[test]
fn apply_and_set_write_the_v1_files() {
    let f = fake(false);
    let m = f.mgr();
    m.apply(777).unwrap();
    for (name, _, _) in HIERARCHIES {
        assert_eq!(
            f.read(&format!("{name}/berth/c1/cgroup.procs")),
            "777",
            "{name}"
        );
    }
    set(
        &f,
        r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swappiness": 10,
                   "disableOOMKiller": true, "kernel": 1000, "kernelTCP": 1000},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]}
    }"#,
    )
    .unwrap();
    for (file, want) in [
        ("memory/berth/c1/memory.limit_in_bytes", "67108864"),
        ("memory/berth/c1/memory.soft_limit_in_bytes", "33554432"),
        ("memory/berth/c1/memory.swappiness", "10"),
        ("memory/berth/c1/memory.oom_control", "1"),
        ("cpu,cpuacct/berth/c1/cpu.shares", "512"),
        ("cpu,cpuacct/berth/c1/cpu.cfs_quota_us", "50000"),
        ("cpu,cpuacct/berth/c1/cpu.cfs_period_us", "100000"),
        ("cpuset/berth/c1/cpuset.cpus", "0"),
        ("pids/berth/c1/pids.max", "50"),
        ("blkio/berth/c1/blkio.throttle.read_bps_device", "8:0 1000"),
    ] {
        assert_eq!(f.read(file), want, "{file}");
    }
    // the memsw limit was not asked for: untouched
    assert_eq!(
        f.read("memory/berth/c1/memory.memsw.limit_in_bytes"),
        "9223372036854771712\n"
    );
}

#[test]
fn memory_and_swap_order() {
    let f = fake(false);
    let mem = "memory/berth/c1/memory.limit_in_bytes";
    let sw = "memory/berth/c1/memory.memsw.limit_in_bytes";
    // raising (current limit is huge, above the new swap): limit first
    assert_eq!(
        f.ops(r#"{"memory": {"limit": 100, "swap": 200}}"#).unwrap(),
        [format!("{mem}=100"), format!("{sw}=200")]
    );
    // current limit below the new memsw: memsw first
    fs::write(f.root.join(mem), "50\n").unwrap();
    assert_eq!(
        f.ops(r#"{"memory": {"limit": 100, "swap": 200}}"#).unwrap(),
        [format!("{sw}=200"), format!("{mem}=100")]
    );
    // unlimited memory makes memory+swap unlimited too, memsw first
    assert_eq!(
        f.ops(r#"{"memory": {"limit": -1}}"#).unwrap(),
        [format!("{sw}=-1"), format!("{mem}=-1")]
    );
    let err = f
        .ops(r#"{"memory": {"limit": 200, "swap": 100}}"#)
        .unwrap_err();
    assert!(err.to_string().contains(">= memory.limit"), "{err}");
    // no swap accounting
    fs::remove_file(f.root.join(sw)).unwrap();
    let err = f
        .ops(r#"{"memory": {"limit": 100, "swap": 200}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("swap accounting is off"), "{err}");
    assert_eq!(
        f.ops(r#"{"memory": {"limit": -1, "swap": -1}}"#).unwrap(),
        [format!("{mem}=-1")]
    );
}

#[test]
fn devices_rules_in_order() {
    let f = fake(false);
    set(
        &f,
        r#"{"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "b", "major": 8, "access": "r"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "m"}
    ]}"#,
    )
    .unwrap();
    let ops = f.ops(r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}"#).unwrap();
    assert_eq!(
        ops,
        [
            "devices/berth/c1/devices.deny=a",
            "devices/berth/c1/devices.deny=a *:* rwm",
            "devices/berth/c1/devices.allow=c 1:3 rw",
        ]
    );
    // Consecutive writes to one file share one open (each write(2) is one command to the
    // kernel), so the fake regular files hold the rules concatenated, in order.
    assert_eq!(f.read("devices/berth/c1/devices.allow"), "c 1:3 rwmb 8:* r");
    assert_eq!(f.read("devices/berth/c1/devices.deny"), "c 1:3 m");
}

#[test]
fn unsupported_knobs_are_refused_before_writing() {
    let f = fake(false);
    for (json, want) in [
        (
            r#"{"pids": {"limit": 5}, "blockIO": {"weight": 500}}"#,
            "neither blkio.weight",
        ),
        (
            r#"{"pids": {"limit": 5}, "network": {"classID": 1}}"#,
            "net_cls controller",
        ),
        (
            r#"{"pids": {"limit": 5}, "unified": {"memory.max": "1"}}"#,
            "only cgroup v1",
        ),
        (
            r#"{"pids": {"limit": 5}, "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
            "hugetlb controller",
        ),
        (
            r#"{"pids": {"limit": 5}, "cpu": {"idle": 1}}"#,
            "cpu.idle is not supported",
        ),
        (
            r#"{"pids": {"limit": 5}, "memory": {"swappiness": 101}}"#,
            "swappiness",
        ),
        (
            r#"{"pids": {"limit": 5}, "memory": {"limit": 100, "checkBeforeUpdate": true}}"#,
            "current usage",
        ),
        (
            r#"{"pids": {"limit": 5}, "blockIO": {"throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}}"#,
            "write_bps_device does not exist",
        ),
    ] {
        let err = set(&f, json).unwrap_err();
        assert!(err.to_string().contains(want), "{json}: {err}");
        assert_eq!(
            f.read("pids/berth/c1/pids.max"),
            "max\n",
            "{json} wrote before failing"
        );
    }
}

#[test]
fn realtime_order() {
    let f = fake(false);
    let p = "cpu,cpuacct/berth/c1/cpu.rt_period_us";
    let r = "cpu,cpuacct/berth/c1/cpu.rt_runtime_us";
    let json = r#"{"cpu": {"realtimeRuntime": 5000, "realtimePeriod": 10000}}"#;
    assert_eq!(
        f.ops(json).unwrap(),
        [format!("{p}=10000"), format!("{r}=5000")]
    );
    fs::write(f.root.join(r), "20000\n").unwrap();
    assert_eq!(
        f.ops(json).unwrap(),
        [format!("{r}=5000"), format!("{p}=10000")]
    );
}

#[test]
fn hybrid_uses_the_unified_mount_for_what_v1_lacks() {
    let f = fake(true);
    let m = f.mgr();
    m.create().unwrap();
    assert_eq!(f.read("unified/cgroup.subtree_control"), "+hugetlb");
    assert_eq!(f.read("unified/berth/cgroup.subtree_control"), "hugetlb\n");
    let err = set(
        &f,
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("hugetlb controller, which is not enabled"),
        "{err}"
    );
    // what the kernel shows once the parent enables it
    fs::write(
        f.root.join("unified/berth/c1/cgroup.controllers"),
        "hugetlb\n",
    )
    .unwrap();
    assert_eq!(
        m.cgroup2_dir(),
        Some(f.root.join("unified/berth/c1").as_path())
    );
    assert_eq!(fake(false).mgr().cgroup2_dir(), None);
    m.apply(99).unwrap();
    assert_eq!(f.read("unified/berth/c1/cgroup.procs"), "99");
    set(&f, r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}], "unified": {"memory.pressure": "x"}}"#).unwrap();
    assert_eq!(f.read("unified/berth/c1/hugetlb.2MB.max"), "2097152");
    assert_eq!(f.read("unified/berth/c1/memory.pressure"), "x");
    let err = set(&f, r#"{"unified": {"memory.max": "1"}}"#).unwrap_err();
    assert!(err.to_string().contains("memory.max"), "{err}");
    // SIGKILL goes through cgroup.kill; the processes are listed from the cgroup2 directory
    m.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(f.read("unified/berth/c1/cgroup.kill"), "1");
    assert_eq!(m.pids().unwrap(), [99]);
    let mounts = m.container_mounts();
    let names: Vec<_> = mounts
        .iter()
        .map(|m| (m.fstype, m.subdir.as_str()))
        .collect();
    assert_eq!(names.first(), Some(&("cgroup", "cpu,cpuacct")));
    assert_eq!(names.last(), Some(&("cgroup2", "unified")));
    assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
    assert_eq!(mounts[0].source, f.root.join("cpu,cpuacct/berth/c1"));
}

#[test]
fn freezer_v1_and_missing_hierarchies() {
    let f = fake(false);
    let m = f.mgr();
    // the fake file reads back what was written, i.e. FROZEN at once
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert_eq!(f.read("freezer/berth/c1/freezer.state"), "THAWED");
    assert!(!m.is_frozen().unwrap());
    let only_cpu = Layout::V1 {
        hierarchies: vec![Hierarchy {
            mountpoint: f.root.join("cpu,cpuacct"),
            controllers: vec!["cpu".into()],
        }],
    };
    let m = manager(&only_cpu, "/berth/c1").unwrap();
    let err = m.freeze().unwrap_err();
    assert!(err.to_string().contains("freezer controller"), "{err}");
    let err = m
        .set(&serde_json::from_str(r#"{"devices": []}"#).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("devices controller"), "{err}");
    assert!(!m.is_frozen().unwrap());
}

#[test]
fn destroy_reports_every_failure() {
    let f = fake(false);
    // fake dirs hold regular files, so rmdir fails (ENOTEMPTY) in every hierarchy
    let err = f.mgr().destroy().unwrap_err();
    assert!(
        matches!(err, Error::Multiple(ref v) if v.len() == HIERARCHIES.len()),
        "{err}"
    );
    // empty directories go, missing ones are fine
    let tmp = tempfile::tempdir().unwrap();
    let h = |n: &str| Hierarchy {
        mountpoint: tmp.path().join(n),
        controllers: vec![n.into()],
    };
    fs::create_dir_all(tmp.path().join("pids/x/sub")).unwrap();
    let m = V1Manager::new(&[h("pids"), h("memory")], None, "/x");
    m.destroy().unwrap();
    m.kill_all(libc::SIGTERM).unwrap();
    assert!(!Path::new(&tmp.path().join("pids/x")).exists());
}
