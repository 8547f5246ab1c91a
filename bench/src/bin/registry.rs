//! berth-registry-bench: `docker push` and `docker pull` of a ~200 MB image in 4 layers of
//! random data (so it does not compress away) through a local docker-registry, berthd against
//! a private real dockerd, both driven by the same docker CLI. Each iteration starts from a
//! freshly loaded image (uncompressed layers: both engines gzip them for the push) and a fresh
//! registry; both engines then pull the same repository (the one dockerd pushed). Medians of
//! wall time, and the daemons' CPU time (their whole process trees) per MB pulled.
//!
//! Needs root, docker-registry, dockerd/containerd/runc; builds nothing: run after
//! `cargo build --release -p berthd -p berth-monitor -p berth-bench`.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::{find_exe, report_problems, Daemon, HostTools};
use berth_e2e::registry::{self, Registry};
use clap::Parser;

#[derive(Parser)]
#[command(about = "push/pull of a 4-layer random image through a local registry: Berth vs Docker")]
struct Args {
    #[arg(short = 'n', long, default_value_t = 3)]
    iterations: usize,
    /// Size of each of the 4 layers, in MiB.
    #[arg(long, default_value_t = 50)]
    layer_mib: usize,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-registry-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sh(c: &mut Command) -> Result<String, String> {
    let o = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!("{c:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn sha256(p: &Path) -> Result<String, String> {
    let out = sh(Command::new("sha256sum").arg(p))?;
    Ok(format!("sha256:{}", out.split_whitespace().next().unwrap_or("")))
}

/// A `docker save`-format archive: 4 layers, each one file of random data.
fn make_archive(dir: &Path, layer_mib: usize) -> Result<std::path::PathBuf, String> {
    let ar = dir.join("archive");
    std::fs::create_dir_all(&ar).map_err(|e| e.to_string())?;
    let mut diff_ids = Vec::new();
    let mut layers = Vec::new();
    for i in 0..4 {
        let root = dir.join(format!("layer{i}"));
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        sh(Command::new("dd")
            .arg("if=/dev/urandom")
            .arg(format!("of={}", root.join(format!("data{i}")).display()))
            .arg("bs=1M")
            .arg(format!("count={layer_mib}"))
            .arg("status=none"))?;
        let tar = ar.join(format!("layer{i}.tar"));
        sh(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."))?;
        std::fs::remove_dir_all(&root).map_err(|e| e.to_string())?;
        diff_ids.push(sha256(&tar)?);
        layers.push(format!("layer{i}.tar"));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/data0"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": (0..4).map(|i| serde_json::json!({"created": "2026-01-01T00:00:00Z", "created_by": format!("layer {i}")})).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
    let cfg_path = ar.join("config.json");
    std::fs::write(&cfg_path, &config_bytes).map_err(|e| e.to_string())?;
    let manifest = serde_json::json!([{ "Config": "config.json", "RepoTags": ["bench/random:1"], "Layers": layers }]);
    std::fs::write(ar.join("manifest.json"), serde_json::to_vec(&manifest).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let out = dir.join("image.tar");
    sh(Command::new("tar").arg("-C").arg(&ar).arg("-cf").arg(&out).arg("."))?;
    std::fs::remove_dir_all(&ar).map_err(|e| e.to_string())?;
    Ok(out)
}

/// CPU time (user+sys) of `pid` and all its descendants, from /proc.
fn tree_cpu(pid: u32) -> Duration {
    let tick = 100.0; // USER_HZ on Linux
    let mut procs = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid: u32 = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let ticks: f64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<f64>().ok()).sum();
        procs.push((p, ppid, ticks));
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(procs.iter().filter(|(_, pp, _)| *pp == parent).map(|(p, _, _)| *p));
        i += 1;
    }
    let ticks: f64 = procs.iter().filter(|(p, _, _)| tree.contains(p)).map(|(_, _, t)| t).sum();
    Duration::from_secs_f64(ticks / tick)
}

/// Runs the docker CLI against one engine.
type DockerCli<'a> = Box<dyn Fn(&[&str]) -> Result<String, String> + 'a>;

struct Side<'a> {
    name: &'static str,
    docker: DockerCli<'a>,
    pid: u32,
    push: Vec<Duration>,
    pull: Vec<Duration>,
    pull_cpu: Vec<Duration>,
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn run(args: &Args) -> Result<(), String> {
    if !registry::available() {
        return Err(format!("{} not installed (apt-get install docker-registry)", registry::REGISTRY_BIN));
    }
    let tools = HostTools::find()?;
    let runc = find_exe("runc").ok_or("runc not found")?;
    let mut dockerd = Daemon::new(&tools, &runc, "overlay2");
    if let Err(e) = dockerd.launch() {
        report_problems(&dockerd.teardown());
        return Err(format!("dockerd did not start: {e}"));
    }
    let result = measure(args, &dockerd);
    report_problems(&dockerd.teardown());
    result
}

fn measure(args: &Args, dockerd: &Daemon) -> Result<(), String> {
    let berthd = Berthd::start();
    let work = tempfile::Builder::new().prefix("berth-registry-bench").tempdir().map_err(|e| e.to_string())?;
    let archive = make_archive(work.path(), args.layer_mib)?;
    let archive = archive.to_str().ok_or("archive path")?.to_owned();
    let total_mb = (4 * args.layer_mib) as f64 * 1.048576;
    let mut sides = [
        Side {
            name: "docker",
            docker: Box::new(|a: &[&str]| sh(&mut dockerd.docker_cmd(a))),
            pid: dockerd.pid().ok_or("dockerd pid")?,
            push: vec![],
            pull: vec![],
            pull_cpu: vec![],
        },
        Side {
            name: "berth",
            docker: Box::new(|a: &[&str]| sh(&mut berthd.docker_cmd(a))),
            pid: berthd.pid(),
            push: vec![],
            pull: vec![],
            pull_cpu: vec![],
        },
    ];
    for i in 0..args.iterations {
        let reg = Registry::start();
        let shared = format!("{}/bench/random:docker", reg.addr);
        // Docker pushes first: its repository is the one both engines pull.
        for s in sides.iter_mut() {
            let target = format!("{}/bench/random:{}", reg.addr, s.name);
            (s.docker)(&["load", "-i", &archive])?;
            (s.docker)(&["tag", "bench/random:1", &target])?;
            let t = Instant::now();
            (s.docker)(&["push", &target])?;
            s.push.push(t.elapsed());
            (s.docker)(&["rmi", "bench/random:1", &target])?;
            let _ = Command::new("sync").status();
        }
        for s in sides.iter_mut() {
            let cpu0 = tree_cpu(s.pid);
            let t = Instant::now();
            (s.docker)(&["pull", &shared])?;
            s.pull.push(t.elapsed());
            s.pull_cpu.push(tree_cpu(s.pid).saturating_sub(cpu0));
            (s.docker)(&["rmi", &shared])?;
            (s.docker)(&["image", "prune", "-af"])?;
        }
        eprintln!(
            "iteration {}: push docker {:.2}s berth {:.2}s, pull docker {:.2}s berth {:.2}s",
            i + 1,
            sides[0].push[i].as_secs_f64(),
            sides[1].push[i].as_secs_f64(),
            sides[0].pull[i].as_secs_f64(),
            sides[1].pull[i].as_secs_f64()
        );
    }
    let (d, b) = (&sides[0], &sides[1]);
    println!("{} MB image, 4 random layers, {} iterations, medians", total_mb.round(), args.iterations);
    println!("{:<28} {:>10} {:>10} {:>8}", "", "docker", "berth", "ratio");
    let row = |what: &str, dv: Duration, bv: Duration| {
        println!("{what:<28} {:>9.3}s {:>9.3}s {:>7.2}x", dv.as_secs_f64(), bv.as_secs_f64(), bv.as_secs_f64() / dv.as_secs_f64().max(1e-9));
    };
    row("push (wall)", median(&d.push), median(&b.push));
    row("pull (wall)", median(&d.pull), median(&b.pull));
    row("pull daemon CPU", median(&d.pull_cpu), median(&b.pull_cpu));
    let per_mb = |c: Duration| c.as_secs_f64() * 1000.0 / total_mb;
    println!(
        "{:<28} {:>8.2}ms {:>8.2}ms {:>7.2}x",
        "pull daemon CPU per MB",
        per_mb(median(&d.pull_cpu)),
        per_mb(median(&b.pull_cpu)),
        per_mb(median(&b.pull_cpu)) / per_mb(median(&d.pull_cpu)).max(1e-9)
    );
    Ok(())
}
