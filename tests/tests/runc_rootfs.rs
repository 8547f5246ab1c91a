//! End-to-end tests of the container's root filesystem as berth-runc builds it, apart from the
//! spec's mounts (runc_mounts.rs): the rootfs bind in the container's own mount namespace, its
//! propagation, a read-only root, `--no-pivot`, device nodes and /dev symlinks, masked and
//! read-only paths, and rootfs symlinks that try to redirect a mount onto the host.
//!
//! Each test runs real containers (busybox `sh -c` scripts that print what they see) and asserts
//! on their output, or inspects a created container's init from the host through /proc/<pid>.
//! Needs root and `cargo build -p berth-runc`.

mod runc_script;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use berth_e2e::{busybox_rootfs, unique_id, Bundle, Runtime};
use runc_script::*;
use serde_json::json;

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
         echo etc=$(ls -A /etc | wc -l); echo firmware=$(ls -A /sys/firmware | wc -l)",
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
