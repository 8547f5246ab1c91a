//! `GET /containers/{id}/archive`: a tar of one resolved path, entries named as Docker names
//! them (under the requested base name). The tree is walked through directory descriptors,
//! each child opened O_NOFOLLOW relative to its parent: a directory swapped for a symlink while
//! the copy runs is skipped, never followed to the host. Like Docker's archive package:
//! entries in name order, hardlinks within the tree as link entries, sockets left out,
//! `security.capability` kept, times in whole seconds, numeric owners.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::in_root::{errno, file_type, fstat, kernel_fs, lstat_at, openat, read_names, readlink_at, reopen};
use super::tar::{self, Header};

/// Deeper trees are refused: each level holds a descriptor and a stack frame, and a container
/// can make a tree as deep as it likes.
const MAX_DEPTH: usize = 256;

struct Walker<'a> {
    w: &'a mut dyn Write,
    depth: usize,
    /// (dev, inode) of files with several links -> the name of the first one written.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
}

fn kind_of(st: &libc::stat) -> Option<u8> {
    Some(match file_type(st) {
        libc::S_IFREG => tar::REG,
        libc::S_IFDIR => tar::DIR,
        libc::S_IFLNK => tar::SYMLINK,
        libc::S_IFCHR => tar::CHAR,
        libc::S_IFBLK => tar::BLOCKDEV,
        libc::S_IFIFO => tar::FIFO,
        _ => return None,
    })
}

fn header(name: Vec<u8>, st: &libc::stat) -> Header {
    let kind = kind_of(st).unwrap_or(tar::REG);
    let (dev_major, dev_minor) = if matches!(kind, tar::CHAR | tar::BLOCKDEV) { (libc::major(st.st_rdev), libc::minor(st.st_rdev)) } else { (0, 0) };
    Header {
        name,
        kind,
        mode: st.st_mode & 0o7777,
        uid: u64::from(st.st_uid),
        gid: u64::from(st.st_gid),
        size: if kind == tar::REG { st.st_size as u64 } else { 0 },
        mtime: st.st_mtime,
        dev_major,
        dev_minor,
        ..Default::default()
    }
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    [prefix, b"/", name].concat()
}

/// A child that vanished or changed type between listing and opening: left out.
fn changed(e: &io::Error) -> bool {
    matches!(errno(e), libc::ENOENT | libc::ELOOP | libc::ENOTDIR | libc::EINVAL | libc::ENXIO)
}

fn capability(f: &File) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid descriptor, C string and buffer of the given size.
    let n = unsafe { libc::fgetxattr(f.as_raw_fd(), c"security.capability".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n > 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

impl Walker<'_> {
    /// A hardlink entry when this inode was written before under another name.
    fn link_seen(&mut self, name: &[u8], st: &libc::stat) -> io::Result<bool> {
        if st.st_nlink <= 1 || file_type(st) == libc::S_IFDIR {
            return Ok(false);
        }
        let key = (st.st_dev, st.st_ino);
        if let Some(first) = self.links.get(&key) {
            let h = Header { kind: tar::HARDLINK, link: first.clone(), size: 0, ..header(name.to_vec(), st) };
            tar::write_header(self.w, &h)?;
            return Ok(true);
        }
        self.links.insert(key, name.to_vec());
        Ok(false)
    }

    /// A regular file: its header with the size it has now, then exactly that many bytes
    /// (zeros if it shrinks while being read).
    fn file(&mut self, name: Vec<u8>, f: File) -> io::Result<()> {
        let st = fstat(f.as_fd())?;
        if self.link_seen(&name, &st)? {
            return Ok(());
        }
        let mut h = header(name, &st);
        if let Some(cap) = capability(&f) {
            h.xattrs.push((b"security.capability".to_vec(), cap));
        }
        tar::write_header(self.w, &h)?;
        let mut left = h.size;
        let mut src = f.take(h.size);
        self.buf.resize(256 << 10, 0);
        while left > 0 {
            let n = match src.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.w.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        io::copy(&mut io::repeat(0).take(left), self.w)?;
        self.w.write_all(&[0u8; tar::BLOCK][..tar::padding(h.size)])
    }

    /// A directory's entries, in name order, each opened relative to `dir` without following.
    fn walk(&mut self, dir: BorrowedFd<'_>, prefix: &[u8]) -> io::Result<()> {
        for n in read_names(dir)? {
            let Some(st) = lstat_at(dir, &n)? else { continue };
            let name = join(prefix, &n);
            match file_type(&st) {
                libc::S_IFDIR => {
                    let sub = match openat(dir, &n, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0) {
                        Ok(fd) => fd,
                        Err(e) if changed(&e) => continue,
                        Err(e) => return Err(e),
                    };
                    self.dir(name, sub)?;
                }
                libc::S_IFREG => {
                    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
                    let f = match openat(dir, &n, flags, 0) {
                        Ok(fd) => File::from(fd),
                        Err(e) if changed(&e) => continue,
                        Err(e) => return Err(e),
                    };
                    if file_type(&fstat(f.as_fd())?) == libc::S_IFREG {
                        self.file(name, f)?;
                    }
                }
                libc::S_IFLNK => {
                    let target = match readlink_at(dir, &n) {
                        Ok(t) => t,
                        Err(e) if changed(&e) => continue,
                        Err(e) => return Err(e),
                    };
                    if !self.link_seen(&name, &st)? {
                        tar::write_header(self.w, &Header { link: target, ..header(name, &st) })?;
                    }
                }
                libc::S_IFSOCK => {}
                _ => {
                    if !self.link_seen(&name, &st)? {
                        tar::write_header(self.w, &header(name, &st))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn dir(&mut self, name: Vec<u8>, fd: OwnedFd) -> io::Result<()> {
        let st = fstat(fd.as_fd())?;
        tar::write_header(self.w, &header([&name[..], b"/"].concat(), &st))?;
        if kernel_fs(fd.as_fd()) {
            return Ok(());
        }
        if self.depth >= MAX_DEPTH {
            return Err(io::Error::other(format!("{}: directory tree deeper than {MAX_DEPTH} levels", String::from_utf8_lossy(&name))));
        }
        self.depth += 1;
        let res = self.walk(fd.as_fd(), &name);
        self.depth -= 1;
        res
    }
}

/// Writes the tar of `target` (an O_PATH descriptor, already resolved inside the container's
/// root, and its stat) to `w`. `top` is the name of the top entry; "" for the container's root,
/// whose entries Docker names "/", "/bin", ...
pub(super) fn write_tree(target: BorrowedFd<'_>, st: &libc::stat, top: &[u8], w: &mut dyn Write) -> io::Result<()> {
    let mut wk = Walker { w, depth: 0, links: HashMap::new(), buf: Vec::new() };
    match file_type(st) {
        libc::S_IFDIR => wk.dir(top.to_vec(), reopen(target, libc::O_RDONLY | libc::O_DIRECTORY)?)?,
        libc::S_IFREG => {
            let f = File::from(reopen(target, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)?);
            wk.file(top.to_vec(), f)?;
        }
        libc::S_IFLNK => {
            let link = readlink_at(target, b"")?;
            tar::write_header(wk.w, &Header { link, ..header(top.to_vec(), st) })?;
        }
        libc::S_IFSOCK => {}
        _ => tar::write_header(wk.w, &header(top.to_vec(), st))?,
    }
    tar::write_end(wk.w)?;
    wk.w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn list(tar: &[u8]) -> Vec<(String, u8, Vec<u8>, String)> {
        let mut r = tar::Reader::new(tar);
        let mut out = Vec::new();
        while let Some(h) = r.next().unwrap() {
            let mut data = vec![0; h.size as usize];
            let mut off = 0;
            while off < data.len() {
                off += r.read_data(&mut data[off..]).unwrap();
            }
            out.push((String::from_utf8_lossy(&h.name).into_owned(), h.kind, data, String::from_utf8_lossy(&h.link).into_owned()));
        }
        out
    }

    fn path_fd(p: &std::path::Path) -> (OwnedFd, libc::stat) {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_NOFOLLOW).open(p).unwrap();
        let fd = OwnedFd::from(f);
        let st = fstat(fd.as_fd()).unwrap();
        (fd, st)
    }

    #[test]
    fn tree_as_docker_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("f"), "hi\n").unwrap();
        std::fs::set_permissions(d.join("f"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::fs::hard_link(d.join("f"), d.join("hard")).unwrap();
        std::fs::write(d.join("sub/g"), "x\n").unwrap();
        symlink("/etc/passwd", d.join("lnk")).unwrap();
        nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();

        let (fd, st) = path_fd(&d);
        let mut out = Vec::new();
        write_tree(fd.as_fd(), &st, b"d", &mut out).unwrap();
        let got = list(&out);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["d/", "d/f", "d/fifo", "d/hard", "d/lnk", "d/sub/", "d/sub/g"], "sorted, socket left out");
        assert_eq!(got[1].2, b"hi\n");
        assert_eq!((got[3].1, got[3].3.as_str()), (tar::HARDLINK, "d/f"));
        assert_eq!((got[4].1, got[4].3.as_str()), (tar::SYMLINK, "/etc/passwd"), "a link inside is archived, not followed");
        assert_eq!(got[2].1, tar::FIFO);

        let mut out = Vec::new();
        write_tree(fd.as_fd(), &st, b".", &mut out).unwrap();
        assert_eq!(list(&out)[0].0, "./", "`dir/.` gives ./ entries");
        let mut out = Vec::new();
        write_tree(fd.as_fd(), &st, b"", &mut out).unwrap();
        assert_eq!(list(&out)[1].0, "/f", "the root's entries");

        let (ffd, fst) = path_fd(&d.join("f"));
        let mut out = Vec::new();
        write_tree(ffd.as_fd(), &fst, b"renamed", &mut out).unwrap();
        let got = list(&out);
        assert_eq!((got.len(), got[0].0.as_str(), got[0].2.as_slice()), (1, "renamed", &b"hi\n"[..]));
    }

    #[test]
    fn refuses_endless_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = (0..MAX_DEPTH + 2).fold(tmp.path().join("t"), |p, _| p.join("d"));
        std::fs::create_dir_all(&deep).unwrap();
        let (fd, st) = path_fd(&tmp.path().join("t"));
        let err = write_tree(fd.as_fd(), &st, b"t", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("deeper than"), "{err}");
        let root = OwnedFd::from(File::open(tmp.path()).unwrap());
        assert!(super::super::in_root::remove_all_at(root.as_fd(), b"t").is_err());
    }
}
