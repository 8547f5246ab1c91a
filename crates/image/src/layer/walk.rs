//! Walking a directory's changes (an overlay upper, or a directory against its base) in sorted
//! depth-first order, reporting each change to a [`Sink`]. Directories are walked through
//! descriptors, never following a symlink. A directory that did not change itself is reported
//! only once something below it is, just before that (Docker lists such parents as changed, and
//! a layer needs their entries to restore their metadata).

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat};

use super::fsutil::{self, cstring, is_dir, lstat_at, open_subdir, read_names};
use super::whiteout::{is_overlay_opaque, is_overlay_whiteout, OVERLAY_XATTR_PREFIX};
use super::{ChangeKind, DiffSource};
use crate::{Error, Result};

/// One file as found in the tree.
pub(crate) struct Node {
    pub st: Stat,
    pub link: Vec<u8>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Node {
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.st.st_mode)
    }
}

/// Receives the changes, in order.
pub(crate) trait Sink {
    /// `rel` was added or changed. `dir` and `name` locate it (`None` for a directory reported
    /// late, whose content is not needed).
    fn entry(&mut self, rel: &[u8], node: &Node, kind: ChangeKind, at: Option<(BorrowedFd<'_>, &[u8])>) -> Result<()>;
    /// `rel` was deleted.
    fn deleted(&mut self, rel: &[u8]) -> Result<()>;
    /// The directory `rel` (already reported) hides everything below it in the lower layers.
    fn opaque(&mut self, rel: &[u8]) -> Result<()>;
    /// Whether to list, as deletions, the lower content an opaque directory hides.
    fn wants_hidden(&self) -> bool;
}

/// Xattrs a layer does not carry: overlayfs's own, and SELinux labels (host policy).
fn carried_xattr(key: &[u8]) -> bool {
    !key.starts_with(OVERLAY_XATTR_PREFIX) && key != b"security.selinux"
}

fn io_err(step: &str, root: &Path, rel: &[u8]) -> impl Fn(std::io::Error) -> Error {
    let path = root.join(String::from_utf8_lossy(rel).as_ref());
    let step = step.to_string();
    move |e| Error::io(step.clone(), path.clone(), e)
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = parent.to_vec();
    if !v.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

fn open_root(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", path, e.into()))
}

/// Reads the node NAME in `dir` (its link target and carried xattrs too).
fn node(dir: BorrowedFd<'_>, name: &[u8], st: Stat, root: &Path, rel: &[u8]) -> Result<Node> {
    let link = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        let c = cstring(name).map_err(io_err("readlink", root, rel))?;
        rustix::fs::readlinkat(dir, c.as_c_str(), Vec::new())
            .map_err(|e| io_err("readlink", root, rel)(e.into()))?
            .into_bytes()
    } else {
        Vec::new()
    };
    let mut xattrs = fsutil::list_xattrs(dir, name).map_err(io_err("read xattrs", root, rel))?;
    xattrs.retain(|(k, _)| carried_xattr(k));
    Ok(Node { st, link, xattrs })
}

/// Whether a node changed from `old` (same type assumed).
fn differs(new: &Node, old: &Node) -> bool {
    let (n, o) = (&new.st, &old.st);
    if n.st_mode != o.st_mode || n.st_uid != o.st_uid || n.st_gid != o.st_gid || new.xattrs != old.xattrs {
        return true;
    }
    if is_dir(n) {
        // A directory's size and mtime change with its entries, which are reported themselves.
        return false;
    }
    n.st_rdev != o.st_rdev
        || n.st_size != o.st_size
        || n.st_mtime != o.st_mtime
        || n.st_mtime_nsec != o.st_mtime_nsec
        || new.link != old.link
}

/// Directories entered but not reported yet; reported as changed before their first change.
struct Pending {
    stack: Vec<(Vec<u8>, Node, bool)>,
}

impl Pending {
    fn flush(&mut self, sink: &mut dyn Sink) -> Result<()> {
        for (rel, node, reported) in self.stack.iter_mut() {
            if !*reported {
                sink.entry(rel, node, ChangeKind::Changed, None)?;
                *reported = true;
            }
        }
        Ok(())
    }
}

/// Walks `source`, reporting every change to `sink`.
pub(crate) fn walk(source: &DiffSource<'_>, sink: &mut dyn Sink) -> Result<()> {
    let mut pending = Pending { stack: Vec::new() };
    match source {
        DiffSource::Overlay { upper, lowers } => {
            let root = open_root(upper)?;
            let lowers = lowers.iter().map(|l| open_root(l).map(|fd| (fd, l.clone()))).collect::<Result<Vec<_>>>()?;
            let w = OverlayWalk { upper, lowers };
            w.dir(root.as_fd(), b"", sink, &mut pending)
        }
        DiffSource::Compare { dir, base } => {
            let new = open_root(dir)?;
            let old = base.map(open_root).transpose()?;
            let w = CompareWalk { dir, base: base.unwrap_or(Path::new("")) };
            w.dir(new.as_fd(), old.as_ref().map(|o| o.as_fd()), b"", sink, &mut pending)
        }
    }
}

struct OverlayWalk<'a> {
    upper: &'a Path,
    lowers: Vec<(OwnedFd, PathBuf)>,
}

impl OverlayWalk<'_> {
    /// The node at `rel` in the lower layers (top first), unless deleted there.
    fn lower(&self, rel: &[u8]) -> Result<Option<Node>> {
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b""[..], rel),
        };
        for (fd, path) in &self.lowers {
            let dir = match fsutil::open_dir_in(fd.as_fd(), parent, fsutil::Resolve::InRoot) {
                Ok(d) => d,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => continue,
                Err(e) => return Err(io_err("open", path, parent)(e)),
            };
            if let Some(st) = lstat_at(dir.as_fd(), name).map_err(io_err("stat", path, rel))? {
                if is_overlay_whiteout(&st) {
                    return Ok(None);
                }
                return node(dir.as_fd(), name, st, path, rel).map(Some);
            }
        }
        Ok(None)
    }

    /// Names in the directory `rel` of the lower layers (merged, without whited-out ones).
    fn lower_names(&self, rel: &[u8]) -> Result<BTreeSet<Vec<u8>>> {
        let mut names = BTreeSet::new();
        let mut gone = BTreeSet::new();
        for (fd, path) in &self.lowers {
            let dir = match fsutil::open_dir_in(fd.as_fd(), rel, fsutil::Resolve::InRoot) {
                Ok(d) => d,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => continue,
                Err(e) => return Err(io_err("open", path, rel)(e)),
            };
            for n in read_names(dir.as_fd()).map_err(io_err("read directory", path, rel))? {
                if gone.contains(&n) || names.contains(&n) {
                    continue;
                }
                match lstat_at(dir.as_fd(), &n).map_err(io_err("stat", path, rel))? {
                    Some(st) if is_overlay_whiteout(&st) => {
                        gone.insert(n);
                    }
                    Some(_) => {
                        names.insert(n);
                    }
                    None => {}
                }
            }
            if is_overlay_opaque(dir.as_fd(), b".").unwrap_or(false) {
                break;
            }
        }
        Ok(names)
    }

    fn dir(&self, dir: BorrowedFd<'_>, rel: &[u8], sink: &mut dyn Sink, pending: &mut Pending) -> Result<()> {
        let names = read_names(dir).map_err(io_err("read directory", self.upper, rel))?;
        for name in names {
            let child = join(rel, &name);
            let Some(st) = lstat_at(dir, &name).map_err(io_err("stat", self.upper, &child))? else { continue };
            if FileType::from_raw_mode(st.st_mode) == FileType::Socket {
                continue;
            }
            if is_overlay_whiteout(&st) {
                pending.flush(sink)?;
                sink.deleted(&child)?;
                continue;
            }
            let n = node(dir, &name, st, self.upper, &child)?;
            let lower = if self.lowers.is_empty() { None } else { self.lower(&child)? };
            let same_type = lower.as_ref().is_some_and(|l| l.file_type() == n.file_type());
            let kind = if lower.is_some() { ChangeKind::Changed } else { ChangeKind::Added };
            if !is_dir(&n.st) {
                pending.flush(sink)?;
                sink.entry(&child, &n, kind, Some((dir, &name)))?;
                continue;
            }
            let opaque = is_overlay_opaque(dir, &name).map_err(io_err("read xattrs", self.upper, &child))?;
            let unchanged = same_type && !opaque && !differs(&n, lower.as_ref().expect("same type"));
            let sub = open_subdir(dir, &name).map_err(io_err("open", self.upper, &child))?;
            if unchanged {
                pending.stack.push((child.clone(), n, false));
            } else {
                pending.flush(sink)?;
                sink.entry(&child, &n, kind, Some((dir, &name)))?;
                pending.stack.push((child.clone(), n, true));
                if opaque {
                    sink.opaque(&child)?;
                    if sink.wants_hidden() && lower.is_some() {
                        let upper_names: BTreeSet<Vec<u8>> = read_names(sub.as_fd())
                            .map_err(io_err("read directory", self.upper, &child))?
                            .into_iter()
                            .collect();
                        for hidden in self.lower_names(&child)? {
                            if !upper_names.contains(&hidden) {
                                sink.deleted(&join(&child, &hidden))?;
                            }
                        }
                    }
                }
            }
            self.dir(sub.as_fd(), &child, sink, pending)?;
            pending.stack.pop();
        }
        Ok(())
    }
}

struct CompareWalk<'a> {
    dir: &'a Path,
    base: &'a Path,
}

impl CompareWalk<'_> {
    fn dir(
        &self,
        new: BorrowedFd<'_>,
        old: Option<BorrowedFd<'_>>,
        rel: &[u8],
        sink: &mut dyn Sink,
        pending: &mut Pending,
    ) -> Result<()> {
        let new_names = read_names(new).map_err(io_err("read directory", self.dir, rel))?;
        let old_names = match old {
            Some(o) => read_names(o).map_err(io_err("read directory", self.base, rel))?,
            None => Vec::new(),
        };
        let (mut i, mut j) = (0, 0);
        while i < new_names.len() || j < old_names.len() {
            let ord = match (new_names.get(i), old_names.get(j)) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            if ord == std::cmp::Ordering::Greater {
                pending.flush(sink)?;
                sink.deleted(&join(rel, &old_names[j]))?;
                j += 1;
                continue;
            }
            let name = &new_names[i];
            i += 1;
            let old_here = if ord == std::cmp::Ordering::Equal {
                j += 1;
                old
            } else {
                None
            };
            self.child(new, old_here, rel, name, sink, pending)?;
        }
        Ok(())
    }

    fn child(
        &self,
        new: BorrowedFd<'_>,
        old: Option<BorrowedFd<'_>>,
        rel: &[u8],
        name: &[u8],
        sink: &mut dyn Sink,
        pending: &mut Pending,
    ) -> Result<()> {
        let child = join(rel, name);
        let Some(st) = lstat_at(new, name).map_err(io_err("stat", self.dir, &child))? else { return Ok(()) };
        if FileType::from_raw_mode(st.st_mode) == FileType::Socket {
            return Ok(());
        }
        let n = node(new, name, st, self.dir, &child)?;
        let old_node = match old {
            Some(o) => match lstat_at(o, name).map_err(io_err("stat", self.base, &child))? {
                Some(ost) => Some(node(o, name, ost, self.base, &child)?),
                None => None,
            },
            None => None,
        };
        let same_type = old_node.as_ref().is_some_and(|o| o.file_type() == n.file_type());
        let kind = if old_node.is_some() { ChangeKind::Changed } else { ChangeKind::Added };
        let changed = !same_type || differs(&n, old_node.as_ref().expect("same type"));
        if !is_dir(&n.st) {
            if changed {
                pending.flush(sink)?;
                sink.entry(&child, &n, kind, Some((new, name)))?;
            }
            return Ok(());
        }
        let sub = open_subdir(new, name).map_err(io_err("open", self.dir, &child))?;
        // Below a directory that replaced something else, everything is new.
        let old_sub = match (&old, same_type) {
            (Some(o), true) => Some(open_subdir(*o, name).map_err(io_err("open", self.base, &child))?),
            _ => None,
        };
        if changed {
            pending.flush(sink)?;
            sink.entry(&child, &n, kind, Some((new, name)))?;
        }
        pending.stack.push((child.clone(), n, changed));
        self.dir(sub.as_fd(), old_sub.as_ref().map(|o| o.as_fd()), &child, sink, pending)?;
        pending.stack.pop();
        Ok(())
    }
}
