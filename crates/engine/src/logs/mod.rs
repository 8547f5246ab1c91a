//! `docker logs` over the log the monitor writes (json-file or local, with its rotated and
//! compressed files): selection by stream, time and tail, framed as the API sends it
//! (multiplexed without a TTY, raw with one), and `--follow` across rotations.

mod read;

use std::io::{Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_image::store::time::{format_unix, parse_rfc3339};
use berth_monitor::logopts::LogFormat;

use crate::error::{Error, Result};
use crate::Engine;
use read::{Entry, Records};

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    /// Prefix each line with its attrs (`--details`).
    pub details: bool,
    pub tail: Option<usize>,
    /// Unix seconds (with fraction) or RFC 3339.
    pub since: Option<String>,
    pub until: Option<String>,
}

fn to_secs(s: &str) -> Result<f64> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok(f);
    }
    parse_rfc3339(s).map(|x| x as f64).ok_or_else(|| Error::InvalidParameter(format!("invalid time value: {s}")))
}

/// Unix nanoseconds of a `since`/`until` value (seconds with an optional fraction, or RFC 3339).
fn to_nanos(s: &str) -> Result<i64> {
    if let Some((whole, frac)) = s.split_once('.').filter(|(w, f)| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) && f.bytes().all(|b| b.is_ascii_digit())) {
        let w: i64 = whole.parse().map_err(|_| Error::InvalidParameter(format!("invalid time value: {s}")))?;
        let mut n = 0i64;
        for (i, c) in frac.bytes().take(9).enumerate() {
            n += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
        return Ok(w * 1_000_000_000 + n);
    }
    if let Ok(w) = s.parse::<i64>() {
        return Ok(w * 1_000_000_000);
    }
    read::time_nanos(s).ok_or_else(|| Error::InvalidParameter(format!("invalid time value: {s}")))
}

/// Docker's stream frame: [stream, 0, 0, 0, len u32 BE] then the payload.
pub fn frame(out: &mut Vec<u8>, stream: u8, payload: &[u8]) {
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Go's url.QueryEscape, which Docker applies to attrs shown by `--details`.
fn query_escape(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
        }
    }
}

/// Selects, formats and frames entries; remembers where it is for a follower that has to find
/// its place again after rotations.
struct Emitter<'a> {
    o: &'a LogOptions,
    tty: bool,
    since: Option<i64>,
    until: Option<i64>,
    framed: Vec<u8>,
    payload: Vec<u8>,
    out: &'a mut dyn std::io::Write,
    /// Time of the last entry read, and how many entries in a row had that time.
    cursor: (i64, usize),
    /// After a resync: entries up to the cursor were sent already.
    skip: Option<(i64, usize)>,
    resynced: bool,
}

impl Emitter<'_> {
    /// Handles one entry; false once past `until` (nothing later is wanted).
    fn entry(&mut self, e: &Entry) -> Result<bool> {
        if let Some((t, n)) = self.skip {
            if e.time < t || (e.time == t && n > 0) {
                self.skip = (e.time == t).then(|| (t, n - 1)).or(Some((t, n)));
                return Ok(true);
            }
            self.skip = None;
        }
        if self.resynced && e.time < self.cursor.0 {
            // Met again through a file renamed while we looked for our place.
            return Ok(true);
        }
        if e.time == self.cursor.0 {
            self.cursor.1 += 1;
        } else {
            self.cursor = (e.time, 1);
        }
        if self.until.is_some_and(|u| e.time > u) {
            return Ok(false);
        }
        let wanted = if e.stream == 2 { self.o.stderr } else { self.o.stdout };
        if !wanted || self.since.is_some_and(|s| e.time < s) {
            return Ok(true);
        }
        let p = &mut self.payload;
        p.clear();
        if self.o.timestamps {
            p.extend_from_slice(format_unix(e.time.div_euclid(1_000_000_000), e.time.rem_euclid(1_000_000_000) as u32).as_bytes());
            p.push(b' ');
        }
        if self.o.details {
            for (i, (k, v)) in e.attrs.iter().enumerate() {
                if i > 0 {
                    p.push(b',');
                }
                query_escape(p, k);
                p.push(b'=');
                query_escape(p, v);
            }
            p.push(b' ');
        }
        p.extend_from_slice(&e.line);
        if self.tty {
            self.framed.extend_from_slice(p);
        } else {
            frame(&mut self.framed, e.stream, p);
        }
        if self.framed.len() >= 32 << 10 {
            self.flush()?;
        }
        Ok(true)
    }

    fn flush(&mut self) -> Result<()> {
        if !self.framed.is_empty() {
            let gone = |e: std::io::Error| Error::io("write logs to", "client", e);
            self.out.write_all(&self.framed).map_err(gone)?;
            self.out.flush().map_err(gone)?;
            self.framed.clear();
        }
        Ok(())
    }

    /// Every entry of `r`; false once past `until`.
    fn all(&mut self, r: &mut Records, path: &Path) -> Result<bool> {
        while let Some(e) = r.next_entry().map_err(|e| Error::io("read", path, e))? {
            if !self.entry(&e)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn ino_of(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.ino())
}

impl Engine {
    fn live(&self, id: &str) -> bool {
        self.get(id).map(|r| r.state.status.is_live() || r.state.status == crate::state::Status::Restarting).unwrap_or(false)
    }

    /// Writes the selected log lines to `out`, framed; with `follow`, keeps writing new lines
    /// until the container stops (or `out` fails: the client left). Returns when done.
    pub fn logs_to(&self, name: &str, o: &LogOptions, follow: bool, out: &mut dyn std::io::Write) -> Result<()> {
        let rec = self.get(name)?;
        let Some(file) = self.log_file(&rec) else {
            return Err(Error::InvalidParameter("configured logging driver does not support reading".into()));
        };
        let (path, format) = (file.path, file.format);
        let mut em = Emitter {
            o,
            tty: rec.config.tty,
            since: o.since.as_deref().map(to_nanos).transpose()?,
            until: o.until.as_deref().map(to_nanos).transpose()?,
            framed: Vec::with_capacity(64 << 10),
            payload: Vec::new(),
            out,
            cursor: (i64::MIN, 0),
            skip: None,
            resynced: false,
        };
        let cur = loop {
            let lock = read::lock_rotation(&path).map_err(|e| Error::io("lock", &path, e))?;
            match std::fs::File::open(&path) {
                Ok(f) => break (f, lock),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    drop(lock);
                    if !follow || !self.live(&rec.id) {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(Error::io("open", &path, e)),
            }
        };
        // With the lock held, the live file and its rotations are one set: open them all.
        let mut rotated = Vec::new();
        for r in read::rotated_files(&path) {
            if let Some(f) = read::open_rotated(&r).map_err(|e| Error::io("open", &r.path, e))? {
                rotated.push((r.path, f));
            }
        }
        let (mut cur, lock) = (cur.0, cur.1);
        drop(lock);
        let mut cur_ino = cur.metadata().map_err(|e| Error::io("stat", &path, e))?.ino();
        match o.tail {
            Some(n) => {
                let (off, found) = read::tail_offset(&mut cur, format, n).map_err(|e| Error::io("read", &path, e))?;
                let mut need = n - found;
                let mut older = Vec::new();
                while let Some((p, f)) = rotated.pop() {
                    if need == 0 {
                        break;
                    }
                    let es = read::last_entries(f, format, need).map_err(|e| Error::io("read", &p, e))?;
                    need -= es.len().min(need);
                    older.push(es);
                }
                for e in older.iter().rev().flatten() {
                    if !em.entry(e)? {
                        return em.flush();
                    }
                }
                cur.seek(SeekFrom::Start(off)).map_err(|e| Error::io("seek", &path, e))?;
            }
            None => {
                for (p, f) in rotated {
                    if !em.all(&mut Records::new(f.reader(), format), &p)? {
                        return em.flush();
                    }
                }
            }
        }
        // The reader shares `cur`'s file offset (a dup), so the offset says how far it got.
        let dup = |f: &std::fs::File| f.try_clone().map_err(|e| Error::io("dup", &path, e));
        let mut live = Records::new(Box::new(dup(&cur)?), format);
        loop {
            if !em.all(&mut live, &path)? {
                return em.flush();
            }
            em.flush()?;
            if !follow {
                return Ok(());
            }
            // Asked before looking for a rotation: once the container is no longer live, the
            // monitor has written (and rotated) for the last time.
            let live_before = self.live(&rec.id);
            match std::fs::metadata(&path) {
                Ok(m) if m.ino() == cur_ino => {
                    // max-file=1 truncates the file in place.
                    if m.len() < cur.stream_position().unwrap_or(0) {
                        cur.seek(SeekFrom::Start(0)).map_err(|e| Error::io("seek", &path, e))?;
                        live.reset();
                    }
                }
                _ => {
                    // Rotated: the monitor wrote its last entry to our file before renaming it.
                    if !em.all(&mut live, &path)? {
                        return em.flush();
                    }
                    let lock = read::lock_rotation(&path).map_err(|e| Error::io("lock", &path, e))?;
                    let next = match std::fs::File::open(&path) {
                        Ok(f) => f,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.live(&rec.id) => {
                            drop(lock);
                            std::thread::sleep(std::time::Duration::from_millis(10));
                            continue;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return em.flush(),
                        Err(e) => return Err(Error::io("open", &path, e)),
                    };
                    // Our file is .1: the new one is its direct successor. Otherwise rotations
                    // were missed: find our place again by time in the files opened under the lock.
                    let missed = if ino_of(&berth_monitor::rotated_name(&path, 1, false)) == Some(cur_ino) { Vec::new() } else { self.missed_files(&em, &path, format)? };
                    drop(lock);
                    if !missed.is_empty() {
                        em.skip = Some(em.cursor);
                        em.resynced = true;
                        for (p, r) in missed.into_iter().rev() {
                            if !em.all(&mut { r }, &p)? {
                                return em.flush();
                            }
                        }
                    }
                    cur_ino = next.metadata().map_err(|e| Error::io("stat", &path, e))?.ino();
                    cur = next;
                    live = Records::new(Box::new(dup(&cur)?), format);
                    continue;
                }
            }
            if !live_before {
                // One more pass: the last lines may have landed after the read above.
                if !em.all(&mut live, &path)? {
                    return em.flush();
                }
                return em.flush();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The rotated files from the newest back to the first one that starts before the last
    /// entry read (newest first, each positioned at its start).
    fn missed_files(&self, em: &Emitter, path: &Path, format: LogFormat) -> Result<Vec<(std::path::PathBuf, Records)>> {
        let mut out = Vec::new();
        for r in read::rotated_files(path).into_iter().rev() {
            let Some(f) = read::open_rotated(&r).map_err(|e| Error::io("open", &r.path, e))? else { continue };
            let mut rec = Records::new(f.reader(), format);
            let first = rec.next_entry().map_err(|e| Error::io("read", &r.path, e))?;
            let done = first.as_ref().is_some_and(|e| e.time < em.cursor.0);
            rec.unread(first);
            out.push((r.path, rec));
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// `docker container prune`: removes stopped containers matching `until`/`label` filters.
    pub fn prune_containers(&self, filters: &std::collections::BTreeMap<String, Vec<String>>) -> Result<(Vec<String>, u64)> {
        let until = filters.get("until").and_then(|v| v.first()).map(|s| to_secs(s)).transpose()?;
        let mut deleted = Vec::new();
        let mut space = 0;
        for rec in self.records() {
            if rec.state.status.is_live() || rec.state.status == crate::state::Status::Restarting {
                continue;
            }
            if until.is_some_and(|u| parse_rfc3339(&rec.created).unwrap_or(0) as f64 > u) {
                continue;
            }
            let labels = rec.config.labels.clone().unwrap_or_default();
            let label_ok = filters.get("label").is_none_or(|ls| {
                ls.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(l.as_str()),
                })
            });
            if !label_ok {
                continue;
            }
            let size = self.images.snapshotter().usage(&rec.id).unwrap_or(0);
            if self.remove(&rec.id, false, false).is_ok() {
                deleted.push(rec.id.clone());
                space += size;
            }
        }
        Ok((deleted, space))
    }

    /// `GET /system/df` in Docker's shape.
    pub fn system_df(&self) -> Result<serde_json::Value> {
        let du = self.images.df()?;
        let images = self.images.list(&Default::default())?;
        let containers = self.list(&crate::ListOptions { all: true, size: true, ..Default::default() })?;
        Ok(serde_json::json!({
            "LayersSize": du.images_size,
            "Images": images,
            "Containers": containers,
            "Volumes": self.volume_usage()?,
            "BuildCache": [],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_and_until_values() {
        assert_eq!(to_nanos("1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(to_nanos("1700000000.5").unwrap(), 1_700_000_000_500_000_000);
        assert_eq!(to_nanos("1700000000.000000001").unwrap(), 1_700_000_000_000_000_001);
        assert_eq!(to_nanos("2023-11-14T22:13:20.25Z").unwrap(), 1_700_000_000_250_000_000);
        assert!(to_nanos("yesterday").is_err());
    }

    #[test]
    fn details_are_query_escaped() {
        let mut v = Vec::new();
        query_escape(&mut v, "a b/c=d,é~_.-");
        assert_eq!(String::from_utf8(v).unwrap(), "a+b%2Fc%3Dd%2C%C3%A9~_.-");
    }
}
