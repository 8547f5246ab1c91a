//! The container log as the monitor writes it: Docker's json-file format (one
//! `{"log":"...","stream":"stdout","time":"..."}` object per line of output, byte for byte what
//! dockerd writes, moby's jsonlog.MarshalJSONBuf) or its `local` format (localfmt), in a file
//! rotated as Docker rotates it (logfile).

use std::io;
use std::path::Path;

use crate::localfmt;
use crate::logfile::LogFile;
use crate::logopts::{LogFormat, LogSettings};
use crate::sys;

/// Docker's copier buffer: a line longer than this is logged in pieces (without a newline).
pub(crate) const MAX_LINE: usize = 16 * 1024;
/// Encoded entries are batched into one write() up to about this much.
const FLUSH_AT: usize = 64 * 1024;

pub(crate) const STREAMS: [&str; 2] = ["stdout", "stderr"];

pub(crate) struct JsonLog {
    file: LogFile,
    format: LogFormat,
    /// `,"attrs":{...}` pre-encoded (json-file), empty without attrs.
    attrs: Vec<u8>,
    /// Per stream: what follows the escaped line (`,"stream":..,"time":"..."}\n`) for the time
    /// it was built for: the entries of one read share it, so it is formatted once per read.
    tails: [(Vec<u8>, (i64, u32)); 2],
    /// Per stream: the start of a line whose newline has not arrived yet.
    partial: [Vec<u8>; 2],
    out: Vec<u8>,
    /// Entry times never go backwards (a clock step back would otherwise reorder the log for
    /// followers that find their place again by time after a rotation).
    last_ts: (i64, u32),
    /// The first write error (disk full, ...): reported in exit.json.
    pub(crate) failed: Option<String>,
}

impl JsonLog {
    /// Opens (creating, 0640 as dockerd does) the log for appending.
    pub(crate) fn open(path: &Path, settings: &LogSettings) -> io::Result<JsonLog> {
        let file = LogFile::open(path, settings.max_size, settings.max_files, settings.compress)?;
        let mut attrs = Vec::new();
        if !settings.attrs.is_empty() {
            attrs.extend_from_slice(b",\"attrs\":{");
            for (i, (k, v)) in settings.attrs.iter().enumerate() {
                if i > 0 {
                    attrs.push(b',');
                }
                escape_json(&mut attrs, k.as_bytes());
                attrs.push(b':');
                escape_json(&mut attrs, v.as_bytes());
            }
            attrs.push(b'}');
        }
        Ok(JsonLog { file, format: settings.format, attrs, tails: Default::default(), partial: [Vec::new(), Vec::new()], out: Vec::new(), last_ts: (0, 0), failed: None })
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        self.file.raw_fd()
    }

    /// Logs output of `stream` (0 stdout, 1 stderr) read at `ts`: every complete line is an
    /// entry; the rest waits for its newline (or is logged once it reaches MAX_LINE).
    pub(crate) fn write(&mut self, stream: usize, mut data: &[u8], ts: (i64, u32)) {
        let ts = ts.max(self.last_ts);
        self.last_ts = ts;
        while !data.is_empty() {
            match memchr_nl(data) {
                Some(i) => {
                    let (line, rest) = data.split_at(i + 1);
                    if self.partial[stream].is_empty() {
                        self.entry(stream, line, ts);
                    } else {
                        let mut p = std::mem::take(&mut self.partial[stream]);
                        p.extend_from_slice(line);
                        self.entry(stream, &p, ts);
                        p.clear();
                        self.partial[stream] = p;
                    }
                    data = rest;
                }
                None => {
                    let room = MAX_LINE - self.partial[stream].len();
                    let (head, rest) = data.split_at(room.min(data.len()));
                    self.partial[stream].extend_from_slice(head);
                    if self.partial[stream].len() == MAX_LINE {
                        self.flush_partial(stream, ts);
                    }
                    data = rest;
                }
            }
        }
    }

    /// Entries encoded but not written yet: the relay writes them once the container's output
    /// pipes are drained (or FLUSH_AT is reached), so a fast writer costs one write() per
    /// FLUSH_AT bytes rather than one per read.
    pub(crate) fn has_pending(&self) -> bool {
        !self.out.is_empty()
    }

    /// Lets go of the write buffer (kept between writes while output flows).
    pub(crate) fn shrink(&mut self) {
        self.flush();
        self.out = Vec::new();
    }

    /// At EOF: the unterminated last lines are entries too; a running compression is waited for.
    pub(crate) fn finish(&mut self) {
        let ts = sys::now().max(self.last_ts);
        for s in 0..2 {
            self.flush_partial(s, ts);
        }
        self.flush();
        self.file.wait_compression();
        if let Some(e) = self.file.compress_error.take() {
            self.failed.get_or_insert(e);
        }
    }

    fn flush_partial(&mut self, stream: usize, ts: (i64, u32)) {
        if self.partial[stream].is_empty() {
            return;
        }
        let p = std::mem::take(&mut self.partial[stream]);
        self.entry(stream, &p, ts);
        // Long lines are rare: give their buffer back rather than keep it for the container's life.
        self.partial[stream] = if p.capacity() > 1024 { Vec::new() } else { clear(p) };
    }

    fn entry(&mut self, stream: usize, line: &[u8], ts: (i64, u32)) {
        // Docker checks the size before each entry: a file ends at most one entry past max-size.
        if self.file.full_with(self.out.len()) {
            self.flush();
            if let Err(e) = self.file.rotate() {
                self.failed.get_or_insert_with(|| format!("rotate container log: {e}"));
            }
        }
        match self.format {
            LogFormat::JsonFile => {
                let (tail, at) = &mut self.tails[stream];
                if tail.is_empty() || *at != ts {
                    tail.clear();
                    entry_tail(tail, STREAMS[stream], &self.attrs, ts);
                    *at = ts;
                }
                self.out.extend_from_slice(b"{\"log\":");
                escape_json(&mut self.out, line);
                self.out.extend_from_slice(tail);
            }
            LogFormat::Local => localfmt::encode(&mut self.out, STREAMS[stream], ts.0 * 1_000_000_000 + i64::from(ts.1), line),
        }
        self.file.last_time = ts;
        if self.out.len() >= FLUSH_AT {
            self.flush();
        }
    }

    pub(crate) fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if let Err(e) = self.file.write_all(&self.out) {
            self.failed.get_or_insert_with(|| format!("write container log: {e}"));
        }
        self.out.clear();
        if self.out.capacity() > FLUSH_AT * 2 {
            self.out = Vec::new();
        }
    }
}

fn memchr_nl(data: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', data)
}

fn clear(mut v: Vec<u8>) -> Vec<u8> {
    v.clear();
    v
}

/// One log line: `{"log":<line>,"stream":<stream>,"time":<ts>}\n`.
#[cfg(test)]
pub(crate) fn encode_entry(out: &mut Vec<u8>, line: &[u8], stream: &str, ts: (i64, u32)) {
    encode_entry_attrs(out, line, stream, &[], ts)
}

/// One log line with Docker's field order: log, stream, attrs (pre-encoded, may be empty), time.
#[cfg(test)]
pub(crate) fn encode_entry_attrs(out: &mut Vec<u8>, line: &[u8], stream: &str, attrs: &[u8], ts: (i64, u32)) {
    out.extend_from_slice(b"{\"log\":");
    escape_json(out, line);
    entry_tail(out, stream, attrs, ts);
}

/// What follows the line in an entry.
fn entry_tail(out: &mut Vec<u8>, stream: &str, attrs: &[u8], ts: (i64, u32)) {
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.push(b'"');
    out.extend_from_slice(attrs);
    out.extend_from_slice(b",\"time\":\"");
    rfc3339_nano(out, ts);
    out.extend_from_slice(b"\"}\n");
}

/// A JSON string as Go's encoding/json writes it (what dockerd's log files hold): `<`, `>` and
/// `&` as \u003c..., control characters as \n, \r, \t or \u00XX, invalid UTF-8 as \ufffd,
/// U+2028/U+2029 escaped.
pub(crate) fn escape_json(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut i = 0;
    let mut start = 0;
    while i < s.len() {
        let b = s[i];
        // Most output is plain ASCII: one table lookup a byte.
        if !SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        if b < 0x80 {
            out.extend_from_slice(&s[start..i]);
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
            }
            i += 1;
            start = i;
            continue;
        }
        let len = utf8_len(&s[i..]);
        if len == 0 {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(b"\\ufffd");
            i += 1;
            start = i;
            continue;
        }
        // U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
        if len == 3 && s[i] == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9) {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(if s[i + 2] == 0xa8 { b"\\u2028" } else { b"\\u2029" });
            i += 3;
            start = i;
            continue;
        }
        i += len;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Bytes escape_json has to look at: control characters, `"`, `\\`, `<`, `>`, `&`, non-ASCII.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b < 0x20 || b >= 0x80 || matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&');
        i += 1;
    }
    t
};

/// The length of the valid UTF-8 sequence at the start of `s` (which begins with a byte >= 0x80),
/// or 0 when it is not valid UTF-8 (bad lead, truncated, overlong, surrogate, > U+10FFFF).
fn utf8_len(s: &[u8]) -> usize {
    let n = match s[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return 0,
    };
    if s.len() < n {
        return 0;
    }
    match std::str::from_utf8(&s[..n]) {
        Ok(_) => n,
        Err(_) => 0,
    }
}

/// Go's time.RFC3339Nano in UTC, as Docker writes timestamps: `2026-11-23T13:45:01.123456789Z`,
/// with trailing zeros of the fraction dropped (and no fraction at all on a whole second).
pub(crate) fn rfc3339_nano(out: &mut Vec<u8>, (secs, nanos): (i64, u32)) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    push_num(out, y as u64, 4);
    out.push(b'-');
    push_num(out, m as u64, 2);
    out.push(b'-');
    push_num(out, d as u64, 2);
    out.push(b'T');
    push_num(out, (sod / 3600) as u64, 2);
    out.push(b':');
    push_num(out, (sod / 60 % 60) as u64, 2);
    out.push(b':');
    push_num(out, (sod % 60) as u64, 2);
    if nanos > 0 {
        let mut digits = 9;
        let mut n = nanos;
        while n % 10 == 0 {
            n /= 10;
            digits -= 1;
        }
        out.push(b'.');
        push_num(out, n as u64, digits);
    }
    out.push(b'Z');
}

/// `v` in decimal, zero-padded to `width` digits.
fn push_num(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || buf.len() - i < width {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The current time as Docker formats it.
pub(crate) fn now_rfc3339() -> String {
    let mut v = Vec::with_capacity(32);
    rfc3339_nano(&mut v, sys::now());
    String::from_utf8(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(t: (i64, u32)) -> String {
        let mut v = vec![];
        rfc3339_nano(&mut v, t);
        String::from_utf8(v).unwrap()
    }

    fn esc(s: &[u8]) -> String {
        let mut v = vec![];
        escape_json(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn timestamps_are_go_rfc3339nano() {
        assert_eq!(ts((0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(ts((1_795_441_501, 123_456_789)), "2026-11-23T13:45:01.123456789Z");
        assert_eq!(ts((1_795_441_501, 120_000_000)), "2026-11-23T13:45:01.12Z");
        assert_eq!(ts((951_782_400, 5)), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(ts((4_102_444_799, 0)), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn escaping_matches_go() {
        assert_eq!(esc(b"hello\n"), r#""hello\n""#);
        assert_eq!(esc(b"a\"b\\c\t\r"), r#""a\"b\\c\t\r""#);
        assert_eq!(esc(b"<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(esc(b"\x1b[0m\x00\x7f"), "\"\\u001b[0m\\u0000\x7f\"");
        assert_eq!(esc("é€😀".as_bytes()), "\"é€😀\"");
        assert_eq!(esc(b"a\xffb\xe2\x82"), r#""a\ufffdb\ufffd\ufffd""#);
        assert_eq!(esc("\u{2028}x\u{2029}".as_bytes()), r#""\u2028x\u2029""#);
        // Escaped output is valid JSON that decodes back to the (valid) input.
        let s = "tab\there \"q\" <tag> é\u{2028}\n";
        assert_eq!(serde_json::from_str::<String>(&esc(s.as_bytes())).unwrap(), s);
    }

    #[test]
    fn entry_is_dockers_line() {
        let mut v = vec![];
        encode_entry(&mut v, b"hello\n", "stdout", (1_795_441_501, 123_456_789));
        assert_eq!(String::from_utf8(v).unwrap(), "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T13:45:01.123456789Z\"}\n");
    }

    fn logged(chunks: &[(usize, &[u8])]) -> Vec<serde_json::Value> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut l = JsonLog::open(&p, &LogSettings::default()).unwrap();
        for (s, c) in chunks {
            l.write(*s, c, (1, 0));
        }
        l.finish();
        std::fs::read_to_string(&p).unwrap().lines().map(|x| serde_json::from_str(x).unwrap()).collect()
    }

    #[test]
    fn lines_are_split_joined_and_kept_per_stream() {
        let v = logged(&[(0, b"a\nb"), (1, b"err"), (0, b"c\n\n"), (1, b"!\n"), (0, b"tail")]);
        let got: Vec<(String, String)> = v.iter().map(|e| (e["stream"].as_str().unwrap().into(), e["log"].as_str().unwrap().into())).collect();
        let want = [("stdout", "a\n"), ("stdout", "bc\n"), ("stdout", "\n"), ("stderr", "err!\n"), ("stdout", "tail")];
        assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
    }

    #[test]
    fn attrs_and_times_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let settings = LogSettings { attrs: vec![("a".into(), "1<".into())], ..Default::default() };
        let mut l = JsonLog::open(&p, &settings).unwrap();
        l.write(0, b"x\ny\n", (5, 1));
        l.write(1, b"z\n", (6, 0));
        // A clock step back: the entry keeps the last time.
        l.write(0, b"w\n", (4, 0));
        l.finish();
        let text = std::fs::read_to_string(&p).unwrap();
        let mut want = Vec::new();
        let attrs = br#","attrs":{"a":"1\u003c"}"#;
        encode_entry_attrs(&mut want, b"x\n", "stdout", attrs, (5, 1));
        encode_entry_attrs(&mut want, b"y\n", "stdout", attrs, (5, 1));
        encode_entry_attrs(&mut want, b"z\n", "stderr", attrs, (6, 0));
        encode_entry_attrs(&mut want, b"w\n", "stdout", attrs, (6, 0));
        assert_eq!(text, String::from_utf8(want).unwrap());
    }

    #[test]
    fn long_lines_are_logged_in_pieces() {
        let big = vec![b'x'; MAX_LINE + 10];
        let v = logged(&[(0, &big), (0, b"\n")]);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["log"].as_str().unwrap().len(), MAX_LINE);
        assert_eq!(v[1]["log"].as_str().unwrap(), "xxxxxxxxxx\n");
    }
}
