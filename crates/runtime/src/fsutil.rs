//! Path resolution confined to the container root. Every path taken from the image or the spec is
//! resolved with openat2(RESOLVE_IN_ROOT), so a symlink planted in the rootfs (`/etc -> /host/etc`,
//! `../../..`) resolves inside the root and can never redirect a mount or a write onto the host.
//! Mounts then target the resolved fd through /proc/self/fd/N.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;

use crate::error::{Error, Result};

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::invalid(format!("path {} contains a NUL byte", p.display())))
}

/// openat2(dirfd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).
pub fn openat_in_root(root: RawFd, rel: &Path, flags: libc::c_int, mode: u32) -> std::result::Result<OwnedFd, Errno> {
    let c = CString::new(rel.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & libc::O_CREAT != 0 { mode as u64 } else { 0 },
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: valid C string and open_how struct of the size we pass.
        let r = unsafe {
            libc::syscall(libc::SYS_openat2, root, c.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>())
        };
        if r >= 0 {
            // SAFETY: the kernel returned a fresh descriptor.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        match Errno::last() {
            Errno::EINTR | Errno::EAGAIN => continue,
            e => return Err(e),
        }
    }
}

/// A container path relative to the root ("/a/./b/" -> "a/b"); ".." stays for openat2 to clamp.
pub fn relative(p: &Path) -> PathBuf {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(std::ffi::OsStr::new("..")),
            _ => None,
        })
        .collect()
}

pub fn open_root(root: &Path) -> Result<OwnedFd> {
    let c = cstr(root)?;
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::sys(format!("open rootfs {}", root.display()), Errno::last()));
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates every missing directory of `rel` inside the root, returning an O_PATH fd of the last.
/// A dangling symlink on the way is followed the way the kernel would, inside the root.
pub fn mkdir_all_in_root(root: RawFd, rel: &Path, mode: u32) -> Result<OwnedFd> {
    mkdir_all_depth(root, &relative(rel), mode, 0)
}

fn mkdir_all_depth(root: RawFd, rel: &Path, mode: u32, depth: u32) -> Result<OwnedFd> {
    if depth > 40 {
        return Err(Error::sys(format!("mkdir /{} in container", rel.display()), Errno::ELOOP));
    }
    let comps: Vec<_> = rel.components().collect();
    let mut parent = openat_in_root(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| Error::sys("open container root", e))?;
    let mut cur = PathBuf::new();
    for (i, comp) in comps.iter().enumerate() {
        let prev = cur.clone();
        cur.push(comp);
        match openat_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(f) => {
                parent = f;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys(format!("open /{} in container", cur.display()), e)),
        }
        let name = comp.as_os_str();
        if let Ok(target) = nix::fcntl::readlinkat(&parent, name) {
            // Dangling symlink: create its target (resolved inside the root) and go on from there.
            let mut next = if Path::new(&target).is_absolute() { PathBuf::from("/") } else { prev.clone() };
            next.push(&target);
            for rest in &comps[i + 1..] {
                next.push(rest);
            }
            return mkdir_all_depth(root, &relative(&next), mode, depth + 1);
        }
        let c = cstr(Path::new(name))?;
        // The parent fd was resolved inside the root; mkdirat cannot escape it.
        // SAFETY: valid fd and C string.
        if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), mode) } != 0 && Errno::last() != Errno::EEXIST {
            return Err(Error::sys(format!("mkdir /{} in container", cur.display()), Errno::last()));
        }
        parent = openat_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| Error::sys(format!("open /{} in container", cur.display()), e))?;
    }
    Ok(parent)
}

/// Ensures `rel` exists as a regular file (for bind-mounting a file), creating parents.
pub fn touch_in_root(root: RawFd, rel: &Path) -> Result<OwnedFd> {
    let rel = relative(rel);
    if let Some(parent) = rel.parent() {
        mkdir_all_in_root(root, parent, 0o755)?;
    }
    match openat_in_root(root, &rel, libc::O_PATH, 0) {
        Ok(f) => Ok(f),
        Err(Errno::ENOENT) => {
            openat_in_root(root, &rel, libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW, 0o644)
                .map_err(|e| Error::sys(format!("create /{} in container", rel.display()), e))?;
            openat_in_root(root, &rel, libc::O_PATH, 0)
                .map_err(|e| Error::sys(format!("open /{} in container", rel.display()), e))
        }
        Err(e) => Err(Error::sys(format!("open /{} in container", rel.display()), e)),
    }
}

pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The real path of a resolved fd (for error messages and for mount targets).
pub fn real_path(fd: &OwnedFd) -> PathBuf {
    std::fs::read_link(fd_path(fd)).unwrap_or_else(|_| PathBuf::from(fd_path(fd)))
}

pub fn is_dir(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd).map(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../../../../outside", root.join("rel")).unwrap();
        let rfd = open_root(&root).unwrap();
        let d = mkdir_all_in_root(rfd.as_raw_fd(), Path::new("/abs/sub"), 0o755).unwrap();
        assert!(real_path(&d).starts_with(&root), "{:?}", real_path(&d));
        touch_in_root(rfd.as_raw_fd(), Path::new("/rel/file")).unwrap();
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "nothing may be created outside");
        assert!(root.join(t.path().strip_prefix("/").unwrap()).join("outside/sub").is_dir());
    }

    #[test]
    fn relative_normalises() {
        assert_eq!(relative(Path::new("/a/./b/../c/")), PathBuf::from("a/b/../c"));
    }
}
