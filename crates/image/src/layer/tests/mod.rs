//! Tests of layers: crafted archives (built with the `tar` crate's raw header API, so they can
//! hold what a well-behaved writer refuses), round trips, and a deterministic mutation loop.

mod apply;
mod mutate;
mod roundtrip;
mod safety;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{ApplyOptions, WhiteoutMode};

pub(super) const MTIME: u64 = 1_600_000_000;

/// A tar archive built in memory, header by header.
pub(super) struct Tar {
    pub buf: Vec<u8>,
}

/// One raw entry for [`Tar::raw`].
pub(super) struct Raw<'a> {
    pub kind: u8,
    pub path: &'a [u8],
    pub link: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub data: &'a [u8],
    pub dev: (u32, u32),
}

impl Default for Raw<'_> {
    fn default() -> Self {
        Raw { kind: b'0', path: b"", link: b"", mode: 0o644, uid: 0, gid: 0, mtime: MTIME, data: b"", dev: (0, 0) }
    }
}

fn fill(dst: &mut [u8], src: &[u8]) {
    dst.fill(0);
    dst[..src.len()].copy_from_slice(src);
}

impl Tar {
    pub fn new() -> Self {
        Tar { buf: Vec::new() }
    }

    pub fn header(r: &Raw<'_>, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        fill(&mut h.as_old_mut().name, &r.path[..r.path.len().min(100)]);
        fill(&mut h.as_old_mut().linkname, &r.link[..r.link.len().min(100)]);
        h.set_entry_type(tar::EntryType::new(r.kind));
        h.set_mode(r.mode);
        h.set_uid(r.uid);
        h.set_gid(r.gid);
        h.set_mtime(r.mtime);
        h.set_size(size);
        h.set_device_major(r.dev.0).unwrap();
        h.set_device_minor(r.dev.1).unwrap();
        h.set_cksum();
        h
    }

    fn block_data(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    /// Appends an entry exactly as described (a path over 100 bytes gets a PAX record).
    pub fn raw(&mut self, r: Raw<'_>) -> &mut Self {
        if r.path.len() > 100 {
            self.pax(&[("path", r.path)]);
        }
        let h = Self::header(&r, r.data.len() as u64);
        self.buf.extend_from_slice(h.as_bytes());
        self.block_data(r.data);
        self
    }

    /// A PAX extended header for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len = len.to_string().len() + rest;
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let h = Self::header(&Raw { kind: b'x', path: b"PaxHeaders/x", ..Raw::default() }, data.len() as u64);
        self.buf.extend_from_slice(h.as_bytes());
        self.block_data(&data);
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.raw(Raw { path: path.as_bytes(), data, ..Raw::default() })
    }

    pub fn file_mode(&mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> &mut Self {
        self.raw(Raw { path: path.as_bytes(), data, mode, uid, gid, ..Raw::default() })
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.raw(Raw { kind: b'5', path: path.as_bytes(), mode: 0o755, ..Raw::default() })
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(Raw { kind: b'2', path: path.as_bytes(), link: target.as_bytes(), mode: 0o777, ..Raw::default() })
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(Raw { kind: b'1', path: path.as_bytes(), link: target.as_bytes(), ..Raw::default() })
    }

    pub fn device(&mut self, kind: u8, path: &str, major: u32, minor: u32) -> &mut Self {
        self.raw(Raw { kind, path: path.as_bytes(), dev: (major, minor), mode: 0o600, ..Raw::default() })
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

pub(super) fn opts(whiteouts: WhiteoutMode) -> ApplyOptions {
    ApplyOptions { whiteouts, ..ApplyOptions::default() }
}

/// A scratch directory (removed on drop) with a `target` path that does not exist yet.
pub(super) struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch { dir: tempfile::tempdir().unwrap() }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    /// Names in the scratch directory itself (to see that nothing was left behind).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

pub(super) fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap_or(0);
    let mut out = Vec::new();
    for key in names[..n].split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(path, key, &mut value[..]) {
            out.push((String::from_utf8_lossy(key).into_owned(), value[..len].to_vec()));
        }
    }
    out.sort();
    out
}

pub(super) fn xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    xattrs(path).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// A description of every file under `root` (type, mode, owner, size, mtime in seconds, content
/// hash, link target, device, xattrs, hardlink group), keyed by relative path. `skip_xattr`
/// leaves out xattrs with that prefix.
pub(super) fn tree(root: &Path, skip_xattr: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        for p in entries {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_file() {
                "file"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_fifo() {
                "fifo"
            } else {
                "other"
            };
            let mut d = format!("{kind} mode={:o} owner={}:{}", md.mode() & 0o7777, md.uid(), md.gid());
            if !ft.is_dir() {
                d += &format!(" mtime={}", md.mtime());
            }
            if ft.is_file() {
                d += &format!(" size={} hash={:x}", md.len(), fnv(&std::fs::read(&p).unwrap()));
            }
            if ft.is_symlink() {
                d += &format!(" -> {}", std::fs::read_link(&p).unwrap().display());
            }
            if ft.is_char_device() || ft.is_block_device() {
                d += &format!(" rdev={}", md.rdev());
            }
            let xs: Vec<String> = xattrs(&p)
                .into_iter()
                .filter(|(k, _)| skip_xattr.is_empty() || !k.starts_with(skip_xattr))
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            if !xs.is_empty() {
                d += &format!(" xattrs={xs:?}");
            }
            if !ft.is_dir() && md.nlink() > 1 {
                let first = inodes.entry((md.dev(), md.ino())).or_insert_with(|| rel.clone());
                d += &format!(" link-group={first}");
            }
            out.insert(rel, d);
            if ft.is_dir() {
                stack.push(p);
            }
        }
    }
    // Directory mtimes, compared separately (the walk above does not disturb them).
    for (rel, d) in out.iter_mut() {
        let md = std::fs::symlink_metadata(root.join(rel)).unwrap();
        if md.is_dir() {
            *d += &format!(" dir-mtime={}", md.mtime());
        }
    }
    out
}

/// Asserts two trees are the same, showing the first differences.
pub(super) fn assert_same_tree(got: &BTreeMap<String, String>, want: &BTreeMap<String, String>) {
    let mut diffs = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            Some(g) if g == v => {}
            Some(g) => diffs.push(format!("{k}: got {g}\n      want {v}")),
            None => diffs.push(format!("{k}: missing (want {v})")),
        }
    }
    for (k, v) in got {
        if !want.contains_key(k) {
            diffs.push(format!("{k}: unexpected ({v})"));
        }
    }
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
}

/// An overlay mount, detached on drop.
pub(super) struct Overlay {
    pub merged: PathBuf,
}

impl Overlay {
    /// Mounts `lowers` (top first), with `upper` and `work` when given (read-only without).
    pub fn mount(lowers: &[&Path], upper: Option<(&Path, &Path)>, merged: &Path) -> Overlay {
        use std::ffi::CString;
        let lower: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
        let mut data = format!("lowerdir={},index=off,metacopy=off,redirect_dir=off", lower.join(":"));
        if let Some((u, w)) = upper {
            data += &format!(",upperdir={},workdir={}", u.display(), w.display());
        }
        std::fs::create_dir_all(merged).unwrap();
        let src = CString::new("overlay").unwrap();
        let tgt = CString::new(merged.as_os_str().as_bytes()).unwrap();
        let data_c = CString::new(data.clone()).unwrap();
        let flags = if upper.is_some() { 0 } else { libc::MS_RDONLY };
        let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), src.as_ptr(), flags, data_c.as_ptr().cast()) };
        assert_eq!(rc, 0, "mount overlay {data}: {}", std::io::Error::last_os_error());
        Overlay { merged: merged.to_path_buf() }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let tgt = std::ffi::CString::new(self.merged.as_os_str().as_bytes()).unwrap();
        unsafe { libc::umount2(tgt.as_ptr(), libc::MNT_DETACH) };
    }
}
