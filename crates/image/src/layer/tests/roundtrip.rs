//! Round trips: changes made to a tree, turned into a layer by `diff`, applied onto the base,
//! give the tree back; `changes` lists them as `docker diff` does.

use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use super::{assert_same_tree, opts, tree, Overlay, Raw, Scratch, Tar};
use crate::layer::{apply, apply_onto, changes, diff, Compression, DiffSource, WhiteoutMode};

fn base_layer() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("bin/").file_mode("bin/sh", b"shell", 0o755, 0, 0).file_mode("bin/suid", b"s", 0o4755, 0, 0);
    t.dir("etc/").file("etc/passwd", b"root:x:0:0").file("etc/hosts", b"127.0.0.1 localhost\n");
    t.dir("etc/conf.d/").file("etc/conf.d/a", b"a").file("etc/conf.d/b", b"b");
    t.dir("usr/").dir("usr/lib/").file("usr/lib/libx.so", b"lib").symlink("usr/lib/libx.so.1", "libx.so");
    t.dir("var/").dir("var/log/").file("var/log/old.log", b"old");
    t.dir("opt/").dir("opt/app/").file("opt/app/x", b"x").dir("opt/app/y/").file("opt/app/y/z", b"z");
    t.dir("home/");
    t.raw(Raw { kind: b'5', path: b"home/user/", mode: 0o700, uid: 1000, gid: 1000, ..Raw::default() });
    t.file_mode("home/user/.profile", b"PS1=$", 0o644, 1000, 1000);
    t.dir("links/").file("links/one", b"hl").hardlink("links/two", "links/one");
    t.raw(Raw { kind: b'5', path: b"tmp/", mode: 0o1777, ..Raw::default() });
    t.file("replace-file-with-dir", b"f");
    t.dir("replace-dir-with-file/").file("replace-dir-with-file/inner", b"i");
    t.device(b'6', "fifo", 0, 0);
    t.finish()
}

/// Path components long enough to need PAX paths.
fn long_a() -> String {
    "a".repeat(120)
}

fn long_b() -> String {
    "b".repeat(120)
}

fn cap() -> Vec<u8> {
    let mut v = 0x0200_0001u32.to_le_bytes().to_vec();
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&[0u8; 12]);
    v
}

fn set_xattr(p: &Path, k: &str, v: &[u8]) {
    rustix::fs::lsetxattr(p, k, v, rustix::fs::XattrFlags::empty()).unwrap();
}

/// What a container might do to its root filesystem.
fn modify(root: &Path) {
    let p = |rel: &str| root.join(rel);
    std::fs::write(p("etc/new.conf"), b"new").unwrap();
    let mut hosts = std::fs::read(p("etc/hosts")).unwrap();
    hosts.extend_from_slice(b"10.0.0.1 db\n");
    std::fs::write(p("etc/hosts"), hosts).unwrap();
    std::fs::set_permissions(p("bin/sh"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::lchown(p("home/user/.profile"), Some(2000), Some(2000)).unwrap();
    std::fs::remove_file(p("etc/conf.d/b")).unwrap();
    std::fs::remove_dir_all(p("var/log")).unwrap();
    std::fs::remove_file(p("replace-file-with-dir")).unwrap();
    std::fs::create_dir(p("replace-file-with-dir")).unwrap();
    std::fs::write(p("replace-file-with-dir/inner"), b"in").unwrap();
    std::fs::remove_dir_all(p("replace-dir-with-file")).unwrap();
    std::fs::write(p("replace-dir-with-file"), b"now a file").unwrap();
    std::fs::remove_file(p("usr/lib/libx.so.1")).unwrap();
    symlink("libx.so.2", p("usr/lib/libx.so.1")).unwrap();
    std::fs::create_dir(p("new")).unwrap();
    std::fs::write(p("new/h1"), b"hh").unwrap();
    std::fs::hard_link(p("new/h1"), p("new/h2")).unwrap();
    std::fs::write(p("bin/ping"), b"\x7fELF").unwrap();
    std::os::unix::fs::lchown(p("bin/ping"), Some(0), Some(0)).unwrap();
    set_xattr(&p("bin/ping"), "security.capability", &cap());
    set_xattr(&p("etc/passwd"), "user.tag", b"t");
    std::fs::write(p("bin/newsuid"), b"x").unwrap();
    std::fs::set_permissions(p("bin/newsuid"), std::fs::Permissions::from_mode(0o4711)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p("tmp/newfifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let deep = p(&format!("deep/{}/{}", long_a(), long_b()));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("file"), b"deep").unwrap();
    std::fs::remove_dir_all(p("opt/app")).unwrap();
    std::fs::create_dir(p("opt/app")).unwrap();
    std::fs::write(p("opt/app/fresh"), b"fresh").unwrap();
    symlink("/etc/shadow", p("etc/escape")).unwrap();
    let t = rustix::fs::Timespec { tv_sec: 1_700_000_000, tv_nsec: 0 };
    let times = rustix::fs::Timestamps { last_access: t, last_modification: t };
    rustix::fs::utimensat(rustix::fs::CWD, p("etc/passwd"), &times, rustix::fs::AtFlags::empty()).unwrap();
}

/// `docker diff` of `modify`, in order.
fn expected_changes(overlay: bool) -> Vec<String> {
    let mut v: Vec<String> = [
        "C /bin",
        "A /bin/newsuid",
        "A /bin/ping",
        "C /bin/sh",
        "A /deep",
        &format!("A /deep/{}", long_a()),
        &format!("A /deep/{}/{}", long_a(), long_b()),
        &format!("A /deep/{}/{}/file", long_a(), long_b()),
        "C /etc",
        "C /etc/conf.d",
        "D /etc/conf.d/b",
        "A /etc/escape",
        "C /etc/hosts",
        "A /etc/new.conf",
        "C /etc/passwd",
        "C /home",
        "C /home/user",
        "C /home/user/.profile",
        "A /new",
        "A /new/h1",
        "A /new/h2",
        "C /opt",
        "C /opt/app",
        "A /opt/app/fresh",
        "D /opt/app/x",
        "D /opt/app/y",
        "C /replace-dir-with-file",
        "C /replace-file-with-dir",
        "A /replace-file-with-dir/inner",
        "C /tmp",
        "A /tmp/newfifo",
        "C /usr",
        "C /usr/lib",
        "C /usr/lib/libx.so.1",
        "C /var",
        "D /var/log",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if overlay {
        // The opaque directory lists what it hides before its own content.
        let i = v.iter().position(|s| s == "A /opt/app/fresh").unwrap();
        let fresh = v.remove(i);
        v.insert(i + 2, fresh);
    }
    v
}

fn entry_names(layer: &[u8]) -> Vec<String> {
    let mut plain = Vec::new();
    crate::layer::decompress(layer).unwrap().read_to_end(&mut plain).unwrap();
    let mut a = tar::Archive::new(&plain[..]);
    a.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn layer_roundtrip_compare_mode() {
    let s = Scratch::new();
    let base = base_layer();
    let o = opts(WhiteoutMode::Apply);
    apply(&base[..], &s.path("base"), &o).unwrap();
    apply(&base[..], &s.path("work"), &o).unwrap();
    modify(&s.path("work"));
    let (work, basep) = (s.path("work"), s.path("base"));
    let source = DiffSource::Compare { dir: &work, base: Some(&basep) };

    let got: Vec<String> = changes(&source).unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(got, expected_changes(false));

    let mut layer = Vec::new();
    let stats = diff(&source, &mut layer, Compression::Gzip).unwrap();
    assert_eq!(Compression::detect(&layer), Compression::Gzip);
    assert_eq!((stats.whiteouts, stats.hardlinks, stats.opaques), (4, 1, 0));
    let mut again = Vec::new();
    diff(&source, &mut again, Compression::Gzip).unwrap();
    assert_eq!(layer, again, "diff output is deterministic");
    let names = entry_names(&layer);
    for want in ["bin/", "etc/conf.d/.wh.b", "var/.wh.log", "opt/app/.wh.x", "new/h2"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }

    apply(&base[..], &s.path("result"), &o).unwrap();
    apply_onto(&layer[..], &s.path("result"), &o).unwrap();
    assert_same_tree(&tree(&s.path("result"), ""), &tree(&work, ""));

    // A base layer: everything added; applied, it gives the tree back.
    let mut full = Vec::new();
    diff(&DiffSource::Compare { dir: &work, base: None }, &mut full, Compression::Zstd).unwrap();
    apply(&full[..], &s.path("full"), &o).unwrap();
    assert_same_tree(&tree(&s.path("full"), ""), &tree(&work, ""));
}

#[test]
fn layer_roundtrip_overlay_upper() {
    let s = Scratch::new();
    let base = base_layer();
    let lower = s.path("lower");
    apply(&base[..], &lower, &opts(WhiteoutMode::Overlay)).unwrap();
    let (upper, work) = (s.path("upper"), s.path("work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let want = {
        let m = Overlay::mount(&[&lower], Some((&upper, &work)), &s.path("merged"));
        modify(&m.merged);
        tree(&m.merged, "trusted.overlay.")
    };
    let lowers = [lower.clone()];
    let source = DiffSource::Overlay { upper: &upper, lowers: &lowers };
    let got: Vec<String> = changes(&source).unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(got, expected_changes(true));

    let mut layer = Vec::new();
    let stats = diff(&source, &mut layer, Compression::Zstd).unwrap();
    assert_eq!(stats.opaques, 2, "opt/app and replace-file-with-dir");
    let names = entry_names(&layer);
    for want in ["opt/app/.wh..wh..opq", "var/.wh.log", "etc/conf.d/.wh.b"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("trusted.overlay")));

    // Flattened onto a copy of the base...
    apply(&base[..], &s.path("flat"), &opts(WhiteoutMode::Apply)).unwrap();
    apply_onto(&layer[..], &s.path("flat"), &opts(WhiteoutMode::Apply)).unwrap();
    assert_same_tree(&tree(&s.path("flat"), ""), &want);
    // ...and unpacked as its own overlay layer, stacked on the base.
    apply(&layer[..], &s.path("l2"), &opts(WhiteoutMode::Overlay)).unwrap();
    let m = Overlay::mount(&[&s.path("l2"), &lower], None, &s.path("merged2"));
    assert_same_tree(&tree(&m.merged, "trusted.overlay."), &want);

    // Without the lowers every upper entry is listed, and the layer is the same.
    let mut layer2 = Vec::new();
    diff(&DiffSource::Overlay { upper: &upper, lowers: &[] }, &mut layer2, Compression::None).unwrap();
    let mut plain = Vec::new();
    crate::layer::decompress(&layer[..]).unwrap().read_to_end(&mut plain).unwrap();
    assert!(layer2.len() >= plain.len());
}
