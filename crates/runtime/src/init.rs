//! The container's init process, from the moment it is cloned until it execs the user's program.
//! It reports each failure to the parent over the sync channel (naming the step), so `create`
//! fails with the reason and cleans up.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, Kind};
use crate::process::ProcessPlan;
use crate::rootfs;
use crate::spec::NamespacePlan;
use crate::sync::{Channel, Tag};
use crate::timing::mark;

pub struct InitArgs<'a> {
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub spec: &'a oci_spec::runtime::Spec,
    pub ns: &'a NamespacePlan,
    /// Namespaces to create here rather than at clone (see container::create).
    pub unshare: libc::c_int,
    pub process: &'a ProcessPlan,
    pub cgroup: &'a dyn crate::cgroups::CgroupManager,
    pub cgroup_mounts: &'a [crate::cgroups::CgroupMount],
    pub console: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Whether the namespaces are entered here (joined user namespace) rather than at clone.
    pub enter_in_child: bool,
    pub state_json: &'a [u8],
}

/// Entry point in the cloned child; never returns.
pub fn main(a: &InitArgs, ch: &Channel) -> ! {
    let code = match run(a, ch) {
        Ok(never) => match never {},
        Err(e) => {
            // Before Ready the parent is listening; after it, stderr is all we have.
            if ch.send(Tag::Error, e.to_string().as_bytes()).is_err() {
                eprintln!("berth-runc init: {e}");
            }
            1
        }
    };
    // SAFETY: leave without running the parent's atexit handlers or destructors twice.
    unsafe { libc::_exit(code) }
}

enum Never {}

fn run(a: &InitArgs, ch: &Channel) -> Result<Never> {
    // Die with the parent while setting up; no other process may open /proc/<pid>/exe of this
    // (still berth-runc) process or ptrace it (CVE-2019-5736).
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    mark("init: begin");
    // While the parent creates the cgroup and applies its limits.
    crate::namespaces::unshare(a.unshare)?;
    mark("init: unshared");
    let go = ch.expect(Tag::Go, "the parent to create the cgroup and write the id maps")?;
    let fifo = go.fd.ok_or_else(|| Error::Init("the parent sent no exec fifo".into()))?;
    // Joining from inside, while single-threaded, avoids the RCU wait of moving a process
    // from outside (see cgroups::CgroupManager::apply_self).
    a.cgroup.apply_self()?;
    mark("init: joined cgroup");
    if a.ns.has_new(libc::CLONE_NEWUSER) {
        // The id maps are written: become root of the new user namespace.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into()).step(|| "setgid 0 in user namespace")?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into()).step(|| "setuid 0 in user namespace")?;
    }
    if a.enter_in_child {
        enter_namespaces(a, ch)?;
    } else {
        join(a.ns, |f| f != libc::CLONE_NEWPID)?;
    }
    if a.ns.has_new(libc::CLONE_NEWCGROUP) {
        // Only now, inside the container's cgroup, so that it becomes the namespace's root.
        crate::namespaces::unshare(libc::CLONE_NEWCGROUP)?;
    }
    if !a.no_new_keyring {
        // A fresh session keyring per container, so containers do not share kernel keys.
        // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL).
        unsafe { libc::syscall(libc::SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0usize) };
    }
    if let Some(adj) = a.process.oom_score_adj {
        crate::process::set_oom_score_adj("self", adj)?;
    }
    let linux = a.spec.linux().as_ref();
    let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    let mounts = a.spec.mounts().clone().unwrap_or_default();
    let ctx = rootfs::Ctx {
        rootfs: a.rootfs,
        bundle: a.bundle,
        mounts: &mounts,
        propagation: linux.and_then(|l| l.rootfs_propagation().as_deref()),
        cgroups: a.cgroup_mounts,
        cgroupns: a.ns.isolated(libc::CLONE_NEWCGROUP),
        userns: a.ns.isolated(libc::CLONE_NEWUSER),
        devices: &devices,
        mount_label: linux.and_then(|l| l.mount_label().as_deref()),
    };
    // The init's pid as the host sees it, for hooks and the seccomp listener: until pivot_root,
    // /proc is still the host's.
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or_else(|| nix::unistd::getpid().as_raw());
    crate::process::HOST_PID.store(host_pid, std::sync::atomic::Ordering::Relaxed);
    mark("init: prepare rootfs");
    rootfs::prepare(&ctx)?;
    mark("init: rootfs prepared");
    let spec_hooks = a.spec.hooks().as_ref();
    // A round trip to the parent only when it has hooks to run.
    if !hooks::list(spec_hooks, Kind::Prestart).is_empty() || !hooks::list(spec_hooks, Kind::CreateRuntime).is_empty() {
        ch.send(Tag::RunHooks, &[])?;
        ch.expect(Tag::HooksDone, "prestart and createRuntime hooks")?;
        mark("init: hooks done");
    }
    if !hooks::list(spec_hooks, Kind::CreateContainer).is_empty() {
        hooks::run(spec_hooks, Kind::CreateContainer, &hooks::state_with(a.state_json, host_pid, "creating"))?;
    }
    rootfs::pivot(a.rootfs, a.no_pivot)?;
    mark("init: pivoted");
    rootfs::set_root_propagation(ctx.propagation)?;
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let p = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&p, v).map_err(|e| Error::io(format!("set sysctl {k}={v} via"), &p, e))?;
        }
    }
    if a.process.terminal {
        setup_terminal(a)?;
    }
    mark("init: sysctl, terminal");
    if let Some(l) = linux {
        rootfs::mask_paths(l.masked_paths().as_deref().unwrap_or_default())?;
        rootfs::readonly_paths(l.readonly_paths().as_deref().unwrap_or_default())?;
    }
    mark("init: masked and read-only paths");
    if a.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        rootfs::readonly_root()?;
    }
    if let Some(h) = a.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).step(|| format!("set hostname {h}"))?;
    }
    if let Some(d) = a.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: valid pointer and length.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::sys(format!("set domainname {d}"), nix::errno::Errno::last()));
        }
    }
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        if matches!(p.domain(), oci_spec::runtime::LinuxPersonalityDomain::PerLinux32) {
            // SAFETY: personality takes an integer.
            unsafe { libc::personality(0x0008 /* PER_LINUX32 */) };
        }
    }
    let cwd_ok = nix::unistd::chdir(&a.process.cwd).is_ok();
    mark("init: set identity");
    a.process.set_identity()?;
    mark("init: identity set");
    if !cwd_ok {
        nix::unistd::chdir(&a.process.cwd).step(|| format!("chdir to cwd {}", a.process.cwd.display()))?;
    }
    let exe = a.process.lookup()?;
    // SAFETY: prctl with integer arguments. From here on the container outlives `create`.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    mark("init: ready");
    ch.send(Tag::Ready, &[])?;
    wait_for_start(&fifo)?;
    mark("init: started");
    if !hooks::list(spec_hooks, Kind::StartContainer).is_empty() {
        hooks::run(spec_hooks, Kind::StartContainer, &hooks::state_with(a.state_json, host_pid, "created"))?;
    }
    let err = a.process.exec(&exe, a.preserve_fds);
    eprintln!("berth-runc init: {err}");
    // SAFETY: see main.
    unsafe { libc::_exit(127) }
}

/// setns into every namespace joined by path, except those filtered out.
fn join(ns: &NamespacePlan, keep: impl Fn(libc::c_int) -> bool) -> Result<()> {
    // Open all first: entering the mount namespace changes what the paths resolve to.
    let mut fds = vec![];
    for (flag, path) in ns.join.iter().filter(|(f, _)| keep(*f)) {
        fds.push((*flag, crate::namespaces::open_ns(path)?, path));
    }
    for (flag, fd, path) in fds {
        crate::namespaces::setns(&fd, flag, &path.display().to_string())?;
    }
    Ok(())
}

/// The slow path, used when a user namespace is joined by path: join it first, then create the
/// other namespaces owned by it; a new PID namespace needs one more fork, whose child becomes
/// the container's init while this process reports its pid and exits.
fn enter_namespaces(a: &InitArgs, ch: &Channel) -> Result<()> {
    join(a.ns, |_| true)?;
    let flags = a.ns.new & !(libc::CLONE_NEWCGROUP | libc::CLONE_NEWTIME | libc::CLONE_NEWPID);
    crate::namespaces::unshare(flags)?;
    if a.ns.has_new(libc::CLONE_NEWPID) {
        crate::namespaces::unshare(libc::CLONE_NEWPID)?;
        match crate::namespaces::fork_with(0)? {
            crate::namespaces::Forked::Child => {
                // SAFETY: prctl with integer arguments.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            }
            crate::namespaces::Forked::Parent(pid) => {
                let code = i32::from(ch.send_pid(pid).is_err());
                // SAFETY: intermediate process: leave at once.
                unsafe { libc::_exit(code) }
            }
        }
    }
    Ok(())
}

fn setup_terminal(a: &InitArgs) -> Result<()> {
    let console = a.console.ok_or_else(|| Error::invalid("process.terminal needs a console socket"))?;
    let (master, slave) = crate::terminal::open_pty()?;
    if let Some((rows, cols)) = a.process.console_size {
        crate::terminal::set_size(master.as_raw_fd(), rows, cols)?;
    }
    // /dev/console is the container's terminal, as on a real system.
    if let Ok(target) = crate::fsutil::touch_in_root(libc::AT_FDCWD, Path::new("/dev/console")) {
        let src = crate::fsutil::fd_path(&slave);
        nix::mount::mount(Some(src.as_str()), crate::fsutil::fd_path(&target).as_str(), None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
            .step(|| "bind pty to /dev/console")?;
    }
    crate::terminal::become_controlling(&slave)?;
    crate::terminal::send_master(console.as_raw_fd(), &master)
}

/// Blocks until `start` writes to the exec fifo. The fifo was opened read-write, so the read
/// blocks (rather than seeing EOF) until a writer delivers a byte.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(fifo, &mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::Init("exec fifo closed before start".into())),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for start on exec fifo", e)),
        }
    }
}
