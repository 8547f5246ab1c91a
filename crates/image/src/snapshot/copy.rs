//! The copy driver, for hosts where overlay cannot mount (a data root on overlayfs, some
//! network or FUSE filesystems). Each layer snapshot is a self-contained full tree: its parent's
//! tree copied (reflinked where the filesystem can), with the layer applied in place. Each
//! container gets a full copy of its image's top layer, bind-mounted where the caller asks.
//! Costly in disk and time, but it works anywhere.

use std::fs;
use std::path::{Path, PathBuf};

use super::mounts::{self, MountGuard};
use super::store::Store;
use super::tree::{copy_tree, disk_usage};
use super::{DiffSource, LayerInfo, SnapshotInfo, Snapshotter, UnpackMode};
use crate::{Error, Result};

pub struct CopySnapshotter {
    store: Store,
    /// Why overlay was not used, for `info` (None when the copy driver was asked for).
    reason: Option<String>,
}

impl CopySnapshotter {
    /// The driver over `<root>` (a driver directory, e.g. `<data root>/snapshots/copy`).
    pub fn open(root: PathBuf, reason: Option<String>) -> Result<Self> {
        Ok(CopySnapshotter {
            store: Store::open(root)?,
            reason,
        })
    }
}

impl Snapshotter for CopySnapshotter {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn root(&self) -> &Path {
        self.store.root()
    }

    fn status(&self) -> Vec<(String, String)> {
        let mut s = vec![(
            "Backing Filesystem".into(),
            super::backing_fs(self.store.root()),
        )];
        if let Some(r) = &self.reason {
            s.push(("Overlay unavailable".into(), r.clone()));
        }
        s
    }

    fn has_layer(&self, chain_id: &str) -> bool {
        self.store.has_layer(chain_id)
    }

    /// The parent's tree is copied, then `unpack` applies the layer onto the copy in place
    /// (overlay-form whiteouts could not even be created on an overlayfs data root).
    fn add_layer(
        &self,
        chain_id: &str,
        parent: Option<&str>,
        unpack: &mut dyn FnMut(&Path, UnpackMode) -> Result<()>,
    ) -> Result<LayerInfo> {
        let parent_fs = parent
            .map(|p| self.store.layer_dir(p).map(|d| d.join("fs")))
            .transpose()?;
        self.store.add_layer(chain_id, parent, |stage| {
            let tree = stage.join("fs");
            match &parent_fs {
                Some(p) => copy_tree(p, &tree)?,
                None => empty_root(&tree)?,
            }
            unpack(&tree, UnpackMode::Flatten)
        })
    }

    fn layer(&self, chain_id: &str) -> Result<LayerInfo> {
        self.store.layer(chain_id)
    }

    fn layers(&self) -> Result<Vec<LayerInfo>> {
        self.store.layers()
    }

    /// Layers here are self-contained, so removing one never breaks another.
    fn remove_layer(&self, chain_id: &str) -> Result<()> {
        let dir = self.store.layer_dir(chain_id)?;
        self.store.discard(&dir)
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<()> {
        let parent_fs = parent
            .map(|p| self.store.layer_dir(p).map(|d| d.join("fs")))
            .transpose()?;
        self.store.add_snapshot(key, parent, |stage| {
            let tree = stage.join("fs");
            match &parent_fs {
                Some(p) => copy_tree(p, &tree),
                None => empty_root(&tree),
            }
        })
    }

    fn mount(&self, key: &str, target: &Path) -> Result<MountGuard> {
        self.store.snapshot(key)?;
        mounts::bind(&self.store.container_dir(key)?.join("fs"), target)
    }

    /// The container's whole tree: what it changed is found by comparing with its parent.
    fn upper_dir(&self, key: &str) -> Result<PathBuf> {
        self.store.snapshot(key)?;
        Ok(self.store.container_dir(key)?.join("fs"))
    }

    fn diff_source(&self, key: &str) -> Result<DiffSource> {
        let snap = self.store.snapshot(key)?;
        let base = snap
            .parent
            .map(|p| self.store.layer_dir(&p).map(|d| d.join("fs")))
            .transpose()?;
        Ok(DiffSource::Compare {
            dir: self.upper_dir(key)?,
            base,
        })
    }

    fn usage(&self, key: &str) -> Result<u64> {
        self.store.snapshot(key)?;
        disk_usage(&self.store.container_dir(key)?.join("fs"))
    }

    fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        self.store.snapshots()
    }

    fn remove(&self, key: &str) -> Result<()> {
        let dir = self.store.container_dir(key)?;
        self.store.discard(&dir)
    }

    fn cleanup(&self) -> Result<()> {
        self.store.cleanup()
    }
}

/// A root directory as images have it: root-owned, 0755.
fn empty_root(dir: &Path) -> Result<()> {
    fs::create_dir(dir).map_err(|e| Error::io("create dir", dir, e))?;
    fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| Error::io("chmod", dir, e))
}
