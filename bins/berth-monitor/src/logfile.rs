//! The container log file, rotated as Docker's loggerutils.LogFile rotates it: once the file
//! has reached max-size, before the next entry, `<log>.<n-1>` is dropped, `<log>.<i>` becomes
//! `<log>.<i+1>`, the file becomes `<log>.1` and a new one is started; with compress, `.1` is
//! gzipped to `.1.gz` by a short-lived thread, off the write path. max-file=1 truncates instead.
//!
//! Renames happen under an exclusive flock of the log's directory, taken without waiting: a
//! reader (berthd's `logs`) that holds it shared while it opens the set of files sees them
//! consistent, and the monitor merely rotates at a later entry instead of blocking its writes.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::sys;

pub(crate) struct LogFile {
    path: PathBuf,
    file: OwnedFd,
    /// The directory of the log, for the rotation lock.
    dir: OwnedFd,
    size: u64,
    max_size: u64,
    max_files: u32,
    compress: bool,
    compressing: Option<JoinHandle<Result<(), String>>>,
    /// The last entry's time, for the gzip header of the next rotated file (Docker puts it
    /// there so that readers can skip whole files for `since`).
    pub(crate) last_time: (i64, u32),
    /// A compression error, reported once.
    pub(crate) compress_error: Option<String>,
}

fn open_append(path: &Path) -> io::Result<OwnedFd> {
    let p = sys::cstring(path)?;
    // 0640 as dockerd creates its logs.
    sys::open(&p, libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND, 0o640)
}

/// `<log>.<i>` plus `.gz` when compressed.
pub fn rotated_name(path: &Path, i: u32, gz: bool) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(s)
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

impl LogFile {
    pub(crate) fn open(path: &Path, max_size: u64, max_files: u32, compress: bool) -> io::Result<LogFile> {
        let file = open_append(path)?;
        let size = std::fs::metadata(path)?.len();
        let dir = sys::open(&sys::cstring(path.parent().unwrap_or(Path::new("/")))?, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(LogFile {
            path: path.to_owned(),
            file,
            dir,
            size,
            max_size,
            max_files: max_files.max(1),
            compress,
            compressing: None,
            last_time: (0, 0),
            compress_error: None,
        })
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// True when the file, with `pending` bytes not written yet, has reached max-size: rotate
    /// before the next entry.
    pub(crate) fn full_with(&self, pending: usize) -> bool {
        self.max_size > 0 && self.size + pending as u64 >= self.max_size
    }

    pub(crate) fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = sys::write_all(self.file.as_raw_fd(), buf);
        // What did reach the file is unknown on error; counting it all errs towards rotating.
        self.size += buf.len() as u64;
        r
    }

    pub(crate) fn rotate(&mut self) -> io::Result<()> {
        if self.max_files < 2 {
            // SAFETY: ftruncate of our own open fd.
            sys::cvt(unsafe { libc::ftruncate(self.file.as_raw_fd(), 0) })?;
            self.size = 0;
            return Ok(());
        }
        // The previous .1 must be compressed before it moves to .2.
        self.wait_compression();
        // SAFETY: flock of our own directory fd.
        if unsafe { libc::flock(self.dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                // A reader is opening the files: rotate before a later entry.
                return Ok(());
            }
            return Err(e);
        }
        let r = self.rotate_locked();
        // SAFETY: as above.
        unsafe { libc::flock(self.dir.as_raw_fd(), libc::LOCK_UN) };
        r
    }

    fn rotate_locked(&mut self) -> io::Result<()> {
        let gz = self.compress;
        ignore_missing(std::fs::remove_file(rotated_name(&self.path, self.max_files - 1, gz)))?;
        for i in (2..self.max_files).rev() {
            ignore_missing(std::fs::rename(rotated_name(&self.path, i - 1, gz), rotated_name(&self.path, i, gz)))?;
        }
        let first = rotated_name(&self.path, 1, false);
        std::fs::rename(&self.path, &first)?;
        match open_append(&self.path) {
            Ok(f) => self.file = f,
            Err(e) => {
                // Keep writing to the file we have (now .1) rather than lose output.
                let _ = std::fs::rename(&first, &self.path);
                return Err(e);
            }
        }
        self.size = 0;
        if self.compress {
            let last = self.last_time;
            let spawned = std::thread::Builder::new()
                // miniz_oxide builds its state on the stack before boxing it (in debug builds).
                .name("log-gzip".into())
                .stack_size(2 << 20)
                .spawn(move || compress_file(&first, last));
            match spawned {
                Ok(h) => self.compressing = Some(h),
                Err(e) => {
                    self.compress_error.get_or_insert_with(|| format!("compress rotated log: {e}"));
                }
            }
        }
        Ok(())
    }

    /// Waits for the compression of the last rotated file, if one is running.
    pub(crate) fn wait_compression(&mut self) {
        if let Some(h) = self.compressing.take() {
            let r = h.join().unwrap_or_else(|_| Err("compression thread panicked".into()));
            if let Err(e) = r {
                self.compress_error.get_or_insert(e);
            }
        }
    }
}

/// `<log>.1` -> `<log>.1.gz`: written under a temporary name and renamed, then `.1` removed, so
/// a reader always finds one complete copy (it prefers `.1` while both exist).
fn compress_file(src: &Path, last: (i64, u32)) -> Result<(), String> {
    let dst = {
        let mut s = src.as_os_str().to_owned();
        s.push(".gz");
        PathBuf::from(s)
    };
    let tmp = {
        let mut s = dst.as_os_str().to_owned();
        s.push(".tmp");
        PathBuf::from(s)
    };
    let run = || -> io::Result<()> {
        let mut input = std::fs::File::open(src)?;
        let out = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        let mut meta = Vec::with_capacity(64);
        meta.extend_from_slice(b"{\"LastTime\":\"");
        crate::jsonlog::rfc3339_nano(&mut meta, last);
        meta.extend_from_slice(b"\"}");
        let mut enc = flate2::GzBuilder::new().extra(meta).write(io::BufWriter::with_capacity(64 << 10, out), flate2::Compression::fast());
        io::copy(&mut input, &mut enc)?;
        enc.finish()?.flush()?;
        std::fs::rename(&tmp, &dst)?;
        std::fs::remove_file(src)
    };
    run().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("compress {}: {e}", src.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn rotates_keeping_max_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut f = LogFile::open(&p, 10, 3, false).unwrap();
        for i in 0..5 {
            if f.full_with(0) {
                f.rotate().unwrap();
            }
            f.write_all(format!("entry {i} ..\n").as_bytes()).unwrap();
        }
        assert_eq!(names(d.path()), ["c-json.log", "c-json.log.1", "c-json.log.2"]);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "entry 4 ..\n");
        assert_eq!(std::fs::read_to_string(rotated_name(&p, 2, false)).unwrap(), "entry 2 ..\n");
    }

    #[test]
    fn compresses_rotated_files() {
        use std::io::Read;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut f = LogFile::open(&p, 10, 3, true).unwrap();
        for i in 0..4 {
            if f.full_with(0) {
                f.rotate().unwrap();
            }
            f.write_all(format!("entry {i} ..\n").as_bytes()).unwrap();
        }
        f.wait_compression();
        assert_eq!(names(d.path()), ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]);
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(rotated_name(&p, 2, true)).unwrap()).read_to_string(&mut s).unwrap();
        assert_eq!(s, "entry 1 ..\n");
    }

    #[test]
    fn one_file_is_truncated() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut f = LogFile::open(&p, 10, 1, false).unwrap();
        for i in 0..3 {
            if f.full_with(0) {
                f.rotate().unwrap();
            }
            f.write_all(format!("entry {i} ..\n").as_bytes()).unwrap();
        }
        assert_eq!(names(d.path()), ["c-json.log"]);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "entry 2 ..\n");
    }
}
