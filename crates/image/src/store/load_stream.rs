//! Reading a `docker load` archive in one pass, with nothing extracted to scratch space.
//!
//! The archive's role for each file is known only at its end (`docker save` writes the blobs
//! before `manifest.json`), so every file is kept by path as it streams by: small ones (JSON
//! documents, tiny layers) in memory, within a budget; the others straight into the content
//! store, hashed while written and verified against the digest their path names, if any. A large
//! file that looks like a layer (tar, gzip, zstd) is also unpacked ahead into the snapshotter's
//! staging, when the driver allows it (overlay: a layer does not need its parent), by a worker
//! thread that follows the blob as it is written: the archive is read once, and layers unpack in
//! parallel with one another and with the ingest. What a file turns out to be is resolved
//! afterwards (`load.rs`); an ahead unpack nobody needs, or that failed, is dropped (the layer
//! is then unpacked from the content store as usual, which reports the real error if any).
//! Blob data is queued for writing to disk as it arrives and, once read by its ahead unpack,
//! dropped from the page cache (`crate::pagecache`): the commit's fsync finds it written, and
//! its pages serve the unpacked files instead of growing the cache.
//!
//! Symlinks and hardlinks (older Docker archives link duplicate `layer.tar`s) are recorded and
//! resolved within the archive, never on the host; a path climbing out of it is refused.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{Scope, ScopedJoinHandle};

use super::{unpack_stream, ImageStore, UnpackedAhead};
use crate::digest::DigestReader;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::snapshot::Snapshotter;
use crate::Digest;

/// Files up to this size are kept in memory (manifests, configs, indexes, small layers)...
const SMALL_FILE: u64 = 1 << 20;
/// ...as long as all of them together stay under this; the rest go to the content store.
const SMALL_TOTAL: u64 = 64 << 20;
/// Bytes copied per step; also the step by which an ahead unpack learns of new data.
const CHUNK: usize = 1 << 20;
/// Blob data is dropped from the page cache this far behind the writer (its writeback, queued
/// as it was written, has had time to finish), in steps of this size.
const RELEASE_LAG: u64 = 8 << 20;

fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

/// A file of the archive.
pub(super) enum Item<'scope> {
    /// Kept in memory.
    Bytes(Vec<u8>),
    /// In the content store (committed, verified).
    Stored {
        digest: Digest,
        size: u64,
        /// Detected from its first bytes.
        compression: Compression,
        ahead: Option<ScopedJoinHandle<'scope, Result<UnpackedAhead>>>,
    },
}

/// The archive's files by path, and its links.
pub(super) struct ArchiveIndex<'scope> {
    files: HashMap<PathBuf, Item<'scope>>,
    links: HashMap<PathBuf, PathBuf>,
    /// Every blob being followed by an ahead unpack: cancelled when the load ends.
    feeds: Vec<Arc<Progress>>,
}

impl Drop for ArchiveIndex<'_> {
    fn drop(&mut self) {
        // Ahead unpacks nobody took stop at their next read instead of finishing for nothing.
        for p in &self.feeds {
            p.cancel();
        }
    }
}

/// A relative, normalized archive path; None if it climbs out.
fn clean(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    Some(out)
}

impl<'scope> ArchiveIndex<'scope> {
    /// The key of an archive path's file, following archive links (of the path and of its
    /// directories).
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        let mut p =
            clean(Path::new(path)).ok_or_else(|| malformed(format!("bad path {path:?}")))?;
        for _ in 0..16 {
            let mut changed = false;
            let mut prefix = PathBuf::new();
            let comps: Vec<_> = p.components().collect();
            for (i, c) in comps.iter().enumerate() {
                prefix.push(c);
                if let Some(t) = self.links.get(&prefix) {
                    let mut np = t.clone();
                    for rest in &comps[i + 1..] {
                        np.push(rest);
                    }
                    p = np;
                    changed = true;
                    break;
                }
            }
            if !changed {
                if !self.files.contains_key(&p) {
                    return Err(malformed(format!("invalid archive: {path} not found")));
                }
                return Ok(p);
            }
        }
        Err(malformed(format!("too many links resolving {path}")))
    }

    pub(super) fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    pub(super) fn get(&self, path: &str) -> Result<&Item<'scope>> {
        let key = self.resolve(path)?;
        Ok(&self.files[&key])
    }

    /// Digests of every file stored in the content store, to lease.
    pub(super) fn stored(&self) -> Vec<Digest> {
        let mut v: Vec<Digest> = self
            .files
            .values()
            .filter_map(|i| match i {
                Item::Stored { digest, .. } => Some(digest.clone()),
                Item::Bytes(_) => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The layer unpacked ahead from `path`, waiting for it to finish; None if there is none
    /// (or it failed: the caller then unpacks from the content store, which reports why).
    /// Taken once: a second use of the same file unpacks it again.
    pub(super) fn take_ahead(&mut self, path: &str) -> Result<Option<UnpackedAhead>> {
        let key = self.resolve(path)?;
        let handle = match self.files.get_mut(&key) {
            Some(Item::Stored { ahead, .. }) => ahead.take(),
            _ => None,
        };
        Ok(match handle.map(ScopedJoinHandle::join) {
            None => None,
            Some(Ok(Ok(a))) => Some(a),
            Some(Ok(Err(_))) => None,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        })
    }
}

impl ImageStore {
    /// Reads the whole archive (see the module documentation). Blobs are committed to the
    /// content store unleased: the caller holds off GC until it has leased [`ArchiveIndex::stored`].
    pub(super) fn read_archive<'scope, 'env>(
        &'env self,
        reader: impl Read,
        scope: &'scope Scope<'scope, 'env>,
    ) -> Result<ArchiveIndex<'scope>> {
        let mut index = ArchiveIndex {
            files: HashMap::new(),
            links: HashMap::new(),
            feeds: Vec::new(),
        };
        let slots = Arc::new(Slots::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()) + 2,
        ));
        let mut small_total = 0u64;
        let mut buf = vec![0u8; CHUNK];
        let mut ar = tar::Archive::new(reader);
        let entries = ar.entries().map_err(|e| Error::io("read archive", "", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::io("read archive", "", e))?;
            let raw = entry
                .path()
                .map_err(|e| Error::io("read archive", "", e))?
                .into_owned();
            let path = clean(&raw).ok_or_else(|| Error::UnsafeEntry {
                entry: raw.display().to_string(),
                reason: "path escapes the archive".into(),
            })?;
            if path.as_os_str().is_empty() {
                continue;
            }
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let item = if size <= SMALL_FILE && small_total + size <= SMALL_TOTAL {
                        small_total += size;
                        let mut data = Vec::with_capacity(size as usize);
                        entry
                            .read_to_end(&mut data)
                            .map_err(|e| Error::io("read archive", &path, e))?;
                        Item::Bytes(data)
                    } else {
                        self.ingest(&mut entry, &path, size, &mut buf, scope, &slots, &mut index)?
                    };
                    index.links.remove(&path);
                    index.files.insert(path, item);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let link = entry
                        .link_name()
                        .map_err(|e| Error::io("read archive", &path, e))?
                        .ok_or_else(|| {
                            malformed(format!("{}: link without target", path.display()))
                        })?
                        .into_owned();
                    let resolved = if entry.header().entry_type() == tar::EntryType::Link
                        || link.is_absolute()
                    {
                        clean(&link)
                    } else {
                        clean(&path.parent().unwrap_or(Path::new("")).join(&link))
                    };
                    let resolved = resolved.ok_or_else(|| Error::UnsafeEntry {
                        entry: path.display().to_string(),
                        reason: "link escapes the archive".into(),
                    })?;
                    index.files.remove(&path);
                    index.links.insert(path, resolved);
                }
                _ => {}
            }
        }
        Ok(index)
    }

    /// Streams one archive file into the content store, starting an ahead unpack of it when it
    /// looks like a layer.
    #[allow(clippy::too_many_arguments)]
    fn ingest<'scope, 'env>(
        &'env self,
        entry: &mut impl Read,
        path: &Path,
        size: u64,
        buf: &mut [u8],
        scope: &'scope Scope<'scope, 'env>,
        slots: &Arc<Slots>,
        index: &mut ArchiveIndex<'scope>,
    ) -> Result<Item<'scope>> {
        let shown = path.display().to_string();
        let read_err = |e| Error::io("read archive", path, e);
        let first = CHUNK.min(usize::try_from(size).unwrap_or(CHUNK));
        let n = read_full(entry, &mut buf[..first]).map_err(read_err)?;
        let compression = Compression::detect(&buf[..n]);
        let expected = super::load::digest_in_path(&shown);
        if let Some(d) = expected.as_ref().filter(|d| self.content.exists(d)) {
            // Already stored (leased by the caller before GC may run): skip the bytes.
            io::copy(entry, &mut io::sink()).map_err(read_err)?;
            return Ok(Item::Stored {
                digest: d.clone(),
                size: self.content.size(d)?,
                compression,
                ahead: None,
            });
        }
        let mut w = self.content.writer(expected.as_ref(), Some(size))?;
        let write_err = |e| Error::io("write blob", path, e);
        // Our own descriptor, to drop the blob's pages from the cache (see crate::pagecache).
        let cached = w.follower()?;
        let mut feed = None;
        let mut ahead = None;
        let layer_like = looks_like_layer(&buf[..n]);
        if self.snapshotter.supports_detached() && layer_like {
            let progress = Arc::new(Progress::default());
            let follower = Follower {
                file: w.follower()?,
                pos: 0,
                progress: progress.clone(),
            };
            let slot = slots.acquire();
            let snap = self.snapshotter.as_ref();
            ahead = Some(scope.spawn(move || {
                let _slot = slot;
                unpack_ahead(snap, follower, compression)
            }));
            index.feeds.push(progress.clone());
            feed = Some(Feed(progress));
        }
        // A layer not unpacked ahead is read back from the store soon: keep it cached.
        let release = feed.is_some() || !layer_like;
        // What the follower has read (all of it when there is none).
        let consumed = |feed: &Option<Feed>| feed.as_ref().map_or(u64::MAX, |f| f.0.consumed());
        let mut n = n;
        let mut released = 0u64;
        loop {
            let off = w.written();
            w.write_all(&buf[..n]).map_err(write_err)?;
            // Whole chunks go straight to the file; flush in case the last one was buffered.
            w.flush().map_err(write_err)?;
            w.start_writeback(off, n as u64);
            if let Some(f) = &feed {
                f.0.advance(w.written());
            }
            // Written back a while ago, and read by the follower: release.
            let done = w.written().saturating_sub(RELEASE_LAG).min(consumed(&feed));
            let done = done - done % CHUNK as u64;
            if release && done >= released + RELEASE_LAG {
                crate::pagecache::release(&cached, released, done - released);
                released = done;
            }
            n = read_full(entry, buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
        }
        // The follower may finish while the blob is made durable; if the commit fails, the
        // whole load fails and its ahead unpacks are dropped.
        let feed_state = feed.as_ref().map(|f| f.0.clone());
        if let Some(f) = feed {
            f.finish();
        }
        let (digest, size) = w.commit().map_err(|e| match e {
            Error::DigestMismatch {
                expected, actual, ..
            } => Error::DigestMismatch {
                what: shown.clone(),
                expected,
                actual,
            },
            e => e,
        })?;
        // Durable now; what the follower has yet to read, it releases itself.
        let done = feed_state.map_or(size, |p| p.consumed()).min(size);
        if release && done > released {
            crate::pagecache::release(&cached, released, done - released);
        }
        Ok(Item::Stored {
            digest,
            size,
            compression,
            ahead,
        })
    }
}

/// A tar stream, or a compressed stream (which may hold one).
fn looks_like_layer(head: &[u8]) -> bool {
    Compression::detect(head) != Compression::None || head.get(257..262) == Some(&b"ustar"[..])
}

/// Reads until `buf` is full or the stream ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Unpacks a blob as it is being written into a detached layer. An uncompressed blob is not
/// hashed here: its diff id is its digest, which the writer computes and verifies.
fn unpack_ahead(
    snap: &dyn Snapshotter,
    follower: Follower,
    compression: Compression,
) -> Result<UnpackedAhead> {
    // Once read, the blob's pages are released (the writer does it for what it sees read).
    let cached = follower.file.try_clone().ok();
    let mut src = Some(follower);
    let mut out = None;
    let layer = snap.unpack_detached(&mut |dir, mode| {
        let f = src
            .take()
            .ok_or_else(|| malformed("layer unpacked twice"))?;
        let r = compression.reader(f)?;
        out = Some(if compression == Compression::None {
            (None, unpack_stream(r, dir, mode)?)
        } else {
            let mut dr = DigestReader::new(r);
            let size = unpack_stream(&mut dr, dir, mode)?;
            io::copy(&mut dr, &mut io::sink())
                .map_err(|e| Error::io("read layer", "archive", e))?;
            (Some(dr.digest()), size)
        });
        Ok(())
    });
    if let Some(f) = &cached {
        crate::pagecache::drop_clean(f, 0, 0);
    }
    let layer = layer?;
    let (diff_id, size) = out.ok_or_else(|| malformed("layer not unpacked"))?;
    Ok(UnpackedAhead {
        layer,
        compression,
        diff_id,
        size,
    })
}

/// How much of a blob has been written, for the reader following it.
#[derive(Default)]
struct Progress {
    state: Mutex<Fill>,
    more: Condvar,
    cancelled: AtomicBool,
    /// How far the follower has read.
    consumed: AtomicU64,
}

#[derive(Default)]
struct Fill {
    written: u64,
    /// Some(true): complete; Some(false): the writer gave up.
    end: Option<bool>,
}

impl Progress {
    fn lock(&self) -> MutexGuard<'_, Fill> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn advance(&self, written: u64) {
        self.lock().written = written;
        self.more.notify_all();
    }

    fn end(&self, complete: bool) {
        let mut s = self.lock();
        if s.end.is_none() {
            s.end = Some(complete);
        }
        drop(s);
        self.more.notify_all();
    }

    fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.end(false);
    }
}

/// The writer's side: ends the blob as given up unless finished, so a follower never waits
/// for bytes that will not come.
struct Feed(Arc<Progress>);

impl Feed {
    fn finish(self) {
        self.0.end(true);
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.0.end(false);
    }
}

/// Reads a blob being written, through its own descriptor, waiting for more until it is
/// complete.
struct Follower {
    file: std::fs::File,
    pos: u64,
    progress: Arc<Progress>,
}

impl Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let p = &self.progress;
        let avail = {
            let mut s = p.lock();
            loop {
                if p.cancelled.load(Ordering::Relaxed) {
                    return Err(io::Error::other("load cancelled"));
                }
                if s.written > self.pos {
                    break s.written - self.pos;
                }
                match s.end {
                    Some(true) => return Ok(0),
                    Some(false) => return Err(io::Error::other("archive file ended early")),
                    None => s = p.more.wait(s).unwrap_or_else(|e| e.into_inner()),
                }
            }
        };
        let want = buf.len().min(usize::try_from(avail).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::other("blob shorter than written"));
        }
        self.pos += n as u64;
        p.consumed.store(self.pos, Ordering::Relaxed);
        Ok(n)
    }
}

/// Bounds how many ahead unpacks run at once (each is a thread).
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Slot(Arc<Slots>);

impl Slots {
    fn new(n: usize) -> Self {
        Slots {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot. Whoever holds one follows a blob already complete or being
    /// written by the caller, so it always ends.
    fn acquire(self: &Arc<Self>) -> Slot {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Slot(self.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}
