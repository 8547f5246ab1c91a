//! The overlay driver: each layer unpacked once into its own directory (overlay whiteouts kept),
//! shared read-only as a lower layer by every image and container built on it; each container
//! gets its own upper and work directories.
//!
//! Mounting uses the new mount API with one `lowerdir+` per layer (kernel >= 6.8), so the
//! number of layers is not bounded by mount(2)'s one-page option string. Older kernels get
//! mount(2); when the absolute paths do not fit a page, each layer is named by a short
//! /proc/self/fd/N link to an open directory instead, which overlay resolves at mount time.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::io::Errno;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags};

use super::mounts::{self, MountGuard};
use super::store::Store;
use super::tree::{disk_usage, remove_any};
use super::{DetachedLayer, DiffSource, LayerInfo, SnapshotInfo, Snapshotter, UnpackMode};
use crate::{Error, Result};

/// Options every container mount gets. index=off, as Docker: the index records which lower
/// inodes an upper was made over, so a layer deleted and pulled again would fail the mount.
/// redirect_dir and metacopy off: an upper must hold whole files and real directory renames for
/// `layer::diff` to read a container's changes from it.
const FIXED_OPTIONS: &[(&str, &str)] = &[
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
];

/// mount(2) copies at most one page of options.
const MOUNT_DATA_MAX: usize = 4095;
/// fsconfig copies at most 256 bytes of a string value, terminator included.
const FSCONFIG_VALUE_MAX: usize = 255;

pub struct OverlaySnapshotter {
    store: Store,
    /// Tests force mount(2) to exercise the path older kernels take.
    pub(super) legacy_mount_only: bool,
}

impl OverlaySnapshotter {
    /// The driver over `<root>` (a driver directory, e.g. `<data root>/snapshots/overlay`).
    /// Does not check that overlay can mount; [`super::detect`] does.
    pub fn open(root: PathBuf) -> Result<Self> {
        Ok(OverlaySnapshotter {
            store: Store::open(root)?,
            legacy_mount_only: false,
        })
    }

    fn lower_dirs(&self, snap: &SnapshotInfo, container: &Path) -> Result<Vec<PathBuf>> {
        match &snap.parent {
            Some(top) => {
                let chain = self.store.chain(top)?;
                chain
                    .iter()
                    .map(|l| Ok(self.store.layer_dir(&l.chain_id)?.join("fs")))
                    .collect()
            }
            // Overlay needs a lower layer; a snapshot with no image gets an empty one.
            None => Ok(vec![container.join("empty")]),
        }
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn root(&self) -> &Path {
        self.store.root()
    }

    fn status(&self) -> Vec<(String, String)> {
        vec![(
            "Backing Filesystem".into(),
            super::backing_fs(self.store.root()),
        )]
    }

    fn has_layer(&self, chain_id: &str) -> bool {
        self.store.has_layer(chain_id)
    }

    fn add_layer(
        &self,
        chain_id: &str,
        parent: Option<&str>,
        unpack: &mut dyn FnMut(&Path, UnpackMode) -> Result<()>,
    ) -> Result<LayerInfo> {
        self.store.add_layer(chain_id, parent, |stage| {
            unpack(&stage.join("fs"), UnpackMode::OverlayDiff)
        })
    }

    /// Each layer is its own directory with overlay-form whiteouts: it never needs its parent.
    fn supports_detached(&self) -> bool {
        true
    }

    fn unpack_detached(
        &self,
        unpack: &mut dyn FnMut(&Path, UnpackMode) -> Result<()>,
    ) -> Result<DetachedLayer> {
        let stage = self.store.stage("layer")?;
        match unpack(&stage.join("fs"), UnpackMode::OverlayDiff) {
            Ok(()) => Ok(DetachedLayer::new(stage)),
            Err(e) => {
                let _ = remove_any(&stage);
                Err(e)
            }
        }
    }

    fn add_detached_layer(
        &self,
        layer: DetachedLayer,
        chain_id: &str,
        parent: Option<&str>,
    ) -> Result<LayerInfo> {
        self.store
            .publish_layer(&layer.into_stage(), chain_id, parent)
    }

    fn layer(&self, chain_id: &str) -> Result<LayerInfo> {
        self.store.layer(chain_id)
    }

    fn layers(&self) -> Result<Vec<LayerInfo>> {
        self.store.layers()
    }

    fn remove_layer(&self, chain_id: &str) -> Result<()> {
        let dir = self.store.layer_dir(chain_id)?;
        if let Some(why) = self.store.layer_in_use(chain_id)? {
            return Err(Error::Conflict(format!(
                "layer snapshot {chain_id} is in use: {why}"
            )));
        }
        self.store.discard(&dir)
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<()> {
        self.store.add_snapshot(key, parent, |stage| {
            let mut dirs = vec!["upper", "work"];
            if parent.is_none() {
                dirs.push("empty");
            }
            for d in dirs {
                let p = stage.join(d);
                fs::create_dir(&p).map_err(|e| Error::io("create dir", &p, e))?;
            }
            // The container's root directory is the upper's: what images normally have.
            let upper = stage.join("upper");
            fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(|e| Error::io("chmod", &upper, e))
        })
    }

    fn mount(&self, key: &str, target: &Path) -> Result<MountGuard> {
        let snap = self.store.snapshot(key)?;
        let dir = self.store.container_dir(key)?;
        let lowers = self.lower_dirs(&snap, &dir)?;
        mount_overlay(
            &lowers,
            &dir.join("upper"),
            &dir.join("work"),
            target,
            self.legacy_mount_only,
        )?;
        Ok(MountGuard::new(target.to_path_buf()))
    }

    fn upper_dir(&self, key: &str) -> Result<PathBuf> {
        self.store.snapshot(key)?;
        Ok(self.store.container_dir(key)?.join("upper"))
    }

    fn diff_source(&self, key: &str) -> Result<DiffSource> {
        let snap = self.store.snapshot(key)?;
        let dir = self.store.container_dir(key)?;
        let lowers = match snap.parent {
            Some(_) => self.lower_dirs(&snap, &dir)?,
            None => Vec::new(),
        };
        Ok(DiffSource::Overlay {
            upper: dir.join("upper"),
            lowers,
        })
    }

    fn usage(&self, key: &str) -> Result<u64> {
        self.store.snapshot(key)?;
        let dir = self.store.container_dir(key)?;
        Ok(disk_usage(&dir.join("upper"))? + disk_usage(&dir.join("work"))?)
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

/// Mounts an overlay of `lowers` (topmost first) with `upper`/`work` on `target`.
pub(crate) fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    legacy_only: bool,
) -> Result<()> {
    let mut first_log = String::new();
    if !legacy_only {
        match mount_fsconfig(lowers, upper, work, target) {
            Ok(()) => return Ok(()),
            // No new mount API, or an overlay without lowerdir+ (< 6.8): use mount(2).
            Err(
                e @ MountError {
                    errno: Errno::NOSYS | Errno::INVAL | Errno::PERM,
                    ..
                },
            ) => first_log = e.log,
            Err(e) => return Err(e.into_error(target)),
        }
    }
    mount_legacy(lowers, upper, work, target).map_err(|mut e| {
        // mount(2) has no log; what fsconfig was told is usually the real reason.
        if e.log.is_empty() {
            e.log = first_log;
        }
        e.into_error(target)
    })
}

struct MountError {
    errno: Errno,
    step: &'static str,
    /// What the kernel logged about the failure (the fs context's message log).
    log: String,
}

impl MountError {
    fn into_error(self, target: &Path) -> Error {
        let step = if self.log.is_empty() {
            format!("mount overlay ({})", self.step)
        } else {
            format!("mount overlay ({}: {})", self.step, self.log)
        };
        Error::io(step, target, self.errno.into())
    }
}

fn mount_fsconfig(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), MountError> {
    let fail = |step| {
        move |errno| MountError {
            errno,
            step,
            log: String::new(),
        }
    };
    let fs =
        rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(fail("fsopen"))?;
    let with_log = |step: &'static str| {
        let fs = &fs;
        move |errno| MountError {
            errno,
            step,
            log: read_fs_log(fs),
        }
    };
    // Paths too long for one fsconfig value are named through an open descriptor.
    let mut held = Vec::new();
    for lower in lowers {
        let value = short_name(lower, FSCONFIG_VALUE_MAX, &mut held).map_err(fail("open lower"))?;
        rustix::mount::fsconfig_set_string(&fs, "lowerdir+", value.as_str())
            .map_err(with_log("lowerdir+"))?;
    }
    let value = short_name(upper, FSCONFIG_VALUE_MAX, &mut held).map_err(fail("open upper"))?;
    rustix::mount::fsconfig_set_string(&fs, "upperdir", value.as_str())
        .map_err(with_log("upperdir"))?;
    let value = short_name(work, FSCONFIG_VALUE_MAX, &mut held).map_err(fail("open work"))?;
    rustix::mount::fsconfig_set_string(&fs, "workdir", value.as_str())
        .map_err(with_log("workdir"))?;
    for (key, value) in FIXED_OPTIONS {
        // Best effort: a kernel too old for one of them does not have the feature either.
        let _ = rustix::mount::fsconfig_set_string(&fs, *key, *value);
    }
    rustix::mount::fsconfig_create(&fs).map_err(with_log("create"))?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(with_log("fsmount"))?;
    rustix::mount::move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(fail("move_mount"))
}

fn mount_legacy(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), MountError> {
    let fail = |step| {
        move |errno| MountError {
            errno,
            step,
            log: String::new(),
        }
    };
    let all: Vec<&Path> = lowers
        .iter()
        .map(PathBuf::as_path)
        .chain([upper, work])
        .collect();
    // ':' and ',' separate options and layers; such paths, or too many, go by descriptor.
    let plain = all
        .iter()
        .all(|p| p.to_str().is_some_and(|s| !s.contains([':', ',', '\\'])));
    let mut names: Vec<String> = all
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut held = Vec::new();
    if !plain || legacy_options(&names).len() > MOUNT_DATA_MAX {
        names = all
            .iter()
            .map(|p| short_name(p, 0, &mut held))
            .collect::<Result<_, _>>()
            .map_err(fail("open layer"))?;
    }
    let data = legacy_options(&names);
    if data.len() > MOUNT_DATA_MAX {
        return Err(MountError {
            errno: Errno::TOOBIG,
            step: "too many layers for mount(2)",
            log: String::new(),
        });
    }
    let data = std::ffi::CString::new(data).map_err(|_| fail("options")(Errno::INVAL))?;
    let r = rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        Some(data.as_c_str()),
    );
    // The descriptors named in the options had to stay open until the kernel resolved them.
    drop(held);
    r.map_err(fail("mount"))
}

/// Options for mount(2) from layer names: the lower ones (topmost first), then upper and work.
fn legacy_options(names: &[String]) -> String {
    let (lowers, rest) = names.split_at(names.len() - 2);
    let fixed: String = FIXED_OPTIONS
        .iter()
        .map(|(k, v)| format!(",{k}={v}"))
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}{fixed}",
        lowers.join(":"),
        rest[0],
        rest[1]
    )
}

/// `path` itself when it fits in `max` bytes (0: always use a descriptor), else
/// /proc/self/fd/N for a directory descriptor kept in `held`.
fn short_name(path: &Path, max: usize, held: &mut Vec<OwnedFd>) -> Result<String, Errno> {
    if let Some(s) = path.to_str() {
        if max > 0 && s.len() <= max {
            return Ok(s.to_string());
        }
    }
    let fd: OwnedFd = File::open(path)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?
        .into();
    let name = format!("/proc/self/fd/{}", fd.as_raw_fd());
    held.push(fd);
    Ok(name)
}

/// The messages the kernel queued on an fs context (why a parameter or create failed).
fn read_fs_log(fs: &OwnedFd) -> String {
    let mut file = match fs.try_clone() {
        Ok(fd) => File::from(fd),
        Err(_) => return String::new(),
    };
    let mut lines = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        lines.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
    }
    lines.join("; ")
}

/// Mounts a small overlay under `probe_dir` (one whiteout, one write) to learn whether this
/// filesystem can hold overlay layers; `Err` says why not.
pub(crate) fn probe(probe_dir: &Path) -> std::result::Result<(), String> {
    let run = || -> Result<()> {
        let d = |n: &str| probe_dir.join(n);
        for n in ["lower1", "lower2", "upper", "work", "merged"] {
            fs::create_dir_all(d(n)).map_err(|e| Error::io("create dir", d(n), e))?;
        }
        fs::write(d("lower1/kept"), b"x").map_err(|e| Error::io("write", d("lower1/kept"), e))?;
        fs::write(d("lower1/gone"), b"x").map_err(|e| Error::io("write", d("lower1/gone"), e))?;
        rustix::fs::mknodat(
            CWD,
            d("lower2/gone"),
            rustix::fs::FileType::CharacterDevice,
            0o600.into(),
            0,
        )
        .map_err(|e| Error::io("mknod whiteout", d("lower2/gone"), e.into()))?;
        mount_overlay(
            &[d("lower2"), d("lower1")],
            &d("upper"),
            &d("work"),
            &d("merged"),
            false,
        )?;
        let guard = MountGuard::new(d("merged"));
        let ok = d("merged/kept").exists() && !d("merged/gone").exists();
        fs::write(d("merged/new"), b"x").map_err(|e| Error::io("write", d("merged/new"), e))?;
        guard.unmount()?;
        if !ok || !d("upper/new").exists() {
            return Err(Error::Malformed(
                "overlay mounted but does not behave as overlay".into(),
            ));
        }
        Ok(())
    };
    let r = run();
    let _ = mounts::unmount_all_under(probe_dir);
    let _ = fs::remove_dir_all(probe_dir);
    r.map_err(|e| e.to_string())
}
