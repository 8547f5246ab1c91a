//! Filesystem helpers working relative to directory descriptors: in-root resolution with
//! openat2, xattrs on a name in a directory, a tree removal that never follows a symlink and
//! holds one descriptor whatever the depth.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};

/// How paths inside a root are resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resolve {
    /// Symlinks are followed as if the root were `/` (RESOLVE_IN_ROOT).
    InRoot,
    /// Any symlink that is absolute or climbs above the root fails with EXDEV (RESOLVE_BENEATH).
    Beneath,
}

/// Opens `rel` (relative, '/'-separated, already cleaned) inside `root`; "" is the root. Never
/// crosses a mount point (EXDEV) nor follows a magic link.
pub(crate) fn open_in(root: BorrowedFd<'_>, rel: &[u8], flags: OFlags, resolve: Resolve) -> io::Result<OwnedFd> {
    let path: &[u8] = if rel.is_empty() { b"." } else { rel };
    let how = match resolve {
        Resolve::InRoot => ResolveFlags::IN_ROOT,
        Resolve::Beneath => ResolveFlags::BENEATH,
    } | ResolveFlags::NO_MAGICLINKS
        // Nothing mounted inside the tree leads elsewhere either.
        | ResolveFlags::NO_XDEV;
    let path = cstring(path)?;
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(root, path.as_c_str(), flags | OFlags::CLOEXEC, Mode::empty(), how) {
            // A concurrent rename anywhere on the system can make a lookup with ".." retry.
            Err(rustix::io::Errno::AGAIN) if tries < 64 => tries += 1,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Opens a directory for use as the base of *at calls.
pub(crate) fn open_dir_in(root: BorrowedFd<'_>, rel: &[u8], resolve: Resolve) -> io::Result<OwnedFd> {
    open_in(root, rel, OFlags::PATH | OFlags::DIRECTORY, resolve)
}

pub(crate) fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// `/proc/self/fd/N/NAME`: NAME in the directory `dir`, for calls that have no *at form
/// (xattrs). Only the magic link to `dir` is followed; the l* calls leave NAME itself alone.
fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<CString> {
    use std::os::fd::AsRawFd;
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    cstring(&p)
}

pub(crate) fn set_xattr(dir: BorrowedFd<'_>, name: &[u8], key: &[u8], value: &[u8]) -> io::Result<()> {
    let path = proc_path(dir, name)?;
    let key = cstring(key)?;
    rustix::fs::lsetxattr(path.as_c_str(), key.as_c_str(), value, rustix::fs::XattrFlags::empty())
        .map_err(io::Error::from)
}

pub(crate) fn get_xattr(dir: BorrowedFd<'_>, name: &[u8], key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let path = proc_path(dir, name)?;
    let key = cstring(key)?;
    get_xattr_path(&path, &key)
}

fn get_xattr_path(path: &CStr, key: &CStr) -> io::Result<Option<Vec<u8>>> {
    loop {
        let size = match rustix::fs::lgetxattr_query(path, key) {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if size == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut buf = vec![0u8; size];
        match rustix::fs::lgetxattr(path, key, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            // It grew between the two calls.
            Err(rustix::io::Errno::RANGE) => continue,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Every xattr of NAME in `dir` (not following a symlink), sorted by name.
pub(crate) fn list_xattrs(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let path = proc_path(dir, name)?;
    let names = loop {
        let size = match rustix::fs::llistxattr_query(path.as_c_str()) {
            Ok(n) => n,
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match rustix::fs::llistxattr(path.as_c_str(), &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                break buf;
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for key in names.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let ckey = cstring(key)?;
        if let Some(value) = get_xattr_path(&path, &ckey)? {
            out.push((key.to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// lstat of NAME in `dir`; None when it does not exist.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<rustix::fs::Stat>> {
    let name = cstring(name)?;
    match rustix::fs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn is_dir(st: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// The names in a directory (without `.` and `..`), sorted bytewise.
pub(crate) fn read_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let fd = rustix::fs::openat(dir, c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let mut names = Vec::new();
    let mut d = Dir::new(fd)?;
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// Opens the directory NAME in `dir` without following a symlink.
pub(crate) fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let name = cstring(name)?;
    rustix::fs::openat(
        dir,
        name.as_c_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Removes NAME in `dir` and, if it is a directory, everything under it. Never follows a
/// symlink; holds one directory descriptor at a time (it climbs back with `..`, which is safe in
/// a tree only this process changes). A missing NAME is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let cname = cstring(name)?;
    match rustix::fs::unlinkat(dir, cname.as_c_str(), AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    match lstat_at(dir, name)? {
        None => return Ok(()),
        Some(st) if !is_dir(&st) => {
            return rustix::fs::unlinkat(dir, cname.as_c_str(), AtFlags::empty()).map_err(Into::into)
        }
        Some(_) => {}
    }
    // Depth-first: each level keeps the names of its subdirectories still to visit.
    struct Level {
        name: CString,
        subdirs: Vec<CString>,
    }
    let mut cur = open_subdir(dir, name)?;
    let mut stack = vec![Level { name: cname.clone(), subdirs: clear_files(cur.as_fd())? }];
    loop {
        let top = stack.last_mut().expect("stack holds the start");
        if let Some(sub) = top.subdirs.pop() {
            let next = open_subdir(cur.as_fd(), sub.as_bytes())?;
            let subdirs = clear_files(next.as_fd())?;
            cur = next;
            stack.push(Level { name: sub, subdirs });
            continue;
        }
        let done = stack.pop().expect("non-empty");
        if stack.is_empty() {
            drop(cur);
            return rustix::fs::unlinkat(dir, done.name.as_c_str(), AtFlags::REMOVEDIR).map_err(Into::into);
        }
        let parent = rustix::fs::openat(
            cur.as_fd(),
            c"..",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        rustix::fs::unlinkat(parent.as_fd(), done.name.as_c_str(), AtFlags::REMOVEDIR)?;
        cur = parent;
    }
}

/// Unlinks every non-directory in `dir`; returns the names of its subdirectories.
fn clear_files(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut subdirs = Vec::new();
    for name in read_names(dir)? {
        let c = cstring(&name)?;
        match rustix::fs::unlinkat(dir, c.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => subdirs.push(c),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(subdirs)
}
