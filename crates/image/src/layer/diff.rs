//! Producing a layer from a directory's changes ([`diff`]) and listing them ([`changes`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use rustix::fs::{FileType, Mode, OFlags};

use super::compression::{compress, Compression};
use super::fsutil::cstring;
use super::tar_writer::{TarWriter, WEntry, WKind};
use super::walk::{walk, Node, Sink};
use super::whiteout::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use super::{Change, ChangeKind, DiffSource, DiffStats};
use crate::{Error, Result};

/// Writes the OCI layer of `source`'s changes to `writer`, compressed with `compression`.
/// Entries come in sorted depth-first order with their owners, modes, mtimes (whole seconds)
/// and xattrs; deletions become `.wh.NAME` entries, opaque overlay directories a
/// `.wh..wh..opq` entry; files sharing an inode within the layer are written once, then as
/// hardlinks. Sockets are left out (as Docker does). Files are read while the tree may be in
/// use: one that shrinks meanwhile is padded with zeros to the size recorded in its header.
pub fn diff<W: Write>(source: &DiffSource<'_>, writer: W, compression: Compression) -> Result<DiffStats> {
    let out = compress(writer, compression)?;
    let mut sink = TarSink { tar: TarWriter::new(out), stats: DiffStats::default(), links: HashMap::new() };
    walk(source, &mut sink)?;
    let TarSink { tar, mut stats, .. } = sink;
    stats.tar_bytes = tar.written() + 1024;
    let out = tar.finish().map_err(write_err)?;
    out.finish().map_err(write_err)?;
    Ok(stats)
}

/// The changes of `source`, as `docker diff` lists them: added (A), changed (C) and deleted (D)
/// paths, absolute from the container's root, in sorted depth-first order; the parent
/// directories of changes are listed as changed.
pub fn changes(source: &DiffSource<'_>) -> Result<Vec<Change>> {
    let mut sink = ChangesSink { changes: Vec::new() };
    walk(source, &mut sink)?;
    Ok(sink.changes)
}

fn write_err(e: io::Error) -> Error {
    Error::io("write", "layer stream", e)
}

struct ChangesSink {
    changes: Vec<Change>,
}

fn abs(rel: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut p = b"/".to_vec();
    p.extend_from_slice(rel);
    PathBuf::from(std::ffi::OsStr::from_bytes(&p))
}

impl Sink for ChangesSink {
    fn entry(&mut self, rel: &[u8], _: &Node, kind: ChangeKind, _: Option<(BorrowedFd<'_>, &[u8])>) -> Result<()> {
        self.changes.push(Change { kind, path: abs(rel) });
        Ok(())
    }

    fn deleted(&mut self, rel: &[u8]) -> Result<()> {
        self.changes.push(Change { kind: ChangeKind::Deleted, path: abs(rel) });
        Ok(())
    }

    fn opaque(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }

    fn wants_hidden(&self) -> bool {
        true
    }
}

struct TarSink<W: Write> {
    tar: TarWriter<W>,
    stats: DiffStats,
    /// First path written for each (device, inode) with more than one link.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarSink<W> {
    /// A regular-file-like marker entry (whiteouts), with no content and no metadata.
    fn marker(&mut self, path: &[u8]) -> Result<()> {
        let e = WEntry {
            kind: WKind::File,
            path,
            link: b"",
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
        };
        self.tar.entry(&e, None).map_err(write_err)?;
        self.stats.entries += 1;
        Ok(())
    }
}

fn sibling(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let (parent, base) = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..=i], &rel[i + 1..]),
        None => (&b""[..], rel),
    };
    let mut p = parent.to_vec();
    p.extend_from_slice(name);
    p.extend_from_slice(base);
    p
}

impl<W: Write> Sink for TarSink<W> {
    fn entry(&mut self, rel: &[u8], node: &Node, _: ChangeKind, at: Option<(BorrowedFd<'_>, &[u8])>) -> Result<()> {
        let st = &node.st;
        let shown = || PathBuf::from(String::from_utf8_lossy(rel).into_owned());
        let mut kind = match node.file_type() {
            FileType::Directory => WKind::Dir,
            FileType::RegularFile => WKind::File,
            FileType::Symlink => WKind::Symlink,
            FileType::CharacterDevice => WKind::Char,
            FileType::BlockDevice => WKind::Block,
            FileType::Fifo => WKind::Fifo,
            _ => return Ok(()),
        };
        let mut link: &[u8] = &node.link;
        let first;
        if kind != WKind::Dir && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            match self.links.get(&key) {
                Some(p) => {
                    first = p.clone();
                    link = &first;
                    kind = WKind::Hardlink;
                }
                None => {
                    self.links.insert(key, rel.to_vec());
                }
            }
        }
        let mut path = rel.to_vec();
        if kind == WKind::Dir {
            path.push(b'/');
        }
        let e = WEntry {
            kind,
            path: &path,
            link,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid as u64,
            gid: st.st_gid as u64,
            mtime: st.st_mtime,
            size: if kind == WKind::File { st.st_size as u64 } else { 0 },
            dev_major: rustix::fs::major(st.st_rdev),
            dev_minor: rustix::fs::minor(st.st_rdev),
            xattrs: if kind == WKind::Hardlink { &[] } else { &node.xattrs },
        };
        if kind == WKind::File && e.size > 0 {
            let (dir, name) = at.ok_or_else(|| Error::io("read", shown(), io::ErrorKind::NotFound.into()))?;
            let file = open_file(dir, name).map_err(|err| Error::io("open", shown(), err))?;
            let mut reader: &File = &file;
            self.tar.entry(&e, Some(&mut reader)).map_err(|err| Error::io("archive", shown(), err))?;
        } else {
            self.tar.entry(&e, None).map_err(write_err)?;
        }
        self.stats.entries += 1;
        self.stats.content_bytes += e.size;
        match kind {
            WKind::File => self.stats.files += 1,
            WKind::Dir => self.stats.dirs += 1,
            WKind::Symlink => self.stats.symlinks += 1,
            WKind::Hardlink => self.stats.hardlinks += 1,
            WKind::Char | WKind::Block | WKind::Fifo => self.stats.specials += 1,
        }
        Ok(())
    }

    fn deleted(&mut self, rel: &[u8]) -> Result<()> {
        self.stats.whiteouts += 1;
        self.marker(&sibling(rel, WHITEOUT_PREFIX.as_bytes()))
    }

    fn opaque(&mut self, rel: &[u8]) -> Result<()> {
        self.stats.opaques += 1;
        let mut p = rel.to_vec();
        p.push(b'/');
        p.extend_from_slice(OPAQUE_WHITEOUT.as_bytes());
        self.marker(&p)
    }

    fn wants_hidden(&self) -> bool {
        false
    }
}

fn open_file(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<File> {
    let c = cstring(name)?;
    let fd = rustix::fs::openat(dir, c.as_c_str(), OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    Ok(File::from(fd))
}
