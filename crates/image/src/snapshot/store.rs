//! The on-disk layout both drivers share, and the crash-safe steps over it.
//!
//! ```text
//! <data root>/snapshots/<driver>/
//!     layers/<chain id hex>/{fs/, layer.json}      fs: the layer (overlay) or full tree (copy)
//!     containers/<key>/{snapshot.json, ...}        upper/ work/ (overlay) or fs/ (copy)
//!     staging/<pid>-<n>-<what>/                    work in progress, and trees being removed
//! ```
//!
//! Everything is built in staging and published with one rename, so a layer or container dir
//! exists only when complete; removal renames into staging first, so a half-removed snapshot is
//! never visible either. `cleanup` deletes what a crash left in staging. Every path is derived
//! from a validated chain id or key, never from content.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{RenameFlags, CWD};
use rustix::io::Errno;
use serde::{de::DeserializeOwned, Serialize};

use super::tree::{disk_usage, remove_any, sync_fs};
use super::{mounts, LayerInfo, SnapshotInfo};
use crate::{Error, Result};

const LAYER_META: &str = "layer.json";
const SNAPSHOT_META: &str = "snapshot.json";
/// Overlay stacks at most 500 lower layers; a longer parent chain is corrupt or a loop.
pub(crate) const MAX_DEPTH: usize = 500;

static SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    pub(crate) fn open(root: PathBuf) -> Result<Store> {
        for sub in ["layers", "containers", "staging"] {
            let dir = root.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::io("create dir", &dir, e))?;
        }
        // Absolute and free of symlinks: mount options and mountinfo are compared against it.
        let root = fs::canonicalize(&root).map_err(|e| Error::io("resolve", &root, e))?;
        Ok(Store { root })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn layer_dir(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(chain_dir_name(chain_id)?))
    }

    pub(crate) fn container_dir(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join("containers").join(key))
    }

    pub(crate) fn has_layer(&self, chain_id: &str) -> bool {
        self.layer_dir(chain_id)
            .is_ok_and(|d| d.join(LAYER_META).exists())
    }

    pub(crate) fn layer(&self, chain_id: &str) -> Result<LayerInfo> {
        let dir = self.layer_dir(chain_id)?;
        read_json(&dir.join(LAYER_META)).map_err(|e| match e {
            Error::Io { err, .. } if err.kind() == io::ErrorKind::NotFound => {
                Error::NotFound(format!("layer snapshot {chain_id} not found"))
            }
            e => e,
        })
    }

    /// The chain from `top` down to the base layer (top first), as overlay's lowerdir wants it.
    pub(crate) fn chain(&self, top: &str) -> Result<Vec<LayerInfo>> {
        let mut out = Vec::new();
        let mut next = Some(top.to_string());
        while let Some(id) = next {
            if out.len() == MAX_DEPTH {
                return Err(Error::Malformed(format!(
                    "layer chain of {top} deeper than {MAX_DEPTH}"
                )));
            }
            let info = self.layer(&id)?;
            next = info.parent.clone();
            out.push(info);
        }
        Ok(out)
    }

    pub(crate) fn snapshot(&self, key: &str) -> Result<SnapshotInfo> {
        let dir = self.container_dir(key)?;
        read_json(&dir.join(SNAPSHOT_META)).map_err(|e| match e {
            Error::Io { err, .. } if err.kind() == io::ErrorKind::NotFound => {
                Error::NotFound(format!("container snapshot {key} not found"))
            }
            e => e,
        })
    }

    /// Builds a layer in staging with `build(staging_dir)` (which must create `fs` in it) and
    /// publishes it. A layer that already exists is returned as is, without building.
    pub(crate) fn add_layer(
        &self,
        chain_id: &str,
        parent: Option<&str>,
        build: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<LayerInfo> {
        self.check_layer_parent(chain_id, parent)?;
        if let Ok(info) = self.layer(chain_id) {
            return Ok(info);
        }
        let stage = self.stage("layer")?;
        if let Err(e) = build(&stage) {
            let _ = remove_any(&stage);
            return Err(e);
        }
        self.publish_layer(&stage, chain_id, parent)
    }

    /// Publishes a layer built in the staging directory `stage` (holding `fs`): records its
    /// metadata, makes it durable, renames it into place. `stage` is consumed: on error, or when
    /// the layer exists already (then that one is returned), it is removed.
    pub(crate) fn publish_layer(
        &self,
        stage: &Path,
        chain_id: &str,
        parent: Option<&str>,
    ) -> Result<LayerInfo> {
        let result = (|| {
            self.check_layer_parent(chain_id, parent)?;
            let dest = self.layer_dir(chain_id)?;
            if let Ok(info) = self.layer(chain_id) {
                return Ok((info, None));
            }
            let info = LayerInfo {
                chain_id: chain_id.to_string(),
                parent: parent.map(str::to_string),
                size: disk_usage(&stage.join("fs"))?,
            };
            write_json(&stage.join(LAYER_META), &info)?;
            sync_fs(stage)?;
            Ok((info, Some(dest)))
        })();
        match result {
            Ok((info, Some(dest))) => match self.publish(stage, &dest) {
                Ok(true) => Ok(info),
                // Lost a race with another unpack of the same layer: theirs is as good.
                Ok(false) => self.layer(chain_id),
                Err(e) => {
                    let _ = remove_any(stage);
                    Err(e)
                }
            },
            Ok((info, None)) => {
                remove_any(stage)?;
                Ok(info)
            }
            Err(e) => {
                let _ = remove_any(stage);
                Err(e)
            }
        }
    }

    fn check_layer_parent(&self, chain_id: &str, parent: Option<&str>) -> Result<()> {
        self.layer_dir(chain_id)?;
        if let Some(p) = parent {
            if p == chain_id {
                return Err(Error::InvalidArgument(format!(
                    "layer {chain_id} cannot be its own parent"
                )));
            }
            self.layer(p)?;
        }
        Ok(())
    }

    /// Builds a container snapshot in staging and publishes it; the key must be new.
    pub(crate) fn add_snapshot(
        &self,
        key: &str,
        parent: Option<&str>,
        build: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let dest = self.container_dir(key)?;
        if dest.exists() {
            return Err(Error::Conflict(format!(
                "container snapshot {key} already exists"
            )));
        }
        if let Some(p) = parent {
            self.layer(p)?;
        }
        let stage = self.stage("snapshot")?;
        let result = (|| {
            build(&stage)?;
            let info = SnapshotInfo {
                key: key.to_string(),
                parent: parent.map(str::to_string),
            };
            write_json(&stage.join(SNAPSHOT_META), &info)
        })();
        let published = result.and_then(|()| self.publish(&stage, &dest));
        match published {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Conflict(format!(
                "container snapshot {key} already exists"
            ))),
            Err(e) => {
                let _ = remove_any(&stage);
                Err(e)
            }
        }
    }

    /// A fresh private directory in staging.
    pub(crate) fn stage(&self, what: &str) -> Result<PathBuf> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .root
            .join("staging")
            .join(format!("{}-{n}-{what}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("create dir", &dir, e))?;
        Ok(dir)
    }

    /// Renames `staged` to `dest` unless `dest` exists; false (and `staged` removed) if it did.
    fn publish(&self, staged: &Path, dest: &Path) -> Result<bool> {
        match rustix::fs::renameat_with(CWD, staged, CWD, dest, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST | Errno::NOTEMPTY) => {
                remove_any(staged)?;
                Ok(false)
            }
            Err(e) => Err(Error::io("publish", dest, e.into())),
        }
    }

    /// Takes `dir` out of view with one rename, then deletes it. Absent is fine. Refused while
    /// anything is mounted from it.
    pub(crate) fn discard(&self, dir: &Path) -> Result<()> {
        if !dir.exists() {
            return Ok(());
        }
        if let Some(why) = mounts::in_use(dir)? {
            return Err(Error::Conflict(format!("{} is {why}", dir.display())));
        }
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let grave = self
            .root
            .join("staging")
            .join(format!("{}-{n}-removing", std::process::id()));
        match fs::rename(dir, &grave) {
            Ok(()) => remove_any(&grave),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", dir, e)),
        }
    }

    pub(crate) fn layers(&self) -> Result<Vec<LayerInfo>> {
        let mut out = Vec::new();
        for name in list_dir(&self.root.join("layers"))? {
            out.push(read_json(
                &self.root.join("layers").join(name).join(LAYER_META),
            )?);
        }
        Ok(out)
    }

    pub(crate) fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for name in list_dir(&self.root.join("containers"))? {
            out.push(read_json(
                &self.root.join("containers").join(name).join(SNAPSHOT_META),
            )?);
        }
        Ok(out)
    }

    /// Deletes what a crashed process left in staging (anything not this process's own work in
    /// progress), unmounting leftovers first.
    pub(crate) fn cleanup(&self) -> Result<()> {
        let staging = self.root.join("staging");
        let mine = format!("{}-", std::process::id());
        for name in list_dir(&staging)? {
            if name.starts_with(&mine) {
                continue;
            }
            let path = staging.join(&name);
            mounts::unmount_all_under(&path)?;
            remove_any(&path)?;
        }
        Ok(())
    }

    /// Why `chain_id` cannot go: a layer is built on it or a container snapshot sits on it
    /// (deeper layers of a container's chain are covered by the first check).
    pub(crate) fn layer_in_use(&self, chain_id: &str) -> Result<Option<String>> {
        for l in self.layers()? {
            if l.parent.as_deref() == Some(chain_id) {
                return Ok(Some(format!("layer {} is built on it", l.chain_id)));
            }
        }
        for s in self.snapshots()? {
            if s.parent.as_deref() == Some(chain_id) {
                return Ok(Some(format!("container snapshot {} uses it", s.key)));
            }
        }
        Ok(None)
    }
}

/// "sha256:<64 hex>" -> "<64 hex>", the layer's directory name. Anything else is refused, so
/// no chain id can name a path outside layers/.
pub(crate) fn chain_dir_name(chain_id: &str) -> Result<&str> {
    match chain_id.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(hex)
        }
        _ => Err(Error::InvalidArgument(format!(
            "invalid chain id {chain_id:?}: want sha256:<64 hex digits>"
        ))),
    }
}

/// Container snapshot keys: 1-128 of [A-Za-z0-9_.-], not starting with '.' (so never "." or
/// ".." and never hidden); no '/' can appear.
pub(crate) fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid snapshot key {key:?}"
        )))
    }
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("read dir", dir, e))? {
        let entry = entry.map_err(|e| Error::io("read dir", dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Malformed(format!("{}: {e}", path.display())))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Malformed(e.to_string()))?;
    fs::write(path, bytes).map_err(|e| Error::io("write", path, e))
}
