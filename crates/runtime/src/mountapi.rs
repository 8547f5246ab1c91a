//! Bind mounts through the new mount API (open_tree, mount_setattr, move_mount): a bind with
//! its flags is three system calls on descriptors, where mount(2) needs a bind, a fresh lookup
//! of the target and a remount. Used on the hot path of `create` (a v1 host mounts one bind per
//! cgroup hierarchy); callers fall back to mount(2) where the kernel lacks the API.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A detached copy of the mount tree at `path` (absolute, resolved as the caller sees it),
/// recursive like MS_BIND|MS_REC.
pub fn clone_tree(path: &Path) -> Result<OwnedFd, Errno> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: valid C string; flags only.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the detached `tree` on `name` (one path component) in the directory `parent`.
pub fn attach(tree: &OwnedFd, parent: &OwnedFd, name: &str) -> Result<(), Errno> {
    let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid fds and C strings.
    let r = unsafe {
        libc::syscall(libc::SYS_move_mount, tree.as_raw_fd(), c"".as_ptr(), parent.as_raw_fd(), c.as_ptr(), MOVE_MOUNT_F_EMPTY_PATH)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Binds `source` (recursively) on a new directory `name` of `parent`, with the mount
/// attributes `attrs` set. `parent` must be a directory only the runtime writes to (a tmpfs it
/// just mounted): `name` is created and attached without further checks. `Ok(false)`: not
/// done, because `name` is not a plain file name or the kernel has no open_tree.
pub fn bind_into(source: &Path, attrs: u64, parent: &OwnedFd, name: &str) -> Result<bool, Errno> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Ok(false);
    }
    let tree = match clone_tree(source) {
        Ok(t) => t,
        Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL) => return Ok(false),
        Err(e) => return Err(e),
    };
    if attrs != 0 {
        crate::rootfs::mount_setattr(&tree, attrs, 0)?;
    }
    let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid fd and C string.
    if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o755) } != 0 && Errno::last() != Errno::EEXIST {
        return Err(Errno::last());
    }
    attach(&tree, parent, name)?;
    Ok(true)
}
