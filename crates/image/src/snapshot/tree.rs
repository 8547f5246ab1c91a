//! Whole-tree operations for snapshots: a faithful copy (reflink, else in-kernel copy), disk
//! usage counted once per inode, and removal. Walks use lstat and never follow a symlink, so
//! image content cannot steer a copy or a removal outside the tree it belongs to. The trees are
//! private to the snapshotter while these run (staging dirs, immutable layers).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::buffer::spare_capacity;
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};
use rustix::io::Errno;

use crate::{Error, Result};

/// Overlay's own xattrs (opaque markers, redirects...) describe a layer's place in a stack:
/// they mean nothing in a copy (and overlayfs refuses them), so they are not copied.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

fn ioerr<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(step, path, e)
}

fn errno<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> Error + 'a {
    move |e| Error::io(step, path, e.into())
}

/// Copies the directory `src` to `dst` (which must not exist), preserving file types (devices,
/// fifos, sockets, symlinks), ownership, modes (setuid included), xattrs, hard links within the
/// tree and timestamps. File data is reflinked where the filesystem can, else copied in-kernel.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(src).map_err(ioerr("stat", src))?;
    if !meta.is_dir() {
        return Err(Error::Malformed(format!(
            "{}: not a directory",
            src.display()
        )));
    }
    let mut links = HashMap::new();
    copy_entry(src, dst, &meta, &mut links)
}

/// Copies what the directory `src` holds into the existing directory `dst` and gives `dst`
/// the owner, mode, xattrs and times of `src`: a volume filled with the image's content at its
/// mount point (Docker's copy-up). `src` may be a `/proc/self/fd/N` path of a directory opened
/// safely; below it nothing is followed.
pub fn copy_contents(src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::metadata(src).map_err(ioerr("stat", src))?;
    if !meta.is_dir() {
        return Err(Error::Malformed(format!("{}: not a directory", src.display())));
    }
    let mut links = HashMap::new();
    for entry in fs::read_dir(src).map_err(ioerr("read dir", src))? {
        let entry = entry.map_err(ioerr("read dir", src))?;
        let (s, d) = (entry.path(), dst.join(entry.file_name()));
        let m = fs::symlink_metadata(&s).map_err(ioerr("stat", &s))?;
        copy_entry(&s, &d, &m, &mut links)?;
    }
    copy_metadata(src, dst, &meta)
}

/// Hard links already copied: source (dev, inode) -> the first destination path.
type Links = HashMap<(u64, u64), PathBuf>;

fn copy_entry(src: &Path, dst: &Path, meta: &Metadata, links: &mut Links) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_dir() {
        fs::create_dir(dst).map_err(ioerr("create dir", dst))?;
        for entry in fs::read_dir(src).map_err(ioerr("read dir", src))? {
            let entry = entry.map_err(ioerr("read dir", src))?;
            let (s, d) = (entry.path(), dst.join(entry.file_name()));
            let m = fs::symlink_metadata(&s).map_err(ioerr("stat", &s))?;
            copy_entry(&s, &d, &m, links)?;
        }
        // Last, so copying the content does not bump the directory's mtime again.
        return copy_metadata(src, dst, meta);
    }
    let id = (meta.dev(), meta.ino());
    if meta.nlink() > 1 {
        if let Some(first) = links.get(&id) {
            return fs::hard_link(first, dst).map_err(ioerr("hard link", dst));
        }
    }
    if ft.is_file() {
        copy_data(src, dst)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(ioerr("read link", src))?;
        std::os::unix::fs::symlink(target, dst).map_err(ioerr("symlink", dst))?;
    } else {
        let kind = if ft.is_char_device() {
            FileType::CharacterDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else if ft.is_fifo() {
            FileType::Fifo
        } else {
            FileType::Socket
        };
        rustix::fs::mknodat(CWD, dst, kind, Mode::from_raw_mode(0o600), meta.rdev())
            .map_err(errno("mknod", dst))?;
    }
    copy_metadata(src, dst, meta)?;
    if meta.nlink() > 1 {
        links.insert(id, dst.to_path_buf());
    }
    Ok(())
}

/// File data: a reflink (btrfs, xfs) shares the extents; otherwise copy_file_range copies in
/// the kernel; a filesystem that supports neither gets a plain read/write loop.
fn copy_data(src: &Path, dst: &Path) -> Result<()> {
    let mut from = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
        .map_err(ioerr("open", src))?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)
        .map_err(ioerr("create", dst))?;
    if rustix::fs::ioctl_ficlone(&to, &from).is_ok() {
        return Ok(());
    }
    loop {
        match rustix::fs::copy_file_range(&from, None, &to, None, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => break,
            Err(e) => return Err(Error::io("copy", dst, e.into())),
        }
    }
    // The file offsets are where copy_file_range stopped; carry on from there.
    io::copy(&mut from, &mut to).map_err(ioerr("copy", dst))?;
    Ok(())
}

/// Owner, mode, xattrs and times of `src` onto `dst`. In that order: chown clears setuid bits
/// and security.capability, so mode and xattrs follow it; times go last.
fn copy_metadata(src: &Path, dst: &Path, meta: &Metadata) -> Result<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(ioerr("chown", dst))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(dst, Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(ioerr("chmod", dst))?;
    }
    copy_xattrs(src, dst)?;
    let ts = |sec: i64, nsec: i64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    let times = Timestamps {
        last_access: ts(meta.atime(), meta.atime_nsec()),
        last_modification: ts(meta.mtime(), meta.mtime_nsec()),
    };
    rustix::fs::utimensat(CWD, dst, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno("set times", dst))
}

fn copy_xattrs(src: &Path, dst: &Path) -> Result<()> {
    let names = list_xattrs(src)?;
    for name in &names {
        if name.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        let Some(value) = get_xattr(src, name)? else {
            continue;
        };
        match rustix::fs::lsetxattr(
            dst,
            name.as_slice(),
            &value,
            rustix::fs::XattrFlags::empty(),
        ) {
            Ok(()) => {}
            // A filesystem without this namespace (rare: trees stay on one filesystem).
            Err(Errno::OPNOTSUPP) => {}
            Err(e) => {
                return Err(Error::io(
                    format!("set xattr {}", String::from_utf8_lossy(name)),
                    dst,
                    e.into(),
                ))
            }
        }
    }
    Ok(())
}

fn list_xattrs(path: &Path) -> Result<Vec<Vec<u8>>> {
    loop {
        let size = match rustix::fs::llistxattr_query(path) {
            Ok(n) => n,
            Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list xattrs", path, e.into())),
        };
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = Vec::with_capacity(size);
        match rustix::fs::llistxattr(path, spare_capacity(&mut buf)) {
            Ok(_) => {
                return Ok(buf
                    .split(|&b| b == 0)
                    .filter(|n| !n.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect())
            }
            Err(Errno::RANGE) => continue, // grew meanwhile
            Err(e) => return Err(Error::io("list xattrs", path, e.into())),
        }
    }
}

/// The value of one xattr; `None` when it does not exist.
pub(crate) fn get_xattr(path: &Path, name: &[u8]) -> Result<Option<Vec<u8>>> {
    loop {
        let size = match rustix::fs::lgetxattr_query(path, name) {
            Ok(n) => n,
            Err(Errno::NODATA | Errno::OPNOTSUPP) => return Ok(None),
            Err(e) => return Err(Error::io("get xattr", path, e.into())),
        };
        if size == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut buf = Vec::with_capacity(size);
        match rustix::fs::lgetxattr(path, name, spare_capacity(&mut buf)) {
            Ok(_) => return Ok(Some(buf)),
            Err(Errno::RANGE) => continue,
            Err(Errno::NODATA) => return Ok(None),
            Err(e) => return Err(Error::io("get xattr", path, e.into())),
        }
    }
}

/// Bytes on disk under `path` (allocated blocks), each inode counted once however many links
/// it has, staying on `path`'s filesystem (a mount inside, such as a live rootfs, is skipped).
pub fn disk_usage(path: &Path) -> Result<u64> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("stat", path, e)),
    };
    let mut seen = HashSet::new();
    let mut total = meta.blocks() * 512;
    if !meta.is_dir() {
        return Ok(total);
    }
    let dev = meta.dev();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(ioerr("read dir", &dir))? {
            let entry = entry.map_err(ioerr("read dir", &dir))?;
            let m = entry
                .metadata()
                .map_err(|e| Error::io("stat", entry.path(), e))?;
            if m.dev() != dev {
                continue;
            }
            if m.nlink() > 1 && !m.is_dir() && !seen.insert(m.ino()) {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(total)
}

/// Removes whatever is at `path` (a tree, a file, a symlink itself); absent is fine.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("stat", path, e)),
    };
    let r = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Flushes the filesystem holding `path` so what was written under it survives a crash before
/// it is published by a rename.
pub(crate) fn sync_fs(path: &Path) -> Result<()> {
    let dir = File::open(path).map_err(ioerr("open", path))?;
    rustix::fs::syncfs(&dir).map_err(errno("syncfs", path))
}
