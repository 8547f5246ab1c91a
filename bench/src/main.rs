//! berth-bench: container lifecycle cost of berth-runc, crun and runc, side
//! by side in one run.
//!
//! Each cycle is `create` (with --pid-file) → pidfd_open(init) → `start` →
//! poll the pidfd until exit → `delete`, of `true` in the shared busybox
//! bundle, with the same config.json for every runtime. Runtimes are
//! interleaved per iteration so drifting machine noise hits all alike.
//! With `--docker-spec`, the config is the one berthd writes for a Docker
//! container (seccomp profile, masked paths, /etc binds: what berthd runs).

mod cycle;
mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use berth_e2e::{
    find_in_path, hide_unified_cgroup2, target_dir, try_runtime_bin, unified_cgroup2_hybrid, Bundle,
};
use cycle::{reap_strays, Runtime};
use stats::RuntimeResult;

#[derive(Parser)]
#[command(about = "create+start+wait+delete of `true`: berth-runc vs crun vs runc")]
struct Args {
    /// Measured iterations per runtime.
    #[arg(short = 'n', long, default_value_t = 200)]
    iterations: usize,
    /// Unmeasured iterations per runtime first (also checks each runtime works).
    #[arg(short = 'w', long, default_value_t = 10)]
    warmup: usize,
    /// Comma-separated runtimes, each NAME or NAME=PATH. berth-runc is looked
    /// up in the target dir ($BERTH_RUNC overrides), others on $PATH.
    #[arg(long, value_delimiter = ',', default_value = "berth-runc,crun,runc")]
    runtimes: Vec<String>,
    /// Print results as JSON (with raw samples) instead of a table.
    #[arg(long)]
    json: bool,
    /// Use the config.json berthd writes for `docker run --network none busybox true`
    /// (Docker's seccomp profile, masked/read-only paths, /etc binds, no cgroup namespace on
    /// a v1 host) over a private rootfs copy, instead of the small runc-`spec`-like default.
    #[arg(long)]
    docker_spec: bool,
}

/// berthd's spec for `docker run --network none busybox true` on this (hybrid v1) host,
/// captured from a running berthd: instance paths made relative (`rootfs`, the /etc files,
/// rewritten below), no cgroupsPath (each runtime's default), ociVersion 1.1.0 for crun.
const DOCKER_CONFIG: &str = include_str!("docker-config.json");

/// A bundle with [`DOCKER_CONFIG`]: a private rootfs (the runtimes create the /etc bind
/// targets in it) and the files berthd would bind on /etc/{hostname,hosts,resolv.conf}.
fn docker_bundle() -> Bundle {
    let mut bundle = Bundle::with_private_rootfs();
    let dir = bundle.path().to_path_buf();
    let mut config: serde_json::Value = serde_json::from_str(DOCKER_CONFIG).expect("docker-config.json");
    for m in config["mounts"].as_array_mut().expect("mounts") {
        if m["type"] == "bind" {
            let name = m["source"].as_str().expect("bind source").to_string();
            let file = dir.join(&name);
            let text = match name.as_str() {
                "hostname" => "c4bb6c100610\n",
                "hosts" => "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                _ => "nameserver 127.0.0.53\n",
            };
            std::fs::write(&file, text).expect("writing /etc file for the docker spec");
            m["source"] = file.to_str().expect("bundle path is UTF-8").into();
        }
    }
    *bundle.config_mut() = config;
    bundle.write();
    bundle
}

/// A workspace binary: `$BERTH_RUNC`-style override, else the release build
/// (scripts/bench builds it; a newer debug build must not win here), else
/// whatever build exists, with a warning.
fn workspace_bin(name: &str) -> Option<PathBuf> {
    let var = name.to_ascii_uppercase().replace('-', "_");
    let release = target_dir().join("release").join(name);
    if std::env::var_os(&var).is_none() && release.is_file() {
        return Some(release);
    }
    let bin = try_runtime_bin(name)?;
    if std::env::var_os(&var).is_none() {
        eprintln!(
            "warning: measuring a non-release build of {name}: {}",
            bin.display()
        );
    }
    Some(bin)
}

fn main() -> ExitCode {
    // First, while single-threaded: unshare(CLONE_NEWNS) needs that.
    let hid_unified = unified_cgroup2_hybrid();
    if hid_unified {
        // crun refuses hybrid cgroups (v1 controllers + a cgroup2 mount at
        // /sys/fs/cgroup/unified). Hide the mount for the whole bench rather
        // than per crun call: identical conditions for every runtime and no
        // extra per-call cost charged to crun.
        if let Err(e) = hide_unified_cgroup2() {
            eprintln!("berth-bench: cannot hide /sys/fs/cgroup/unified (crun will fail): {e}");
        }
    }
    let args = Args::parse();
    // Orphaned container inits reparent to us, so we can reap them.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let mut skipped = Vec::new();
    let mut runtimes = Vec::new();
    for spec in &args.runtimes {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) => (n.to_string(), Some(PathBuf::from(p))),
            None => (spec.clone(), None),
        };
        let bin = path
            .filter(|p| p.is_file())
            .or_else(|| match name.as_str() {
                "berth-runc" => workspace_bin(&name),
                _ => find_in_path(&name),
            });
        match bin {
            None => {
                let hint = if name.starts_with("berth") {
                    format!(" (cargo build --release -p {name})")
                } else {
                    String::new()
                };
                eprintln!("skipping {name}: not found{hint}");
                skipped.push((name, "not found".to_string()));
            }
            Some(bin) => match Runtime::new(name.clone(), bin) {
                Ok(rt) => runtimes.push(rt),
                Err(e) => {
                    eprintln!("skipping {name}: {e}");
                    skipped.push((name, e.to_string()));
                }
            },
        }
    }
    if runtimes.is_empty() {
        eprintln!("berth-bench: no runtime to measure");
        return ExitCode::FAILURE;
    }

    let bundle = if args.docker_spec {
        docker_bundle()
    } else {
        let mut bundle = Bundle::new();
        bundle.set_args(&["true"]);
        // Debian 12's crun 1.8.1 rejects ociVersion 1.2.0; the config is valid
        // 1.1, and every runtime gets this same file.
        bundle.config_mut()["ociVersion"] = "1.1.0".into();
        bundle.write();
        bundle
    };

    let mut results: Vec<RuntimeResult> = runtimes
        .iter()
        .map(|rt| RuntimeResult {
            name: rt.name.clone(),
            bin: rt.bin.display().to_string(),
            version: rt.version(),
            samples: Vec::with_capacity(args.iterations),
            error: None,
        })
        .collect();
    if !args.json {
        println!(
            "berth-bench: create+start+wait+delete of `true`{}, {} iterations (+{} warmup), interleaved{}",
            if args.docker_spec { " (berthd's Docker spec)" } else { "" },
            args.iterations,
            args.warmup,
            if hid_unified { "; private mount ns without /sys/fs/cgroup/unified" } else { "" }
        );
    }

    let mut err = tempfile::tempfile().expect("temp file for runtime stderr");
    let k = runtimes.len();
    for i in 0..args.warmup + args.iterations {
        let measured = i >= args.warmup;
        // Rotate who goes first, so no runtime always follows the same one.
        for j in 0..k {
            let idx = (i + j) % k;
            let (rt, res) = (&runtimes[idx], &mut results[idx]);
            if res.error.is_some() {
                continue;
            }
            let id = format!("bench-{i}");
            match rt.cycle(bundle.path(), &id, &mut err) {
                Ok(p) if measured => res.samples.push(p),
                Ok(_) => {}
                Err(e) => {
                    let when = if measured {
                        format!("iteration {}", i - args.warmup)
                    } else {
                        format!("warmup {i}")
                    };
                    eprintln!("{}: dropped at {when}: {e}", rt.name);
                    res.error = Some(format!("{when}: {e}"));
                }
            }
            reap_strays();
        }
        if !args.json && (i + 1) % 50 == 0 {
            eprint!(".");
            let _ = std::io::stderr().flush();
        }
    }
    if !args.json && args.warmup + args.iterations >= 50 {
        eprintln!();
    }

    if args.json {
        let v = stats::to_json(&results, args.iterations, args.warmup, &skipped);
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
    } else {
        stats::print_table(&results);
    }
    if results.iter().all(|r| r.samples.is_empty()) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
