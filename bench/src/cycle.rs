//! One measured container lifecycle: create, start, wait, delete.
//!
//! Every runtime gets exactly the same sequence of syscalls from us, so the
//! differences are the runtimes' own.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::{pidfd_open, pidfd_reap, pidfd_wait};

/// Longest a container running `true` may take to exit after `start`.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Wall-clock time of each phase of one cycle.
#[derive(Clone, Copy, Debug)]
pub struct Phases {
    pub create: Duration,
    pub start: Duration,
    pub wait: Duration,
    pub delete: Duration,
}

impl Phases {
    pub fn total(&self) -> Duration {
        self.create + self.start + self.wait + self.delete
    }
}

/// A runtime under test with its private `--root` state dir.
pub struct Runtime {
    pub name: String,
    pub bin: PathBuf,
    state: tempfile::TempDir,
    pid_file: PathBuf,
}

impl Runtime {
    pub fn new(name: String, bin: PathBuf) -> std::io::Result<Self> {
        let state = tempfile::Builder::new()
            .prefix(&format!("berth-bench-{name}-"))
            .tempdir()?;
        // Outside the state dir: runtimes own what is in there.
        let pid_file =
            std::env::temp_dir().join(format!("berth-bench-{}-{name}.pid", std::process::id()));
        Ok(Runtime {
            name,
            bin,
            state,
            pid_file,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(self.state.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    /// Run a runtime command with stderr in `err` (a file, not a pipe: the
    /// container inherits create's stdio and would hold a pipe open).
    fn run(&self, args: &[&str], err: &mut File) -> Result<(), String> {
        err.set_len(0)
            .and_then(|_| err.rewind())
            .map_err(|e| e.to_string())?;
        let status = self
            .command(args)
            .stderr(err.try_clone().map_err(|e| e.to_string())?)
            .status()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        if status.success() {
            return Ok(());
        }
        let mut msg = String::new();
        let _ = err.rewind().and_then(|_| err.read_to_string(&mut msg));
        Err(format!(
            "`{} {}` failed ({status}): {}",
            self.name,
            args.join(" "),
            msg.trim()
        ))
    }

    /// create → pidfd → start → wait for exit (and reap) → delete.
    pub fn cycle(&self, bundle: &Path, id: &str, err: &mut File) -> Result<Phases, String> {
        let bundle = bundle.to_str().ok_or("bundle path is not UTF-8")?;
        let pid_file = self.pid_file.to_str().ok_or("pid file path is not UTF-8")?;
        let _ = std::fs::remove_file(pid_file);

        let t0 = Instant::now();
        let created = self
            .run(
                &["create", "--bundle", bundle, "--pid-file", pid_file, id],
                err,
            )
            .and_then(|_| read_pid(&self.pid_file))
            // Before start, so the exit cannot be missed and the pid not reused.
            .and_then(|pid| pidfd_open(pid).map_err(|e| format!("pidfd_open({pid}): {e}")));
        let pidfd = match created {
            Ok(fd) => fd,
            Err(e) => {
                self.force_delete(id, err);
                return Err(e);
            }
        };
        let t1 = Instant::now();
        if let Err(e) = self.run(&["start", id], err) {
            self.force_delete(id, err);
            return Err(e);
        }
        let t2 = Instant::now();
        // Poll the pidfd rather than `state`, which would add the runtime's
        // own CLI cost unevenly.
        match pidfd_wait(&pidfd, Some(EXIT_TIMEOUT)) {
            Ok(true) => {}
            Ok(false) => {
                self.force_delete(id, err);
                return Err(format!(
                    "container {id} did not exit within {EXIT_TIMEOUT:?}"
                ));
            }
            Err(e) => return Err(format!("polling pidfd: {e}")),
        }
        // We are a subreaper, so the orphaned init is usually our child:
        // reap it (equal work for all) and check `true` really succeeded.
        if let Ok(Some(raw)) = pidfd_reap(&pidfd) {
            let status = ExitStatus::from_raw(raw);
            if !status.success() {
                self.force_delete(id, err);
                return Err(format!("container process exited with {status}"));
            }
        }
        let t3 = Instant::now();
        self.run(&["delete", id], err)?;
        let t4 = Instant::now();
        Ok(Phases {
            create: t1 - t0,
            start: t2 - t1,
            wait: t3 - t2,
            delete: t4 - t3,
        })
    }

    /// Best-effort cleanup after a failed cycle.
    pub fn force_delete(&self, id: &str, err: &mut File) {
        let _ = self.run(&["delete", "--force", id], err);
    }

    /// First line of `--version`, for the report.
    pub fn version(&self) -> String {
        Command::new(&self.bin)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "?".into())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn read_pid(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading pid file {}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("pid file {} holds {text:?}", path.display()))
}

/// Reap any other orphans reparented to us (runtime helpers), outside timing.
pub fn reap_strays() {
    // SAFETY: non-blocking waitpid on any child.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}
