//! Snapshots: image layers unpacked once and shared read-only, and per-container writable
//! trees on top of them.
//!
//! Two drivers behind one trait. `overlay` keeps each layer in its own directory and gives each
//! container an upper/work pair over the layer chain, so thirty containers of one image store its
//! layers once. `copy` is chosen where overlay cannot mount (the data root on overlayfs, say):
//! every layer snapshot and container is a full tree. [`detect`] picks one; `info` reports
//! [`Snapshotter::name`] and [`Snapshotter::status`].
//!
//! Layers are keyed by chain id ("sha256:<hex>"), containers by a key ([A-Za-z0-9_.-], no '/',
//! not starting with '.'). Everything lives under `<data root>/snapshots/<driver>/` (layout in
//! `store.rs`); a snapshot appears only once complete, and `cleanup` removes what a crash left.

mod copy;
pub mod mounts;
mod overlay;
mod store;
mod tree;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use copy::CopySnapshotter;
pub use mounts::MountGuard;
pub use overlay::OverlaySnapshotter;
pub use tree::{copy_contents, disk_usage};

use crate::{Error, Result};

/// Environment variable that forces a driver ("overlay" or "copy") when the configuration
/// does not.
pub const DRIVER_ENV: &str = "BERTH_SNAPSHOTTER";

/// A layer snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub chain_id: String,
    pub parent: Option<String>,
    /// Bytes on disk of this snapshot alone (a copy-driver layer holds its whole tree).
    pub size: u64,
}

/// A container (read-write) snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub key: String,
    /// The chain id of the image's top layer; `None` for an empty root (FROM scratch).
    pub parent: Option<String>,
}

/// How `add_layer`'s unpack closure must put the layer at the path it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpackMode {
    /// The path does not exist: create it holding this layer alone, whiteouts in overlay form
    /// (0/0 character devices, trusted.overlay.opaque=y): `layer::apply` with
    /// `WhiteoutMode::Overlay`.
    OverlayDiff,
    /// The path exists and holds the parent's whole tree (empty for a base layer): apply the
    /// layer onto it, deleting what it whites out: `layer::apply_onto` with
    /// `WhiteoutMode::Apply`.
    Flatten,
}

/// A layer unpacked in staging before its place in a chain is known (see
/// [`Snapshotter::unpack_detached`]); dropped unpublished, it is removed.
#[derive(Debug)]
pub struct DetachedLayer {
    stage: Option<PathBuf>,
}

impl DetachedLayer {
    pub(crate) fn new(stage: PathBuf) -> Self {
        DetachedLayer { stage: Some(stage) }
    }

    /// The staging directory, now the caller's to publish or remove.
    pub(crate) fn into_stage(mut self) -> PathBuf {
        self.stage.take().expect("present until taken")
    }
}

impl Drop for DetachedLayer {
    fn drop(&mut self) {
        if let Some(p) = self.stage.take() {
            let _ = tree::remove_any(&p);
        }
    }
}

/// Where a container's changes are read from to make a layer (`layer::diff`'s `DiffSource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffSource {
    /// An overlay upper dir (deletions as 0/0 character devices, replaced directories marked
    /// opaque) and the layer dirs it is stacked on, topmost first.
    Overlay {
        upper: PathBuf,
        lowers: Vec<PathBuf>,
    },
    /// A full tree, to compare with the tree of its base (`None`: compare with nothing).
    Compare { dir: PathBuf, base: Option<PathBuf> },
}

/// The two snapshot drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Overlay,
    Copy,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Copy => "copy",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Driver {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "overlay" | "overlay2" | "overlayfs" => Ok(Driver::Overlay),
            "copy" | "vfs" => Ok(Driver::Copy),
            _ => Err(Error::InvalidArgument(format!(
                "unknown snapshotter {s:?} (want overlay or copy)"
            ))),
        }
    }
}

/// Layer and container snapshots. Every method is safe to call from several threads; creating
/// the same layer twice at once unpacks twice and keeps one.
pub trait Snapshotter: Send + Sync {
    /// "overlay" or "copy".
    fn name(&self) -> &'static str;
    /// The driver's directory, `<data root>/snapshots/<name>`.
    fn root(&self) -> &Path;
    /// Key/value lines for `info` ("Driver Status").
    fn status(&self) -> Vec<(String, String)>;

    fn has_layer(&self, chain_id: &str) -> bool;
    /// Creates the layer snapshot `chain_id` on top of `parent` (which must exist), calling
    /// `unpack(dir, mode)` once to put the layer at `dir` as `mode` says (overlay:
    /// [`UnpackMode::OverlayDiff`], copy: [`UnpackMode::Flatten`]). `dir` is in a private
    /// staging area; the snapshot appears only after `unpack` succeeds, and nothing is kept if
    /// it fails. An existing layer is returned without calling `unpack`.
    fn add_layer(
        &self,
        chain_id: &str,
        parent: Option<&str>,
        unpack: &mut dyn FnMut(&Path, UnpackMode) -> Result<()>,
    ) -> Result<LayerInfo>;
    /// Whether layers can be unpacked before their parent exists ([`Snapshotter::unpack_detached`]):
    /// true when each layer is a directory of its own (overlay), so an image's layers can be
    /// unpacked in parallel, and while the archive holding them is still being read.
    fn supports_detached(&self) -> bool {
        false
    }
    /// Calls `unpack(dir, UnpackMode::OverlayDiff)` to put a layer in staging without knowing
    /// its chain id yet; [`Snapshotter::add_detached_layer`] publishes it. Nothing is kept if
    /// `unpack` fails. Drivers without [`Snapshotter::supports_detached`] refuse.
    fn unpack_detached(
        &self,
        unpack: &mut dyn FnMut(&Path, UnpackMode) -> Result<()>,
    ) -> Result<DetachedLayer> {
        let _ = unpack;
        Err(Error::InvalidArgument(format!(
            "the {} snapshotter cannot unpack detached layers",
            self.name()
        )))
    }
    /// Publishes a detached layer as `chain_id` on top of `parent` (which must exist), as
    /// [`Snapshotter::add_layer`] would have. An existing layer is returned as is (and the
    /// detached one removed).
    fn add_detached_layer(
        &self,
        layer: DetachedLayer,
        chain_id: &str,
        parent: Option<&str>,
    ) -> Result<LayerInfo> {
        let _ = (layer, chain_id, parent);
        Err(Error::InvalidArgument(format!(
            "the {} snapshotter cannot unpack detached layers",
            self.name()
        )))
    }
    fn layer(&self, chain_id: &str) -> Result<LayerInfo>;
    fn layers(&self) -> Result<Vec<LayerInfo>>;
    /// Removes a layer snapshot; absent is fine. Conflict while a layer or container snapshot
    /// still needs it (overlay).
    fn remove_layer(&self, chain_id: &str) -> Result<()>;

    /// Creates the writable snapshot `key` over the layer `parent` (`None`: empty). Conflict if
    /// `key` exists.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<()>;
    /// Mounts the snapshot read-write on `target` (an existing directory).
    fn mount(&self, key: &str, target: &Path) -> Result<MountGuard>;
    /// Where the container's writes land: the overlay upper dir, or the copy's whole tree.
    fn upper_dir(&self, key: &str) -> Result<PathBuf>;
    /// How to compute the container's changes.
    fn diff_source(&self, key: &str) -> Result<DiffSource>;
    /// Bytes on disk the container snapshot adds (its own writes; the copy driver's whole copy).
    fn usage(&self, key: &str) -> Result<u64>;
    fn snapshots(&self) -> Result<Vec<SnapshotInfo>>;
    /// Removes a container snapshot; absent is fine. Conflict while it is mounted.
    fn remove(&self, key: &str) -> Result<()>;

    /// Deletes what a crash left in staging; call once at startup.
    fn cleanup(&self) -> Result<()>;
}

/// Opens `driver` under `<data_root>/snapshots/`, without probing.
pub fn open(data_root: &Path, driver: Driver) -> Result<Box<dyn Snapshotter>> {
    let base = snapshots_dir(data_root)?;
    Ok(match driver {
        Driver::Overlay => Box::new(OverlaySnapshotter::open(base.join("overlay"))?),
        Driver::Copy => Box::new(CopySnapshotter::open(base.join("copy"), None)?),
    })
}

/// Picks the driver for `data_root`: the one named by $BERTH_SNAPSHOTTER if set, else as
/// [`detect_with`] with no preference.
pub fn detect(data_root: &Path) -> Result<Box<dyn Snapshotter>> {
    let preferred = match std::env::var(DRIVER_ENV) {
        Ok(v) if !v.is_empty() => Some(v.parse()?),
        _ => None,
    };
    detect_with(data_root, preferred)
}

/// Picks the driver for `data_root`. A preferred driver is used as asked (overlay is still
/// probed: asking for it where it cannot mount is an error). Otherwise: copy if the data root
/// holds copy snapshots and no overlay ones; overlay if a trial mount under the data root works;
/// else copy, with the reason in its status.
pub fn detect_with(data_root: &Path, preferred: Option<Driver>) -> Result<Box<dyn Snapshotter>> {
    let base = snapshots_dir(data_root)?;
    if preferred == Some(Driver::Copy) {
        return open(data_root, Driver::Copy);
    }
    // Snapshots made by the copy driver earlier stay in use (switching would hide every image).
    if preferred.is_none() && has_layers(&base.join("copy")) && !has_layers(&base.join("overlay")) {
        let why = "the data root already holds copy snapshots".to_string();
        return Ok(Box::new(CopySnapshotter::open(
            base.join("copy"),
            Some(why),
        )?));
    }
    match probe_overlay(&base) {
        Ok(()) => open(data_root, Driver::Overlay),
        Err(why) if preferred == Some(Driver::Overlay) => Err(Error::InvalidArgument(format!(
            "overlay snapshotter unavailable on {}: {why}",
            base.display()
        ))),
        Err(why) => Ok(Box::new(CopySnapshotter::open(
            base.join("copy"),
            Some(why),
        )?)),
    }
}

fn has_layers(driver_dir: &Path) -> bool {
    std::fs::read_dir(driver_dir.join("layers")).is_ok_and(|mut d| d.next().is_some())
}

/// Whether overlay can mount with its layers under `<data_root>/snapshots`; `Err` says why not.
pub fn overlay_supported(data_root: &Path) -> std::result::Result<(), String> {
    let base = snapshots_dir(data_root).map_err(|e| e.to_string())?;
    probe_overlay(&base)
}

fn probe_overlay(base: &Path) -> std::result::Result<(), String> {
    // Leftovers of a probe interrupted by a crash (possibly still mounted).
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("probe-")
                && !name.starts_with(&format!("probe-{}-", std::process::id()))
            {
                let _ = mounts::unmount_all_under(&e.path());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = base.join(format!("probe-{}-{n}", std::process::id()));
    overlay::probe(&dir)
}

/// `<data_root>/snapshots`, created, as an absolute path without symlinks (mount options and
/// /proc/self/mountinfo are compared against it).
fn snapshots_dir(data_root: &Path) -> Result<PathBuf> {
    let dir = data_root.join("snapshots");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create dir", &dir, e))?;
    std::fs::canonicalize(&dir).map_err(|e| Error::io("resolve", &dir, e))
}

/// The filesystem under `path`, named as Docker's info does.
fn backing_fs(path: &Path) -> String {
    let Ok(st) = rustix::fs::statfs(path) else {
        return "unknown".into();
    };
    match st.f_type as u64 {
        0xEF53 => "extfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0x6969 => "nfs".into(),
        0x6573_5546 => "fuse".into(),
        other => format!("{other:#x}"),
    }
}
