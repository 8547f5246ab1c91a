//! start, stop, kill, restart, pause/unpause, rm, rename, wait: each validates the state
//! machine's edge first, holds the container's operation lock, and persists the new state.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_api::container::WaitResponse;
use berth_api::event::Event;
use berth_monitor::MonitorConfig;
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::record::{MonitorRef, Record};
use crate::state::Status;
use crate::{lock, AttachRequest, Engine};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            _ => Err(Error::InvalidParameter(format!("invalid condition: \"{s}\""))),
        }
    }
}

/// "SIGTERM", "TERM", "15" -> 15.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::InvalidParameter(format!("Invalid signal: {s}")))
}

fn unlink(p: &Path) {
    let _ = std::fs::remove_file(p);
}

impl Engine {
    pub fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let id = self.resolve(name)?;
        let l = self.op_lock(&id);
        let _g = lock(&l);
        let rec = self.get(&id)?;
        match rec.state.status {
            Status::Running | Status::Paused => return Err(Error::NotModified("container already started".into())),
            Status::Removing | Status::Dead => {
                return Err(Error::Conflict(format!("cannot start container {}: container is marked for removal", rec.name)))
            }
            _ => {}
        }
        let res = self.start_locked(&rec);
        // Docker removes an --rm container whose start failed: a client waiting for its
        // removal (`run --rm`) must not wait forever.
        if res.is_err() && rec.host_config.auto_remove && !self.get(&id).is_ok_and(|r| r.state.status.is_live()) {
            let _ = self.finish_remove(&id, true);
        }
        res
    }

    /// Mounts the snapshot, writes the spec, spawns the monitor (which creates the container),
    /// hooks up waiting attach clients, then lets the process run.
    pub(crate) fn start_locked(self: &Arc<Self>, rec: &Record) -> Result<()> {
        let id = rec.id.as_str();
        let bundle = self.bundle_dir(id);
        let rootfs = bundle.join("rootfs");
        let mark = berth_runtime::timing::mark;
        mark("engine start: begin");
        self.clean_runtime_leftovers(id);
        std::fs::create_dir_all(&rootfs).map_err(|e| Error::io("create", &rootfs, e))?;
        mark("engine start: leftovers cleaned");
        // Torn down by its guard if anything below fails before the monitor runs.
        let net = self.prepare_network(rec)?;
        let rec = &match &net.shared_with {
            // Docker's container: mode takes the other container's hostname.
            Some(o) if o.config.hostname != rec.config.hostname => self.update(id, |r| {
                r.config.hostname = o.config.hostname.clone();
                Ok(r.clone())
            })?,
            _ => rec.clone(),
        };
        mark("engine start: network");
        let (link_hosts, link_env) = self.link_entries(rec)?;
        self.write_container_files(rec, net.ip, net.shared_with.as_ref(), net.embedded_dns, &link_hosts)?;
        mark("engine start: files");
        let mount = self.images.snapshotter().mount(id, &rootfs)?;
        mark("engine start: mounted");
        let linked;
        let spec_rec = if link_env.is_empty() {
            rec
        } else {
            let mut r = rec.clone();
            r.config.env.get_or_insert_with(Vec::new).extend(link_env);
            linked = r;
            &linked
        };
        let spec = match self.build_spec(spec_rec, &rootfs, net.net_ns.clone()) {
            Ok(s) => s,
            Err(e) => {
                let _ = mount.unmount();
                return Err(e);
            }
        };
        let cfg_path = bundle.join("config.json");
        if let Err(e) = spec.save(&cfg_path) {
            let _ = mount.unmount();
            return Err(Error::Internal(format!("write {}: {e}", cfg_path.display())));
        }
        mark("engine start: spec written");
        unlink(&berth_monitor::exit_path(&bundle));
        let (log_path, log) = match self.log_settings(rec) {
            Ok(Some((p, s))) => (Some(p), s),
            Ok(None) => (None, Default::default()),
            Err(e) => {
                let _ = mount.unmount();
                return Err(e);
            }
        };
        let mc = MonitorConfig {
            id: id.to_owned(),
            bundle: bundle.clone(),
            runtime_root: self.cfg.runtime_root(),
            log_path,
            log,
            tty: rec.config.tty,
            open_stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            unmount_rootfs: true,
            monitor_bin: self.cfg.monitor_bin.clone(),
            systemd_cgroup: self.cfg.systemd_cgroup,
            console_size: {
                let s = rec.host_config.console_size;
                (s[0] > 0 && s[1] > 0).then(|| (s[0].min(u16::MAX as u64) as u16, s[1].min(u16::MAX as u64) as u16))
            },
            exec: None,
        };
        let mon = match berth_monitor::spawn(&mc) {
            Ok(m) => m,
            Err(e) => {
                let _ = mount.unmount();
                return Err(self.start_failed(rec, e.to_string()));
            }
        };
        mark("engine start: monitor spawned, container created");
        // The monitor owns the mount from here: it unmounts it when the container ends, and
        // the exit handler tears the network down.
        let _ = mount.into_path();
        net.keep();
        let pending = lock(&self.pending_attach).remove(id).unwrap_or_default();
        for (req, tx) in pending {
            let _ = tx.send(berth_monitor::attach(&bundle, req.stdin, req.stdout, req.stderr).map_err(Error::from));
        }
        let started_at = berth_image::store::time::now_rfc3339();
        let monitor = MonitorRef { pid: mon.pid, start_time: mon.start_time };
        self.update(id, |r| {
            r.state.status.check(Status::Running)?;
            r.state.status = Status::Running;
            r.state.pid = mon.init_pid;
            r.state.exit_code = 0;
            r.state.oom_killed = false;
            r.state.error.clear();
            r.state.started_at = Some(started_at.clone());
            r.monitor = Some(monitor);
            r.has_been_started = true;
            r.manually_stopped = false;
            Ok(())
        })?;
        self.watch(id.to_owned(), monitor);
        mark("engine start: recorded");
        if let Err(e) = berth_runtime::container::start(&self.cfg.runtime_root(), id) {
            // The monitor records the exit of the init we now kill.
            let _ = berth_runtime::container::kill(&self.cfg.runtime_root(), id, libc::SIGKILL, true);
            return Err(e.into());
        }
        self.emit(rec, "start", &[]);
        self.health_started(id);
        mark("engine start: done");
        Ok(())
    }

    /// /etc/hostname, /etc/hosts and /etc/resolv.conf in the bundle (tmpfs: regenerated at
    /// every start, as Docker regenerates them), and the data-root dir that holds the log.
    fn write_container_files(&self, rec: &Record, ip: Option<std::net::Ipv4Addr>, shared_with: Option<&Record>, embedded_dns: bool, link_hosts: &[String]) -> Result<()> {
        let dir = self.container_dir(&rec.id);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let etc = crate::etcfiles::EtcPaths::in_dir(&self.bundle_dir(&rec.id));
        if let Some(o) = shared_with {
            return crate::etcfiles::copy_all(&crate::etcfiles::EtcPaths::in_dir(&self.bundle_dir(&o.id)), &etc);
        }
        let mut extra_hosts = link_hosts.to_vec();
        extra_hosts.extend(self.extra_hosts(rec)?);
        crate::etcfiles::write_all(&etc, ip, &rec.config.hostname, &rec.config.domainname, rec.host_config.network_mode == "host", &extra_hosts)?;
        let hc = &rec.host_config;
        let (servers, search, options) = (hc.dns.clone().unwrap_or_default(), hc.dns_search.clone().unwrap_or_default(), hc.dns_options.clone().unwrap_or_default());
        if embedded_dns || !servers.is_empty() || !search.is_empty() || !options.is_empty() {
            let base = if embedded_dns { std::fs::read_to_string(&self.cfg.resolv_conf) } else { std::fs::read_to_string(&etc.resolv_conf) };
            let base = crate::etcfiles::with_overrides(&base.unwrap_or_default(), &servers, &search, &options);
            // With the embedded server, --dns names its upstreams, not the file's servers.
            let text = if embedded_dns { crate::dns::resolv_conf(&base) } else { base };
            std::fs::write(&etc.resolv_conf, text).map_err(|e| Error::io("write", &etc.resolv_conf, e))?;
        }
        Ok(())
    }

    /// `--add-host`, with `host-gateway` as the host's address on the default bridge (or on
    /// the container's own network without one), as Docker resolves it.
    fn extra_hosts(&self, rec: &Record) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for h in rec.host_config.extra_hosts.iter().flatten() {
            let Some((name, ip)) = h.split_once('=').or_else(|| h.split_once(':')) else {
                out.push(h.clone());
                continue;
            };
            if ip != "host-gateway" {
                out.push(h.clone());
                continue;
            }
            let gw = self.networks.default_bridge().map(|b| b.gateway()).or_else(|| self.endpoint(&rec.id).map(|e| e.gateway));
            let gw = gw.ok_or_else(|| Error::InvalidParameter("unable to derive the IP value for host-gateway".into()))?;
            out.push(format!("{name}:{gw}"));
        }
        Ok(out)
    }

    /// A failed create: Docker keeps the container, records the error and the exit code the
    /// CLI reports (127 command not found, 126 not executable).
    fn start_failed(&self, rec: &Record, msg: String) -> Error {
        let code = if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") {
            126
        } else {
            128
        };
        let _ = self.update(&rec.id, |r| {
            r.state.exit_code = code;
            r.state.error = msg.clone();
            Ok(())
        });
        let text = format!("failed to create task for container: OCI runtime create failed: {msg}");
        if code == 128 {
            Error::Internal(text)
        } else {
            Error::InvalidParameter(text)
        }
    }

    /// A previous run that died with the host or the monitor may have left runtime state.
    fn clean_runtime_leftovers(&self, id: &str) {
        let _ = berth_runtime::container::delete(&self.cfg.runtime_root(), id, true);
        let rootfs = self.bundle_dir(id).join("rootfs");
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
    }

    pub(crate) fn log_path(&self, id: &str) -> std::path::PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }


    /// Blocks until the container's next `die` event or `timeout`; true when it died.
    fn wait_die(&self, mut rx: broadcast::Receiver<Event>, id: &str, timeout: Option<Duration>) -> bool {
        let fut = async {
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.actor.id == id && ev.action == "die" => return true,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if self.get(id).map(|r| !r.state.status.is_live()).unwrap_or(true) {
                            return true;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        match timeout {
            Some(t) => self.rt.block_on(async { tokio::time::timeout(t, fut).await.unwrap_or(false) }),
            None => self.rt.block_on(fut),
        }
    }

    fn signal(&self, id: &str, sig: i32, all: bool) -> Result<()> {
        berth_runtime::container::kill(&self.cfg.runtime_root(), id, sig, all).map_err(Error::from)
    }

    /// Stop signal, grace period, SIGKILL; returns when the exit is recorded.
    pub fn stop(&self, name: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let id = self.resolve(name)?;
        let l = self.op_lock(&id);
        let _g = lock(&l);
        self.stop_locked(&id, timeout, signal, true)
    }

    fn stop_locked(&self, id: &str, timeout: Option<i64>, signal: Option<&str>, manual: bool) -> Result<()> {
        let rec = self.get(id)?;
        if manual {
            self.update(id, |r| {
                r.manually_stopped = true;
                Ok(())
            })?;
        }
        if rec.state.status == Status::Restarting {
            self.update(id, |r| {
                r.state.status = Status::Exited;
                Ok(())
            })?;
            return Ok(());
        }
        if !rec.state.status.is_live() {
            return Err(Error::NotModified("container already stopped".into()));
        }
        let sig = match signal.or(Some(rec.config.stop_signal.as_str())) {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => libc::SIGTERM,
        };
        let grace = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let (_, rx) = self.events.subscribe(None);
        let paused = rec.state.status == Status::Paused;
        if grace != 0 && self.signal(id, sig, false).is_ok() {
            if paused {
                let _ = berth_runtime::container::resume(&self.cfg.runtime_root(), id);
            }
            let limit = (grace > 0).then(|| Duration::from_secs(grace as u64));
            if self.wait_die(rx.resubscribe(), id, limit) {
                return Ok(());
            }
        }
        let _ = self.signal(id, libc::SIGKILL, true);
        if paused {
            let _ = berth_runtime::container::resume(&self.cfg.runtime_root(), id);
        }
        if !self.get(id)?.state.status.is_live() {
            return Ok(());
        }
        if !self.wait_die(rx, id, Some(Duration::from_secs(60))) {
            return Err(Error::Internal(format!("container {id} did not exit after SIGKILL")));
        }
        Ok(())
    }

    pub fn kill(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let rec = self.get(name)?;
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        if !rec.state.status.is_live() {
            return Err(Error::Conflict(format!("cannot kill container: {name}: container {} is not running", rec.id)));
        }
        self.signal(&rec.id, sig, false)?;
        self.emit(&rec, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    pub fn restart(self: &Arc<Self>, name: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let id = self.resolve(name)?;
        let l = self.op_lock(&id);
        let _g = lock(&l);
        match self.stop_locked(&id, timeout, signal, false) {
            Ok(()) | Err(Error::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        let rec = self.get(&id)?;
        self.start_locked(&rec)?;
        self.emit(&rec, "restart", &[]);
        Ok(())
    }

    pub fn pause(&self, name: &str) -> Result<()> {
        let id = self.resolve(name)?;
        let l = self.op_lock(&id);
        let _g = lock(&l);
        let rec = self.get(&id)?;
        match rec.state.status {
            Status::Running => {}
            Status::Paused => return Err(Error::Conflict(format!("container {id} is already paused"))),
            _ => return Err(Error::Conflict(format!("container {id} is not running"))),
        }
        berth_runtime::container::pause(&self.cfg.runtime_root(), &id)?;
        self.update(&id, |r| {
            r.state.status.check(Status::Paused)?;
            r.state.status = Status::Paused;
            Ok(())
        })?;
        self.emit(&rec, "pause", &[]);
        Ok(())
    }

    pub fn unpause(&self, name: &str) -> Result<()> {
        let id = self.resolve(name)?;
        let l = self.op_lock(&id);
        let _g = lock(&l);
        let rec = self.get(&id)?;
        if rec.state.status != Status::Paused {
            return Err(Error::Conflict(format!("container {id} is not paused")));
        }
        berth_runtime::container::resume(&self.cfg.runtime_root(), &id)?;
        self.update(&id, |r| {
            r.state.status.check(Status::Running)?;
            r.state.status = Status::Running;
            Ok(())
        })?;
        self.emit(&rec, "unpause", &[]);
        Ok(())
    }

    /// `docker rm`: refuses a running container unless forced; removal is itself a persisted
    /// state so that a crash midway is finished at the next start.
    /// `DELETE /containers/{id}`; `volumes` (`-v`) also removes its anonymous volumes.
    pub fn remove(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let id = self.resolve(name)?;
        let l = self.op_lock(&id);
        let _g = lock(&l);
        let rec = self.get(&id)?;
        if rec.state.status.is_live() {
            if !force {
                let what = if rec.state.status == Status::Paused {
                    "container is paused and must be unpaused first"
                } else {
                    "container is running: stop the container before removing or force remove"
                };
                return Err(Error::Conflict(format!("cannot remove container \"/{}\": {what}", rec.name)));
            }
            let (_, rx) = self.events.subscribe(None);
            let _ = self.signal(&id, libc::SIGKILL, true);
            if rec.state.status == Status::Paused {
                let _ = berth_runtime::container::resume(&self.cfg.runtime_root(), &id);
            }
            if self.get(&id)?.state.status.is_live() && !self.wait_die(rx, &id, Some(Duration::from_secs(30))) {
                return Err(Error::Internal(format!("could not kill running container {id}, cannot remove")));
            }
        }
        self.finish_remove(&id, volumes)
    }

    pub(crate) fn finish_remove(&self, id: &str, volumes: bool) -> Result<()> {
        let rec = self.update(id, |r| {
            if r.state.status != Status::Removing {
                r.state.status.check(Status::Removing)?;
                r.state.status = Status::Removing;
            }
            Ok(r.clone())
        })?;
        let mut errs = Vec::new();
        self.clean_runtime_leftovers(id);
        self.detach_network(id);
        if let Err(e) = self.images.remove_rw(id) {
            errs.push(e.to_string());
        }
        for d in [self.bundle_dir(id), self.container_dir(id)] {
            if let Err(e) = std::fs::remove_dir_all(&d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errs.push(format!("remove {}: {e}", d.display()));
                }
            }
        }
        if !errs.is_empty() {
            let _ = self.update(id, |r| {
                r.state.status = Status::Dead;
                Ok(())
            });
            return Err(Error::Internal(format!("unable to remove container {id}: {}", errs.join("; "))));
        }
        {
            let mut c = lock(&self.containers);
            self.store.remove(&rec)?;
            c.remove(id);
        }
        lock(&self.op_locks).remove(id);
        for (_, tx) in lock(&self.pending_attach).remove(id).unwrap_or_default() {
            let _ = tx.send(Err(Error::no_such_container(id)));
        }
        self.emit(&rec, "destroy", &[]);
        let errs = if volumes { self.remove_anonymous_volumes(&rec.mounts) } else { Vec::new() };
        if !errs.is_empty() {
            return Err(Error::Internal(format!("container {id} removed; its volumes: {}", errs.join("; "))));
        }
        Ok(())
    }

    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let new_name = crate::names::validate(new_name)?;
        let id = self.resolve(name)?;
        let l = self.op_lock(&id);
        let _g = lock(&l);
        let mut c = lock(&self.containers);
        let cur = c.get(&id).ok_or_else(|| Error::no_such_container(name))?.clone();
        if cur.name == new_name {
            return Err(Error::Conflict("Renaming a container with the same name as its current name".into()));
        }
        if let Some(other) = c.values().find(|r| r.name == new_name) {
            return Err(crate::store::name_in_use(&new_name, &other.id));
        }
        let mut next = cur.clone();
        next.name = new_name;
        self.store.rename(&next, &cur.name)?;
        c.insert(id.clone(), next.clone());
        drop(c);
        self.emit(&next, "rename", &[("oldName", format!("/{}", cur.name))]);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: resolves when the condition holds.
    pub fn wait(self: &Arc<Self>, name: &str, cond: WaitCondition) -> Result<impl std::future::Future<Output = WaitResponse> + Send + 'static> {
        let rec = self.get(name)?;
        let (_, mut rx) = self.events.subscribe(None);
        let engine = self.clone();
        let id = rec.id.clone();
        let now_done = match cond {
            WaitCondition::NotRunning => !rec.state.status.is_live() && rec.state.status != Status::Restarting,
            _ => false,
        };
        Ok(async move {
            let code_of = |engine: &Engine| engine.get(&id).map(|r| r.state.exit_code as i64).unwrap_or(0);
            if now_done {
                return WaitResponse { status_code: rec.state.exit_code as i64, error: None };
            }
            let mut last = None;
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.actor.id != id => {}
                    Ok(ev) if ev.action == "die" => {
                        let code = ev.actor.attributes.get("exitCode").and_then(|c| c.parse().ok()).unwrap_or(0);
                        if cond != WaitCondition::Removed {
                            return WaitResponse { status_code: code, error: None };
                        }
                        last = Some(code);
                    }
                    Ok(ev) if ev.action == "destroy" => {
                        return WaitResponse { status_code: last.unwrap_or(rec.state.exit_code as i64), error: None };
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => match engine.get(&id) {
                        Err(_) if cond == WaitCondition::Removed => {
                            return WaitResponse { status_code: last.unwrap_or(0), error: None }
                        }
                        Ok(r) if cond == WaitCondition::NotRunning && !r.state.status.is_live() => {
                            return WaitResponse { status_code: code_of(&engine), error: None }
                        }
                        _ => {}
                    },
                    Err(broadcast::error::RecvError::Closed) => {
                        return WaitResponse { status_code: -1, error: Some(berth_api::container::WaitError { message: "daemon shutting down".into() }) }
                    }
                }
            }
        })
    }

    /// `POST /containers/{id}/attach`: a stream connected to the container's monitor; for a
    /// container not started yet, connected when it starts (so no output is missed).
    pub fn attach(&self, name: &str, req: AttachRequest) -> Result<tokio::sync::oneshot::Receiver<Result<std::os::unix::net::UnixStream>>> {
        let rec = self.get(name)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        match rec.state.status {
            Status::Running | Status::Paused => {
                let _ = tx.send(berth_monitor::attach(&self.bundle_dir(&rec.id), req.stdin, req.stdout, req.stderr).map_err(Error::from));
            }
            Status::Created | Status::Restarting | Status::Exited => {
                lock(&self.pending_attach).entry(rec.id.clone()).or_default().push((req, tx));
            }
            _ => return Err(Error::Conflict("You cannot attach to a stopped container, start it first".into())),
        }
        self.emit(&rec, "attach", &[]);
        Ok(rx)
    }

    pub fn resize(&self, name: &str, rows: u16, cols: u16) -> Result<()> {
        let rec = self.get(name)?;
        if !rec.state.status.is_live() {
            return Err(Error::Conflict(format!("Container {} is not running", rec.id)));
        }
        berth_monitor::resize(&self.bundle_dir(&rec.id), rows, cols)?;
        Ok(())
    }
}
