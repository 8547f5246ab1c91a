//! `docker cp`: the container archive API. HEAD stats a path (Docker's base64 JSON header),
//! GET streams a tar of it, PUT extracts a tar into a directory; for running containers (their
//! mounted rootfs) and stopped ones (the snapshot mounted in a scratch directory meanwhile).
//!
//! Paths follow Docker's rules: cleaned lexically first (`/a/b/..` is `/a`), a trailing `/`
//! or `/.` kept (`dir/.` means the directory's content, `link/` follows the link), every
//! directory on the way resolved inside the container's root (in_root.rs), the last element
//! not followed unless the path says so. Nothing ever resolves to a host path: see in_root.rs,
//! tar_out.rs and extract.rs for how reads and writes stay inside. A running container is
//! reached through its init's root (`/proc/<pid>/root`), so copies see what the container
//! sees: volumes, binds, tmpfs and the /etc files; a stopped one through its snapshot alone.

mod extract;
pub(crate) mod in_root;
mod tar;
mod tar_out;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use self::in_root::{errno, file_type, follow_in_scope, fstat, mount_id, open_in, openat, read_file_in};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::{lock, Engine};

/// What `HEAD /containers/{id}/archive` answers, in Docker's `ContainerPathStat` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (type bits high, not the Unix S_IF* ones).
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The `X-Docker-Container-Path-Stat` header: base64 (standard, padded) of the JSON.
    pub fn header_value(&self) -> String {
        base64(&serde_json::to_vec(self).unwrap_or_default())
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory and the reverse (the CLI sets it).
    pub no_overwrite_dir_non_dir: bool,
    /// Own every entry by the container's user (`docker cp -a`), when it has one.
    pub copy_uid_gid: bool,
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Unix `st_mode` -> Go's `os.FileMode`, which Docker puts in the stat header and the CLI
/// decodes.
pub fn go_file_mode(m: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut out = m & 0o777;
    out |= match m & libc::S_IFMT {
        libc::S_IFBLK => DEVICE,
        libc::S_IFCHR => DEVICE | CHAR_DEVICE,
        libc::S_IFDIR => DIR,
        libc::S_IFIFO => NAMED_PIPE,
        libc::S_IFLNK => SYMLINK,
        libc::S_IFSOCK => SOCKET,
        _ => 0,
    };
    for (bit, go) in [(libc::S_ISUID, SETUID), (libc::S_ISGID, SETGID), (libc::S_ISVTX, STICKY)] {
        if m & bit != 0 {
            out |= go;
        }
    }
    out
}

/// Go's `filepath.Base`: "/" for the root, "." for `dir/.`.
fn go_base(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { "." } else { "/" };
    }
    t.rsplit('/').next().unwrap_or(t)
}

/// A path of the API as Docker reads it: `abs` is `filepath.Join("/", path)` with a trailing
/// `/` or `/.` of the request kept; `dir` (up to the last '/') is resolved through symlinks,
/// `base` is not ("" and "." mean `dir` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerPath {
    pub abs: String,
    pub dir: String,
    pub base: String,
}

pub(crate) fn container_path(path: &str) -> ContainerPath {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut abs = format!("/{}", parts.join("/"));
    if go_base(&abs) != "." && go_base(path) == "." {
        if !abs.ends_with('/') {
            abs.push('/');
        }
        abs.push('.');
    }
    if !abs.ends_with('/') && path.ends_with('/') {
        abs.push('/');
    }
    let cut = abs.rfind('/').map_or(0, |i| i + 1);
    ContainerPath { dir: abs[..cut].to_owned(), base: abs[cut..].to_owned(), abs }
}

fn not_found(path: &str, name: &str) -> Error {
    Error::NotFound(format!("Could not find the file {path} in container {name}"))
}

/// The object a path names: an O_PATH descriptor (a symlink itself when the path does not
/// follow it) and its stat.
struct Target {
    fd: OwnedFd,
    st: libc::stat,
}

fn resolve(root: BorrowedFd<'_>, cp: &ContainerPath) -> std::io::Result<Target> {
    let dir_rel = cp.dir.trim_matches('/').as_bytes();
    let fd = match cp.base.as_str() {
        "" | "." => open_in(root, dir_rel, libc::O_PATH | libc::O_DIRECTORY)?,
        base => {
            let dir = open_in(root, dir_rel, libc::O_PATH | libc::O_DIRECTORY)?;
            openat(dir.as_fd(), base.as_bytes(), libc::O_PATH | libc::O_NOFOLLOW, 0)?
        }
    };
    let st = fstat(fd.as_fd())?;
    Ok(Target { fd, st })
}

fn path_stat(root: BorrowedFd<'_>, cp: &ContainerPath, t: &Target) -> std::io::Result<PathStat> {
    let link_target = if file_type(&t.st) == libc::S_IFLNK { follow_in_scope(root, &cp.abs)? } else { String::new() };
    let mtime = SystemTime::UNIX_EPOCH + Duration::new(t.st.st_mtime.max(0) as u64, t.st.st_mtime_nsec.clamp(0, 999_999_999) as u32);
    Ok(PathStat {
        name: go_base(&cp.abs).to_owned(),
        size: t.st.st_size,
        mode: go_file_mode(t.st.st_mode),
        mtime: crate::stats::rfc3339_nano(mtime),
        link_target,
    })
}

fn open_path(p: &Path, flags: i32) -> std::io::Result<OwnedFd> {
    std::fs::OpenOptions::new().read(true).custom_flags(flags).open(p).map(OwnedFd::from)
}

static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

impl Engine {
    /// A running container's rootfs, if it is mounted (it is not once the container has exited
    /// and its monitor unmounted it).
    fn live_rootfs(&self, id: &str) -> Option<OwnedFd> {
        let bundle = self.bundle_dir(id);
        let root = open_path(&bundle.join("rootfs"), libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW).ok()?;
        let parent = open_path(&bundle, libc::O_PATH | libc::O_DIRECTORY).ok()?;
        (mount_id(root.as_fd())? != mount_id(parent.as_fd())?).then_some(root)
    }

    /// A running container's root as its processes see it, mounts included: its init's
    /// `/proc/<pid>/root`, trusted only if that pid is still the container's (pinned by a
    /// pidfd, in the container's cgroup); else the host's view of its rootfs.
    fn live_root(&self, rec: &Record) -> Option<OwnedFd> {
        let pid = rec.state.pid;
        if pid > 0 {
            if let Some(pidfd) = crate::supervise::pidfd_open(pid) {
                let root = open_path(Path::new(&format!("/proc/{pid}/root")), libc::O_PATH | libc::O_DIRECTORY).ok();
                let ours = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(rec.id.as_str()));
                // SAFETY: signal 0 on a pidfd we own only checks the process still exists,
                // so the /proc entries read above were this process's (its pid is not reused
                // while it exists).
                let alive = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), 0, std::ptr::null::<libc::siginfo_t>(), 0) } == 0;
                if let (Some(root), true, true) = (root, ours, alive) {
                    return Some(root);
                }
            }
        }
        self.live_rootfs(&rec.id)
    }

    /// Runs `f` with a descriptor of the container's root: the live root of a running
    /// container, else its snapshot mounted in a scratch directory under the data root for the
    /// time of `f`, the container's operation lock held so that it is not started or removed
    /// meanwhile.
    fn with_root<T>(&self, name: &str, f: impl FnOnce(&Record, BorrowedFd<'_>) -> Result<T>) -> Result<T> {
        let rec = self.get(name)?;
        if rec.state.status.is_live() {
            if let Some(root) = self.live_root(&rec) {
                return f(&rec, root.as_fd());
            }
        }
        let l = self.op_lock(&rec.id);
        let _g = lock(&l);
        let rec = self.get(&rec.id)?;
        if rec.state.status.is_live() {
            return match self.live_root(&rec) {
                Some(root) => f(&rec, root.as_fd()),
                None => Err(Error::Conflict(format!("container {} is changing state, try again", rec.id))),
            };
        }
        let seq = SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed);
        let scratch = self.cfg.data_root.join("tmp").join(format!("cp-{}-{}-{seq}", rec.short_id(), std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io("create", &scratch, e))?;
        let res = (|| {
            let mount = self.images.snapshotter().mount(&rec.id, &scratch)?;
            let out = match open_path(&scratch, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW) {
                Ok(root) => f(&rec, root.as_fd()),
                Err(e) => Err(Error::io("open", &scratch, e)),
            };
            let unmounted = mount.unmount();
            let out = out?;
            unmounted?;
            Ok(out)
        })();
        let _ = std::fs::remove_dir(&scratch);
        res
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub fn archive_stat(&self, name: &str, path: &str) -> Result<PathStat> {
        let cp = container_path(path);
        self.with_root(name, |_, root| {
            let t = resolve(root, &cp).map_err(|e| io_to_api(e, "lstat", path, name))?;
            path_stat(root, &cp, &t).map_err(|e| io_to_api(e, "lstat", path, name))
        })
    }

    /// `GET /containers/{id}/archive?path=`: calls `ready` with the path's stat (the header
    /// Docker sends) once it is known, then writes the tar to `w`.
    pub fn archive_get(&self, name: &str, path: &str, ready: &mut dyn FnMut(&PathStat), w: &mut dyn Write) -> Result<()> {
        let cp = container_path(path);
        self.with_root(name, |rec, root| {
            let t = resolve(root, &cp).map_err(|e| io_to_api(e, "lstat", path, name))?;
            let stat = path_stat(root, &cp, &t).map_err(|e| io_to_api(e, "lstat", path, name))?;
            ready(&stat);
            self.emit(rec, "archive-path", &[]);
            // The root's entries are "/", "/bin"...; any other path's are under its base name.
            let top = if stat.name == "/" { "" } else { stat.name.as_str() };
            tar_out::write_tree(t.fd.as_fd(), &t.st, top.as_bytes(), w).map_err(|e| Error::io("archive", path, e))
        })
    }

    /// `PUT /containers/{id}/archive?path=`: extracts the tar read from `r` into the directory
    /// `path` (a symlink to a directory is followed).
    pub fn archive_put(&self, name: &str, path: &str, o: ExtractOptions, r: &mut (dyn Read + Send)) -> Result<()> {
        let cp = container_path(path);
        self.with_root(name, |rec, root| {
            let dest = open_in(root, cp.abs.trim_matches('/').as_bytes(), libc::O_PATH).map_err(|e| match errno(&e) {
                libc::ENOTDIR => Error::InvalidParameter("extraction point is not a directory".into()),
                _ => io_to_api(e, "lstat", path, name),
            })?;
            if file_type(&fstat(dest.as_fd()).map_err(|e| Error::io("stat", path, e))?) != libc::S_IFDIR {
                return Err(Error::InvalidParameter("extraction point is not a directory".into()));
            }
            if rec.host_config.readonly_rootfs {
                return Err(Error::InvalidParameter("container rootfs is marked read-only".into()));
            }
            let dest_abs = follow_in_scope(root, &cp.abs).map_err(|e| io_to_api(e, "lstat", path, name))?;
            let chown = if o.copy_uid_gid && !rec.config.user.is_empty() {
                let passwd = read_file_in(root, b"etc/passwd").map_err(|e| Error::io("read", "/etc/passwd", e))?;
                let group = read_file_in(root, b"etc/group").map_err(|e| Error::io("read", "/etc/group", e))?;
                Some(in_root::lookup_user(&rec.config.user, passwd.as_deref(), group.as_deref()).map_err(Error::InvalidParameter)?)
            } else {
                None
            };
            let opts = extract::Options { no_overwrite_dir_non_dir: o.no_overwrite_dir_non_dir, chown };
            extract::extract(r, root, &dest_abs, &opts)?;
            self.emit(rec, "extract-to-dir", &[]);
            Ok(())
        })
    }
}

/// ENOENT is Docker's "Could not find the file" (404); anything else an internal error.
fn io_to_api(e: std::io::Error, step: &'static str, path: &str, name: &str) -> Error {
    if errno(&e) == libc::ENOENT {
        not_found(path, name)
    } else {
        Error::io(step, path, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_docker_reads_them() {
        let p = |s: &str| {
            let c = container_path(s);
            (c.abs, c.dir, c.base)
        };
        let t = |a: &str, d: &str, b: &str| (a.to_owned(), d.to_owned(), b.to_owned());
        assert_eq!(p("/d/f"), t("/d/f", "/d/", "f"));
        assert_eq!(p("d/f"), t("/d/f", "/d/", "f"));
        assert_eq!(p("/d/"), t("/d/", "/d/", ""));
        assert_eq!(p("/d/."), t("/d/.", "/d/", "."));
        assert_eq!(p("/d/./"), t("/d/./", "/d/./", ""));
        assert_eq!(p("/"), t("/", "/", ""));
        assert_eq!(p("."), t("/.", "/", "."));
        assert_eq!(p("/dl/sub/.."), t("/dl", "/", "dl"), "`..` is lexical, as in Docker");
        assert_eq!(p("/../../etc//passwd"), t("/etc/passwd", "/etc/", "passwd"));
        assert_eq!([go_base("/d/."), go_base("/d/"), go_base("/"), go_base("/d/f")], [".", "d", "/", "f"]);
    }

    #[test]
    fn file_modes_as_go_encodes_them() {
        // Values Docker sent for the same files.
        assert_eq!(go_file_mode(libc::S_IFREG | 0o4755), 8_389_101);
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), 2_147_484_141);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), 134_218_239);
        assert_eq!(go_file_mode(libc::S_IFIFO | 0o644), 33_554_852);
        assert_eq!(go_file_mode(libc::S_IFCHR | 0o666), (1 << 26) | (1 << 21) | 0o666);
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o1777), (1 << 31) | (1 << 20) | 0o777);
    }

    #[test]
    fn stat_header_is_base64_json() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let s = PathStat { name: "f".into(), size: 3, mode: 8_389_101, mtime: "2026-11-23T14:29:07.656119333Z".into(), link_target: String::new() };
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"name":"f","size":3,"mode":8389101,"mtime":"2026-11-23T14:29:07.656119333Z","linkTarget":""}"#);
        assert_eq!(
            s.header_value(),
            "eyJuYW1lIjoiZiIsInNpemUiOjMsIm1vZGUiOjgzODkxMDEsIm10aW1lIjoiMjAyNi0xMS0yM1QxNDoyOTowNy42NTYxMTkzMzNaIiwibGlua1RhcmdldCI6IiJ9"
        );
    }

    #[test]
    fn resolves_and_stats_inside_the_root() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("d/sub")).unwrap();
        std::fs::write(r.join("d/f"), "hi\n").unwrap();
        symlink("/etc/passwd", r.join("lnk")).unwrap();
        symlink("d", r.join("dl")).unwrap();
        symlink("/", r.join("d/toroot")).unwrap();
        let root = OwnedFd::from(std::fs::File::open(r).unwrap());
        let st = |p: &str| {
            let cp = container_path(p);
            resolve(root.as_fd(), &cp).and_then(|t| path_stat(root.as_fd(), &cp, &t))
        };
        let f = st("/d/f").unwrap();
        assert_eq!((f.name.as_str(), f.size, f.mode), ("f", 3, 0o644));
        let l = st("/lnk").unwrap();
        assert_eq!((l.mode & (1 << 27) != 0, l.link_target.as_str()), (true, "/etc/passwd"));
        assert_eq!(errno(&st("/lnk/").unwrap_err()), libc::ENOENT, "the container has no /etc/passwd");
        assert_eq!(st("/dl").unwrap().link_target, "/d");
        let dl = st("/dl/").unwrap();
        assert_eq!((dl.name.as_str(), dl.mode >> 31, dl.link_target.as_str()), ("dl", 1, ""));
        assert_eq!(st("/d/.").unwrap().name, ".");
        assert_eq!(st("/").unwrap().name, "/");
        // Through a link to / the path stays in the container: d/toroot/d/f is /d/f.
        assert_eq!(st("/d/toroot/d/toroot/d/f").unwrap().size, 3);
        assert_eq!(errno(&st("/d/toroot/etc/shadow").unwrap_err()), libc::ENOENT);
    }
}
