//! The snapshotters fed by the real `layer::apply` / `layer::apply_onto` from tar streams, as
//! the engine will: the unpack contract (UnpackMode) matches what the layer module does.

use crate::layer::{self, ApplyOptions, WhiteoutMode};

use super::*;

/// A tar stream of regular files (name, content); a name ending in '/' is a directory.
fn tar_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut h = tar::Header::new_gnu();
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(content.len() as u64);
        }
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn unpack_tar(bytes: Vec<u8>) -> impl FnMut(&Path, UnpackMode) -> Result<()> {
    move |dir, mode| {
        let mut opts = ApplyOptions {
            allow_devices: true,
            allow_trusted_xattrs: true,
            ..Default::default()
        };
        match mode {
            UnpackMode::OverlayDiff => {
                opts.whiteouts = WhiteoutMode::Overlay;
                layer::apply(&bytes[..], dir, &opts).map(drop)
            }
            UnpackMode::Flatten => {
                opts.whiteouts = WhiteoutMode::Apply;
                layer::apply_onto(&bytes[..], dir, &opts).map(drop)
            }
        }
    }
}

fn real_layers(driver: Driver) {
    let root = TestRoot::new();
    let s = root.driver(driver);
    let l1 = tar_of(&[
        ("a", "1"),
        ("dir/", ""),
        ("dir/x", "x"),
        ("dir/y", "y"),
        ("keep", "k"),
    ]);
    let l2 = tar_of(&[
        (".wh.a", ""),
        ("dir/", ""),
        ("dir/.wh..wh..opq", ""),
        ("dir/z", "z"),
        ("b", "2"),
    ]);
    s.add_layer(&chain(1), None, &mut unpack_tar(l1)).unwrap();
    s.add_layer(&chain(2), Some(&chain(1)), &mut unpack_tar(l2))
        .unwrap();
    s.prepare("c", Some(&chain(2))).unwrap();
    let t = root.target("c");
    let g = s.mount("c", &t).unwrap();
    assert_eq!(names(&t), ["b", "dir", "keep"]);
    assert_eq!(names(t.join("dir")), ["z"]);
    assert_eq!(read(t.join("keep")), "k");
    drop(g);
    assert!(!is_mounted(&t));
}

#[test]
fn snapshot_overlay_real_layer_apply() {
    real_layers(Driver::Overlay)
}

#[test]
fn snapshot_copy_real_layer_apply() {
    real_layers(Driver::Copy)
}
