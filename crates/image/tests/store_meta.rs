//! Metadata store behaviour through the public API: atomic image puts, tags, resolution by
//! name, ID and unique prefix, deletion rules, layer refcounts and leases.

use std::time::Duration;

use berth_image::manifest::chain_ids;
use berth_image::meta::{ImageRecord, LayerRecord, Meta};
use berth_image::{Digest, Error, Reference};

fn meta() -> (tempfile::TempDir, Meta) {
    let dir = tempfile::tempdir().unwrap();
    let m = Meta::open(dir.path().join("meta.redb")).unwrap();
    (dir, m)
}

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap()
}

/// Registers layers for `diffs` and returns an image record using them.
fn image(m: &Meta, config: &[u8], diffs: &[&[u8]]) -> ImageRecord {
    let diff_ids: Vec<Digest> = diffs.iter().map(|d| Digest::of(d)).collect();
    let chain_ids = chain_ids(&diff_ids);
    for (i, c) in chain_ids.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| chain_ids[p].clone());
        let l = LayerRecord {
            chain_id: c.clone(),
            diff_id: diff_ids[i].clone(),
            parent,
            size: 1,
            refcount: 0,
            snapshot_key: c.hex().into(),
        };
        m.put_layer(&l).unwrap();
    }
    ImageRecord {
        diff_ids,
        chain_ids,
        ..ImageRecord::new(Digest::of(config))
    }
}

#[test]
fn put_image_tags_and_counts_layers_atomically() {
    let (_d, m) = meta();
    let img = image(&m, b"cfg1", &[b"a", b"b"]);
    let put = m
        .put_image(&img, &[r("busybox"), r("busybox:1.36")])
        .unwrap();
    assert!(put.created);
    assert_eq!(m.image(&img.id).unwrap(), img);
    assert_eq!(
        m.lookup_ref(&r("busybox:latest")).unwrap(),
        Some(img.id.clone())
    );
    assert_eq!(m.refs_of(&img.id).unwrap().len(), 2);
    assert!(m.layers().unwrap().iter().all(|l| l.refcount == 1));
    // Storing it again changes refs only.
    assert!(!m.put_image(&img, &[r("other:1")]).unwrap().created);
    assert!(m.layers().unwrap().iter().all(|l| l.refcount == 1));
    // A missing layer fails the whole put: no record, no tag.
    let mut bad = image(&m, b"cfg2", &[]);
    bad.chain_ids = vec![Digest::of(b"unregistered")];
    assert!(matches!(
        m.put_image(&bad, &[r("bad")]),
        Err(Error::NotFound(_))
    ));
    assert!(m.get_image(&bad.id).unwrap().is_none());
    assert!(m.lookup_ref(&r("bad")).unwrap().is_none());
    assert!(m
        .put_image(&img, &[Reference::parse_normalized_named("x").unwrap()])
        .is_err());
}

#[test]
fn tag_untag_and_retag() {
    let (_d, m) = meta();
    let a = image(&m, b"a", &[b"l"]);
    let b = image(&m, b"b", &[b"l"]);
    m.put_image(&a, &[r("app:1")]).unwrap();
    m.put_image(&b, &[]).unwrap();
    assert_eq!(m.tag(&r("app:1"), &b.id).unwrap(), Some(a.id.clone()));
    assert!(
        m.refs_of(&a.id).unwrap().is_empty(),
        "moved tag leaves the reverse index"
    );
    assert_eq!(m.untag(&r("app:1")).unwrap(), b.id);
    assert_eq!(
        m.untag(&r("app:1")).unwrap_err().to_string(),
        "No such image: app:1"
    );
    assert!(m.tag(&r("app:2"), &Digest::of(b"none")).is_err());
    let digested = r("app").with_digest(Digest::of(b"m"));
    let err = m.tag(&digested, &a.id).unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to create a tag with a digest reference"
    );
    m.put_image(&a, std::slice::from_ref(&digested)).unwrap();
    assert_eq!(m.resolve(&digested.to_string()).unwrap(), a.id);
}

#[test]
fn resolve_by_name_id_and_unique_prefix() {
    let (_d, m) = meta();
    // Two configs whose IDs share their first 4 hex digits (found in memory first).
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0u32..)
        .find_map(|i| {
            let d = Digest::of(&i.to_le_bytes());
            seen.insert(d.hex()[..4].to_owned(), i).map(|j| (j, i))
        })
        .unwrap();
    let ids: Vec<Digest> = [a, b, b + 1]
        .iter()
        .map(|i| {
            let img = image(&m, &i.to_le_bytes(), &[]);
            m.put_image(&img, &[]).unwrap();
            img.id
        })
        .collect();
    m.tag(&r("busybox"), &ids[0]).unwrap();
    assert_eq!(m.resolve("busybox").unwrap(), ids[0]);
    assert_eq!(
        m.resolve("docker.io/library/busybox:latest").unwrap(),
        ids[0]
    );
    assert_eq!(m.resolve(&ids[1].to_string()).unwrap(), ids[1]);
    assert_eq!(m.resolve(ids[1].hex()).unwrap(), ids[1]);
    let common = ids[0]
        .hex()
        .chars()
        .zip(ids[1].hex().chars())
        .take_while(|(x, y)| x == y)
        .count();
    let unique = &ids[1].hex()[..common + 1];
    assert_eq!(m.resolve(unique).unwrap(), ids[1]);
    assert_eq!(m.resolve(&format!("sha256:{unique}")).unwrap(), ids[1]);
    let shared = &ids[0].hex()[..common];
    assert_eq!(
        m.resolve(shared).unwrap_err().to_string(),
        format!("multiple IDs found with provided prefix: {shared}")
    );
    assert_eq!(
        m.resolve("nothere").unwrap_err().to_string(),
        "No such image: nothere:latest"
    );
    assert!(
        matches!(m.resolve(&ids[2].hex()[..3]), Err(Error::NotFound(_))),
        "3 hex digits is no ID prefix"
    );
    assert_eq!(m.resolve(&ids[2].hex()[..4]).unwrap(), ids[2]);
    assert_eq!(m.resolve("Bad").unwrap_err().http_status(), 400);
    let missing = Digest::of(b"missing");
    assert_eq!(
        m.resolve(missing.hex()).unwrap_err().to_string(),
        format!("No such image: {missing}")
    );
}

#[test]
fn delete_refuses_while_used_and_releases_layers() {
    let (_d, m) = meta();
    let base = image(&m, b"base", &[b"l1"]);
    let mut child = image(&m, b"child", &[b"l1", b"l2"]);
    child.parent = Some(base.id.clone());
    m.put_image(&base, &[r("base")]).unwrap();
    m.put_image(&child, &[r("child")]).unwrap();
    assert!(matches!(m.delete_image(&base.id), Err(Error::Conflict(_))));
    m.add_container("c0ffee", &child.id).unwrap();
    let err = m.delete_image(&child.id).unwrap_err();
    assert!(
        err.to_string()
            .contains("image is being used by container c0ffee"),
        "{err}"
    );
    assert!(m.remove_container("c0ffee").unwrap());
    let del = m.delete_image(&child.id).unwrap();
    assert_eq!(del.untagged, vec![r("child")]);
    assert_eq!(del.released_layers, vec![child.chain_ids[1].clone()]);
    assert!(m.lookup_ref(&r("child")).unwrap().is_none());
    assert_eq!(m.layer(&child.chain_ids[0]).unwrap().unwrap().refcount, 1);
    assert!(matches!(
        m.remove_layer(&child.chain_ids[0]),
        Err(Error::Conflict(_))
    ));
    assert!(m.remove_layer(&child.chain_ids[1]).unwrap());
    m.delete_image(&base.id).unwrap();
    assert_eq!(m.layer_refcount_add(&base.chain_ids[0], 2).unwrap(), 2);
    assert_eq!(m.layer_refcount_add(&base.chain_ids[0], -5).unwrap(), 0);
}

#[test]
fn leases_end_with_the_process_or_expire() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let m = Meta::open(&path).unwrap();
    let process = m.create_lease(None).unwrap();
    let durable = m.create_lease(Some(Duration::from_secs(3600))).unwrap();
    m.lease_add(&process, &[Digest::of(b"x")], &[Digest::of(b"y")])
        .unwrap();
    let roots = m.gc_roots().unwrap();
    assert!(roots.blobs.contains(&Digest::of(b"x")) && roots.layers.contains(&Digest::of(b"y")));
    assert!(m.expire_leases().unwrap().is_empty());
    assert!(m.lease_add("lease-none", &[], &[]).is_err());
    drop(m);
    let m = Meta::open(&path).unwrap();
    let left: Vec<String> = m.leases().unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(left, vec![durable.clone()]);
    assert!(m.delete_lease(&durable).unwrap());
}
