//! `cp`: files between a container and the host through the archive API, with Docker's path
//! rules (copy into an existing directory, or to a new name in an existing parent; `-` for a
//! tar on stdin/stdout).

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::FromRawFd;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::cli::CpArgs;
use crate::format::units::human_size;
use crate::Ctx;

/// `container:path` or a local path (absolute or `./`-relative paths are always local).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return ".".into();
    }
    Path::new(t).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| ".".into())
}

pub fn cp(c: &Ctx, a: &CpArgs) -> Result<i32> {
    match (split(&a.src), split(&a.dest)) {
        ((Some(_), _), (Some(_), _)) => bail!("copying between containers is not supported"),
        ((None, _), (None, _)) => bail!("must specify at least one container source"),
        ((Some(ct), src), (None, dst)) => from_container(c, ct, src, dst, a),
        ((None, src), (Some(ct), dst)) => to_container(c, src, ct, dst, a),
    }
}

/// Counts bytes for the "Successfully copied" line.
struct Count<R> {
    r: R,
    n: u64,
}

impl<R: Read> Read for Count<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn from_container(c: &Ctx, ct: &str, src: &str, dst: &str, a: &CpArgs) -> Result<i32> {
    let (stat, mut resp) = c.client.archive_get(ct, src)?;
    if dst == "-" {
        io::copy(&mut resp.body, &mut io::stdout())?;
        return Ok(0);
    }
    let dpath = Path::new(dst);
    let (dir, rename) = match std::fs::metadata(dpath) {
        Ok(m) if m.is_dir() => (dpath.to_path_buf(), None),
        Ok(_) if stat.is_dir() => bail!("cannot copy a directory to a file: {dst}"),
        Ok(_) => (dpath.parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into()), Some(base_name(dst))),
        Err(_) if dst.ends_with('/') => bail!("destination directory {dst} does not exist"),
        Err(_) => {
            let parent = dpath.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| ".".into());
            if !parent.is_dir() {
                bail!("destination directory {} does not exist", parent.display());
            }
            (parent, Some(base_name(dst)))
        }
    };
    let mut counted = Count { r: &mut resp.body, n: 0 };
    let mut ar = tar::Archive::new(&mut counted);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut e = entry?;
        let path = e.path()?.into_owned();
        let target = match &rename {
            // The archive's root is the source's basename: give it the destination's name.
            Some(new) => {
                let mut comps = path.components().filter(|c| !matches!(c, Component::CurDir));
                comps.next();
                let mut p = dir.join(new);
                for c in comps {
                    p.push(c);
                }
                p
            }
            None => dir.join(&path),
        };
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            bail!("archive entry escapes the destination: {}", path.display());
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        e.unpack(&target)?;
    }
    if !a.quiet && io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {}", human_size(counted.n as f64, 4), dst);
    }
    Ok(0)
}

/// A pipe whose write end a thread fills with a tar of `src` (root entry named `name`).
fn tar_stream(src: PathBuf, name: String, follow: bool) -> Result<(File, std::thread::JoinHandle<io::Result<()>>)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: fresh descriptors from pipe2, each owned by exactly one File.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let h = std::thread::spawn(move || -> io::Result<()> {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(follow);
        let meta = if follow { std::fs::metadata(&src)? } else { std::fs::symlink_metadata(&src)? };
        if meta.is_dir() {
            b.append_dir_all(&name, &src)?;
        } else {
            b.append_path_with_name(&src, &name)?;
        }
        b.into_inner()?.flush()
    });
    Ok((r, h))
}

fn to_container(c: &Ctx, src: &str, ct: &str, dst: &str, a: &CpArgs) -> Result<i32> {
    super::stream::ignore_sigpipe();
    if src == "-" {
        let mut stdin = io::stdin();
        c.client.archive_put(ct, dst, &mut stdin, true, a.archive)?;
        return Ok(0);
    }
    let spath = Path::new(src);
    let smeta = std::fs::symlink_metadata(spath).map_err(|e| anyhow!("could not find the file {src} in container {ct}: {}", crate::io_msg(&e)).context(format!("lstat {src}")))?;
    let (dir, name) = match c.client.archive_stat(ct, dst) {
        Ok(st) if st.is_dir() => (dst.to_owned(), base_name(src)),
        Ok(_) if smeta.is_dir() => bail!("cannot copy a directory to a file: {ct}:{dst}"),
        Ok(_) => (parent_of(dst), base_name(dst)),
        Err(e) if e.is_not_found() => {
            if dst.ends_with('/') {
                bail!("destination directory {ct}:{dst} does not exist");
            }
            (parent_of(dst), base_name(dst))
        }
        Err(e) => return Err(e.into()),
    };
    let (r, h) = tar_stream(spath.to_path_buf(), name, a.follow_link)?;
    let mut counted = Count { r, n: 0 };
    let res = c.client.archive_put(ct, &dir, &mut counted, true, a.archive);
    let built = h.join().map_err(|_| anyhow!("tar writer panicked"))?;
    res?;
    built?;
    if !a.quiet && io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {ct}:{dst}", human_size(counted.n as f64, 4));
    }
    Ok(0)
}

fn parent_of(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].to_owned(),
        None => ".".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_paths() {
        assert_eq!(split("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("/abs:x"), (None, "/abs:x"));
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(parent_of("/etc/hosts"), "/etc");
        assert_eq!(parent_of("/x"), "/");
    }
}
