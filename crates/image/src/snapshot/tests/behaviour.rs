//! Behaviours both drivers must share, run once per driver.

use std::fs;

use super::*;
use crate::Error;

fn three_layers(s: &dyn Snapshotter) -> String {
    add_image(
        s,
        1,
        vec![
            vec![
                E::File("a.txt", "1"),
                E::File("gone.txt", "x"),
                E::File("etc/passwd", "root"),
                E::File("opq/old", "old"),
                E::File("d/keep", "k"),
                E::Dir("var/empty"),
            ],
            vec![
                E::File("a.txt", "2"),
                E::File("b.txt", "b"),
                E::File("d/more", "m"),
            ],
            vec![
                E::Whiteout("gone.txt"),
                E::Opaque("opq"),
                E::File("opq/new", "new"),
                E::Whiteout("d/keep"),
            ],
        ],
    )
}

fn layers_and_whiteouts(driver: Driver) {
    let root = TestRoot::new();
    let s = root.driver(driver);
    let top = three_layers(&*s);
    assert!(s.has_layer(&chain(1)) && s.has_layer(&chain(3)));
    assert_eq!(s.layer(&top).unwrap().parent, Some(chain(2)));
    s.prepare("c1", Some(&top)).unwrap();
    let t = root.target("c1");
    let guard = s.mount("c1", &t).unwrap();
    assert_eq!(read(t.join("a.txt")), "2");
    assert_eq!(read(t.join("b.txt")), "b");
    assert_eq!(read(t.join("etc/passwd")), "root");
    assert!(
        !t.join("gone.txt").exists(),
        "whiteout in layer 3 must hide the file"
    );
    assert_eq!(
        names(t.join("opq")),
        ["new"],
        "opaque dir hides the lower content"
    );
    assert_eq!(names(t.join("d")), ["more"]);
    assert!(names(t.join("var/empty")).is_empty());
    drop(guard);
    assert!(!is_mounted(&t));
}

fn writes_stay_in_the_container(driver: Driver) {
    let root = TestRoot::new();
    let s = root.driver(driver);
    let top = three_layers(&*s);
    let layer_fs = |n: u32| s.root().join("layers").join(&chain(n)[7..]).join("fs");
    let before: Vec<_> = (1..=3).map(|n| du(&layer_fs(n))).collect();
    s.prepare("w", Some(&top)).unwrap();
    let t = root.target("w");
    {
        let _g = s.mount("w", &t).unwrap();
        fs::write(t.join("new.txt"), "hello").unwrap();
        fs::write(t.join("a.txt"), "changed").unwrap();
        fs::remove_file(t.join("b.txt")).unwrap();
        fs::remove_file(t.join("etc/passwd")).unwrap();
        assert!(is_mounted(&t));
    }
    assert!(!is_mounted(&t), "the guard unmounts on drop");
    // The layers are untouched, whatever the container did.
    assert_eq!(read(layer_fs(2).join("b.txt")), "b");
    if driver == Driver::Overlay {
        assert_eq!(read(layer_fs(1).join("a.txt")), "1");
        assert_eq!(read(layer_fs(2).join("a.txt")), "2");
        assert_eq!(read(layer_fs(1).join("etc/passwd")), "root");
    } else {
        assert_eq!(read(layer_fs(3).join("a.txt")), "2");
        assert_eq!(read(layer_fs(3).join("etc/passwd")), "root");
    }
    let after: Vec<_> = (1..=3).map(|n| du(&layer_fs(n))).collect();
    assert_eq!(before, after);
    let upper = s.upper_dir("w").unwrap();
    assert_eq!(read(upper.join("new.txt")), "hello");
    assert_eq!(read(upper.join("a.txt")), "changed");
    match s.diff_source("w").unwrap() {
        DiffSource::Overlay { upper: u, lowers } => {
            assert_eq!(u, upper);
            assert_eq!(lowers, [layer_fs(3), layer_fs(2), layer_fs(1)]);
            assert!(
                is_whiteout(&upper.join("b.txt")),
                "a deletion is a whiteout in upper"
            );
        }
        DiffSource::Compare { dir, base } => {
            assert_eq!(dir, upper);
            assert!(!upper.join("b.txt").exists());
            assert_eq!(read(base.unwrap().join("b.txt")), "b");
        }
    }
    // A second mount sees the same container state.
    let t2 = root.target("w2");
    let g = s.mount("w", &t2).unwrap();
    assert_eq!(read(t2.join("a.txt")), "changed");
    assert!(!t2.join("b.txt").exists());
    assert!(s.usage("w").unwrap() > 0);
    // Mounted: removal is refused, then allowed once unmounted; it takes everything.
    assert!(
        matches!(s.remove("w"), Err(Error::Conflict(_))),
        "{:?}",
        s.remove("w")
    );
    g.unmount().unwrap();
    let dir = s.root().join("containers/w");
    assert!(dir.exists());
    s.remove("w").unwrap();
    assert!(!dir.exists());
    assert!(!upper.exists());
    assert!(s.snapshots().unwrap().is_empty());
    s.remove("w").unwrap(); // idempotent
    assert!(matches!(s.mount("w", &t), Err(Error::NotFound(_))));
    // Nothing left in staging either.
    assert!(names(s.root().join("staging")).is_empty());
}

fn failed_unpack_leaves_nothing(driver: Driver) {
    let root = TestRoot::new();
    let s = root.driver(driver);
    let err = s
        .add_layer(&chain(9), None, &mut |dir: &std::path::Path, _| {
            fs::create_dir_all(dir).unwrap();
            fs::write(dir.join("half"), "x").unwrap();
            Err(Error::Malformed("truncated layer".into()))
        })
        .unwrap_err();
    assert!(matches!(err, Error::Malformed(_)));
    assert!(!s.has_layer(&chain(9)));
    assert!(names(s.root().join("layers")).is_empty());
    assert!(names(s.root().join("staging")).is_empty());
    // A missing parent is refused before anything is unpacked.
    let mut called = false;
    let r = s.add_layer(
        &chain(10),
        Some(&chain(11)),
        &mut |_: &std::path::Path, _| {
            called = true;
            Ok(())
        },
    );
    assert!(matches!(r, Err(Error::NotFound(_))) && !called);
    assert!(matches!(
        s.prepare("x", Some(&chain(11))),
        Err(Error::NotFound(_))
    ));
    // Adding an existing layer does not unpack again.
    s.add_layer(&chain(1), None, &mut layer(vec![E::File("f", "1")]))
        .unwrap();
    let info = s
        .add_layer(&chain(1), None, &mut |_: &std::path::Path, _| {
            panic!("unpacked twice")
        })
        .unwrap();
    assert_eq!(info.chain_id, chain(1));
    assert_eq!(s.layers().unwrap().len(), 1);
    // Duplicate container keys conflict.
    s.prepare("k", Some(&chain(1))).unwrap();
    assert!(matches!(s.prepare("k", None), Err(Error::Conflict(_))));
}

fn cleanup_removes_leftovers(driver: Driver) {
    let root = TestRoot::new();
    let s = root.driver(driver);
    // A crashed process (another pid) left a half-unpacked layer, with a mount in it.
    let stale = s.root().join("staging/999999999-0-layer");
    fs::create_dir_all(stale.join("fs/sub")).unwrap();
    rustix::mount::mount(
        "tmpfs",
        stale.join("fs/sub"),
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap();
    let mine = s
        .root()
        .join(format!("staging/{}-424242-layer", std::process::id()));
    fs::create_dir_all(&mine).unwrap();
    s.cleanup().unwrap();
    assert!(!stale.exists());
    assert!(!is_mounted(&stale.join("fs/sub")));
    assert!(mine.exists(), "this process's own work in progress is kept");
    fs::remove_dir(&mine).unwrap();
}

fn empty_snapshot(driver: Driver) {
    let root = TestRoot::new();
    let s = root.driver(driver);
    s.prepare("scratch", None).unwrap();
    let t = root.target("scratch");
    let g = s.mount("scratch", &t).unwrap();
    assert!(names(&t).is_empty());
    fs::write(t.join("f"), "x").unwrap();
    drop(g);
    assert_eq!(read(s.upper_dir("scratch").unwrap().join("f")), "x");
    assert_eq!(
        s.snapshots().unwrap(),
        vec![super::super::SnapshotInfo {
            key: "scratch".into(),
            parent: None
        }]
    );
}

macro_rules! for_both_drivers {
    ($($name:ident),*) => {
        mod overlay_driver {
            $(#[test] fn $name() { super::$name(super::Driver::Overlay) })*
        }
        mod copy_driver {
            $(#[test] fn $name() { super::$name(super::Driver::Copy) })*
        }
    };
}

for_both_drivers!(
    layers_and_whiteouts,
    writes_stay_in_the_container,
    failed_unpack_leaves_nothing,
    cleanup_removes_leftovers,
    empty_snapshot
);

use super::super::DiffSource;
