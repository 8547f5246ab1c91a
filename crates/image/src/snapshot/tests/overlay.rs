//! Overlay driver: sharing between containers, long layer chains, disk use.

use std::fs;
use std::io::Write;

use super::*;
use crate::snapshot::OverlaySnapshotter;
use crate::Error;

#[test]
fn snapshot_overlay_containers_share_layer_dirs() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Overlay);
    let top = add_image(
        &*s,
        1,
        vec![
            vec![E::File("bin/sh", "shell")],
            vec![E::File("etc/motd", "hi")],
        ],
    );
    s.prepare("one", Some(&top)).unwrap();
    s.prepare("two", Some(&top)).unwrap();
    let (t1, t2) = (root.target("one"), root.target("two"));
    let _g1 = s.mount("one", &t1).unwrap();
    let _g2 = s.mount("two", &t2).unwrap();
    // Overlay reports the lower file's own inode: both mounts read the one copy in the layer dir.
    let layer_file = s
        .root()
        .join("layers")
        .join(&chain(1)[7..])
        .join("fs/bin/sh");
    assert_eq!(ino(t1.join("bin/sh")), ino(&layer_file));
    assert_eq!(ino(t2.join("bin/sh")), ino(&layer_file));
    fs::write(t1.join("etc/motd"), "one").unwrap();
    assert_eq!(
        read(t2.join("etc/motd")),
        "hi",
        "a container's write is its own"
    );
    assert_eq!(names(s.root().join("layers")).len(), 2);
    // Layers in use cannot be removed; once nothing needs them they can.
    assert!(matches!(s.remove_layer(&chain(1)), Err(Error::Conflict(_))));
    assert!(matches!(s.remove_layer(&top), Err(Error::Conflict(_))));
    drop((_g1, _g2));
    s.remove("one").unwrap();
    s.remove("two").unwrap();
    assert!(
        matches!(s.remove_layer(&chain(1)), Err(Error::Conflict(_))),
        "layer 2 is built on it"
    );
    s.remove_layer(&top).unwrap();
    s.remove_layer(&chain(1)).unwrap();
    assert!(s.layers().unwrap().is_empty());
}

fn sixty_layers(s: &dyn Snapshotter) -> String {
    let mut parent: Option<String> = None;
    for i in 1..=60u32 {
        let id = chain(i);
        let mut unpack = |dir: &Path, _| {
            fs::create_dir(dir).unwrap();
            fs::write(dir.join(format!("f{i}")), i.to_string()).unwrap();
            fs::write(dir.join("top"), i.to_string()).unwrap();
            if i > 1 {
                // Each layer deletes its predecessor's file but one.
                let kind = rustix::fs::FileType::CharacterDevice;
                let wh = dir.join(format!("f{}", i - 1));
                if i - 1 != 30 {
                    rustix::fs::mknodat(rustix::fs::CWD, &wh, kind, 0o600.into(), 0).unwrap();
                }
            }
            Ok(())
        };
        s.add_layer(&id, parent.as_deref(), &mut unpack).unwrap();
        parent = Some(id);
    }
    parent.unwrap()
}

fn check_sixty(t: &Path) {
    assert_eq!(read(t.join("top")), "60");
    assert_eq!(names(t), ["f30", "f60", "top"]);
    assert_eq!(read(t.join("f30")), "30");
}

#[test]
fn snapshot_overlay_sixty_layers_mount() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Overlay);
    let top = sixty_layers(&*s);
    // Well past one page of mount options: fsconfig takes one lowerdir+ per layer.
    let opts: usize = (1..=60)
        .map(|i| {
            s.root()
                .join("layers")
                .join(&chain(i)[7..])
                .join("fs")
                .as_os_str()
                .len()
                + 1
        })
        .sum();
    assert!(opts > 4096, "{opts}");
    s.prepare("deep", Some(&top)).unwrap();
    let t = root.target("deep");
    let g = s.mount("deep", &t).unwrap();
    check_sixty(&t);
    let m = mounts::mount_table()
        .unwrap()
        .into_iter()
        .find(|m| m.mount_point == t)
        .unwrap();
    assert!(
        !m.super_options.contains("/proc/self/fd"),
        "plain paths: {}",
        m.super_options
    );
    fs::write(t.join("w"), "x").unwrap();
    g.unmount().unwrap();
    assert!(!is_mounted(&t));
}

#[test]
fn snapshot_overlay_sixty_layers_mount2_fallback() {
    // The path kernels without lowerdir+ take: mount(2) naming layers by descriptor.
    let root = TestRoot::new();
    let mut o = OverlaySnapshotter::open(root.path().join("snapshots/overlay")).unwrap();
    o.legacy_mount_only = true;
    let top = sixty_layers(&o);
    o.prepare("deep", Some(&top)).unwrap();
    let t = root.target("deep");
    let g = o.mount("deep", &t).unwrap();
    check_sixty(&t);
    let m = mounts::mount_table()
        .unwrap()
        .into_iter()
        .find(|m| m.mount_point == t)
        .unwrap();
    assert!(
        m.super_options.contains("/proc/self/fd/"),
        "layers by descriptor: {}",
        m.super_options
    );
    drop(g);
    // Short chains keep plain paths.
    o.add_layer(&chain(100), None, &mut layer(vec![E::File("x", "y")]))
        .unwrap();
    o.prepare("short", Some(&chain(100))).unwrap();
    let t2 = root.target("short");
    let _g = o.mount("short", &t2).unwrap();
    assert_eq!(read(t2.join("x")), "y");
    let m = mounts::mount_table()
        .unwrap()
        .into_iter()
        .find(|m| m.mount_point == t2)
        .unwrap();
    assert!(m.super_options.contains(&format!(
        "upperdir={}",
        o.root().join("containers/short/upper").display()
    )));
}

#[test]
fn snapshot_overlay_thirty_containers_store_the_image_once() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Overlay);
    let mut unpack = |dir: &Path, _| {
        fs::create_dir(dir).unwrap();
        // 5 MB of incompressible data, as a real image layer would be.
        let mut f = fs::File::create(dir.join("blob")).unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = vec![0u8; 5 << 20];
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&buf).unwrap();
        Ok(())
    };
    let info = s.add_layer(&chain(1), None, &mut unpack).unwrap();
    assert!(info.size >= 5 << 20, "{}", info.size);
    let mut guards = Vec::new();
    for i in 0..30 {
        let key = format!("c{i}");
        s.prepare(&key, Some(&chain(1))).unwrap();
        let t = root.target(&key);
        guards.push(s.mount(&key, &t).unwrap());
        assert_eq!(fs::metadata(t.join("blob")).unwrap().len(), 5 << 20);
        fs::write(t.join("hostname"), &key).unwrap();
    }
    let total = du(s.root());
    let per_container: u64 = (0..30).map(|i| s.usage(&format!("c{i}")).unwrap()).sum();
    eprintln!("30 containers of a 5 MiB image: {total} bytes under the snapshot root, {per_container} in the containers");
    assert!(
        total < 7 << 20,
        "30 containers of a 5 MB image use {total} bytes"
    );
    assert!(per_container < 2 << 20, "{per_container}");
    drop(guards);
    assert_eq!(
        mounts::mounts_under(root.path()).unwrap(),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn snapshot_overlay_mount_into_path_keeps_it_mounted() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Overlay);
    s.prepare("k", None).unwrap();
    let t = root.target("k");
    let path = s.mount("k", &t).unwrap().into_path();
    assert_eq!(path, t);
    assert!(is_mounted(&t));
    mounts::unmount(&path).unwrap();
    assert!(!is_mounted(&t));
    mounts::unmount(&path).unwrap(); // not mounted: fine
}

#[test]
fn snapshot_overlay_busy_mount_is_detached_on_drop() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Overlay);
    s.prepare("k", None).unwrap();
    let t = root.target("k");
    let g = s.mount("k", &t).unwrap();
    let open = fs::File::create(t.join("held")).unwrap();
    drop(g); // EBUSY: detached instead
    assert!(!is_mounted(&t));
    drop(open);
}

#[test]
fn snapshot_overlay_detached_layers_publish_in_any_order() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Overlay);
    assert!(s.supports_detached());
    // Unpacked top first, before the chain exists: neither needs its parent.
    let top = s
        .unpack_detached(&mut layer(vec![
            E::File("etc/motd", "hi"),
            E::Whiteout("gone"),
        ]))
        .unwrap();
    let base = s
        .unpack_detached(&mut layer(vec![
            E::File("bin/sh", "shell"),
            E::File("gone", "x"),
        ]))
        .unwrap();
    assert!(s.layers().unwrap().is_empty(), "nothing published yet");
    // A detached layer cannot be published over a parent that does not exist.
    let err = s
        .add_detached_layer(top, &chain(2), Some(&chain(1)))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let top = s
        .unpack_detached(&mut layer(vec![
            E::File("etc/motd", "hi"),
            E::Whiteout("gone"),
        ]))
        .unwrap();
    s.add_detached_layer(base, &chain(1), None).unwrap();
    let info = s
        .add_detached_layer(top, &chain(2), Some(&chain(1)))
        .unwrap();
    assert_eq!(info.parent.as_deref(), Some(&chain(1)[..]));
    assert!(info.size > 0);
    s.prepare("c", Some(&chain(2))).unwrap();
    let t = root.target("c");
    let g = s.mount("c", &t).unwrap();
    assert_eq!(read(t.join("bin/sh")), "shell");
    assert_eq!(read(t.join("etc/motd")), "hi");
    assert!(!t.join("gone").exists());
    drop(g);
    // Publishing an existing layer keeps it and drops the new copy; a failed or dropped
    // unpack leaves nothing in staging.
    let again = s
        .unpack_detached(&mut layer(vec![E::File("bin/sh", "other")]))
        .unwrap();
    s.add_detached_layer(again, &chain(1), None).unwrap();
    let err = s
        .unpack_detached(&mut |dir: &Path, _| {
            fs::create_dir(dir).unwrap();
            Err(Error::Malformed("truncated".into()))
        })
        .unwrap_err();
    assert!(matches!(err, Error::Malformed(_)));
    drop(
        s.unpack_detached(&mut layer(vec![E::File("x", "y")]))
            .unwrap(),
    );
    assert!(names(s.root().join("staging")).is_empty());
    assert_eq!(s.layers().unwrap().len(), 2);
    let t2 = root.target("c2");
    s.prepare("c2", Some(&chain(2))).unwrap();
    let g = s.mount("c2", &t2).unwrap();
    assert_eq!(read(t2.join("bin/sh")), "shell", "the first copy stays");
    drop(g);
}
