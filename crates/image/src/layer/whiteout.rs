//! OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) and their overlayfs form (a 0/0 character device;
//! `trusted.overlay.opaque=y`).

use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::{FileType, Mode, Stat};

use super::fsutil;

/// Prefix of a whiteout entry: `.wh.NAME` deletes NAME from the layers below.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Prefix of whiteout-metadata names (aufs); only the opaque marker below has a meaning.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The entry that makes its directory opaque: nothing below it in lower layers shows.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Prefix of overlayfs's own xattrs, never carried in a layer.
pub(crate) const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// What a file name means as a whiteout.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary name.
    No,
    /// `.wh..wh..opq`.
    Opaque,
    /// Another `.wh..wh.*` name (aufs metadata): ignored.
    Meta,
    /// `.wh.NAME`: NAME is deleted.
    Remove(&'a [u8]),
}

/// Classifies the last component of an entry's path.
pub(crate) fn classify(base: &[u8]) -> Whiteout<'_> {
    if base == OPAQUE_WHITEOUT.as_bytes() {
        Whiteout::Opaque
    } else if base.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
        Whiteout::Meta
    } else if let Some(name) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        Whiteout::Remove(name)
    } else {
        Whiteout::No
    }
}

/// An overlayfs whiteout: a character device with device number 0/0.
pub(crate) fn is_overlay_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// Creates the overlayfs whiteout NAME in `dir`.
pub(crate) fn make_overlay_whiteout(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let c = fsutil::cstring(name)?;
    rustix::fs::mknodat(dir, c.as_c_str(), FileType::CharacterDevice, Mode::empty(), rustix::fs::makedev(0, 0))
        .map_err(io::Error::from)
}

/// Marks the directory NAME in `dir` (`.` for `dir` itself) opaque for overlayfs.
pub(crate) fn set_overlay_opaque(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    fsutil::set_xattr(dir, name, OVERLAY_OPAQUE_XATTR.as_bytes(), b"y")
}

/// Whether the directory NAME in `dir` is marked opaque for overlayfs.
pub(crate) fn is_overlay_opaque(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<bool> {
    match fsutil::get_xattr(dir, name, OVERLAY_OPAQUE_XATTR.as_bytes()) {
        Ok(v) => Ok(v.as_deref() == Some(b"y")),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_whiteout_names() {
        assert_eq!(classify(b"a"), Whiteout::No);
        assert_eq!(classify(b".wh.a"), Whiteout::Remove(b"a"));
        assert_eq!(classify(b".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(classify(b".wh..wh.plnk"), Whiteout::Meta);
        assert_eq!(classify(b".wh."), Whiteout::Remove(b""));
    }
}
