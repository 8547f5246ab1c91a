//! cgroups through berth-runc on real containers: the spec's resources are in
//! the kernel's files after `create` (memory, swap, reservation, cpu, cpuset,
//! pids, blkio throttling, hugetlb, device rules enforced), every cgroupsPath
//! form lands where it should (absolute, relative, systemd slice:prefix:name),
//! `kill --all` reaches every process in the cgroup, bad resources roll back,
//! and `delete` removes the cgroup from every hierarchy, cgroup2 included.

mod runc_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_e2e::{unique_id, Bundle};
use runc_support::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

fn sleeper() -> Bundle {
    let mut b = Bundle::new();
    b.set_args(&["sleep", "1000"]);
    b
}

fn cg_file(mountpoint: &str, path: &str, file: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(mountpoint)
        .join(path.trim_start_matches('/'))
        .join(file)
}

fn unified_has(ctrl: &str) -> bool {
    fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == ctrl))
}

/// The whole disk holding `/` as "major:minor" (a partition's parent disk),
/// from /proc/self/mountinfo and /sys/dev/block.
fn root_disk() -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let dev = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))?
        .split(' ')
        .nth(2)?
        .to_string();
    let sys = fs::canonicalize(format!("/sys/dev/block/{dev}")).ok()?;
    if sys.join("partition").exists() {
        return Some(
            fs::read_to_string(sys.parent()?.join("dev"))
                .ok()?
                .trim()
                .to_string(),
        );
    }
    // Major 0 is an anonymous device (overlay, tmpfs): nothing to throttle.
    (!dev.starts_with("0:")).then_some(dev)
}

/// The cgroup lines of /proc/<pid>/cgroup.
fn proc_cgroups(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
}

#[test]
fn spec_resources_are_in_the_kernel_after_create() {
    let rt = berth();
    let mut b = sleeper();
    let disk = root_disk();
    let hugetlb =
        unified_has("hugetlb") && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    {
        let r = &mut b.config_mut()["linux"]["resources"];
        r["memory"] = json!({"limit": 64 << 20, "reservation": 32 << 20});
        r["cpu"] = json!({"shares": 512, "quota": 20000, "period": 50000, "cpus": "0"});
        r["pids"] = json!({"limit": 42});
        // Deny reading /dev/zero (a default device, allowed unless the spec says otherwise).
        r["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": false, "type": "c", "major": 1, "minor": 5, "access": "r"}));
        if let Some(d) = &disk {
            let (maj, min) = d.split_once(':').unwrap();
            let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
            r["blockIO"] =
                json!({"throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}]});
        }
        if hugetlb {
            r["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4 << 20}]);
        }
    }
    let memsw = cg_file("memory", "/berth", "memory.memsw.limit_in_bytes").exists();
    if memsw {
        b.config_mut()["linux"]["resources"]["memory"]["swap"] = json!(128 << 20);
    }
    let id = unique_id("res");
    ok(&rt.create(&id, &b));
    let cg = format!("/berth/{id}");
    let read = |ctrl: &str, file: &str| cg_read(ctrl, &cg, file);
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read("memory", "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    if memsw {
        assert_eq!(
            read("memory", "memory.memsw.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
    }
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "50000");
    assert_eq!(read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(read("pids", "pids.max"), "42");
    match &disk {
        Some(d) => assert_eq!(
            read("blkio", "blkio.throttle.read_bps_device"),
            format!("{d} 1048576")
        ),
        None => eprintln!("no block device under /: blkio throttling not checked"),
    }
    if hugetlb {
        assert_eq!(read("unified", "hugetlb.2MB.max"), (4u64 << 20).to_string());
    } else {
        eprintln!("no hugetlb in cgroup2 or no 2MB pages: hugetlb not checked");
    }
    // The init is in the cgroup in every hierarchy, cgroup2 included.
    let pid = init_pid(&rt, &id);
    let lines = proc_cgroups(pid);
    assert_eq!(
        lines
            .lines()
            .filter(|l| !l.ends_with(&cg))
            .collect::<Vec<_>>(),
        Vec::<&str>::new(),
        "{lines}"
    );

    ok(&rt.start(&id));
    // Inside, the cgroup namespace shows the limits at the mount's root.
    assert_eq!(
        ok(&rt.exec(&id, &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])).trim(),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        ok(&rt.exec(&id, &["cat", "/proc/self/cgroup"]))
            .lines()
            .filter(|l| !l.ends_with(":/"))
            .count(),
        0
    );
    // Device rules: /dev/zero can't be read, /dev/null still works.
    let out = rt.exec(&id, &["sh", "-c", "head -c 1 /dev/zero > /dev/null"]);
    let err = fails(&out);
    assert!(err.contains("Operation not permitted"), "{err}");
    ok(&rt.exec(
        &id,
        &[
            "sh",
            "-c",
            "echo x > /dev/null && head -c 1 /dev/urandom > /dev/null",
        ],
    ));

    ok(&rt.delete_force(&id));
    assert_cgroup_gone(&cg);
}

/// Every hierarchy has the container's directory while it exists, none after.
#[test]
fn delete_removes_the_cgroup_from_every_hierarchy() {
    let rt = berth();
    let b = sleeper();
    let id = unique_id("cgdel");
    ok(&rt.create(&id, &b));
    let cg = format!("/berth/{id}");
    let dirs = cgroup_dirs(&cg);
    assert!(
        dirs.iter().any(|d| d.starts_with("/sys/fs/cgroup/unified"))
            || !Path::new("/sys/fs/cgroup/unified").exists()
    );
    for d in &dirs {
        assert!(d.is_dir(), "{} missing", d.display());
    }
    ok(&rt.start(&id));
    // A sub-cgroup the container made (as systemd in a container would) goes too.
    for d in &dirs {
        fs::create_dir(d.join("sub")).unwrap();
    }
    ok(&rt.kill(&id, "KILL"));
    rt.wait_status(&id, "stopped", T);
    ok(&rt.delete(&id));
    assert_cgroup_gone(&cg);
}

#[test]
fn cgroups_path_absolute_and_relative() {
    let rt = berth();
    // Absolute: taken as is (one new component under the existing /berth).
    let mut b = sleeper();
    let id = unique_id("abs");
    let abs = format!("/berth/{id}-custom");
    b.config_mut()["linux"]["cgroupsPath"] = json!(abs);
    ok(&rt.create(&id, &b));
    let pid = init_pid(&rt, &id);
    assert!(
        proc_cgroups(pid).lines().all(|l| l.ends_with(&abs)),
        "{}",
        proc_cgroups(pid)
    );
    assert!(cgroup_dirs(&abs).iter().all(|d| d.is_dir()));
    assert!(!cg_file("memory", &format!("/berth/{id}"), "").exists());
    ok(&rt.cli(&["pause", &id]));
    assert_eq!(cg_read("freezer", &abs, "freezer.state"), "FROZEN");
    ok(&rt.delete_force(&id));
    assert_cgroup_gone(&abs);

    // Relative: under the caller's own cgroup (its cgroup2 entry on this host).
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string);
    let Some(own) = own else {
        eprintln!("no cgroup2 entry in /proc/self/cgroup: relative path not checked");
        return;
    };
    let mut b = sleeper();
    let id = unique_id("rel");
    let rel = format!("{id}-rel");
    b.config_mut()["linux"]["cgroupsPath"] = json!(rel);
    ok(&rt.create(&id, &b));
    let want = format!("{}/{rel}", own.trim_end_matches('/'));
    let pid = init_pid(&rt, &id);
    assert!(
        proc_cgroups(pid).lines().all(|l| l.ends_with(&want)),
        "want {want}: {}",
        proc_cgroups(pid)
    );
    ok(&rt.delete_force(&id));
    assert_cgroup_gone(&want);

    // The systemd form without --systemd-cgroup is refused, with the hint.
    let mut b = sleeper();
    b.config_mut()["linux"]["cgroupsPath"] = json!("system.slice:berth-e2e:x");
    let err = fails(&rt.create(&unique_id("sdform"), &b));
    assert!(err.contains("--systemd-cgroup"), "{err}");
}

/// Removes `dir` in every hierarchy where it is empty and was not there before.
struct RemoveIfNew(Vec<PathBuf>);

impl Drop for RemoveIfNew {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = fs::remove_dir(d);
        }
    }
}

#[test]
fn systemd_cgroup_driver_uses_slice_and_scope_paths() {
    let rt = berth();
    let _cleanup = RemoveIfNew(
        cgroup_dirs("/system.slice")
            .into_iter()
            .filter(|d| !d.exists())
            .collect(),
    );
    let mut b = sleeper();
    let id = unique_id("sd");
    b.config_mut()["linux"]["cgroupsPath"] = json!(format!("system.slice:berth-e2e:{id}"));
    b.config_mut()["linux"]["resources"]["pids"] = json!({"limit": 17});
    let path = format!("/system.slice/berth-e2e-{id}.scope");
    ok(&rt.cli(&[
        std::ffi::OsStr::new("--systemd-cgroup"),
        "create".as_ref(),
        "--bundle".as_ref(),
        b.path().as_os_str(),
        id.as_ref(),
    ]));
    let pid = init_pid(&rt, &id);
    assert!(
        proc_cgroups(pid).lines().all(|l| l.ends_with(&path)),
        "want {path}: {}",
        proc_cgroups(pid)
    );
    assert_eq!(cg_read("pids", &path, "pids.max"), "17");
    ok(&rt.start(&id));
    // Later commands find the cgroup from the state, without the flag.
    ok(&rt.cli(&["update", "--pids-limit", "18", &id]));
    assert_eq!(cg_read("pids", &path, "pids.max"), "18");
    ok(&rt.cli(&["pause", &id]));
    assert_eq!(cg_read("freezer", &path, "freezer.state"), "FROZEN");
    ok(&rt.cli(&["resume", &id]));
    let pids: Vec<i32> =
        serde_json::from_str(&ok(&rt.cli(&["ps", "--format", "json", &id]))).unwrap();
    assert_eq!(pids, [pid]);
    ok(&rt.delete_force(&id));
    assert_cgroup_gone(&path);
}

/// `kill --all` signals what is in the cgroup, even a process that is not in
/// the container's namespaces at all (moved in from the host).
#[test]
fn kill_all_reaches_a_host_process_moved_into_the_cgroup() {
    let rt = berth();
    let b = sleeper();
    let id = unique_id("killallhost");
    ok(&rt.create(&id, &b));
    ok(&rt.start(&id));
    let cg = format!("/berth/{id}");
    let mut outsider = KillOnDrop(Command::new("sleep").arg("1000").spawn().unwrap());
    let opid = outsider.0.id().to_string();
    for d in cgroup_dirs(&cg) {
        fs::write(d.join("cgroup.procs"), &opid)
            .unwrap_or_else(|e| panic!("move into {}: {e}", d.display()));
    }
    let pids: Vec<u32> =
        serde_json::from_str(&ok(&rt.cli(&["ps", "--format", "json", &id]))).unwrap();
    assert!(
        pids.contains(&outsider.0.id()),
        "ps does not list {opid}: {pids:?}"
    );
    ok(&rt.cli(&["kill", "--all", &id, "KILL"]));
    let died = wait_until(T, || outsider.0.try_wait().unwrap().is_some());
    assert!(
        died,
        "kill --all did not reach the process moved into the cgroup"
    );
    let st = outsider.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    rt.wait_status(&id, "stopped", T);
    ok(&rt.delete(&id));
    assert_cgroup_gone(&cg);
}

/// Resources the kernel refuses (or validation catches) fail create, naming
/// the knob, with the cgroup rolled back.
#[test]
fn bad_resources_fail_create_and_roll_back_the_cgroup() {
    let rt = berth();
    let cases: Vec<(Value, &str)> = vec![
        // caught by validation, before anything exists
        (
            json!({"memory": {"limit": 128 << 20, "swap": 64 << 20}}),
            "swap",
        ),
        // refused by the kernel after the cgroup was made: this host has far fewer CPUs
        (json!({"cpu": {"cpus": "1000-1001"}}), "cpuset.cpus"),
        (json!({"cpu": {"shares": 512, "mems": "77"}}), "cpuset.mems"),
    ];
    for (resources, needle) in cases {
        if needle == "swap" && !cg_file("memory", "/berth", "memory.memsw.limit_in_bytes").exists()
        {
            continue;
        }
        let mut b = sleeper();
        let marker = unique_id("badres");
        b.config_mut()["linux"]["resources"] = resources.clone();
        let id = marker.clone();
        let err = fails(&rt.create(&id, &b));
        assert!(err.contains(needle), "{resources}: {err}");
        fails(&rt.state_output(&id));
        assert!(!rt.root().join(&id).exists());
        assert_cgroup_gone(&format!("/berth/{id}"));
        assert_no_process(&marker);
    }
}
