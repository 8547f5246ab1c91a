//! Supervision: each running container's monitor is watched through a pidfd; its exit record
//! becomes the container's exit, then restart policies and auto-removal apply. At daemon start,
//! `restore` reconciles the store with what survived.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::record::MonitorRef;
use crate::state::Status;
use crate::{lock, Engine};

pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; the result is a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Docker's back-off: 100 ms doubling up to a minute between restarts.
fn backoff(count: i64) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << count.clamp(0, 20) as u32);
    Duration::from_millis(ms.min(60_000))
}

impl Engine {
    /// Watches a monitor; when it exits, the container's exit is recorded.
    pub(crate) fn watch(self: &Arc<Self>, id: String, m: MonitorRef) {
        let engine = self.clone();
        let fd = if berth_monitor::alive(m.pid, m.start_time) { pidfd_open(m.pid) } else { None };
        self.rt.spawn(async move {
            if let Some(fd) = fd {
                // SAFETY: the pidfd is owned by the AsyncFd and closed only when it is dropped.
                if let Ok(afd) = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
                    let _ = afd.readable().await;
                }
            }
            let _ = tokio::task::spawn_blocking(move || engine.handle_exit(&id, m)).await;
        });
    }

    /// Records the exit the monitor wrote (or, if it died without one, 255 as Docker reports
    /// a lost task), then applies auto-remove or the restart policy.
    fn handle_exit(self: &Arc<Self>, id: &str, m: MonitorRef) {
        let bundle = self.bundle_dir(id);
        let exit = berth_monitor::read_exit(&bundle).ok().flatten();
        if exit.is_none() {
            // The monitor is gone without recording: clean what it would have.
            let _ = berth_runtime::container::delete(&self.cfg.runtime_root(), id, true);
            let _ = nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
        }
        // The network goes before the record says Exited (which lets a new start attach),
        // and only for the run this monitor supervised.
        if self.get(id).is_ok_and(|r| r.monitor == Some(m)) {
            self.detach_network(id);
        }
        let (code, oom, finished, error) = match exit {
            Some(e) => (e.exit_code, e.oom_killed, e.finished_at, e.error.unwrap_or_default()),
            None => (255, false, berth_image::store::time::now_rfc3339(), "container monitor exited unexpectedly".into()),
        };
        let Ok(rec) = self.update(id, |r| {
            // Only the run this monitor supervised: a later start has its own.
            if r.monitor != Some(m) {
                return Err(crate::Error::Conflict("stale monitor".into()));
            }
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.oom_killed = oom;
            r.state.finished_at = Some(finished.clone());
            r.state.error = error.clone();
            r.monitor = None;
            Ok(r.clone())
        }) else {
            return;
        };
        if oom {
            self.emit(&rec, "oom", &[]);
        }
        self.emit(&rec, "die", &[("exitCode", code.to_string())]);
        self.release_volumes(&rec);
        if rec.host_config.auto_remove {
            let l = self.op_lock(id);
            let _g = lock(&l);
            let _ = self.finish_remove(id, true);
            return;
        }
        self.maybe_restart(id, false);
    }

    fn should_restart(&self, rec: &crate::record::Record, daemon_start: bool) -> bool {
        let p = &rec.host_config.restart_policy;
        match p.name.as_str() {
            "always" => daemon_start || !rec.manually_stopped,
            "unless-stopped" => !rec.manually_stopped,
            "on-failure" => {
                let max = p.maximum_retry_count;
                !rec.manually_stopped && rec.state.exit_code != 0 && (max == 0 || rec.restart_count < max)
            }
            _ => false,
        }
    }

    fn maybe_restart(self: &Arc<Self>, id: &str, daemon_start: bool) {
        let Ok(rec) = self.get(id) else { return };
        if !self.should_restart(&rec, daemon_start) {
            return;
        }
        // A run longer than 10 s resets the back-off, as Docker does.
        let ran_long = rec
            .state
            .started_at
            .as_deref()
            .zip(rec.state.finished_at.as_deref())
            .and_then(|(s, f)| Some(berth_image::store::time::parse_rfc3339(f)? - berth_image::store::time::parse_rfc3339(s)?))
            .is_some_and(|d| d >= 10);
        let delay = if daemon_start { Duration::ZERO } else { backoff(if ran_long { 0 } else { rec.restart_count }) };
        if self
            .update(id, |r| {
                r.state.status.check(Status::Restarting)?;
                r.state.status = Status::Restarting;
                r.restart_count += 1;
                Ok(())
            })
            .is_err()
        {
            return;
        }
        let engine = self.clone();
        let id = id.to_owned();
        self.rt.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tokio::task::spawn_blocking(move || {
                let l = engine.op_lock(&id);
                let _g = lock(&l);
                match engine.get(&id) {
                    Ok(r) if r.state.status == Status::Restarting => {
                        if let Err(e) = engine.start_locked(&r) {
                            let _ = engine.update(&id, |r| {
                                r.state.status = Status::Exited;
                                r.state.error = e.to_string();
                                Ok(())
                            });
                        }
                    }
                    _ => {}
                }
            })
            .await;
        });
    }

    /// A start interrupted by a daemon crash may have left a monitor with a created (never
    /// started) container that no record points to: kill it; the monitor then cleans up.
    fn kill_interrupted_start(&self, id: &str) {
        let bundle = self.bundle_dir(id);
        let Ok(pid) = std::fs::read_to_string(berth_monitor::pid_path(&bundle)) else { return };
        if pid.trim().parse::<i32>().is_ok_and(|p| p > 0 && std::path::Path::new(&format!("/proc/{p}")).exists()) {
            let _ = berth_runtime::container::delete(&self.cfg.runtime_root(), id, true);
        }
    }

    /// At daemon start: watch monitors that survived, record exits that happened meanwhile,
    /// finish interrupted removals, drop snapshots no record owns, apply restart policies.
    pub(crate) fn restore(self: &Arc<Self>) {
        for rec in self.records() {
            match rec.state.status {
                Status::Running | Status::Paused => match rec.monitor {
                    // Exits that happened while the daemon was down are recorded before the
                    // API answers, so no client sees a dead container as running.
                    Some(m) if !berth_monitor::alive(m.pid, m.start_time) => self.handle_exit(&rec.id, m),
                    Some(m) => {
                        self.watch(rec.id.clone(), m);
                        self.health_restored(&rec.id);
                    }
                    None => {
                        let _ = self.update(&rec.id, |r| {
                            r.state.status = Status::Exited;
                            r.state.exit_code = 255;
                            Ok(())
                        });
                    }
                },
                Status::Removing | Status::Dead => {
                    let _ = self.finish_remove(&rec.id, rec.host_config.auto_remove);
                }
                Status::Restarting => {
                    let _ = self.update(&rec.id, |r| {
                        r.state.status = Status::Exited;
                        Ok(())
                    });
                    self.maybe_restart(&rec.id, true);
                }
                Status::Exited if rec.has_been_started => {
                    self.kill_interrupted_start(&rec.id);
                    self.maybe_restart(&rec.id, true)
                }
                _ => self.kill_interrupted_start(&rec.id),
            }
        }
        self.restore_network();
        // Snapshots made by a create that crashed before its record was written.
        if let Ok(owned) = self.images.meta().containers() {
            let known = lock(&self.containers);
            let orphans: Vec<String> = owned.into_iter().map(|(k, _)| k).filter(|k| !known.contains_key(k)).collect();
            drop(known);
            for k in orphans {
                let _ = self.images.remove_rw(&k);
            }
        }
    }
}
