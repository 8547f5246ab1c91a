//! Content-addressed blob store: `root/blobs/sha256/<hex>`, written through `root/ingest/`.
//!
//! A blob becomes visible only by an atomic rename after its size and digest were checked and
//! its data fsynced, so a reader never sees partial or unverified content, and a crash leaves at
//! most a temp file in `ingest/` (removed by [`ContentStore::clean_ingest`]). Each in-progress
//! temp file is flock'ed by its writer, which lets the cleaner tell live ingests from leftovers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::digest::{Digest, DigestReader, DigestWriter};
use crate::{Error, Result};

/// Largest blob `read_verified` loads into memory (manifests, indexes, configs are far smaller;
/// registries cap manifests at 4 MiB).
pub const MAX_IN_MEMORY_BLOB: u64 = 64 << 20;

/// Handle to a content store; cheap to clone, clones share the GC lock.
#[derive(Clone, Debug)]
pub struct ContentStore {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
    gc_lock: Arc<RwLock<()>>,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root`. Does not clean `ingest/`: call
    /// [`ContentStore::clean_ingest`] (or [`crate::gc::gc`]) at startup.
    pub fn open(root: impl AsRef<Path>) -> Result<ContentStore> {
        let root = root.as_ref().to_path_buf();
        let blobs = root.join("blobs").join(Digest::ALGORITHM);
        let ingest = root.join("ingest");
        for dir in [&blobs, &ingest] {
            fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        Ok(ContentStore {
            root,
            blobs,
            ingest,
            gc_lock: Arc::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    /// Starts writing a blob. With `expected`/`expected_size`, commit refuses other content; the
    /// size is also enforced while writing so an endless stream cannot fill the disk.
    pub fn writer(
        &self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter> {
        let (path, file) = self.create_ingest_file()?;
        Ok(BlobWriter {
            store: self.clone(),
            temp: Some(path),
            out: Some(DigestWriter::new(BufWriter::with_capacity(128 << 10, file))),
            expected: expected.cloned(),
            expected_size,
        })
    }

    /// Writes a small blob in one call (manifests, configs).
    pub fn write_blob(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let mut w = self.writer(expected, Some(data.len() as u64))?;
        w.write_all(data)
            .map_err(|e| Error::io("write", w.temp_path(), e))?;
        Ok(w.commit()?.0)
    }

    /// Opens a blob for streaming. The data is not re-verified here: it was verified when
    /// written; use [`DigestReader`] or [`ContentStore::verify`] to check it again.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let path = self.blob_path(d);
        File::open(&path).map_err(|e| not_found_or_io(d, "open", &path, e))
    }

    /// Reads a small blob (manifest, index, config) and checks its digest, so JSON that
    /// decides what an image is can never come from corrupted or substituted bytes.
    pub fn read_verified(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        let file = self.open_blob(d)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        if len > MAX_IN_MEMORY_BLOB {
            return Err(Error::Malformed(format!(
                "blob {d} is too large ({len} bytes) to be a manifest or config"
            )));
        }
        let mut data = Vec::with_capacity(len as usize);
        file.take(MAX_IN_MEMORY_BLOB + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::io("read", &path, e))?;
        let actual = Digest::of(&data);
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }

    /// Re-hashes a blob of any size.
    pub fn verify(&self, d: &Digest) -> Result<()> {
        let path = self.blob_path(d);
        let mut r = DigestReader::new(self.open_blob(d)?);
        io::copy(&mut r, &mut io::sink()).map_err(|e| Error::io("read", &path, e))?;
        let actual = r.digest();
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        fs::metadata(self.blob_path(d)).is_ok_and(|m| m.is_file())
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        let path = self.blob_path(d);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| not_found_or_io(d, "stat", &path, e))
    }

    /// Removes a blob; `Ok(false)` when it was not there. Callers other than GC must make sure
    /// nothing references it.
    pub fn delete(&self, d: &Digest) -> Result<bool> {
        let path = self.blob_path(d);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &path, e)),
        }
    }

    /// Every stored blob (names that are not digests are ignored).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let rd = fs::read_dir(&self.blobs).map_err(|e| Error::io("read", &self.blobs, e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("read", &self.blobs, e))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes what crashed or abandoned writers left in `ingest/`; files still locked by a live
    /// writer (in this or another process) are kept. Returns how many entries were removed.
    pub fn clean_ingest(&self) -> Result<usize> {
        let rd = fs::read_dir(&self.ingest).map_err(|e| Error::io("read", &self.ingest, e))?;
        let mut removed = 0;
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("read", &self.ingest, e))?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            // Hold the lock while removing: a writer that created this file but has not locked
            // it yet then fails its lock or its inode check, and retries under a new name.
            let _locked = if is_dir {
                None
            } else {
                match File::open(&path) {
                    // Locked by a live writer; or unlockable here, so in doubt, kept.
                    Ok(f) if !matches!(try_lock(&f), Ok(true)) => continue,
                    Ok(f) => Some(f),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io("open", &path, e)),
                }
            };
            let res = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match res {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
        Ok(removed)
    }

    /// Keeps garbage collection from sweeping while held (see [`crate::gc`] for when it is
    /// needed). Do not call `gc` while holding it: that would deadlock.
    pub fn hold_off_gc(&self) -> RwLockReadGuard<'_, ()> {
        self.gc_lock.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lock_for_gc(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc_lock.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates and locks a uniquely named temp file in `ingest/`.
    fn create_ingest_file(&self) -> Result<(PathBuf, File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "{}-{}-{nanos:x}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = self.ingest.join(name);
            // Readable too: `follower` readers share this open file.
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create", &path, e)),
            };
            if !try_lock(&file).map_err(|e| Error::io("lock", &path, e))? {
                continue; // a cleaner is removing it
            }
            // A cleaner may have removed the file between create and lock: then retry.
            let same = match (fs::metadata(&path), file.metadata()) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if same {
                return Ok((path, file));
            }
        }
    }
}

/// flock(LOCK_EX|LOCK_NB): Ok(false) when another holds it. The kernel drops the lock when
/// its holder's process dies, which is what tells a crash's leftovers from live writes.
fn try_lock(f: &File) -> io::Result<bool> {
    // SAFETY: flock on a valid, owned descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(err),
    }
}

fn not_found_or_io(d: &Digest, step: &str, path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::NotFound(format!("content digest {d}: not found"))
    } else {
        Error::io(step, path, e)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync", dir, e))
}

/// An in-progress blob. Dropping it without [`BlobWriter::commit`] removes the temp file.
pub struct BlobWriter {
    store: ContentStore,
    temp: Option<PathBuf>,
    out: Option<DigestWriter<BufWriter<File>>>,
    expected: Option<Digest>,
    expected_size: Option<u64>,
}

impl BlobWriter {
    fn temp_path(&self) -> &Path {
        self.temp.as_deref().unwrap_or(Path::new(""))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.out.as_ref().map_or(0, |o| o.size())
    }

    /// Starts writing what was written so far to disk, without waiting: the disk works while
    /// the caller goes on, and the fsync at commit finds little left to do.
    pub(crate) fn start_writeback(&self, off: u64, len: u64) {
        if let Some(out) = &self.out {
            crate::pagecache::start_writeback(out.get_ref().get_ref(), off, len);
        }
    }

    /// Another descriptor on the temp file, for a reader that follows the writer with
    /// positioned reads (`load` unpacks a layer while its blob is still being written). Only
    /// what was written and flushed is there to read.
    pub(crate) fn follower(&self) -> Result<File> {
        let out = self
            .out
            .as_ref()
            .ok_or_else(|| Error::io("open", self.temp_path(), io::Error::other("committed")))?;
        out.get_ref()
            .get_ref()
            .try_clone()
            .map_err(|e| Error::io("open", self.temp_path(), e))
    }

    /// Verifies size and digest, makes the data durable and publishes it under its digest.
    /// On a mismatch nothing is kept. Returns the digest and size. Committing content that is
    /// already stored succeeds (content addressing makes the two identical).
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        let temp = self.temp.clone().expect("temp present until commit");
        let out = self.out.take().expect("writer present until commit");
        let (buf, digest, size) = out.finish();
        let file = buf
            .into_inner()
            .map_err(|e| Error::io("write", &temp, e.into_error()))?;
        if let Some(exp) = self.expected_size {
            if size != exp {
                return Err(Error::DigestMismatch {
                    what: format!("blob {} size", self.expected.as_ref().unwrap_or(&digest)),
                    expected: exp.to_string(),
                    actual: size.to_string(),
                });
            }
        }
        if let Some(exp) = &self.expected {
            if *exp != digest {
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: exp.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let target = self.store.blob_path(&digest);
        if fs::metadata(&target).is_ok_and(|m| m.is_file()) {
            return Ok((digest, size)); // already stored; Drop removes our temp
        }
        // Blobs are immutable: read-only on disk too.
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("fsync", &temp, e))?;
        fs::rename(&temp, &target).map_err(|e| Error::io("rename", &target, e))?;
        self.temp = None;
        sync_dir(&self.store.blobs)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        if let Some(max) = self.expected_size {
            if out.size() + buf.len() as u64 > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob is larger than its expected size {max}"),
                ));
            }
        }
        out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), |o| o.flush())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = fs::remove_file(temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        (dir, s)
    }

    fn ingest_count(s: &ContentStore) -> usize {
        fs::read_dir(&s.ingest).unwrap().count()
    }

    #[test]
    fn write_read_list_delete() {
        let (_d, s) = store();
        let d = s.write_blob(b"{\"a\":1}", None).unwrap();
        assert_eq!(d, Digest::of(b"{\"a\":1}"));
        assert!(s.exists(&d));
        assert_eq!(s.size(&d).unwrap(), 7);
        assert_eq!(s.read_verified(&d).unwrap(), b"{\"a\":1}");
        s.verify(&d).unwrap();
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        assert_eq!(ingest_count(&s), 0);
        assert!(s.delete(&d).unwrap());
        assert!(!s.delete(&d).unwrap());
        assert!(matches!(s.read_verified(&d), Err(Error::NotFound(_))));
        assert!(matches!(s.size(&d), Err(Error::NotFound(_))));
    }

    #[test]
    fn digest_or_size_mismatch_keeps_nothing() {
        let (_d, s) = store();
        let wrong = Digest::of(b"other");
        let err = s.write_blob(b"data", Some(&wrong)).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        let mut w = s.writer(None, Some(10)).unwrap();
        w.write_all(b"short").unwrap();
        assert!(matches!(w.commit(), Err(Error::DigestMismatch { .. })));
        let mut w = s.writer(None, Some(3)).unwrap();
        assert_eq!(
            w.write_all(b"toolong").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        drop(w);
        let mut w = s.writer(None, None).unwrap();
        w.write_all(b"abandoned").unwrap();
        drop(w);
        assert!(s.list().unwrap().is_empty());
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn corruption_is_detected_on_read() {
        let (_d, s) = store();
        let d = s.write_blob(b"{}", None).unwrap();
        let p = s.blob_path(&d);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"[]").unwrap();
        assert!(matches!(
            s.read_verified(&d),
            Err(Error::DigestMismatch { .. })
        ));
        assert!(matches!(s.verify(&d), Err(Error::DigestMismatch { .. })));
    }

    #[test]
    fn clean_ingest_spares_live_writers() {
        let (_d, s) = store();
        fs::write(s.ingest.join("leftover-from-crash"), b"half a blob").unwrap();
        fs::create_dir(s.ingest.join("leftover-dir")).unwrap();
        let mut live = s.writer(None, None).unwrap();
        live.write_all(b"in progress").unwrap();
        assert_eq!(s.clean_ingest().unwrap(), 2);
        assert_eq!(ingest_count(&s), 1);
        let (d, _) = live.commit().unwrap();
        assert_eq!(s.read_verified(&d).unwrap(), b"in progress");
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn concurrent_writers_of_one_blob_both_succeed() {
        let (_d, s) = store();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let want = Digest::of(&data);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (s, data, want) = (s.clone(), data.clone(), want.clone());
                std::thread::spawn(move || {
                    let mut w = s.writer(Some(&want), Some(data.len() as u64)).unwrap();
                    for chunk in data.chunks(4096) {
                        w.write_all(chunk).unwrap();
                    }
                    w.commit().unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), (want.clone(), data.len() as u64));
        }
        assert_eq!(s.list().unwrap(), vec![want.clone()]);
        s.verify(&want).unwrap();
        assert_eq!(ingest_count(&s), 0);
    }
}
