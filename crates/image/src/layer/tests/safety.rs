//! Crafted archives that try to reach outside the target.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{opts, Raw, Scratch, Tar};
use crate::layer::{apply, apply_onto, ApplyOptions, WhiteoutMode};
use crate::Error;

/// Applies `tar` to a new target and expects an UnsafeEntry naming `entry`, with nothing left.
fn refused(tar: &[u8], options: &ApplyOptions, entry: &str) {
    let s = Scratch::new();
    let before = s.names();
    let err = apply(tar, &s.path("target"), options).expect_err("the archive must be refused");
    match &err {
        Error::UnsafeEntry { entry: e, .. } => assert_eq!(e, entry, "{err}"),
        other => panic!("expected UnsafeEntry for {entry:?}, got {other}"),
    }
    assert_eq!(s.names(), before, "nothing may be left behind");
}

fn host_passwd() -> (u64, i64, u64) {
    let md = std::fs::symlink_metadata("/etc/passwd").unwrap();
    (md.ino(), md.mtime(), md.nlink())
}

#[test]
fn layer_dotdot_refused() {
    let o = opts(WhiteoutMode::Apply);
    refused(&Tar::new().file("../evil", b"x").finish(), &o, "../evil");
    refused(&Tar::new().dir("a/").file("a/../../evil", b"x").finish(), &o, "a/../../evil");
    refused(&Tar::new().dir("../../").finish(), &o, "../../");
    // A PAX path and a GNU long name are checked the same way.
    refused(&Tar::new().pax(&[("path", b"ok/../../evil")]).file("innocent", b"x").finish(), &o, "ok/../../evil");
    let mut t = Tar::new();
    let name = b"../gnu-evil\0";
    t.raw(Raw { kind: b'L', path: b"././@LongLink", data: name, ..Raw::default() });
    t.file("innocent", b"x");
    refused(&t.finish(), &o, "../gnu-evil");
    // `..` that stays inside is fine.
    let s = Scratch::new();
    apply(&Tar::new().dir("a/").file("a/../b", b"x").finish()[..], &s.path("t"), &o).unwrap();
    assert!(s.path("t/b").is_file());
}

#[test]
fn layer_absolute_paths_land_inside() {
    let s = Scratch::new();
    let before = host_passwd();
    let tar = Tar::new().file("/etc/x-berth-test", b"inside").file("/etc/passwd", b"fake").finish();
    apply(&tar[..], &s.path("t"), &opts(WhiteoutMode::Apply)).unwrap();
    assert_eq!(std::fs::read(s.path("t/etc/x-berth-test")).unwrap(), b"inside");
    assert_eq!(std::fs::read(s.path("t/etc/passwd")).unwrap(), b"fake");
    assert!(!Path::new("/etc/x-berth-test").exists());
    assert_eq!(host_passwd(), before);
}

#[test]
fn layer_symlink_to_root_then_write_through_stays_inside() {
    let s = Scratch::new();
    let before = host_passwd();
    let tar = Tar::new().symlink("link", "/").file("link/etc/passwd", b"owned?").finish();
    apply(&tar[..], &s.path("t"), &chroot_like(WhiteoutMode::Apply)).unwrap();
    assert_eq!(std::fs::read(s.path("t/etc/passwd")).unwrap(), b"owned?");
    assert_eq!(std::fs::read_link(s.path("t/link")).unwrap(), Path::new("/"));
    assert_eq!(host_passwd(), before);
    assert_ne!(std::fs::read("/etc/passwd").unwrap(), b"owned?");
}

#[test]
fn layer_symlink_climbing_out_then_write_through_stays_inside() {
    let s = Scratch::new();
    let marker = format!("berth-escape-{}", std::process::id());
    let t = Tar::new()
        .symlink("up", "../../../../../../..")
        .dir("d/")
        .symlink("d/up2", "../../..")
        .file(&format!("up/{marker}"), b"1")
        .file(&format!("d/up2/tmp/{marker}"), b"2")
        .finish();
    apply(&t[..], &s.path("t"), &chroot_like(WhiteoutMode::Apply)).unwrap();
    // `..` past the root stops at the root, as it does inside a container.
    assert_eq!(std::fs::read(s.path("t").join(&marker)).unwrap(), b"1");
    assert_eq!(std::fs::read(s.path("t/tmp").join(&marker)).unwrap(), b"2");
    for dir in [Path::new("/"), Path::new("/tmp"), s.dir.path(), s.dir.path().parent().unwrap()] {
        assert!(!dir.join(&marker).exists(), "{} escaped into {}", marker, dir.display());
    }
}

/// Docker's resolution (symlinks followed relative to the target root), which callers may
/// choose instead of the default refusal.
fn chroot_like(whiteouts: WhiteoutMode) -> ApplyOptions {
    ApplyOptions { refuse_escaping_symlinks: false, ..opts(whiteouts) }
}

#[test]
fn layer_escaping_symlink_refused_by_default() {
    let o = ApplyOptions::default();
    refused(&Tar::new().symlink("link", "/").file("link/etc/passwd", b"x").finish(), &o, "link/etc/passwd");
    refused(&Tar::new().symlink("up", "../..").file("up/x", b"x").finish(), &o, "up/x");
    // A relative symlink that stays inside is followed.
    let s = Scratch::new();
    let t = Tar::new().dir("real/").symlink("l", "real").file("l/f", b"x").finish();
    apply(&t[..], &s.path("t"), &o).unwrap();
    assert!(s.path("t/real/f").is_file());
}

#[test]
fn layer_entries_replace_symlinks_instead_of_following_them() {
    let s = Scratch::new();
    let outside = s.path("outside");
    std::fs::write(&outside, b"keep").unwrap();
    let o = outside.to_str().unwrap();
    let t = Tar::new()
        .symlink("f", o)
        .file("f", b"replaced")
        .symlink("d", s.dir.path().to_str().unwrap())
        .dir("d/")
        .symlink("h", o)
        .file("src", b"s")
        .hardlink("h", "src")
        .finish();
    apply(&t[..], &s.path("t"), &opts(WhiteoutMode::Apply)).unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    assert_eq!(std::fs::read(s.path("t/f")).unwrap(), b"replaced");
    assert!(std::fs::symlink_metadata(s.path("t/d")).unwrap().is_dir());
    assert_eq!(std::fs::metadata(s.path("t/h")).unwrap().ino(), std::fs::metadata(s.path("t/src")).unwrap().ino());
    assert_eq!(s.names(), vec!["outside", "t"]);
}

#[test]
fn layer_hardlinks_outside_refused() {
    let o = opts(WhiteoutMode::Apply);
    let before = host_passwd();
    refused(&Tar::new().hardlink("pw", "/etc/passwd").finish(), &o, "pw");
    refused(&Tar::new().hardlink("pw", "../../outside").finish(), &o, "pw");
    refused(&Tar::new().dir("a/").hardlink("a/pw", "a/../../../etc/passwd").finish(), &o, "a/pw");
    // Through a symlink to the host's /etc: resolved inside, where there is no passwd.
    refused(&Tar::new().symlink("etc", "/etc").hardlink("pw", "etc/passwd").finish(), &o, "pw");
    refused(&Tar::new().dir("d/").hardlink("pw", "d").finish(), &o, "pw");
    assert_eq!(host_passwd(), before);

    // A hardlink to a lower layer's file links the copy inside the target.
    let s = Scratch::new();
    apply(&Tar::new().file("etc/passwd", b"lower").finish()[..], &s.path("t"), &o).unwrap();
    apply_onto(&Tar::new().hardlink("pw", "/etc/passwd").finish()[..], &s.path("t"), &o).unwrap();
    assert_eq!(std::fs::read(s.path("t/pw")).unwrap(), b"lower");
    assert_eq!(std::fs::metadata(s.path("t/pw")).unwrap().nlink(), 2);
    assert_eq!(host_passwd(), before);
}

#[test]
fn layer_devices_need_permission() {
    let o = opts(WhiteoutMode::Apply);
    refused(&Tar::new().file("ok", b"x").device(b'3', "dev/null", 1, 3).finish(), &o, "dev/null");
    refused(&Tar::new().device(b'4', "dev/sda", 8, 0).finish(), &o, "dev/sda");
    // An archive's own 0/0 device is refused too, even in overlay mode.
    refused(&Tar::new().device(b'3', "wh", 0, 0).finish(), &opts(WhiteoutMode::Overlay), "wh");
    // Fifos are not devices.
    let s = Scratch::new();
    apply(&Tar::new().device(b'6', "fifo", 0, 0).finish()[..], &s.path("t"), &o).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(s.path("t/fifo")).unwrap().file_type().is_fifo());

    let allowed = ApplyOptions { allow_devices: true, ..o };
    let s = Scratch::new();
    apply(&Tar::new().device(b'3', "dev/null", 1, 3).finish()[..], &s.path("t"), &allowed).unwrap();
    let md = std::fs::symlink_metadata(s.path("t/dev/null")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
}

#[test]
fn layer_odd_entries_refused() {
    let o = opts(WhiteoutMode::Apply);
    refused(&Tar::new().file("a", b"x").raw(Raw { kind: b'V', path: b"vol", ..Raw::default() }).finish(), &o, "vol");
    refused(&Tar::new().file(".wh...", b"").finish(), &o, ".wh...");
    refused(&Tar::new().file("/", b"x").finish(), &o, "/");
    refused(&Tar::new().file("a/..", b"x").finish(), &o, "a/..");
}

#[test]
fn layer_whiteouts_through_symlinks_stay_inside() {
    let s = Scratch::new();
    let outside = s.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"keep").unwrap();
    let o = outside.to_str().unwrap();
    let layer1 = Tar::new().symlink("l", o).symlink("up", "../..").finish();
    let entries = ["l/.wh.victim", "up/outside/.wh.victim", "l/.wh..wh..opq", "up/.wh..wh..opq", "l/x/.wh.y"];
    for (i, entry) in entries.iter().enumerate() {
        for mode in [WhiteoutMode::Apply, WhiteoutMode::Overlay] {
            let t = s.path(&format!("t-{mode:?}-{i}"));
            apply(&layer1[..], &t, &chroot_like(mode)).unwrap();
            // Overlay mode creates missing parents and fails on a dangling symlink; either way
            // nothing outside changes.
            let res = apply_onto(&Tar::new().file(entry, b"").finish()[..], &t, &chroot_like(mode));
            if mode == WhiteoutMode::Apply {
                res.unwrap();
            }
            assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep", "{entry} {mode:?}");
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "{entry} {mode:?}");
            assert!(super::xattr(&outside, "trusted.overlay.opaque").is_none());
            assert!(super::xattr(s.dir.path(), "trusted.overlay.opaque").is_none());
        }
    }
}

#[test]
fn layer_failure_leaves_nothing() {
    let s = Scratch::new();
    let mut t = Tar::new();
    t.dir("usr/").dir("usr/bin/");
    for i in 0..50 {
        t.file(&format!("usr/bin/f{i}"), &vec![b'x'; 10_000]);
    }
    t.symlink("usr/lib", "/lib").file("../evil", b"x");
    let err = apply(&t.finish()[..], &s.path("target"), &opts(WhiteoutMode::Apply)).unwrap_err();
    assert!(matches!(&err, Error::UnsafeEntry { entry, .. } if entry == "../evil"), "{err}");
    assert!(s.names().is_empty(), "left behind: {:?}", s.names());

    // A truncated archive, and a corrupt gzip stream, fail the same way.
    let mut t = Tar::new();
    t.file("a", &vec![b'a'; 5000]);
    let full = t.finish();
    let err = apply(&full[..2000], &s.path("target"), &opts(WhiteoutMode::Apply)).unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err}");
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        e.write_all(&full).unwrap();
        e.finish().unwrap();
    }
    let n = gz.len();
    gz[n - 6] ^= 0xff; // the CRC trailer
    let err = apply(&gz[..], &s.path("target"), &opts(WhiteoutMode::Apply)).unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err}");
    assert!(s.names().is_empty(), "left behind: {:?}", s.names());

    // An existing target is a conflict, and is not touched.
    std::fs::create_dir(s.path("target")).unwrap();
    std::fs::write(s.path("target/keep"), b"k").unwrap();
    let err = apply(&full[..], &s.path("target"), &opts(WhiteoutMode::Apply)).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(s.names(), vec!["target"]);
    assert_eq!(std::fs::read_dir(s.path("target")).unwrap().count(), 1);
}

#[test]
fn layer_mount_points_inside_are_not_crossed() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new();
    let (outside, t) = (s.path("outside"), s.path("t"));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(t.join("mnt")).unwrap();
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let (src, dst) = (c(&outside), c(&t.join("mnt")));
    let rc = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) };
    assert_eq!(rc, 0, "bind mount: {}", std::io::Error::last_os_error());
    let res = apply_onto(&Tar::new().file("mnt/x", b"x").finish()[..], &t, &opts(WhiteoutMode::Apply));
    unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
    match res {
        Err(Error::UnsafeEntry { entry, .. }) => assert_eq!(entry, "mnt/x"),
        other => panic!("expected UnsafeEntry, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}
