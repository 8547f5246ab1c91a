//! berthd: owns Berth's state and serves the Docker Engine API on a unix socket. Containers
//! run under their own monitors and keep running when berthd stops or is killed.

mod config;
mod tls;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;

use config::{Flags, Listen, Settings};

fn log(level: &str, msg: &str) {
    let now = berth_engine::system::now_rfc3339();
    let _ = writeln!(std::io::stderr(), "time=\"{now}\" level={level} msg=\"{msg}\"");
}

/// Holds the pid file locked for the daemon's lifetime: a second daemon on the same file is
/// refused instead of sharing the state.
fn lock_pidfile(path: &Path) -> Result<std::fs::File> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).with_context(|| format!("open {}", path.display()))?;
    // SAFETY: flock on an open descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let other = std::fs::read_to_string(path).unwrap_or_default();
        bail!("pid file found, ensure berthd is not running or delete {} (held by pid {})", path.display(), other.trim());
    }
    f.set_len(0)?;
    write!(f, "{}", std::process::id())?;
    Ok(f)
}

fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.split(':');
        (parts.next()? == name).then(|| parts.nth(1)?.parse().ok())?
    })
}

fn bind_socket(path: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove stale socket {}", path.display())),
    }
    let l = tokio::net::UnixListener::bind(path).with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).with_context(|| format!("chmod {}", path.display()))?;
    let gname = group.unwrap_or("berth");
    match group_id(gname) {
        Some(gid) => std::os::unix::fs::chown(path, Some(0), Some(gid)).with_context(|| format!("chown {} to group {gname}", path.display()))?,
        None if group.is_some() => bail!("group {gname} not found"),
        None => {}
    }
    Ok(l)
}

fn monitor_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_MONITOR") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe().context("locate berthd's binary")?;
    let p = exe.with_file_name("berth-monitor");
    if !p.exists() {
        bail!("berth-monitor not found next to berthd ({}); set BERTH_MONITOR", p.display());
    }
    Ok(p)
}

/// berth-init, built by build.rs.
const INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

/// Installs the embedded init under the exec root (rewritten only when it differs, through a
/// temp file and rename so that a running container never sees a half-written file).
fn install_init(exec_root: &Path) -> Result<PathBuf> {
    let p = exec_root.join("berth-init");
    if std::fs::read(&p).is_ok_and(|b| b == INIT) {
        return Ok(p);
    }
    std::fs::create_dir_all(exec_root).with_context(|| format!("create {}", exec_root.display()))?;
    let tmp = exec_root.join(".berth-init.tmp");
    std::fs::write(&tmp, INIT).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &p).with_context(|| format!("install {}", p.display()))?;
    Ok(p)
}

fn main() -> Result<()> {
    let settings = Settings::load(Flags::parse())?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).max_blocking_threads(64).enable_all().build()?;
    rt.block_on(run(settings))
}

async fn run(s: Settings) -> Result<()> {
    let _pid = lock_pidfile(&s.pidfile)?;
    let mut cfg = berth_engine::EngineConfig::new(s.data_root.clone(), s.exec_root.clone(), monitor_path()?);
    cfg.init_bin = Some(match &s.init_path {
        Some(p) => p.clone(),
        None => install_init(&s.exec_root)?,
    });
    cfg.default_pids_limit = s.default_pids_limit;
    cfg.default_shm_size = s.default_shm_size;
    cfg.cgroup_parent = s.cgroup_parent.clone();
    cfg.systemd_cgroup = s.systemd_cgroup;
    cfg.debug = s.debug;
    cfg.log_driver = s.log_driver.clone();
    cfg.log_opts = s.log_opts.clone();
    cfg.bridge = s.bridge.clone();
    cfg.insecure_registries = s.insecure_registries.clone();
    cfg.registry_mirrors = s.registry_mirrors.clone();
    cfg.resolv_conf = s.resolv_conf.clone();
    let handle = tokio::runtime::Handle::current();
    let engine = tokio::task::spawn_blocking(move || berth_engine::Engine::open(cfg, handle))
        .await?
        .with_context(|| format!("open the engine under {}", s.data_root.display()))?;
    let engine_for_shutdown = engine.clone();
    let router = berth_server::app(engine);
    let mut servers = tokio::task::JoinSet::new();
    for l in &s.listen {
        match l {
            Listen::Unix(path) => {
                let listener = bind_socket(path, s.group.as_deref())?;
                let router = router.clone();
                servers.spawn(async move {
                    loop {
                        let (stream, _) = listener.accept().await?;
                        tokio::spawn(berth_server::serve_connection(stream, router.clone()));
                    }
                });
                log("info", &format!("API listen on {}", path.display()));
            }
            Listen::Tls { addr, ca, cert, key } => {
                let acceptor = tls::acceptor(&tls::TlsFiles { ca, cert, key })?;
                let listener = tokio::net::TcpListener::bind(addr.as_str()).await.with_context(|| format!("listen on tcp://{addr}"))?;
                servers.spawn(tls::serve(listener, acceptor, router.clone()));
                log("info", &format!("API listen on tcp://{addr} (TLS, client certificates required)"));
            }
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result: Result<()> = tokio::select! {
        r = servers.join_next() => match r {
            Some(Ok(Err(e))) => Err(anyhow::Error::from(e).context("serve the API")),
            _ => Ok(()),
        },
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
    };
    // Containers keep running under their monitors (with their network); only the daemon's
    // own files go, and the bridge when no container uses it.
    let e = engine_for_shutdown;
    let _ = tokio::task::spawn_blocking(move || e.shutdown()).await;
    for l in &s.listen {
        if let Listen::Unix(p) = l {
            let _ = std::fs::remove_file(p);
        }
    }
    let _ = std::fs::remove_file(&s.pidfile);
    log("info", "daemon shut down; containers keep running");
    result
}
