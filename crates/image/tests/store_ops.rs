//! The image store facade end to end: import with --change, list/inspect/history, save/load
//! round trips (Docker archive and OCI layout), legacy `docker save` archives, rmi, layer
//! sharing, and the saved layout checked by skopeo/umoci when installed.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use berth_image::store::{DeleteResponse, ImageStore, ListFilters};
use berth_image::{Digest, Error, Reference};
use serde_json::json;

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap()
}

/// A layer tarball of a small tree.
fn rootfs_tar(marker: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/hostname"), "berth\n").unwrap();
    std::fs::write(dir.path().join("marker"), marker).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    b.append_dir_all(".", dir.path()).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn open() -> (tempfile::TempDir, ImageStore) {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(&d.path().join("root")).unwrap();
    (d, s)
}

fn import(s: &ImageStore, data: &[u8], tag: &str) -> Digest {
    let changes = vec![r#"CMD ["sh"]"#.to_owned(), "ENV A=1".to_owned()];
    s.import(data, &changes, Some("first import"), Some(&r(tag)))
        .unwrap()
}

#[test]
fn import_list_inspect_history() {
    let (_d, s) = open();
    let id = import(&s, &gzip(&rootfs_tar("one")), "myimg:1");

    let list = s.list(&ListFilters::default()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id.to_string());
    assert_eq!(list[0].repo_tags, ["myimg:1"]);
    assert!(list[0].size > 0);
    assert!(list[0].created > 1_600_000_000);

    let v = s.inspect("myimg:1").unwrap();
    assert_eq!(v["Id"], json!(id.to_string()));
    assert_eq!(v["RepoTags"], json!(["myimg:1"]));
    assert_eq!(v["Config"]["Cmd"], json!(["sh"]));
    assert_eq!(v["Config"]["Env"], json!(["A=1"]));
    assert_eq!(v["Comment"], json!("first import"));
    assert_eq!(v["RootFS"]["Type"], json!("layers"));
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(v["Os"], json!("linux"));
    // By ID prefix too.
    assert_eq!(s.inspect(&id.hex()[..12]).unwrap()["Id"], v["Id"]);

    let h = s.history("myimg:1").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, id.to_string());
    assert_eq!(h[0].created_by, "import");
    assert_eq!(h[0].comment, "first import");
    assert_eq!(h[0].tags, ["myimg:1"]);

    // The layer is unpacked in the snapshotter.
    let layer = &s.meta().image(&id).unwrap().chain_ids[0];
    assert!(s.snapshotter().has_layer(&layer.to_string()));

    // Filters.
    let f = |fl: ListFilters| s.list(&fl).unwrap().len();
    assert_eq!(
        f(ListFilters {
            reference: vec!["my*".into()],
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        f(ListFilters {
            reference: vec!["other".into()],
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        f(ListFilters {
            dangling: Some(true),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        f(ListFilters {
            label: vec!["x".into()],
            ..Default::default()
        }),
        0
    );

    assert!(matches!(
        s.import(&b"x"[..], &["RUN x".into()], None, None),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn same_layer_is_stored_once() {
    let (_d, s) = open();
    let layer = rootfs_tar("shared");
    let a = import(&s, &layer, "a:1");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let b = s
        .import(&layer[..], &[], Some("again"), Some(&r("b:1")))
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(s.meta().layers().unwrap().len(), 1);
    assert_eq!(s.meta().layers().unwrap()[0].refcount, 2);
    assert_eq!(s.snapshotter().layers().unwrap().len(), 1);
    // config+manifest per image, one layer blob.
    assert_eq!(s.content().list().unwrap().len(), 5);
    assert!(berth_image::gc::check(s.content(), s.meta())
        .unwrap()
        .is_empty());
}

#[test]
fn rmi_untags_then_deletes_and_respects_containers() {
    let (_d, s) = open();
    let id = import(&s, &rootfs_tar("rmi"), "one:1");
    s.tag("one:1", &r("two")).unwrap();
    assert_eq!(
        s.inspect("two:latest").unwrap()["Id"],
        json!(id.to_string())
    );

    let err = s.remove(&id.to_string(), false).unwrap_err();
    assert!(err.to_string().contains("must be forced"), "{err}");

    assert_eq!(
        s.remove("two", false).unwrap(),
        [DeleteResponse::Untagged("two:latest".into())]
    );

    s.meta().add_container("c0ffee0000000000", &id).unwrap();
    let err = s.remove("one:1", false).unwrap_err();
    assert!(
        err.to_string()
            .contains("container c0ffee000000 is using its referenced image"),
        "{err}"
    );
    s.meta().remove_container("c0ffee0000000000").unwrap();

    let out = s.remove("one:1", false).unwrap();
    assert_eq!(out[0], DeleteResponse::Untagged("one:1".into()));
    assert_eq!(out[1], DeleteResponse::Deleted(id.to_string()));
    assert_eq!(out[1].to_string(), format!("Deleted: {id}"));
    assert!(s.list(&ListFilters::default()).unwrap().is_empty());
    assert!(s.meta().layers().unwrap().is_empty());
    assert!(s.content().list().unwrap().is_empty());
    assert!(matches!(s.remove("one:1", false), Err(Error::NotFound(_))));
}

/// Extracts a tar into `dir` with the system tar (so the checked layout is what the bytes say).
fn untar(data: &[u8], dir: &Path) {
    tar::Archive::new(data).unpack(dir).unwrap();
}

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn save_load_round_trip_and_oci_layout() {
    let (_d, s) = open();
    let id = import(&s, &gzip(&rootfs_tar("save")), "saved:v1");
    s.tag("saved:v1", &r("example.com/team/saved:v2")).unwrap();
    let mut archive = Vec::new();
    s.save(
        &["saved:v1".into(), "example.com/team/saved:v2".into()],
        &mut archive,
    )
    .unwrap();

    let (_d2, s2) = open();
    let loaded = s2.load(&archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, id);
    assert_eq!(
        loaded[0].tags,
        [r("saved:v1"), r("example.com/team/saved:v2")]
    );
    assert_eq!(
        s2.inspect("saved:v1").unwrap(),
        s.inspect("saved:v1").unwrap()
    );

    // The archive is also a plain OCI layout: load it without manifest.json.
    let dir = tempfile::tempdir().unwrap();
    untar(&archive, dir.path());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest[0]["Config"],
        json!(format!("blobs/sha256/{}", id.hex()))
    );
    assert_eq!(
        manifest[0]["RepoTags"],
        json!(["saved:v1", "example.com/team/saved:v2"])
    );
    let mut b = tar::Builder::new(Vec::new());
    b.append_path_with_name(dir.path().join("index.json"), "index.json")
        .unwrap();
    b.append_path_with_name(dir.path().join("oci-layout"), "oci-layout")
        .unwrap();
    b.append_dir_all("blobs", dir.path().join("blobs")).unwrap();
    let oci = b.into_inner().unwrap();
    let (_d3, s3) = open();
    let loaded = s3.load(&oci[..]).unwrap();
    assert_eq!(loaded[0].id, id);
    assert_eq!(
        loaded[0].tags,
        [r("saved:v1"), r("example.com/team/saved:v2")]
    );

    // A corrupted blob is refused.
    let layer = s.meta().image(&id).unwrap().blobs[0].clone();
    let p = dir.path().join("blobs/sha256").join(layer.hex());
    let mut data = std::fs::read(&p).unwrap();
    let n = data.len();
    data[n / 2] ^= 0xff;
    std::fs::write(&p, data).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir.path()).unwrap();
    let (_d4, s4) = open();
    assert!(s4.load(&b.into_inner().unwrap()[..]).is_err());
    assert!(s4.list(&ListFilters::default()).unwrap().is_empty());

    // External validators.
    let dir = tempfile::tempdir().unwrap();
    untar(&archive, dir.path());
    let layout = dir.path().to_str().unwrap();
    if tool("skopeo") {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", &format!("oci:{layout}:v1")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("skopeo")
            .args(["inspect", "--config", &format!("oci:{layout}:v1")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("skopeo not installed: skipping");
    }
    if tool("umoci") {
        let out = Command::new("umoci")
            .args(["ls", "--layout", layout])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umoci: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("v1"));
    } else {
        eprintln!("umoci not installed: skipping");
    }
}

/// Docker's legacy `docker save` layout, by hand: `<id>/layer.tar`, `<config hex>.json`,
/// `manifest.json`, `repositories`, a layer directory symlinked to another.
#[test]
fn load_legacy_docker_archive() {
    let l1 = rootfs_tar("base");
    let l2 = {
        let mut b = tar::Builder::new(Vec::new());
        let data = b"added\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "added.txt", &data[..]).unwrap();
        b.into_inner().unwrap()
    };
    let (d1, d2) = (Digest::of(&l1), Digest::of(&l2));
    let config = |cmd: &str, diffs: &[&Digest]| {
        serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": {"Cmd": [cmd]},
            "rootfs": {"type": "layers", "diff_ids": diffs},
            "history": [{"created_by": "ADD base"}, {"created_by": "ADD added"}],
        }))
        .unwrap()
    };
    let c1 = config("one", &[&d1, &d2]);
    let c2 = config("two", &[&d1]);
    let (id1, id2) = (Digest::of(&c1), Digest::of(&c2));
    let manifest = json!([
        {"Config": format!("{}.json", id1.hex()), "RepoTags": ["legacy:1"],
         "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"]},
        {"Config": format!("{}.json", id2.hex()), "RepoTags": null, "Layers": ["cccc/layer.tar"]},
    ]);
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    add(&mut b, "aaaa/layer.tar", &l1);
    add(&mut b, "bbbb/layer.tar", &l2);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "cccc/layer.tar", "../aaaa/layer.tar")
        .unwrap();
    add(&mut b, &format!("{}.json", id1.hex()), &c1);
    add(&mut b, &format!("{}.json", id2.hex()), &c2);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    add(&mut b, "repositories", br#"{"legacy":{"1":"bbbb"}}"#);
    let archive = b.into_inner().unwrap();

    let (_d, s) = open();
    let loaded = s.load(&archive[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(
        (loaded[0].id.clone(), loaded[0].tags.clone()),
        (id1.clone(), vec![r("legacy:1")])
    );
    assert_eq!(
        (loaded[1].id.clone(), loaded[1].tags.clone()),
        (id2.clone(), vec![])
    );
    assert_eq!(
        s.meta().layers().unwrap().len(),
        2,
        "the base layer is shared"
    );
    let v = s.inspect("legacy:1").unwrap();
    assert_eq!(v["Config"]["Cmd"], json!(["one"]));
    assert_eq!(v["Created"], json!("2024-01-02T03:04:05Z"));
    let h = s.history("legacy:1").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].created_by, "ADD added");
    assert!(h[0].size > 0);
    let dangling = s
        .list(&ListFilters {
            dangling: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dangling.len(), 1);
    assert_eq!(dangling[0].id, id2.to_string());

    // A layer escaping the archive through a symlink is refused.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "x/layer.tar", "../../../etc/passwd")
        .unwrap();
    assert!(s.load(&b.into_inner().unwrap()[..]).is_err());

    // Saved again, it loads elsewhere with the same IDs.
    let mut out = Vec::new();
    s.save(&["legacy:1".into(), id2.to_string()], &mut out)
        .unwrap();
    let (_d2, s2) = open();
    let ids: Vec<Digest> = s2
        .load(&out[..])
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, [id1, id2]);
}

#[test]
fn wrong_diff_id_is_refused_and_zstd_imports() {
    let l1 = rootfs_tar("diff");
    let bad = Digest::of(b"not the layer");
    let cfg = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [bad]},
    }))
    .unwrap();
    let id = Digest::of(&cfg);
    let manifest = json!([{"Config": format!("{}.json", id.hex()), "RepoTags": ["bad:1"], "Layers": ["l/layer.tar"]}]);
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("l/layer.tar".to_owned(), l1.clone()),
        (format!("{}.json", id.hex()), cfg),
        (
            "manifest.json".to_owned(),
            serde_json::to_vec(&manifest).unwrap(),
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    let (_d, s) = open();
    let err = s.load(&b.into_inner().unwrap()[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(s.meta().images().unwrap().is_empty());
    assert!(s.meta().layers().unwrap().is_empty());
    assert!(s.snapshotter().layers().unwrap().is_empty());

    let z = zstd::encode_all(&l1[..], 1).unwrap();
    let id = s.import(&z[..], &[], None, None).unwrap();
    let v = s.inspect(&id.to_string()).unwrap();
    assert_eq!(v["RootFS"]["Layers"], json!([Digest::of(&l1).to_string()]));
    assert_eq!(v["RepoTags"], json!([]));
    let rec = s.meta().image(&id).unwrap();
    assert_eq!(rec.blobs, [Digest::of(&z)]);
}
