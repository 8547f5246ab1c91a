//! Mount plumbing shared by the snapshot drivers: an RAII guard that unmounts on drop, and a
//! reader of /proc/self/mountinfo used to refuse removing a snapshot that is still mounted and to
//! clean up after a crash.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::mount::UnmountFlags;

use crate::{Error, Result};

/// A mounted snapshot. Dropping it unmounts the target (lazily, with MNT_DETACH, if the mount is
/// busy), so an early return or a panic never leaves a mount behind. `into_path` hands the mount
/// to the caller, who then unmounts it with [`unmount`].
#[derive(Debug)]
#[must_use = "dropping the guard unmounts at once"]
pub struct MountGuard {
    target: PathBuf,
    armed: bool,
}

impl MountGuard {
    /// Wraps a mount that was just made at `target`.
    pub fn new(target: PathBuf) -> Self {
        MountGuard {
            target,
            armed: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Keeps the mount after the guard is gone; the caller owns it from now on.
    pub fn into_path(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.target)
    }

    /// Unmounts now and reports failure, which a drop cannot.
    pub fn unmount(mut self) -> Result<()> {
        self.armed = false;
        unmount(&self.target)
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = unmount(&self.target);
        }
    }
}

/// Unmounts `target`; a busy mount is detached instead so it goes away once unused. A target
/// that is not a mount point is not an error (unmounting is idempotent for crash recovery).
pub fn unmount(target: &Path) -> Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::BUSY) => {
            rustix::mount::unmount(target, UnmountFlags::NOFOLLOW | UnmountFlags::DETACH)
                .map_err(|e| Error::io("unmount (detach)", target, e.into()))
        }
        Err(e) => Err(Error::io("unmount", target, e.into())),
    }
}

/// Bind-mounts `source` on `target` (not recursively: a snapshot holds no mounts of its own).
pub fn bind(source: &Path, target: &Path) -> Result<MountGuard> {
    rustix::mount::mount_bind(source, target).map_err(|e| {
        Error::io(
            format!("bind mount {} on", source.display()),
            target,
            e.into(),
        )
    })?;
    Ok(MountGuard::new(target.to_path_buf()))
}

/// One line of /proc/self/mountinfo, with the fields the snapshotter needs.
#[derive(Debug, Clone)]
pub struct MountEntry {
    /// "major:minor" of the mounted filesystem.
    pub dev: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub super_options: String,
}

/// Every mount visible to this process, in mount order.
pub fn mount_table() -> Result<Vec<MountEntry>> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    Ok(text.lines().filter_map(parse_line).collect())
}

fn parse_line(line: &str) -> Option<MountEntry> {
    // id parent major:minor root mount-point options [optional fields...] - fstype source super
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.splitn(3, ' ').collect();
    Some(MountEntry {
        dev: left.get(2)?.to_string(),
        mount_point: PathBuf::from(unescape(left.get(4)?)),
        fs_type: right.first()?.to_string(),
        super_options: unescape(right.get(2).unwrap_or(&"")),
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = mount_table()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// Why `dir` (a snapshot's directory) cannot be removed now: a mount below it, a bind mount of
/// it (or of a directory in it) elsewhere, or an overlay using a directory in it as upper or
/// work dir. `None` when nothing uses it.
pub fn in_use(dir: &Path) -> Result<Option<String>> {
    let table = mount_table()?;
    let ours = mountable_dirs(dir)?;
    let Some(&(dir_dev, _)) = ours.first() else {
        return Ok(None);
    };
    let dir_dev = format!(
        "{}:{}",
        rustix::fs::major(dir_dev),
        rustix::fs::minor(dir_dev)
    );
    for m in &table {
        if m.mount_point.starts_with(dir) {
            return Ok(Some(format!("mounted at {}", m.mount_point.display())));
        }
        if m.fs_type == "overlay"
            && m.super_options.split(',').any(|o| {
                let v = o
                    .strip_prefix("upperdir=")
                    .or_else(|| o.strip_prefix("workdir="));
                v.is_some_and(|v| Path::new(v).starts_with(dir))
            })
        {
            return Ok(Some(format!(
                "in use by the overlay at {}",
                m.mount_point.display()
            )));
        }
        // A bind mount of a directory of ours shows our filesystem's device; stat only those
        // candidates (never mounts of other filesystems, which may hang).
        if m.dev == dir_dev {
            if let Ok(mp) = std::fs::symlink_metadata(&m.mount_point) {
                if ours.contains(&(mp.dev(), mp.ino())) {
                    return Ok(Some(format!("bind-mounted at {}", m.mount_point.display())));
                }
            }
        }
    }
    Ok(None)
}

/// (dev, inode) of `dir` and of its subdirectories: the trees a snapshot can be mounted from.
fn mountable_dirs(dir: &Path) -> Result<Vec<(u64, u64)>> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("stat", dir, e)),
    };
    let mut out = vec![(meta.dev(), meta.ino())];
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("read dir", dir, e))? {
        let entry = entry.map_err(|e| Error::io("read dir", dir, e))?;
        let m = entry
            .metadata()
            .map_err(|e| Error::io("stat", entry.path(), e))?;
        if m.is_dir() {
            out.push((m.dev(), m.ino()));
        }
    }
    Ok(out)
}

/// Unmounts everything at or below `dir` (deepest first, detaching what is busy). Used to clean
/// up leftovers of a crash and by tests.
pub fn unmount_all_under(dir: &Path) -> Result<()> {
    for mp in mounts_under(dir)? {
        if rustix::mount::unmount(&mp, UnmountFlags::NOFOLLOW).is_err() {
            rustix::mount::unmount(&mp, UnmountFlags::NOFOLLOW | UnmountFlags::DETACH)
                .map_err(|e| Error::io("unmount (detach)", &mp, e.into()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_mountinfo_parse() {
        let l = "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 - overlay overlay rw,lowerdir=/a:/b,upperdir=/u";
        let m = parse_line(l).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/mnt x"));
        assert_eq!(m.dev, "98:0");
        assert_eq!(m.fs_type, "overlay");
        assert_eq!(m.super_options, "rw,lowerdir=/a:/b,upperdir=/u");
    }
}
