//! A private Docker daemon for tests and benchmarks: [`Daemon`] starts
//! `dockerd` with everything (data root, exec root, socket, config) under one
//! temp dir, no network (`--bridge=none`, `--iptables=false`) and the cgroupfs
//! driver under a unique `--cgroup-parent`; its teardown (also run on `Drop`)
//! stops it and removes everything it created. See `tests/docker_runtime.rs`
//! for the full design notes and the `BERTH_DOCKER_*` environment settings.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The name the runtime under test is registered under.
pub const RUNTIME_NAME: &str = "berth";
/// Appended to PATH for finding binaries and for dockerd's own lookups. Also the
/// PATH in the test image's config (it is Docker's default for containers).
pub const SYS_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Default time limit for one docker CLI call.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);
/// How long dockerd may take to answer on its socket.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The private daemon
// ---------------------------------------------------------------------------

/// The host binaries a private daemon needs.
pub struct HostTools {
    pub dockerd: PathBuf,
    pub docker: PathBuf,
    pub setpriv: Option<PathBuf>,
    pub tmux: Option<PathBuf>,
}

impl HostTools {
    /// The binaries this test needs; Err(reason) means skip.
    pub fn find() -> Result<Self, String> {
        if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
            return Err("not running as root (dockerd needs root)".into());
        }
        let dockerd = find_exe("dockerd").ok_or("dockerd not found (apt install docker.io)")?;
        find_exe("containerd").ok_or("containerd not found (apt install containerd)")?;
        find_exe("containerd-shim-runc-v2")
            .ok_or("containerd-shim-runc-v2 not found (apt install containerd)")?;
        let docker = match env_nonempty("BERTH_DOCKER_CLI") {
            Some(p) => PathBuf::from(p),
            None if is_executable(Path::new("/usr/bin/docker")) => PathBuf::from("/usr/bin/docker"),
            None => find_exe("docker").ok_or("docker CLI not found (apt install docker.io)")?,
        };
        if !is_executable(&docker) {
            return Err(format!("docker CLI {} is not executable", docker.display()));
        }
        Ok(Self {
            dockerd,
            docker,
            setpriv: find_exe("setpriv"),
            tmux: find_exe("tmux"),
        })
    }
}

/// Host paths dockerd/containerd may create outside our temp dir (children before
/// parents). Whatever didn't exist before the run is removed after it.
pub const HOST_PATHS: &[&str] = &[
    "/run/docker/plugins",
    "/run/docker",
    "/run/containerd/s",
    "/run/containerd",
    "/etc/docker/key.json",
    "/var/lib/docker",
    "/var/lib/containerd",
];
/// Where containerd-shim-runc-v2 puts its sockets, whatever containerd's own paths are.
pub const SHIM_SOCKET_DIR: &str = "/run/containerd/s";

/// A private dockerd; torn down on `Drop` if [`Daemon::teardown`] wasn't called.
pub struct Daemon {
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub log: PathBuf,
    pub docker_cli: PathBuf,
    pub dockerd: PathBuf,
    pub setpriv: Option<PathBuf>,
    pub tmux: Option<PathBuf>,
    pub runtime: PathBuf,
    /// What is registered as `berth`: the runtime, or the tracing wrapper.
    pub registered: PathBuf,
    pub trace_log: Option<PathBuf>,
    pub storage_driver: String,
    pub cgroup_parent: String,
    /// An existing bridge for the default network (`--bridge=NAME`, iptables still off);
    /// None: `--bridge=none`.
    pub bridge: Option<String>,
    child: Option<Child>,
    host_before: BTreeSet<String>,
    shim_sockets_before: BTreeSet<String>,
    torn_down: bool,
}

impl Daemon {
    pub fn new(tools: &HostTools, runtime: &Path, storage_driver: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tag = format!("{}-{:x}", std::process::id(), nanos & 0xfffff);
        // Short: unix socket paths (ours, containerd's) must fit in 108 bytes.
        let dir = std::env::temp_dir().join(format!("berth-dk-{tag}"));
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        for sub in ["data", "exec", "cli"] {
            fs::create_dir(dir.join(sub)).unwrap();
        }
        // Own config file: /etc/docker/daemon.json is not read, and the
        // identity key goes here instead of /etc/docker/key.json.
        fs::write(
            dir.join("daemon.json"),
            format!(
                "{{\"deprecated-key-path\": \"{}\"}}\n",
                dir.join("key.json").display()
            ),
        )
        .unwrap();

        let (registered, trace_log) = if env_nonempty("BERTH_DOCKER_TRACE").is_some() {
            let log = dir.join("runtime-trace.log");
            let wrapper = dir.join("runtime-trace.sh");
            write_trace_wrapper(&wrapper, &log, runtime);
            (wrapper, Some(log))
        } else {
            (runtime.to_path_buf(), None)
        };

        let host_before = HOST_PATHS
            .iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| p.to_string())
            .collect();
        Daemon {
            sock: dir.join("docker.sock"),
            log: dir.join("dockerd.log"),
            docker_cli: tools.docker.clone(),
            dockerd: tools.dockerd.clone(),
            setpriv: tools.setpriv.clone(),
            tmux: tools.tmux.clone(),
            runtime: runtime.to_path_buf(),
            registered,
            trace_log,
            storage_driver: storage_driver.to_string(),
            cgroup_parent: format!("berth-e2e-docker-{tag}"),
            child: None,
            host_before,
            bridge: None,
            shim_sockets_before: dir_entries(Path::new(SHIM_SOCKET_DIR)),
            torn_down: false,
            dir,
        }
    }

    /// Starts dockerd and waits until it answers on its socket.
    pub fn launch(&mut self) -> Result<(), String> {
        let d = &self.dir;
        let mut args: Vec<String> = vec![
            format!("--config-file={}", d.join("daemon.json").display()),
            format!("--data-root={}", d.join("data").display()),
            format!("--exec-root={}", d.join("exec").display()),
            format!("--pidfile={}", d.join("docker.pid").display()),
            format!("--host=unix://{}", self.sock.display()),
            "--iptables=false".into(),
            "--ip6tables=false".into(),
            "--ip-masq=false".into(),
            format!("--bridge={}", self.bridge.as_deref().unwrap_or("none")),
            "--userland-proxy=false".into(),
            format!("--storage-driver={}", self.storage_driver),
            "--exec-opt=native.cgroupdriver=cgroupfs".into(),
            format!("--cgroup-parent=/{}", self.cgroup_parent),
            format!("--add-runtime={RUNTIME_NAME}={}", self.registered.display()),
        ];
        if env_nonempty("BERTH_DOCKER_DEBUG").is_some() {
            args.push("--debug".into());
        }
        let log = fs::File::create(&self.log)
            .map_err(|e| format!("creating {}: {e}", self.log.display()))?;
        let mut cmd = match &self.setpriv {
            // Parent-death signal: if this test process dies without running
            // Drop, dockerd still gets SIGTERM and shuts everything down.
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "TERM", "--"]).arg(&self.dockerd);
                c
            }
            None => Command::new(&self.dockerd),
        };
        cmd.args(&args)
            .env("PATH", extended_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.dockerd.display()))?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().ok().flatten() {
                self.child = None;
                return Err(format!("dockerd exited during startup ({status})"));
            }
            if self.sock.exists() {
                let out = self.docker_t(
                    &["version", "--format", "{{.Server.Version}}"],
                    None,
                    Duration::from_secs(5),
                );
                if out.code == Some(0) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on {} within {START_TIMEOUT:?}",
                    self.sock.display()
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    // --- docker CLI helpers ------------------------------------------------

    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.docker_cli);
        cmd.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args);
        cmd.env("DOCKER_CONFIG", self.dir.join("cli"))
            .stdin(Stdio::null());
        for var in [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    pub fn docker_t(&self, args: &[&str], input: Option<&[u8]>, timeout: Duration) -> Out {
        run_with_timeout(self.docker_cmd(args), input.map(|i| i.to_vec()), timeout)
    }

    pub fn docker(&self, args: &[&str]) -> Out {
        self.docker_t(args, None, CMD_TIMEOUT)
    }

    pub fn docker_in(&self, args: &[&str], input: &[u8]) -> Out {
        self.docker_t(args, Some(input), CMD_TIMEOUT)
    }

    /// Runs docker, requires success, returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        out.expect_code(0);
        out.stdout
    }

    pub fn remove_all_containers(&self) {
        let out = self.docker_t(&["ps", "-aq", "--no-trunc"], None, Duration::from_secs(10));
        let ids: Vec<&str> = out.stdout.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let out = self.docker_t(&args, None, Duration::from_secs(15));
            if out.code != Some(0) {
                eprintln!("docker_runtime: removing containers failed:\n{out}");
            }
        }
    }

    // --- logs, tracing -------------------------------------------------------

    /// The dockerd process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    // --- teardown --------------------------------------------------------------

    /// Stops everything and removes what this run created. Returns the problems
    /// found: things that couldn't be cleaned up, or were left behind.
    pub fn teardown(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        let dir_str = self.dir.display().to_string();

        if let Some(tmux) = &self.tmux {
            let sock = self.dir.join("tmux.sock");
            if sock.exists() {
                let mut c = Command::new(tmux);
                c.arg("-S").arg(&sock).arg("kill-server");
                run_with_timeout(c, None, Duration::from_secs(10));
            }
        }

        // 1. Containers, through the daemon, while it's up.
        if let Some(child) = self.child.as_mut() {
            if child.try_wait().ok().flatten().is_none() && self.sock.exists() {
                self.remove_all_containers();
            }
        }

        // 2. dockerd: SIGTERM (it stops its containerd too), SIGKILL if it hangs.
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        problems.push("dockerd ignored SIGTERM for 20s; killed it".into());
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(50)),
                }
            }
        }

        // 3. Stragglers: anything still naming our dir (containerd, shims), and
        // anything still in our cgroups (container processes).
        let strays = processes_mentioning(&dir_str);
        for (pid, cmdline) in &strays {
            eprintln!("docker_runtime: killing leftover process {pid}: {cmdline}");
            signal(*pid, "KILL");
        }
        let cgroup_dirs = self.cgroup_dirs();
        thaw(&cgroup_dirs);
        let mut in_cgroups = cgroup_procs(&cgroup_dirs);
        if !in_cgroups.is_empty() {
            eprintln!("docker_runtime: killing leftover container processes {in_cgroups:?}");
            for pid in &in_cgroups {
                signal(*pid, "KILL");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            in_cgroups = cgroup_procs(&cgroup_dirs);
            if in_cgroups.is_empty() && processes_mentioning(&dir_str).is_empty() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }

        // 4. Mounts under our dir (dockerd normally unmounts its own).
        let mounts = mounts_under(&self.dir);
        for m in &mounts {
            eprintln!("docker_runtime: unmounting leftover {}", m.display());
            let ok = Command::new("umount")
                .arg(m)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }

        // 5. The cgroup parent in every hierarchy.
        for cg in &cgroup_dirs {
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Err(e) = remove_cgroup_tree(cg) {
                if Instant::now() > deadline {
                    problems.push(format!("cannot remove cgroup {}: {e}", cg.display()));
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }

        // 6. Host paths dockerd/containerd created: stale shim sockets, then
        // dirs that didn't exist before (if empty).
        let bound = bound_unix_sockets();
        for name in dir_entries(Path::new(SHIM_SOCKET_DIR)).difference(&self.shim_sockets_before) {
            let path = Path::new(SHIM_SOCKET_DIR).join(name);
            if !bound.contains(&path.display().to_string()) {
                let _ = fs::remove_file(&path);
            }
        }
        for p in HOST_PATHS {
            let path = Path::new(p);
            if self.host_before.contains(*p) || !path.exists() {
                continue;
            }
            if p.starts_with("/run/") {
                // Hard-coded in dockerd (plugins dir) and the shim (socket dir):
                // expected; removed when empty (another daemon may use them).
                if let Err(e) = fs::remove_dir(path) {
                    eprintln!("docker_runtime: leaving {p}: {e}");
                }
            } else {
                problems.push(format!(
                    "dockerd/containerd created {p} outside the temp dir"
                ));
                if path.is_file() {
                    let _ = fs::remove_file(path);
                }
            }
        }

        // 7. Verify, then remove the temp dir.
        for (pid, cmdline) in processes_mentioning(&dir_str) {
            problems.push(format!("process {pid} still running: {cmdline}"));
        }
        let left = mounts_under(&self.dir);
        for m in &left {
            problems.push(format!("still mounted: {}", m.display()));
        }
        for cg in &cgroup_dirs {
            if cg.exists() {
                problems.push(format!("cgroup still present: {}", cg.display()));
            }
        }
        if env_nonempty("BERTH_DOCKER_KEEP").is_some() {
            eprintln!("docker_runtime: keeping {}", self.dir.display());
        } else if left.is_empty() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                problems.push(format!("removing {}: {e}", self.dir.display()));
            }
        }
        problems
    }

    /// `<hierarchy>/<cgroup parent>` for every cgroup hierarchy that has it
    /// (v1 controllers, named hierarchies, the v2 mount, or a pure v2 root).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let root = Path::new("/sys/fs/cgroup");
        let mut dirs = vec![root.join(&self.cgroup_parent)];
        if let Ok(entries) = fs::read_dir(root) {
            for e in entries.flatten() {
                dirs.push(e.path().join(&self.cgroup_parent));
            }
        }
        dirs.into_iter().filter(|d| d.is_dir()).collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.torn_down {
            report_problems(&self.teardown());
        }
    }
}

/// Leftovers of earlier runs that were killed before their teardown: dockerd
/// then stops itself (parent-death signal) but the temp dir and the empty
/// cgroup parents stay. Removed only when the run's pid is gone and nothing is
/// mounted, running, or referring to them.
pub fn reap_stale_runs() {
    let run_gone = |tag: &str| {
        tag.split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists())
    };
    for e in fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(tag) = name.strip_prefix("berth-dk-") else {
            continue;
        };
        let path = e.path();
        if run_gone(tag)
            && mounts_under(&path).is_empty()
            && processes_mentioning(&path.display().to_string()).is_empty()
        {
            eprintln!(
                "docker_runtime: removing {} left by an earlier run",
                path.display()
            );
            let _ = fs::remove_dir_all(&path);
        }
    }
    let root = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    hierarchies.extend(
        fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path()),
    );
    for h in hierarchies {
        for e in fs::read_dir(&h).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(tag) = name.strip_prefix("berth-e2e-docker-") else {
                continue;
            };
            let path = e.path();
            if path.is_dir()
                && run_gone(tag)
                && cgroup_procs(std::slice::from_ref(&path)).is_empty()
            {
                eprintln!(
                    "docker_runtime: removing cgroup {} left by an earlier run",
                    path.display()
                );
                let _ = remove_cgroup_tree(&path);
            }
        }
    }
}

pub fn report_problems(problems: &[String]) {
    for p in problems {
        eprintln!("docker_runtime: cleanup problem: {p}");
    }
}

/// A wrapper that logs each runtime invocation (and the stdin of
/// `update --resources -`) and then runs the runtime with the same fds.
pub fn write_trace_wrapper(wrapper: &Path, log: &Path, runtime: &Path) {
    let script = format!(
        r#"#!/bin/sh
log={log}
rt={rt}
{{ printf '%s' "$(date +%T.%N)"; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'; }} >> "$log"
upd=0; dash=0
for a in "$@"; do [ "$a" = update ] && upd=1; [ "$a" = - ] && dash=1; done
if [ $upd = 1 ] && [ $dash = 1 ]; then
  data=$(cat)
  printf '    stdin: %s\n' "$data" >> "$log"
  printf '%s' "$data" | "$rt" "$@"
  exit $?
fi
exec "$rt" "$@"
"#,
        log = sh_quote(&log.display().to_string()),
        rt = sh_quote(&runtime.display().to_string()),
    );
    fs::write(wrapper, script).unwrap();
    fs::set_permissions(wrapper, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------
// Processes with timeouts
// ---------------------------------------------------------------------------

/// What a command did: exit code and captured output.
pub struct Out {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    #[track_caller]
    pub fn expect_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "unexpected exit status\n{self}");
    }

    #[track_caller]
    pub fn expect_stdout(&self, stdout: &str) {
        self.expect_code(0);
        assert_eq!(self.stdout, stdout, "unexpected stdout\n{self}");
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  command: {}", self.cmd)?;
        match (self.timed_out, self.code) {
            (true, _) => writeln!(f, "  status: TIMED OUT (killed)")?,
            (false, Some(c)) => writeln!(f, "  exit code: {c}")?,
            (false, None) => writeln!(f, "  killed by a signal")?,
        }
        writeln!(f, "  stdout: {:?}", self.stdout)?;
        write!(f, "  stderr: {:?}", self.stderr)
    }
}

/// Runs `cmd` with piped stdio, feeding `input`, killing it after `timeout`.
pub fn run_with_timeout(mut cmd: Command, input: Option<Vec<u8>>, timeout: Duration) -> Out {
    let desc = format!("{cmd:?}");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("spawning {desc}: {e}"),
    };
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() > deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Out {
        cmd: desc,
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        timed_out,
    }
}

/// Calls `f` until it returns Some, for up to `timeout`.
#[track_caller]
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------
// Host inspection
// ---------------------------------------------------------------------------

pub fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn extended_path() -> String {
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{SYS_PATH}"),
        _ => SYS_PATH.to_string(),
    }
}

pub fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub fn find_exe(name: &str) -> Option<PathBuf> {
    extended_path()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable(p))
}

/// Whether `controller` is mounted as a cgroup v1 hierarchy at the usual place.
pub fn cgroup_v1(controller: &str) -> bool {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("cgroup.procs")
        .exists()
        && !Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("cgroup.controllers")
            .exists()
}

pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn dir_entries(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Live processes (other than this one) whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(raw) = fs::read(e.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push((pid, cmdline.trim().to_string()));
            }
        }
    }
    found
}

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found.dedup();
    found
}

/// Paths of bound unix sockets (to leave live shim sockets alone).
pub fn bound_unix_sockets() -> BTreeSet<String> {
    fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(7).map(str::to_string))
        .collect()
}

/// All cgroup directories at or below each of `roots`, children first.
pub fn cgroup_tree(root: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                cgroup_tree(&e.path(), out);
            }
        }
    }
    out.push(root.to_path_buf());
}

pub fn cgroup_procs(roots: &[PathBuf]) -> Vec<u32> {
    let mut pids = BTreeSet::new();
    for root in roots {
        let mut tree = Vec::new();
        cgroup_tree(root, &mut tree);
        for cg in tree {
            for line in fs::read_to_string(cg.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(pid) = line.trim().parse() {
                    pids.insert(pid);
                }
            }
        }
    }
    pids.into_iter().collect()
}

/// Unfreezes every cgroup below `roots`, so SIGKILL can take effect.
pub fn thaw(roots: &[PathBuf]) {
    for root in roots {
        let mut tree = Vec::new();
        cgroup_tree(root, &mut tree);
        for cg in tree {
            let _ = fs::write(cg.join("freezer.state"), "THAWED");
            if cg.join("cgroup.freeze").exists() {
                let _ = fs::write(cg.join("cgroup.freeze"), "0");
            }
        }
    }
}

pub fn remove_cgroup_tree(root: &Path) -> std::io::Result<()> {
    let mut tree = Vec::new();
    cgroup_tree(root, &mut tree);
    for cg in tree {
        if cg.exists() {
            fs::remove_dir(&cg)?;
        }
    }
    Ok(())
}
