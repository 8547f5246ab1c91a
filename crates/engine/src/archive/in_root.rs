//! File-system calls confined to a container's root. Every multi-component path is resolved
//! with openat2(RESOLVE_IN_ROOT), so a symlink in the container (`/etc -> /`, `../../..`, one
//! swapped in while a copy runs) resolves inside the root as the container would see it; every
//! other call names a single component relative to a directory descriptor and never follows a
//! final symlink. No host path below the root is ever used.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// In-root resolution, no magic links (/proc/*/fd), no mount crossing.
// Mounts are crossed: a running container is reached through its own root, where volumes,
// binds and /etc files are mounts. Kernel filesystems are left alone (see `kernel_fs`).
const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

pub(super) fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(super) fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Whether `fd` is on a kernel filesystem (proc, sysfs, cgroup, ...) as mounted in a running
/// container: a copy lists such a directory but neither reads nor writes below it, as
/// Docker's view of a container (without those mounts) would have it.
pub(super) fn kernel_fs(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: statfs is plain data, filled by the kernel.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a statfs to fill.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut s) } != 0 {
        return false;
    }
    const KINDS: [libc::__fsword_t; 10] = [
        libc::PROC_SUPER_MAGIC,
        libc::SYSFS_MAGIC,
        libc::CGROUP_SUPER_MAGIC,
        libc::CGROUP2_SUPER_MAGIC,
        libc::DEVPTS_SUPER_MAGIC,
        0x1980_0202, // mqueue
        libc::DEBUGFS_MAGIC,
        libc::TRACEFS_MAGIC,
        libc::SECURITYFS_MAGIC,
        libc::BPF_FS_MAGIC,
    ];
    KINDS.contains(&s.f_type)
}

/// Opens `rel` ('/'-separated; "" is the root itself) inside `root`.
pub(crate) fn open_in(root: BorrowedFd<'_>, rel: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let path = cstr(if rel.is_empty() { b"." } else { rel })?;
    // SAFETY: open_how is plain data (non-exhaustive in libc: built from zeros).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = IN_ROOT;
    loop {
        // SAFETY: a valid C string and an open_how of the size passed.
        let r = unsafe {
            libc::syscall(libc::SYS_openat2, root.as_raw_fd(), path.as_ptr(), &how as *const libc::open_how, std::mem::size_of::<libc::open_how>())
        };
        if r >= 0 {
            // SAFETY: a fresh descriptor.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as i32) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a concurrent rename made the kernel give up a lookup with "..".
        if !matches!(errno(&e), libc::EAGAIN | libc::EINTR) {
            return Err(e);
        }
    }
}

/// openat of one name in `dir` (callers add O_NOFOLLOW where the name may be a symlink).
pub(super) fn openat(dir: BorrowedFd<'_>, name: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: valid descriptor and C string.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reopens what an O_PATH descriptor names with real access (the magic link of our own fd).
pub(super) fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let p = cstr(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())?;
    // SAFETY: a valid C string.
    let r = cvt(unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

pub(super) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: stat is plain data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and buffer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// lstat of one name in `dir`; None when it does not exist.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<libc::stat>> {
    let c = cstr(name)?;
    // SAFETY: as in fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, C string and buffer.
    match cvt(unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) }) {
        Ok(_) => Ok(Some(st)),
        Err(e) if errno(&e) == libc::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// The target of the symlink `name` in `dir` ("" with an O_PATH descriptor of the link itself).
pub(super) fn readlink_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid descriptor, C string and buffer of the given size.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub(super) fn file_type(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

pub(super) fn is_dir(st: &libc::stat) -> bool {
    file_type(st) == libc::S_IFDIR
}

/// The names in a directory (not `.`/`..`), sorted as Go's WalkDir visits them.
pub(super) fn read_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let fd = openat(dir, b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let d = nix::dir::Dir::from_fd(fd).map_err(io::Error::from)?;
    let mut out = Vec::new();
    for e in d {
        let e = e.map_err(io::Error::from)?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(n.to_vec());
        }
    }
    out.sort();
    Ok(out)
}

/// The mount a descriptor is on (statx STATX_MNT_ID).
pub(super) fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    // SAFETY: statx is plain data.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, an empty C string with AT_EMPTY_PATH, and a buffer.
    let r = unsafe { libc::statx(fd.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_MNT_ID, &mut stx) };
    (r == 0 && stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id)
}

/// Docker's `FollowSymlinkInScope`: the absolute path `path` leads to inside the root, every
/// symlink followed (at most 255), components that do not exist kept as written. Used for the
/// `linkTarget` that `docker cp` shows and follows.
pub(super) fn follow_in_scope(root: BorrowedFd<'_>, path: &str) -> io::Result<String> {
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(p) = todo.pop() {
        match p.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => resolved.push(p),
        }
        let fd = match open_in(root, resolved.join("/").as_bytes(), libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if errno(&e) == libc::ENOENT => continue,
            Err(e) => return Err(e),
        };
        if file_type(&fstat(fd.as_fd())?) != libc::S_IFLNK {
            continue;
        }
        links += 1;
        if links > 255 {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let dest = String::from_utf8_lossy(&readlink_at(fd.as_fd(), b"")?).into_owned();
        resolved.pop();
        if dest.starts_with('/') {
            resolved.clear();
        }
        todo.extend(dest.split('/').rev().map(str::to_owned));
    }
    Ok(format!("/{}", resolved.join("/")))
}

/// Removes `name` from `dir` and, for a directory, everything below it, never following a
/// symlink (each level is opened O_NOFOLLOW relative to its parent).
pub(super) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    remove_all_depth(dir, name, 0)
}

/// Deeper trees are refused rather than recursed into without end.
const MAX_REMOVE_DEPTH: usize = 256;

fn remove_all_depth(dir: BorrowedFd<'_>, name: &[u8], depth: usize) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid descriptor and C string.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match errno(&e) {
        libc::ENOENT => return Ok(()),
        libc::EISDIR | libc::EPERM => {}
        _ => return Err(e),
    }
    if depth >= MAX_REMOVE_DEPTH {
        return Err(io::Error::other(format!("directory tree deeper than {MAX_REMOVE_DEPTH} levels")));
    }
    let sub = openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
    for n in read_names(sub.as_fd())? {
        remove_all_depth(sub.as_fd(), &n, depth + 1)?;
    }
    // SAFETY: as above.
    match cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) }) {
        Err(e) if errno(&e) != libc::ENOENT => Err(e),
        _ => Ok(()),
    }
}

/// Opens directory `rel` inside the root, creating what is missing of it as Docker does (0755,
/// owned by root). A dangling symlink on the way is an error, not followed out.
pub(super) fn mkdir_all_in(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    match open_in(root, rel, libc::O_PATH | libc::O_DIRECTORY) {
        Err(e) if errno(&e) == libc::ENOENT => {}
        r => return r,
    }
    let mut cur = open_in(root, b"", libc::O_PATH | libc::O_DIRECTORY)?;
    let mut prefix = Vec::new();
    for comp in rel.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(comp);
        match open_in(root, &prefix, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => cur = fd,
            Err(e) if errno(&e) == libc::ENOENT => {
                let c = cstr(comp)?;
                // SAFETY: valid descriptor and C string.
                cvt(unsafe { libc::mkdirat(cur.as_raw_fd(), c.as_ptr(), 0o755) })?;
                let made = openat(cur.as_fd(), comp, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
                // SAFETY: valid descriptor (the umask must not change the mode).
                cvt(unsafe { libc::fchmod(made.as_raw_fd(), 0o755) })?;
                cur = made;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// Reads a small file of the container (its /etc/passwd...); None when it does not exist.
pub(super) fn read_file_in(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<Option<String>> {
    use std::io::Read;
    let fd = match open_in(root, rel, libc::O_RDONLY | libc::O_NONBLOCK) {
        Ok(fd) => fd,
        Err(e) if errno(&e) == libc::ENOENT => return Ok(None),
        Err(e) => return Err(e),
    };
    if file_type(&fstat(fd.as_fd())?) != libc::S_IFREG {
        return Ok(None);
    }
    let mut text = String::new();
    std::fs::File::from(fd).take(16 << 20).read_to_string(&mut text)?;
    Ok(Some(text))
}

/// `USER[:GROUP]` (names or numbers) -> uid and gid, with the container's /etc/passwd and
/// /etc/group; a user without a group gets its primary group (0 if it has no passwd entry).
pub(super) fn lookup_user(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<(u32, u32), String> {
    let (user, grp) = spec.split_once(':').map_or((spec, None), |(u, g)| (u, Some(g)));
    let entries = |text: Option<&str>| -> Vec<Vec<String>> {
        text.unwrap_or_default().lines().map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>()).filter(|f| f.len() >= 3).collect()
    };
    let users = entries(passwd);
    let by_user = users.iter().find(|f| f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user));
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => by_user
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("unable to find user {user}: no matching entries in passwd file"))?,
    };
    let gid = match grp {
        None | Some("") => by_user.and_then(|f| f.get(3)).and_then(|g| g.parse().ok()).unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => entries(group)
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("unable to find group {g}: no matching entries in group file"))?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_of(dir: &std::path::Path) -> OwnedFd {
        OwnedFd::from(std::fs::File::open(dir).unwrap())
    }

    #[test]
    fn resolution_stays_in_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("d/sub")).unwrap();
        symlink("/", r.join("toroot")).unwrap();
        symlink("../../../../..", r.join("d/up")).unwrap();
        symlink("/etc/passwd", r.join("pw")).unwrap();
        symlink("d", r.join("dl")).unwrap();
        let root = root_of(r);
        // `toroot/d` is the container's /d, never the host's.
        let st = fstat(open_in(root.as_fd(), b"toroot/d/sub", libc::O_PATH).unwrap().as_fd()).unwrap();
        assert!(is_dir(&st));
        assert!(open_in(root.as_fd(), b"d/up/d", libc::O_PATH).is_ok(), "`..` clamps at the root");
        // The host's /etc/passwd exists, the container's does not.
        assert_eq!(errno(&open_in(root.as_fd(), b"pw", libc::O_RDONLY).unwrap_err()), libc::ENOENT);
        assert_eq!(follow_in_scope(root.as_fd(), "/pw").unwrap(), "/etc/passwd");
        assert_eq!(follow_in_scope(root.as_fd(), "/dl/sub/../x").unwrap(), "/d/x");
        assert_eq!(follow_in_scope(root.as_fd(), "/d/up/dl").unwrap(), "/d");
        assert_eq!(follow_in_scope(root.as_fd(), "/").unwrap(), "/");
    }

    #[test]
    fn mkdir_and_remove_never_follow_links_out() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let r = tmp.path().join("root");
        std::fs::create_dir(&r).unwrap();
        symlink(outside.path(), r.join("out")).unwrap();
        let root = root_of(&r);
        // `out` points (as the container sees it) to a path that does not exist in the root.
        let made = mkdir_all_in(root.as_fd(), b"a/b").unwrap();
        assert!(is_dir(&fstat(made.as_fd()).unwrap()));
        assert!(r.join("a/b").is_dir());
        std::fs::create_dir(r.join("a/b/c")).unwrap();
        symlink(outside.path(), r.join("a/b/c/link")).unwrap();
        remove_all_at(root.as_fd(), b"a").unwrap();
        remove_all_at(root.as_fd(), b"out").unwrap();
        assert!(!r.join("a").exists() && !r.join("out").exists());
        assert!(outside.path().join("keep").exists(), "nothing outside was touched");
    }

    #[test]
    fn users_from_the_containers_files() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nweb:x:1234:1235::/:/bin/sh\n";
        let gr = "root:x:0:\nstaff:x:50:\n";
        assert_eq!(lookup_user("web", Some(pw), Some(gr)), Ok((1234, 1235)));
        assert_eq!(lookup_user("1234", Some(pw), Some(gr)), Ok((1234, 1235)));
        assert_eq!(lookup_user("web:staff", Some(pw), Some(gr)), Ok((1234, 50)));
        assert_eq!(lookup_user("77:88", None, None), Ok((77, 88)));
        assert_eq!(lookup_user("77", None, None), Ok((77, 0)));
        assert!(lookup_user("nobody", Some(pw), Some(gr)).unwrap_err().contains("unable to find user nobody"));
        assert!(lookup_user("web:nogroup", Some(pw), Some(gr)).is_err());
    }
}
