//! A streaming tar writer: ustar headers (built with the `tar` crate's [`tar::Header`]), with a
//! PAX header before an entry whose path, link target, ids or size do not fit, or that has
//! xattrs (`SCHILY.xattr.*`, as Docker and containerd write them).

use std::io::{self, Read, Write};

/// What an entry is, for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// One entry to write.
pub(crate) struct WEntry<'a> {
    pub kind: WKind,
    /// Relative path; a directory's gets a trailing '/' here.
    pub path: &'a [u8],
    pub link: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

pub(crate) struct TarWriter<W: Write> {
    out: W,
    written: u64,
    buf: Vec<u8>,
}

const MAX_OCTAL_ID: u64 = 0o7777777;
const MAX_OCTAL_SIZE: u64 = 0o77777777777;

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out, written: 0, buf: Vec::new() }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let pad = ((512 - size % 512) % 512) as usize;
        self.put(&[0u8; 512][..pad])
    }

    /// Writes an entry; a regular file's content is read from `data`, exactly `size` bytes
    /// (zeros if it ends early: a file that shrank while being read).
    pub fn entry(&mut self, e: &WEntry<'_>, data: Option<&mut dyn Read>) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        let mut pax: Vec<(&[u8], Vec<u8>)> = Vec::new();
        {
            let ustar = header.as_ustar_mut().expect("a ustar header");
            if !split_path(e.path, &mut ustar.prefix, &mut ustar.name) {
                pax.push((b"path", e.path.to_vec()));
                fill(&mut ustar.name, &e.path[e.path.len().saturating_sub(99)..]);
            }
            if e.link.len() > ustar.linkname.len() {
                pax.push((b"linkpath", e.link.to_vec()));
                fill(&mut ustar.linkname, &e.link[..100]);
            } else {
                fill(&mut ustar.linkname, e.link);
            }
        }
        header.set_entry_type(match e.kind {
            WKind::File => tar::EntryType::Regular,
            WKind::Dir => tar::EntryType::Directory,
            WKind::Symlink => tar::EntryType::Symlink,
            WKind::Hardlink => tar::EntryType::Link,
            WKind::Char => tar::EntryType::Char,
            WKind::Block => tar::EntryType::Block,
            WKind::Fifo => tar::EntryType::Fifo,
        });
        header.set_mode(e.mode & 0o7777);
        for (key, value, max) in [(&b"uid"[..], e.uid, MAX_OCTAL_ID), (b"gid", e.gid, MAX_OCTAL_ID)] {
            if value > max {
                pax.push((key, value.to_string().into_bytes()));
            }
        }
        header.set_uid(e.uid.min(MAX_OCTAL_ID));
        header.set_gid(e.gid.min(MAX_OCTAL_ID));
        header.set_mtime(e.mtime.max(0) as u64);
        if e.mtime < 0 {
            pax.push((b"mtime", e.mtime.to_string().into_bytes()));
        }
        let size = if e.kind == WKind::File { e.size } else { 0 };
        if size > MAX_OCTAL_SIZE {
            pax.push((b"size", size.to_string().into_bytes()));
            header.set_size(0);
        } else {
            header.set_size(size);
        }
        if matches!(e.kind, WKind::Char | WKind::Block) {
            header.set_device_major(e.dev_major)?;
            header.set_device_minor(e.dev_minor)?;
        } else {
            header.set_device_major(0)?;
            header.set_device_minor(0)?;
        }
        let mut records = Vec::new();
        for (k, v) in &pax {
            pax_record(&mut records, k, v);
        }
        for (k, v) in e.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax_record(&mut records, &key, v);
        }
        if !records.is_empty() {
            let mut ph = tar::Header::new_ustar();
            {
                let ustar = ph.as_ustar_mut().expect("a ustar header");
                let mut name = b"PaxHeaders/".to_vec();
                let base = e.path.rsplit(|&b| b == b'/').find(|c| !c.is_empty()).unwrap_or(b"");
                name.extend_from_slice(&base[..base.len().min(80)]);
                fill(&mut ustar.name, &name);
            }
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_mtime(e.mtime.max(0) as u64);
            ph.set_size(records.len() as u64);
            ph.set_cksum();
            self.put(ph.as_bytes())?;
            self.put(&records)?;
            self.pad(records.len() as u64)?;
        }
        header.set_cksum();
        self.put(header.as_bytes())?;
        if size > 0 {
            self.copy_exact(data, size)?;
            self.pad(size)?;
        }
        Ok(())
    }

    fn copy_exact(&mut self, data: Option<&mut dyn Read>, size: u64) -> io::Result<()> {
        const CHUNK: usize = 256 * 1024;
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(CHUNK, 0);
        let mut left = size;
        let mut source = data;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let got = match source.as_deref_mut() {
                Some(r) => loop {
                    match r.read(&mut buf[..want]) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        other => break other?,
                    }
                },
                None => 0,
            };
            if got == 0 {
                // The source ended early: keep the archive well-formed.
                source = None;
                buf[..want].fill(0);
                self.put(&buf[..want])?;
                left -= want as u64;
            } else {
                self.put(&buf[..got])?;
                left -= got as u64;
            }
        }
        self.buf = buf;
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[0u8; 1024])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn fill(dst: &mut [u8], src: &[u8]) {
    dst.fill(0);
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// Splits a path into ustar prefix and name; false if it does not fit.
fn split_path(path: &[u8], prefix: &mut [u8; 155], name: &mut [u8; 100]) -> bool {
    if path.len() <= name.len() {
        fill(name, path);
        fill(prefix, b"");
        return true;
    }
    // A directory's trailing '/' belongs to the name part.
    let body = path.strip_suffix(b"/").unwrap_or(path);
    for (i, &b) in body.iter().enumerate().rev() {
        if b != b'/' {
            continue;
        }
        let (p, n) = (&path[..i], &path[i + 1..]);
        if n.len() > name.len() {
            break;
        }
        if p.len() <= prefix.len() && !n.is_empty() && !p.is_empty() {
            fill(prefix, p);
            fill(name, n);
            return true;
        }
    }
    false
}

/// Appends the PAX record `LEN KEY=VALUE\n`, LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_pax_record_length() {
        for n in [0usize, 5, 90, 95, 96, 97, 990, 995, 996] {
            let mut out = Vec::new();
            pax_record(&mut out, b"k", &vec![b'x'; n]);
            let sp = out.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..sp]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "value of {n} bytes");
        }
    }

    #[test]
    fn layer_ustar_split() {
        let (mut p, mut n) = ([0u8; 155], [0u8; 100]);
        let long = format!("{}/{}", "a".repeat(120), "b".repeat(90));
        assert!(split_path(long.as_bytes(), &mut p, &mut n));
        assert_eq!(&p[..120], "a".repeat(120).as_bytes());
        assert!(!split_path("c".repeat(200).as_bytes(), &mut p, &mut n));
    }
}
