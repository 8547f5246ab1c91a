//! Applying crafted layers: whiteouts in both modes, metadata, links, formats, big streams.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use super::{assert_same_tree, opts, tree, xattr, Overlay, Raw, Scratch, Tar, MTIME};
use crate::layer::{apply, apply_onto, decompress, ApplyOptions, Compression, WhiteoutMode};

fn three_layers() -> [Vec<u8>; 3] {
    let l1 = Tar::new()
        .dir("etc/")
        .file("etc/a", b"a1")
        .file("etc/b", b"b1")
        .dir("etc/sub/")
        .file("etc/sub/c", b"c1")
        .dir("opt/")
        .file("opt/x", b"x1")
        .dir("opt/y/")
        .file("opt/y/z", b"z1")
        .file("keep", b"k1")
        .file("r", b"r1")
        .finish();
    let l2 = Tar::new()
        .dir("etc/")
        .file("etc/.wh.a", b"")
        .dir("etc/sub/")
        .file("etc/sub/d", b"d2")
        .dir("opt/")
        .file("opt/.wh..wh..opq", b"")
        .file("opt/new", b"n2")
        .finish();
    let l3 = Tar::new()
        .file(".wh.keep", b"")
        .dir("etc/")
        .dir("etc/sub/")
        .file("etc/sub/.wh..wh..opq", b"")
        .file("etc/sub/e", b"e3")
        .file("r", b"r3")
        // A whiteout never hides its own layer's content.
        .file(".wh.r", b"")
        .file("etc/.wh.b", b"")
        .file("etc/.wh..wh.plnk", b"")
        .finish();
    [l1, l2, l3]
}

fn names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (k, _) in tree(dir, "") {
        out.push(k);
    }
    out
}

#[test]
fn layer_whiteouts_applied_in_place() {
    let s = Scratch::new();
    let t = s.path("flat");
    let [l1, l2, l3] = three_layers();
    let o = opts(WhiteoutMode::Apply);
    apply(&l1[..], &t, &o).unwrap();
    let st2 = apply_onto(&l2[..], &t, &o).unwrap();
    assert_eq!((st2.whiteouts, st2.opaques), (1, 1));
    apply_onto(&l3[..], &t, &o).unwrap();
    assert_eq!(names(&t), vec!["etc", "etc/sub", "etc/sub/e", "opt", "opt/new", "r"]);
    assert_eq!(std::fs::read(t.join("r")).unwrap(), b"r3");
}

#[test]
fn layer_whiteouts_as_overlay() {
    let s = Scratch::new();
    let [l1, l2, l3] = three_layers();
    let o = opts(WhiteoutMode::Overlay);
    let dirs = [s.path("l1"), s.path("l2"), s.path("l3")];
    for (layer, dir) in [&l1, &l2, &l3].into_iter().zip(&dirs) {
        apply(&layer[..], dir, &o).unwrap();
    }
    let whiteout = |p: &Path| {
        let md = std::fs::symlink_metadata(p).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0, "{} is no whiteout", p.display());
    };
    whiteout(&dirs[1].join("etc/a"));
    whiteout(&dirs[2].join("keep"));
    whiteout(&dirs[2].join("etc/b"));
    assert_eq!(xattr(&dirs[1].join("opt"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(xattr(&dirs[2].join("etc/sub"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert!(xattr(&dirs[2].join("etc"), "trusted.overlay.opaque").is_none());
    assert_eq!(std::fs::read(dirs[2].join("r")).unwrap(), b"r3");
    assert!(!dirs[2].join(".wh.r").exists() && !dirs[2].join(".wh.keep").exists());

    // Stacked with overlayfs, the layers show what flattening them gives.
    let flat = s.path("flat");
    apply(&l1[..], &flat, &opts(WhiteoutMode::Apply)).unwrap();
    apply_onto(&l2[..], &flat, &opts(WhiteoutMode::Apply)).unwrap();
    apply_onto(&l3[..], &flat, &opts(WhiteoutMode::Apply)).unwrap();
    let m = Overlay::mount(&[&dirs[2], &dirs[1], &dirs[0]], None, &s.path("merged"));
    assert_same_tree(&tree(&m.merged, "trusted.overlay."), &tree(&flat, ""));
}

fn cap_net_raw() -> Vec<u8> {
    // struct vfs_cap_data, revision 2, effective; permitted = CAP_NET_RAW (13).
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0001u32.to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&[0u8; 12]);
    v
}

#[test]
fn layer_metadata_owner_mode_xattrs_times() {
    let s = Scratch::new();
    let cap = cap_net_raw();
    let mut t = Tar::new();
    t.raw(Raw { kind: b'5', path: b"d/", mode: 0o1777, mtime: 1_500_000_000, ..Raw::default() });
    t.file_mode("d/suid", b"#!/bin/true\n", 0o4755, 1234, 5678);
    t.pax(&[
        ("SCHILY.xattr.security.capability", &cap),
        ("SCHILY.xattr.user.note", b"hi"),
        ("SCHILY.xattr.trusted.secret", b"no"),
    ]);
    t.file_mode("d/ping", b"\x7fELF", 0o755, 1234, 1234);
    t.raw(Raw { kind: b'2', path: b"d/ln", link: b"suid", uid: 4321, gid: 8765, mode: 0o777, ..Raw::default() });
    t.pax(&[("mtime", b"1234567890.123456789"), ("atime", b"1000000000.5")]);
    t.file("d/times", b"t");
    t.pax(&[("uid", b"3000000"), ("gid", b"3000001")]);
    t.file("d/bigid", b"b");
    let stats = apply(&t.finish()[..], &s.path("t"), &opts(WhiteoutMode::Apply)).unwrap();
    let root = s.path("t");
    let md = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();

    assert_eq!(md("d").mode() & 0o7777, 0o1777);
    assert_eq!(md("d").mtime(), 1_500_000_000, "directory times are set after its content");
    assert_eq!((md("d/suid").mode() & 0o7777, md("d/suid").uid(), md("d/suid").gid()), (0o4755, 1234, 5678));
    assert_eq!(md("d/suid").mtime(), MTIME as i64);
    assert_eq!(xattr(&root.join("d/ping"), "security.capability"), Some(cap), "capability survives chown");
    assert_eq!(xattr(&root.join("d/ping"), "user.note").as_deref(), Some(&b"hi"[..]));
    assert_eq!(xattr(&root.join("d/ping"), "trusted.secret"), None);
    assert!(stats.xattrs_skipped >= 1);
    assert_eq!((md("d/ln").uid(), md("d/ln").gid()), (4321, 8765), "lchown, not chown through the link");
    assert_eq!((md("d/suid").uid(), md("d/suid").gid()), (1234, 5678));
    assert_eq!((md("d/times").mtime(), md("d/times").mtime_nsec()), (1234567890, 123456789));
    assert_eq!((md("d/times").atime(), md("d/times").atime_nsec()), (1000000000, 500000000));
    assert_eq!((md("d/bigid").uid(), md("d/bigid").gid()), (3000000, 3000001));
    assert_eq!(md("").mode() & 0o7777, 0o755);
    assert_eq!((stats.files, stats.dirs, stats.symlinks), (4, 1, 1));

    // Trusted xattrs when allowed; ids remapped for a user namespace.
    let allowed = ApplyOptions {
        allow_trusted_xattrs: true,
        id_map: Some(Arc::new(|u, g| (u + 100_000, g + 100_000))),
        ..ApplyOptions::default()
    };
    let t2 = Tar::new().pax(&[("SCHILY.xattr.trusted.secret", b"yes")]).file_mode("a/f", b"f", 0o600, 1, 2).finish();
    apply(&t2[..], &s.path("t2"), &allowed).unwrap();
    let f = s.path("t2/a/f");
    assert_eq!(xattr(&f, "trusted.secret").as_deref(), Some(&b"yes"[..]));
    assert_eq!((md_of(&f).uid(), md_of(&f).gid()), (100_001, 100_002));
    let a = md_of(&s.path("t2/a"));
    assert_eq!((a.uid(), a.gid(), a.mode() & 0o7777), (100_000, 100_000, 0o755), "implicit parent");
    assert_eq!(md_of(&s.path("t2")).uid(), 100_000, "root of the layer");
}

fn md_of(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

#[test]
fn layer_hardlinks_within_layer() {
    let s = Scratch::new();
    let t = Tar::new()
        .file("a", b"shared")
        .hardlink("b", "a")
        .dir("sub/")
        .hardlink("sub/c", "/a")
        .file("x", b"old")
        .hardlink("x", "a")
        .hardlink("a", "a")
        .finish();
    let stats = apply(&t[..], &s.path("t"), &opts(WhiteoutMode::Apply)).unwrap();
    let ino = md_of(&s.path("t/a")).ino();
    for p in ["t/b", "t/sub/c", "t/x"] {
        assert_eq!(md_of(&s.path(p)).ino(), ino, "{p}");
    }
    assert_eq!(md_of(&s.path("t/a")).nlink(), 4);
    assert_eq!(std::fs::read(s.path("t/x")).unwrap(), b"shared");
    assert_eq!(stats.hardlinks, 4);
}

#[test]
fn layer_long_names_and_gnu_sparse() {
    let s = Scratch::new();
    let long_dir = "d".repeat(120);
    let long = format!("{long_dir}/{}", "f".repeat(150));
    let long_target = "t".repeat(200);
    let mut t = Tar::new();
    t.file(&long, b"long");
    t.pax(&[("linkpath", long_target.as_bytes())]);
    t.symlink("sym", "short");
    let mut name = long.clone().into_bytes();
    name.push(0);
    t.raw(Raw { kind: b'K', path: b"././@LongLink", data: &name, ..Raw::default() });
    t.hardlink("hl", "ignored");
    // An old-style GNU sparse file: 512 bytes at 0, 512 at 1 MiB, a hole at the end.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.as_gnu_mut().unwrap().name[..6].copy_from_slice(b"sparse");
    h.set_mode(0o644);
    h.set_mtime(MTIME);
    h.set_size(1024);
    {
        let g = h.as_gnu_mut().unwrap();
        g.sparse[0].set_offset(0);
        g.sparse[0].set_length(512);
        g.sparse[1].set_offset(1 << 20);
        g.sparse[1].set_length(512);
        g.set_real_size((1 << 20) + 4096);
    }
    h.set_cksum();
    t.buf.extend_from_slice(h.as_bytes());
    t.buf.extend_from_slice(&[b'a'; 512]);
    t.buf.extend_from_slice(&[b'b'; 512]);
    apply(&t.finish()[..], &s.path("t"), &opts(WhiteoutMode::Apply)).unwrap();
    assert_eq!(std::fs::read(s.path("t").join(&long)).unwrap(), b"long");
    assert_eq!(std::fs::read_link(s.path("t/sym")).unwrap().to_str().unwrap(), long_target);
    assert_eq!(md_of(&s.path("t/hl")).ino(), md_of(&s.path("t").join(&long)).ino());
    let sparse = std::fs::read(s.path("t/sparse")).unwrap();
    assert_eq!(sparse.len(), (1 << 20) + 4096);
    assert!(sparse[..512].iter().all(|&b| b == b'a'));
    assert!(sparse[512..1 << 20].iter().all(|&b| b == 0));
    assert!(sparse[1 << 20..(1 << 20) + 512].iter().all(|&b| b == b'b'));
    assert!(sparse[(1 << 20) + 512..].iter().all(|&b| b == 0));
    assert!(md_of(&s.path("t/sparse")).blocks() * 512 < 1 << 19, "holes are kept");
}

fn sample_layer(tag: &str, files: usize) -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("usr/").dir("usr/share/").symlink("lib", "usr/lib");
    for i in 0..files {
        let body = format!("{tag} file {i} ").repeat(i % 50 + 1);
        t.file(&format!("usr/share/{tag}-{i}"), body.as_bytes());
    }
    t.finish()
}

#[test]
fn layer_gzip_and_zstd_inputs() {
    let s = Scratch::new();
    let plain = sample_layer("c", 100);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Two gzip members, as some writers produce.
    gz.write_all(&plain[..4096]).unwrap();
    let mut gz2 = flate2::write::GzEncoder::new(gz.finish().unwrap(), flate2::Compression::fast());
    gz2.write_all(&plain[4096..]).unwrap();
    let gz = gz2.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    assert_eq!(Compression::detect(&gz), Compression::Gzip);
    assert_eq!(Compression::detect(&zst), Compression::Zstd);
    assert_eq!(Compression::detect(&plain), Compression::None);
    let mut back = Vec::new();
    decompress(&zst[..]).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, plain);

    let want = {
        let st = apply(&plain[..], &s.path("plain"), &opts(WhiteoutMode::Apply)).unwrap();
        assert_eq!(st.tar_bytes, plain.len() as u64);
        tree(&s.path("plain"), "")
    };
    for (name, data) in [("gz", &gz), ("zst", &zst)] {
        let st = apply(&data[..], &s.path(name), &opts(WhiteoutMode::Apply)).unwrap();
        assert_eq!(st.tar_bytes, plain.len() as u64, "{name}");
        assert_eq!(st.files, 100);
        assert_same_tree(&tree(&s.path(name), ""), &want);
    }
    let xz = [0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0];
    assert!(apply(&xz[..], &s.path("xz"), &opts(WhiteoutMode::Apply)).is_err());
}

#[test]
fn layer_independent_layers_apply_in_parallel() {
    let s = Scratch::new();
    let layers: Vec<Vec<u8>> = (0..4).map(|i| sample_layer(&format!("p{i}"), 300)).collect();
    std::thread::scope(|scope| {
        for (i, layer) in layers.iter().enumerate() {
            let target = s.path(&format!("l{i}"));
            scope.spawn(move || {
                let gz = {
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(layer).unwrap();
                    e.finish().unwrap()
                };
                apply(&gz[..], &target, &opts(WhiteoutMode::Overlay)).unwrap()
            });
        }
    });
    for i in 0..4 {
        let n = std::fs::read_dir(s.path(&format!("l{i}/usr/share"))).unwrap().count();
        assert_eq!(n, 300);
    }
}

/// A layer with one 300 MiB file generated on the fly: mostly zeros, 4 KiB of data every
/// 16 MiB and a dense 2 MiB run.
struct BigLayer {
    pos: u64,
    header: [u8; 512],
}

const BIG: u64 = 300 << 20;
const MIB: u64 = 1 << 20;

impl BigLayer {
    fn new() -> Self {
        let h = Tar::header(&Raw { path: b"big", ..Raw::default() }, BIG);
        BigLayer { pos: 0, header: *h.as_bytes() }
    }
    fn total() -> u64 {
        512 + BIG + 1024
    }
    /// The file's byte at `o`.
    fn byte(o: u64) -> u8 {
        let dense = (100 * MIB..102 * MIB).contains(&o);
        if dense || ((o / MIB).is_multiple_of(16) && o % MIB < 4096) {
            (o % 251 + 1) as u8
        } else {
            0
        }
    }
}

impl Read for BigLayer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(Self::total() - self.pos) as usize;
        let (start, end) = (self.pos, self.pos + n as u64);
        let buf = &mut buf[..n];
        buf.fill(0);
        for p in start..end.min(512) {
            buf[(p - start) as usize] = self.header[p as usize];
        }
        // Only the ranges with data need filling: everything else is zero.
        let mut ranges: Vec<(u64, u64)> = (0..300).step_by(16).map(|m| (m * MIB, m * MIB + 4096)).collect();
        ranges.push((100 * MIB, 102 * MIB));
        for (a, b) in ranges {
            let (a, b) = ((a + 512).max(start), (b + 512).min(end));
            for p in a..b {
                buf[(p - start) as usize] = Self::byte(p - 512);
            }
        }
        self.pos = end;
        Ok(n)
    }
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn layer_300mb_file_streams_without_buffering() {
    const NAME: &str = "layer::tests::apply::layer_300mb_file_streams_without_buffering";
    const CHILD: &str = "BERTH_LAYER_BIG_CHILD";
    if std::env::var_os(CHILD).is_none() {
        // Run alone in a child process, so that its peak memory is its own.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    }
    let s = Scratch::new();
    let stats = apply(BigLayer::new(), &s.path("t"), &opts(WhiteoutMode::Apply)).unwrap();
    let peak_mib = vm_hwm_kib() / 1024;
    eprintln!("peak RSS {peak_mib} MiB after streaming a 300 MiB file");
    assert!(peak_mib < 32, "peak RSS {peak_mib} MiB while streaming 300 MiB");
    assert_eq!(stats.content_bytes, BIG);
    let f = s.path("t/big");
    let md = md_of(&f);
    assert_eq!(md.len(), BIG);
    assert!(md.blocks() * 512 < 16 * MIB, "zero blocks are holes: {} bytes allocated", md.blocks() * 512);
    let file = std::fs::File::open(&f).unwrap();
    use std::os::unix::fs::FileExt;
    for off in [0, 4000, 4096, 16 * MIB, 16 * MIB + 10, 100 * MIB + 12345, 102 * MIB - 1, BIG - 1] {
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, off).unwrap();
        assert_eq!(b[0], BigLayer::byte(off), "byte at {off}");
    }
}
