//! `PUT /containers/{id}/archive`: extracts a tar into a directory of the container, as
//! Docker's `archive.Untar` does inside the container's root: owners and modes from the
//! archive (or the container's user with copyUIDGID), an existing directory merged with a
//! directory entry, anything else replaced, the extraction point's own metadata left alone,
//! entries climbing out with `..` refused, no whiteout handling.
//!
//! Safety: every parent directory is resolved with RESOLVE_IN_ROOT from the container's root
//! and every change is made through a descriptor or a single name relative to a directory
//! descriptor, never following a final symlink: metadata goes through the file's own
//! descriptor (or /proc/self/fd of an O_PATH one), so a symlink swapped in by the container
//! while the copy runs can never redirect a write, chown or chmod onto the host.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::in_root::{cstr, errno, file_type, fstat, is_dir, kernel_fs, lstat_at, mkdir_all_in, open_in, openat, remove_all_at};
use super::tar::{self, Header};
use crate::error::{Error, Result};

pub(super) struct Options {
    pub no_overwrite_dir_non_dir: bool,
    /// copyUIDGID with a container user: every entry owned by it.
    pub chown: Option<(u32, u32)>,
}

/// Lexically cleaned, relative: Docker's `filepath.Clean` then join with the destination. A
/// name starting with '/' cannot climb (`/../x` is `x`); a relative one that does is refused.
fn clean(name: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<&[u8]> = Vec::new();
    let absolute = name.starts_with(b"/");
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() && !absolute {
                    return None;
                }
            }
            c => out.push(c),
        }
    }
    Some(out.join(&b'/'))
}

fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (b"", rel),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn timespecs(mtime: i64) -> [libc::timespec; 2] {
    // atime is the mtime: Docker's writer clears access times, and its reader keeps the later.
    let t = libc::timespec { tv_sec: mtime as libc::time_t, tv_nsec: 0 };
    [t, t]
}

struct Extractor<'a> {
    root: BorrowedFd<'a>,
    /// The extraction point, relative to the container's root ("" for /).
    dest_rel: Vec<u8>,
    /// The same, absolute, for messages.
    dest_abs: &'a str,
    o: &'a Options,
    /// Directory times, set last (creating entries inside changes them).
    dirs: Vec<(Vec<u8>, i64)>,
    buf: Vec<u8>,
}

impl Extractor<'_> {
    fn in_root(&self, rel: &[u8]) -> Vec<u8> {
        if self.dest_rel.is_empty() {
            rel.to_vec()
        } else if rel.is_empty() {
            self.dest_rel.clone()
        } else {
            [&self.dest_rel[..], b"/", rel].concat()
        }
    }

    /// The container path of an entry, as Docker's messages show it.
    fn shown(&self, rel: &[u8]) -> String {
        format!("{}/{}", self.dest_abs.trim_end_matches('/'), lossy(rel))
    }

    fn owner(&self, h: &Header, shown: &str) -> Result<(u32, u32)> {
        if let Some(ids) = self.o.chown {
            return Ok(ids);
        }
        match (u32::try_from(h.uid), u32::try_from(h.gid)) {
            (Ok(u), Ok(g)) => Ok((u, g)),
            _ => Err(Error::InvalidParameter(format!("{shown}: uid/gid out of range"))),
        }
    }

    fn entry<R: Read>(&mut self, h: &Header, r: &mut tar::Reader<R>) -> Result<()> {
        let rel = clean(&h.name)
            .ok_or_else(|| Error::InvalidParameter(format!("{:?} is outside of {:?}", lossy(&h.name), self.dest_abs)))?;
        if rel.is_empty() {
            if h.kind == tar::DIR {
                return Ok(());
            }
            return Err(Error::InvalidParameter(format!("cannot replace the extraction point {:?} with a non-directory", self.dest_abs)));
        }
        let shown = self.shown(&rel);
        let io_err = |step: &'static str| {
            let s = shown.clone();
            move |e: io::Error| Error::io(step, s, e)
        };
        let (parent, base) = split_last(&rel);
        let pfd = match open_in(self.root, &self.in_root(parent), libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if errno(&e) == libc::ENOENT => mkdir_all_in(self.root, &self.in_root(parent)).map_err(io_err("create parent of"))?,
            Err(e) => return Err(io_err("open parent of")(e)),
        };
        let pfd = pfd.as_fd();
        if kernel_fs(pfd) {
            return Err(Error::InvalidParameter(format!("refusing to write {shown:?}: a kernel filesystem (/proc, /sys...) is mounted there")));
        }
        if let Some(st) = lstat_at(pfd, base).map_err(io_err("stat"))? {
            let (was_dir, is_dir_entry) = (is_dir(&st), h.kind == tar::DIR);
            if self.o.no_overwrite_dir_non_dir && was_dir != is_dir_entry {
                let msg = if was_dir {
                    format!("cannot overwrite directory {shown:?} with non-directory {:?}", self.dest_abs)
                } else {
                    format!("cannot overwrite non-directory {shown:?} with directory {:?}", self.dest_abs)
                };
                return Err(Error::InvalidParameter(msg));
            }
            if !(was_dir && is_dir_entry) {
                remove_all_at(pfd, base).map_err(io_err("replace"))?;
            }
        }
        let name = cstr(base).map_err(io_err("create"))?;
        let (uid, gid) = self.owner(h, &shown)?;
        match h.kind {
            tar::DIR => {
                // SAFETY: valid descriptor and C string.
                match cvt(unsafe { libc::mkdirat(pfd.as_raw_fd(), name.as_ptr(), 0o700) }) {
                    Err(e) if errno(&e) != libc::EEXIST => return Err(io_err("create directory")(e)),
                    _ => {}
                }
                let fd = openat(pfd, base, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0).map_err(io_err("open directory"))?;
                self.metadata_fd(&fd, h, uid, gid, &shown)?;
                self.dirs.push((self.in_root(&rel), h.mtime));
            }
            tar::REG => {
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
                let fd = openat(pfd, base, flags, 0o600).map_err(io_err("create file"))?;
                let mut f = std::fs::File::from(fd);
                self.buf.resize(256 << 10, 0);
                loop {
                    let n = r.read_data(&mut self.buf).map_err(read_err)?;
                    if n == 0 {
                        break;
                    }
                    io::Write::write_all(&mut f, &self.buf[..n]).map_err(io_err("write"))?;
                }
                let fd = OwnedFd::from(f);
                self.metadata_fd(&fd, h, uid, gid, &shown)?;
                // SAFETY: valid descriptor and two timespecs.
                cvt(unsafe { libc::futimens(fd.as_raw_fd(), timespecs(h.mtime).as_ptr()) }).map_err(io_err("set times"))?;
            }
            tar::SYMLINK => {
                self.check_symlink(&rel, &h.link, &shown)?;
                let target = cstr(&h.link).map_err(io_err("create symlink"))?;
                // SAFETY: valid descriptor and C strings.
                cvt(unsafe { libc::symlinkat(target.as_ptr(), pfd.as_raw_fd(), name.as_ptr()) }).map_err(io_err("create symlink"))?;
                // SAFETY: as above; AT_SYMLINK_NOFOLLOW acts on the link itself.
                cvt(unsafe { libc::fchownat(pfd.as_raw_fd(), name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map_err(io_err("chown"))?;
                self.times_at(pfd, &name, h.mtime, &shown)?;
            }
            tar::HARDLINK => {
                let target = clean(&h.link).filter(|t| !t.is_empty()).ok_or_else(|| {
                    Error::InvalidParameter(format!("invalid hardlink {:?} -> {:?}", self.shown(&h.link), lossy(&h.link)))
                })?;
                let (tp, tb) = split_last(&target);
                let tfd = open_in(self.root, &self.in_root(tp), libc::O_PATH | libc::O_DIRECTORY).map_err(io_err("resolve hardlink target of"))?;
                let tname = cstr(tb).map_err(io_err("create hardlink"))?;
                // SAFETY: valid descriptors and C strings; no AT_SYMLINK_FOLLOW: a symlink
                // target is linked itself, as link(2) does.
                cvt(unsafe { libc::linkat(tfd.as_raw_fd(), tname.as_ptr(), pfd.as_raw_fd(), name.as_ptr(), 0) }).map_err(io_err("create hardlink"))?;
            }
            tar::CHAR | tar::BLOCKDEV | tar::FIFO => {
                let ft = match h.kind {
                    tar::CHAR => libc::S_IFCHR,
                    tar::BLOCKDEV => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let dev = libc::makedev(h.dev_major, h.dev_minor);
                // SAFETY: valid descriptor and C string.
                cvt(unsafe { libc::mknodat(pfd.as_raw_fd(), name.as_ptr(), ft | 0o600, dev) }).map_err(io_err("create special file"))?;
                let fd = openat(pfd, base, libc::O_PATH | libc::O_NOFOLLOW, 0).map_err(io_err("open special file"))?;
                if file_type(&fstat(fd.as_fd()).map_err(io_err("stat"))?) != ft {
                    return Err(Error::Internal(format!("{shown} was replaced while being created")));
                }
                // SAFETY: an O_PATH descriptor with AT_EMPTY_PATH: the node itself.
                cvt(unsafe { libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) }).map_err(io_err("chown"))?;
                let proc = cstr(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes()).map_err(io_err("chmod"))?;
                // SAFETY: a valid C string naming our own descriptor's inode.
                cvt(unsafe { libc::chmod(proc.as_ptr(), h.mode & 0o7777) }).map_err(io_err("chmod"))?;
                self.times_at(pfd, &name, h.mtime, &shown)?;
            }
            k => return Err(Error::InvalidParameter(format!("{shown}: unsupported entry type {:?}", k as char))),
        }
        Ok(())
    }

    /// Docker refuses a relative symlink whose target climbs above the extraction point.
    fn check_symlink(&self, rel: &[u8], link: &[u8], shown: &str) -> Result<()> {
        if link.starts_with(b"/") {
            return Ok(());
        }
        let (parent, _) = split_last(rel);
        let joined = [self.dest_abs.as_bytes(), b"/", parent, b"/", link].concat();
        let mut parts: Vec<&[u8]> = Vec::new();
        for c in joined.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                c => parts.push(c),
            }
        }
        let target = format!("/{}", lossy(&parts.join(&b'/')));
        if !target.starts_with(self.dest_abs) {
            return Err(Error::InvalidParameter(format!("invalid symlink {shown:?} -> {:?}", lossy(link))));
        }
        Ok(())
    }

    /// Owner, then mode (chown clears setuid bits), then xattrs, through the entry's own fd.
    fn metadata_fd(&self, fd: &OwnedFd, h: &Header, uid: u32, gid: u32, shown: &str) -> Result<()> {
        let e = |step: &'static str| move |err: io::Error| Error::io(step, shown.to_owned(), err);
        // SAFETY: valid descriptor.
        cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map_err(e("chown"))?;
        // SAFETY: valid descriptor.
        cvt(unsafe { libc::fchmod(fd.as_raw_fd(), h.mode & 0o7777) }).map_err(e("chmod"))?;
        for (k, v) in &h.xattrs {
            // trusted.* drives overlayfs itself: never taken from an archive.
            if k.starts_with(b"trusted.") {
                continue;
            }
            let key = cstr(k).map_err(e("set xattr"))?;
            // SAFETY: valid descriptor, C string and buffer.
            let r = unsafe { libc::fsetxattr(fd.as_raw_fd(), key.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
            if let Err(err) = cvt(r) {
                // Not every filesystem takes every namespace: ignored, as Docker does.
                if !matches!(errno(&err), libc::ENOTSUP | libc::EPERM) {
                    return Err(e("set xattr")(err));
                }
            }
        }
        Ok(())
    }

    fn times_at(&self, dir: BorrowedFd<'_>, name: &std::ffi::CStr, mtime: i64, shown: &str) -> Result<()> {
        // SAFETY: valid descriptor, C string and two timespecs; the link itself, not its target.
        let r = unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), timespecs(mtime).as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
        cvt(r).map_err(|e| Error::io("set times", shown.to_owned(), e))
    }

    fn dir_times(&mut self) -> Result<()> {
        for (rel, mtime) in std::mem::take(&mut self.dirs) {
            let fd = match open_in(self.root, &rel, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW) {
                Ok(fd) => fd,
                // Replaced by a later entry (or by the container meanwhile): nothing to date.
                Err(e) if matches!(errno(&e), libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => continue,
                Err(e) => return Err(Error::io("set times", lossy(&rel), e)),
            };
            // SAFETY: valid descriptor and two timespecs.
            cvt(unsafe { libc::futimens(fd.as_raw_fd(), timespecs(mtime).as_ptr()) }).map_err(|e| Error::io("set times", lossy(&rel), e))?;
        }
        Ok(())
    }
}

fn read_err(e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::InvalidData {
        Error::InvalidParameter(format!("invalid tar archive: {e}"))
    } else {
        Error::io("read", "archive", e)
    }
}

/// Extracts `input` (a tar, possibly gzip- or zstd-compressed) into `dest_abs`, a directory
/// of the container whose root is `root`. `dest_abs` must already be resolved (no symlinks).
pub(super) fn extract(input: &mut (dyn Read + Send), root: BorrowedFd<'_>, dest_abs: &str, o: &Options) -> Result<()> {
    let decoded = berth_image::layer::decompress(input)?;
    let mut r = tar::Reader::new(decoded);
    let mut x = Extractor { root, dest_rel: dest_abs.trim_start_matches('/').as_bytes().to_vec(), dest_abs, o, dirs: Vec::new(), buf: Vec::new() };
    while let Some(h) = r.next().map_err(read_err)? {
        x.entry(&h, &mut r)?;
    }
    x.dir_times()?;
    r.drain().map_err(read_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
    use std::path::Path;

    fn tar_of(entries: &[(Header, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (h, data) in entries {
            let h = Header { size: data.len() as u64, ..h.clone() };
            tar::write_header(&mut out, &h).unwrap();
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0, tar::padding(data.len() as u64)));
        }
        tar::write_end(&mut out).unwrap();
        out
    }

    fn h(name: &str, kind: u8, mode: u32) -> Header {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Header { name: name.into(), kind, mode, uid: uid.into(), gid: gid.into(), mtime: 1_600_000_000, ..Default::default() }
    }

    fn run(root: &Path, dest: &str, tar: &[u8], no_overwrite: bool) -> Result<()> {
        let fd = OwnedFd::from(std::fs::File::open(root).unwrap());
        let o = Options { no_overwrite_dir_non_dir: no_overwrite, chown: None };
        extract(&mut &tar[..], fd.as_fd(), dest, &o)
    }

    #[test]
    fn extracts_with_modes_and_times_keeping_the_destination() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir(r.join("d")).unwrap();
        std::fs::set_permissions(r.join("d"), std::fs::Permissions::from_mode(0o751)).unwrap();
        let mut link = h("x/hard", tar::HARDLINK, 0);
        link.link = b"x/f".to_vec();
        let mut sym = h("x/s", tar::SYMLINK, 0o777);
        sym.link = b"f".to_vec();
        let t = tar_of(&[
            (h("./", tar::DIR, 0o700), b""),
            (h("./x/", tar::DIR, 0o750), b""),
            (h("./x/f", tar::REG, 0o4755), b"hello"),
            (link, b""),
            (sym, b""),
            (h("x/p", tar::FIFO, 0o640), b""),
            (h("deep/er/g", tar::REG, 0o600), b"g"),
        ]);
        run(r, "/d", &t, true).unwrap();
        let m = |p: &str| std::fs::symlink_metadata(r.join(p)).unwrap();
        assert_eq!(m("d").mode() & 0o7777, 0o751, "the extraction point keeps its own metadata");
        assert_eq!(m("d/x").mode() & 0o7777, 0o750);
        assert_eq!(m("d/x").mtime(), 1_600_000_000, "directory times set last");
        assert_eq!(std::fs::read(r.join("d/x/f")).unwrap(), b"hello");
        assert_eq!(m("d/x/f").mode() & 0o7777, 0o4755);
        assert_eq!(m("d/x/hard").ino(), m("d/x/f").ino());
        assert_eq!(std::fs::read_link(r.join("d/x/s")).unwrap(), Path::new("f"));
        assert_eq!(m("d/x/p").mode() & 0o7777, 0o640);
        assert!(m("d/x/p").file_type().is_fifo());
        assert_eq!(m("d/deep").mode() & 0o7777, 0o755, "implicit parents: 0755");
    }

    #[test]
    fn no_overwrite_dir_non_dir_as_docker() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("d/sub")).unwrap();
        std::fs::write(r.join("d/f"), "x").unwrap();
        let err = run(r, "/d", &tar_of(&[(h("sub", tar::REG, 0o644), b"q")]), true).unwrap_err();
        assert_eq!(err.to_string(), r#"cannot overwrite directory "/d/sub" with non-directory "/d""#);
        let err = run(r, "/d", &tar_of(&[(h("f/", tar::DIR, 0o755), b"")]), true).unwrap_err();
        assert_eq!(err.to_string(), r#"cannot overwrite non-directory "/d/f" with directory "/d""#);
        run(r, "/d", &tar_of(&[(h("sub", tar::REG, 0o644), b"q")]), false).unwrap();
        assert_eq!(std::fs::read(r.join("d/sub")).unwrap(), b"q", "replaced without the flag");
    }

    #[test]
    fn hostile_archives_and_links_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        let host_file = host.path().join("passwd");
        std::fs::write(&host_file, "host\n").unwrap();
        let r = tmp.path().join("root");
        std::fs::create_dir_all(r.join("d")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        // A link in the container pointing at the host path (absolute, and climbing with ..).
        symlink(host.path(), r.join("d/abs")).unwrap();
        symlink("../../../../../../../..".to_owned() + host.path().to_str().unwrap(), r.join("d/rel")).unwrap();
        symlink(&host_file, r.join("d/file")).unwrap();
        // The same path inside the root, where the links lead as the container sees them.
        let inside = r.join(host.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        let t = tar_of(&[(h("abs/passwd", tar::REG, 0o644), b"pwned"), (h("rel/passwd", tar::REG, 0o644), b"pwned"), (h("file", tar::REG, 0o644), b"pwned")]);
        run(&r, "/d", &t, false).unwrap();
        assert_eq!(std::fs::read(&host_file).unwrap(), b"host\n", "the host file is untouched");
        // Both links resolve inside the root: <root><host dir>/passwd was created instead.
        assert_eq!(std::fs::read(inside.join("passwd")).unwrap(), b"pwned");
        assert!(std::fs::symlink_metadata(r.join("d/file")).unwrap().is_file(), "a link entry name is replaced, not written through");

        // An archive planting a link then writing through it lands in the container's root.
        let mut l = h("l", tar::SYMLINK, 0o777);
        l.link = b"/".to_vec();
        run(&r, "/d", &tar_of(&[(l, b""), (h("l/etc/passwd", tar::REG, 0o644), b"ctr")]), false).unwrap();
        assert_eq!(std::fs::read(r.join("etc/passwd")).unwrap(), b"ctr");

        let err = run(&r, "/d", &tar_of(&[(h("../escape", tar::REG, 0o644), b"x")]), false).unwrap_err();
        assert!(err.to_string().contains("is outside of"), "{err}");
        run(&r, "/d", &tar_of(&[(h("/../top", tar::REG, 0o644), b"x")]), false).unwrap();
        assert!(r.join("d/top").exists(), "a leading / cannot climb");
        let mut bad = h("bad", tar::SYMLINK, 0o777);
        bad.link = b"../../..".to_vec();
        let err = run(&r, "/d", &tar_of(&[(bad, b"")]), false).unwrap_err();
        assert!(err.to_string().starts_with("invalid symlink"), "{err}");
        let mut hl = h("hl", tar::HARDLINK, 0);
        hl.link = b"../../etc/passwd".to_vec();
        assert!(run(&r, "/d", &tar_of(&[(hl, b"")]), false).is_err());
        assert_eq!(std::fs::read(&host_file).unwrap(), b"host\n");
    }
}
