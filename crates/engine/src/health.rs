//! Healthchecks (Docker's daemon/health.go): while a container with a healthcheck runs, a probe
//! (an exec of the test command, CMD or CMD-SHELL) runs every interval with a timeout; its
//! results make the status starting -> healthy / unhealthy with Docker's rules (failures in the
//! start period do not count; `retries` consecutive failures make it unhealthy), keep the last 5
//! probes, and emit `health_status: <status>` on each change. The state is kept in memory and,
//! on each status change, in `<container dir>/health.json` (so a restored daemon shows it).

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_api::container::{Health, HealthcheckResult};
use berth_api::exec::ExecCreateRequest;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::state::Status;
use crate::{lock, Engine};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Probes kept in State.Health.Log.
const MAX_LOG: usize = 5;
/// Probe output kept (then "..." marks the rest as lost).
const MAX_OUTPUT: usize = 4096;
/// After a timed-out probe was killed: how long its output may still take to end.
const KILL_GRACE: Duration = Duration::from_secs(10);

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// A container's healthcheck, with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    cmd: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    start_interval: Duration,
    retries: i64,
}

/// The probe a container's config asks for; None without one or with `NONE`.
pub(crate) fn check_of(rec: &Record) -> Option<Check> {
    let h = rec.config.healthcheck.as_ref()?;
    let test = h.test.as_ref()?;
    let mut cmd = match test.first()?.as_str() {
        "CMD" => Vec::new(),
        "CMD-SHELL" => rec.config.shell.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]),
        _ => return None,
    };
    cmd.extend(test[1..].iter().cloned());
    if cmd.is_empty() {
        return None;
    }
    let dur = |ns: i64, default: Duration| if ns > 0 { Duration::from_nanos(ns as u64) } else { default };
    Some(Check {
        cmd,
        interval: dur(h.interval, DEFAULT_INTERVAL),
        timeout: dur(h.timeout, DEFAULT_TIMEOUT),
        start_period: dur(h.start_period, Duration::ZERO),
        start_interval: dur(h.start_interval, DEFAULT_START_INTERVAL),
        retries: if h.retries > 0 { h.retries } else { DEFAULT_RETRIES },
    })
}

struct Entry {
    health: Health,
    /// Which start of the container the probe loop serves; a later start makes it stop.
    generation: u64,
    started: SystemTime,
}

#[derive(Default)]
pub(crate) struct HealthMonitors {
    map: Mutex<HashMap<String, Entry>>,
    next: AtomicU64,
}

/// Go's `time.Duration.String()`: "200ms", "1.5s", "1m30s".
pub(crate) fn go_duration(d: Duration) -> String {
    fn frac(v: u128, unit: u128, suffix: &str) -> String {
        let (i, f) = (v / unit, v % unit);
        if f == 0 {
            return format!("{i}{suffix}");
        }
        let width = unit.ilog10() as usize;
        let digits = format!("{f:0width$}");
        format!("{i}.{}{suffix}", digits.trim_end_matches('0'))
    }
    let ns = d.as_nanos();
    match ns {
        0 => "0s".into(),
        _ if ns < 1_000 => format!("{ns}ns"),
        _ if ns < 1_000_000 => frac(ns, 1_000, "µs"),
        _ if ns < 1_000_000_000 => frac(ns, 1_000_000, "ms"),
        _ => {
            let (h, m) = (ns / 3_600_000_000_000, ns / 60_000_000_000 % 60);
            let s = frac(ns % 60_000_000_000, 1_000_000_000, "s");
            match (h, m) {
                (0, 0) => s,
                (0, _) => format!("{m}m{s}"),
                _ => format!("{h}h{m}m{s}"),
            }
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    berth_image::store::time::format_unix(d.as_secs() as i64, d.subsec_nanos())
}

/// Docker's `limitedBuffer`: the first 4096 bytes, "..." when more were dropped.
struct Output {
    buf: Vec<u8>,
    truncated: bool,
}

impl Output {
    fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        self.truncated |= keep < data.len();
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Applies one probe's result (Docker's `handleProbeResult`); returns the new status when it
/// changed.
fn apply(h: &mut Health, r: HealthcheckResult, retries: i64, in_start_period: bool) -> Option<String> {
    let old = h.status.clone();
    let ok = r.exit_code == 0;
    if h.log.len() >= MAX_LOG {
        h.log.drain(..h.log.len() + 1 - MAX_LOG);
    }
    h.log.push(r);
    if ok {
        h.failing_streak = 0;
        h.status = HEALTHY.into();
    } else if !(h.status == STARTING && in_start_period) {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = UNHEALTHY.into();
        }
    }
    (h.status != old).then(|| h.status.clone())
}

impl Engine {
    fn health_file(&self, id: &str) -> std::path::PathBuf {
        self.container_dir(id).join("health.json")
    }

    fn save_health(&self, id: &str, h: &Health) {
        let path = self.health_file(id);
        let tmp = path.with_extension("json.tmp");
        if let Ok(data) = serde_json::to_vec(h) {
            if std::fs::write(&tmp, data).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }

    fn load_health(&self, id: &str) -> Option<Health> {
        serde_json::from_slice(&std::fs::read(self.health_file(id)).ok()?).ok()
    }

    /// `State.Health` of inspect: for a container with a healthcheck that has started.
    pub(crate) fn health_of(&self, rec: &Record) -> Option<Health> {
        check_of(rec)?;
        let mut m = lock(&self.health.map);
        if let Some(e) = m.get(&rec.id) {
            return Some(e.health.clone());
        }
        let h = self.load_health(&rec.id)?;
        m.insert(rec.id.clone(), Entry { health: h.clone(), generation: 0, started: SystemTime::now() });
        Some(h)
    }

    /// The STATUS column of `docker ps`, with the health of a running container.
    pub(crate) fn ps_status(&self, rec: &Record) -> String {
        let s = crate::query::status_text(rec);
        if rec.state.status != Status::Running {
            return s;
        }
        match self.health_of(rec) {
            Some(h) if h.status == STARTING => format!("{s} (health: starting)"),
            Some(h) => format!("{s} ({})", h.status),
            None => s,
        }
    }

    /// The `health` filter of `docker ps`: starting, healthy, unhealthy or none.
    pub(crate) fn health_matches(&self, rec: &Record, vals: &[String]) -> Result<bool> {
        for v in vals {
            if ![STARTING, HEALTHY, UNHEALTHY, "none"].contains(&v.as_str()) {
                return Err(Error::InvalidParameter(format!("Unrecognised filter value for health: {v}")));
            }
        }
        let status = self.health_of(rec).map_or_else(|| "none".to_owned(), |h| h.status);
        Ok(vals.contains(&status))
    }

    /// The container (re)started: status starting, failing streak reset, probes from now on.
    pub(crate) fn health_started(self: &Arc<Self>, id: &str) {
        self.health_begin(id, None);
    }

    /// At daemon start, for a container still running: the recorded status stays, probes resume.
    pub(crate) fn health_restored(self: &Arc<Self>, id: &str) {
        let Ok(rec) = self.get(id) else { return };
        let started = rec.state.started_at.as_deref().and_then(berth_image::store::time::parse_rfc3339).map(|s| UNIX_EPOCH + Duration::from_secs(s.max(0) as u64));
        self.health_begin(id, Some(started.unwrap_or_else(SystemTime::now)));
    }

    fn health_begin(self: &Arc<Self>, id: &str, restored: Option<SystemTime>) {
        let Ok(rec) = self.get(id) else { return };
        let Some(check) = check_of(&rec) else { return };
        let generation = self.health.next.fetch_add(1, Ordering::Relaxed) + 1;
        let stored = self.load_health(id);
        {
            let mut m = lock(&self.health.map);
            // Entries of removed containers go here, rather than with a hook in removal.
            let live = lock(&self.containers);
            m.retain(|k, _| live.contains_key(k));
            drop(live);
            let prev = m.remove(id).map(|e| e.health).or(stored);
            let mut health = prev.unwrap_or_else(|| Health { status: STARTING.into(), ..Default::default() });
            if restored.is_none() {
                health.status = STARTING.into();
                health.failing_streak = 0;
            }
            self.save_health(id, &health);
            m.insert(id.to_owned(), Entry { health, generation, started: restored.unwrap_or_else(SystemTime::now) });
        }
        let engine = self.clone();
        let id = id.to_owned();
        self.rt.spawn(async move { engine.probe_loop(id, generation, check).await });
    }

    /// The loop of one run of a container: ends when the container stops or starts again.
    async fn probe_loop(self: Arc<Self>, id: String, generation: u64, check: Check) {
        loop {
            let Some(wait) = self.next_probe_in(&id, generation, &check) else { return };
            tokio::time::sleep(wait).await;
            match self.get(&id) {
                Ok(r) if r.state.status == Status::Paused => continue,
                Ok(r) if r.state.status == Status::Running => {}
                _ => return,
            }
            if self.next_probe_in(&id, generation, &check).is_none() {
                return;
            }
            let start = SystemTime::now();
            let (engine, pid, c) = (self.clone(), id.clone(), check.clone());
            let Ok(mut result) = tokio::task::spawn_blocking(move || engine.run_probe(&pid, &c)).await else { return };
            result.start = rfc3339(start);
            self.probe_done(&id, generation, result, start, &check);
        }
    }

    /// Docker's interval: `start_interval` while starting within the start period, never past
    /// the period's end; `interval` after. None when this loop is no longer wanted.
    fn next_probe_in(&self, id: &str, generation: u64, check: &Check) -> Option<Duration> {
        let m = lock(&self.health.map);
        let e = m.get(id).filter(|e| e.generation == generation)?;
        let elapsed = e.started.elapsed().unwrap_or_default();
        if elapsed >= check.start_period {
            return Some(check.interval);
        }
        let left = check.start_period - elapsed;
        if left < check.interval {
            return Some(left);
        }
        Some(if e.health.status == STARTING { check.start_interval } else { check.interval })
    }

    fn probe_done(&self, id: &str, generation: u64, result: HealthcheckResult, start: SystemTime, check: &Check) {
        // A probe the container's stop cut short says nothing about its health (Docker drops it).
        if !self.get(id).is_ok_and(|r| r.state.status.is_live()) {
            return;
        }
        let changed = {
            let mut m = lock(&self.health.map);
            let Some(e) = m.get_mut(id).filter(|e| e.generation == generation) else { return };
            let in_start = start.duration_since(e.started).unwrap_or_default() < check.start_period;
            let changed = apply(&mut e.health, result, check.retries, in_start);
            if changed.is_some() {
                self.save_health(id, &e.health);
            }
            changed
        };
        if let (Some(status), Ok(rec)) = (changed, self.get(id)) {
            self.emit(&rec, &format!("health_status: {status}"), &[]);
        }
    }

    /// One probe: an exec of the test command (container's user, directory and environment; no
    /// TTY, no stdin) whose output is collected; killed at the timeout (exit code -1).
    fn run_probe(self: &Arc<Self>, id: &str, check: &Check) -> HealthcheckResult {
        let r = (|| -> Result<(i64, String)> {
            let rec = self.get(id)?;
            let req = ExecCreateRequest {
                attach_stdout: true,
                attach_stderr: true,
                cmd: Some(check.cmd.clone()),
                user: rec.config.user.clone(),
                working_dir: rec.config.working_dir.clone(),
                ..Default::default()
            };
            let exec_id = self.exec_create(id, &req)?;
            // Probes come often: their instances go as soon as their result is in.
            let r = self.probe_exec(&rec, &exec_id, check);
            self.exec_forget(&exec_id);
            r
        })();
        let (exit_code, output) = r.unwrap_or_else(|e| (-1, e.to_string()));
        HealthcheckResult { start: String::new(), end: rfc3339(SystemTime::now()), exit_code, output }
    }

    /// Runs a probe's exec; its timeout counts from when the process runs (Docker's rule: the
    /// time taken to start it is not the probe's).
    fn probe_exec(self: &Arc<Self>, rec: &Record, exec_id: &str, check: &Check) -> Result<(i64, String)> {
        self.exec_begin(exec_id)?;
        let mut stream = self.exec_run(exec_id, None, false)?;
        let mut out = Output { buf: Vec::new(), truncated: false };
        if read_frames(&mut stream, Instant::now() + check.timeout, &mut out) {
            let _ = berth_monitor::exec_kill(&self.bundle_dir(&rec.id), exec_id, libc::SIGKILL);
            read_frames(&mut stream, Instant::now() + KILL_GRACE, &mut Output { buf: Vec::new(), truncated: false });
            let _ = self.exec_inspect(exec_id);
            let (t, text) = (go_duration(check.timeout), out.text());
            let msg = if text.is_empty() { format!("Health check exceeded timeout ({t})") } else { format!("Health check exceeded timeout ({t}): {text}") };
            return Ok((-1, msg));
        }
        let code = self.exec_inspect(exec_id)?.exit_code.unwrap_or(-1);
        Ok((code, out.text()))
    }
}

/// Reads Docker's multiplexed frames into `out` until EOF (false) or `deadline` (true).
fn read_frames(s: &mut std::os::unix::net::UnixStream, deadline: Instant, out: &mut Output) -> bool {
    let mut buf = [0u8; 8192];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return true;
        }
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                // Whole frames: [stream, 0, 0, 0, len u32 BE] payload.
                while pending.len() >= 8 {
                    let len = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
                    if pending.len() < 8 + len {
                        break;
                    }
                    out.push(&pending[8..8 + len]);
                    pending.drain(..8 + len);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return true,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i64) -> HealthcheckResult {
        HealthcheckResult { exit_code: code, ..Default::default() }
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
    }

    #[test]
    fn status_rules_like_docker() {
        let mut h = Health { status: STARTING.into(), ..Default::default() };
        // Failures in the start period do not count.
        assert_eq!(apply(&mut h, res(1), 2, true), None);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(apply(&mut h, res(1), 2, false), None);
        assert_eq!(apply(&mut h, res(1), 2, false).as_deref(), Some(UNHEALTHY));
        assert_eq!(h.failing_streak, 2);
        assert_eq!(apply(&mut h, res(0), 2, false).as_deref(), Some(HEALTHY));
        assert_eq!(h.failing_streak, 0);
        // Once healthy, the start period no longer shields failures.
        assert_eq!(apply(&mut h, res(1), 2, true), None);
        assert_eq!(h.failing_streak, 1);
        for _ in 0..4 {
            apply(&mut h, res(0), 2, false);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }

    #[test]
    fn output_is_bounded() {
        let mut o = Output { buf: Vec::new(), truncated: false };
        o.push(&[b'a'; 4000]);
        o.push(&[b'b'; 200]);
        let t = o.text();
        assert_eq!(t.len(), 4096 + 3);
        assert!(t.ends_with("bb..."));
    }
}
