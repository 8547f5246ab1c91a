//! Layers: applying a layer archive (tar, tar+gzip, tar+zstd) to a directory, and producing a
//! layer archive from a directory's changes.
//!
//! # Applying
//!
//! [`apply`] streams the archive entry by entry (no layer is ever held in memory: regular files
//! are copied through a fixed buffer, zero blocks become holes) into a fresh staging directory
//! next to `target` and renames it into place when every entry has been applied. Contract:
//! `target` must not exist yet; on success it exists with the layer's content, on any error
//! (including an unsafe entry) nothing is left: neither `target` nor the staging directory.
//! [`apply_onto`] applies a layer on top of an existing directory (the copy snapshotter, which
//! flattens layers into a directory it owns): it is not atomic, and on error the caller discards
//! the directory.
//!
//! Every path is resolved inside the target with `openat2(RESOLVE_IN_ROOT)` relative to a
//! descriptor of the target, so a symlink already there, even one created by an earlier entry of
//! the same layer, is followed as the container would follow it and can never lead a write out
//! (`link -> /` then `link/etc/passwd` writes `target/etc/passwd`). Entries themselves are
//! checked first: a leading `/` is stripped (as Docker does), `..` that climbs above the root,
//! hardlinks to anything not already inside the target, device nodes when they are not allowed
//! and unknown entry types abort the whole operation with [`Error::UnsafeEntry`] naming the
//! entry. Independent layers can be applied in parallel from several threads: nothing here uses
//! process-wide state (no chdir, no umask change).
//!
//! OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) are applied either in place
//! ([`WhiteoutMode::Apply`]) or as overlayfs whiteouts ([`WhiteoutMode::Overlay`]: a 0/0
//! character device and `trusted.overlay.opaque=y`), for a layer unpacked into its own directory
//! to be stacked as an overlay lower.
//!
//! # Producing
//!
//! [`diff`] writes an OCI layer from an overlayfs upper directory or from a directory compared
//! with its base ([`DiffSource`]); [`changes`] lists the same changes as `docker diff` does.
//! Output is deterministic: entries in sorted depth-first order, ownership, modes, mtimes
//! (seconds, as Docker writes them), xattrs as PAX `SCHILY.xattr.*` records, hardlinks within
//! the layer as link entries.
//!
//! [`Error::UnsafeEntry`]: crate::Error::UnsafeEntry

mod apply;
mod compression;
mod diff;
mod fsutil;
mod tar_reader;
mod tar_writer;
mod walk;
mod whiteout;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use apply::{apply, apply_onto};
pub use compression::{compress, decompress, Compression, Compressor};
pub use diff::{changes, diff};
pub use whiteout::{OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX};

/// How OCI whiteouts in a layer are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// Delete the whited-out content in place: the layer is applied on top of its parents'
    /// content in one directory (flattening; the copy snapshotter).
    #[default]
    Apply,
    /// Represent whiteouts as overlayfs does: `.wh.NAME` becomes a 0/0 character device `NAME`,
    /// `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory. For a layer unpacked
    /// into its own directory and stacked with overlayfs.
    Overlay,
}

/// Maps a uid/gid pair from the archive to the pair to store (user-namespace remapping).
pub type IdMap = Arc<dyn Fn(u32, u32) -> (u32, u32) + Send + Sync>;

/// Options of [`apply`] and [`apply_onto`].
#[derive(Clone)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
    /// Create character and block devices from the archive. When false such an entry is an
    /// [`crate::Error::UnsafeEntry`]. (The 0/0 devices made for overlay whiteouts are always
    /// allowed; fifos are always allowed.)
    pub allow_devices: bool,
    /// Set `trusted.*` xattrs found in the archive (otherwise they are skipped).
    pub allow_trusted_xattrs: bool,
    /// Set the owners recorded in the archive (needs CAP_CHOWN). When false every file is owned
    /// by the caller.
    pub preserve_ownership: bool,
    /// Remaps archive uid/gid before they are set (and root for directories created
    /// implicitly).
    pub id_map: Option<IdMap>,
    /// Refuse (instead of following inside the target) a path that goes through a symlink that
    /// is absolute or climbs out with `..`. On by default: an entry written through a symlink
    /// pointing out aborts the layer. Off gives Docker's resolution, where such a symlink is
    /// followed relative to the target root, as the container will see it.
    pub refuse_escaping_symlinks: bool,
    /// `syncfs` the target's filesystem before [`apply`] renames the result into place.
    pub sync: bool,
    /// Start writing file content to disk as it is unpacked, without waiting (large files), so
    /// that a sync afterwards (`sync`, or the caller's) finds little left to write.
    pub writeback: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whiteouts: WhiteoutMode::Apply,
            allow_devices: false,
            allow_trusted_xattrs: false,
            preserve_ownership: true,
            id_map: None,
            refuse_escaping_symlinks: true,
            sync: false,
            writeback: false,
        }
    }
}

impl fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("whiteouts", &self.whiteouts)
            .field("allow_devices", &self.allow_devices)
            .field("allow_trusted_xattrs", &self.allow_trusted_xattrs)
            .field("preserve_ownership", &self.preserve_ownership)
            .field("id_map", &self.id_map.as_ref().map(|_| "<fn>"))
            .field("refuse_escaping_symlinks", &self.refuse_escaping_symlinks)
            .field("sync", &self.sync)
            .field("writeback", &self.writeback)
            .finish()
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Archive entries applied (whiteouts included).
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Character and block devices and fifos from the archive.
    pub specials: u64,
    /// `.wh.NAME` entries.
    pub whiteouts: u64,
    /// `.wh..wh..opq` entries.
    pub opaques: u64,
    /// Bytes of regular-file content.
    pub content_bytes: u64,
    /// Size of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// xattrs skipped: `trusted.*` not allowed, or refused by the filesystem (EPERM/ENOTSUP).
    pub xattrs_skipped: u64,
}

/// What [`diff`] and [`changes`] compare.
#[derive(Debug, Clone)]
pub enum DiffSource<'a> {
    /// An overlayfs upper directory: whiteouts are 0/0 character devices, opaque directories
    /// carry `trusted.overlay.opaque=y`. `lowers` (top first) are the directories it was
    /// stacked on: used to tell added from changed, to leave out directories that were only
    /// copied up, and to list what an opaque directory hides. May be empty. The upper must come
    /// from a mount without `metacopy` and `redirect_dir`.
    Overlay { upper: &'a Path, lowers: &'a [PathBuf] },
    /// `dir` compared with `base` (the copy driver): changed = type, mode, owner, xattrs, and
    /// for non-directories size, mtime, device number or link target differ; what is in `base`
    /// and not in `dir` is deleted. `base: None`: everything in `dir` is added (a base layer).
    Compare { dir: &'a Path, base: Option<&'a Path> },
}

/// What [`diff`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Tar entries written (PAX headers not counted).
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub specials: u64,
    pub whiteouts: u64,
    pub opaques: u64,
    pub content_bytes: u64,
    /// Size of the uncompressed tar stream (before compression).
    pub tar_bytes: u64,
}

/// The kind of a [`Change`], as `docker diff` prints it (A, C, D).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

/// One line of `docker diff`: a path (absolute, from the container's root) and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: PathBuf,
}

impl ChangeKind {
    /// The `Kind` number of Docker's API (`GET /containers/{id}/changes`).
    pub fn docker_kind(self) -> u8 {
        match self {
            ChangeKind::Changed => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }

    /// Docker's letter for the kind.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path.display())
    }
}
