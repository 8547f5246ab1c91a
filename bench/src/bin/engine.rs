//! berth-engine-bench: berthd vs the real Docker engine (dockerd + containerd + runc), both
//! driven by the same docker CLI in one run, plus direct API round trips.
//!
//! - `docker run --rm busybox true` on the default bridge and with `--network none`, median
//!   of n, and their difference: the network's share of a start (both daemons get a bridge of
//!   their own: dockerd an existing one with iptables off, berthd its own with its nftables);
//!   on a user-defined network (embedded DNS included); and with a named and an anonymous
//!   volume;
//! - `docker exec CTR true` into a running container, median of n;
//! - 50 detached `sleep` containers started one after another: total;
//! - create, each: `POST /containers/create` round trip over the socket, median;
//! - `GET /containers/json?all=1` with 200 containers: round trip, median;
//! - berthd's idle resident memory, and the per-container monitor's PSS.
//!
//! Needs root, dockerd, containerd, runc and the docker CLI; Podman joins when installed.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::{find_exe, report_problems, Daemon, HostTools};
use clap::Parser;

#[derive(Parser)]
#[command(about = "berthd vs dockerd: run, detached starts, create, list, memory")]
struct Args {
    #[arg(short = 'n', long, default_value_t = 10)]
    iterations: usize,
    #[arg(long, default_value_t = 50)]
    detached: usize,
    #[arg(long, default_value_t = 200)]
    list_size: usize,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn timed(mut c: Command) -> Result<Duration, String> {
    c.stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::null());
    let t = Instant::now();
    let out = c.output().map_err(|e| e.to_string())?;
    let d = t.elapsed();
    if !out.status.success() {
        return Err(format!("{c:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(d)
}

/// One HTTP/1.1 request on a fresh connection; returns the round trip and the body.
fn http(sock: &Path, method: &str, path: &str, body: &str) -> Result<(Duration, String), String> {
    let t = Instant::now();
    let mut s = UnixStream::connect(sock).map_err(|e| format!("connect {}: {e}", sock.display()))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
    let d = t.elapsed();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with('2') {
        return Err(format!("{method} {path}: {}", text.lines().next().unwrap_or("")));
    }
    Ok((d, text.split_once("\r\n\r\n").map(|x| x.1.to_owned()).unwrap_or_default()))
}

fn kib(pid: u32, key: &str, file: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Builds a CLI command (docker against one daemon, or podman) from its arguments.
type CliFn<'a> = Box<dyn Fn(&[&str]) -> Command + 'a>;

struct Side<'a> {
    name: &'a str,
    docker: CliFn<'a>,
    sock: &'a Path,
    /// Extra `run` flags this side needs here.
    run_args: Vec<&'a str>,
    /// The subnet of this side's user-defined network.
    user_subnet: &'a str,
}

#[derive(Default, Clone)]
struct Row {
    run: Duration,
    run_none: Duration,
    /// `run --rm --network USERNET busybox true`.
    run_user: Duration,
    /// Median of the paired differences (bridge run minus the `none` run right after it), ms:
    /// pairs cancel most of the load drift of a shared machine.
    net_ms: f64,
    exec: Duration,
    exec_api: Duration,
    detached: Duration,
    create: Duration,
    list: Duration,
    /// `run --rm --network none` with a named volume and an anonymous one (created, copied
    /// up, removed with the container).
    run_volumes: Duration,
    /// Berth only: `berth run --rm busybox true` through the berth CLI (issue 6's target).
    cli_run: Duration,
}

fn measure(s: &Side, a: &Args) -> Result<Row, String> {
    let mut r = Row::default();
    let run = |extra: &[&str]| -> Result<Duration, String> {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(&s.run_args);
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "true"]);
        timed((s.docker)(&args))
    };
    run(&[])?;
    timed((s.docker)(&["network", "create", "--subnet", s.user_subnet, "benchnet"]))?;
    let (mut bridge, mut none, mut diff, mut vols, mut user) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.iterations {
        let b = run(&[])?;
        let n = run(&["--network", "none"])?;
        user.push(run(&["--network", "benchnet"])?);
        diff.push(b.as_secs_f64() * 1e3 - n.as_secs_f64() * 1e3);
        bridge.push(b);
        none.push(n);
        vols.push(run(&["--network", "none", "-v", "benchvol:/data", "-v", "/anon"])?);
    }
    diff.sort_by(f64::total_cmp);
    r.net_ms = diff.get(diff.len() / 2).copied().unwrap_or_default();
    r.run = median(bridge);
    r.run_none = median(none);
    r.run_user = median(user);
    timed((s.docker)(&["network", "rm", "benchnet"]))?;
    r.run_volumes = median(vols);
    (r.exec, r.exec_api) = exec_median(s, a)?;
    let t = Instant::now();
    for _ in 0..a.detached {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(&s.run_args);
        args.extend_from_slice(&["--network", "none", "busybox", "sleep", "1000"]);
        timed((s.docker)(&args))?;
    }
    r.detached = t.elapsed();
    eprintln!("{}: {} detached containers started in {:.2?}", s.name, a.detached, r.detached);
    Ok(r)
}

/// `docker exec CTR true` into one running container: the whole CLI round trip (inspect,
/// exec create, start with its hijacked stream, exec inspect); and the same three exec calls
/// straight on the socket, without the CLI's own start-up.
fn exec_median(s: &Side, a: &Args) -> Result<(Duration, Duration), String> {
    let name = format!("bench-exec-{}", std::process::id());
    let mut args = vec!["run", "-d", "--name", &name];
    args.extend_from_slice(&s.run_args);
    args.extend_from_slice(&["--network", "none", "busybox", "sleep", "1000"]);
    timed((s.docker)(&args))?;
    let n = a.iterations.max(1) * 2;
    let result = (|| {
        timed((s.docker)(&["exec", &name, "true"]))?;
        let mut cli = Vec::new();
        for _ in 0..n {
            cli.push(timed((s.docker)(&["exec", &name, "true"]))?);
        }
        let mut api = Vec::new();
        if s.sock.exists() {
            for _ in 0..n {
                api.push(exec_api(s.sock, &name)?);
            }
        }
        Ok((median(cli), median(api)))
    })();
    let _ = (s.docker)(&["rm", "-f", &name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    result
}

/// POST /containers/{name}/exec, POST /exec/{id}/start (upgraded, read to the end), GET
/// /exec/{id}/json: the exit code must be there.
fn exec_api(sock: &Path, name: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let body = r#"{"AttachStdout":true,"AttachStderr":true,"Cmd":["true"]}"#;
    let (_, created) = http(sock, "POST", &format!("/v1.41/containers/{name}/exec"), body)?;
    let id = created.split('"').nth(3).ok_or("no exec id")?.to_owned();
    let mut c = UnixStream::connect(sock).map_err(|e| e.to_string())?;
    let start = r#"{"Detach":false,"Tty":false}"#;
    let req = format!(
        "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
        start.len()
    );
    c.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    c.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let (_, inspect) = http(sock, "GET", &format!("/v1.41/exec/{id}/json"), "")?;
    let d = t.elapsed();
    if !inspect.contains("\"ExitCode\":0") {
        return Err(format!("exec {id}: {inspect}"));
    }
    Ok(d)
}

fn api_measure(s: &Side, a: &Args, r: &mut Row) -> Result<(), String> {
    let body = r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}"#;
    let mut creates = Vec::new();
    for _ in 0..a.list_size {
        creates.push(http(s.sock, "POST", "/v1.41/containers/create", body)?.0);
    }
    r.create = median(creates);
    let mut lists = Vec::new();
    for _ in 0..20 {
        lists.push(http(s.sock, "GET", "/v1.41/containers/json?all=1", "")?.0);
    }
    r.list = median(lists);
    Ok(())
}

fn remove_all(s: &Side) {
    let out = (s.docker)(&["ps", "-aq"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let ids: Vec<&str> = out.split_whitespace().collect();
    for chunk in ids.chunks(50) {
        let mut args = vec!["rm", "-f"];
        args.extend_from_slice(chunk);
        let _ = (s.docker)(&args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn import_busybox(docker: &dyn Fn(&[&str]) -> Command) -> Result<(), String> {
    let rootfs = berth_e2e::busybox_rootfs();
    let tar = Command::new("tar").arg("-C").arg(&rootfs).args(["-c", "."]).output().map_err(|e| e.to_string())?;
    let mut c = docker(&["import", "-", "busybox:latest"]);
    c.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    child.stdin.take().unwrap().write_all(&tar.stdout).map_err(|e| e.to_string())?;
    let st = child.wait().map_err(|e| e.to_string())?;
    st.success().then_some(()).ok_or_else(|| "docker import failed".into())
}

/// Podman (daemonless) with its own temporary storage: the CLI-level operations only.
fn podman_measure(a: &Args) -> Result<Row, String> {
    let dir = tempfile::Builder::new().prefix("berth-podman-").tempdir_in("/var/tmp").map_err(|e| e.to_string())?;
    let root = dir.path().join("root");
    let runroot = dir.path().join("run");
    let cmd = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root").arg(&root).arg("--runroot").arg(&runroot).args(["--cgroup-manager", "cgroupfs", "--events-backend", "none"]).args(args);
        c
    };
    import_busybox(&cmd)?;
    // Podman raises RLIMIT_NOFILE by default, which this host (no CAP_SYS_RESOURCE) refuses.
    let side = Side { name: "podman", docker: Box::new(cmd), sock: Path::new("/nonexistent"), run_args: vec!["--ulimit", "host"], user_subnet: "10.217.0.0/24" };
    let r = measure(&side, a);
    remove_all(&side);
    let _ = Command::new("umount").arg("-R").arg(&root).stderr(Stdio::null()).status();
    r
}

/// The bridge the private dockerd is given (dockerd creates only docker0 itself); deleted on
/// drop. The benchmark, not Berth, uses `ip` here.
struct BenchBridge(&'static str);

impl BenchBridge {
    fn create(name: &'static str, addr: &str) -> Result<BenchBridge, String> {
        let ip = |args: &[&str]| -> Result<(), String> {
            let o = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
            o.status.success().then_some(()).ok_or_else(|| format!("ip {args:?}: {}", String::from_utf8_lossy(&o.stderr)))
        };
        let _ = ip(&["link", "delete", name]);
        ip(&["link", "add", name, "type", "bridge"])?;
        let b = BenchBridge(name);
        ip(&["addr", "add", addr, "dev", name])?;
        ip(&["link", "set", name, "up"])?;
        Ok(b)
    }
}

impl Drop for BenchBridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "delete", self.0]).status();
    }
}

fn main() -> ExitCode {
    let a = Args::parse();
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-engine-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    let tools = HostTools::find()?;
    let runc = find_exe("runc").ok_or("runc not found")?;
    let _bridge = BenchBridge::create("dkbench0", "10.214.0.1/24")?;
    let mut dockerd = Daemon::new(&tools, &runc, "overlay2");
    dockerd.bridge = Some("dkbench0".into());
    dockerd.launch().map_err(|e| format!("dockerd: {e}"))?;
    let berthd = Berthd::start_with(["--bridge", "bbench0", "--bip", "10.213.0.1/24"].map(String::from).to_vec());
    let idle_rss = kib(berthd.pid(), "VmRSS:", "status");
    let result = (|| -> Result<(Row, Row, u64, u64, u64), String> {
        let dk = Side { name: "docker", docker: Box::new(|args: &[&str]| dockerd.docker_cmd(args)), sock: &dockerd.sock, run_args: vec![], user_subnet: "10.215.0.0/24" };
        let bt = Side { name: "berth", docker: Box::new(|args: &[&str]| berthd.docker_cmd(args)), sock: &berthd.socket, run_args: vec![], user_subnet: "10.216.0.0/24" };
        import_busybox(&*dk.docker)?;
        import_busybox(&*bt.docker)?;
        let mut rows = Vec::new();
        let mut mon_pss = 0;
        let mut busy_rss = 0;
        for s in [&dk, &bt] {
            let mut r = measure(s, a)?;
            if s.name == "berth" {
                let cli = berth_e2e::runtime_bin("berth");
                let mut v = Vec::new();
                for _ in 0..a.iterations {
                    let mut c = Command::new(&cli);
                    c.args(["run", "--rm", "busybox", "true"]).env("DOCKER_HOST", berthd.host());
                    v.push(timed(c)?);
                }
                r.cli_run = median(v);
                let mons = berthd.monitors();
                let total: u64 = mons.iter().map(|p| kib(*p, "Pss:", "smaps_rollup")).sum();
                mon_pss = total / mons.len().max(1) as u64;
                busy_rss = kib(berthd.pid(), "VmRSS:", "status");
            }
            remove_all(s);
            api_measure(s, a, &mut r)?;
            remove_all(s);
            rows.push(r);
        }
        let after_rss = kib(berthd.pid(), "VmRSS:", "status");
        Ok((rows[0].clone(), rows[1].clone(), mon_pss, busy_rss, after_rss))
    })();
    report_problems(&dockerd.teardown());
    let podman = if find_exe("podman").is_some() { podman_measure(a).map_err(|e| eprintln!("podman: {e}")).ok() } else { None };
    let leaks = berthd.leaks();
    drop(berthd);
    let (dk, bt, mon_pss, busy_rss, after_rss) = result?;
    let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1e3);
    let ratio = |b: Duration, d: Duration| format!("{:.3}x", b.as_secs_f64() / d.as_secs_f64().max(1e-9));
    println!("{:<44} {:>12} {:>12} {:>12}", "operation", "docker", "berth", "berth/docker");
    let rows = [
        (format!("run --rm busybox true (median of {})", a.iterations), dk.run, bt.run),
        ("run --rm --network none busybox true".to_owned(), dk.run_none, bt.run_none),
        ("run --rm --network USERNET busybox true".to_owned(), dk.run_user, bt.run_user),
        (format!("exec CTR true (median of {})", a.iterations.max(1) * 2), dk.exec, bt.exec),
        ("exec: create+start+inspect on the socket".to_owned(), dk.exec_api, bt.exec_api),
        (format!("{} detached sleep containers (total)", a.detached), dk.detached, bt.detached),
        ("POST /containers/create (median)".to_owned(), dk.create, bt.create),
        (format!("GET /containers/json?all=1, {} ctrs", a.list_size), dk.list, bt.list),
        ("run --rm --network none, named + anon volume".to_owned(), dk.run_volumes, bt.run_volumes),
        ("berth CLI run --rm (vs docker CLI on dockerd)".to_owned(), dk.run, bt.cli_run),
    ];
    for (name, d, b) in &rows {
        println!("{name:<44} {:>12} {:>12} {:>12}", ms(*d), ms(*b), ratio(*b, *d));
    }
    println!(
        "{:<44} {:>12} {:>12} {:>12}",
        "network cost: bridge run minus none run",
        format!("{:.2}ms", dk.net_ms),
        format!("{:.2}ms", bt.net_ms),
        format!("{:.3}x", bt.net_ms / dk.net_ms)
    );
    if let Some(p) = podman {
        println!("{:<44} {:>12} {:>12} {:>12}", "podman (same CLI-level operations)", "podman", "berth", "berth/podman");
        let rows = rows.iter().filter(|r| !r.0.contains("socket"));
        for ((name, _, b), p) in rows.zip([p.run, p.run_none, p.run_user, p.exec, p.detached]) {
            println!("{name:<44} {:>12} {:>12} {:>12}", ms(p), ms(*b), ratio(*b, p));
        }
    }
    println!("berthd resident memory: idle {idle_rss} KiB, with {} containers {busy_rss} KiB, after {after_rss} KiB", a.detached);
    println!("berth-monitor PSS per container: {mon_pss} KiB (conmon: 366 KiB here)");
    if !leaks.is_empty() {
        return Err(format!("berthd left: {leaks:?}"));
    }
    Ok(())
}
