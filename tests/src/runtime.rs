//! Finding runtime binaries and driving runc-compatible CLIs.

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::process::output_with_timeout;

/// Locate a binary built from this workspace: `$BERTH_RUNC` for
/// `berth-runc` (the name upper-cased, `-` as `_`), else the newest of
/// `<target dir>/{debug,release}/<name>`. None if neither exists.
pub fn try_runtime_bin(name: &str) -> Option<PathBuf> {
    let var = name.to_ascii_uppercase().replace('-', "_");
    if let Some(path) = std::env::var_os(&var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "${var}={} does not exist", path.display());
        return Some(path);
    }
    let target = crate::target_dir();
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join(name))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
}

/// Like [`try_runtime_bin`], panicking with the build command if missing.
pub fn runtime_bin(name: &str) -> PathBuf {
    try_runtime_bin(name).unwrap_or_else(|| {
        panic!(
            "{name} not found under {}: build it first: cargo build -p {name}",
            crate::target_dir().display()
        )
    })
}

/// Find an installed executable on $PATH, or in the sbin dirs that a
/// non-login root environment may lack (Debian's runc is /usr/sbin/runc).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// True on hosts with cgroup v1 controllers plus a cgroup2 mount at
/// /sys/fs/cgroup/unified ("hybrid"), which crun refuses.
pub fn unified_cgroup2_hybrid() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|line| {
        let mut halves = line.splitn(2, " - ");
        let (pre, post) = (halves.next().unwrap_or(""), halves.next().unwrap_or(""));
        pre.split(' ').nth(4) == Some("/sys/fs/cgroup/unified") && post.starts_with("cgroup2 ")
    })
}

/// Move the calling process into a private mount namespace without the
/// hybrid /sys/fs/cgroup/unified mount, so crun sees plain cgroup v1.
///
/// Only async-signal-safe calls, so it is usable in `pre_exec`; elsewhere
/// call it while the process is still single-threaded (unshare(CLONE_NEWNS)
/// fails in a multi-threaded process).
pub fn hide_unified_cgroup2() -> io::Result<()> {
    // SAFETY: syscalls with static NUL-terminated strings and null data.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(io::Error::last_os_error());
        }
        // Private first, so the unmount does not propagate back to the host.
        let flags = libc::MS_REC | libc::MS_PRIVATE;
        if libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) != 0 {
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// A runc-compatible CLI run with `--root <private temp state dir>`, so tests
/// never see (or collide with) other containers. Containers it created are
/// force-deleted on drop.
pub struct Runtime {
    bin: PathBuf,
    state: TempDir,
    hide_unified: bool,
    timeout: Duration,
    ids: Mutex<Vec<String>>,
}

impl Runtime {
    /// Drive `bin`. crun on a hybrid-cgroup host is run in a private mount
    /// namespace without the cgroup2 mount (see [`hide_unified_cgroup2`]).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        let bin = bin.into();
        let hide_unified = bin.file_name() == Some(OsStr::new("crun")) && unified_cgroup2_hybrid();
        let state = tempfile::Builder::new()
            .prefix("berth-state-")
            .tempdir()
            .expect("state temp dir");
        Runtime {
            bin,
            state,
            hide_unified,
            timeout: Duration::from_secs(60),
            ids: Mutex::new(Vec::new()),
        }
    }

    /// berth-runc from this workspace (panics if not built).
    pub fn berth() -> Self {
        Self::new(runtime_bin("berth-runc"))
    }

    /// An installed runtime such as `runc` or `crun`, if present.
    pub fn system(name: &str) -> Option<Self> {
        find_in_path(name).map(Self::new)
    }

    /// Per-command limit; a command over it is killed and the test panics.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Override the automatic choice of running in a mount namespace
    /// without /sys/fs/cgroup/unified.
    pub fn hiding_unified_cgroup2(mut self, hide: bool) -> Self {
        self.hide_unified = hide;
        self
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` state dir.
    pub fn root(&self) -> &Path {
        self.state.path()
    }

    /// `BIN --root STATE`, ready for more arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.state.path());
        if self.hide_unified {
            // SAFETY: the hook only makes async-signal-safe syscalls.
            unsafe { cmd.pre_exec(hide_unified_cgroup2) };
        }
        cmd
    }

    /// Run `BIN --root STATE ARGS...` with the timeout, capturing output.
    pub fn cli<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        output_with_timeout(self.command().args(args), self.timeout)
    }

    fn track(&self, id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.to_string());
    }

    /// `create --bundle B ID`.
    pub fn create(&self, id: &str, bundle: impl AsRef<Path>) -> Output {
        self.track(id);
        self.cli(&[
            OsStr::new("create"),
            OsStr::new("--bundle"),
            bundle.as_ref().as_os_str(),
            OsStr::new(id),
        ])
    }

    /// `create --bundle B --pid-file F ID`.
    pub fn create_with_pid_file(
        &self,
        id: &str,
        bundle: impl AsRef<Path>,
        pid_file: &Path,
    ) -> Output {
        self.track(id);
        let bundle = bundle.as_ref().as_os_str();
        self.cli(&[
            OsStr::new("create"),
            OsStr::new("--bundle"),
            bundle,
            OsStr::new("--pid-file"),
            pid_file.as_os_str(),
            OsStr::new(id),
        ])
    }

    /// `run --bundle B ID` in the foreground: output is the container's.
    pub fn run(&self, id: &str, bundle: impl AsRef<Path>) -> Output {
        self.track(id);
        self.cli(&[
            OsStr::new("run"),
            OsStr::new("--bundle"),
            bundle.as_ref().as_os_str(),
            OsStr::new(id),
        ])
    }

    pub fn start(&self, id: &str) -> Output {
        self.cli(&["start", id])
    }

    /// `kill ID SIGNAL` (e.g. "KILL", "TERM", "9").
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.cli(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Output {
        self.cli(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Output {
        self.cli(&["delete", "--force", id])
    }

    /// `exec ID ARGS...`.
    pub fn exec(&self, id: &str, args: &[&str]) -> Output {
        let mut all = vec!["exec", id];
        all.extend_from_slice(args);
        self.cli(&all)
    }

    /// `state ID` unparsed, for tests that expect it to fail.
    pub fn state_output(&self, id: &str) -> Output {
        self.cli(&["state", id])
    }

    /// `state ID` parsed; panics with the runtime's stderr if it fails.
    pub fn state(&self, id: &str) -> Value {
        let out = self.state_output(id);
        assert!(
            out.status.success(),
            "{} state {id} failed: {}",
            self.bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "state {id} is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Poll `state` until `status` equals `want`, for up to `timeout`.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let state = self.state(id);
            if state["status"] == want || std::time::Instant::now() > deadline {
                assert_eq!(
                    state["status"], want,
                    "container {id} did not reach {want} within {timeout:?}"
                );
                return state;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Don't leak running containers (processes, cgroups) from failed tests.
        let ids = std::mem::take(self.ids.get_mut().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            if self.state.path().join(&id).exists() {
                let mut cmd = self.command();
                cmd.args(["delete", "--force", &id]);
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    output_with_timeout(&mut cmd, Duration::from_secs(10))
                }));
            }
        }
    }
}
