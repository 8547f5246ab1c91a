//! Copy driver: self-contained layers and faithful copies.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::*;

#[test]
fn snapshot_copy_layers_are_self_contained() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Copy);
    assert_eq!(s.name(), "copy");
    let top = add_image(
        &*s,
        1,
        vec![
            vec![
                E::File("a", "1"),
                E::Symlink("lib", "usr/lib"),
                E::File("d/x", "x"),
            ],
            vec![E::File("etc/hostname", "box"), E::File("a", "2")],
            vec![
                E::Whiteout("d"),
                E::Opaque("etc"),
                E::File("etc/os-release", "v"),
            ],
        ],
    );
    let layer_fs = |n: u32| s.root().join("layers").join(&chain(n)[7..]).join("fs");
    assert_eq!(names(layer_fs(1)), ["a", "d", "lib"]);
    assert_eq!(names(layer_fs(2)), ["a", "d", "etc", "lib"]);
    assert_eq!(
        read(layer_fs(1).join("a")),
        "1",
        "a child layer does not touch its parent"
    );
    assert_eq!(read(layer_fs(2).join("a")), "2");
    assert_eq!(names(layer_fs(3)), ["a", "etc", "lib"]);
    assert_eq!(names(layer_fs(3).join("etc")), ["os-release"]);
    assert_eq!(
        fs::read_link(layer_fs(3).join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    // Layer 3 stands alone: its parents can go.
    s.remove_layer(&chain(1)).unwrap();
    s.remove_layer(&chain(2)).unwrap();
    s.prepare("c", Some(&top)).unwrap();
    let t = root.target("c");
    let _g = s.mount("c", &t).unwrap();
    assert_eq!(read(t.join("a")), "2");
    assert_eq!(read(t.join("etc/os-release")), "v");
}

#[test]
fn snapshot_copy_preserves_metadata() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Copy);
    let mut unpack = |dir: &Path, mode| {
        assert_eq!(mode, UnpackMode::Flatten);
        let p = |n: &str| dir.join(n);
        fs::write(p("suid"), "s").unwrap();
        std::os::unix::fs::chown(p("suid"), Some(1000), Some(1001)).unwrap();
        fs::set_permissions(p("suid"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::write(p("linked"), "L").unwrap();
        fs::hard_link(p("linked"), p("linked2")).unwrap();
        std::os::unix::fs::symlink("linked", p("sym")).unwrap();
        std::os::unix::fs::lchown(p("sym"), Some(7), Some(8)).unwrap();
        let dev = rustix::fs::makedev(1, 3);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p("null"),
            rustix::fs::FileType::CharacterDevice,
            0o666.into(),
            dev,
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p("fifo"),
            rustix::fs::FileType::Fifo,
            0o640.into(),
            0,
        )
        .unwrap();
        rustix::fs::lsetxattr(
            p("suid"),
            "user.note",
            b"v",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        rustix::fs::lsetxattr(
            p("suid"),
            "security.capability",
            &CAP_NET_RAW,
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        fs::create_dir(p("dir")).unwrap();
        fs::write(p("dir/f"), "f").unwrap();
        fs::set_permissions(p("dir"), fs::Permissions::from_mode(0o1777)).unwrap();
        let old = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 5,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 123,
            },
        };
        for n in ["suid", "sym", "dir"] {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                p(n),
                &old,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
        }
        Ok(())
    };
    s.add_layer(&chain(1), None, &mut unpack).unwrap();
    s.prepare("c", Some(&chain(1))).unwrap();
    let src = s.root().join("layers").join(&chain(1)[7..]).join("fs");
    let dst = s.upper_dir("c").unwrap();
    for tree in [&src, &dst] {
        let m = |n: &str| fs::symlink_metadata(tree.join(n)).unwrap();
        assert_eq!(
            (m("suid").uid(), m("suid").gid(), m("suid").mode() & 0o7777),
            (1000, 1001, 0o4751)
        );
        assert_eq!(m("suid").mtime(), 1_000_000_000);
        assert_eq!(m("suid").mtime_nsec(), 123);
        assert_eq!(
            m("dir").mtime(),
            1_000_000_000,
            "directory mtime survives copying its content"
        );
        assert_eq!(m("dir").mode() & 0o7777, 0o1777);
        assert_eq!(m("linked").ino(), m("linked2").ino(), "hard link kept");
        assert_eq!(m("linked").nlink(), 2);
        assert!(m("sym").file_type().is_symlink());
        assert_eq!(
            (m("sym").uid(), m("sym").gid(), m("sym").mtime()),
            (7, 8, 1_000_000_000)
        );
        assert_eq!(
            fs::read_link(tree.join("sym")).unwrap(),
            Path::new("linked")
        );
        assert!(m("null").file_type().is_char_device());
        assert_eq!(m("null").rdev(), rustix::fs::makedev(1, 3));
        assert!(m("fifo").file_type().is_fifo());
        let x = super::super::tree::get_xattr(&tree.join("suid"), b"user.note").unwrap();
        assert_eq!(x.as_deref(), Some(&b"v"[..]));
        let cap =
            super::super::tree::get_xattr(&tree.join("suid"), b"security.capability").unwrap();
        assert_eq!(
            cap.as_deref(),
            Some(&CAP_NET_RAW[..]),
            "file capability survives the chown"
        );
    }
    assert_ne!(
        ino(src.join("linked")),
        ino(dst.join("linked")),
        "the container has its own copy"
    );
}

/// A version-2 file capability granting CAP_NET_RAW (bit 13) permitted.
const CAP_NET_RAW: [u8; 20] = [
    0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn snapshot_copy_refuses_detached_layers() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Copy);
    assert!(!s.supports_detached());
    let mut called = false;
    let r = s.unpack_detached(&mut |_: &Path, _| {
        called = true;
        Ok(())
    });
    assert!(matches!(r, Err(crate::Error::InvalidArgument(_))) && !called);
}
