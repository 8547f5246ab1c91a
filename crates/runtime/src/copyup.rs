//! `tmpcopyup`: copies what an image had in a directory into the tmpfs mounted over it, keeping
//! modes, ownership and symlinks. Both ends are directory fds, so nothing is resolved by path.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn openat(dir: &OwnedFd, name: &CStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and C string.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode) })?;
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Copies the entries of `src` (opened O_RDONLY|O_DIRECTORY) into `dst` (any fd of the target dir).
pub fn copy_dir(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let dst = openat(dst, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let dup = src.try_clone()?;
    let mut dir = nix::dir::Dir::from_fd(dup).map_err(io::Error::from)?;
    for entry in dir.iter() {
        let entry = entry.map_err(io::Error::from)?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = nix::sys::stat::fstatat(src, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io::Error::from)?;
        let kind = st.st_mode & libc::S_IFMT;
        let perm = st.st_mode & 0o7777;
        match kind {
            libc::S_IFDIR => {
                // SAFETY: valid fd and C string.
                cvt(unsafe { libc::mkdirat(dst.as_raw_fd(), name.as_ptr(), perm) })?;
                let s = openat(src, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
                let d = openat(&dst, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
                copy_dir(&s, &d)?;
            }
            libc::S_IFREG => {
                let s = openat(src, name, libc::O_RDONLY, 0)?;
                let d = openat(&dst, name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, perm)?;
                let mut sf = std::fs::File::from(s);
                let mut df = std::fs::File::from(d);
                io::copy(&mut sf, &mut df)?;
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(src, name).map_err(io::Error::from)?;
                let t = CString::new(OsStr::new(&target).as_bytes())?;
                // SAFETY: valid fd and C strings.
                cvt(unsafe { libc::symlinkat(t.as_ptr(), dst.as_raw_fd(), name.as_ptr()) })?;
            }
            _ => {
                // SAFETY: valid fd and C string.
                cvt(unsafe { libc::mknodat(dst.as_raw_fd(), name.as_ptr(), st.st_mode, st.st_rdev) })?;
            }
        }
        // SAFETY: valid fd and C string; AT_SYMLINK_NOFOLLOW so links themselves are chowned.
        cvt(unsafe { libc::fchownat(dst.as_raw_fd(), name.as_ptr(), st.st_uid, st.st_gid, libc::AT_SYMLINK_NOFOLLOW) })?;
        if kind != libc::S_IFLNK {
            // SAFETY: as above; chown may have cleared setuid bits, so the mode is set last.
            cvt(unsafe { libc::fchmodat(dst.as_raw_fd(), name.as_ptr(), perm, 0) })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_tree_with_modes_and_links() {
        let t = tempfile::tempdir().unwrap();
        let (s, d) = (t.path().join("s"), t.path().join("d"));
        std::fs::create_dir_all(s.join("sub")).unwrap();
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(s.join("sub/f"), b"data").unwrap();
        std::fs::set_permissions(s.join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/f", s.join("l")).unwrap();
        let sf: OwnedFd = std::fs::File::open(&s).unwrap().into();
        let df: OwnedFd = std::fs::File::open(&d).unwrap().into();
        copy_dir(&sf, &df).unwrap();
        assert_eq!(std::fs::read(d.join("sub/f")).unwrap(), b"data");
        assert_eq!(std::fs::metadata(d.join("sub/f")).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_link(d.join("l")).unwrap(), std::path::PathBuf::from("sub/f"));
    }
}
