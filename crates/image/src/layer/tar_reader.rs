//! A streaming tar reader with bounded memory: one entry at a time, its data read straight from
//! the stream. Understands ustar, GNU (long names, old-style sparse files) and PAX (path,
//! linkpath, size, uid, gid, mtime, atime, `SCHILY.xattr.*`). Extension headers are limited in
//! size, so a crafted archive cannot make it buffer much; everything it does not understand is
//! an error rather than a guess. Field parsing comes from the `tar` crate's [`tar::Header`].

use std::collections::VecDeque;
use std::io::{self, Read};

use crate::{Error, Result};

const BLOCK: u64 = 512;
/// Largest PAX or GNU long-name extension accepted (Go's archive/tar uses the same bound).
const MAX_EXTENSION: u64 = 1 << 20;
/// Extension bytes accepted before one entry, all extension headers together.
const MAX_PENDING: u64 = 4 << 20;
/// Sparse map entries accepted for one file.
const MAX_SPARSE_SEGMENTS: usize = 1 << 16;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// A point in time from the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// One entry's header, with every extension header before it applied.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: Kind,
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Time,
    pub atime: Option<Time>,
    /// Size of the file's content (for a sparse file, with its holes).
    pub size: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Extension records collected for the next entry.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Vec<(Vec<u8>, Vec<u8>)>,
    bytes: u64,
}

/// The data of the current entry: stored segments at logical offsets, holes read as zeros.
#[derive(Default)]
struct Data {
    segments: VecDeque<(u64, u64)>,
    pos: u64,
    size: u64,
    /// Bytes of the entry still in the stream (data not read yet), then the padding.
    stored_left: u64,
    padding: u64,
}

pub(crate) struct TarReader<R: Read> {
    inner: R,
    data: Data,
    done: bool,
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::Malformed(format!("layer: {what}"))
}

fn stream_err(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            malformed(format_args!("corrupt stream: {e}"))
        }
        _ => Error::io("read", "layer stream", e),
    }
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader { inner, data: Data::default(), done: false }
    }

    /// The underlying stream, positioned after the end-of-archive marker (or wherever reading
    /// stopped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn skip(&mut self, mut n: u64) -> Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.inner.read(&mut buf[..want]).map_err(stream_err)?;
            if got == 0 {
                return Err(malformed("truncated archive"));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Reads a block; false at a clean end of stream before its first byte.
    fn read_block(&mut self, block: &mut [u8; 512]) -> Result<bool> {
        let mut filled = 0;
        while filled < block.len() {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(malformed("truncated header")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(stream_err(e)),
            }
        }
        Ok(true)
    }

    /// Reads the data of an extension header (bounded) and its padding.
    fn read_extension(&mut self, size: u64, pending: &mut Pending) -> Result<Vec<u8>> {
        pending.bytes += size;
        if size > MAX_EXTENSION || pending.bytes > MAX_PENDING {
            return Err(malformed(format_args!("extension header of {size} bytes is too large")));
        }
        let mut buf = Vec::with_capacity(size as usize);
        (&mut self.inner).take(size).read_to_end(&mut buf).map_err(stream_err)?;
        if buf.len() as u64 != size {
            return Err(malformed("truncated extension header"));
        }
        self.skip(pad(size))?;
        Ok(buf)
    }

    /// The next entry, or None at the end of the archive. Unread data of the previous entry is
    /// skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let left = self.data.stored_left + self.data.padding;
        self.data = Data::default();
        self.skip(left)?;

        let mut pending = Pending::default();
        let mut block = [0u8; 512];
        loop {
            if !self.read_block(&mut block)? {
                if pending.bytes > 0 {
                    return Err(malformed("extension header without an entry"));
                }
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                if pending.bytes > 0 {
                    return Err(malformed("extension header without an entry"));
                }
                self.done = true;
                return Ok(None);
            }
            let mut header = tar::Header::new_old();
            header.as_mut_bytes().copy_from_slice(&block);
            check_sum(&header)?;
            let size = numeric(&header.as_old().size).ok_or_else(|| malformed("bad size field"))?;
            match header.entry_type().as_byte() {
                b'x' => {
                    let data = self.read_extension(size, &mut pending)?;
                    parse_pax(&data, &mut pending.pax)?;
                }
                b'g' => {
                    // Global records: ignored, as Docker does.
                    self.read_extension(size, &mut pending)?;
                }
                b'L' => pending.long_name = Some(trim_nul(self.read_extension(size, &mut pending)?)),
                b'K' => pending.long_link = Some(trim_nul(self.read_extension(size, &mut pending)?)),
                _ => return self.entry(&header, size, pending).map(Some),
            }
        }
    }

    fn entry(&mut self, header: &tar::Header, header_size: u64, pending: Pending) -> Result<Entry> {
        let mut path = pending.long_name.unwrap_or_else(|| header.path_bytes().into_owned());
        let mut link =
            pending.long_link.unwrap_or_else(|| header.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default());
        let name = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        let field = |what: &str, p: &[u8]| malformed(format_args!("entry {:?}: bad {what} field", name(p)));
        let old = header.as_old();
        let mut uid = numeric(&old.uid).ok_or_else(|| field("uid", &path))?;
        let mut gid = numeric(&old.gid).ok_or_else(|| field("gid", &path))?;
        let mtime_raw = numeric(&old.mtime).ok_or_else(|| field("mtime", &path))?;
        let mut mtime = Time { sec: i64::try_from(mtime_raw).unwrap_or(i64::MAX), nsec: 0 };
        let mut atime = None;
        let mut stored = header_size;
        let mut xattrs = Vec::new();
        for (key, value) in pending.pax {
            let text = || std::str::from_utf8(&value).ok();
            match key.as_slice() {
                b"path" => path = value,
                b"linkpath" => link = value,
                b"size" => stored = text().and_then(|t| t.parse().ok()).ok_or_else(|| malformed("bad PAX size"))?,
                b"uid" => uid = text().and_then(|t| t.parse().ok()).ok_or_else(|| malformed("bad PAX uid"))?,
                b"gid" => gid = text().and_then(|t| t.parse().ok()).ok_or_else(|| malformed("bad PAX gid"))?,
                b"mtime" => mtime = text().and_then(parse_time).ok_or_else(|| malformed("bad PAX mtime"))?,
                b"atime" => atime = Some(text().and_then(parse_time).ok_or_else(|| malformed("bad PAX atime"))?),
                k if k.starts_with(b"SCHILY.xattr.") => {
                    let xname = k[b"SCHILY.xattr.".len()..].to_vec();
                    if !xname.is_empty() {
                        xattrs.retain(|(n, _): &(Vec<u8>, Vec<u8>)| *n != xname);
                        xattrs.push((xname, value));
                    }
                }
                k if k.starts_with(b"GNU.sparse.") => {
                    return Err(malformed(format_args!("entry {:?}: PAX sparse files are not supported", name(&path))))
                }
                _ => {}
            }
        }

        let type_byte = header.entry_type().as_byte();
        let kind = match type_byte {
            b'0' | b'7' | b'S' => Kind::File,
            // A V7 archive marks directories with a trailing slash on a regular entry.
            b'\0' if path.ends_with(b"/") => Kind::Dir,
            b'\0' => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            t => {
                return Err(Error::UnsafeEntry {
                    entry: name(&path),
                    reason: format!("unsupported entry type {:?}", t as char),
                })
            }
        };
        let mode = numeric(&old.mode).ok_or_else(|| field("mode", &path))? as u32;
        let (dev_major, dev_minor) = match (kind, header.as_ustar(), header.as_gnu()) {
            (Kind::Char | Kind::Block, Some(u), _) => (&u.dev_major, &u.dev_minor),
            (Kind::Char | Kind::Block, None, Some(g)) => (&g.dev_major, &g.dev_minor),
            _ => (&[0u8; 8], &[0u8; 8]),
        };
        let dev = |f: &[u8; 8], what| numeric(f).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| field(what, &path));
        let (dev_major, dev_minor) = (dev(dev_major, "device major")?, dev(dev_minor, "device minor")?);

        // Entries that are only a header carry no data, whatever their size field says (as Go's
        // archive/tar reads them).
        if kind != Kind::File {
            stored = 0;
        }
        let mut data = Data { stored_left: stored, padding: pad(stored), ..Data::default() };
        if type_byte == b'S' {
            let (segments, size) = self.sparse_map(header, stored).map_err(|e| match e {
                Error::Malformed(m) => malformed(format_args!("entry {:?}: {m}", name(&path))),
                e => e,
            })?;
            data.segments = segments;
            data.size = size;
        } else {
            if stored > 0 {
                data.segments.push_back((0, stored));
            }
            data.size = stored;
        }
        let size = data.size;
        self.data = data;
        Ok(Entry { kind, path, link, mode, uid, gid, mtime, atime, size, dev_major, dev_minor, xattrs })
    }

    /// The segments of an old-style GNU sparse file (in the header and the extension blocks that
    /// follow it) and the file's real size.
    fn sparse_map(&mut self, header: &tar::Header, stored: u64) -> Result<(VecDeque<(u64, u64)>, u64)> {
        let gnu = header.as_gnu().ok_or_else(|| malformed("sparse entry without a GNU header"))?;
        let real = numeric(&gnu.realsize).ok_or_else(|| malformed("bad sparse size"))?;
        let mut segments = VecDeque::new();
        let mut end = 0u64;
        let mut total = 0u64;
        let mut add = |s: &tar::GnuSparseHeader| -> Result<()> {
            if s.is_empty() {
                return Ok(());
            }
            let off = numeric(&s.offset).ok_or_else(|| malformed("bad sparse offset"))?;
            let len = numeric(&s.numbytes).ok_or_else(|| malformed("bad sparse length"))?;
            if off < end || segments.len() >= MAX_SPARSE_SEGMENTS {
                return Err(malformed("bad sparse map"));
            }
            end = off.checked_add(len).ok_or_else(|| malformed("bad sparse map"))?;
            total = total.checked_add(len).ok_or_else(|| malformed("bad sparse map"))?;
            if len > 0 {
                segments.push_back((off, len));
            }
            Ok(())
        };
        for s in &gnu.sparse {
            add(s)?;
        }
        let mut extended = gnu.is_extended();
        while extended {
            let mut ext = tar::GnuExtSparseHeader::new();
            if !self.read_block(ext.as_mut_bytes())? {
                return Err(malformed("truncated sparse map"));
            }
            for s in ext.sparse() {
                add(s)?;
            }
            extended = ext.is_extended();
        }
        if total != stored || end > real {
            return Err(malformed("sparse map does not match the entry's size"));
        }
        Ok((segments, real))
    }

    /// The next piece of the current entry's content: data read into `buf` (as much as fits
    /// and the stored segment holds), or the length of a hole (a sparse file's, never read as
    /// zeros: a crafted size cannot make this spin), or the end.
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> Result<Chunk> {
        let d = &mut self.data;
        loop {
            if d.pos >= d.size {
                return Ok(Chunk::End);
            }
            let Some(&(off, len)) = d.segments.front() else {
                let n = d.size - d.pos;
                d.pos = d.size;
                return Ok(Chunk::Hole(n));
            };
            if d.pos < off {
                let n = off - d.pos;
                d.pos = off;
                return Ok(Chunk::Hole(n));
            }
            let seg_end = off + len;
            if d.pos >= seg_end {
                d.segments.pop_front();
                continue;
            }
            if buf.is_empty() {
                return Err(malformed("no buffer"));
            }
            let want = (buf.len() as u64).min(seg_end - d.pos) as usize;
            let mut filled = 0;
            while filled < want {
                match self.inner.read(&mut buf[filled..want]) {
                    Ok(0) => return Err(malformed("truncated archive")),
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(stream_err(e)),
                }
            }
            d.pos += filled as u64;
            d.stored_left -= filled as u64;
            return Ok(Chunk::Data(filled));
        }
    }
}

/// A piece of an entry's content.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    Data(usize),
    Hole(u64),
    End,
}

fn pad(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(end) = v.iter().position(|&b| b == 0) {
        v.truncate(end);
    }
    v
}

/// A numeric header field: octal text (NULs and spaces around it ignored, empty is 0), or
/// base-256 when the high bit of its first byte is set (GNU); as Go's archive/tar reads them.
fn numeric(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut n: u64 = (field[0] & 0x3f) as u64;
        for &b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(n);
    }
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = field[..end].trim_ascii();
    if text.is_empty() {
        return Some(0);
    }
    let mut n: u64 = 0;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        n = n.checked_mul(8)?.checked_add((b - b'0') as u64)?;
    }
    Some(n)
}

fn check_sum(header: &tar::Header) -> Result<()> {
    let stored = numeric(&header.as_old().cksum).ok_or_else(|| malformed("bad header checksum field"))? as u32;
    let bytes = header.as_bytes();
    let (mut unsigned, mut signed) = (0u32, 0i32);
    for (i, &b) in bytes.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u32;
        signed += b as i8 as i32;
    }
    if stored != unsigned && stored as i32 != signed {
        return Err(malformed("header checksum mismatch"));
    }
    Ok(())
}

/// Parses PAX records (`LEN KEY=VALUE\n`), later records replacing earlier ones.
fn parse_pax(mut data: &[u8], out: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let sp = data.iter().position(|&b| b == b' ').ok_or_else(|| malformed("bad PAX record"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > sp + 1 && l <= data.len())
            .ok_or_else(|| malformed("bad PAX record length"))?;
        let record = &data[sp + 1..len];
        let record = record.strip_suffix(b"\n").ok_or_else(|| malformed("PAX record without newline"))?;
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(|| malformed("PAX record without '='"))?;
        let (key, value) = (record[..eq].to_vec(), record[eq + 1..].to_vec());
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
        data = &data[len..];
    }
    Ok(())
}

/// A PAX time: seconds, optionally negative, with an optional fraction.
fn parse_time(s: &str) -> Option<Time> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nsec = 0u32;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += (b - b'0') as u32 * 10u32.pow(8 - i as u32);
    }
    Some(if !neg {
        Time { sec: secs, nsec }
    } else if nsec == 0 {
        Time { sec: -secs, nsec: 0 }
    } else {
        Time { sec: -secs - 1, nsec: 1_000_000_000 - nsec }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_pax_time() {
        assert_eq!(parse_time("12.5"), Some(Time { sec: 12, nsec: 500_000_000 }));
        assert_eq!(parse_time("-1.25"), Some(Time { sec: -2, nsec: 750_000_000 }));
        assert_eq!(parse_time("7"), Some(Time { sec: 7, nsec: 0 }));
        assert_eq!(parse_time("x"), None);
    }

    #[test]
    fn layer_numeric_fields() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b" 12 \0\0"), Some(0o12));
        assert_eq!(numeric(b"\0\0\0\0"), Some(0));
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0x01, 0x00]), Some(256));
        assert_eq!(numeric(b"9"), None);
    }

    #[test]
    fn layer_pax_records() {
        let mut out = Vec::new();
        parse_pax(b"11 path=ab\n20 SCHILY.xattr.k=v\n", &mut out).unwrap();
        assert_eq!(out, vec![(b"path".to_vec(), b"ab".to_vec()), (b"SCHILY.xattr.k".to_vec(), b"v".to_vec())]);
        assert!(parse_pax(b"99 path=ab\n", &mut out).is_err());
    }
}
