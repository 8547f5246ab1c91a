//! `docker logs` over the json-file log the monitor writes: selection by stream, time and tail,
//! framed as the API sends it (multiplexed without a TTY, raw with one).

use std::io::{BufRead, BufReader};

use berth_image::store::time::parse_rfc3339;

use crate::error::{Error, Result};
use crate::Engine;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    pub tail: Option<usize>,
    /// Unix seconds (with fraction) or RFC 3339.
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(serde::Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

fn to_secs(s: &str) -> Result<f64> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok(f);
    }
    parse_rfc3339(s).map(|x| x as f64).ok_or_else(|| Error::InvalidParameter(format!("invalid time value: {s}")))
}

/// Seconds (with fraction) of an RFC 3339 time with nanoseconds.
fn line_secs(t: &str) -> f64 {
    let whole = parse_rfc3339(t).unwrap_or(0) as f64;
    let frac = t.split_once('.').map(|(_, f)| f.trim_end_matches('Z')).and_then(|f| format!("0.{f}").parse::<f64>().ok()).unwrap_or(0.0);
    whole + frac
}

/// Docker's stream frame: [stream, 0, 0, 0, len u32 BE] then the payload.
pub fn frame(out: &mut Vec<u8>, stream: u8, payload: &[u8]) {
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Offset where the last `n` lines of the file start: scans backwards in blocks, so the tail
/// of a huge log costs only its last lines.
fn tail_offset(f: &mut std::fs::File, n: usize) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0;
    let mut buf = vec![0u8; 64 << 10];
    // The final newline ends the last line; it does not start a new one.
    let mut skip_last = true;
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..step as usize])?;
        for i in (0..step as usize).rev() {
            if buf[i] == b'\n' {
                if skip_last && pos + i as u64 == len - 1 {
                    skip_last = false;
                    continue;
                }
                newlines += 1;
                if newlines == n {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

impl Engine {
    /// Writes the selected log lines to `out`, framed; with `follow`, keeps writing new lines
    /// until the container stops (or `out` fails: the client left). Returns when done.
    pub fn logs_to(&self, name: &str, o: &LogOptions, follow: bool, out: &mut dyn std::io::Write) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let rec = self.get(name)?;
        let tty = rec.config.tty;
        let driver = if rec.host_config.log_config.typ.is_empty() { self.cfg.log_driver.clone() } else { rec.host_config.log_config.typ.clone() };
        if driver == "none" {
            return Err(Error::InvalidParameter("configured logging driver does not support reading".into()));
        }
        let since = o.since.as_deref().map(to_secs).transpose()?;
        let until = o.until.as_deref().map(to_secs).transpose()?;
        let path = self.log_path(&rec.id);
        let mut f = loop {
            match std::fs::File::open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !follow || !self.get(&rec.id).map(|r| r.state.status.is_live()).unwrap_or(false) {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(Error::io("open", &path, e)),
            }
        };
        let start = match o.tail {
            Some(n) => tail_offset(&mut f, n).map_err(|e| Error::io("read", &path, e))?,
            None => 0,
        };
        f.seek(SeekFrom::Start(start)).map_err(|e| Error::io("seek", &path, e))?;
        let mut reader = BufReader::with_capacity(256 << 10, f);
        let mut pending = String::new();
        let mut framed = Vec::with_capacity(64 << 10);
        let gone = |e: std::io::Error| Error::io("write logs to", "client", e);
        loop {
            let n = reader.read_line(&mut pending).map_err(|e| Error::io("read", &path, e))?;
            if n > 0 && pending.ends_with('\n') {
                if let Ok(line) = serde_json::from_str::<Line>(&pending) {
                    let wanted = (line.stream == "stdout" && o.stdout) || (line.stream == "stderr" && o.stderr);
                    let t = line_secs(&line.time);
                    if wanted && !since.is_some_and(|s| t < s) && !until.is_some_and(|u| t > u) {
                        let mut payload = Vec::with_capacity(line.log.len() + 32);
                        if o.timestamps {
                            payload.extend_from_slice(line.time.as_bytes());
                            payload.push(b' ');
                        }
                        payload.extend_from_slice(line.log.as_bytes());
                        if tty {
                            framed.extend_from_slice(&payload);
                        } else {
                            frame(&mut framed, if line.stream == "stderr" { 2 } else { 1 }, &payload);
                        }
                        if framed.len() >= 32 << 10 {
                            out.write_all(&framed).map_err(gone)?;
                            framed.clear();
                        }
                    }
                }
                pending.clear();
                continue;
            }
            // End of what is written so far.
            if !framed.is_empty() {
                out.write_all(&framed).map_err(gone)?;
                out.flush().map_err(gone)?;
                framed.clear();
            }
            if !follow {
                return Ok(());
            }
            let live = self.get(&rec.id).map(|r| r.state.status.is_live() || r.state.status == crate::state::Status::Restarting).unwrap_or(false);
            if !live {
                // One more pass: the last lines may have landed after the read above.
                let n = reader.read_line(&mut pending).map_err(|e| Error::io("read", &path, e))?;
                if n > 0 {
                    continue;
                }
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
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
