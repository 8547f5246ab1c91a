//! Applying a layer archive to a directory (see the module documentation for the contract).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Timespec, Timestamps};

use super::compression::{detect_stream, Compression};
use super::fsutil::{self, is_dir, lstat_at, open_dir_in, remove_all_at, Resolve};
use super::tar_reader::{Chunk, Entry, Kind, TarReader, Time};
use super::whiteout::{self, Whiteout};
use super::{ApplyOptions, ApplyStats, WhiteoutMode};
use crate::{Error, Result};

/// Applies the layer read from `reader` (tar, tar+gzip or tar+zstd, detected) as the new
/// directory `target`, which must not exist; its parent must. The layer is unpacked into a
/// staging directory next to `target` and renamed into place once complete: on any error,
/// nothing is left behind. The stream is read to its end (so a digest computed by a wrapping
/// reader covers all of it, and compressed trailers are checked).
pub fn apply<R: Read>(reader: R, target: &Path, opts: &ApplyOptions) -> Result<ApplyStats> {
    match std::fs::symlink_metadata(target) {
        Ok(_) => return Err(Error::Conflict(format!("{}: already exists", target.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("stat", target, e)),
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| Error::InvalidArgument(format!("{}: not a directory name", target.display())))?;
    let parent_fd = rustix::fs::open(parent, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", parent, e.into()))?;
    let staging = make_staging(parent_fd.as_fd(), parent, name.as_encoded_bytes())?;

    let result = (|| {
        let root = rustix::fs::openat(
            parent_fd.as_fd(),
            staging.as_slice(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", parent.join(lossy(&staging)), e.into()))?;
        let stats = Applier::new(root.as_fd(), opts, true)?.run(reader)?;
        if opts.sync {
            rustix::fs::syncfs(&root).map_err(|e| Error::io("syncfs", target, e.into()))?;
        }
        match rustix::fs::renameat_with(
            parent_fd.as_fd(),
            staging.as_slice(),
            parent_fd.as_fd(),
            name,
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(stats),
            Err(rustix::io::Errno::EXIST) => Err(Error::Conflict(format!("{}: already exists", target.display()))),
            Err(e) => Err(Error::io("rename into place", target, e.into())),
        }
    })();
    if result.is_err() {
        // Best effort: the error being returned says what went wrong.
        let _ = remove_all_at(parent_fd.as_fd(), &staging);
    }
    result
}

/// Applies the layer read from `reader` on top of the existing directory `dir` (flattening
/// layers into one directory, as the copy snapshotter does). Not atomic: on error `dir` is left
/// half-applied, and the caller (which applies into a directory of its own) discards it.
pub fn apply_onto<R: Read>(reader: R, dir: &Path, opts: &ApplyOptions) -> Result<ApplyStats> {
    let root = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", dir, e.into()))?;
    let stats = Applier::new(root.as_fd(), opts, false)?.run(reader)?;
    if opts.sync {
        rustix::fs::syncfs(&root).map_err(|e| Error::io("syncfs", dir, e.into()))?;
    }
    Ok(stats)
}

static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

/// Creates `.NAME.apply-PID-SEQ` in the parent directory and returns its name.
fn make_staging(parent_fd: BorrowedFd<'_>, parent: &Path, name: &[u8]) -> Result<Vec<u8>> {
    loop {
        let mut staging = b".".to_vec();
        staging.extend_from_slice(name);
        let seq = STAGING_SEQ.fetch_add(1, Ordering::Relaxed);
        staging.extend_from_slice(format!(".apply-{}-{seq}", std::process::id()).as_bytes());
        match rustix::fs::mkdirat(parent_fd, staging.as_slice(), Mode::from_raw_mode(0o700)) {
            Ok(()) => return Ok(staging),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(Error::io("create staging directory", parent.join(lossy(&staging)), e.into())),
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The entry path made relative and clean: a leading `/` stripped (as Docker does), `.` and
/// empty components dropped, `..` applied; climbing above the root is refused.
pub(crate) fn clean(path: &[u8]) -> std::result::Result<Vec<u8>, &'static str> {
    if path.contains(&0) {
        return Err("path contains a NUL byte");
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("path climbs out of the target with `..`");
                }
            }
            c => out.push(c),
        }
    }
    Ok(out.join(&b'/'))
}

/// (parent, last component) of a clean relative path; ("", "") for the root.
fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (b"", rel),
    }
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = parent.to_vec();
    if !v.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn timespec(t: Time) -> Timespec {
    Timespec { tv_sec: t.sec, tv_nsec: t.nsec as _ }
}

const CHUNK: usize = 256 * 1024;
/// Zero blocks of this size are skipped (left as holes) instead of written.
const HOLE_BLOCK: usize = 4096;
/// With `writeback`, a file's content is queued for writing to disk in steps of this size.
const WRITEBACK_STEP: u64 = 4 << 20;

struct Applier<'a> {
    root: BorrowedFd<'a>,
    opts: &'a ApplyOptions,
    resolve: Resolve,
    stats: ApplyStats,
    /// Directory times, set at the end (creating entries inside changes them).
    dir_times: Vec<(Vec<u8>, Time, Option<Time>)>,
    /// Paths created by this layer and their ancestors: whiteouts only hide lower content.
    unpacked: HashSet<Vec<u8>>,
    buf: Vec<u8>,
}

impl<'a> Applier<'a> {
    fn new(root: BorrowedFd<'a>, opts: &'a ApplyOptions, fresh: bool) -> Result<Self> {
        let me = Applier {
            root,
            opts,
            resolve: if opts.refuse_escaping_symlinks { Resolve::Beneath } else { Resolve::InRoot },
            stats: ApplyStats::default(),
            dir_times: Vec::new(),
            unpacked: HashSet::new(),
            buf: Vec::new(),
        };
        if fresh {
            // The root of a new tree: 0755, owned by (mapped) root, whatever the umask.
            me.implicit_dir_metadata(root, b".").map_err(|e| Error::io("set up", "staging directory", e))?;
        }
        Ok(me)
    }

    fn run<R: Read>(mut self, reader: R) -> Result<ApplyStats> {
        let (compression, stream) = detect_stream(reader)?;
        let decoded: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(stream),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(stream).map_err(|e| Error::io("start zstd decoder", "layer", e))?,
            ),
        };
        let mut tar = TarReader::new(Counting { inner: decoded, n: 0 });
        while let Some(entry) = tar.next_entry()? {
            self.stats.entries += 1;
            self.entry(&entry, &mut tar)?;
        }
        let mut rest = tar.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
                Error::Malformed(format!("layer: corrupt stream after the archive: {e}"))
            }
            _ => Error::io("read", "layer stream", e),
        })?;
        self.stats.tar_bytes = rest.n;
        self.set_dir_times()?;
        Ok(self.stats)
    }

    fn unsafe_entry(shown: &str, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry { entry: shown.to_string(), reason: reason.into() }
    }

    /// An error resolving a path of the entry.
    fn resolve_err(&self, step: &str, shown: &str, e: io::Error) -> Error {
        if errno(&e) == libc::EXDEV {
            Self::unsafe_entry(shown, "path leaves the target (a symlink pointing outside, or a mount point)")
        } else {
            Error::io(step, shown, e)
        }
    }

    fn entry<R: Read>(&mut self, e: &Entry, tar: &mut TarReader<R>) -> Result<()> {
        let shown = lossy(&e.path);
        let rel = clean(&e.path).map_err(|r| Self::unsafe_entry(&shown, r))?;
        let (parent, base) = split_last(&rel);
        match whiteout::classify(base) {
            Whiteout::No => {}
            Whiteout::Meta => return Ok(()),
            Whiteout::Opaque => {
                self.stats.opaques += 1;
                return self.opaque(parent, &shown);
            }
            Whiteout::Remove(name) => {
                if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                    return Err(Self::unsafe_entry(&shown, "whiteout of an invalid name"));
                }
                self.stats.whiteouts += 1;
                return self.whiteout(parent, name, &shown);
            }
        }
        if rel.is_empty() {
            if e.kind != Kind::Dir {
                return Err(Self::unsafe_entry(&shown, "entry would replace the target directory"));
            }
            self.stats.dirs += 1;
            self.metadata(self.root, b".", e, None, &shown)?;
            self.dir_times.push((rel, e.mtime, e.atime));
            return Ok(());
        }
        if matches!(e.kind, Kind::Char | Kind::Block) && !self.opts.allow_devices {
            return Err(Self::unsafe_entry(&shown, "device nodes are not allowed"));
        }
        let source = match e.kind {
            Kind::Hardlink => Some(self.link_source(e, &shown)?),
            _ => None,
        };
        let dir = self.parent_dir(parent, &shown)?;
        let dir = dir.as_fd();
        if let Some(st) = lstat_at(dir, base).map_err(|err| Error::io("stat", &shown, err))? {
            let same_dir = e.kind == Kind::Dir && is_dir(&st);
            let same_inode = matches!(&source, Some((_, _, s)) if s.st_dev == st.st_dev && s.st_ino == st.st_ino);
            if same_inode {
                self.stats.hardlinks += 1;
                self.mark_unpacked(rel);
                return Ok(());
            }
            if !same_dir {
                remove_all_at(dir, base).map_err(|err| Error::io("replace", &shown, err))?;
            }
        }
        let name = fsutil::cstring(base).map_err(|err| Error::io("create", &shown, err))?;
        let name = name.as_c_str();
        match e.kind {
            Kind::Dir => {
                match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(err) => return Err(Error::io("create directory", &shown, err.into())),
                }
                self.stats.dirs += 1;
                self.metadata(dir, base, e, None, &shown)?;
                self.dir_times.push((rel.clone(), e.mtime, e.atime));
            }
            Kind::File => {
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|err| Error::io("create file", &shown, err.into()))?;
                let file = File::from(fd);
                self.write_content(&file, e, tar, &shown)?;
                self.stats.files += 1;
                self.metadata(dir, base, e, Some(&file), &shown)?;
            }
            Kind::Symlink => {
                let target = fsutil::cstring(&e.link).map_err(|err| Error::io("create symlink", &shown, err))?;
                rustix::fs::symlinkat(target.as_c_str(), dir, name)
                    .map_err(|err| Error::io("create symlink", &shown, err.into()))?;
                self.stats.symlinks += 1;
                self.metadata(dir, base, e, None, &shown)?;
            }
            Kind::Hardlink => {
                let (sdir, sname, _) = source.expect("resolved above");
                rustix::fs::linkat(sdir.as_fd(), sname.as_slice(), dir, name, AtFlags::empty())
                    .map_err(|err| Error::io("create hardlink", &shown, err.into()))?;
                self.stats.hardlinks += 1;
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let ft = match e.kind {
                    Kind::Char => FileType::CharacterDevice,
                    Kind::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rustix::fs::makedev(e.dev_major, e.dev_minor);
                rustix::fs::mknodat(dir, name, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|err| Error::io("create special file", &shown, err.into()))?;
                self.stats.specials += 1;
                self.metadata(dir, base, e, None, &shown)?;
            }
        }
        self.mark_unpacked(rel);
        Ok(())
    }

    /// Records a path as created by this layer, with its ancestors.
    fn mark_unpacked(&mut self, mut rel: Vec<u8>) {
        loop {
            let parent = split_last(&rel).0.to_vec();
            if !self.unpacked.insert(rel) || parent.is_empty() {
                return;
            }
            rel = parent;
        }
    }

    /// Resolves a hardlink's target: it must already exist inside the target (from this layer or
    /// one below) and not be a directory.
    fn link_source(&self, e: &Entry, shown: &str) -> Result<(OwnedFd, Vec<u8>, rustix::fs::Stat)> {
        let link = lossy(&e.link);
        let rel = clean(&e.link).map_err(|r| Self::unsafe_entry(shown, format!("hardlink target {link:?}: {r}")))?;
        if rel.is_empty() {
            return Err(Self::unsafe_entry(shown, "hardlink to the target directory"));
        }
        let missing = || Self::unsafe_entry(shown, format!("hardlink target {link:?} is not in the layer or below"));
        let (p, b) = split_last(&rel);
        let dir = match open_dir_in(self.root, p, self.resolve) {
            Ok(d) => d,
            Err(err) if matches!(errno(&err), libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => return Err(missing()),
            Err(err) => return Err(self.resolve_err("resolve hardlink target", shown, err)),
        };
        let st = lstat_at(dir.as_fd(), b).map_err(|err| Error::io("stat hardlink target", shown, err))?;
        let st = st.ok_or_else(missing)?;
        if is_dir(&st) {
            return Err(Self::unsafe_entry(shown, format!("hardlink target {link:?} is a directory")));
        }
        Ok((dir, b.to_vec(), st))
    }

    /// Opens the directory `rel`, creating what is missing of it (0755, owned by root).
    fn parent_dir(&self, rel: &[u8], shown: &str) -> Result<OwnedFd> {
        match open_dir_in(self.root, rel, self.resolve) {
            Ok(fd) => return Ok(fd),
            Err(e) if errno(&e) == libc::ENOENT => {}
            Err(e) => return Err(self.resolve_err("open parent directory", shown, e)),
        }
        let mut cur = open_dir_in(self.root, b"", self.resolve).map_err(|e| Error::io("open", "target", e))?;
        let mut end = 0;
        for comp in rel.split(|&b| b == b'/') {
            end += comp.len();
            let prefix = &rel[..end];
            end += 1;
            match open_dir_in(self.root, prefix, self.resolve) {
                Ok(fd) => cur = fd,
                Err(e) if errno(&e) == libc::ENOENT => {
                    rustix::fs::mkdirat(cur.as_fd(), comp, Mode::from_raw_mode(0o755))
                        .map_err(|e| Error::io("create parent directory", shown, e.into()))?;
                    self.implicit_dir_metadata(cur.as_fd(), comp)
                        .map_err(|e| Error::io("create parent directory", shown, e))?;
                    cur = open_dir_in(self.root, prefix, self.resolve)
                        .map_err(|e| self.resolve_err("open parent directory", shown, e))?;
                }
                Err(e) => return Err(self.resolve_err("open parent directory", shown, e)),
            }
        }
        Ok(cur)
    }

    /// A directory the archive did not describe: 0755, owned by (mapped) root.
    fn implicit_dir_metadata(&self, dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
        let name = fsutil::cstring(name)?;
        if self.opts.preserve_ownership {
            let (uid, gid) = self.map_ids(0, 0);
            if (uid, gid) != (0, 0) {
                rustix::fs::chownat(
                    dir,
                    name.as_c_str(),
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
        }
        rustix::fs::chmodat(dir, name.as_c_str(), Mode::from_raw_mode(0o755), AtFlags::empty())?;
        Ok(())
    }

    fn map_ids(&self, uid: u32, gid: u32) -> (u32, u32) {
        match &self.opts.id_map {
            Some(map) => map(uid, gid),
            None => (uid, gid),
        }
    }

    /// Owner, mode, xattrs and (except for directories) times of a created entry, in the order
    /// that keeps them: chown clears setuid bits and file capabilities, so it comes first.
    fn metadata(
        &mut self,
        dir: BorrowedFd<'_>,
        base: &[u8],
        e: &Entry,
        file: Option<&File>,
        shown: &str,
    ) -> Result<()> {
        let name = fsutil::cstring(base).map_err(|err| Error::io("set metadata", shown, err))?;
        let name = name.as_c_str();
        let err = |step: &'static str| move |err: rustix::io::Errno| Error::io(step, shown, err.into());
        if self.opts.preserve_ownership {
            let uid = u32::try_from(e.uid).map_err(|_| Error::Malformed(format!("layer: entry {shown:?}: bad uid")))?;
            let gid = u32::try_from(e.gid).map_err(|_| Error::Malformed(format!("layer: entry {shown:?}: bad gid")))?;
            let (uid, gid) = self.map_ids(uid, gid);
            let (uid, gid) = (Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)));
            match file {
                Some(f) => rustix::fs::fchown(f, uid, gid),
                None => rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
            }
            .map_err(err("chown"))?;
        }
        if e.kind != Kind::Symlink {
            let mode = Mode::from_raw_mode(e.mode & 0o7777);
            match file {
                Some(f) => rustix::fs::fchmod(f, mode),
                None => rustix::fs::chmodat(dir, name, mode, AtFlags::empty()),
            }
            .map_err(err("chmod"))?;
        }
        for (key, value) in &e.xattrs {
            if key.starts_with(b"trusted.") && !self.opts.allow_trusted_xattrs {
                self.stats.xattrs_skipped += 1;
                continue;
            }
            let res = match file {
                Some(f) => fsutil::cstring(key).and_then(|k| {
                    rustix::fs::fsetxattr(f, k.as_c_str(), value, rustix::fs::XattrFlags::empty()).map_err(Into::into)
                }),
                None => fsutil::set_xattr(dir, base, key, value),
            };
            match res {
                Ok(()) => {}
                // Not every filesystem takes every namespace (user.* on a symlink, ...): as Docker.
                Err(x) if matches!(errno(&x), libc::ENOTSUP | libc::EPERM) => self.stats.xattrs_skipped += 1,
                Err(x) => return Err(Error::io(format!("set xattr {}", lossy(key)), shown, x)),
            }
        }
        if e.kind != Kind::Dir {
            let times =
                Timestamps { last_access: timespec(e.atime.unwrap_or(e.mtime)), last_modification: timespec(e.mtime) };
            match file {
                Some(f) => rustix::fs::futimens(f, &times),
                None => rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW),
            }
            .map_err(err("set times"))?;
        }
        Ok(())
    }

    /// Streams the entry's content into `file` through a fixed buffer; zero blocks become holes.
    fn write_content<R: Read>(&mut self, file: &File, e: &Entry, tar: &mut TarReader<R>, shown: &str) -> Result<()> {
        self.buf.resize(CHUNK, 0);
        let mut off = 0u64;
        let mut queued = 0u64;
        loop {
            match tar.read_chunk(&mut self.buf)? {
                Chunk::End => break,
                Chunk::Hole(n) => off += n,
                Chunk::Data(n) => {
                    write_sparse(file, &self.buf[..n], off).map_err(|err| Error::io("write", shown, err))?;
                    off += n as u64;
                }
            }
            if self.opts.writeback && off - queued >= WRITEBACK_STEP {
                crate::pagecache::start_writeback(file, queued, off - queued);
                queued = off;
            }
        }
        if self.opts.writeback && queued > 0 && off > queued {
            crate::pagecache::start_writeback(file, queued, off - queued);
        }
        if off != e.size {
            return Err(Error::Malformed(format!("layer: entry {shown:?}: truncated content")));
        }
        file.set_len(off).map_err(|err| Error::io("write", shown, err))?;
        self.stats.content_bytes += off;
        Ok(())
    }

    fn whiteout(&mut self, parent: &[u8], name: &[u8], shown: &str) -> Result<()> {
        let victim = join(parent, name);
        if self.unpacked.contains(&victim) {
            // A whiteout only hides lower layers' content, never its own layer's.
            return Ok(());
        }
        match self.opts.whiteouts {
            WhiteoutMode::Apply => {
                let dir = match open_dir_in(self.root, parent, self.resolve) {
                    Ok(d) => d,
                    Err(e) if matches!(errno(&e), libc::ENOENT | libc::ENOTDIR) => return Ok(()),
                    Err(e) => return Err(self.resolve_err("open parent directory", shown, e)),
                };
                remove_all_at(dir.as_fd(), name).map_err(|e| Error::io("remove whited-out path", shown, e))
            }
            WhiteoutMode::Overlay => {
                let dir = self.parent_dir(parent, shown)?;
                remove_all_at(dir.as_fd(), name).map_err(|e| Error::io("replace", shown, e))?;
                whiteout::make_overlay_whiteout(dir.as_fd(), name)
                    .map_err(|e| Error::io("create overlay whiteout", shown, e))
            }
        }
    }

    fn opaque(&mut self, dir_rel: &[u8], shown: &str) -> Result<()> {
        match self.opts.whiteouts {
            WhiteoutMode::Apply => {
                // Remove everything below the directory that this layer did not create.
                let mut work = vec![dir_rel.to_vec()];
                while let Some(d) = work.pop() {
                    let fd = match open_dir_in(self.root, &d, self.resolve) {
                        Ok(fd) => fd,
                        Err(e) if matches!(errno(&e), libc::ENOENT | libc::ENOTDIR) => continue,
                        Err(e) => return Err(self.resolve_err("open opaque directory", shown, e)),
                    };
                    let names = fsutil::read_names(fd.as_fd()).map_err(|e| Error::io("read directory", shown, e))?;
                    for name in names {
                        let child = join(&d, &name);
                        if !self.unpacked.contains(&child) {
                            remove_all_at(fd.as_fd(), &name).map_err(|e| Error::io("remove hidden path", shown, e))?;
                        } else if lstat_at(fd.as_fd(), &name).ok().flatten().is_some_and(|st| is_dir(&st)) {
                            work.push(child);
                        }
                    }
                }
                Ok(())
            }
            WhiteoutMode::Overlay => {
                let fd = self.parent_dir(dir_rel, shown)?;
                whiteout::set_overlay_opaque(fd.as_fd(), b".").map_err(|e| Error::io("mark opaque", shown, e))
            }
        }
    }

    fn set_dir_times(&mut self) -> Result<()> {
        for (rel, mtime, atime) in std::mem::take(&mut self.dir_times) {
            let (p, b) = split_last(&rel);
            let name: &[u8] = if rel.is_empty() { b"." } else { b };
            let dir = match open_dir_in(self.root, p, self.resolve) {
                Ok(d) => d,
                Err(e) if matches!(errno(&e), libc::ENOENT | libc::ENOTDIR) => continue,
                Err(e) => return Err(self.resolve_err("set times", &lossy(&rel), e)),
            };
            let times =
                Timestamps { last_access: timespec(atime.unwrap_or(mtime)), last_modification: timespec(mtime) };
            match rustix::fs::utimensat(dir.as_fd(), name, &times, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(Error::io("set times", PathBuf::from(lossy(&rel)), e.into())),
            }
        }
        Ok(())
    }
}

/// Writes `data` at `off`, skipping whole zero blocks (they stay holes; the caller sets the
/// final length).
fn write_sparse(file: &File, data: &[u8], off: u64) -> io::Result<()> {
    let mut run_start: Option<usize> = None;
    let mut pos = 0;
    while pos < data.len() {
        let end = (pos + HOLE_BLOCK).min(data.len());
        let zero = is_zero(&data[pos..end]);
        match (zero, run_start) {
            (true, Some(s)) => {
                file.write_all_at(&data[s..pos], off + s as u64)?;
                run_start = None;
            }
            (false, None) => run_start = Some(pos),
            _ => {}
        }
        pos = end;
    }
    if let Some(s) = run_start {
        file.write_all_at(&data[s..], off + s as u64)?;
    }
    Ok(())
}

fn is_zero(block: &[u8]) -> bool {
    let mut words = block.chunks_exact(16);
    words.all(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

/// Counts the bytes read through it (the uncompressed tar size).
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
