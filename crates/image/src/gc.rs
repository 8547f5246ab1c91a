//! Mark-and-sweep garbage collection of blobs and layer snapshots, and a consistency check.
//!
//! Roots are what images, leases and referenced layers need (see [`Meta::gc_roots`]);
//! containers keep their image, and so its content, by making it undeletable.
//!
//! Concurrent operations stay safe by one of two rules:
//! - reference first: lease a digest or chain ID, then write it. GC lists blobs *before* it
//!   reads its roots, so a blob it sees was leased before that read;
//! - or hold [`ContentStore::hold_off_gc`] (GC runs under the matching write lock) across
//!   "commit, then reference" for digests not known in advance, and across "it exists, so
//!   lease or use it" when reusing content or layers already stored.

use std::collections::{HashMap, HashSet};

use crate::content::ContentStore;
use crate::digest::{ChainId, Digest};
use crate::meta::Meta;
use crate::Result;

/// What one collection freed.
#[derive(Debug, Default, PartialEq)]
pub struct GcReport {
    pub blobs: Vec<Digest>,
    /// Bytes of the blobs freed.
    pub blob_bytes: u64,
    pub layers: Vec<ChainId>,
    pub expired_leases: Vec<String>,
    /// Temp files of crashed or abandoned writes.
    pub ingest_leftovers: usize,
}

/// Frees every blob and layer nothing references. Layers are removed through `remove_layer`
/// (the snapshotter owns their directories; it must treat an already-missing directory as
/// removed), children before parents, and forgotten only once it succeeded.
pub fn gc(
    store: &ContentStore,
    meta: &Meta,
    remove_layer: &mut dyn FnMut(&ChainId) -> Result<()>,
) -> Result<GcReport> {
    let _sweeping = store.lock_for_gc();
    let mut report = GcReport {
        expired_leases: meta.expire_leases()?,
        ingest_leftovers: store.clean_ingest()?,
        ..Default::default()
    };

    let blobs = store.list()?; // before the roots: see the module doc
    let roots = meta.gc_roots()?;
    for d in blobs {
        if roots.blobs.contains(&d) {
            continue;
        }
        let size = store.size(&d).unwrap_or(0);
        if store.delete(&d)? {
            report.blob_bytes += size;
            report.blobs.push(d);
        }
    }

    // Children first: a snapshot must not lose its parent while it exists.
    let parents: HashMap<&ChainId, Option<&ChainId>> = roots
        .layer_records
        .iter()
        .map(|l| (&l.chain_id, l.parent.as_ref()))
        .collect();
    let depth = |c: &ChainId| {
        let (mut n, mut cur) = (0usize, parents.get(c).copied().flatten());
        while let Some(p) = cur {
            n += 1;
            cur = parents.get(p).copied().flatten();
        }
        n
    };
    let mut dead: Vec<&ChainId> = roots
        .layer_records
        .iter()
        .map(|l| &l.chain_id)
        .filter(|c| !roots.layers.contains(*c))
        .collect();
    dead.sort_by_key(|c| std::cmp::Reverse(depth(c)));
    for c in dead {
        remove_layer(c)?;
        meta.remove_layer(c)?;
        report.layers.push(c.clone());
    }
    Ok(report)
}

/// Checks that every image's content is present: its config, manifest and kept blobs exist,
/// its layers are registered with enough references, and every reference points to an image.
/// Returns the problems found (empty when consistent).
pub fn check(store: &ContentStore, meta: &Meta) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let images = meta.images()?;
    let ids: HashSet<&Digest> = images.iter().map(|i| &i.id).collect();
    let layers: HashMap<ChainId, u64> = meta
        .layers()?
        .into_iter()
        .map(|l| (l.chain_id, l.refcount))
        .collect();
    let mut uses: HashMap<&ChainId, u64> = HashMap::new();
    for img in &images {
        for b in img.referenced_blobs() {
            if !store.exists(b) {
                problems.push(format!("image {}: blob {b} is missing", img.id));
            }
        }
        for c in &img.chain_ids {
            *uses.entry(c).or_default() += 1;
            if !layers.contains_key(c) {
                problems.push(format!("image {}: layer {c} is not registered", img.id));
            }
        }
    }
    for (c, n) in uses {
        if let Some(&count) = layers.get(c) {
            if count < n {
                problems.push(format!("layer {c}: refcount {count} below its {n} images"));
            }
        }
    }
    for (r, id) in meta.refs()? {
        if !ids.contains(&id) {
            problems.push(format!("reference {r} points to missing image {id}"));
        }
    }
    for (cid, id) in meta.containers()? {
        if !ids.contains(&id) {
            problems.push(format!("container {cid} uses missing image {id}"));
        }
    }
    Ok(problems)
}

/// A `remove_layer` callback for stores without a snapshotter (and tests): only forgets.
pub fn forget_layer(_: &ChainId) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{ImageRecord, LayerRecord};
    use crate::reference::Reference;
    use crate::Error;
    use std::io::Write;

    struct Env {
        _dir: tempfile::TempDir,
        store: ContentStore,
        meta: Meta,
    }

    fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path().join("content")).unwrap();
        let meta = Meta::open(dir.path().join("meta.redb")).unwrap();
        Env {
            _dir: dir,
            store,
            meta,
        }
    }

    fn layer(m: &Meta, diff: &[u8], parent: Option<&ChainId>) -> ChainId {
        let diff_id = Digest::of(diff);
        let chain_id = match parent {
            None => diff_id.clone(),
            Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
        };
        let rec = LayerRecord {
            chain_id: chain_id.clone(),
            diff_id,
            parent: parent.cloned(),
            size: 1,
            refcount: 0,
            snapshot_key: chain_id.hex().into(),
        };
        m.put_layer(&rec).unwrap();
        chain_id
    }

    /// An image with a config and manifest blob over the given layers.
    fn image(e: &Env, name: &str, layers: &[ChainId]) -> ImageRecord {
        let config = e
            .store
            .write_blob(format!("config {name}").as_bytes(), None)
            .unwrap();
        let manifest = e
            .store
            .write_blob(format!("manifest {name}").as_bytes(), None)
            .unwrap();
        let rec = ImageRecord {
            manifest: Some(manifest),
            chain_ids: layers.to_vec(),
            ..ImageRecord::new(config)
        };
        e.meta
            .put_image(&rec, &[Reference::parse_normalized(name).unwrap()])
            .unwrap();
        rec
    }

    fn collect(e: &Env) -> (GcReport, Vec<ChainId>) {
        let mut removed = Vec::new();
        let report = gc(&e.store, &e.meta, &mut |c| {
            removed.push(c.clone());
            Ok(())
        })
        .unwrap();
        (report, removed)
    }

    #[test]
    fn frees_only_unreferenced() {
        let e = env();
        let l1 = layer(&e.meta, b"l1", None);
        let l2 = layer(&e.meta, b"l2", Some(&l1));
        let l3 = layer(&e.meta, b"l3", Some(&l2));
        let orphan = layer(&e.meta, b"orphan", None);
        let keep = image(&e, "keep", std::slice::from_ref(&l1));
        let drop_me = image(&e, "drop", &[l1.clone(), l2.clone(), l3.clone()]);
        let stray = e.store.write_blob(b"stray", None).unwrap();
        e.meta.delete_image(&drop_me.id).unwrap();

        let (report, removed) = collect(&e);
        let mut want_blobs = vec![stray, drop_me.id.clone(), drop_me.manifest.clone().unwrap()];
        want_blobs.sort();
        let mut got = report.blobs.clone();
        got.sort();
        assert_eq!(got, want_blobs);
        assert!(report.blob_bytes > 0);
        assert_eq!(removed.len(), 3);
        assert!(
            removed.iter().position(|c| *c == l3) < removed.iter().position(|c| *c == l2),
            "children first"
        );
        assert!(removed.contains(&orphan));
        assert_eq!(report.layers, removed);
        for b in keep.referenced_blobs() {
            assert!(e.store.exists(b));
        }
        assert!(e.meta.layer(&l1).unwrap().is_some() && e.meta.layer(&l2).unwrap().is_none());
        assert!(check(&e.store, &e.meta).unwrap().is_empty());
        // Nothing left to free.
        assert_eq!(collect(&e).0, GcReport::default());
    }

    #[test]
    fn leases_protect_blobs_and_layer_chains() {
        let e = env();
        let l1 = layer(&e.meta, b"l1", None);
        let l2 = layer(&e.meta, b"l2", Some(&l1));
        let lease = e.meta.create_lease(None).unwrap();
        let future = Digest::of(b"not yet written");
        e.meta
            .lease_add(
                &lease,
                std::slice::from_ref(&future),
                std::slice::from_ref(&l2),
            )
            .unwrap();
        let d = e
            .store
            .write_blob(b"not yet written", Some(&future))
            .unwrap();
        let (report, removed) = collect(&e);
        assert!(
            report.blobs.is_empty() && removed.is_empty(),
            "leased blob and the parent of a leased layer stay"
        );
        assert!(e.store.exists(&d));
        e.meta.delete_lease(&lease).unwrap();
        let (report, removed) = collect(&e);
        assert_eq!(report.blobs, vec![d]);
        assert_eq!(removed, vec![l2, l1]);
    }

    #[test]
    fn refcounted_layers_and_container_images_stay() {
        let e = env();
        let l1 = layer(&e.meta, b"l1", None);
        e.meta.layer_refcount_add(&l1, 1).unwrap();
        let img = image(&e, "app", &[]);
        e.meta.add_container("c1", &img.id).unwrap();
        assert!(e.meta.delete_image(&img.id).is_err());
        let (report, removed) = collect(&e);
        assert!(report.blobs.is_empty() && removed.is_empty());
    }

    #[test]
    fn concurrent_gc_never_takes_what_a_writer_is_about_to_reference() {
        let e = std::sync::Arc::new(env());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let collector = {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    gc(&e.store, &e.meta, &mut forget_layer).unwrap();
                }
            })
        };
        for i in 0..40u32 {
            // Reference first: lease the config digest, then write it.
            let config = format!("config {i}").into_bytes();
            let lease = e.meta.create_lease(None).unwrap();
            let id = Digest::of(&config);
            e.meta
                .lease_add(&lease, std::slice::from_ref(&id), &[])
                .unwrap();
            e.store.write_blob(&config, Some(&id)).unwrap();
            // Unknown digest: commit and reference under the guard.
            let guard = e.store.hold_off_gc();
            let manifest = e
                .store
                .write_blob(format!("manifest {i}").as_bytes(), None)
                .unwrap();
            let rec = ImageRecord {
                manifest: Some(manifest),
                ..ImageRecord::new(id)
            };
            let tag = Reference::parse_normalized(&format!("app:{i}")).unwrap();
            e.meta.put_image(&rec, &[tag]).unwrap();
            drop(guard);
            e.meta.delete_lease(&lease).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        collector.join().unwrap();
        assert_eq!(e.meta.images().unwrap().len(), 40);
        assert!(check(&e.store, &e.meta).unwrap().is_empty());
    }

    #[test]
    fn collects_crash_leftovers() {
        let e = env();
        std::fs::write(e.store.root().join("ingest").join("123-0-abc"), b"half").unwrap();
        let mut live = e.store.writer(None, None).unwrap();
        live.write_all(b"still being written").unwrap();
        let (report, _) = collect(&e);
        assert_eq!(report.ingest_leftovers, 1);
        let (d, _) = live.commit().unwrap();
        assert!(e.store.exists(&d));
    }

    #[test]
    fn failing_layer_removal_keeps_the_record() {
        let e = env();
        let l1 = layer(&e.meta, b"l1", None);
        let err = gc(&e.store, &e.meta, &mut |_| {
            Err(Error::Conflict("busy".into()))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "busy");
        assert!(e.meta.layer(&l1).unwrap().is_some());
        assert_eq!(
            gc(&e.store, &e.meta, &mut forget_layer).unwrap().layers,
            vec![l1]
        );
    }

    #[test]
    fn check_reports_missing_content() {
        let e = env();
        let img = image(&e, "app", &[]);
        assert!(check(&e.store, &e.meta).unwrap().is_empty());
        e.store.delete(&img.id).unwrap();
        let problems = check(&e.store, &e.meta).unwrap();
        assert_eq!(
            problems,
            vec![format!("image {}: blob {} is missing", img.id, img.id)]
        );
    }
}
