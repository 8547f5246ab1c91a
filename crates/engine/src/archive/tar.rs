//! The tar format as Docker's archive package reads and writes it: ustar headers, PAX records
//! for what ustar cannot hold (long or non-ASCII names, large ids, sizes and times, xattrs);
//! GNU long names are understood when reading. One entry at a time, data streamed.

use std::io::{self, Read, Write};

pub(super) const BLOCK: usize = 512;
/// Largest PAX or GNU long-name extension accepted (Go's archive/tar uses the same bound).
const MAX_EXTENSION: u64 = 1 << 20;

pub(super) const REG: u8 = b'0';
pub(super) const HARDLINK: u8 = b'1';
pub(super) const SYMLINK: u8 = b'2';
pub(super) const CHAR: u8 = b'3';
pub(super) const BLOCKDEV: u8 = b'4';
pub(super) const DIR: u8 = b'5';
pub(super) const FIFO: u8 = b'6';

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Header {
    pub name: Vec<u8>,
    /// One of the type constants above.
    pub kind: u8,
    /// Permission bits with setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub link: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

// ---- writing ----

/// `width-1` octal digits and a NUL, or None when the value does not fit.
fn octal(field: &mut [u8], v: u64) -> bool {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    if s.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    true
}

/// GNU base-256 for device numbers too large for octal (no PAX key exists for them).
fn numeric(field: &mut [u8], v: u64) {
    if !octal(field, v) {
        field.fill(0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&v.to_be_bytes());
        field[0] |= 0x80;
    }
}

/// One PAX record: "LEN key=value\n", LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Splits a long ASCII name into ustar's prefix (<= 155) and name (<= 100) at a '/'.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((b"", name));
    }
    (0..name.len()).rev().filter(|&i| name[i] == b'/').find_map(|i| {
        let (p, n) = (&name[..i], &name[i + 1..]);
        (p.len() <= 155 && !n.is_empty() && n.len() <= 100).then_some((p, n))
    })
}

fn block(name: &[u8], prefix: &[u8], kind: u8, h: &Header, size: u64, pax: &mut Vec<u8>) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    for (range, v, key) in [(108..116, h.uid, "uid"), (116..124, h.gid, "gid"), (124..136, size, "size")] {
        if !octal(&mut b[range.clone()], v) {
            octal(&mut b[range], 0);
            pax_record(pax, key.as_bytes(), v.to_string().as_bytes());
        }
    }
    if h.mtime < 0 || !octal(&mut b[136..148], h.mtime as u64) {
        octal(&mut b[136..148], 0);
        pax_record(pax, b"mtime", h.mtime.to_string().as_bytes());
    }
    b[156] = kind;
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    if matches!(kind, CHAR | BLOCKDEV) {
        numeric(&mut b[329..337], u64::from(h.dev_major));
        numeric(&mut b[337..345], u64::from(h.dev_minor));
    } else {
        octal(&mut b[329..337], 0);
        octal(&mut b[337..345], 0);
    }
    b[345..345 + prefix.len()].copy_from_slice(prefix);
    b
}

fn checksum(b: &mut [u8; BLOCK]) {
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Writes the header of `h` (a PAX extension header first when ustar cannot hold it).
pub(super) fn write_header(w: &mut dyn Write, h: &Header) -> io::Result<()> {
    let mut pax = Vec::new();
    let ascii = |b: &[u8]| b.iter().all(|c| c.is_ascii() && *c != 0);
    let (prefix, name) = match split_ustar(&h.name) {
        Some(pn) if ascii(&h.name) => pn,
        _ => {
            pax_record(&mut pax, b"path", &h.name);
            (&b""[..], &h.name[..h.name.len().min(100)])
        }
    };
    let size = if h.kind == REG { h.size } else { 0 };
    let mut main = block(name, prefix, h.kind, h, size, &mut pax);
    if h.link.len() <= 100 && ascii(&h.link) {
        main[157..157 + h.link.len()].copy_from_slice(&h.link);
    } else {
        pax_record(&mut pax, b"linkpath", &h.link);
        main[157..257].copy_from_slice(&h.link[..100.min(h.link.len())]);
    }
    for (k, v) in &h.xattrs {
        pax_record(&mut pax, &[&b"SCHILY.xattr."[..], k].concat(), v);
    }
    checksum(&mut main);
    if !pax.is_empty() {
        let base = h.name.rsplit(|&c| c == b'/').find(|s| !s.is_empty()).unwrap_or(b"x");
        let pname = [&b"PaxHeaders.0/"[..], base].concat();
        let pname = &pname[..pname.len().min(100)];
        let ph = Header { mode: 0o644, mtime: h.mtime.max(0), ..Default::default() };
        let mut x = block(pname, b"", b'x', &ph, pax.len() as u64, &mut Vec::new());
        checksum(&mut x);
        w.write_all(&x)?;
        w.write_all(&pax)?;
        w.write_all(&[0u8; BLOCK][..padding(pax.len() as u64)])?;
    }
    w.write_all(&main)
}

/// The end of an archive: two zero blocks.
pub(super) fn write_end(w: &mut dyn Write) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}

// ---- reading ----

/// An octal field (NUL/space padded) or GNU base-256.
fn parse_numeric(f: &[u8]) -> Option<u64> {
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(f[0] & 0x7f);
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(f).ok()?.trim_matches(|c| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn trim_nul(b: &[u8]) -> Vec<u8> {
    b.split(|&c| c == 0).next().unwrap_or_default().to_vec()
}

/// Streams entries from a tar archive: `next` gives the next header, `read_data` its content.
pub(super) struct Reader<R: Read> {
    inner: R,
    /// Content of the current entry not read yet, then its padding.
    data_left: u64,
    pad_left: u64,
    done: bool,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader { inner, data_left: 0, pad_left: 0, done: false }
    }

    /// Reads the rest of the stream (the client's trailing blocks), so the request is consumed.
    pub fn drain(mut self) -> io::Result<()> {
        io::copy(&mut self.inner, &mut io::sink()).map(|_| ())
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let got = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if got != n {
            return Err(invalid("truncated archive"));
        }
        Ok(())
    }

    /// False at a clean end of stream.
    fn read_block(&mut self, b: &mut [u8; BLOCK]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut b[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(invalid("truncated header")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn extension(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_EXTENSION {
            return Err(invalid(format!("extension header of {size} bytes is too large")));
        }
        let mut v = Vec::with_capacity(size as usize);
        (&mut self.inner).take(size).read_to_end(&mut v)?;
        if v.len() as u64 != size {
            return Err(invalid("truncated extension header"));
        }
        self.skip(padding(size) as u64)?;
        Ok(v)
    }

    /// The next entry, or None at the end of the archive.
    pub fn next(&mut self) -> io::Result<Option<Header>> {
        if self.done {
            return Ok(None);
        }
        let left = self.data_left + self.pad_left;
        self.skip(left)?;
        (self.data_left, self.pad_left) = (0, 0);
        let (mut long_name, mut long_link, mut pax) = (None, None, Vec::new());
        let mut b = [0u8; BLOCK];
        loop {
            if !self.read_block(&mut b)? || b.iter().all(|&c| c == 0) {
                self.done = true;
                return Ok(None);
            }
            let sum: u64 = b.iter().enumerate().map(|(i, &c)| if (148..156).contains(&i) { 32 } else { u64::from(c) }).sum();
            if parse_numeric(&b[148..156]) != Some(sum) {
                return Err(invalid("bad header checksum (not a tar archive?)"));
            }
            let size = parse_numeric(&b[124..136]).ok_or_else(|| invalid("bad size field"))?;
            match b[156] {
                b'x' => pax.extend(parse_pax(&self.extension(size)?)?),
                b'g' => {
                    self.extension(size)?;
                }
                b'L' => long_name = Some(trim_nul(&self.extension(size)?)),
                b'K' => long_link = Some(trim_nul(&self.extension(size)?)),
                _ => return self.entry(&b, size, long_name, long_link, pax).map(Some),
            }
        }
    }

    fn entry(&mut self, b: &[u8; BLOCK], size: u64, long_name: Option<Vec<u8>>, long_link: Option<Vec<u8>>, pax: Vec<(Vec<u8>, Vec<u8>)>) -> io::Result<Header> {
        let field = |r: std::ops::Range<usize>, what: &str| parse_numeric(&b[r]).ok_or_else(|| invalid(format!("bad {what} field")));
        let mut name = long_name.unwrap_or_else(|| {
            let n = trim_nul(&b[..100]);
            let prefix = trim_nul(&b[345..500]);
            if &b[257..263] == b"ustar\0" && !prefix.is_empty() {
                [prefix, b"/".to_vec(), n].concat()
            } else {
                n
            }
        });
        let mut h = Header {
            kind: b[156],
            mode: field(100..108, "mode")? as u32 & 0o7777,
            uid: field(108..116, "uid")?,
            gid: field(116..124, "gid")?,
            size,
            mtime: field(136..148, "mtime")? as i64,
            link: long_link.unwrap_or_else(|| trim_nul(&b[157..257])),
            dev_major: field(329..337, "devmajor").unwrap_or(0) as u32,
            dev_minor: field(337..345, "devminor").unwrap_or(0) as u32,
            ..Default::default()
        };
        for (k, v) in pax {
            let num = || std::str::from_utf8(&v).ok().and_then(|t| t.split('.').next()?.parse::<i64>().ok());
            match k.as_slice() {
                b"path" => name = v,
                b"linkpath" => h.link = v,
                b"size" => h.size = num().and_then(|n| u64::try_from(n).ok()).ok_or_else(|| invalid("bad PAX size"))?,
                b"uid" => h.uid = num().and_then(|n| u64::try_from(n).ok()).ok_or_else(|| invalid("bad PAX uid"))?,
                b"gid" => h.gid = num().and_then(|n| u64::try_from(n).ok()).ok_or_else(|| invalid("bad PAX gid"))?,
                b"mtime" => h.mtime = num().ok_or_else(|| invalid("bad PAX mtime"))?,
                k if k.starts_with(b"SCHILY.xattr.") && k.len() > 13 => h.xattrs.push((k[13..].to_vec(), v)),
                k if k.starts_with(b"GNU.sparse.") => return Err(invalid("sparse files are not supported")),
                _ => {}
            }
        }
        h.kind = match h.kind {
            b'0' | b'7' => REG,
            0 if name.ends_with(b"/") => DIR,
            0 => REG,
            k @ (HARDLINK | SYMLINK | CHAR | BLOCKDEV | DIR | FIFO) => k,
            k => return Err(invalid(format!("{}: unsupported entry type {:?}", String::from_utf8_lossy(&name), k as char))),
        };
        h.name = name;
        // Only regular files carry data, whatever the size field of the others says (Go's rule).
        if h.kind != REG {
            h.size = 0;
        }
        self.data_left = h.size;
        self.pad_left = padding(h.size) as u64;
        Ok(h)
    }

    /// Content of the current entry; 0 at its end.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data_left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.data_left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid("truncated archive"));
        }
        self.data_left -= n as u64;
        Ok(n)
    }
}

fn parse_pax(data: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&c| c == b' ').ok_or_else(|| invalid("bad PAX record"))?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok().and_then(|s| s.parse().ok()).ok_or_else(|| invalid("bad PAX record"))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(invalid("bad PAX record"));
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec.iter().position(|&c| c == b'=').ok_or_else(|| invalid("bad PAX record"))?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(h: &Header, data: &[u8]) -> (Header, Vec<u8>) {
        let mut out = Vec::new();
        write_header(&mut out, h).unwrap();
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(0, padding(data.len() as u64)));
        write_end(&mut out).unwrap();
        assert_eq!(out.len() % BLOCK, 0);
        let mut r = Reader::new(&out[..]);
        let got = r.next().unwrap().unwrap();
        let mut content = vec![0; got.size as usize];
        let mut off = 0;
        while off < content.len() {
            off += r.read_data(&mut content[off..]).unwrap();
        }
        assert!(r.next().unwrap().is_none());
        (got, content)
    }

    #[test]
    fn ustar_and_pax_round_trips() {
        let h = Header { name: b"d/f".to_vec(), kind: REG, mode: 0o4755, uid: 1234, gid: 1234, size: 3, mtime: 1_700_000_000, ..Default::default() };
        assert_eq!(roundtrip(&h, b"hi\n"), (h.clone(), b"hi\n".to_vec()));
        let long = format!("{}/{}", "a".repeat(120), "b".repeat(90));
        let h2 = Header { name: long.clone().into_bytes(), kind: DIR, mode: 0o755, ..Default::default() };
        assert_eq!(roundtrip(&h2, b"").0.name, long.as_bytes(), "ustar prefix split");
        let h3 = Header {
            name: "é/".repeat(80).into_bytes(),
            kind: SYMLINK,
            link: "/x".repeat(80).into_bytes(),
            uid: 1 << 40,
            mtime: -5,
            xattrs: vec![(b"security.capability".to_vec(), vec![1, 0, 0xff])],
            ..Default::default()
        };
        assert_eq!(roundtrip(&h3, b"").0, h3, "PAX path, linkpath, uid, mtime, xattr");
        let h4 = Header { name: b"dev".to_vec(), kind: CHAR, dev_major: 1 << 22, dev_minor: 3, ..Default::default() };
        assert_eq!(roundtrip(&h4, b"").0, h4, "base-256 device numbers");
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", &[b'x'; 93]);
        assert_eq!(&v[..4], b"103 ");
        assert_eq!(v.len(), 103);
        assert_eq!(parse_pax(&v).unwrap(), vec![(b"path".to_vec(), vec![b'x'; 93])]);
    }

    #[test]
    fn reads_gnu_long_names_and_refuses_garbage() {
        // GNU tar's long name: an 'L' entry holding the name, then the entry.
        let name = "n".repeat(150);
        let mut out = Vec::new();
        let mut l = block(b"././@LongLink", b"", b'L', &Header::default(), name.len() as u64 + 1, &mut Vec::new());
        checksum(&mut l);
        out.extend_from_slice(&l);
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend(std::iter::repeat_n(0, padding(name.len() as u64 + 1)));
        write_header(&mut out, &Header { name: b"short".to_vec(), kind: FIFO, ..Default::default() }).unwrap();
        let h = Reader::new(&out[..]).next().unwrap().unwrap();
        assert_eq!(h.name, name.as_bytes());
        assert_eq!(h.kind, FIFO);
        let err = Reader::new(&[7u8; 1024][..]).next().unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
