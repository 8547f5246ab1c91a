//! End-to-end tests of the container's root filesystem as berth-runc builds it: the rootfs bind
//! and its propagation, every mount type of the spec (proc, sysfs, tmpfs, devpts, mqueue, cgroup,
//! bind/rbind with their flags, recursive read-only), a read-only root, `--no-pivot`, device
//! nodes and /dev symlinks, masked and read-only paths, the mount namespace, and rootfs symlinks
//! that try to redirect a mount onto the host.
//!
//! Each test runs real containers (busybox `sh -c` scripts that print what they see) and asserts
//! on their output, or inspects a created container's init from the host through /proc/<pid>.
//! Needs root and `cargo build -p berth-runc`.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use berth_e2e::{busybox_rootfs, unique_id, Bundle, Runtime};
use serde_json::{json, Value};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Runs `sh -c script` in a container of `bundle` (foreground `run`), asserts it exited 0 and
/// returns its stdout.
fn run_sh(bundle: &mut Bundle, script: &str) -> String {
    run_sh_with(bundle, script, &[])
}

/// Like [`run_sh`], with extra `run` flags (e.g. `--no-pivot`).
fn run_sh_with(bundle: &mut Bundle, script: &str, flags: &[&str]) -> String {
    bundle.set_args(&["sh", "-c", script]);
    let rt = Runtime::berth();
    let id = unique_id("rootfs");
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    let bpath = bundle
        .path()
        .to_str()
        .expect("utf-8 bundle path")
        .to_string();
    args.extend_from_slice(&["--bundle", &bpath, &id]);
    let out = rt.cli(&args);
    let _ = rt.delete_force(&id); // `run` deletes it; this only matters if it failed half-way
    assert!(
        out.status.success(),
        "{}",
        describe("container script failed", &out)
    );
    text(&out.stdout)
}

/// The value after `key=` on the first line that starts with it (the scripts print `key=value`).
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key}= line in container output:\n{out}"))
}

/// /proc/self/mountinfo fields 5 (mount point), 6 (per-mount options), the optional fields and
/// the filesystem type, for the line mounted at `point`.
struct MountLine {
    root: String,
    options: String,
    optional: String,
    fstype: String,
    super_options: String,
}

fn mount_at(mountinfo: &str, point: &str) -> Option<MountLine> {
    mountinfo.lines().rev().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let f: Vec<&str> = pre.split(' ').collect();
        if f.get(4) != Some(&point) {
            return None;
        }
        let mut post = post.split(' ');
        Some(MountLine {
            root: f[3].to_string(),
            options: f[5].to_string(),
            optional: f[6..].join(" "),
            fstype: post.next().unwrap_or("").to_string(),
            super_options: post.nth(1).unwrap_or("").to_string(),
        })
    })
}

fn must_mount_at(mountinfo: &str, point: &str) -> MountLine {
    mount_at(mountinfo, point)
        .unwrap_or_else(|| panic!("nothing mounted at {point} in the container:\n{mountinfo}"))
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

/// A tmpfs on /mnt (empty in the image), under which tests put their mount points: the shared
/// rootfs must not be written to, and the runtime creates missing mount points.
fn mnt_tmpfs(b: &mut Bundle, options: Value) {
    add_mount(
        b,
        json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": options}),
    );
}

fn add_mount(b: &mut Bundle, m: Value) {
    b.config_mut()["mounts"]
        .as_array_mut()
        .expect("mounts array")
        .push(m);
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL in path")
}

/// A mount made on the host by a test, detached (with everything under it) on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        fs::create_dir_all(at).unwrap();
        let (src, dst, ty) = (c"tmpfs", cpath(at), c"tmpfs");
        // SAFETY: valid C strings; null data.
        let r =
            unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
        assert_eq!(
            r,
            0,
            "mount tmpfs on {}: {}",
            at.display(),
            std::io::Error::last_os_error()
        );
        HostMount(at.to_path_buf())
    }

    fn set_propagation(&self, flag: libc::c_ulong) {
        let dst = cpath(&self.0);
        // SAFETY: valid C string; null source, type and data.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                dst.as_ptr(),
                std::ptr::null(),
                flag,
                std::ptr::null(),
            )
        };
        assert_eq!(
            r,
            0,
            "propagation of {}: {}",
            self.0.display(),
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let dst = cpath(&self.0);
        // SAFETY: valid C string.
        unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
    }
}

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

/// Creates (not starts) a container and returns its init pid, for inspection through /proc.
fn create(rt: &Runtime, id: &str, bundle: &Bundle) -> i32 {
    let out = rt.create(id, bundle);
    assert!(out.status.success(), "{}", describe("create failed", &out));
    let pid = rt.state(id)["pid"].as_i64().expect("pid in state") as i32;
    assert!(pid > 0, "created container has no pid");
    pid
}

#[test]
fn mounts_live_in_the_containers_own_mount_namespace() {
    let mut b = Bundle::new();
    b.set_args(&["true"]);
    mnt_tmpfs(&mut b, json!([]));
    add_mount(
        &mut b,
        json!({"destination": "/mnt/inside", "type": "tmpfs", "source": "tmpfs"}),
    );
    let rt = Runtime::berth();
    let id = unique_id("mntns");
    let pid = create(&rt, &id, &b);
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_ne!(
        ns(&pid.to_string()),
        ns("self"),
        "container shares the host's mount namespace"
    );
    let inside = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = must_mount_at(&inside, "/");
    assert!(
        root.root.ends_with("busybox-rootfs"),
        "container / is not a bind of the rootfs (root field {}):\n{inside}",
        root.root
    );
    assert_eq!(must_mount_at(&inside, "/mnt/inside").fstype, "tmpfs");
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rootfs = busybox_rootfs();
    assert!(
        !host.contains(rootfs.to_str().unwrap()),
        "container mounts leaked into the host mount namespace:\n{host}"
    );
    let out = rt.delete_force(&id);
    assert!(out.status.success(), "{}", describe("delete", &out));
}

#[test]
fn rootfs_propagation_is_applied() {
    // The rootfs lives on a shared host mount, which is also bound into each container: slaves
    // receive what the host mounts under it later, private copies do not, and no propagation
    // mode may leak the container's own mounts (its rootfs bind) back to the host.
    let dir = tempfile::Builder::new()
        .prefix("berth-e2e-prop-")
        .tempdir()
        .unwrap();
    let shared = HostMount::tmpfs(&dir.path().join("shared"));
    shared.set_propagation(libc::MS_SHARED);
    let rootfs = shared.0.join("rootfs");
    berth_e2e::copy_rootfs(&rootfs).unwrap();
    let rt = Runtime::berth();
    let mut pids = vec![];
    for prop in ["rslave", "rprivate", "private", "shared"] {
        let mut b = Bundle::new();
        b.set_args(&["true"]);
        b.config_mut()["root"]["path"] = json!(rootfs);
        b.config_mut()["linux"]["rootfsPropagation"] = json!(prop);
        mnt_tmpfs(&mut b, json!([]));
        add_mount(
            &mut b,
            json!({"destination": "/mnt/shared", "type": "bind",
            "source": shared.0, "options": ["rbind"]}),
        );
        let id = unique_id(prop);
        pids.push((prop, create(&rt, &id, &b), b));
    }
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains(rootfs.to_str().unwrap()),
        "container mounts propagated to the host:\n{host}"
    );
    let late = HostMount::tmpfs(&shared.0.join("late"));
    for (prop, pid, _) in &pids {
        let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let root = must_mount_at(&info, "/");
        let bound = must_mount_at(&info, "/mnt/shared");
        let got_late = mount_at(&info, "/mnt/shared/late").is_some();
        match *prop {
            "rslave" => {
                assert!(
                    bound.optional.contains("master:"),
                    "rslave: /mnt/shared is not a slave ({}):\n{info}",
                    bound.optional
                );
                assert!(
                    got_late,
                    "rslave: a host mount under a shared dir did not propagate in:\n{info}"
                );
                assert!(
                    !root.optional.contains("shared:"),
                    "rslave: / is shared:\n{info}"
                );
            }
            "rprivate" => {
                assert!(
                    bound.optional.is_empty(),
                    "rprivate: /mnt/shared has propagation {:?}",
                    bound.optional
                );
                assert!(
                    !got_late,
                    "rprivate: a host mount propagated into the container:\n{info}"
                );
            }
            "private" => assert!(
                root.optional.is_empty(),
                "private: / has propagation {:?}:\n{info}",
                root.optional
            ),
            _ => assert!(
                root.optional.contains("shared:"),
                "shared: container / is not shared ({:?}):\n{info}",
                root.optional
            ),
        }
    }
    drop(late);
    let mut b = Bundle::new();
    b.config_mut()["linux"]["rootfsPropagation"] = json!("sideways");
    let id = unique_id("badprop");
    let out = rt.create(&id, &b);
    assert!(
        !out.status.success(),
        "rootfsPropagation \"sideways\" was accepted"
    );
    assert!(
        text(&out.stderr).contains("rootfsPropagation"),
        "{}",
        describe("unclear error", &out)
    );
    drop(rt); // force-deletes the created containers before the host mount goes away
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

#[test]
fn readonly_root_keeps_tmpfs_mounts_writable() {
    let mut b = Bundle::new(); // root.readonly is true in the default config
    let out = run_sh(
        &mut b,
        "touch /newfile 2>&1 | grep -q 'Read-only file system' && echo root=readonly || echo root=writable; \
         touch /tmp/x 2>/dev/null && echo tmp=writable || echo tmp=readonly; \
         touch /dev/shm/x && echo shm=writable; touch /dev/x && echo dev=writable",
    );
    assert_eq!(
        field(&out, "root"),
        "readonly",
        "root.readonly: / is writable"
    );
    assert_eq!(
        field(&out, "tmp"),
        "readonly",
        "root.readonly: /tmp (part of the rootfs) is writable"
    );
    assert_eq!(field(&out, "shm"), "writable");
    assert_eq!(field(&out, "dev"), "writable");
    // Control: root.readonly false on a private copy.
    let mut b = Bundle::with_private_rootfs();
    b.config_mut()["root"]["readonly"] = json!(false);
    let out = run_sh(&mut b, "touch /newfile && echo root=writable");
    assert_eq!(field(&out, "root"), "writable");
    assert!(
        b.rootfs().join("newfile").is_file(),
        "write did not land in the rootfs"
    );
}

#[test]
fn no_pivot_runs_in_the_rootfs() {
    let mut want: Vec<String> = fs::read_dir(busybox_rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    want.sort();
    // With "shared" the rootfs must not sit on a shared mount for MS_MOVE either.
    for (flags, prop) in [
        (&[][..], None),
        (&["--no-pivot"][..], None),
        (&["--no-pivot"][..], Some("shared")),
    ] {
        let mut b = Bundle::new();
        if let Some(p) = prop {
            b.config_mut()["linux"]["rootfsPropagation"] = json!(p);
        }
        let out = run_sh_with(
            &mut b,
            "echo pid=$$; echo ls=$(ls -A / | tr '\\n' ' '); \
             touch /x 2>/dev/null && echo root=writable || echo root=readonly; \
             echo rootmount=$(awk '$5 == \"/\"' /proc/self/mountinfo)",
            flags,
        );
        let ctx = format!("flags {flags:?}, rootfsPropagation {prop:?}");
        let mut got: Vec<&str> = field(&out, "ls").split_whitespace().collect();
        got.sort();
        assert_eq!(got, want, "/ is not the rootfs ({ctx})");
        assert_eq!(field(&out, "pid"), "1", "{ctx}");
        assert_eq!(
            field(&out, "root"),
            "readonly",
            "root.readonly ignored ({ctx})"
        );
        let root = field(&out, "rootmount");
        assert!(!root.is_empty(), "no mount at / ({ctx}):\n{out}");
        assert_eq!(
            prop.is_some(),
            root.contains("shared:"),
            "propagation of / ({ctx}): {root}"
        );
    }
}

#[test]
fn default_devices_and_dev_symlinks() {
    let mut b = Bundle::new();
    let out = run_sh(
        &mut b,
        "for d in null zero full random urandom tty; do \
           echo dev-$d=$(stat -c '%F %t:%T %a' /dev/$d); done; \
         for l in fd stdin stdout stderr ptmx core; do echo link-$l=$(readlink /dev/$l); done; \
         echo zeros=$(head -c 4 /dev/zero | od -An -tx1); \
         echo rand=$(head -c 16 /dev/urandom | wc -c); \
         echo x > /dev/null && echo nullwrite=ok; \
         echo x 2>&1 > /dev/full | grep -q 'No space' && echo fullwrite=enospc",
    );
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        assert_eq!(
            field(&out, &format!("dev-{name}")),
            format!("character special file {major:x}:{minor:x} 666"),
            "/dev/{name} (type major:minor mode)"
        );
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        assert_eq!(
            field(&out, &format!("link-{name}")),
            target,
            "/dev/{name} symlink"
        );
    }
    // /dev/core -> /proc/kcore only where the kernel has /proc/kcore (not on every host).
    let core = if Path::new("/proc/kcore").exists() {
        "/proc/kcore"
    } else {
        ""
    };
    assert_eq!(field(&out, "link-core"), core, "/dev/core symlink");
    assert_eq!(field(&out, "zeros"), "00 00 00 00");
    assert_eq!(field(&out, "rand"), "16");
    assert_eq!(field(&out, "nullwrite"), "ok");
    assert_eq!(
        field(&out, "fullwrite"),
        "enospc",
        "/dev/full does not fail writes"
    );
}

#[test]
fn spec_devices_are_created_with_mode_and_owner() {
    let mut b = Bundle::new();
    b.config_mut()["linux"]["devices"] = json!([
        {"path": "/dev/custom/mynull", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o620, "uid": 1000, "gid": 1001},
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}
    ]);
    let out = run_sh(
        &mut b,
        "echo mynull=$(stat -c '%F %t:%T %a %u:%g' /dev/custom/mynull); \
         echo fuse=$(stat -c '%F %t:%T %a %u:%g' /dev/fuse); \
         echo x > /dev/custom/mynull && echo write=ok",
    );
    assert_eq!(
        field(&out, "mynull"),
        "character special file 1:3 620 1000:1001",
        "/dev/custom/mynull"
    );
    assert_eq!(
        field(&out, "fuse"),
        "character special file a:e5 666 0:0",
        "/dev/fuse"
    );
    assert_eq!(
        field(&out, "write"),
        "ok",
        "the device cgroup denies the spec's own device"
    );
}

#[test]
fn masked_paths_read_empty() {
    let mut b = Bundle::new();
    let masked = b.config_mut()["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap();
    masked.push(json!("/etc")); // a directory with content in the image
    masked.push(json!("/does/not/exist")); // skipped, not an error
    let out = run_sh(
        &mut b,
        "for f in /proc/kcore /proc/keys /proc/timer_list; do \
           [ -e $f ] && echo $f=$(cat $f | wc -c) || echo $f=absent; done; \
         echo etc=$(ls -A /etc | wc -l); echo firmware=$(ls -A /sys/firmware | wc -l); \
         touch /etc/x 2>/dev/null && echo etcw=writable || echo etcw=refused",
    );
    for f in ["/proc/kcore", "/proc/keys", "/proc/timer_list"] {
        if Path::new(f).exists() {
            assert_eq!(
                field(&out, f),
                "0",
                "masked {f} is readable in the container"
            );
        }
    }
    assert!(busybox_rootfs().join("etc/passwd").exists());
    assert_eq!(field(&out, "etc"), "0", "masked dir /etc is not empty");
    assert_eq!(
        field(&out, "firmware"),
        "0",
        "masked /sys/firmware is not empty"
    );
    assert_eq!(field(&out, "etcw"), "refused", "masked dir is writable");
}

#[test]
fn readonly_paths_refuse_writes() {
    let mut b = Bundle::new();
    b.config_mut()["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/dev/shm"));
    let out = run_sh(
        &mut b,
        "echo ostype=$(cat /proc/sys/kernel/ostype); \
         echo sys=$( (echo x > /proc/sys/kernel/domainname) 2>&1); \
         [ -e /proc/sysrq-trigger ] && echo sysrq=$( (echo h > /proc/sysrq-trigger) 2>&1); \
         touch /dev/shm/x 2>/dev/null && echo shm=writable || echo shm=refused; \
         touch /dev/x && echo dev=writable",
    );
    assert_eq!(
        field(&out, "ostype"),
        "Linux",
        "read-only /proc/sys must stay readable"
    );
    assert!(
        field(&out, "sys").contains("Read-only file system"),
        "/proc/sys write: {out}"
    );
    if Path::new("/proc/sysrq-trigger").exists() {
        assert!(
            field(&out, "sysrq").contains("Read-only file system"),
            "/proc/sysrq-trigger write: {out}"
        );
    }
    assert_eq!(
        field(&out, "shm"),
        "refused",
        "readonlyPaths /dev/shm is writable"
    );
    assert_eq!(
        field(&out, "dev"),
        "writable",
        "read-only /dev/shm made /dev read-only"
    );
}

#[test]
fn symlinks_in_the_rootfs_cannot_redirect_mounts_to_the_host() {
    let tag = unique_id("berth-escape");
    let host_abs = PathBuf::from(format!("/tmp/{tag}-abs"));
    let host_rel = PathBuf::from(format!("/tmp/{tag}-rel"));
    let mut b = Bundle::with_private_rootfs();
    let root = b.rootfs().to_path_buf();
    fs::remove_dir(root.join("mnt")).unwrap();
    symlink(
        format!("/../../../..{}", host_abs.display()),
        root.join("mnt"),
    )
    .unwrap();
    symlink(
        format!("../../../../../../../..{}", host_rel.display()),
        root.join("home/link"),
    )
    .unwrap();
    let src = tempfile::Builder::new()
        .prefix("berth-e2e-src-")
        .tempdir()
        .unwrap();
    fs::write(src.path().join("marker"), "bound\n").unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/mnt/data", "type": "tmpfs", "source": "tmpfs"}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/home/link/bound", "type": "bind", "source": src.path(), "options": ["rbind"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": format!("/../../..{}-dotdot", host_abs.display()), "type": "tmpfs", "source": "tmpfs"}),
    );
    let out = run_sh(
        &mut b,
        "echo data=$(stat -f -c %T /mnt/data); echo marker=$(cat /home/link/bound/marker); \
         touch /mnt/data/w && echo datawrite=ok; cat /proc/self/mountinfo",
    );
    let leaked: Vec<PathBuf> = fs::read_dir("/tmp")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(&tag))
        .collect();
    assert!(
        leaked.is_empty(),
        "mounts through rootfs symlinks created {leaked:?} on the host"
    );
    assert_eq!(field(&out, "data"), "tmpfs", "/mnt/data is not the tmpfs");
    assert_eq!(field(&out, "datawrite"), "ok");
    assert_eq!(
        field(&out, "marker"),
        "bound",
        "bind through a relative symlink"
    );
    // The kernel sees them where the symlinks point, but inside the container root.
    for point in [
        format!("{}/data", host_abs.display()),
        format!("{}/bound", host_rel.display()),
    ] {
        assert!(
            mount_at(&out, &point).is_some(),
            "no mount at {point} inside the container:\n{out}"
        );
        let on_host = root.join(point.trim_start_matches('/'));
        assert!(
            on_host.is_dir(),
            "{} was not created inside the rootfs",
            on_host.display()
        );
    }
    assert!(
        root.join(format!("tmp/{tag}-abs-dotdot")).is_dir(),
        "'..' in a destination was not clamped to the root"
    );
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains(&tag),
        "a container mount is visible on the host:\n{host}"
    );
}
