//! Container snapshot operations of the image store: create_rw / changes / commit / export,
//! rmi protection, prune and df.

use std::io::{Read, Write};
use std::path::Path;

use berth_image::manifest;
use berth_image::store::{CommitOptions, ImageStore};
use berth_image::{Digest, Reference};

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap()
}

fn rootfs_tar(marker: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("etc/hostname"), "berth\n").unwrap();
    std::fs::write(dir.path().join("data/keep"), "keep").unwrap();
    std::fs::write(dir.path().join("gone"), "bye").unwrap();
    std::fs::write(dir.path().join("marker"), marker).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    b.append_dir_all(".", dir.path()).unwrap();
    b.into_inner().unwrap()
}

fn open() -> (tempfile::TempDir, ImageStore) {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(&d.path().join("root")).unwrap();
    (d, s)
}

fn import(s: &ImageStore, marker: &str, tag: Option<&str>) -> Digest {
    let changes = vec![r#"CMD ["sh"]"#.to_owned()];
    s.import(
        &rootfs_tar(marker)[..],
        &changes,
        Some("imported"),
        tag.map(r).as_ref(),
    )
    .unwrap()
}

/// Mounts container `key` on a temp dir and runs `f` on the mount point.
fn with_mount(s: &ImageStore, key: &str, f: impl FnOnce(&Path)) {
    let t = tempfile::tempdir().unwrap();
    let g = s.snapshotter().mount(key, t.path()).unwrap();
    f(t.path());
    g.unmount().unwrap();
}

fn tar_names(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            p.trim_start_matches("./").trim_end_matches('/').to_owned()
        })
        .collect()
}

#[test]
fn create_change_commit_export() {
    let (_d, s) = open();
    let base = import(&s, "one", Some("base:latest"));
    s.create_rw("c1", "base:latest").unwrap();
    assert_eq!(s.container_image("c1").unwrap(), base);
    with_mount(&s, "c1", |m| {
        assert_eq!(std::fs::read_to_string(m.join("marker")).unwrap(), "one");
        std::fs::write(m.join("new.txt"), "hello").unwrap();
        std::fs::write(m.join("etc/hostname"), "changed\n").unwrap();
        std::fs::remove_file(m.join("gone")).unwrap();
    });

    let changes: Vec<String> = s
        .changes("c1")
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    for want in ["C /etc", "C /etc/hostname", "D /gone", "A /new.txt"] {
        assert!(
            changes.contains(&want.to_owned()),
            "{want} missing from {changes:?}"
        );
    }
    assert!(!changes.iter().any(|c| c.contains("/data")), "{changes:?}");

    // rmi of the base is refused while the container uses it.
    assert!(s.remove("base:latest", false).is_err());

    let opts = CommitOptions {
        changes: vec!["ENV COMMITTED=1".to_owned()],
        message: Some("my commit".into()),
        author: Some("Jane <jane@example.com>".into()),
        tag: Some(r("committed")),
        created_by: Some("sh -c echo hello > /new.txt".into()),
    };
    let id = s.commit_with("c1", &opts).unwrap();
    assert_eq!(s.meta().resolve("committed:latest").unwrap(), id);
    let rec = s.meta().image(&id).unwrap();
    assert_eq!(rec.chain_ids.len(), 2);
    assert_eq!(rec.parent.as_ref(), Some(&base));
    for c in &rec.chain_ids {
        assert!(s.snapshotter().has_layer(&c.to_string()));
    }
    for b in rec.referenced_blobs() {
        assert!(s.content().exists(b), "blob {b}");
    }
    let inspect = s.inspect(&id.to_string()).unwrap();
    assert_eq!(
        inspect["RootFS"]["Layers"].as_array().unwrap().len(),
        2,
        "{inspect}"
    );

    let config = manifest::read_config(s.content(), &id).unwrap();
    let last = config.history.last().unwrap();
    assert_eq!(last.author.as_deref(), Some("Jane <jane@example.com>"));
    assert_eq!(last.comment.as_deref(), Some("my commit"));
    assert_eq!(
        last.created_by.as_deref(),
        Some("sh -c echo hello > /new.txt"),
        "the container's command, as the engine passed it"
    );
    assert_eq!(config.author.as_deref(), Some("Jane <jane@example.com>"));
    let env = config.config.as_ref().unwrap().env.clone().unwrap();
    assert!(env.contains(&"COMMITTED=1".to_owned()), "{env:?}");
    let history = s.history(&id.to_string()).unwrap();
    assert_eq!(history.len(), 2);
    assert!(
        history.iter().any(|h| h.comment == "my commit"),
        "{history:?}"
    );

    // A container of the committed image sees the changes, the deleted file stays deleted.
    s.create_rw("c2", "committed").unwrap();
    with_mount(&s, "c2", |m| {
        assert_eq!(std::fs::read_to_string(m.join("new.txt")).unwrap(), "hello");
        assert_eq!(
            std::fs::read_to_string(m.join("etc/hostname")).unwrap(),
            "changed\n"
        );
        assert_eq!(
            std::fs::read_to_string(m.join("data/keep")).unwrap(),
            "keep"
        );
        assert!(!m.join("gone").exists());
    });
    assert!(s.changes("c2").unwrap().is_empty());

    // Export: the whole filesystem, without the deleted file.
    let mut out = Vec::new();
    s.export("c1", &mut out).unwrap();
    let names = tar_names(&out);
    for want in ["new.txt", "etc/hostname", "data/keep", "marker"] {
        assert!(
            names.contains(&want.to_owned()),
            "{want} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n == "gone" || n.contains(".wh.")),
        "{names:?}"
    );
    let mut a = tar::Archive::new(&out[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with("etc/hostname") {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            assert_eq!(s, "changed\n");
        }
    }

    // Removing the containers lets rmi through; the committed image still needs its base
    // layer.
    s.remove_rw("c1").unwrap();
    s.remove_rw("c2").unwrap();
    s.remove_rw("c2").unwrap();
    assert!(s.meta().containers().unwrap().is_empty());
    s.remove("committed:latest", false).unwrap();
    s.remove("base:latest", false).unwrap();
    assert!(s.meta().images().unwrap().is_empty());
    assert!(berth_image::gc::check(s.content(), s.meta())
        .unwrap()
        .is_empty());
}

#[test]
fn create_rw_of_missing_image_leaves_nothing() {
    let (_d, s) = open();
    assert!(s.create_rw("c", "nope:latest").is_err());
    assert!(s.meta().containers().unwrap().is_empty());
    assert!(s.snapshotter().snapshots().unwrap().is_empty());
}

#[test]
fn prune_and_df() {
    let (_d, s) = open();
    let tagged = import(&s, "tagged", Some("keep:1"));
    let dangling = import(&s, "dangling", None);
    let used = import(&s, "used", None);
    s.create_rw("c", &used.to_string()).unwrap();
    with_mount(&s, "c", |m| {
        let mut f = std::fs::File::create(m.join("blob")).unwrap();
        f.write_all(&[7u8; 50_000]).unwrap();
    });

    let size = |id: &Digest| s.meta().image(id).unwrap().size;
    let du = s.df().unwrap();
    assert_eq!(du.images, 3);
    assert_eq!(du.active_images, 1);
    assert_eq!(
        du.images_size,
        size(&tagged) + size(&dangling) + size(&used)
    );
    assert_eq!(du.shared_size, 0);
    assert_eq!(du.reclaimable, size(&tagged) + size(&dangling));
    assert_eq!(du.containers.len(), 1);
    assert!(du.containers_size >= 50_000, "{du:?}");
    assert_eq!(
        du.containers_size,
        du.containers.iter().map(|c| c.1).sum::<u64>()
    );

    // Dangling only: the tagged one and the one in use stay.
    let dangling_size = size(&dangling);
    let rep = s.prune(false).unwrap();
    let deleted: Vec<String> = rep.deleted.iter().map(|d| d.to_string()).collect();
    assert!(
        deleted.contains(&format!("Deleted: {dangling}")),
        "{deleted:?}"
    );
    assert!(!deleted
        .iter()
        .any(|d| d.contains(&tagged.to_string()) || d.contains(&used.to_string())));
    assert_eq!(rep.space_reclaimed, dangling_size);
    assert!(s.meta().get_image(&dangling).unwrap().is_none());
    assert!(s.meta().get_image(&tagged).unwrap().is_some());
    assert!(s.meta().get_image(&used).unwrap().is_some());
    assert!(s.prune(false).unwrap().deleted.is_empty());

    // All: every image no container uses.
    let rep = s.prune(true).unwrap();
    let deleted: Vec<String> = rep.deleted.iter().map(|d| d.to_string()).collect();
    assert!(
        deleted.contains(&"Untagged: keep:1".to_owned()),
        "{deleted:?}"
    );
    assert!(s.meta().get_image(&tagged).unwrap().is_none());
    assert!(s.meta().get_image(&used).unwrap().is_some());
    let du = s.df().unwrap();
    assert_eq!((du.images, du.reclaimable), (1, 0));
    assert!(berth_image::gc::check(s.content(), s.meta())
        .unwrap()
        .is_empty());
}

#[test]
fn commit_without_changes_and_dangling_parent_chain_prunes() {
    let (_d, s) = open();
    import(&s, "base", Some("b:1"));
    s.create_rw("c", "b:1").unwrap();
    let child = s.commit("c", &[], None, None, None).unwrap();
    // Without the container's command, created_by is the image's.
    let config = manifest::read_config(s.content(), &child).unwrap();
    assert_eq!(
        config.history.last().unwrap().created_by.as_deref(),
        Some("sh")
    );
    s.remove_rw("c").unwrap();
    // The child is dangling; the base is its tagged parent and stays.
    let rep = s.prune(false).unwrap();
    assert!(rep
        .deleted
        .contains(&berth_image::store::DeleteResponse::Deleted(
            child.to_string()
        )));
    assert_eq!(s.meta().images().unwrap().len(), 1);
}
