//! End-to-end tests of the spec's mounts as berth-runc makes them: proc, sysfs, devpts, mqueue,
//! tmpfs (size, mode), the cgroup hierarchies (read-only, the container's own cgroup), and bind
//! mounts: their flags (ro, nosuid, nodev, noexec, atime), bind vs rbind with nested mounts, and
//! recursive read-only (rro).
//!
//! Each test runs real containers (busybox `sh -c` scripts that print what they see) and asserts
//! on their output. Needs root and `cargo build -p berth-runc`.

mod runc_script;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use berth_e2e::Bundle;
use runc_script::*;
use serde_json::json;

/// A host dir (named for leak checks) holding a nested tmpfs at `sub` with a file `inner`.
fn dir_with_nested_mount() -> (tempfile::TempDir, HostMount) {
    let dir = tempfile::Builder::new()
        .prefix("berth-e2e-nested-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.path().join("outer"), "outer\n").unwrap();
    let m = HostMount::tmpfs(&dir.path().join("sub"));
    fs::write(dir.path().join("sub/inner"), "inner\n").unwrap();
    (dir, m)
}

#[test]
fn proc_sysfs_devpts_mqueue_and_tmpfs_mounts() {
    let mut b = Bundle::new();
    mnt_tmpfs(&mut b, json!(["nosuid", "nodev", "size=1m", "mode=1770"]));
    let out = run_sh(
        &mut b,
        "cat /proc/self/mountinfo; echo ---; \
         echo pid1=$(cat /proc/1/comm); \
         echo net=$(ls /sys/class/net); \
         echo scratchmode=$(stat -c %a /mnt); \
         dd if=/dev/zero of=/mnt/big bs=1024 count=2048 2>/dev/null && echo fill=fits || echo fill=full; \
         echo ptmx=$(stat -c %F /dev/pts/ptmx); \
         touch /sys/x 2>/dev/null && echo sysw=yes || echo sysw=no",
    );
    let info = out.split("---").next().unwrap();
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/mnt", "tmpfs"),
    ] {
        assert_eq!(
            must_mount_at(info, point).fstype,
            fstype,
            "type of {point}:\n{info}"
        );
    }
    let sys = must_mount_at(info, "/sys");
    assert!(
        has_opt(&sys.options, "ro"),
        "/sys is not read-only: {}",
        sys.options
    );
    let pts = must_mount_at(info, "/dev/pts");
    for o in ["gid=5", "mode=620", "ptmxmode=666"] {
        assert!(
            has_opt(&pts.super_options, o),
            "devpts lacks {o}: {}",
            pts.super_options
        );
    }
    let shm = must_mount_at(info, "/dev/shm");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(
            has_opt(&shm.options, o),
            "/dev/shm lacks {o}: {}",
            shm.options
        );
    }
    let scratch = must_mount_at(info, "/mnt");
    assert!(
        has_opt(&scratch.super_options, "size=1024k"),
        "tmpfs size not applied: {}",
        scratch.super_options
    );
    assert!(
        has_opt(&scratch.options, "nosuid") && has_opt(&scratch.options, "nodev"),
        "{}",
        scratch.options
    );
    assert_eq!(
        field(&out, "scratchmode"),
        "1770",
        "tmpfs mode= not applied"
    );
    assert_eq!(field(&out, "fill"), "full", "2 MiB fit in a size=1m tmpfs");
    assert_eq!(
        field(&out, "pid1"),
        "sh",
        "/proc is not the container's own"
    );
    assert_eq!(
        field(&out, "net"),
        "lo",
        "/sys is not the container's network namespace's sysfs"
    );
    assert_eq!(
        field(&out, "ptmx"),
        "character special file",
        "devpts has no ptmx (newinstance)"
    );
    assert_eq!(field(&out, "sysw"), "no", "could write to a read-only /sys");
}

/// The host's cgroup hierarchies (v1 controllers, plus `unified` on a hybrid host).
fn host_hierarchies() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn cgroup_hierarchies_are_the_containers_own_and_read_only() {
    let want = host_hierarchies();
    assert!(
        want.contains(&"memory".to_string()),
        "test assumes cgroup v1 (hybrid): {want:?}"
    );
    for cgroupns in [true, false] {
        let mut b = Bundle::new();
        b.config_mut()["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        if !cgroupns {
            b.config_mut()["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "cgroup");
        }
        let out = run_sh(
            &mut b,
            "cat /proc/self/mountinfo; echo ---; \
             echo list=$(ls /sys/fs/cgroup | tr '\\n' ' '); \
             echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
             echo procs=$(cat /sys/fs/cgroup/pids/cgroup.procs | head -1); \
             mkdir /sys/fs/cgroup/memory/sub 2>&1 | grep -q 'Read-only' && echo mkdir=refused || echo mkdir=allowed",
        );
        let ctx = format!("(cgroup namespace: {cgroupns})\n{out}");
        let mut got: Vec<&str> = field(&out, "list").split_whitespace().collect();
        got.sort();
        assert_eq!(got, want, "cgroup hierarchies under /sys/fs/cgroup {ctx}");
        let info = out.split("---").next().unwrap();
        for h in &want {
            let m = must_mount_at(info, &format!("/sys/fs/cgroup/{h}"));
            assert!(
                m.fstype.starts_with("cgroup"),
                "/sys/fs/cgroup/{h} is {} {ctx}",
                m.fstype
            );
            assert!(
                has_opt(&m.options, "ro"),
                "/sys/fs/cgroup/{h} is writable ({}) {ctx}",
                m.options
            );
        }
        assert_eq!(
            field(&out, "limit"),
            "67108864",
            "memory hierarchy is not the container's cgroup {ctx}"
        );
        assert_eq!(
            field(&out, "procs"),
            "1",
            "pids hierarchy is not the container's cgroup {ctx}"
        );
        assert_eq!(
            field(&out, "mkdir"),
            "refused",
            "cgroupfs is writable {ctx}"
        );
    }
}

#[test]
fn bind_mount_flags_are_applied() {
    let src = tempfile::Builder::new()
        .prefix("berth-e2e-bind-")
        .tempdir()
        .unwrap();
    fs::set_permissions(src.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(src.path().join("data"), "hello\n").unwrap();
    fs::write(src.path().join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(src.path().join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let null = cpath(&src.path().join("null"));
    // SAFETY: valid C string.
    let r = unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
    let mut b = Bundle::new();
    mnt_tmpfs(&mut b, json!([]));
    for (dest, opts) in [
        ("/mnt/b/plain", json!(["bind"])),
        ("/mnt/b/ro", json!(["bind", "ro"])),
        ("/mnt/b/nosuid", json!(["bind", "nosuid"])),
        ("/mnt/b/nodev", json!(["bind", "nodev"])),
        ("/mnt/b/noexec", json!(["rbind", "noexec"])),
        ("/mnt/b/relatime", json!(["bind", "relatime"])),
        (
            "/mnt/b/noatime",
            json!(["bind", "noatime", "ro", "nosuid", "nodev", "noexec"]),
        ),
    ] {
        add_mount(
            &mut b,
            json!({"destination": dest, "type": "bind", "source": src.path(), "options": opts}),
        );
    }
    add_mount(
        &mut b,
        json!({"destination": "/mnt/b/file", "type": "bind",
        "source": src.path().join("data"), "options": ["bind", "ro"]}),
    );
    let out = run_sh(
        &mut b,
        "cat /proc/self/mountinfo; echo ---; \
         echo data=$(cat /mnt/b/ro/data); echo file=$(cat /mnt/b/file); \
         touch /mnt/b/ro/new 2>&1 | grep -q 'Read-only' && echo rowrite=refused || echo rowrite=allowed; \
         echo plainexec=$(/mnt/b/plain/run.sh 2>&1); \
         /mnt/b/noexec/run.sh >/dev/null 2>&1 && echo noexec=ran || echo noexec=refused; \
         echo x > /mnt/b/plain/null && echo plaindev=ok || echo plaindev=refused; \
         (echo x > /mnt/b/nodev/null) 2>/dev/null && echo nodev=ok || echo nodev=refused",
    );
    let info = out.split("---").next().unwrap();
    for (point, want) in [
        ("/mnt/b/ro", &["ro"][..]),
        ("/mnt/b/nosuid", &["nosuid"]),
        ("/mnt/b/nodev", &["nodev"]),
        ("/mnt/b/noexec", &["noexec"]),
        ("/mnt/b/relatime", &["relatime"]),
        (
            "/mnt/b/noatime",
            &["noatime", "ro", "nosuid", "nodev", "noexec"],
        ),
        ("/mnt/b/file", &["ro"]),
    ] {
        let m = must_mount_at(info, point);
        for o in want {
            assert!(
                has_opt(&m.options, o),
                "{point}: option {o} missing from {}",
                m.options
            );
        }
    }
    let plain = must_mount_at(info, "/mnt/b/plain");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(
            !has_opt(&plain.options, o),
            "/mnt/b/plain got {o} nobody asked for: {}",
            plain.options
        );
    }
    assert_eq!(field(&out, "data"), "hello");
    assert_eq!(field(&out, "file"), "hello", "file bind mount");
    assert_eq!(
        field(&out, "rowrite"),
        "refused",
        "wrote through a ro bind mount"
    );
    assert_eq!(
        field(&out, "plainexec"),
        "ran",
        "cannot exec from a plain bind mount"
    );
    assert_eq!(
        field(&out, "noexec"),
        "refused",
        "executed from a noexec bind mount"
    );
    assert_eq!(
        field(&out, "plaindev"),
        "ok",
        "cannot open a device on a plain bind mount"
    );
    assert_eq!(
        field(&out, "nodev"),
        "refused",
        "opened a device on a nodev bind mount"
    );
    assert!(
        fs::read_dir(src.path()).unwrap().count() == 3,
        "the container wrote into the ro source"
    );
}

#[test]
fn rbind_brings_nested_mounts_and_bind_does_not() {
    let (dir, _nested) = dir_with_nested_mount();
    let mut b = Bundle::new();
    mnt_tmpfs(&mut b, json!([]));
    add_mount(
        &mut b,
        json!({"destination": "/mnt/bind", "type": "bind", "source": dir.path(), "options": ["bind"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/mnt/rbind", "type": "bind", "source": dir.path(), "options": ["rbind"]}),
    );
    let out = run_sh(
        &mut b,
        "echo bind=$(cat /mnt/bind/outer; cat /mnt/bind/sub/inner 2>/dev/null || echo no-inner); \
         echo rbind=$(cat /mnt/rbind/outer; cat /mnt/rbind/sub/inner 2>/dev/null || echo no-inner)",
    );
    assert_eq!(
        field(&out, "bind"),
        "outer no-inner",
        "a plain bind carried the nested mount along"
    );
    assert_eq!(
        field(&out, "rbind"),
        "outer inner",
        "rbind lost the nested mount"
    );
}

#[test]
fn rro_makes_nested_mounts_read_only_too() {
    let (dir, _nested) = dir_with_nested_mount();
    let mut b = Bundle::new();
    mnt_tmpfs(&mut b, json!([]));
    add_mount(
        &mut b,
        json!({"destination": "/mnt/rro", "type": "bind", "source": dir.path(), "options": ["rbind", "rro"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/mnt/ro", "type": "bind", "source": dir.path(), "options": ["rbind", "ro"]}),
    );
    let out = run_sh(
        &mut b,
        "for d in /mnt/rro /mnt/rro/sub /mnt/ro /mnt/ro/sub; do \
           touch $d/w 2>/dev/null && echo $d=writable || echo $d=readonly; done",
    );
    assert_eq!(
        field(&out, "/mnt/rro"),
        "readonly",
        "rro: top of the bind is writable"
    );
    assert_eq!(
        field(&out, "/mnt/rro/sub"),
        "readonly",
        "rro: the nested mount is writable"
    );
    assert_eq!(
        field(&out, "/mnt/ro"),
        "readonly",
        "ro: top of the bind is writable"
    );
    // Control: plain "ro" only covers the top mount, which is what makes rro necessary.
    assert_eq!(
        field(&out, "/mnt/ro/sub"),
        "writable",
        "control: ro on an rbind also covered the nested mount"
    );
    assert!(
        !dir.path().join("w").exists(),
        "a write through rro reached the host dir"
    );
}
