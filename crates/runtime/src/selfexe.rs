//! Guard against the CVE-2019-5736 class: a container that gets the runtime's own binary
//! executed inside it (an image whose program is a `#!/proc/self/exe` script or a symlink to
//! /proc/self/exe) could reopen that binary through /proc/self/exe and overwrite it on the host.
//! Before it creates or enters a container, the runtime re-executes itself from a read-only view
//! of its binary: a detached, read-only bind mount of the file (open_tree + mount_setattr: no copy,
//! the page cache is shared, it vanishes with the last process using it), or where the kernel or
//! privileges do not allow that, a sealed in-memory copy. /proc/self/exe then never refers to a
//! writable host file.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;

use crate::error::{Error, Result};

const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether this process's binary cannot be written through /proc/self/exe: a sealed copy, or a
/// file on a read-only mount.
pub fn is_protected() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else { return false };
    // SAFETY: fcntl on a valid fd.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return true;
    }
    nix::sys::statvfs::fstatvfs(&f).is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// A detached read-only bind mount of the running binary (needs CAP_SYS_ADMIN).
pub fn readonly_view() -> Result<OwnedFd> {
    readonly_view_of(c"/proc/self/exe")
}

fn readonly_view_of(path: &std::ffi::CStr) -> Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    // SAFETY: valid C string; flags only.
    let fd = unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint)
    };
    if fd < 0 {
        return Err(Error::sys("clone a mount of the runtime binary", Errno::last()));
    }
    // SAFETY: fresh descriptor.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    crate::rootfs::mount_setattr(&tree, crate::mountopts::MOUNT_ATTR_RDONLY | crate::mountopts::MOUNT_ATTR_NOSUID | crate::mountopts::MOUNT_ATTR_NODEV, 0)
        .map_err(|e| Error::sys("make the runtime binary's mount read-only", e))?;
    Ok(tree)
}

/// A sealed memfd holding a copy of the running binary.
pub fn sealed_copy() -> Result<OwnedFd> {
    sealed_copy_of(std::path::Path::new("/proc/self/exe"))
}

fn sealed_copy_of(path: &std::path::Path) -> Result<OwnedFd> {
    let src = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = src.metadata().map_err(|e| Error::io("stat", path, e))?.len() as usize;
    // SAFETY: valid C string and flags.
    let fd = unsafe { libc::memfd_create(c"berth-runc".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(Error::sys("memfd_create for the runtime binary", Errno::last()));
    }
    // SAFETY: fresh descriptor.
    let mem = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut left = len;
    while left > 0 {
        // In-kernel copy from the page cache: no user-space buffer.
        // SAFETY: valid fds; null offsets use the file positions.
        let n = unsafe { libc::sendfile(mem.as_raw_fd(), src.as_raw_fd(), std::ptr::null_mut(), left) };
        match n {
            n if n > 0 => left -= n as usize,
            0 => break,
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(Error::sys("copy the runtime binary into a memfd", Errno::last())),
        }
    }
    // SAFETY: fcntl on a valid fd.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(Error::sys("seal the runtime binary copy", Errno::last()));
    }
    Ok(mem)
}

/// Re-executes the current command line from a protected view of the binary, unless already
/// running from one. Returns only on failure.
pub fn reexec_protected() -> Result<()> {
    if is_protected() {
        return Ok(());
    }
    let view = match readonly_view() {
        Ok(v) => v,
        Err(_) => sealed_copy()?,
    };
    let cs = |v: Vec<OsString>| -> Vec<CString> { v.into_iter().filter_map(|s| CString::new(s.into_vec()).ok()).collect() };
    let args = cs(std::env::args_os().collect());
    let env = cs(std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect());
    let err = nix::unistd::execveat(&view, c"", &args, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH).unwrap_err();
    Err(Error::sys("re-execute the runtime from a read-only view of its binary", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A file nobody executes stands in for the runtime binary: the running test binary itself
    // would answer ETXTBSY before the protection is even consulted.
    fn victim() -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("berth-runc");
        std::fs::write(&p, b"\x7fELF pretend binary").unwrap();
        (d, p)
    }

    #[test]
    fn sealed_copy_refuses_writes_and_matches_the_file() {
        let (_d, p) = victim();
        let mem = sealed_copy_of(&p).unwrap();
        let path = format!("/proc/self/fd/{}", mem.as_raw_fd());
        assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&p).unwrap());
        // F_SEAL_WRITE: opening for write is allowed, every write is refused.
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let e = std::io::Write::write_all(&mut f, b"evil").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    }

    #[test]
    fn readonly_view_is_the_file_and_refuses_writes() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for open_tree");
            return;
        }
        let (_d, p) = victim();
        let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let v = readonly_view_of(&c).unwrap();
        let path = format!("/proc/self/fd/{}", v.as_raw_fd());
        assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&p).unwrap());
        let e = std::fs::OpenOptions::new().write(true).open(&path).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        // The original stays writable: only the view is protected.
        std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    }
}
