//! berth-monitor: one small process per running container, like conmon or containerd-shim. It
//! is the parent of the container's init, holds its stdio, writes its json-file log, serves
//! attach and resize on `<bundle>/monitor.sock`, and records its exit in `<bundle>/exit.json`.
//! It outlives berthd, so containers survive a daemon restart. See docs/engine.md, "The monitor".
//!
//! In exec mode ([`spawn_exec`]) the same process and loop run one `docker exec` process in an
//! already running container instead (berth_runtime::exec), with `exec-<exec id>.sock` and
//! `exec-<exec id>.json` in the container's bundle, no log, and exit when that process exits.
//!
//! This library is both sides: the client the engine uses ([`spawn`], [`attach`], [`resize`],
//! [`read_exit`], [`alive`]) and the monitor process itself (`monitor::main`, run by the
//! berth-monitor binary).

mod children;
mod clients;
mod jsonlog;
pub mod localfmt;
mod logfile;
pub mod logopts;
#[doc(hidden)]
pub mod monitor;
mod relay;
mod sys;
mod trim;

pub use logfile::rotated_name;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container could not be created, or the monitor failed before it was: the runtime's
    /// (or the monitor's) own text, e.g. `container init: exec: "nosuch": executable file not
    /// found in $PATH`.
    #[error("{0}")]
    Spawn(String),

    /// A file or socket operation failed: `step` says which, on what.
    // `err` is not the error's source: the message includes it already.
    #[error("{step}: {err}")]
    Io { step: String, err: std::io::Error },

    /// The monitor refused a request (`error <text>`) or answered something unexpected.
    #[error("monitor: {0}")]
    Monitor(String),

    #[error("invalid exit record {path}: {err}")]
    BadExitRecord { path: PathBuf, err: serde_json::Error },
}

impl Error {
    fn io(step: impl Into<String>, err: std::io::Error) -> Error {
        Error::Io { step: step.into(), err }
    }
}

/// Everything the monitor needs to run one container. Passed to the monitor process as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub id: String,
    /// config.json and rootfs/ (already mounted by the caller); monitor.sock, monitor.pid and
    /// exit.json go here too.
    pub bundle: PathBuf,
    /// berth-runtime's state root (runc's --root).
    pub runtime_root: PathBuf,
    /// The container log to append to (json-file or local format); None: no log.
    pub log_path: Option<PathBuf>,
    /// Its format, rotation and attrs.
    #[serde(default)]
    pub log: logopts::LogSettings,
    pub tty: bool,
    /// false: the container's stdin is /dev/null.
    pub open_stdin: bool,
    /// Close the container's stdin when the stdin of the first client attached with stdin ends.
    pub stdin_once: bool,
    /// Unmount `<bundle>/rootfs` (MNT_DETACH) once the container is deleted.
    pub unmount_rootfs: bool,
    /// The berth-monitor binary to run.
    pub monitor_bin: PathBuf,
    pub systemd_cgroup: bool,
    /// Initial terminal size (rows, cols) with a tty.
    pub console_size: Option<(u16, u16)>,
    /// Exec mode: run this process in the running container `id` instead of creating it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecMode>,
}

/// What an exec-mode monitor runs. It reaches the monitor over its stdin socket, never on the
/// command line: an exec's environment may hold secrets that /proc/<pid>/cmdline would show.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecMode {
    pub exec_id: String,
    /// The OCI process (JSON); parsed only in the short-lived child that starts it.
    pub process: String,
    /// The socket the config came on stays connected as a client attached to these streams
    /// (stdin, stdout, stderr), so no early output is lost; None: detached.
    pub attach: Option<[bool; 3]>,
    /// The container's cgroup2 directory (pure v2 or hybrid hosts): the process is born there.
    #[serde(default)]
    pub cgroup2: Option<PathBuf>,
}

impl MonitorConfig {
    pub(crate) fn socket(&self) -> PathBuf {
        match &self.exec {
            Some(e) => exec_socket_path(&self.bundle, &e.exec_id),
            None => socket_path(&self.bundle),
        }
    }

    pub(crate) fn exit_file(&self) -> PathBuf {
        match &self.exec {
            Some(e) => exec_exit_path(&self.bundle, &e.exec_id),
            None => exit_path(&self.bundle),
        }
    }

    pub(crate) fn pid_file(&self) -> PathBuf {
        match &self.exec {
            Some(e) => self.bundle.join(format!("exec-{}.pid", e.exec_id)),
            None => pid_path(&self.bundle),
        }
    }
}

/// A running monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monitor {
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat, to tell the monitor from a later process with its pid.
    pub start_time: u64,
    /// The container's init (host pid).
    pub init_pid: i32,
}

impl Monitor {
    pub fn alive(&self) -> bool {
        alive(self.pid, self.start_time)
    }
}

/// How the container ended, as the monitor recorded it in exit.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The init's exit status, or 128 + the signal that killed it (Docker's convention).
    pub exit_code: i32,
    /// The kernel OOM-killed a process of the container.
    pub oom_killed: bool,
    /// RFC 3339 in UTC with up to nanoseconds, as Go (and so Docker) formats it:
    /// `2026-11-23T13:45:01.123456789Z`, trailing zeros of the fraction dropped.
    pub finished_at: String,
    /// What went wrong while cleaning up (deleting the container, writing the log, unmounting).
    pub error: Option<String>,
}

pub fn socket_path(bundle: &Path) -> PathBuf {
    bundle.join("monitor.sock")
}

pub fn exit_path(bundle: &Path) -> PathBuf {
    bundle.join("exit.json")
}

/// Holds the monitor's pid while it runs.
pub fn pid_path(bundle: &Path) -> PathBuf {
    bundle.join("monitor.pid")
}

pub fn exec_socket_path(bundle: &Path, exec_id: &str) -> PathBuf {
    bundle.join(format!("exec-{exec_id}.sock"))
}

pub fn exec_exit_path(bundle: &Path, exec_id: &str) -> PathBuf {
    bundle.join(format!("exec-{exec_id}.json"))
}

/// Starts a monitor for `cfg` and returns once the container is created (its init waiting for
/// berth_runtime's `start`) and monitor.sock listens. The monitor is not the caller's child
/// (nothing to reap) and survives the caller. On failure nothing is left: no monitor, no
/// cgroup, no runtime state, no socket; `<bundle>/rootfs` stays mounted (the caller's to undo).
///
/// Safe to call from a multi-threaded process: the monitor is started with
/// std::process::Command, without a pre_exec hook.
pub fn spawn(cfg: &MonitorConfig) -> Result<Monitor> {
    let json = serde_json::to_string(cfg).map_err(|e| Error::Spawn(format!("encode monitor config: {e}")))?;
    run_monitor(cfg, &json, None)
}

/// Starts an exec-mode monitor (`cfg.exec` set) and returns once the process runs (or failed to
/// start: its error, e.g. `exec: "nosuch": executable file not found in $PATH`). The stream is
/// the client attached to the streams `exec.attach` asks for: the process's output in the same
/// framing as [`attach`], and its stdin. Detached, it carries nothing and may be dropped.
pub fn spawn_exec(cfg: &MonitorConfig) -> Result<(Monitor, UnixStream)> {
    if cfg.exec.is_none() {
        return Err(Error::Spawn("spawn_exec without an exec".into()));
    }
    let json = serde_json::to_string(cfg).map_err(|e| Error::Spawn(format!("encode monitor config: {e}")))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| Error::io("create the exec's socket", e))?;
    let m = run_monitor(cfg, "-", Some((theirs, json.as_bytes(), &ours)))?;
    Ok((m, ours))
}

/// Monitors run from a read-only view of their binary (a container must not be able to rewrite
/// it through /proc/<pid>/exe: CVE-2019-5736). Made once per binary and process and shared by
/// every spawn, it spares each monitor re-executing itself to get one. The view pins the file
/// it was made of: a binary replaced on disk is picked up by the next daemon.
fn protected_view(bin: &Path) -> Option<RawFd> {
    static VIEWS: std::sync::Mutex<Vec<(PathBuf, Option<OwnedFd>)>> = std::sync::Mutex::new(Vec::new());
    let mut views = VIEWS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, v)) = views.iter().find(|(p, _)| p == bin) {
        return v.as_ref().map(|f| f.as_raw_fd());
    }
    // Without the privilege for it, monitors protect themselves (monitor::main).
    let view = sys::readonly_view(bin).ok();
    let fd = view.as_ref().map(|f| f.as_raw_fd());
    views.push((bin.to_path_buf(), view));
    fd
}

/// Runs the monitor binary with `arg` (the config, or "-": the config comes on stdin, `len\n`
/// then the JSON, written on `ours` once the process runs) and reads its report.
fn run_monitor(cfg: &MonitorConfig, arg: &str, stdin: Option<(UnixStream, &[u8], &UnixStream)>) -> Result<Monitor> {
    let (r, w) = sys::pipe().map_err(|e| Error::io("create the monitor's sync pipe", e))?;
    let w2 = w.try_clone().map_err(|e| Error::io("create the monitor's sync pipe", e))?;
    let mut cmd = match protected_view(&cfg.monitor_bin) {
        Some(fd) => {
            // The path is resolved before the exec closes the (close-on-exec) descriptor.
            let mut c = Command::new(format!("/proc/self/fd/{fd}"));
            c.arg0(&cfg.monitor_bin);
            c
        }
        None => Command::new(&cfg.monitor_bin),
    };
    cmd.arg(arg).stdout(Stdio::from(w)).stderr(Stdio::from(w2));
    if arg == "-" {
        // Only for ps and leak checks: which container this exec's monitor serves.
        cmd.arg(&cfg.bundle);
    }
    let mut feed = None;
    match stdin {
        Some((theirs, config, ours)) => {
            cmd.stdin(Stdio::from(OwnedFd::from(theirs)));
            feed = Some((config, ours));
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    let child = cmd.spawn();
    // The Command holds our copies of the pipe's write end (and of the exec's socket): EOF
    // needs them closed.
    drop(cmd);
    let mut child = child.map_err(|e| Error::io(format!("run {}", cfg.monitor_bin.display()), e))?;
    if let Some((config, mut ours)) = feed {
        let sent = ours.write_all(format!("{}\n", config.len()).as_bytes()).and_then(|()| ours.write_all(config));
        if let Err(e) = sent {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::io("send the exec's config to the monitor", e));
        }
    }
    let mut out = Vec::new();
    let read = std::fs::File::from(r).take(1 << 16).read_to_end(&mut out);
    // The first monitor process exits as soon as it has forked the real one.
    let status = child.wait();
    read.map_err(|e| Error::io("read the monitor's report", e))?;
    let text = String::from_utf8_lossy(&out);
    if let Some(m) = parse_created(&text) {
        return Ok(m);
    }
    let text = text.trim();
    Err(Error::Spawn(match (text.strip_prefix("error "), status) {
        (Some(t), _) => t.to_string(),
        (None, _) if !text.is_empty() => text.to_string(),
        (None, Ok(s)) => format!("berth-monitor exited without a report ({s})"),
        (None, Err(e)) => format!("berth-monitor exited without a report ({e})"),
    }))
}

/// `created <init pid> <monitor pid> <monitor start time>`.
fn parse_created(text: &str) -> Option<Monitor> {
    let line = text.lines().find_map(|l| l.strip_prefix("created "))?;
    let mut f = line.split(' ').map(str::parse::<u64>);
    let (init, pid, start) = (f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?);
    Some(Monitor { pid: i32::try_from(pid).ok()?, start_time: start, init_pid: i32::try_from(init).ok()? })
}

/// A path `connect`/`bind` accept: sun_path holds 107 bytes, so a longer one is reached through
/// its directory's descriptor (kept open in the second value while it is used).
fn short_socket_path(path: &Path) -> std::io::Result<(PathBuf, Option<OwnedFd>)> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let fd: OwnedFd = std::fs::File::open(dir)?.into();
    let name = path.file_name().unwrap_or_default();
    Ok((Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())).join(name), Some(fd)))
}

fn connect(bundle: &Path) -> Result<UnixStream> {
    connect_to(&socket_path(bundle))
}

fn connect_to(path: &Path) -> Result<UnixStream> {
    let step = || format!("connect to the monitor at {}", path.display());
    let (short, _dir) = short_socket_path(path).map_err(|e| Error::io(step(), e))?;
    UnixStream::connect(&short).map_err(|e| Error::io(step(), e))
}

/// Sends one request line and reads the answer line (byte by byte: nothing after it is taken).
fn request(s: &mut UnixStream, line: &str) -> Result<()> {
    s.write_all(line.as_bytes()).map_err(|e| Error::io("send a request to the monitor", e))?;
    let mut answer = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Err(Error::Monitor(format!("closed the connection without answering {:?}", line.trim_end()))),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) if answer.len() >= 4096 => return Err(Error::Monitor("answer line too long".into())),
            Ok(_) => answer.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read the monitor's answer", e)),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    match answer.as_ref() {
        "ok" => Ok(()),
        a => Err(Error::Monitor(a.strip_prefix("error ").unwrap_or(a).to_string())),
    }
}

/// Attaches to the container's stdio. The stream carries the output the container writes from
/// now on: raw with a tty, else in Docker's multiplexed frames (`[stream, 0, 0, 0, len u32 BE]`,
/// 1 stdout, 2 stderr); what is written to it goes to the container's stdin (when `stdin` and
/// the container has an open stdin). Shutting down its write side ends this client's stdin
/// (closing the container's with stdin_once). It reaches EOF when the container has exited.
pub fn attach(bundle: &Path, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream> {
    let mut s = connect(bundle)?;
    let f = |b: bool| if b { '1' } else { '0' };
    request(&mut s, &format!("attach {} {} {}\n", f(stdin), f(stdout), f(stderr)))?;
    Ok(s)
}

/// Sets the container's terminal size.
pub fn resize(bundle: &Path, rows: u16, cols: u16) -> Result<()> {
    request(&mut connect(bundle)?, &format!("resize {rows} {cols}\n"))
}

/// Sets an exec's terminal size.
pub fn exec_resize(bundle: &Path, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
    request(&mut connect_to(&exec_socket_path(bundle, exec_id))?, &format!("resize {rows} {cols}\n"))
}

/// Sends `sig` to an exec's process. The monitor is its parent, so the pid cannot have been
/// reused by another process while the monitor answers.
pub fn exec_kill(bundle: &Path, exec_id: &str, sig: i32) -> Result<()> {
    request(&mut connect_to(&exec_socket_path(bundle, exec_id))?, &format!("kill {sig}\n"))
}

/// The recorded exit, or None while there is none (the container runs, or never ran).
pub fn read_exit(bundle: &Path) -> Result<Option<ExitRecord>> {
    read_exit_at(exit_path(bundle))
}

/// An exec's recorded exit, or None while it runs.
pub fn read_exec_exit(bundle: &Path, exec_id: &str) -> Result<Option<ExitRecord>> {
    read_exit_at(exec_exit_path(bundle, exec_id))
}

fn read_exit_at(path: PathBuf) -> Result<Option<ExitRecord>> {
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|err| Error::BadExitRecord { path, err }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// Writes the exit record at `path` so that a reader sees the whole record or none: temp file,
/// rename. `durable` adds the fsyncs a container's record needs to survive a host crash; an
/// exec's record only has to outlive berthd (it is not persisted, as in Docker).
pub(crate) fn write_exit(path: &Path, rec: &ExitRecord, durable: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(path.file_name().unwrap_or_default());
    tmp.push(".tmp");
    let tmp = dir.join(tmp);
    let data = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&data)?;
    if durable {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether process `pid` is alive and is the one that started at `start_time` (not a later
/// process that reused the pid, not a zombie).
pub fn alive(pid: i32, start_time: u64) -> bool {
    pid > 0 && sys::proc_stat(pid).is_some_and(|(start, state)| start == start_time && state != b'Z' && state != b'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_report_parses() {
        assert_eq!(parse_created("created 10 20 30\n"), Some(Monitor { pid: 20, start_time: 30, init_pid: 10 }));
        assert_eq!(parse_created("error no\n"), None);
        assert_eq!(parse_created("created 10\n"), None);
    }

    #[test]
    fn long_socket_paths_go_through_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(120));
        std::fs::create_dir(&deep).unwrap();
        let p = deep.join("monitor.sock");
        let (short, keep) = short_socket_path(&p).unwrap();
        assert!(keep.is_some() && short.as_os_str().len() < 100, "{short:?}");
        let _l = std::os::unix::net::UnixListener::bind(&short).unwrap();
        assert!(p.exists());
        UnixStream::connect(short_socket_path(&p).unwrap().0).unwrap();
    }

    #[test]
    fn alive_checks_start_time() {
        let me = std::process::id() as i32;
        let (start, _) = sys::proc_stat(me).unwrap();
        assert!(alive(me, start));
        assert!(!alive(me, start + 1));
        assert!(!alive(0, 0));
    }

    #[test]
    fn exit_record_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), None);
        let rec = ExitRecord { exit_code: 137, oom_killed: true, finished_at: "2026-11-23T13:45:01.123456789Z".into(), error: None };
        write_exit(&exit_path(dir.path()), &rec, true).unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), Some(rec));
        assert!(!dir.path().join(".exit.json.tmp").exists());
        let text = std::fs::read_to_string(exit_path(dir.path())).unwrap();
        assert_eq!(text, r#"{"exit_code":137,"oom_killed":true,"finished_at":"2026-11-23T13:45:01.123456789Z","error":null}"#);
    }
}
