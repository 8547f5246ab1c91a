//! berth-cli-bench: the berth CLI against the docker CLI, both driving the same private berthd,
//! so the difference is the client alone: start-up (`--version`, no daemon), one request
//! (`version`), a listing (`ps -a` with N containers) and a whole `run --rm busybox true`.
//! Medians of wall time, plus the CPU time (user+sys) the client process itself used.
//!
//! Needs root (berthd) and the docker CLI; builds nothing: run after
//! `cargo build --release -p berth -p berthd -p berth-monitor`.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::berthd::Berthd;
use clap::Parser;

#[derive(Parser)]
#[command(about = "berth CLI vs docker CLI on the same berthd: start-up, version, ps -a, run --rm")]
struct Args {
    #[arg(short = 'n', long, default_value_t = 30)]
    iterations: usize,
    /// Containers present for `ps -a`.
    #[arg(long, default_value_t = 200)]
    list_size: usize,
    /// Iterations of `run --rm busybox true` (slower).
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

/// CPU time (user+sys) all waited-for children have used so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// (wall, CPU) time.
type Timing = (Duration, Duration);

/// Wall and CPU time of one run of `c`.
fn once(mut c: Command) -> Result<Timing, String> {
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let cpu0 = children_cpu();
    let t = Instant::now();
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    let wall = t.elapsed();
    if !out.status.success() {
        return Err(format!("{c:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok((wall, children_cpu().saturating_sub(cpu0)))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Medians (wall, CPU) of `n` runs each of `a()` and `b()`, interleaved so that a drift in
/// the daemon (or the machine) weighs on both sides alike.
fn measure_pair(n: usize, a: &dyn Fn() -> Command, b: &dyn Fn() -> Command) -> Result<(Timing, Timing), String> {
    let (mut aw, mut ac, mut bw, mut bc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (w, c) = once(a())?;
        aw.push(w);
        ac.push(c);
        let (w, c) = once(b())?;
        bw.push(w);
        bc.push(c);
    }
    Ok(((median(aw), median(ac)), (median(bw), median(bc))))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> ExitCode {
    let a = Args::parse();
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 || berth_e2e::find_in_path("docker").is_none() {
        eprintln!("berth-cli-bench: needs root and the docker CLI");
        return ExitCode::FAILURE;
    }
    let berth = berth_e2e::runtime_bin("berth");
    let d = Berthd::start();
    d.import_busybox("busybox:latest");
    let b = |args: &[&str]| {
        let mut c = Command::new(&berth);
        c.arg("-H").arg(d.host()).args(args);
        c
    };
    let k = |args: &[&str]| d.docker_cmd(args);
    eprintln!("creating {} containers for ps -a ...", a.list_size);
    for i in 0..a.list_size {
        let name = format!("bench-{i}");
        if let Err(e) = once(b(&["create", "--name", &name, "--network", "none", "busybox", "true"])) {
            eprintln!("create failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    let n = a.iterations.max(1);
    type Case<'a> = (&'a str, usize, Box<dyn Fn() -> Command + 'a>, Box<dyn Fn() -> Command + 'a>);
    let cases: Vec<Case> = vec![
        ("spawn floor (/bin/true)", n, Box::new(|| Command::new("/bin/true")), Box::new(|| Command::new("/bin/true"))),
        ("--version (start-up, no daemon)", n, Box::new(|| b(&["--version"])), Box::new(|| k(&["--version"]))),
        ("version (one request)", n, Box::new(|| b(&["version"])), Box::new(|| k(&["version"]))),
        ("ps -a (list)", n, Box::new(|| b(&["ps", "-a"])), Box::new(|| k(&["ps", "-a"]))),
        ("run --rm busybox true", a.runs.max(1), Box::new(|| b(&["run", "--rm", "busybox", "true"])), Box::new(|| k(&["run", "--rm", "busybox", "true"]))),
    ];
    println!("{:<34} {:>12} {:>12} {:>7}   {:>10} {:>10}", "case", "berth", "docker", "ratio", "berth cpu", "docker cpu");
    for (name, n, bc, kc) in &cases {
        // One warm-up each (page cache, docker's config dir).
        let _ = measure_pair(1, bc.as_ref(), kc.as_ref());
        match measure_pair(*n, bc.as_ref(), kc.as_ref()) {
            Ok(((bw, bcpu), (kw, kcpu))) => println!(
                "{name:<34} {:>12} {:>12} {:>6.2}x   {:>10} {:>10}",
                ms(bw),
                ms(kw),
                bw.as_secs_f64() / kw.as_secs_f64().max(1e-9),
                ms(bcpu),
                ms(kcpu)
            ),
            Err(e) => println!("{name:<34} failed: {e}"),
        }
    }
    ExitCode::SUCCESS
}
