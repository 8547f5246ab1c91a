//! `exec`: a new process inside a running container, in all its namespaces and its cgroup, with
//! the container's seccomp profile unless the process brings its own identity settings.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::container::{cgroup_manager, load};
use crate::error::{Error, Result};
use crate::namespaces::{self, Forked};
use crate::process::ProcessPlan;
use crate::state::Status;
use crate::sync::{self, Channel, Tag};

#[derive(Debug, Default)]
pub struct ExecOpts {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub console_fd: Option<std::os::fd::OwnedFd>,
    pub preserve_fds: u32,
}

/// Order matters: the user namespace first (privileges for the rest), the mount namespace last
/// (it changes what /proc paths mean).
const ORDER: [(LinuxNamespaceType, libc::c_int); 8] = [
    (LinuxNamespaceType::User, libc::CLONE_NEWUSER),
    (LinuxNamespaceType::Ipc, libc::CLONE_NEWIPC),
    (LinuxNamespaceType::Uts, libc::CLONE_NEWUTS),
    (LinuxNamespaceType::Network, libc::CLONE_NEWNET),
    (LinuxNamespaceType::Cgroup, libc::CLONE_NEWCGROUP),
    (LinuxNamespaceType::Time, libc::CLONE_NEWTIME),
    (LinuxNamespaceType::Pid, libc::CLONE_NEWPID),
    (LinuxNamespaceType::Mount, libc::CLONE_NEWNS),
];

/// Starts the process and returns its host pid once it has exec'd (or the exec error).
/// The caller becomes its parent (child subreaper), so it can wait for it.
pub fn exec(o: &ExecOpts) -> Result<i32> {
    let (_, rec, st) = load(&o.root, &o.id)?;
    if !matches!(st, Status::Running | Status::Created) {
        return Err(Error::WrongState { id: o.id.clone(), status: st.to_string(), op: "exec".into() });
    }
    let spec = rec.spec.get()?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let plan = ProcessPlan::new(&o.process, seccomp, &mut |w| eprintln!("berth-runc: warning: {w}"))?;
    if plan.terminal && o.console_socket.is_none() && o.console_fd.is_none() {
        return Err(Error::invalid("a terminal needs a --console-socket"));
    }
    let kinds: Vec<LinuxNamespaceType> =
        spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default().iter().map(|n| n.typ()).collect();
    let mut fds = vec![];
    for (kind, flag) in ORDER {
        if kinds.contains(&kind) {
            let p = PathBuf::from(format!("/proc/{}/ns/{}", rec.pid, crate::spec::ns_proc_name(kind)));
            fds.push((flag, namespaces::open_ns(&p)?, crate::spec::ns_proc_name(kind)));
        }
    }
    let cg = cgroup_manager(&rec.cgroup_path)?;
    let console = match (&o.console_fd, &o.console_socket) {
        (Some(fd), _) => Some(fd.try_clone().map_err(|e| Error::io("dup console fd", "", e))?),
        (None, Some(p)) if plan.terminal => Some(crate::terminal::connect(p)?),
        _ => None,
    };
    // SAFETY: prctl with integer arguments: orphaned grandchildren are re-parented to us.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (parent, child) = sync::pair()?;
    match namespaces::fork_with(0)? {
        Forked::Child => {
            drop(parent);
            let code = match enter_and_exec(&fds, cg.as_ref(), &plan, console.as_ref(), o.preserve_fds, &child) {
                Ok(pid) => {
                    let _ = child.send_pid(pid);
                    0
                }
                Err(e) => {
                    let _ = child.send(Tag::Error, e.to_string().as_bytes());
                    1
                }
            };
            // SAFETY: intermediate process: leave at once.
            unsafe { libc::_exit(code) }
        }
        Forked::Parent(mid) => {
            drop(child);
            let kill_mid = || {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(mid), nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(mid), None);
            };
            parent.send(Tag::Go, &[])?;
            // Both share the channel: the process may report Ready before its parent the pid.
            let mut ready = false;
            let pid = loop {
                match parent.recv("exec process") {
                    Ok(m) if m.tag == Tag::Pid => break m.pid().ok_or_else(|| Error::Init("bad pid message".into()))?,
                    Ok(m) if m.tag == Tag::Ready && !ready => ready = true,
                    Ok(m) if m.tag == Tag::Error => {
                        kill_mid();
                        return Err(Error::Init(m.text()));
                    }
                    Ok(m) => return Err(Error::Init(format!("unexpected {:?} from exec", m.tag))),
                    Err(e) => {
                        kill_mid();
                        return Err(e);
                    }
                }
            };
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(mid), None);
            wait_exec(&parent, pid, ready)?;
            if let Some(pf) = &o.pid_file {
                crate::container::write_pid_file(pf, pid)?;
            }
            Ok(pid)
        }
    }
}

/// The grandchild reports Ready (unless `ready` says it already did) then execs; the channel
/// closing (close-on-exec) without an Error means the exec happened.
fn wait_exec(ch: &Channel, pid: i32, ready: bool) -> Result<()> {
    let reap = || {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    };
    match if ready { None } else { Some(ch.recv("exec process setup")) } {
        None => {}
        Some(Ok(m)) if m.tag == Tag::Ready => {}
        Some(Ok(m)) if m.tag == Tag::Error => {
            reap();
            return Err(Error::Init(m.text()));
        }
        Some(Ok(m)) => return Err(Error::Init(format!("unexpected {:?} from exec", m.tag))),
        Some(Err(e)) => {
            reap();
            return Err(e);
        }
    }
    match ch.recv("exec") {
        Ok(m) if m.tag == Tag::Error => {
            reap();
            Err(Error::Init(m.text()))
        }
        _ => Ok(()),
    }
}

/// Runs in the intermediate child: joins the namespaces, forks the process that will exec (a new
/// PID namespace only applies to children), and returns that child's pid.
fn enter_and_exec(
    fds: &[(libc::c_int, std::os::fd::OwnedFd, &str)],
    cg: &dyn crate::cgroups::CgroupManager,
    plan: &ProcessPlan,
    console: Option<&std::os::fd::OwnedFd>,
    preserve_fds: u32,
    ch: &Channel,
) -> Result<i32> {
    // SAFETY: prctl with integer arguments (see init.rs for why dumpable is cleared).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    ch.expect(Tag::Go, "the parent")?;
    cg.apply_self()?;
    for (flag, fd, name) in fds {
        namespaces::setns(fd, *flag, name)?;
    }
    match namespaces::fork_with(0)? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            let r = (|| -> Result<std::convert::Infallible> {
                if plan.terminal {
                    let (master, slave) = crate::terminal::open_pty()?;
                    if let Some((rows, cols)) = plan.console_size {
                        crate::terminal::set_size(std::os::fd::AsRawFd::as_raw_fd(&master), rows, cols)?;
                    }
                    crate::terminal::become_controlling(&slave)?;
                    let c = console.ok_or_else(|| Error::invalid("terminal without console"))?;
                    crate::terminal::send_master(std::os::fd::AsRawFd::as_raw_fd(c), &master)?;
                }
                let cwd_ok = nix::unistd::chdir(&plan.cwd).is_ok();
                plan.set_identity()?;
                if !cwd_ok {
                    nix::unistd::chdir(&plan.cwd).map_err(|e| Error::sys(format!("chdir to cwd {}", plan.cwd.display()), e))?;
                }
                let exe = plan.lookup()?;
                // SAFETY: prctl with integer arguments: the exec'd process outlives its parent.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
                ch.send(Tag::Ready, &[])?;
                Err(plan.exec(&exe, preserve_fds))
            })();
            let e = match r {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = ch.send(Tag::Error, e.to_string().as_bytes());
            // SAFETY: leave the forked child at once.
            unsafe { libc::_exit(127) }
        }
    }
}
