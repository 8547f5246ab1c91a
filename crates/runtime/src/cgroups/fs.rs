//! Small cgroupfs file operations shared by the v1 and v2 managers.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cg_err;
use crate::{Error, Result};

/// Reads a whole (small) file: no stat, a few `read`s.
pub(super) fn read(path: &Path) -> Result<String> {
    read_io(path).map_err(|e| Error::io("read", path, e))
}

pub(super) fn read_io(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(buf).map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))
}

/// Writes `value` with one `write` (how cgroupfs parses it). Never creates the file.
pub(super) fn write(path: &Path, value: &str) -> Result<()> {
    write_io(path, value).map_err(|e| Error::io(format!("write {value:?} to"), path, e))
}

pub(super) fn write_io(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(std::io::Error::new(ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

/// Creates `dir` (mode 0755), and its missing parents only if needed (one `mkdir` in the
/// common case). Returns whether `dir` itself was created.
pub(super) fn mkdir_p(dir: &Path) -> Result<bool> {
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o755);
    match b.create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            b.recursive(true);
            match b.create(dir) {
                Ok(()) => Ok(true),
                Err(e) => Err(Error::io("create cgroup", dir, e)),
            }
        }
        Err(e) => Err(Error::io("create cgroup", dir, e)),
    }
}

/// Removes a cgroup directory and its sub-cgroups (deepest first). A missing directory is
/// fine. Retries for about a second while the kernel says EBUSY (a task still exiting).
pub(super) fn remove_cgroup(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut delay = Duration::from_micros(200);
    let mut children_done = false;
    loop {
        let err = match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => e,
        };
        let errno = err.raw_os_error();
        if matches!(errno, Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) && !children_done {
            // sub-cgroups the container made: deepest first
            children_done = true;
            let mut removed_any = false;
            if let Ok(rd) = std::fs::read_dir(dir) {
                for ent in rd.flatten() {
                    if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        remove_cgroup(&ent.path())?;
                        removed_any = true;
                    }
                }
            }
            if removed_any {
                continue;
            }
        }
        if errno != Some(libc::EBUSY) {
            return Err(Error::io("remove cgroup", dir, err));
        }
        if Instant::now() >= deadline {
            let procs = read(&dir.join("cgroup.procs")).unwrap_or_default();
            let n = procs.lines().filter(|l| !l.is_empty()).count();
            return Err(cg_err(format!(
                "remove cgroup {}: {err} ({n} process(es) still in it)",
                dir.display()
            )));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Appends the pids in `dir/cgroup.procs` and in every sub-cgroup's.
pub(super) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let file = dir.join("cgroup.procs");
    let text = read(&file)?;
    for l in text.lines().filter(|l| !l.is_empty()) {
        out.push(
            l.trim()
                .parse()
                .map_err(|_| cg_err(format!("{}: unexpected line {l:?}", file.display())))?,
        );
    }
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io("list", dir, e))?;
        if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            match procs_recursive(&ent.path(), out) {
                Ok(()) => {}
                // a sub-cgroup removed while we walk
                Err(Error::Io { err, .. }) if err.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Polls `done` with growing sleeps (50 µs .. 10 ms) until it is true or `timeout` passes.
pub(super) fn wait_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_micros(50);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

pub(super) fn exists(p: &Path) -> bool {
    // access(2) is one syscall and needs no buffer
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    unsafe { libc::access(c.as_ptr(), libc::F_OK) == 0 }
}

/// `mountpoint` + absolute cgroup `path`.
pub(super) fn join(mountpoint: &Path, path: &str) -> PathBuf {
    mountpoint.join(path.trim_start_matches('/'))
}

/// Sends `sig` to each pid, ignoring ones that are already gone.
pub(super) fn signal_pids(pids: &[i32], sig: i32) -> Result<()> {
    for &pid in pids {
        if unsafe { libc::kill(pid, sig) } != 0 {
            let errno = nix::errno::Errno::last();
            if errno != nix::errno::Errno::ESRCH {
                return Err(Error::sys(
                    format!("kill pid {pid} with signal {sig}"),
                    errno,
                ));
            }
        }
    }
    Ok(())
}

/// Parses a space-separated controller list (`cgroup.controllers`, `cgroup.subtree_control`).
pub(super) fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split_ascii_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_truncates_and_never_creates() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("memory.max");
        std::fs::write(&f, "max\n").unwrap();
        write(&f, "12").unwrap();
        assert_eq!(read(&f).unwrap(), "12");
        let err = write(&d.path().join("nope"), "1").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(!d.path().join("nope").exists());
    }

    #[test]
    fn mkdir_and_remove_tree() {
        let d = tempfile::tempdir().unwrap();
        let leaf = d.path().join("a/b/c");
        assert!(mkdir_p(&leaf).unwrap());
        assert!(!mkdir_p(&leaf).unwrap());
        std::fs::create_dir(leaf.join("sub")).unwrap();
        // plain directories: rmdir of a non-empty one gives ENOTEMPTY -> children first
        remove_cgroup(&d.path().join("a/b")).unwrap();
        assert!(!d.path().join("a/b").exists());
        remove_cgroup(&d.path().join("a/b")).unwrap();
    }

    #[test]
    fn wait_until_times_out() {
        let mut n = 0;
        assert!(wait_until(Duration::from_millis(5), || {
            n += 1;
            Ok(n == 3)
        })
        .unwrap());
        assert!(!wait_until(Duration::from_millis(2), || Ok(false)).unwrap());
    }
}
