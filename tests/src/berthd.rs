//! A private berthd for end-to-end tests and benchmarks: its own data root, exec root, socket
//! and cgroup parent under a temp dir, driven by the real docker CLI and the Python SDK, and
//! torn down with a leak check (mounts, cgroups, monitor processes).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::dockerd::{poll, run_with_timeout, Out};

pub struct Berthd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// Parent of the containers' cgroups, unique to this daemon.
    pub cgroup_parent: String,
    /// More berthd flags (e.g. a TLS listener).
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

/// Whether end-to-end tests against berthd can run here: as root, with the docker CLI.
/// Says why not on stderr (the test then passes without running).
pub fn can_run() -> bool {
    // SAFETY: getuid cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    if !root {
        eprintln!("skipped: needs root");
    }
    root && crate::find_in_path("docker").is_some()
}

impl Berthd {
    /// A daemon with the busybox rootfs imported as `busybox:latest`.
    pub fn with_busybox() -> Berthd {
        let d = Berthd::start();
        d.import_busybox("busybox:latest");
        d
    }

    /// Starts berthd (target/{debug,release}/berthd) and waits for its socket.
    pub fn start() -> Berthd {
        Self::start_with(Vec::new())
    }

    /// Starts berthd with this daemon.json.
    pub fn start_with_daemon_json(json: &str) -> Berthd {
        Self::start_inner(Vec::new(), Some(json))
    }

    /// Starts berthd with more flags.
    pub fn start_with(extra_args: Vec<String>) -> Berthd {
        Self::start_inner(extra_args, None)
    }

    fn start_inner(extra_args: Vec<String>, daemon_json: Option<&str>) -> Berthd {
        let dir = tempfile::Builder::new().prefix("berthd-test-").tempdir_in("/tmp").expect("temp dir");
        let cgroup_parent = format!("berth-test-{}", crate::unique_id("d"));
        let mut d = Berthd {
            socket: dir.path().join("berth.sock"),
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            dir,
            cgroup_parent,
            extra_args,
            child: None,
        };
        if let Some(j) = daemon_json {
            std::fs::write(d.dir.path().join("daemon.json"), j).expect("daemon.json");
        }
        d.launch();
        d
    }

    pub fn launch(&mut self) {
        let bin = crate::runtime_bin("berthd");
        let cfg = self.dir.path().join("daemon.json");
        if !cfg.exists() {
            std::fs::write(&cfg, "{}").expect("daemon.json");
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("berthd.log")).expect("log file");
        let child = Command::new(bin)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(self.dir.path().join("berthd.pid"))
            .arg("--config-file")
            .arg(self.dir.path().join("daemon.json"))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .args(&self.extra_args)
            // Test daemons run in parallel: only those given their own bridge get one.
            .args(if self.extra_args.iter().any(|a| a == "--bridge" || a == "-b") { &[][..] } else { &["--bridge", "none"][..] })
            .env("BERTH_MONITOR", crate::runtime_bin("berth-monitor"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        let sock = self.socket.clone();
        poll("berthd's socket", Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&sock).ok().map(|_| ())
        });
    }

    /// The bridge given with `--bridge NAME` (None: the daemon runs with `--bridge none`).
    pub fn bridge(&self) -> Option<String> {
        let i = self.extra_args.iter().position(|a| a == "--bridge" || a == "-b")?;
        self.extra_args.get(i + 1).filter(|b| *b != "none").cloned()
    }

    /// The Linux bridges of the user networks this daemon has persisted.
    pub fn user_network_bridges(&self) -> Vec<String> {
        let dir = self.data_root.join("network").join("networks");
        let files = std::fs::read_dir(dir).into_iter().flatten().flatten();
        files
            .filter_map(|f| std::fs::read(f.path()).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter_map(|v| v["bridge"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// kill -9 the daemon (containers must survive it).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args).env("DOCKER_HOST", self.host()).env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    pub fn docker_in(&self, args: &[&str], input: Option<Vec<u8>>) -> Out {
        run_with_timeout(self.docker_cmd(args), input, Duration::from_secs(60))
    }

    pub fn docker(&self, args: &[&str]) -> Out {
        self.docker_in(args, None)
    }

    /// Runs docker and expects success; returns stdout trimmed.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert_eq!(o.code, Some(0), "docker failed\n{o}\nberthd log:\n{}", self.log_tail(30));
        o.stdout.trim().to_owned()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `docker import` of the shared busybox rootfs as `name`.
    pub fn import_busybox(&self, name: &str) {
        let rootfs = crate::busybox_rootfs();
        let tar = Command::new("tar").arg("-C").arg(&rootfs).args(["-c", "."]).output().expect("tar");
        assert!(tar.status.success(), "tar of the busybox rootfs failed");
        let o = self.docker_in(&["import", "-", name], Some(tar.stdout));
        assert_eq!(o.code, Some(0), "docker import\n{o}\n{}", self.log_tail(20));
    }

    /// Monitor processes whose command line names this daemon's exec root.
    pub fn monitors(&self) -> Vec<u32> {
        let needle = self.exec_root.display().to_string();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("berth-monitor") && cmd.contains(&needle) {
                out.push(pid);
            }
        }
        out
    }

    /// What this daemon left on the host: mounts under its roots, cgroups under its parent,
    /// monitor processes.
    pub fn leaks(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.dir.path().display().to_string();
        for l in mi.lines() {
            if l.split_whitespace().nth(4).is_some_and(|m| m.starts_with(&root)) {
                problems.push(format!("mount left: {l}"));
            }
        }
        for base in cgroup_bases() {
            let p = base.join(&self.cgroup_parent);
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        problems.push(format!("cgroup left: {}", e.path().display()));
                    }
                }
            }
        }
        for pid in self.monitors() {
            problems.push(format!("monitor process left: {pid}"));
        }
        // Container snapshots only while a container exists: callers check after removing all.
        for driver in std::fs::read_dir(self.data_root.join("snapshots")).into_iter().flatten().flatten() {
            for e in std::fs::read_dir(driver.path().join("containers")).into_iter().flatten().flatten() {
                problems.push(format!("snapshot left: {}", e.path().display()));
            }
        }
        problems
    }
}

fn cgroup_bases() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.push(e.path());
        }
    }
    out.push(PathBuf::from("/sys/fs/cgroup"));
    out
}

fn remove_cgroup_tree(p: &Path) {
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(p);
}

impl Drop for Berthd {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.docker(&["ps", "-aq"]).stdout;
            for id in ids.split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        if let Some(mut c) = self.child.take() {
            crate::dockerd::signal(c.id(), "TERM");
            let _ = c.wait();
        }
        for pid in self.monitors() {
            crate::dockerd::signal(pid, "KILL");
        }
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.dir.path().display().to_string();
        let mut mounts: Vec<&str> = mi.lines().filter_map(|l| l.split_whitespace().nth(4)).filter(|m| m.starts_with(&root)).collect();
        mounts.reverse();
        for m in mounts {
            let _ = nix_umount(m);
        }
        for base in cgroup_bases() {
            remove_cgroup_tree(&base.join(&self.cgroup_parent));
        }
        // A daemon that did not shut down cleanly leaves its bridges and their nftables tables
        // (the default one and those of user networks).
        let mut bridges: Vec<String> = self.bridge().into_iter().collect();
        bridges.extend(self.user_network_bridges());
        for b in bridges {
            if Path::new("/sys/class/net").join(&b).exists() {
                let _ = Command::new("ip").args(["link", "delete", &b]).status();
            }
            let table = if b == "berth0" { "berth".to_owned() } else { format!("berth-{b}") };
            let _ = Command::new("nft").args(["delete", "table", "ip", &table]).stderr(Stdio::null()).status();
        }
    }
}

fn nix_umount(path: &str) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path).map_err(std::io::Error::other)?;
    // SAFETY: a valid C string.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
