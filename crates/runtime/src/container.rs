//! The container lifecycle as the OCI runtime spec defines it: create, start, state, kill,
//! delete, plus pause/resume/update/ps. Each operation validates first, applies, and on failure
//! rolls back what it applied (processes, cgroups, state), reporting every cleanup error.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxResources, Spec};

use crate::cgroups::{self, CgroupManager};
use crate::error::{Error, Errors, Result, SysContext};
use crate::hooks::{self, Kind};
use crate::init::{self, InitArgs};
use crate::namespaces::{self, Forked};
use crate::process::ProcessPlan;
use crate::spec::{self, Bundle};
use crate::state::{self, OciState, Record, StateDir, Status, StoredSpec};
use crate::sync::{self, Tag};
use crate::timing::mark;

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// Where to send the pty master when process.terminal is set.
    pub console_socket: Option<PathBuf>,
    /// An already-connected console socket (used by `run` to proxy a terminal itself).
    pub console_fd: Option<std::sync::Arc<OwnedFd>>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
}

/// Warnings (skipped LSM labels, ...) go to stderr, where the runtime's caller logs them.
fn warn(msg: String) {
    eprintln!("berth-runc: warning: {msg}");
}

pub fn cgroup_manager(path: &str) -> Result<Box<dyn CgroupManager>> {
    cgroups::manager(&cgroups::detect()?, path)
}

/// Rolls back a half-created container unless disarmed: kills the init, removes the cgroup and
/// the state directory, and keeps going past failures.
struct CreateGuard<'a> {
    pid: Option<i32>,
    cgroup: Option<&'a dyn CgroupManager>,
    state: Option<&'a StateDir>,
    /// The staged pid file (temporary name).
    pid_file: Option<PathBuf>,
}

impl CreateGuard<'_> {
    fn cleanup(&mut self) -> Result<()> {
        let mut errs = Errors::default();
        if let Some(pid) = self.pid.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = self.cgroup.take() {
            errs.push(cg.kill_all(libc::SIGKILL));
            errs.push(cg.destroy());
        }
        if let Some(s) = self.state.take() {
            errs.push(s.remove());
        }
        if let Some(p) = self.pid_file.take() {
            let _ = std::fs::remove_file(p);
        }
        errs.into_result()
    }
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            warn(format!("cleanup after failed create: {e}"));
        }
    }
}

fn oci_state(rec: &Record, status: Status) -> OciState {
    OciState {
        oci_version: rec.spec.head().version.clone(),
        id: rec.id.clone(),
        pid: if status == Status::Stopped { 0 } else { rec.pid },
        status,
        bundle: rec.bundle.clone(),
        rootfs: rec.rootfs.clone(),
        created: rec.created.clone(),
        annotations: rec.spec.head().annotations.clone().map(|a| a.into_iter().collect()).unwrap_or_default(),
        owner: rec.owner.clone(),
    }
}

fn state_json(rec: &Record, status: Status) -> Vec<u8> {
    serde_json::to_vec(&oci_state(rec, status)).unwrap_or_default()
}

/// Creates the container: everything set up, the init waiting for `start`. Returns the init pid.
///
/// The parent and the init work in parallel where they can: the init is cloned as soon as its
/// state directory and cgroup2 directory exist and unshares its namespaces itself (the network
/// namespace takes a millisecond) while the parent creates the v1 cgroups and applies the
/// limits; then it builds the root filesystem while the parent stages state.json and the pid
/// file, which are only renamed into place once the init reports ready.
pub fn create(o: &CreateOpts) -> Result<i32> {
    mark("create: begin");
    let bundle = Bundle::load(&o.bundle)?;
    mark("create: bundle loaded");
    let s = &bundle.spec;
    let ns = spec::namespace_plan(s)?;
    spec::validate(s, &ns)?;
    if !ns.isolated(libc::CLONE_NEWNS) {
        return Err(Error::invalid("a mount namespace is required"));
    }
    let linux = s.linux().as_ref();
    let process = s.process().as_ref().ok_or_else(|| Error::invalid("process is required"))?;
    mark("create: validated");
    let mut plan = ProcessPlan::new(process, linux.and_then(|l| l.seccomp().as_ref()), &mut warn)?;
    mark("create: process planned (seccomp compiled)");
    if plan.terminal && o.console_socket.is_none() && o.console_fd.is_none() {
        return Err(Error::invalid("process.terminal is set: a --console-socket is required"));
    }
    let cg_path = cgroups::resolve_path(linux.and_then(|l| l.cgroups_path().as_ref()).map(|p| p.to_string_lossy()).as_deref(), &o.id, o.systemd_cgroup)?;
    let cg = cgroup_manager(&cg_path)?;
    mark("create: cgroup layout detected");
    let user_join = ns.joins(libc::CLONE_NEWUSER);
    let time_offsets: Vec<(String, i64, u32)> = linux
        .and_then(|l| l.time_offsets().clone())
        .map(|m| m.into_iter().map(|(k, v)| (k, v.secs().unwrap_or(0), v.nanosecs().unwrap_or(0))).collect())
        .unwrap_or_default();
    let mut resources = linux.and_then(|l| l.resources().clone()).unwrap_or_default();
    let spec_devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    resources.set_devices(Some(crate::devices::cgroup_rules(resources.devices().as_deref().unwrap_or_default(), &spec_devices)));

    // Validation done: apply, with rollback. The state directory first: it claims the id, so
    // nothing of another container with this id (its cgroup) is ever touched.
    let sd = StateDir::create(&o.root, &o.id)?;
    let mut guard = CreateGuard { pid: None, cgroup: None, state: Some(&sd), pid_file: None };
    mark("create: state dir");
    guard.cgroup = Some(cg.as_ref());
    cg.create_cgroup2()?;
    mark("create: cgroup2 created");
    let console = match (&o.console_fd, &o.console_socket) {
        (Some(fd), _) => Some(fd.try_clone().map_err(|e| Error::io("dup console fd", "", e))?),
        (None, Some(p)) if plan.terminal => Some(crate::terminal::connect(p)?),
        _ => None,
    };
    let mut rec = Record {
        id: o.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: nix::unistd::geteuid().to_string(),
        cgroup_path: cg_path.clone(),
        systemd_cgroup: o.systemd_cgroup,
        spec: StoredSpec::from_json(bundle.raw.clone())?,
    };
    let (parent_ch, child_ch) = sync::pair()?;
    if ns.has_new(libc::CLONE_NEWTIME) {
        namespaces::unshare_time(&time_offsets)?;
    }
    if let Some((_, p)) = ns.join.iter().find(|(f, _)| *f == libc::CLONE_NEWPID) {
        // Children of this process are born in the joined PID namespace.
        namespaces::setns(&namespaces::open_ns(p)?, libc::CLONE_NEWPID, "pid")?;
    }
    // The PID namespace must come with the clone (the init is its pid 1); the init unshares
    // the others. A new user namespace also comes with the clone: the parent writes its id
    // maps before the init creates anything owned by it. A joined one is entered by the init.
    let new = ns.new & !(libc::CLONE_NEWCGROUP | libc::CLONE_NEWTIME);
    let (clone_flags, unshare_flags) = if user_join {
        (0, 0)
    } else if ns.has_new(libc::CLONE_NEWUSER) {
        (new, 0)
    } else {
        (new & libc::CLONE_NEWPID, new & !libc::CLONE_NEWPID)
    };
    let cg_mounts = cg.container_mounts();
    // For the init's hooks and seccomp listener, if it has any.
    let hooks_state = if s.hooks().is_some() { state_json(&rec, Status::Creating) } else { Vec::new() };
    if plan.listener.is_some() {
        plan.listener_state = serde_json::to_value(oci_state(&rec, Status::Creating)).unwrap_or_default();
    }
    // Born in the cgroup2 part (if any); the init moves itself into the v1 hierarchies.
    let cg2 = cg.cgroup2_dir().and_then(|d| {
        nix::fcntl::open(d, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ok()
    });
    mark("create: clone");
    match namespaces::fork_into(clone_flags, cg2.as_ref().map(|f| f.as_raw_fd()))? {
        Forked::Child => {
            drop(parent_ch);
            let args = InitArgs {
                rootfs: &bundle.rootfs,
                bundle: &bundle.dir,
                spec: s,
                ns: &ns,
                unshare: unshare_flags,
                process: &plan,
                cgroup: cg.as_ref(),
                cgroup_mounts: &cg_mounts,
                console: console.as_ref(),
                no_pivot: o.no_pivot,
                no_new_keyring: o.no_new_keyring,
                preserve_fds: o.preserve_fds,
                enter_in_child: user_join,
                state_json: &hooks_state,
            };
            init::main(&args, &child_ch)
        }
        Forked::Parent(child) => {
            drop(child_ch);
            mark("create: cloned (parent)");
            guard.pid = Some(child);
            // The init waits for Go (which brings it the exec fifo) before it joins the cgroup or
            // creates any device node.
            let fifo = exec_fifo(&sd)?;
            let ready = cg.create_rest().and_then(|()| cg.set(&resources));
            mark("create: fifo, cgroup created and set");
            ready?;
            if ns.has_new(libc::CLONE_NEWUSER) && !user_join {
                let l = linux.expect("validated: user namespace has mappings");
                namespaces::write_id_maps(child, l.uid_mappings().as_deref().unwrap_or_default(), l.gid_mappings().as_deref().unwrap_or_default())?;
            }
            if let Err(e) = parent_ch.send_fd(Tag::Go, &[], Some(fifo.as_raw_fd())) {
                // The init is gone: what it said before is the reason.
                return Err(init_failure(&parent_ch).unwrap_or(e));
            }
            let mut pid = child;
            // Only a joined user namespace changes the pid (Tag::Pid below).
            let mut staged = !user_join && stage(&sd, &mut rec, pid, o.pid_file.as_deref(), &mut guard);
            mark("create: staged");
            loop {
                let m = parent_ch.recv("container init")?;
                match m.tag {
                    Tag::Pid => {
                        // The init is a grandchild (joined user namespace): reap the middle one.
                        pid = m.pid().ok_or_else(|| Error::Init("bad pid message".into()))?;
                        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
                        guard.pid = Some(pid);
                        staged = false;
                    }
                    Tag::RunHooks => {
                        rec.pid = pid;
                        let st = state_json(&rec, Status::Creating);
                        hooks::run(s.hooks().as_ref(), Kind::Prestart, &st)?;
                        hooks::run(s.hooks().as_ref(), Kind::CreateRuntime, &st)?;
                        parent_ch.send(Tag::HooksDone, &[])?;
                    }
                    Tag::Ready => break,
                    Tag::Error => return Err(Error::Init(m.text())),
                    t => return Err(Error::Init(format!("unexpected message {t:?} from init"))),
                }
            }
            mark("create: init ready");
            if !staged {
                rec.pid = pid;
                rec.pid_start = state::proc_stat(pid).map(|(_, s)| s).ok_or_else(|| Error::Init("init exited during create".into()))?;
                sd.stage(&rec)?;
                if let Some(pf) = &o.pid_file {
                    guard.pid_file = Some(stage_pid_file(pf, pid)?);
                }
            }
            sd.commit()?;
            if let (Some(pf), Some(tmp)) = (&o.pid_file, &guard.pid_file) {
                std::fs::rename(tmp, pf).map_err(|e| Error::io("write pid file", pf, e))?;
            }
            mark("create: done");
            guard.pid = None;
            guard.cgroup = None;
            guard.state = None;
            guard.pid_file = None;
            Ok(pid)
        }
    }
}

/// While the init sets itself up: records its pid and start time, and writes state.json and
/// the pid file under temporary names. Whether that worked; if not (the init may already have
/// failed), it is done after the init reports.
fn stage(sd: &StateDir, rec: &mut Record, pid: i32, pid_file: Option<&Path>, guard: &mut CreateGuard) -> bool {
    let Some((_, start)) = state::proc_stat(pid) else { return false };
    rec.pid = pid;
    rec.pid_start = start;
    if sd.stage(rec).is_err() {
        return false;
    }
    match pid_file.map(|pf| stage_pid_file(pf, pid)).transpose() {
        Ok(tmp) => {
            guard.pid_file = tmp;
            true
        }
        Err(_) => false,
    }
}

/// The exec fifo, open read-write (the init's end: reads block until `start` writes).
fn exec_fifo(sd: &StateDir) -> Result<OwnedFd> {
    let path = sd.fifo();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).step(|| format!("mkfifo {}", path.display()))?;
    nix::fcntl::open(&path, nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).step(|| format!("open {}", path.display()))
}

/// The Error message the init sent before it went away, if any.
fn init_failure(ch: &sync::Channel) -> Option<Error> {
    match ch.recv("container init") {
        Ok(m) if m.tag == Tag::Error => Some(Error::Init(m.text())),
        Ok(_) => None,
        Err(e) => Some(e),
    }
}

fn stage_pid_file(path: &Path, pid: i32) -> Result<PathBuf> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io("write pid file", &tmp, e))?;
    Ok(tmp)
}

pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = stage_pid_file(path, pid)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("write pid file", path, e))
}

/// The container's current status, derived from the kernel (never only from what was stored).
pub fn status(sd: &StateDir, rec: &Record) -> Status {
    if !state::init_alive(rec.pid, rec.pid_start) {
        return Status::Stopped;
    }
    if sd.fifo().exists() {
        return Status::Created;
    }
    match cgroup_manager(&rec.cgroup_path).and_then(|c| c.is_frozen()) {
        Ok(true) => Status::Paused,
        _ => Status::Running,
    }
}

pub fn load(root: &Path, id: &str) -> Result<(StateDir, Record, Status)> {
    let (sd, rec) = StateDir::load(root, id)?;
    let st = status(&sd, &rec);
    Ok((sd, rec, st))
}

pub fn state(root: &Path, id: &str) -> Result<OciState> {
    let (_, rec, st) = load(root, id)?;
    Ok(oci_state(&rec, st))
}

fn wrong(id: &str, st: Status, op: &str) -> Error {
    Error::WrongState { id: id.into(), status: st.to_string(), op: op.into() }
}

pub fn start(root: &Path, id: &str) -> Result<()> {
    mark("start: begin");
    let (sd, rec, st) = load(root, id)?;
    mark("start: loaded");
    if st != Status::Created {
        return Err(wrong(id, st, "start"));
    }
    let fifo = sd.fifo();
    let f = nix::fcntl::open(&fifo, nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| match e {
            nix::errno::Errno::ENXIO => Error::Init(format!("container {id}: init is not waiting for start")),
            e => Error::sys(format!("open {}", fifo.display()), e),
        })?;
    nix::unistd::write(&f, b"0").step(|| "signal start on exec fifo")?;
    match std::fs::remove_file(&fifo) {
        // A container whose program exits at once can be deleted (by whoever waits for its
        // exit) before this unlink: started all the same.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        r => r.map_err(|e| Error::io("remove", &fifo, e))?,
    }
    mark("start: signalled");
    if hooks::list(rec.spec.head().hooks.as_ref(), Kind::Poststart).is_empty() {
        return Ok(());
    }
    // poststart hooks come after the user's program is executed (and so after startContainer).
    wait_fifo_closed(&f, &rec);
    if let Err(e) = hooks::run(rec.spec.head().hooks.as_ref(), Kind::Poststart, &state_json(&rec, Status::Running)) {
        // The spec makes poststart failures warnings: the container is running.
        warn(e.to_string());
    }
    Ok(())
}

/// Waits until the init no longer holds the exec fifo: it closed it by exec'ing the user's
/// program (close-on-exec) or by exiting. A FIFO's write end polls POLLERR once no reader is
/// left. Gives up if the init dies or is frozen (a paused container cannot get there).
fn wait_fifo_closed(f: &OwnedFd, rec: &Record) {
    let cg = cgroup_manager(&rec.cgroup_path).ok();
    loop {
        let mut p = libc::pollfd { fd: f.as_raw_fd(), events: 0, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, 100) };
        if r > 0 && p.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return;
        }
        if !state::init_alive(rec.pid, rec.pid_start) || cg.as_ref().is_some_and(|c| c.is_frozen().unwrap_or(false)) {
            return;
        }
    }
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let (_, rec, st) = load(root, id)?;
    if st == Status::Stopped {
        return Err(Error::NotRunning(id.into()));
    }
    if all {
        return cgroup_manager(&rec.cgroup_path)?.kill_all(sig);
    }
    // SAFETY: kill takes integers.
    if unsafe { libc::kill(rec.pid, sig) } != 0 {
        return Err(Error::sys(format!("kill {} with signal {sig}", rec.pid), nix::errno::Errno::last()));
    }
    Ok(())
}

/// Kills and waits for the init (and everything in the cgroup).
fn stop_all(rec: &Record, cg: &dyn CgroupManager) -> Result<()> {
    let pidfd = namespaces::pidfd_open(rec.pid).ok();
    if state::init_alive(rec.pid, rec.pid_start) {
        // SAFETY: kill takes integers.
        unsafe { libc::kill(rec.pid, libc::SIGKILL) };
    }
    cg.kill_all(libc::SIGKILL)?;
    // A frozen process cannot die: thaw after the signal is queued.
    if cg.is_frozen().unwrap_or(false) {
        cg.thaw()?;
    }
    match pidfd {
        Some(fd) => {
            if !namespaces::wait_pidfd(&fd, 10_000) {
                return Err(Error::Init(format!("container init {} did not exit after SIGKILL", rec.pid)));
            }
        }
        None => {
            for _ in 0..1000 {
                if !state::init_alive(rec.pid, rec.pid_start) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(())
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    mark("delete: begin");
    let (sd, rec, st) = load(root, id)?;
    mark("delete: loaded");
    if matches!(st, Status::Running | Status::Paused) && !force {
        return Err(wrong(id, st, "delete (use --force)"));
    }
    let cg = cgroup_manager(&rec.cgroup_path)?;
    let mut errs = Errors::default();
    if st != Status::Stopped {
        errs.push(stop_all(&rec, cg.as_ref()));
    }
    mark("delete: stopped");
    errs.push(cg.destroy());
    mark("delete: cgroup destroyed");
    if let Err(e) = hooks::run(rec.spec.head().hooks.as_ref(), Kind::Poststop, &state_json(&rec, Status::Stopped)) {
        warn(e.to_string());
    }
    // (Removing the state directory in a thread, in parallel with the cgroup, was measured
    // slower on the busy 2-CPU development VM.)
    errs.push(sd.remove());
    mark("delete: done");
    errs.into_result()
}

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let (_, rec, st) = load(root, id)?;
    if st != Status::Running && st != Status::Created {
        return Err(wrong(id, st, "pause"));
    }
    cgroup_manager(&rec.cgroup_path)?.freeze()
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let (_, rec, st) = load(root, id)?;
    if st != Status::Paused {
        return Err(wrong(id, st, "resume"));
    }
    cgroup_manager(&rec.cgroup_path)?.thaw()
}

pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let (_, rec, _) = load(root, id)?;
    cgroup_manager(&rec.cgroup_path)?.pids()
}

/// Applies new resource limits and records them, so a later `state`/`exec` sees them.
pub fn update(root: &Path, id: &str, r: &LinuxResources) -> Result<()> {
    let (sd, mut rec, st) = load(root, id)?;
    if st == Status::Stopped {
        return Err(wrong(id, st, "update"));
    }
    cgroup_manager(&rec.cgroup_path)?.set(r)?;
    let mut spec = rec.spec.get()?.clone();
    if let Some(l) = spec.linux_mut().as_mut() {
        l.set_resources(Some(merge_resources(l.resources().clone().unwrap_or_default(), r)));
    }
    rec.spec.set(&spec)?;
    sd.save(&rec)
}

/// The stored resources with every knob `r` sets replaced.
fn merge_resources(old: LinuxResources, r: &LinuxResources) -> LinuxResources {
    let mut v = serde_json::to_value(&old).unwrap_or_default();
    let new = serde_json::to_value(r).unwrap_or_default();
    merge_json(&mut v, &new);
    serde_json::from_value(v).unwrap_or(old)
}

fn merge_json(a: &mut serde_json::Value, b: &serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge_json(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) if !b.is_null() => *a = b.clone(),
        _ => {}
    }
}

pub fn list(root: &Path) -> Result<Vec<OciState>> {
    let mut out = vec![];
    for id in state::list(root)? {
        if let Ok(s) = state(root, &id) {
            out.push(s);
        }
    }
    Ok(out)
}

/// The stored spec of a container (for exec defaults).
pub fn spec_of(root: &Path, id: &str) -> Result<Spec> {
    Ok(StateDir::load(root, id)?.1.spec.get()?.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_merges_only_given_knobs() {
        let old: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":100,"swap":200},"pids":{"limit":5}}"#).unwrap();
        let new: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":300}}"#).unwrap();
        let m = merge_resources(old, &new);
        assert_eq!(m.memory().as_ref().unwrap().limit(), Some(300));
        assert_eq!(m.memory().as_ref().unwrap().swap(), Some(200));
        assert_eq!(m.pids().as_ref().unwrap().limit(), 5);
    }
}
