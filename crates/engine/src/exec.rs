//! `docker exec`: exec instances live in memory only (as in Docker); each started one runs under
//! its own berth-monitor in exec mode (berth_monitor::spawn_exec), which joins the container's
//! namespaces and cgroup with the container's own process settings (capabilities, seccomp,
//! no-new-privileges, AppArmor, rlimits) as `berth-runc exec` does. Nothing but the running
//! container is needed, so exec works on containers that survived a berthd restart.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use berth_api::exec::{ExecCreateRequest, ExecInspect, ProcessConfig};
use berth_monitor::{ExecMode, MonitorConfig};
use oci_spec::runtime::{BoxBuilder, Process};

use crate::error::{Error, Result};
use crate::record::{MonitorRef, Record};
use crate::state::Status;
use crate::{lock, Engine};

/// Finished exec instances stay inspectable this long (Docker's clean-up runs every 5 minutes).
const KEEP_ENDED: Duration = Duration::from_secs(300);
/// How long a resize waits for the exec it targets to be running (Docker waits 10 s too).
const RESIZE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(crate) struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub cmd: Vec<String>,
    /// The whole environment: the daemon's defaults, the container's, the request's.
    pub env: Vec<String>,
    /// The request's user, else the container's.
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub privileged: bool,
    pub console_size: Option<(u16, u16)>,
    pub open_stdin: bool,
    pub open_stdout: bool,
    pub open_stderr: bool,
    pub detach_keys: Vec<u8>,
    /// Start was asked for (Docker's Running flag goes up then, before the process exists).
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
    pub monitor: Option<MonitorRef>,
    pub ended: Option<Instant>,
}

impl ExecRecord {
    fn summary(&self) -> String {
        let (entry, args) = self.cmd.split_first().map(|(e, a)| (e.as_str(), a.join(" "))).unwrap_or_default();
        // Docker's text, trailing space included when there are no arguments.
        format!("{entry} {args}")
    }
}

/// The exec instances, and a condition variable for those waiting on one to start.
#[derive(Default)]
pub(crate) struct Execs {
    map: Mutex<HashMap<String, ExecRecord>>,
    changed: Condvar,
}

/// Docker's `term.ToBytes`: "ctrl-p,ctrl-q" or single characters, comma separated.
/// Docker's detach key syntax (`ctrl-p,ctrl-q`, `ctrl-@`, single characters) as bytes.
pub fn detach_key_bytes(keys: &str) -> Result<Vec<u8>> {
    let bad = || Error::InvalidParameter(format!("Invalid escape keys ({keys}) provided"));
    let mut out = Vec::new();
    for k in keys.split(',').map(str::trim) {
        let lower = k.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad()),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

/// Go's encoding of a []byte in JSON.
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Docker's `ReplaceOrAppendEnvValues`: same name replaces, a bare `NAME` removes.
pub(crate) fn replace_or_append(mut env: Vec<String>, overrides: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    for o in overrides {
        let k = key(o);
        match (o.contains('='), env.iter().position(|e| e.contains('=') && key(e) == k)) {
            (true, Some(i)) => env[i] = o.clone(),
            (true, None) => env.push(o.clone()),
            (false, Some(i)) => {
                env.remove(i);
            }
            (false, None) => {}
        }
    }
    env
}

/// Docker's `CreateDaemonEnvironment` + the exec's own variables.
pub(crate) fn exec_env(rec: &Record, tty: bool, extra: &[String]) -> Vec<String> {
    let mut env = vec![berth_spec::process::DEFAULT_PATH_ENV.to_owned(), format!("HOSTNAME={}", rec.config.hostname)];
    if tty {
        env.push("TERM=xterm".into());
    }
    let env = replace_or_append(env, rec.config.env.as_deref().unwrap_or_default());
    replace_or_append(env, extra)
}

/// How the runtime's start error reads in Docker, and the exit code it leaves (127 not found,
/// 126 not executable or any other failure).
fn start_error(msg: &str) -> (i64, String) {
    let msg = msg.strip_prefix("container init: ").unwrap_or(msg);
    let lower = msg.to_ascii_lowercase();
    let code = if lower.contains("executable file not found") || lower.contains("no such file or directory") { 127 } else { 126 };
    (code, format!("OCI runtime exec failed: exec failed: unable to start container process: {msg}: unknown"))
}

/// Why an exec cannot run in this container now (Docker's 409s).
fn refuse(rec: &Record, name: &str) -> Result<()> {
    match rec.state.status {
        Status::Running => Ok(()),
        Status::Paused => Err(Error::Conflict(format!("Container {name} is paused, unpause the container before exec"))),
        Status::Restarting => Err(Error::Conflict(format!("Container {} is restarting, wait until the container is running", rec.id))),
        _ => Err(Error::Conflict(format!("container {} is not running", rec.id))),
    }
}

impl Engine {
    fn exec_get(&self, id: &str) -> Result<ExecRecord> {
        lock(&self.execs.map).get(id).cloned().ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    fn exec_update(&self, id: &str, f: impl FnOnce(&mut ExecRecord)) {
        if let Some(e) = lock(&self.execs.map).get_mut(id) {
            f(e);
        }
        self.execs.changed.notify_all();
    }

    /// Drops an exec instance (a health probe's, once its result is taken).
    pub(crate) fn exec_forget(&self, id: &str) {
        lock(&self.execs.map).remove(id);
    }

    /// The exec instances of a container that are running, for its inspect (`ExecIDs`).
    pub(crate) fn running_execs(&self, container_id: &str) -> Option<Vec<String>> {
        let ids: Vec<String> =
            lock(&self.execs.map).values().filter(|e| e.container_id == container_id && e.exit_code.is_none() && e.running).map(|e| e.id.clone()).collect();
        (!ids.is_empty()).then_some(ids)
    }

    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, name: &str, req: &ExecCreateRequest) -> Result<String> {
        let rec = self.get(name)?;
        refuse(&rec, name)?;
        let cmd = req.cmd.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err(Error::InvalidParameter("No exec command specified".into()));
        }
        let detach_keys = if req.detach_keys.is_empty() { Vec::new() } else { detach_key_bytes(&req.detach_keys)? };
        let console_size = console_size(req.console_size.as_deref())?;
        let e = ExecRecord {
            id: crate::names::new_id(),
            container_id: rec.id.clone(),
            env: exec_env(&rec, req.tty, req.env.as_deref().unwrap_or_default()),
            cmd,
            user: if req.user.is_empty() { rec.config.user.clone() } else { req.user.clone() },
            working_dir: if req.working_dir.is_empty() { rec.config.working_dir.clone() } else { req.working_dir.clone() },
            tty: req.tty,
            privileged: req.privileged,
            console_size,
            open_stdin: req.attach_stdin,
            open_stdout: req.attach_stdout,
            open_stderr: req.attach_stderr,
            detach_keys,
            running: false,
            exit_code: None,
            pid: 0,
            monitor: None,
            ended: None,
        };
        let id = e.id.clone();
        let summary = e.summary();
        {
            let mut m = lock(&self.execs.map);
            // Forget what has ended long ago or outlived its container.
            let live = lock(&self.containers);
            m.retain(|_, x| live.contains_key(&x.container_id) && x.ended.is_none_or(|t| t.elapsed() < KEEP_ENDED));
            drop(live);
            m.insert(id.clone(), e);
        }
        self.emit(&rec, &format!("exec_create: {summary}"), &[("execID", id.clone())]);
        Ok(id)
    }

    /// The checks of `POST /exec/{id}/start` that answer with an HTTP error (before a stream is
    /// hijacked); marks the exec as started. Returns whether it has a TTY.
    /// The sequence that detaches a client from this exec (Docker's default unless the
    /// exec was created with its own).
    pub fn exec_detach_keys(&self, id: &str) -> Result<Vec<u8>> {
        let e = self.exec_get(id)?;
        Ok(if e.detach_keys.is_empty() { vec![16, 17] } else { e.detach_keys.clone() })
    }

    pub fn exec_begin(&self, id: &str) -> Result<bool> {
        let e = self.exec_get(id)?;
        let rec = self.get(&e.container_id).map_err(|_| Error::no_such_container(&e.container_id))?;
        refuse(&rec, &rec.id)?;
        let mut m = lock(&self.execs.map);
        let e = m.get_mut(id).ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))?;
        if e.exit_code.is_some() {
            return Err(Error::Conflict(format!("Error: Exec command {id} has already run")));
        }
        if e.running {
            return Err(Error::Conflict(format!("Error: Exec command {id} is already running")));
        }
        e.running = true;
        Ok(e.tty)
    }

    /// Starts an exec that `exec_begin` accepted. Returns the stream attached to the streams it
    /// asked for (with a TTY: raw; else Docker's multiplexed frames), which ends when the
    /// process has (detached: carries nothing). On failure the exec ends with Docker's exit code
    /// (127, 126) and the error is what the client is to be shown.
    pub fn exec_run(self: &Arc<Self>, id: &str, console: Option<&[u64]>, detach: bool) -> Result<UnixStream> {
        let e = self.exec_get(id)?;
        let started = (|| {
            let rec = self.get(&e.container_id)?;
            let console = console_size(console)?.or(e.console_size);
            self.emit(&rec, &format!("exec_start: {}", e.summary()), &[("execID", id.to_owned())]);
            let process = serde_json::to_string(&self.exec_process(&rec, &e, console)?)?;
            let attach = (!detach).then_some([e.open_stdin, e.open_stdout, e.open_stderr]);
            self.spawn_exec_monitor(&rec, id, process, e.tty, e.open_stdin && !detach, console, attach)
        })();
        match started {
            Ok((m, stream)) => {
                let mref = MonitorRef { pid: m.pid, start_time: m.start_time };
                self.exec_update(id, |x| {
                    x.pid = m.init_pid;
                    x.monitor = Some(mref);
                });
                self.watch_exec(id.to_owned(), e.container_id.clone(), mref);
                Ok(stream)
            }
            // Whatever failed, the exec has ended: Docker's 126 unless the runtime says 127.
            Err(err) => {
                let (code, err) = match err {
                    Error::Monitor(berth_monitor::Error::Spawn(msg)) => {
                        let (code, text) = start_error(&msg);
                        // Docker: a command not found or not executable is the request's fault.
                        let invalid = code == 127 || text.to_ascii_lowercase().contains("permission denied");
                        (code, if invalid { Error::InvalidParameter(text) } else { Error::Internal(text) })
                    }
                    other => (126, other),
                };
                self.exec_update(id, |x| {
                    x.running = false;
                    x.exit_code = Some(code);
                    x.ended = Some(Instant::now());
                });
                Err(err)
            }
        }
    }

    /// The monitor that runs one exec's process; the caller watches it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn spawn_exec_monitor(
        &self,
        rec: &Record,
        exec_id: &str,
        process: String,
        tty: bool,
        open_stdin: bool,
        console: Option<(u16, u16)>,
        attach: Option<[bool; 3]>,
    ) -> Result<(berth_monitor::Monitor, UnixStream)> {
        let mc = MonitorConfig {
            id: rec.id.clone(),
            bundle: self.bundle_dir(&rec.id),
            runtime_root: self.cfg.runtime_root(),
            log_path: None,
            log: Default::default(),
            tty,
            open_stdin,
            // Docker closes an exec's stdin when its client's ends.
            stdin_once: true,
            unmount_rootfs: false,
            monitor_bin: self.cfg.monitor_bin.clone(),
            systemd_cgroup: self.cfg.systemd_cgroup,
            console_size: console,
            exec: Some(ExecMode { exec_id: exec_id.to_owned(), process, attach, cgroup2: self.cgroup2_dir(&rec.id) }),
        };
        Ok(berth_monitor::spawn_exec(&mc)?)
    }

    /// The container's cgroup2 directory, where the exec's process is to be born.
    fn cgroup2_dir(&self, id: &str) -> Option<std::path::PathBuf> {
        let (_, st) = berth_runtime::state::StateDir::load(&self.cfg.runtime_root(), id).ok()?;
        berth_runtime::container::cgroup_manager(&st.cgroup_path).ok()?.cgroup2_dir().map(|p| p.to_path_buf())
    }

    /// The container's own process (from the runtime's state: what it really runs with) with
    /// the exec's command, environment, user, directory and terminal.
    pub(crate) fn exec_process(&self, rec: &Record, e: &ExecRecord, console: Option<(u16, u16)>) -> Result<Process> {
        let spec = berth_runtime::container::spec_of(&self.cfg.runtime_root(), &rec.id)?;
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_args(Some(e.cmd.clone()));
        p.set_terminal(Some(e.tty));
        p.set_console_size(match console.filter(|_| e.tty) {
            Some((h, w)) => Some(BoxBuilder::default().height(u64::from(h)).width(u64::from(w)).build().map_err(|x| Error::Internal(x.to_string()))?),
            None => None,
        });
        p.set_cwd(if e.working_dir.is_empty() { "/".into() } else { e.working_dir.clone().into() });
        let rootfs = self.bundle_dir(&rec.id).join("rootfs");
        let (user, home) = berth_spec::exec::resolve_user(&rootfs, &e.user, rec.host_config.group_add.as_deref().unwrap_or_default())?;
        p.set_user(user);
        let mut env = e.env.clone();
        // As runc does inside the container: HOME of the user when nothing set it.
        if !env.iter().any(|v| v.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        p.set_env(Some(env));
        if e.privileged {
            p.set_capabilities(Some(berth_spec::exec::privileged_capabilities()?));
        }
        Ok(p)
    }

    /// Watches an exec's monitor through a pidfd and records the exit it wrote.
    fn watch_exec(self: &Arc<Self>, id: String, container_id: String, m: MonitorRef) {
        let engine = self.clone();
        let fd = if berth_monitor::alive(m.pid, m.start_time) { crate::supervise::pidfd_open(m.pid) } else { None };
        self.rt.spawn(async move {
            if let Some(fd) = fd {
                // SAFETY: the pidfd is owned by the AsyncFd and closed only when it is dropped.
                if let Ok(afd) = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
                    let _ = afd.readable().await;
                }
            }
            let _ = tokio::task::spawn_blocking(move || engine.exec_exited(&id, &container_id)).await;
        });
    }

    /// Records an exec's end once (from its exit record; 255, as Docker reports a lost process,
    /// when the monitor died without one) and emits `exec_die`.
    fn exec_exited(&self, id: &str, container_id: &str) {
        let bundle = self.bundle_dir(container_id);
        let code = match berth_monitor::read_exec_exit(&bundle, id) {
            Ok(Some(x)) => i64::from(x.exit_code),
            _ => 255,
        };
        let mut first = false;
        self.exec_update(id, |x| {
            if x.exit_code.is_none() {
                x.exit_code = Some(code);
                x.running = false;
                x.ended = Some(Instant::now());
                first = true;
            }
        });
        let _ = std::fs::remove_file(berth_monitor::exec_exit_path(&bundle, id));
        if first {
            if let Ok(rec) = self.get(container_id) {
                self.emit(&rec, "exec_die", &[("execID", id.to_owned()), ("exitCode", code.to_string())]);
            }
        }
    }

    /// `GET /exec/{id}/json`. A client that saw the output end asks at once: the monitor wrote
    /// the exit before closing the stream, so it is read here if the watcher has not yet.
    pub fn exec_inspect(&self, id: &str) -> Result<ExecInspect> {
        let mut e = self.exec_get(id)?;
        if e.running && e.exit_code.is_none() && e.monitor.is_some() {
            let bundle = self.bundle_dir(&e.container_id);
            if let Ok(Some(_)) = berth_monitor::read_exec_exit(&bundle, id) {
                self.exec_exited(id, &e.container_id);
            }
            e = self.exec_get(id)?;
        }
        let (entrypoint, arguments) = e.cmd.split_first().map(|(a, b)| (a.clone(), b.to_vec())).unwrap_or_default();
        Ok(ExecInspect {
            id: e.id.clone(),
            running: e.running && e.exit_code.is_none(),
            exit_code: e.exit_code,
            process_config: ProcessConfig { privileged: e.privileged, user: e.user.clone(), tty: e.tty, entrypoint, arguments },
            open_stdin: e.open_stdin,
            open_stderr: e.open_stderr,
            open_stdout: e.open_stdout,
            can_remove: false,
            container_id: e.container_id.clone(),
            detach_keys: base64(&e.detach_keys),
            pid: i64::from(e.pid),
        })
    }

    /// `POST /exec/{id}/resize`: waits (bounded) for an exec that is being started, as Docker
    /// does: clients resize right after the start request.
    pub fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let deadline = Instant::now() + RESIZE_WAIT;
        let mut m = lock(&self.execs.map);
        loop {
            let e = m.get(id).ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))?;
            if e.exit_code.is_some() {
                return Err(Error::Conflict(format!("Exec {id} is not running")));
            }
            if e.monitor.is_some() {
                let cid = e.container_id.clone();
                drop(m);
                return Ok(berth_monitor::exec_resize(&self.bundle_dir(&cid), id, rows, cols)?);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Internal(format!("timeout waiting for exec session ready: {id}")));
            }
            m = self.execs.changed.wait_timeout(m, left).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

fn console_size(v: Option<&[u64]>) -> Result<Option<(u16, u16)>> {
    match v {
        None => Ok(None),
        Some([h, w]) if *h == 0 && *w == 0 => Ok(None),
        Some([h, w]) => Ok(Some(((*h).min(u64::from(u16::MAX)) as u16, (*w).min(u64::from(u16::MAX)) as u16))),
        Some(_) => Err(Error::InvalidParameter("ConsoleSize must be [height, width]".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_like_docker() {
        assert_eq!(detach_key_bytes("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(detach_key_bytes("a,ctrl-@,ctrl-_").unwrap(), vec![b'a', 0, 31]);
        assert!(detach_key_bytes("ctrl-1").is_err());
        assert!(detach_key_bytes("ab").is_err());
        assert_eq!(base64(&[16, 17]), "EBE=");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fo"), "Zm8=");
    }

    #[test]
    fn env_replaced_appended_removed() {
        let env = replace_or_append(vec!["PATH=/bin".into(), "HOSTNAME=h".into()], &["PATH=/x".into(), "A=1".into(), "HOSTNAME".into(), "NOPE".into()]);
        assert_eq!(env, ["PATH=/x", "A=1"]);
    }

    #[test]
    fn start_errors_read_like_dockers() {
        let (code, text) = start_error("container init: exec: \"nosuch\": executable file not found in $PATH");
        assert_eq!(code, 127);
        assert_eq!(text, "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown");
        assert_eq!(start_error("exec: \"/etc\": permission denied").0, 126);
    }
}
