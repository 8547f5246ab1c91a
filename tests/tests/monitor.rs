//! berth-monitor end to end: real busybox containers created through `berth_monitor::spawn`,
//! started with berth_runtime's `start`, observed through the json-file log, attach, resize and
//! exit.json. Needs root (containers) and a built berth-monitor (`cargo build -p berth-monitor`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::{busybox_rootfs, runtime_bin, unique_id, Bundle};
use berth_monitor::{ExitRecord, Monitor, MonitorConfig};
use serde_json::{json, Value};
use tempfile::TempDir;

/// One container under a monitor, with a private runtime root; on drop, whatever is left is
/// killed and removed.
/// The cgroup parent of these tests' containers.
const CGROUP_PARENT: &str = "berth-e2e-monitor";

struct Ctr {
    bundle: Bundle,
    root: TempDir,
    id: String,
    cfg: MonitorConfig,
    mon: Option<Monitor>,
}

impl Ctr {
    fn new(args: &[&str]) -> Ctr {
        let mut bundle = Bundle::new();
        bundle.set_args(args);
        Ctr::with_bundle(bundle)
    }

    fn with_bundle(mut bundle: Bundle) -> Ctr {
        let root = tempfile::Builder::new().prefix("berth-mon-state-").tempdir().unwrap();
        let id = unique_id("mon");
        // A parent of our own, removed with the last container (not the daemon's "berth").
        bundle.config_mut()["linux"]["cgroupsPath"] = json!(format!("/{CGROUP_PARENT}/{id}"));
        let cfg = MonitorConfig {
            id: id.clone(),
            bundle: bundle.path().to_path_buf(),
            runtime_root: root.path().to_path_buf(),
            log_path: Some(bundle.path().join("ctr-json.log")),
            monitor_bin: runtime_bin("berth-monitor"),
            ..Default::default()
        };
        Ctr { bundle, root, id, cfg, mon: None }
    }

    fn tty(mut self, size: Option<(u16, u16)>) -> Ctr {
        self.bundle.config_mut()["process"]["terminal"] = json!(true);
        self.bundle.write();
        self.cfg.tty = true;
        self.cfg.console_size = size;
        self
    }

    fn spawn(&mut self) -> Monitor {
        self.bundle.write();
        let m = berth_monitor::spawn(&self.cfg).unwrap_or_else(|e| panic!("spawn: {e}"));
        self.mon = Some(m);
        m
    }

    fn start(&self) {
        berth_runtime::container::start(self.root.path(), &self.id).unwrap_or_else(|e| panic!("start: {e}"));
    }

    fn path(&self) -> &Path {
        &self.cfg.bundle
    }

    /// Waits for exit.json and for the monitor to be gone.
    fn wait_exit(&self, secs: u64) -> ExitRecord {
        let t0 = Instant::now();
        loop {
            let rec = berth_monitor::read_exit(self.path()).unwrap();
            let gone = self.mon.is_none_or(|m| !m.alive());
            if let (Some(rec), true) = (&rec, gone) {
                return rec.clone();
            }
            assert!(t0.elapsed() < Duration::from_secs(secs), "no exit after {secs}s (record {rec:?}, monitor gone {gone})");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// (stream, log) of every line of the json-file log, each checked for Docker's exact shape.
    fn log(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.cfg.log_path.as_ref().unwrap()).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}"));
                let obj = v.as_object().unwrap();
                assert_eq!(obj.keys().collect::<Vec<_>>(), ["log", "stream", "time"], "{l}");
                assert!(l.starts_with("{\"log\":\""), "{l}");
                let time = v["time"].as_str().unwrap();
                assert!(time.len() >= 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
                (v["stream"].as_str().unwrap().to_string(), v["log"].as_str().unwrap().to_string())
            })
            .collect()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = berth_runtime::container::delete(self.root.path(), &self.id, true);
        if let Some(m) = self.mon {
            let t0 = Instant::now();
            while m.alive() && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if m.alive() {
                // SAFETY: kill takes integers; the pid is the monitor's (start time checked).
                unsafe { libc::kill(m.pid, libc::SIGKILL) };
            }
        }
        // Fails while another test's container is still in it; the last one removes it.
        for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(h.path().join(CGROUP_PARENT));
        }
    }
}

/// Reads Docker multiplexed frames to EOF: (stream, payload) merged per stream.
fn read_frames(mut s: UnixStream) -> (Vec<u8>, Vec<u8>) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (mut out, mut err) = (vec![], vec![]);
    let mut hdr = [0u8; 8];
    loop {
        match s.read_exact(&mut hdr) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return (out, err),
            Err(e) => panic!("reading frames: {e}"),
        }
        assert_eq!(&hdr[1..4], &[0, 0, 0], "bad frame header {hdr:?}");
        let len = u32::from_be_bytes(hdr[4..].try_into().unwrap()) as usize;
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).unwrap();
        match hdr[0] {
            1 => out.extend(payload),
            2 => err.extend(payload),
            n => panic!("bad stream {n}"),
        }
    }
}

/// Reads a raw stream until `want` appears; returns everything read so far.
fn read_until(s: &mut UnixStream, acc: &mut Vec<u8>, want: &str) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(acc).contains(want) {
        let n = s.read(&mut buf).unwrap_or_else(|e| panic!("waiting for {want:?} in {:?}: {e}", String::from_utf8_lossy(acc)));
        assert!(n > 0, "EOF before {want:?}: {:?}", String::from_utf8_lossy(acc));
        acc.extend_from_slice(&buf[..n]);
    }
}

/// Processes whose command line mentions `needle` (the monitor's carries the container id).
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle)))
        .collect()
}

fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut found = vec![];
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = h.path().join(CGROUP_PARENT).join(id);
        if d.exists() {
            found.push(d);
        }
    }
    found
}

#[test]
fn output_goes_to_the_log_and_the_exit_is_recorded() {
    let mut c = Ctr::new(&["sh", "-c", "echo out; echo err >&2; printf 'no newline <&>'; exit 3"]);
    let t0 = Instant::now();
    let m = c.spawn();
    let spawn_time = t0.elapsed();
    eprintln!("spawn latency (until created): {spawn_time:?}");
    assert!(m.alive() && m.init_pid > 0);
    assert!(berth_monitor::socket_path(c.path()).exists());
    let pid_file = std::fs::read_to_string(c.path().join("monitor.pid")).unwrap();
    assert_eq!(pid_file.trim(), m.pid.to_string());
    c.start();
    let rec = c.wait_exit(20);
    assert_eq!(rec.exit_code, 3);
    assert!(!rec.oom_killed);
    assert_eq!(rec.error, None);
    assert!(rec.finished_at.ends_with('Z') && rec.finished_at.starts_with("20"), "{}", rec.finished_at);
    let mut log = c.log();
    log.sort_by_key(|(s, _)| s.clone());
    assert_eq!(
        log,
        [("stderr".into(), "err\n".into()), ("stdout".into(), "out\n".into()), ("stdout".into(), "no newline <&>".into())]
    );
    let raw = std::fs::read_to_string(c.cfg.log_path.as_ref().unwrap()).unwrap();
    assert!(raw.contains(r#""log":"no newline \u003c\u0026\u003e""#), "Go's HTML-safe escaping: {raw}");
    // Everything of the monitor's and the runtime's is gone; exit.json stays.
    assert!(!berth_monitor::socket_path(c.path()).exists());
    assert!(!c.path().join("monitor.pid").exists());
    assert!(!c.root.path().join(&c.id).exists(), "runtime state left");
    assert_eq!(cgroup_dirs(&c.id), Vec::<PathBuf>::new());
}

#[test]
fn attach_before_start_gets_frames_then_eof() {
    let mut c = Ctr::new(&["sh", "-c", "echo out1; echo err1 >&2; echo out2"]);
    c.spawn();
    let both = berth_monitor::attach(c.path(), false, true, true).unwrap();
    let only_err = berth_monitor::attach(c.path(), false, false, true).unwrap();
    c.start();
    let (out, err) = read_frames(both);
    assert_eq!(String::from_utf8_lossy(&out), "out1\nout2\n");
    assert_eq!(String::from_utf8_lossy(&err), "err1\n");
    let (out, err) = read_frames(only_err);
    assert_eq!((out.as_slice(), err.as_slice()), (&b""[..], &b"err1\n"[..]));
    assert_eq!(c.wait_exit(20).exit_code, 0);
}

#[test]
fn stdin_round_trip_with_stdin_once() {
    let mut c = Ctr::new(&["cat"]);
    c.cfg.open_stdin = true;
    c.cfg.stdin_once = true;
    c.spawn();
    let mut s = berth_monitor::attach(c.path(), true, true, true).unwrap();
    c.start();
    s.write_all(b"hello\nworld\n").unwrap();
    // Ending this client's stdin closes the container's: cat sees EOF and exits.
    s.shutdown(Shutdown::Write).unwrap();
    let (out, err) = read_frames(s);
    assert_eq!(String::from_utf8_lossy(&out), "hello\nworld\n");
    assert!(err.is_empty());
    assert_eq!(c.wait_exit(20).exit_code, 0);
    assert_eq!(c.log(), [("stdout".to_string(), "hello\n".to_string()), ("stdout".into(), "world\n".into())]);
}

#[test]
fn stdin_is_dev_null_without_open_stdin() {
    let mut c = Ctr::new(&["sh", "-c", "cat; echo done"]);
    c.spawn();
    c.start();
    assert_eq!(c.wait_exit(20).exit_code, 0);
    assert_eq!(c.log(), [("stdout".to_string(), "done\n".to_string())]);
}

#[test]
fn tty_output_is_raw_and_resize_reaches_the_container() {
    let mut c = Ctr::new(&["sh", "-c", "tty; stty size; read line; stty size; echo got $line"]).tty(Some((24, 80)));
    c.cfg.open_stdin = true;
    c.spawn();
    let mut s = berth_monitor::attach(c.path(), true, true, false).unwrap();
    c.start();
    let mut acc = vec![];
    read_until(&mut s, &mut acc, "24 80");
    berth_monitor::resize(c.path(), 50, 132).unwrap();
    s.write_all(b"go\n").unwrap();
    read_until(&mut s, &mut acc, "got go");
    let text = String::from_utf8_lossy(&acc).into_owned();
    assert!(text.contains("/dev/pts/0\r\n"), "raw tty output (\\r\\n, no frames): {text:?}");
    assert!(text.contains("50 132"), "{text:?}");
    assert_eq!(c.wait_exit(20).exit_code, 0);
    let log = c.log();
    assert!(log.iter().all(|(s, _)| s == "stdout"), "{log:?}");
    let all: String = log.iter().map(|(_, l)| l.as_str()).collect();
    assert!(all.contains("/dev/pts/0\r\n") && all.contains("50 132"), "{all:?}");
    // After exit the socket is gone: resize cannot reach anything.
    assert!(berth_monitor::resize(c.path(), 10, 10).is_err());
}

#[test]
fn resize_without_a_tty_is_refused() {
    let mut c = Ctr::new(&["sleep", "100"]);
    c.spawn();
    let e = berth_monitor::resize(c.path(), 10, 10).unwrap_err();
    assert!(e.to_string().contains("no terminal"), "{e}");
}

#[test]
fn killed_by_a_signal_exits_128_plus_signal() {
    let mut c = Ctr::new(&["sleep", "100"]);
    c.spawn();
    c.start();
    berth_runtime::container::kill(c.root.path(), &c.id, libc::SIGKILL, false).unwrap();
    let rec = c.wait_exit(20);
    assert_eq!(rec.exit_code, 137);
    assert!(!rec.oom_killed);
}

#[test]
fn spawn_failure_leaves_nothing_behind() {
    let mut c = Ctr::new(&["nosuch"]);
    let err = berth_monitor::spawn(&c.cfg).unwrap_err().to_string();
    assert!(err.contains(r#"exec: "nosuch": executable file not found in $PATH"#), "{err}");
    // The monitor exits before its report's pipe closes; allow it a moment to be reaped.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(processes_mentioning(&c.id), Vec::<i32>::new(), "a process of the container or monitor is left");
    assert_eq!(cgroup_dirs(&c.id), Vec::<PathBuf>::new());
    assert!(!c.root.path().join(&c.id).exists(), "runtime state left");
    assert!(!berth_monitor::socket_path(c.path()).exists());
    assert!(!c.path().join("monitor.pid").exists());
    assert_eq!(berth_monitor::read_exit(c.path()).unwrap(), None);

    // A monitor-side failure (the log cannot be opened) reports too.
    c.cfg.log_path = Some(c.path().join("no/such/dir/log"));
    c.bundle.set_args(&["true"]);
    let err = berth_monitor::spawn(&c.cfg).unwrap_err().to_string();
    assert!(err.contains("open container log") && err.contains("No such file"), "{err}");
    assert_eq!(processes_mentioning(&c.id), Vec::<i32>::new());
}

/// Run by `monitor_survives_its_caller_being_killed` in a child process (re-executing this test
/// binary): spawns the monitor, reports, then waits to be killed.
#[test]
fn spawn_helper() {
    let Ok(cfg) = std::env::var("BERTH_MONITOR_TEST_CFG") else { return };
    let cfg: MonitorConfig = serde_json::from_str(&cfg).unwrap();
    let m = berth_monitor::spawn(&cfg).unwrap();
    // The caller must have no child left to reap (no zombie): the monitor is not its child.
    let me = std::process::id().to_string();
    let children = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
    println!("MONITOR {} {} CHILDREN [{}]", m.pid, m.start_time, children.trim());
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn monitor_survives_its_caller_being_killed() {
    let mut c = Ctr::new(&["sh", "-c", "sleep 1; echo still here"]);
    c.bundle.write();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "spawn_helper", "--nocapture", "--test-threads=1"])
        .env("BERTH_MONITOR_TEST_CFG", serde_json::to_string(&c.cfg).unwrap())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(helper.stdout.take().unwrap()).lines();
    // libtest prints "test spawn_helper ... " on the same line first.
    let line = lines.find_map(|l| Some(l.ok()?.split_once("MONITOR ")?.1.to_string())).expect("helper reported no monitor");
    let f: Vec<&str> = line.split(' ').collect();
    let m = Monitor { pid: f[0].parse().unwrap(), start_time: f[1].parse().unwrap(), init_pid: 0 };
    c.mon = Some(m);
    assert_eq!(f[3], "[]", "the caller has a child left (a zombie to reap): {line}");
    // kill -9 the caller's whole process group: the monitor has its own session.
    // SAFETY: kill takes integers.
    unsafe { libc::kill(-(helper.id() as i32), libc::SIGKILL) };
    helper.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(m.alive(), "the monitor died with its caller");
    c.start();
    let rec = c.wait_exit(20);
    assert_eq!(rec.exit_code, 0);
    assert_eq!(c.log(), [("stdout".to_string(), "still here\n".to_string())]);
}

#[test]
fn oom_kill_is_recorded() {
    let mut b = Bundle::new();
    // tail keeps the last lines of an endless line of zeros: its memory grows until the limit.
    b.set_args(&["tail", "/dev/zero"]);
    b.config_mut()["linux"]["resources"]["memory"] = json!({ "limit": 32 << 20, "swap": 32 << 20 });
    let mut c = Ctr::with_bundle(b);
    c.spawn();
    c.start();
    let rec = c.wait_exit(60);
    assert!(rec.oom_killed, "{rec:?}");
    assert_eq!(rec.exit_code, 137, "{rec:?}");
}

#[test]
fn a_slow_client_is_dropped_and_nothing_stalls() {
    // 3 MB on one line: the log gets it in 16 KiB pieces; a client that never reads falls more
    // than the 1 MiB bound behind and is disconnected instead of stalling the container.
    let mut c = Ctr::new(&["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo done"]);
    c.spawn();
    let slow = berth_monitor::attach(c.path(), false, true, true).unwrap();
    let fast = berth_monitor::attach(c.path(), false, true, false).unwrap();
    c.start();
    let reader = std::thread::spawn(move || read_frames(fast));
    let rec = c.wait_exit(30);
    assert_eq!(rec.exit_code, 0);
    let (out, _) = reader.join().unwrap();
    assert_eq!(out.len(), 3_000_000 + 1 + 5, "the fast client gets everything");
    let log = c.log();
    assert_eq!(log.last().unwrap(), &("stdout".to_string(), "done\n".to_string()));
    let logged: usize = log.iter().map(|(_, l)| l.len()).sum();
    assert_eq!(logged, 3_000_000 + 1 + 5);
    // The slow one was cut off: it can read what its socket held, then it ends early.
    let mut got = vec![];
    let mut slow = slow;
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = slow.read_to_end(&mut got);
    assert!(got.len() < 3_000_000, "slow client got {} bytes", got.len());
}

#[test]
fn rootfs_is_unmounted_after_exit_when_asked() {
    let mut b = Bundle::new();
    let rootfs = b.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let ok = Command::new("mount").arg("--bind").arg(busybox_rootfs()).arg(&rootfs).status().unwrap();
    assert!(ok.success());
    b.config_mut()["root"]["path"] = json!("rootfs");
    b.set_args(&["true"]);
    let mut c = Ctr::with_bundle(b);
    c.cfg.unmount_rootfs = true;
    c.spawn();
    c.start();
    let rec = c.wait_exit(20);
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(rootfs.to_str().unwrap());
    if mounted {
        let _ = Command::new("umount").arg("-l").arg(&rootfs).status();
    }
    assert!(!mounted, "rootfs still mounted");
    assert_eq!(rec, ExitRecord { error: None, ..rec.clone() });
}

/// Proportional memory of an idle monitor, and spawn latency; printed for the record.
#[test]
fn idle_monitor_memory() {
    let mut c = Ctr::new(&["sleep", "1000"]);
    let t0 = Instant::now();
    let m = c.spawn();
    let spawn_time = t0.elapsed();
    c.start();
    std::thread::sleep(Duration::from_millis(300));
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", m.pid)).unwrap();
    let kib = |key: &str| -> u64 {
        rollup.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
    };
    let (pss, rss) = (kib("Pss:"), kib("Rss:"));
    eprintln!("monitor {}: PSS {pss} KiB, RSS {rss} KiB; spawn latency {spawn_time:?}", c.cfg.monitor_bin.display());
    let release = c.cfg.monitor_bin.components().any(|p| p.as_os_str() == "release");
    if release {
        assert!(pss <= 300, "PSS {pss} KiB over 300 KiB:\n{rollup}");
    }
    berth_runtime::container::kill(c.root.path(), &c.id, libc::SIGKILL, false).unwrap();
    assert_eq!(c.wait_exit(20).exit_code, 137);
}
