//! Reading container logs as the monitor writes them: json-file or local entries, from the live
//! file and its rotations (`<log>.N` ... `<log>.1`, each possibly `.gz`), oldest first.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use berth_image::store::time::parse_rfc3339;
use berth_monitor::localfmt;
use berth_monitor::logopts::LogFormat;

/// One log entry, whatever the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// Unix nanoseconds.
    pub time: i64,
    /// The line as the container wrote it (with its newline unless partial).
    pub line: Vec<u8>,
    pub attrs: Vec<(String, String)>,
}

#[derive(serde::Deserialize)]
struct JsonLine {
    log: String,
    stream: String,
    time: String,
    #[serde(default)]
    attrs: Option<std::collections::BTreeMap<String, String>>,
}

/// Unix nanoseconds of an RFC 3339 time with up to 9 fraction digits.
pub(crate) fn time_nanos(t: &str) -> Option<i64> {
    let secs = parse_rfc3339(t)?;
    let frac = t.get(19..).and_then(|r| r.strip_prefix('.')).map(|f| f.trim_end_matches(|c: char| !c.is_ascii_digit()));
    let frac = frac.map(|f| f.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""));
    let mut nanos = 0i64;
    if let Some(f) = frac {
        for (i, c) in f.bytes().take(9).enumerate() {
            nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
    }
    Some(secs * 1_000_000_000 + nanos)
}

fn stream_no(s: &str) -> u8 {
    if s == "stderr" {
        2
    } else {
        1
    }
}

/// Decodes one json-file line (with its newline); None for lines that are not entries.
fn decode_json(b: &[u8]) -> Option<Entry> {
    let l: JsonLine = serde_json::from_slice(b).ok()?;
    Some(Entry { stream: stream_no(&l.stream), time: time_nanos(&l.time)?, line: l.log.into_bytes(), attrs: l.attrs.map(|a| a.into_iter().collect()).unwrap_or_default() })
}

fn decode_local(b: &[u8]) -> Option<Entry> {
    let e = localfmt::decode(b)?;
    let mut line = e.line;
    if !e.partial {
        line.push(b'\n');
    }
    Some(Entry { stream: stream_no(&e.source), time: e.time_nano, line, attrs: Vec::new() })
}

/// Entries from a byte stream that may still be growing: a record not complete yet stays
/// buffered and is returned once the rest has arrived.
pub(crate) struct Records {
    src: Box<dyn Read + Send>,
    format: LogFormat,
    buf: Vec<u8>,
    start: usize,
    ahead: Option<Entry>,
}

const READ_STEP: usize = 256 << 10;

impl Records {
    pub(crate) fn new(src: Box<dyn Read + Send>, format: LogFormat) -> Records {
        Records { src, format, buf: Vec::new(), start: 0, ahead: None }
    }

    /// The next complete entry; None when what is there so far has been read.
    pub(crate) fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if let Some(e) = self.ahead.take() {
            return Ok(Some(e));
        }
        loop {
            let avail = &self.buf[self.start..];
            match self.format {
                LogFormat::JsonFile => {
                    if let Some(i) = avail.iter().position(|&b| b == b'\n') {
                        let e = decode_json(&avail[..=i]);
                        self.start += i + 1;
                        match e {
                            Some(e) => return Ok(Some(e)),
                            None => continue,
                        }
                    }
                }
                LogFormat::Local => {
                    if avail.len() >= 4 {
                        let n = u32::from_be_bytes(avail[..4].try_into().unwrap_or_default()) as usize;
                        if n > localfmt::MAX_ENTRY {
                            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("log entry of {n} bytes: the file is corrupt")));
                        }
                        if avail.len() >= n + 8 {
                            let e = decode_local(&avail[4..4 + n]);
                            self.start += n + 8;
                            match e {
                                Some(e) => return Ok(Some(e)),
                                None => continue,
                            }
                        }
                    }
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Reads more; false at the current end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let have = self.buf.len();
        self.buf.resize(have + READ_STEP, 0);
        let n = loop {
            match self.src.read(&mut self.buf[have..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        self.buf.truncate(have + *n.as_ref().unwrap_or(&0));
        Ok(n? > 0)
    }

    /// Puts back an entry read ahead: the next call returns it first.
    pub(crate) fn unread(&mut self, e: Option<Entry>) {
        self.ahead = e;
    }

    /// Drops what is buffered (the file was truncated under us).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
    }
}

/// A rotated file: `<log>.N`, or `<log>.N.gz` once compressed.
#[derive(Debug, Clone)]
pub(crate) struct Rotated {
    pub path: PathBuf,
    pub gz: bool,
}

/// The rotated files of `log`, oldest first. While `.N` is being compressed both `.N` and
/// `.N.gz` exist: the plain one is complete, the other is only renamed into place once it is.
pub(crate) fn rotated_files(log: &Path) -> Vec<Rotated> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else { return Vec::new() };
    let mut found: Vec<(u32, bool)> = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    for e in rd.flatten() {
        let f = e.file_name();
        let Some(rest) = f.to_str().and_then(|f| f.strip_prefix(name)).and_then(|r| r.strip_prefix('.')) else { continue };
        let (num, gz) = match rest.strip_suffix(".gz") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        if let Ok(i) = num.parse::<u32>() {
            found.push((i, gz));
        }
    }
    // Newest index first within the sort key means: higher N is older.
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.dedup_by_key(|x| x.0);
    found.into_iter().map(|(i, gz)| Rotated { path: berth_monitor::rotated_name(log, i, gz), gz }).collect()
}

/// An open rotated file.
pub(crate) enum Opened {
    Plain(std::fs::File),
    Gz(std::fs::File),
}

impl Opened {
    pub(crate) fn reader(self) -> Box<dyn Read + Send> {
        match self {
            Opened::Plain(f) => Box::new(f),
            Opened::Gz(f) => Box::new(flate2::read::GzDecoder::new(io::BufReader::with_capacity(64 << 10, f))),
        }
    }
}

/// Opens a rotated file; None when it is gone meanwhile.
pub(crate) fn open_rotated(r: &Rotated) -> io::Result<Option<Opened>> {
    match std::fs::File::open(&r.path) {
        Ok(f) if r.gz => Ok(Some(Opened::Gz(f))),
        Ok(f) => Ok(Some(Opened::Plain(f))),
        // Compressed between listing and opening.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !r.gz => open_rotated(&Rotated { path: with_gz(&r.path), gz: true }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Holds the log directory's rotation lock shared (released on drop): while it is held the
/// monitor does not rename files, so what is opened meanwhile is one consistent set.
pub(crate) struct RotationLock(#[allow(dead_code)] std::fs::File);

pub(crate) fn lock_rotation(log: &Path) -> io::Result<RotationLock> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(log.parent().unwrap_or(Path::new("/")))?;
    // SAFETY: flock of our own fd; blocking is short (the monitor holds it only to rename).
    if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_SH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(RotationLock(dir))
}

fn with_gz(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".gz");
    PathBuf::from(s)
}

/// The last `n` entries of a rotated file (decompressed as needed).
pub(crate) fn last_entries(f: Opened, format: LogFormat, n: usize) -> io::Result<VecDeque<Entry>> {
    let mut out = VecDeque::new();
    if n == 0 {
        return Ok(out);
    }
    let src = match f {
        Opened::Plain(mut f) => {
            let (off, _) = tail_offset(&mut f, format, n)?;
            f.seek(SeekFrom::Start(off))?;
            Box::new(f)
        }
        gz => gz.reader(),
    };
    let mut rec = Records::new(src, format);
    while let Some(e) = rec.next_entry()? {
        if out.len() == n {
            out.pop_front();
        }
        out.push_back(e);
    }
    Ok(out)
}

/// Offset where the last `n` entries of the file start, and how many entries that is (fewer
/// than `n` when the file has fewer). Walks backwards in blocks (json-file: newlines; local:
/// the length that ends each entry), so the tail of a huge log costs only its last entries.
pub(crate) fn tail_offset(f: &mut std::fs::File, format: LogFormat, n: usize) -> io::Result<(u64, usize)> {
    let len = f.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok((len, 0));
    }
    match format {
        LogFormat::JsonFile => tail_lines(f, len, n),
        LogFormat::Local => tail_local(f, len, n),
    }
}

fn tail_lines(f: &mut std::fs::File, len: u64, n: usize) -> io::Result<(u64, usize)> {
    let mut pos = len;
    let mut buf = vec![0u8; 64 << 10];
    // The last newline ends the last complete line (what follows it is still being written);
    // every newline before it starts a line.
    let mut last_nl = false;
    let mut count = 0;
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..step as usize])?;
        for i in (0..step as usize).rev() {
            if buf[i] != b'\n' {
                continue;
            }
            if !last_nl {
                last_nl = true;
                continue;
            }
            count += 1;
            if count == n {
                return Ok((pos + i as u64 + 1, n));
            }
        }
    }
    Ok((0, if last_nl { count + 1 } else { 0 }))
}

fn tail_local(f: &mut std::fs::File, len: u64, n: usize) -> io::Result<(u64, usize)> {
    let mut pos = len;
    let mut count = 0;
    let mut b = [0u8; 4];
    while pos >= 8 && count < n {
        f.seek(SeekFrom::Start(pos - 4))?;
        f.read_exact(&mut b)?;
        let size = u64::from(u32::from_be_bytes(b)) + 8;
        if size > pos {
            break;
        }
        pos -= size;
        count += 1;
    }
    Ok((pos, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_to_nanos() {
        assert_eq!(time_nanos("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(time_nanos("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(time_nanos("1970-01-01T00:00:01.000000007Z"), Some(1_000_000_007));
        assert_eq!(time_nanos("1970-01-01T01:00:01.25+01:00"), Some(1_250_000_000));
        assert_eq!(time_nanos("nonsense"), None);
    }

    fn json_file(lines: &[&str]) -> (tempfile::TempDir, std::fs::File) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let mut s = String::new();
        for (i, l) in lines.iter().enumerate() {
            s.push_str(&format!("{{\"log\":\"{l}\\n\",\"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:0{i}Z\"}}\n"));
        }
        std::fs::write(&p, s).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        (d, f)
    }

    #[test]
    fn tail_counts_entries() {
        let (_d, mut f) = json_file(&["a", "b", "c"]);
        let len = f.metadata().unwrap().len();
        assert_eq!(tail_offset(&mut f, LogFormat::JsonFile, 0).unwrap(), (len, 0));
        let (off, n) = tail_offset(&mut f, LogFormat::JsonFile, 2).unwrap();
        assert_eq!(n, 2);
        f.seek(SeekFrom::Start(off)).unwrap();
        let mut r = Records::new(Box::new(f.try_clone().unwrap()), LogFormat::JsonFile);
        assert_eq!(r.next_entry().unwrap().unwrap().line, b"b\n");
        assert_eq!(tail_offset(&mut f, LogFormat::JsonFile, 10).unwrap(), (0, 3));
    }

    #[test]
    fn local_records_and_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("container.log");
        let mut v = vec![];
        for i in 0..5 {
            localfmt::encode(&mut v, if i % 2 == 0 { "stdout" } else { "stderr" }, i, format!("line {i}\n").as_bytes());
        }
        // A half-written last entry is not returned until it is complete.
        let mut partial = v.clone();
        localfmt::encode(&mut partial, "stdout", 9, b"late\n");
        partial.truncate(v.len() + 5);
        std::fs::write(&p, &partial).unwrap();
        let mut f = std::fs::File::open(&p).unwrap();
        let mut r = Records::new(Box::new(f.try_clone().unwrap()), LogFormat::Local);
        let mut got = vec![];
        while let Some(e) = r.next_entry().unwrap() {
            got.push((e.stream, e.time, e.line));
        }
        assert_eq!(got.len(), 5);
        assert_eq!(got[1], (2, 1, b"line 1\n".to_vec()));
        std::fs::write(&p, &v).unwrap();
        let (off, n) = tail_offset(&mut f, LogFormat::Local, 2).unwrap();
        assert_eq!(n, 2);
        f.seek(SeekFrom::Start(off)).unwrap();
        let mut r = Records::new(Box::new(f), LogFormat::Local);
        assert_eq!(r.next_entry().unwrap().unwrap().line, b"line 3\n");
    }
}
