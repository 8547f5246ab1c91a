//! Snapshot tests on real mounts (they need root). Layers are made by a small closure that
//! writes entries in overlay format, standing in for `layer::apply`. Every test root unmounts
//! whatever is left under it when dropped, so a failing test leaks no mount.

mod behaviour;
mod copy;
mod detect;
mod overlay;
mod with_layer_apply;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use super::{mounts, open, Driver, Snapshotter, UnpackMode};
use crate::Result;

/// Prefix of every test directory: `findmnt | grep berth-snaptest` must be empty after a run.
pub(super) const PREFIX: &str = "berth-snaptest-";

pub(super) struct TestRoot {
    dir: tempfile::TempDir,
}

impl TestRoot {
    pub(super) fn new() -> TestRoot {
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in("/tmp")
            .unwrap();
        TestRoot { dir }
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(super) fn driver(&self, driver: Driver) -> Box<dyn Snapshotter> {
        open(self.path(), driver).unwrap()
    }

    /// A fresh directory to mount on.
    pub(super) fn target(&self, name: &str) -> PathBuf {
        let p = self.path().join("mnt").join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        let _ = mounts::unmount_all_under(self.dir.path());
    }
}

pub(super) fn chain(n: u32) -> String {
    format!("sha256:{n:064x}")
}

/// One entry of a test layer, in overlay format.
#[derive(Clone)]
pub(super) enum E {
    File(&'static str, &'static str),
    Dir(&'static str),
    Whiteout(&'static str),
    /// A directory that hides everything below it.
    Opaque(&'static str),
    Symlink(&'static str, &'static str),
}

/// An `unpack` closure standing in for `layer::apply` (overlay) and `layer::apply_onto`
/// (copy). Test layers never write through a symlink.
pub(super) fn layer(entries: Vec<E>) -> impl FnMut(&Path, UnpackMode) -> Result<()> {
    move |dir: &Path, mode: UnpackMode| {
        match mode {
            UnpackMode::OverlayDiff => {
                assert!(!dir.exists(), "unpack target must not exist yet");
                fs::create_dir(dir).unwrap();
            }
            UnpackMode::Flatten => assert!(dir.is_dir(), "the parent's tree must be there"),
        }
        let flat = mode == UnpackMode::Flatten;
        for e in &entries {
            match e {
                E::File(p, content) => {
                    let p = dir.join(p);
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    let _ = fs::remove_file(&p);
                    fs::write(p, content).unwrap();
                }
                E::Dir(p) => fs::create_dir_all(dir.join(p)).unwrap(),
                E::Whiteout(p) if flat => remove_any(&dir.join(p)),
                E::Whiteout(p) => {
                    let p = dir.join(p);
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    let kind = rustix::fs::FileType::CharacterDevice;
                    rustix::fs::mknodat(rustix::fs::CWD, &p, kind, 0o600.into(), 0).unwrap();
                }
                E::Opaque(p) if flat => {
                    remove_any(&dir.join(p));
                    fs::create_dir_all(dir.join(p)).unwrap();
                }
                E::Opaque(p) => {
                    let p = dir.join(p);
                    fs::create_dir_all(&p).unwrap();
                    rustix::fs::lsetxattr(
                        &p,
                        "trusted.overlay.opaque",
                        b"y",
                        rustix::fs::XattrFlags::empty(),
                    )
                    .unwrap();
                }
                E::Symlink(p, target) => {
                    remove_any(&dir.join(p));
                    symlink(target, dir.join(p)).unwrap()
                }
            }
        }
        Ok(())
    }
}

fn remove_any(p: &Path) {
    super::tree::remove_any(p).unwrap()
}

/// An overlay whiteout: a 0/0 character device.
pub(super) fn is_whiteout(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

/// Adds `layers` as one image (each on the previous one); returns the top chain id.
pub(super) fn add_image(s: &dyn Snapshotter, first: u32, layers: Vec<Vec<E>>) -> String {
    let mut parent: Option<String> = None;
    for (i, entries) in layers.into_iter().enumerate() {
        let id = chain(first + i as u32);
        s.add_layer(&id, parent.as_deref(), &mut layer(entries))
            .unwrap();
        parent = Some(id);
    }
    parent.unwrap()
}

pub(super) fn read(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

pub(super) fn is_mounted(p: &Path) -> bool {
    mounts::mount_table()
        .unwrap()
        .iter()
        .any(|m| m.mount_point == p)
}

pub(super) fn ino(p: impl AsRef<Path>) -> u64 {
    fs::symlink_metadata(p.as_ref()).unwrap().ino()
}

/// Sorted names in a directory.
pub(super) fn names(dir: impl AsRef<Path>) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.as_ref())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Sum of a tree's allocated bytes, as du counts them.
pub(super) fn du(p: &Path) -> u64 {
    super::tree::disk_usage(p).unwrap()
}

#[test]
fn snapshot_keys_and_chain_ids_are_validated() {
    let root = TestRoot::new();
    let s = root.driver(Driver::Overlay);
    for bad in [
        "",
        "..",
        ".",
        "a/b",
        "../x",
        ".hidden",
        "a b",
        &"k".repeat(129),
    ] {
        assert!(s.prepare(bad, None).is_err(), "key {bad:?} accepted");
        assert!(s.upper_dir(bad).is_err());
        assert!(s.remove(bad).is_err());
    }
    for bad in [
        "sha256:abc",
        "sha256:../../etc",
        "md5:00",
        &format!("sha256:{}", "A".repeat(64)),
    ] {
        assert!(
            s.add_layer(bad, None, &mut layer(vec![])).is_err(),
            "chain id {bad:?} accepted"
        );
        assert!(!s.has_layer(bad));
        assert!(s.remove_layer(bad).is_err());
    }
    s.prepare("ok_Key-1.2", None).unwrap();
}
