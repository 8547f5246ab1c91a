//! berth-logs-bench: container logging, berthd vs the real Docker engine, one run, same CLI.
//!
//! - a container writing `--size` bytes (default 1 GB) of 100-byte lines to stdout: `run -d` to
//!   `wait` with json-file logging (both sides rotating at 20m x 5, Berth's default) vs the same
//!   container writing to /dev/null; Berth's monitor memory (RSS and PSS) sampled while it runs;
//! - `logs --tail 100` of a ~1 GB json-file log (one file, no rotation): the CLI round trip and
//!   the API request alone, median of n.
//!
//! Needs root, dockerd, containerd, runc and the docker CLI.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::{find_exe, report_problems, Daemon, HostTools};
use clap::Parser;

#[derive(Parser)]
#[command(about = "berthd vs dockerd: logging throughput, monitor memory, logs --tail")]
struct Args {
    /// Bytes the writer container prints.
    #[arg(long, default_value_t = 1_000_000_000)]
    size: u64,
    /// Bytes of output behind the tailed log (json-file makes ~1.6x that on disk).
    #[arg(long, default_value_t = 620_000_000)]
    tail_log_output: u64,
    #[arg(short = 'n', long, default_value_t = 10)]
    iterations: usize,
    /// Measure berthd only (while tuning; no ratios against Docker).
    #[arg(long)]
    berth_only: bool,
}

type CliFn<'a> = Box<dyn Fn(&[&str]) -> Command + 'a>;

struct Side<'a> {
    name: &'a str,
    docker: CliFn<'a>,
    sock: &'a Path,
}

#[derive(Default, Clone)]
struct Row {
    devnull: Duration,
    json: Duration,
    tail_cli: Duration,
    tail_api: Duration,
    tail_log_bytes: u64,
}

/// 99 characters and a newline a line.
const LINE: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzA";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn check(mut c: Command) -> Result<String, String> {
    c.stdin(Stdio::null());
    let out = c.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{c:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn kib(pid: u32, key: &str, file: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

/// Memory samples of the berth monitors: (max RSS, max PSS, first PSS) in KiB.
#[derive(Default, Debug)]
struct MonMem {
    rss_max: u64,
    pss_max: u64,
    pss_first: u64,
    samples: usize,
    /// The monitor's user and system CPU time at the last sample, in clock ticks.
    cpu_ticks: u64,
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
}

/// `run -d` .. `wait` of a container printing `bytes`; returns the time and, when `mon` is
/// given, berth monitor memory sampled every 50 ms meanwhile.
fn writer(s: &Side, name: &str, bytes: u64, to_null: bool, log_opts: &[&str], mon: Option<&Berthd>) -> Result<(Duration, MonMem), String> {
    let redirect = if to_null { " > /dev/null" } else { "" };
    let script = format!("yes {LINE} | head -c {bytes}{redirect}");
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(log_opts);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let t = Instant::now();
    check((s.docker)(&args))?;
    let mut waiter = (s.docker)(&["wait", name]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    let mut mem = MonMem::default();
    loop {
        if waiter.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if let Some(b) = mon {
            for p in b.monitors() {
                let (rss, pss) = (kib(p, "VmRSS:", "status"), kib(p, "Pss:", "smaps_rollup"));
                if pss > 0 {
                    mem.rss_max = mem.rss_max.max(rss);
                    mem.pss_max = mem.pss_max.max(pss);
                    if mem.samples == 0 {
                        mem.pss_first = pss;
                    }
                    mem.cpu_ticks = cpu_ticks(p);
                    mem.samples += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = t.elapsed();
    let mut code = String::new();
    waiter.stdout.take().map(|mut o| o.read_to_string(&mut code));
    if code.trim() != "0" {
        return Err(format!("{}: {name} exited {}", s.name, code.trim()));
    }
    Ok((d, mem))
}

/// GET /containers/{name}/logs?stdout=1&tail=100, read to the end.
fn tail_api(sock: &Path, name: &str) -> Result<(Duration, usize), String> {
    let t = Instant::now();
    let mut c = UnixStream::connect(sock).map_err(|e| e.to_string())?;
    let req = format!("GET /v1.41/containers/{name}/logs?stdout=1&stderr=1&tail=100 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    c.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok((t.elapsed(), out.len()))
}

fn measure(s: &Side, a: &Args, mon: Option<&Berthd>, mem: &mut MonMem) -> Result<Row, String> {
    let mut r = Row::default();
    let rotate = ["--log-opt", "max-size=20m", "--log-opt", "max-file=5"];
    // Warm the page cache and the image.
    writer(s, "bench-warm", 10_000_000, false, &rotate, None)?;
    (r.devnull, _) = writer(s, "bench-null", a.size, true, &rotate, None)?;
    eprintln!("{}: {} bytes to /dev/null in {:.2?}", s.name, a.size, r.devnull);
    let m;
    (r.json, m) = writer(s, "bench-json", a.size, false, &rotate, mon)?;
    eprintln!("{}: {} bytes to json-file in {:.2?} {m:?}", s.name, a.size, r.json);
    if mon.is_some() {
        *mem = m;
    }
    // One big file to tail.
    writer(s, "bench-tail", a.tail_log_output, false, &["--log-opt", "max-size=100g", "--log-opt", "max-file=1"], None)?;
    let path = check((s.docker)(&["inspect", "-f", "{{.LogPath}}", "bench-tail"]))?;
    r.tail_log_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut cli = Vec::new();
    let mut api = Vec::new();
    for _ in 0..a.iterations {
        let t = Instant::now();
        let out = check((s.docker)(&["logs", "--tail", "100", "bench-tail"]))?;
        cli.push(t.elapsed());
        if out.lines().count() != 100 {
            return Err(format!("{}: logs --tail 100 gave {} lines", s.name, out.lines().count()));
        }
        api.push(tail_api(s.sock, "bench-tail")?.0);
    }
    (r.tail_cli, r.tail_api) = (median(cli), median(api));
    let _ = (s.docker)(&["rm", "-f", "bench-warm", "bench-null", "bench-json", "bench-tail"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    Ok(r)
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

fn main() -> ExitCode {
    let a = Args::parse();
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-logs-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    let tools = HostTools::find()?;
    let runc = find_exe("runc").ok_or("runc not found")?;
    let mut dockerd = Daemon::new(&tools, &runc, "overlay2");
    dockerd.launch().map_err(|e| format!("dockerd: {e}"))?;
    let berthd = Berthd::start();
    let mut mem = MonMem::default();
    let result = (|| -> Result<(Row, Row), String> {
        let dk = Side { name: "docker", docker: Box::new(|args: &[&str]| dockerd.docker_cmd(args)), sock: &dockerd.sock };
        let bt = Side { name: "berth", docker: Box::new(|args: &[&str]| berthd.docker_cmd(args)), sock: &berthd.socket };
        import_busybox(&*dk.docker)?;
        import_busybox(&*bt.docker)?;
        let d = if a.berth_only { Row::default() } else { measure(&dk, a, None, &mut mem)? };
        let b = measure(&bt, a, Some(&berthd), &mut mem)?;
        Ok((d, b))
    })();
    report_problems(&dockerd.teardown());
    let leaks = berthd.leaks();
    drop(berthd);
    let (dk, bt) = result?;
    let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1e3);
    let x = |b: Duration, d: Duration| format!("{:.3}x", b.as_secs_f64() / d.as_secs_f64().max(1e-9));
    let gb = a.size as f64 / 1e9;
    println!("{:<52} {:>12} {:>12} {:>12}", "operation", "docker", "berth", "berth/docker");
    println!("{:<52} {:>12} {:>12} {:>12}", format!("{gb} GB stdout to /dev/null (run -d .. wait)"), ms(dk.devnull), ms(bt.devnull), x(bt.devnull, dk.devnull));
    println!("{:<52} {:>12} {:>12} {:>12}", format!("{gb} GB stdout to json-file, 20m x 5"), ms(dk.json), ms(bt.json), x(bt.json, dk.json));
    println!("{:<52} {:>12} {:>12}", "  json-file / dev/null", x(dk.json, dk.devnull), x(bt.json, bt.devnull));
    let tail_mb = format!("{:.0} MB", bt.tail_log_bytes as f64 / 1e6);
    println!("{:<52} {:>12} {:>12} {:>12}", format!("logs --tail 100 of a {tail_mb} log, CLI (median {})", a.iterations), ms(dk.tail_cli), ms(bt.tail_cli), x(bt.tail_cli, dk.tail_cli));
    println!("{:<52} {:>12} {:>12} {:>12}", "  the API request alone", ms(dk.tail_api), ms(bt.tail_api), x(bt.tail_api, dk.tail_api));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    println!(
        "berth-monitor while writing: RSS max {} KiB, PSS first {} KiB, max {} KiB ({} samples); CPU {:.2}s",
        mem.rss_max,
        mem.pss_first,
        mem.pss_max,
        mem.samples,
        mem.cpu_ticks as f64 / hz
    );
    if !leaks.is_empty() {
        return Err(format!("berthd left: {leaks:?}"));
    }
    Ok(())
}
