//! berth-image-bench: Berth's image store (`berth_image::store::ImageStore`)
//! vs the real Docker engine, side by side in one run.
//!
//! A ~200 MB Docker-format archive (4 layers of ~50 MB incompressible data;
//! the first also holds the busybox rootfs, so `true` runs) is generated once.
//! Then, per iteration, each side gets a fresh store:
//! - load: `docker load -i` into a private dockerd vs `ImageStore::load` into a
//!   fresh data root;
//! - first start: `docker run --rm --network none IMG true` vs Berth's
//!   `ImageStore::create_rw` + snapshot mount (no runtime run: only the
//!   storage side of a first start);
//! - save: `docker save -o` vs `ImageStore::save`.
//!
//! Then, once, disk use (`du`: allocated blocks, each inode once) of the loaded
//! image and of CONTAINERS containers created from it (`docker create` vs
//! `ImageStore::create_rw`), measured on each side's whole data root.
//!
//! Docker's side is reset between iterations with `docker rmi -f` + `docker
//! image prune -f`. Before each timed operation, either side, the host is
//! `sync`ed: otherwise one side's deferred writes and discards of deleted data
//! (both sides' data roots share a filesystem) land in the other's timing.
//! Needs root, dockerd, containerd and the docker CLI (`--berth-only`: none of them).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;

use berth_e2e::dockerd::{find_exe, report_problems, Daemon, HostTools};
use berth_image::store::ImageStore;

const IMAGE: &str = "berth-bench/big:latest";
const LAYERS: usize = 4;
const LAYER_BYTES: usize = 50 << 20;
/// Time limit for one docker CLI call here (loads/saves of 200 MB).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(300);
/// Containers created from the image for the disk-use lines.
const CONTAINERS: usize = 30;

#[derive(Parser)]
#[command(about = "image load / first start / save: Berth's image store vs Docker")]
struct Args {
    /// Measured iterations per side.
    #[arg(short = 'n', long, default_value_t = 3)]
    iterations: usize,
    /// Only Berth's side: no dockerd (quick iterations while tuning the store).
    #[arg(long)]
    berth_only: bool,
    /// Use this archive (built there first if missing, and kept) instead of a fresh one.
    #[arg(long)]
    archive: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-image-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut daemon = if args.berth_only {
        None
    } else {
        let tools = HostTools::find()?;
        let runc = find_exe("runc").ok_or("runc not found")?;
        let mut daemon = Daemon::new(&tools, &runc, "overlay2");
        if let Err(e) = daemon.launch() {
            let tail = daemon.log_tail(30);
            report_problems(&daemon.teardown());
            return Err(format!("dockerd did not start: {e}\n{tail}"));
        }
        Some(daemon)
    };
    let work = tempfile::Builder::new()
        .prefix("berth-image-bench")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let archive = match &args.archive {
        Some(p) if p.exists() => p.clone(),
        Some(p) => {
            let built = build_archive(work.path())?;
            fs::copy(&built, p).map_err(|e| format!("{}: {e}", p.display()))?;
            p.clone()
        }
        None => build_archive(work.path())?,
    };
    let size = fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "archive: {} ({:.0} MB, {LAYERS} layers) built in {:.1?}",
        archive.display(),
        size as f64 / 1e6,
        t.elapsed()
    );

    let mut res = Results::default();
    let result = (|| -> Result<(), String> {
        for i in 0..args.iterations {
            if let Some(d) = &daemon {
                docker_iteration(d, &archive, work.path(), &mut res)?;
            }
            berth_iteration(&archive, &work.path().join(format!("berth-{i}")), &mut res)?;
            eprintln!("iteration {} done", i + 1);
        }
        if let Some(d) = &daemon {
            res.docker_disk = Some(docker_disk(d, &archive)?);
        }
        res.berth_disk = Some(berth_disk(&archive, &work.path().join("berth-disk"))?);
        Ok(())
    })();
    if let Some(d) = &mut daemon {
        report_problems(&d.teardown());
    }
    result?;
    res.print(args.iterations);
    Ok(())
}

/// Bytes a data root uses: after loading the image, and what the containers added.
#[derive(Clone, Copy)]
struct Disk {
    image: u64,
    containers: u64,
}

/// Bytes allocated under `path`, as `du` counts them: st_blocks, each inode once, symlinks
/// not followed.
fn du(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut todo = vec![path.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if seen.insert((m.dev(), m.ino())) {
            total += m.blocks() * 512;
        }
        if m.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                todo.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

fn docker_disk(d: &Daemon, archive: &Path) -> Result<Disk, String> {
    let data = d.dir.join("data");
    settle();
    let empty = du(&data);
    docker_ok(d, &["load", "-i", &archive.display().to_string()])?;
    settle();
    let loaded = du(&data);
    let mut ids = Vec::new();
    for _ in 0..CONTAINERS {
        let out = d.docker_t(
            &["create", "--network", "none", IMAGE, "true"],
            None,
            DOCKER_TIMEOUT,
        );
        if out.code != Some(0) {
            return Err(format!("docker create failed\n{out}"));
        }
        ids.push(out.stdout.trim().to_string());
    }
    settle();
    let created = du(&data);
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    docker_ok(d, &rm)?;
    docker_ok(d, &["rmi", "-f", IMAGE])?;
    docker_ok(d, &["image", "prune", "-f"])?;
    Ok(Disk {
        image: loaded.saturating_sub(empty),
        containers: created.saturating_sub(loaded),
    })
}

fn berth_disk(archive: &Path, root: &Path) -> Result<Disk, String> {
    let e = |e: berth_image::Error| e.to_string();
    let store = ImageStore::open(root).map_err(e)?;
    let empty = du(root);
    store
        .load(fs::File::open(archive).map_err(|e| e.to_string())?)
        .map_err(e)?;
    let loaded = du(root);
    for i in 0..CONTAINERS {
        store.create_rw(&format!("c{i}"), IMAGE).map_err(e)?;
    }
    let created = du(root);
    let snaps = store.snapshotter().root().to_path_buf();
    eprintln!(
        "berth disk: blobs {:.1} MB, layers {:.1} MB, {CONTAINERS} container snapshots {:.1} KB",
        du(&root.join("content")) as f64 / 1e6,
        du(&snaps.join("layers")) as f64 / 1e6,
        du(&snaps.join("containers")) as f64 / 1e3,
    );
    drop(store);
    let _ = fs::remove_dir_all(root);
    Ok(Disk {
        image: loaded.saturating_sub(empty),
        containers: created.saturating_sub(loaded),
    })
}

#[derive(Default)]
struct Results {
    docker_load: Vec<Duration>,
    docker_start: Vec<Duration>,
    docker_save: Vec<Duration>,
    berth_load: Vec<Duration>,
    berth_start: Vec<Duration>,
    berth_save: Vec<Duration>,
    docker_disk: Option<Disk>,
    berth_disk: Option<Disk>,
}

impl Results {
    fn print(&self, n: usize) {
        println!(
            "image bench: {IMAGE}, {LAYERS} x {} MB layers, median of {n}",
            LAYER_BYTES >> 20
        );
        println!(
            "{:<38} {:>10} {:>10} {:>13}",
            "operation", "docker", "berth", "berth/docker"
        );
        for (name, d, b) in [
            ("load", &self.docker_load, &self.berth_load),
            (
                "first start (berth: create_rw+mount)",
                &self.docker_start,
                &self.berth_start,
            ),
            ("save", &self.docker_save, &self.berth_save),
        ] {
            if d.is_empty() {
                println!(
                    "{name:<38} {:>10} {:>10}",
                    "-",
                    format!("{:.3?}", median(b))
                );
                continue;
            }
            let (d, b) = (median(d), median(b));
            println!(
                "{name:<38} {:>10} {:>10} {:>12.3}x",
                format!("{d:.3?}"),
                format!("{b:.3?}"),
                b.as_secs_f64() / d.as_secs_f64()
            );
        }
        println!("target: berth/docker <= 0.3x for load and save");
        let Some(b) = self.berth_disk else { return };
        let mb = |n: u64| format!("{:.1} MB", n as f64 / 1e6);
        let kb = |n: u64| format!("{:.1} KB", n as f64 / 1e3);
        println!(
            "{:<38} {:>10} {:>10} {:>13}",
            "disk use (du of the data root)", "docker", "berth", "berth/docker"
        );
        let per = CONTAINERS as u64;
        for (name, d, b, fmt) in [
            (
                "image loaded",
                self.docker_disk.map(|d| d.image),
                b.image,
                &mb as &dyn Fn(u64) -> String,
            ),
            (
                &format!("{CONTAINERS} containers created") as &str,
                self.docker_disk.map(|d| d.containers),
                b.containers,
                &mb,
            ),
            (
                "  per container",
                self.docker_disk.map(|d| d.containers / per),
                b.containers / per,
                &kb,
            ),
        ] {
            match d {
                Some(d) => println!(
                    "{name:<38} {:>10} {:>10} {:>12.3}x",
                    fmt(d),
                    fmt(b),
                    b as f64 / d.max(1) as f64
                ),
                None => println!("{name:<38} {:>10} {:>10}", "-", fmt(b)),
            }
        }
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// Flushes every filesystem, so what the previous operation left to write or discard is not
/// timed in the next one.
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn docker_ok(d: &Daemon, args: &[&str]) -> Result<Duration, String> {
    settle();
    let t = Instant::now();
    let out = d.docker_t(args, None, DOCKER_TIMEOUT);
    let elapsed = t.elapsed();
    if out.code != Some(0) {
        return Err(format!("docker failed\n{out}"));
    }
    Ok(elapsed)
}

fn docker_iteration(
    d: &Daemon,
    archive: &Path,
    work: &Path,
    res: &mut Results,
) -> Result<(), String> {
    res.docker_load.push(docker_ok(
        d,
        &["load", "-i", &archive.display().to_string()],
    )?);
    res.docker_start.push(docker_ok(
        d,
        &["run", "--rm", "--network", "none", IMAGE, "true"],
    )?);
    let out = work.join("docker-save.tar");
    res.docker_save.push(docker_ok(
        d,
        &["save", "-o", &out.display().to_string(), IMAGE],
    )?);
    let _ = fs::remove_file(&out);
    docker_ok(d, &["rmi", "-f", IMAGE])?;
    docker_ok(d, &["image", "prune", "-f"])?;
    Ok(())
}

fn berth_iteration(archive: &Path, root: &Path, res: &mut Results) -> Result<(), String> {
    let e = |e: berth_image::Error| e.to_string();
    let store = ImageStore::open(root).map_err(e)?;
    settle();
    let t = Instant::now();
    let file = fs::File::open(archive).map_err(|e| e.to_string())?;
    store.load(file).map_err(e)?;
    res.berth_load.push(t.elapsed());

    let target = root.join("mnt");
    fs::create_dir_all(&target).map_err(|e| e.to_string())?;
    settle();
    let t = Instant::now();
    store.create_rw("bench", IMAGE).map_err(e)?;
    let mounted = store.snapshotter().mount("bench", &target).map_err(e)?;
    res.berth_start.push(t.elapsed());
    if !target.join("bin/true").exists() && !target.join("bin/busybox").exists() {
        return Err("the mounted snapshot has no /bin/true".into());
    }
    drop(mounted);
    store.remove_rw("bench").map_err(e)?;

    let out = root.join("berth-save.tar");
    settle();
    let t = Instant::now();
    let file = fs::File::create(&out).map_err(|e| e.to_string())?;
    store.save(&[IMAGE.to_string()], file).map_err(e)?;
    res.berth_save.push(t.elapsed());
    drop(store);
    let _ = fs::remove_dir_all(root);
    Ok(())
}

/// Writes a Docker-format archive (`manifest.json`, config, `<id>/layer.tar`)
/// of LAYERS layers of LAYER_BYTES pseudo-random bytes each; the first layer
/// also holds the busybox rootfs.
fn build_archive(work: &Path) -> Result<PathBuf, String> {
    let stage = work.join("stage");
    let tree = work.join("archive");
    fs::create_dir_all(&tree).map_err(|e| e.to_string())?;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut diff_ids = Vec::new();
    let mut layer_paths = Vec::new();
    for i in 0..LAYERS {
        let _ = fs::remove_dir_all(&stage);
        if i == 0 {
            berth_e2e::copy_rootfs(&stage).map_err(|e| e.to_string())?;
        } else {
            fs::create_dir_all(&stage).map_err(|e| e.to_string())?;
        }
        fs::create_dir_all(stage.join("data")).map_err(|e| e.to_string())?;
        write_random(&stage.join(format!("data/layer{i}.bin")), &mut seed)?;
        let layer_tar = work.join("layer.tar");
        cmd(Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&stage)
            .arg("-cf")
            .arg(&layer_tar)
            .arg("."))?;
        let hex = sha256(&layer_tar)?;
        fs::create_dir_all(tree.join(&hex)).map_err(|e| e.to_string())?;
        fs::rename(&layer_tar, tree.join(&hex).join("layer.tar")).map_err(|e| e.to_string())?;
        diff_ids.push(format!("sha256:{hex}"));
        layer_paths.push(format!("{hex}/layer.tar"));
    }
    let _ = fs::remove_dir_all(&stage);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["true"],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": (0..LAYERS).map(|i| serde_json::json!({"created_by": format!("layer {i}")})).collect::<Vec<_>>(),
    });
    let config_path = tree.join("config.json");
    fs::write(&config_path, serde_json::to_vec(&config).unwrap()).map_err(|e| e.to_string())?;
    let config_hex = sha256(&config_path)?;
    fs::rename(&config_path, tree.join(format!("{config_hex}.json"))).map_err(|e| e.to_string())?;
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [IMAGE],
        "Layers": layer_paths,
    }]);
    fs::write(
        tree.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .map_err(|e| e.to_string())?;
    let archive = work.join("image.tar");
    cmd(Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&tree)
        .arg("-cf")
        .arg(&archive)
        .arg("."))?;
    fs::remove_dir_all(&tree).map_err(|e| e.to_string())?;
    Ok(archive)
}

/// LAYER_BYTES of xorshift64* output: fast and incompressible.
fn write_random(path: &Path, seed: &mut u64) -> Result<(), String> {
    let mut w =
        BufWriter::with_capacity(1 << 20, fs::File::create(path).map_err(|e| e.to_string())?);
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..LAYER_BYTES / buf.len() {
        for chunk in buf.chunks_exact_mut(8) {
            *seed ^= *seed >> 12;
            *seed ^= *seed << 25;
            *seed ^= *seed >> 27;
            chunk.copy_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        w.write_all(&buf).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())
}

fn cmd(c: &mut Command) -> Result<(), String> {
    let status = c.status().map_err(|e| format!("{c:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{c:?}: {status}"))
    }
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .filter(|h| h.len() == 64)
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum {}: {text}", path.display()))
}
