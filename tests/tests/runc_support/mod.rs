//! Helpers shared by the runc_* end-to-end tests (lifecycle, cgroups, hooks,
//! failures): output checks, cgroup paths in every hierarchy, host mounts and
//! processes, polling. Included with `mod runc_support;`.

#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use berth_e2e::Runtime;

/// berth-runc from this workspace with a private `--root`, 30 s per command.
pub fn berth() -> Runtime {
    Runtime::berth().with_timeout(Duration::from_secs(30))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success; returns stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts failure; returns stderr.
#[track_caller]
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
    stderr(out)
}

/// Polls `f` every 10 ms until it is true or `timeout` passes; returns the last value.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every cgroup mountpoint (v1 hierarchies and cgroup2) from /proc/self/mountinfo.
pub fn cgroup_mountpoints() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let mp = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(unescape(mp)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The directories of cgroup `path` (absolute, e.g. "/berth/ID") in every hierarchy.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    cgroup_mountpoints()
        .into_iter()
        .map(|m| m.join(path.trim_start_matches('/')))
        .collect()
}

/// `/sys/fs/cgroup/<ctrl><path>/<file>`, trimmed.
pub fn cg_read(ctrl: &str, path: &str, file: &str) -> String {
    let p = Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(path.trim_start_matches('/'))
        .join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Asserts that cgroup `path` exists in no hierarchy.
#[track_caller]
pub fn assert_cgroup_gone(path: &str) {
    let left: Vec<PathBuf> = cgroup_dirs(path).into_iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroup {path} left behind: {left:?}");
}

/// Mount points at or under `dir` (mountinfo field 5).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let dir = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape))
        .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap(), 8);
            if let Ok(n) = n {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Host pids of live (non-zombie) processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return vec![];
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(marker) && !is_zombie(pid)
        })
        .collect()
}

pub fn is_zombie(pid: i32) -> bool {
    proc_state(pid).is_none_or(|s| s == 'Z' || s == 'X')
}

fn proc_state(pid: i32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

/// Waits (up to 10 s) until no live process carries `marker`; asserts it.
#[track_caller]
pub fn assert_no_process(marker: &str) {
    let gone = wait_until(Duration::from_secs(10), || processes_with(marker).is_empty());
    assert!(gone, "processes with {marker:?} still alive: {:?}", processes_with(marker));
}

/// Kills leftovers carrying `marker` (used by guards, never asserted).
pub fn kill_marked(marker: &str) {
    for pid in processes_with(marker) {
        // SAFETY: kill takes integers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Pids of the container's init as the runtime reports it.
pub fn init_pid(rt: &Runtime, id: &str) -> i32 {
    rt.state(id)["pid"].as_i64().expect("state has pid") as i32
}

pub fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}
