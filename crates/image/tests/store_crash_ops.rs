//! kill -9 in the middle of import / load / commit / export through the [`ImageStore`] facade
//! never leaves a half image nor leftovers once the store is reopened: a child process (this
//! test binary running the ignored `crash_ops_child`) loops over those operations on one store
//! and is killed after a varying short delay; the parent reopens the store and checks it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_image::gc;
use berth_image::store::ImageStore;
use berth_image::Reference;

const DIR_ENV: &str = "BERTH_IMAGE_CRASH_OPS_DIR";

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap()
}

fn rootfs_tar(marker: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("marker", marker.as_bytes());
    // Over 1 MiB: load streams it into the content store and unpacks it ahead.
    let big: Vec<u8> = marker.bytes().cycle().take(1_500_000).collect();
    add("big/data", &big);
    b.into_inner().unwrap()
}

#[test]
#[ignore = "child process of kill9_mid_store_ops_leaves_a_consistent_store"]
fn crash_ops_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let s = ImageStore::open(Path::new(&dir)).unwrap();
    let seed = std::process::id();
    for i in 0.. {
        let tag = format!("imp-{seed}:{i}");
        s.import(
            &rootfs_tar(&format!("{seed}-{i}"))[..],
            &[],
            None,
            Some(&r(&tag)),
        )
        .unwrap();
        // save, rmi, load back.
        let mut archive = Vec::new();
        s.save(std::slice::from_ref(&tag), &mut archive).unwrap();
        s.remove(&tag, false).unwrap();
        s.load(&archive[..]).unwrap();
        // commit a change of a container, export it.
        let key = format!("c-{seed}-{i}");
        s.create_rw(&key, &tag).unwrap();
        let upper = s.snapshotter().upper_dir(&key).unwrap();
        std::fs::write(upper.join("added"), format!("{i}")).unwrap();
        s.commit(
            &key,
            &[],
            Some("crash"),
            None,
            Some(&r(&format!("com-{seed}:{i}"))),
        )
        .unwrap();
        s.export(&key, std::io::sink()).unwrap();
        s.remove_rw(&key).unwrap();
    }
}

fn check(root: &Path) {
    let s = ImageStore::open(root).unwrap();
    let problems = gc::check(s.content(), s.meta()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    for img in s.meta().images().unwrap() {
        s.inspect(&img.id.to_string()).unwrap();
        for b in img.referenced_blobs() {
            assert!(s.content().exists(b), "image {}: blob {b} missing", img.id);
        }
        for c in &img.chain_ids {
            assert!(
                s.snapshotter().has_layer(&c.to_string()),
                "image {}: layer {c} not in the snapshotter",
                img.id
            );
            assert!(s.meta().layer(c).unwrap().is_some());
        }
    }
    // Every container snapshot is recorded (the record is made first and removed last).
    let recorded: Vec<String> = s
        .meta()
        .containers()
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    for snap in s.snapshotter().snapshots().unwrap() {
        assert!(
            recorded.contains(&snap.key),
            "unrecorded snapshot {}",
            snap.key
        );
    }
    let empty = |p: &Path| std::fs::read_dir(p).map_or(true, |mut d| d.next().is_none());
    assert!(empty(&root.join("content/ingest")), "ingest leftovers");
    assert!(
        empty(&s.snapshotter().root().join("staging")),
        "staging leftovers"
    );
    assert!(!root.join("tmp").exists(), "scratch leftovers");
    // Collecting what the killed process left keeps the store consistent.
    let snap = s.snapshotter();
    gc::gc(s.content(), s.meta(), &mut |c| {
        snap.remove_layer(&c.to_string())
    })
    .unwrap();
    assert!(gc::check(s.content(), s.meta()).unwrap().is_empty());
    // The store is usable: drop what the crashed containers left.
    for key in recorded {
        s.remove_rw(&key).unwrap();
    }
}

#[test]
fn kill9_mid_store_ops_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let start = Instant::now();
    for round in 0..4u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_ops_child", "--ignored", "--exact", "--nocapture"])
            .env(DIR_ENV, &root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        let delay = 150 + (nanos ^ (round * 7919)) % 600;
        std::thread::sleep(Duration::from_millis(delay));
        // The child only ends by being killed (or by failing, which try_wait reveals).
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early: {status}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        check(&root);
    }
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}
