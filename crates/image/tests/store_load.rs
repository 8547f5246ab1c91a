//! `ImageStore::load` of archives with layers large enough to be streamed into the content
//! store and unpacked ahead (over 1 MiB): any entry order, links, gzip, both snapshot drivers,
//! concurrent loads; and failures (wrong diff id, corrupt blob, truncated archive, a hostile
//! layer) that must leave nothing behind.

use std::io::{Read, Write};
use std::path::Path;

use berth_image::snapshot::Driver;
use berth_image::store::{ImageStore, LoadedImage};
use berth_image::{gc, Digest, Error, Reference};
use serde_json::json;

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap()
}

/// Incompressible bytes (xorshift), different for each seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    h
}

/// A layer: regular files and symlinks (`target` given).
fn layer(entries: &[(&str, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, link) in entries {
        match link {
            Some(t) => {
                let mut h = header(tar::EntryType::Symlink, 0);
                b.append_link(&mut h, path, t).unwrap();
            }
            None => {
                let mut h = header(tar::EntryType::Regular, data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn config(cmd: &str, diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// An archive of `(path, content, link target)` entries, in the order given.
fn archive(entries: &[(String, Vec<u8>, Option<String>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, link) in entries {
        match link {
            Some(t) => {
                let mut h = header(tar::EntryType::Symlink, 0);
                b.append_link(&mut h, path, t).unwrap();
            }
            None => {
                let mut h = header(tar::EntryType::Regular, data.len() as u64);
                b.append_data(&mut h, path, &data[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn file(path: &str, data: Vec<u8>) -> (String, Vec<u8>, Option<String>) {
    (path.to_owned(), data, None)
}

fn open(driver: Option<Driver>) -> (tempfile::TempDir, ImageStore) {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open_with(&d.path().join("root"), driver).unwrap();
    (d, s)
}

fn empty(p: &Path) -> bool {
    std::fs::read_dir(p).map_or(true, |mut d| d.next().is_none())
}

/// No staging, ingest or scratch leftovers, and a consistent store.
fn assert_clean(s: &ImageStore) {
    assert!(empty(&s.root().join("content/ingest")), "ingest leftovers");
    assert!(
        empty(&s.snapshotter().root().join("staging")),
        "staging leftovers"
    );
    assert!(!s.root().join("tmp").exists(), "scratch leftovers");
    assert!(gc::check(s.content(), s.meta()).unwrap().is_empty());
}

/// Nothing at all: what a failed load must leave in a fresh store.
fn assert_nothing(s: &ImageStore) {
    assert_clean(s);
    assert!(s.meta().images().unwrap().is_empty());
    assert!(s.meta().layers().unwrap().is_empty());
    assert!(s.snapshotter().layers().unwrap().is_empty());
    assert!(s.content().list().unwrap().is_empty(), "blobs left behind");
    assert!(s.meta().leases().unwrap().is_empty());
}

/// Reads `files` from a container of `image`, mounted.
fn read_in(s: &ImageStore, image: &str, files: &[&str]) -> Vec<Vec<u8>> {
    let key = format!("read-{}", image.replace([':', '/'], "-"));
    s.create_rw(&key, image).unwrap();
    let target = tempfile::tempdir().unwrap();
    let guard = s.snapshotter().mount(&key, target.path()).unwrap();
    let out = files
        .iter()
        .map(|f| std::fs::read(target.path().join(f)).unwrap())
        .collect();
    drop(guard);
    s.remove_rw(&key).unwrap();
    out
}

struct Legacy {
    archive: Vec<u8>,
    big1: Vec<u8>,
    big2: Vec<u8>,
    ids: [Digest; 2],
}

/// A legacy `docker save` archive, manifest.json first (before the blobs it names): image one
/// has a 3 MiB plain layer, a 2 MiB gzip layer and a small one; image two is the first layer
/// again, through a symlinked `layer.tar`.
fn legacy() -> Legacy {
    let big1 = noise(1, 3 << 20);
    let big2 = noise(2, 2 << 20);
    let l1 = layer(&[("etc/hostname", b"berth\n", None), ("big1", &big1, None)]);
    let l2 = layer(&[("big2", &big2, None), ("link", b"", Some("big2"))]);
    let l3 = layer(&[("small", b"small\n", None)]);
    let diffs = [Digest::of(&l1), Digest::of(&l2), Digest::of(&l3)];
    let c1 = config("one", &diffs);
    let c2 = config("two", &diffs[..1]);
    let ids = [Digest::of(&c1), Digest::of(&c2)];
    let manifest = json!([
        {"Config": format!("{}.json", ids[0].hex()), "RepoTags": ["big:1"],
         "Layers": ["aaaa/layer.tar", "bbbb/layer.tar", "cccc/layer.tar"]},
        {"Config": format!("{}.json", ids[1].hex()), "RepoTags": ["big:2"],
         "Layers": ["dddd/layer.tar"]},
    ]);
    let archive = archive(&[
        file("manifest.json", serde_json::to_vec(&manifest).unwrap()),
        file(&format!("{}.json", ids[0].hex()), c1),
        file("aaaa/layer.tar", l1),
        file("bbbb/layer.tar", gzip(&l2)),
        file("cccc/layer.tar", l3),
        (
            "dddd/layer.tar".into(),
            Vec::new(),
            Some("../aaaa/layer.tar".into()),
        ),
        file(&format!("{}.json", ids[1].hex()), c2),
    ]);
    Legacy {
        archive,
        big1,
        big2,
        ids,
    }
}

fn check_legacy(s: &ImageStore, loaded: &[LoadedImage], l: &Legacy) {
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].id, l.ids[0]);
    assert_eq!(loaded[0].tags, [r("big:1")]);
    assert_eq!(loaded[1].id, l.ids[1]);
    assert_eq!(
        s.meta().layers().unwrap().len(),
        3,
        "the base layer is shared"
    );
    let got = read_in(
        s,
        "big:1",
        &["big1", "big2", "link", "small", "etc/hostname"],
    );
    assert!(got[0] == l.big1, "big1 differs");
    assert!(got[1] == l.big2 && got[2] == l.big2, "big2 differs");
    assert_eq!(got[3], b"small\n");
    assert_eq!(got[4], b"berth\n");
    let got = read_in(s, "big:2", &["big1"]);
    assert!(got[0] == l.big1);
    let v = s.inspect("big:1").unwrap();
    assert_eq!(v["Config"]["Cmd"], json!(["one"]));
    assert_clean(s);
    assert!(s.meta().leases().unwrap().is_empty());
}

fn load_both_formats(driver: Option<Driver>) {
    let l = legacy();
    let (_d, s) = open(driver);
    let loaded = s.load(&l.archive[..]).unwrap();
    check_legacy(&s, &loaded, &l);
    // Loading it again changes nothing.
    assert_eq!(s.load(&l.archive[..]).unwrap(), loaded);
    assert_eq!(s.meta().layers().unwrap().len(), 3);
    assert_clean(&s);

    // Saved (Docker 25+: blobs/sha256/<hex>, blobs first) and loaded elsewhere.
    let mut saved = Vec::new();
    s.save(&["big:1".into(), "big:2".into()], &mut saved)
        .unwrap();
    let (_d2, s2) = open(driver);
    let loaded2 = s2.load(&saved[..]).unwrap();
    check_legacy(&s2, &loaded2, &l);
}

#[test]
fn big_layers_load_with_overlay() {
    load_both_formats(None);
}

#[test]
fn big_layers_load_with_copy_driver() {
    load_both_formats(Some(Driver::Copy));
}

#[test]
fn concurrent_loads_into_one_store() {
    let l = legacy();
    let (_d, s) = open(None);
    let mut saved = Vec::new();
    {
        let (_d2, s2) = open(None);
        s2.load(&l.archive[..]).unwrap();
        s2.save(&["big:1".into()], &mut saved).unwrap();
    }
    std::thread::scope(|t| {
        let a = t.spawn(|| s.load(&l.archive[..]).unwrap());
        let b = t.spawn(|| s.load(&saved[..]).unwrap());
        a.join().unwrap();
        b.join().unwrap();
    });
    assert_eq!(s.meta().images().unwrap().len(), 2);
    assert_eq!(s.meta().layers().unwrap().len(), 3);
    assert_clean(&s);
}

#[test]
fn big_layer_with_wrong_diff_id_leaves_nothing() {
    let big = layer(&[("big", &noise(3, 2 << 20), None)]);
    let cfg = config("x", &[Digest::of(b"not the layer")]);
    let id = Digest::of(&cfg);
    let manifest = json!([{"Config": format!("{}.json", id.hex()), "RepoTags": ["bad:1"], "Layers": ["l/layer.tar"]}]);
    let ar = archive(&[
        file("l/layer.tar", big),
        file(&format!("{}.json", id.hex()), cfg),
        file("manifest.json", serde_json::to_vec(&manifest).unwrap()),
    ]);
    let (_d, s) = open(None);
    let err = s.load(&ar[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_nothing(&s);
}

/// A saved archive of one image with a 3 MiB layer.
fn saved_big() -> Vec<u8> {
    let l = legacy();
    let (_d, s) = open(None);
    s.load(&l.archive[..]).unwrap();
    let mut saved = Vec::new();
    s.save(&["big:2".into()], &mut saved).unwrap();
    saved
}

#[test]
fn corrupt_big_blob_leaves_nothing() {
    let mut saved = saved_big();
    // Flip a byte in the middle of the big layer's blob (the archive is mostly that blob).
    let n = saved.len();
    saved[n / 2] ^= 0xff;
    let (_d, s) = open(None);
    let err = s.load(&saved[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_nothing(&s);
}

#[test]
fn truncated_archive_leaves_nothing() {
    let saved = saved_big();
    for cut in [saved.len() / 3, saved.len() / 2, saved.len() * 2 / 3 + 7] {
        let (_d, s) = open(None);
        assert!(s.load(&saved[..cut]).is_err(), "cut at {cut}");
        assert_nothing(&s);
    }
    // A reader that fails mid-way.
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.0.len()).min(64 << 10);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let (_d, s) = open(None);
    assert!(s.load(Failing(&saved[..saved.len() / 2])).is_err());
    assert_nothing(&s);
}

#[test]
fn hostile_big_layer_leaves_nothing() {
    let outside = tempfile::tempdir().unwrap();
    let escape = outside.path().join("escaped");
    // A big file first (so the layer streams and unpacks ahead), then an entry climbing out.
    let mut b = tar::Builder::new(Vec::new());
    let big = noise(4, 2 << 20);
    let mut h = header(tar::EntryType::Regular, big.len() as u64);
    b.append_data(&mut h, "big", &big[..]).unwrap();
    let evil = format!("../../../../../../../..{}", escape.display());
    let mut h = header(tar::EntryType::Regular, 4);
    h.as_gnu_mut().unwrap().name[..evil.len()].copy_from_slice(evil.as_bytes());
    h.set_cksum();
    b.append(&h, &b"evil"[..]).unwrap();
    let bad = b.into_inner().unwrap();
    let cfg = config("x", &[Digest::of(&bad)]);
    let id = Digest::of(&cfg);
    let manifest = json!([{"Config": format!("{}.json", id.hex()), "RepoTags": ["evil:1"], "Layers": ["l/layer.tar"]}]);
    let ar = archive(&[
        file("l/layer.tar", bad),
        file(&format!("{}.json", id.hex()), cfg),
        file("manifest.json", serde_json::to_vec(&manifest).unwrap()),
    ]);
    let (_d, s) = open(None);
    let err = s.load(&ar[..]).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert!(!escape.exists());
    assert_nothing(&s);
}
