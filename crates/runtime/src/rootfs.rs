//! The container's root filesystem, built inside its new mount namespace: propagation, the rootfs
//! bind, every spec mount (resolved inside the root), devices, pivot_root, masked and read-only
//! paths. Runs in the container init before it execs; errors name the mount and the cause.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Mount;

use crate::error::{Error, Result, SysContext};
use crate::fsutil::{self, fd_path, mkdir_all_in_root, openat_in_root, touch_in_root};
use crate::mountopts::{self, MountOpts};

pub struct Ctx<'a> {
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub mounts: &'a [Mount],
    pub propagation: Option<&'a str>,
    pub cgroups: &'a [crate::cgroups::CgroupMount],
    pub cgroupns: bool,
    pub userns: bool,
    pub devices: &'a [oci_spec::runtime::LinuxDevice],
    pub mount_label: Option<&'a str>,
}

fn sys_mount(src: Option<&str>, target: &str, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) -> nix::Result<()> {
    mount(src, target, fstype, MsFlags::from_bits_retain(flags), data.filter(|d| !d.is_empty()))
}

/// Step 1, before pivot_root: propagation, rootfs bind, spec mounts, devices.
pub fn prepare(ctx: &Ctx) -> Result<()> {
    let prop = match ctx.propagation.filter(|p| !p.is_empty()) {
        Some(p) => mountopts::propagation_flag(p).ok_or_else(|| Error::invalid(format!("rootfsPropagation {p}")))?,
        None => libc::MS_SLAVE | libc::MS_REC,
    };
    // Shared propagation would leak the container's mounts to the host and break pivot_root, so
    // the whole tree first becomes a slave (or what the spec asks) of the host.
    sys_mount(None, "/", None, prop, None).step(|| "set propagation of / in container mount namespace")?;
    if prop & libc::MS_SHARED != 0 || prop & libc::MS_REC == 0 {
        // The mount holding the rootfs may still be shared: the rootfs bind below would then
        // propagate to the host, and pivot_root (or MS_MOVE) refuses a new root on a shared
        // mount. Make it private; the new root gets the requested propagation after the pivot
        // (set_root_propagation).
        make_parent_private(ctx.rootfs)?;
    }
    let root = ctx.rootfs.to_string_lossy();
    sys_mount(Some(&root), &root, None, libc::MS_BIND | libc::MS_REC, None)
        .step(|| format!("bind rootfs {root} onto itself"))?;
    let rootfd = fsutil::open_root(ctx.rootfs)?;
    let mut dev_bound = false;
    for m in ctx.mounts {
        mount_one(ctx, &rootfd, m)?;
        if fsutil::relative(m.destination()) == Path::new("dev") && mountopts::parse(opts(m))?.is_bind() {
            dev_bound = true;
        }
    }
    if !dev_bound {
        crate::devices::create_default(&rootfd, ctx.devices, ctx.userns)?;
    }
    crate::devices::create_spec_devices(&rootfd, ctx.devices, ctx.userns)?;
    Ok(())
}

fn opts(m: &Mount) -> &[String] {
    m.options().as_deref().unwrap_or_default()
}

fn mount_one(ctx: &Ctx, rootfd: &OwnedFd, m: &Mount) -> Result<()> {
    let o = mountopts::parse(opts(m))?;
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or(if o.is_bind() { "bind" } else { "" });
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroups(ctx, rootfd, dest, &o);
    }
    if typ == "proc" && fsutil::relative(dest) != Path::new("proc") {
        return Err(Error::invalid(format!("proc may only be mounted on /proc, not {}", dest.display())));
    }
    let source = m.source().clone().unwrap_or_default();
    if o.is_bind() || typ == "bind" {
        let src = if source.is_absolute() { source } else { ctx.bundle.join(source) };
        let meta = std::fs::metadata(&src).map_err(|e| Error::io("bind mount source", &src, e))?;
        let target = if meta.is_dir() {
            mkdir_all_in_root(rootfd.as_raw_fd(), dest, 0o755)?
        } else {
            touch_in_root(rootfd.as_raw_fd(), dest)?
        };
        let flags = libc::MS_BIND | (o.flags & libc::MS_REC);
        sys_mount(Some(&src.to_string_lossy()), &fd_path(&target), None, flags, None)
            .step(|| format!("bind mount {} on {}", src.display(), dest.display()))?;
        let remount = o.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        let mounted = reopen(rootfd, dest)?;
        if remount != 0 {
            remount_bind(&mounted, remount, dest)?;
        }
        finish(&mounted, &o, dest)
    } else {
        let target = mkdir_all_in_root(rootfd.as_raw_fd(), dest, 0o755)?;
        let mut data = o.data.clone();
        if let Some(label) = ctx.mount_label.filter(|l| !l.is_empty() && crate::lsm::selinux_enabled()) {
            if !data.is_empty() {
                data.push(',');
            }
            data.push_str(&format!("context=\"{label}\""));
        }
        let src = if source.as_os_str().is_empty() { typ.to_string() } else { source.to_string_lossy().into_owned() };
        let copy_from = if o.tmpcopyup { Some(openat_in_root(rootfd.as_raw_fd(), &fsutil::relative(dest), libc::O_RDONLY | libc::O_DIRECTORY, 0).ok()) } else { None };
        let r = sys_mount(Some(&src), &fd_path(&target), Some(typ), o.flags & !libc::MS_REMOUNT, Some(&data));
        match r {
            Ok(()) => {}
            // Without its own network namespace (or in a user namespace) sysfs cannot be mounted
            // fresh; expose the host's read-only instead, as runc does.
            Err(Errno::EPERM) if typ == "sysfs" => {
                sys_mount(Some("/sys"), &fd_path(&target), None, libc::MS_BIND | libc::MS_REC, None)
                    .step(|| format!("bind /sys on {}", dest.display()))?;
                let mounted = reopen(rootfd, dest)?;
                remount_bind(&mounted, libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, dest)?;
            }
            Err(e) => return Err(Error::sys(format!("mount {typ} on {}", dest.display()), e)),
        }
        let mounted = reopen(rootfd, dest)?;
        if let Some(Some(src_dir)) = copy_from {
            crate::copyup::copy_dir(&src_dir, &mounted)
                .map_err(|e| Error::io("tmpcopyup into", dest, e))?;
        }
        finish(&mounted, &o, dest)
    }
}

/// After a mount, the fd resolved before it still points at the covered directory: re-resolve.
fn reopen(rootfd: &OwnedFd, dest: &Path) -> Result<OwnedFd> {
    openat_in_root(rootfd.as_raw_fd(), &fsutil::relative(dest), libc::O_PATH, 0)
        .map_err(|e| Error::sys(format!("open mounted {}", dest.display()), e))
}

/// Remounts a bind mount with new flags, keeping the flags the kernel locks (nosuid, nodev,
/// noexec, atime) when the source was mounted with them in another user namespace.
pub fn remount_bind(target: &OwnedFd, flags: libc::c_ulong, what: &Path) -> Result<()> {
    let path = fd_path(target);
    let base = libc::MS_REMOUNT | libc::MS_BIND;
    match sys_mount(None, &path, None, base | flags, None) {
        Err(Errno::EPERM) => {
            let st = nix::sys::statvfs::statvfs(path.as_str()).step(|| format!("statvfs {}", what.display()))?;
            let locked = st.flags().bits() as libc::c_ulong
                & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_RELATIME);
            sys_mount(None, &path, None, base | flags | locked, None)
                .step(|| format!("remount {} with flags {flags:#x}", what.display()))
        }
        r => r.step(|| format!("remount {} with flags {flags:#x}", what.display())),
    }
}

/// Propagation and recursive attributes, applied once the mount exists.
fn finish(target: &OwnedFd, o: &MountOpts, dest: &Path) -> Result<()> {
    for p in &o.propagation {
        sys_mount(None, &fd_path(target), None, *p, None)
            .step(|| format!("set propagation {p:#x} on {}", dest.display()))?;
    }
    if o.rec_set != 0 || o.rec_clear != 0 {
        mount_setattr(target, o.rec_set, o.rec_clear).map_err(|e| Error::sys(format!("set recursive attributes on {}", dest.display()), e))?;
    }
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub fn mount_setattr(target: &OwnedFd, set: u64, clear: u64) -> std::result::Result<(), Errno> {
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let empty = c"";
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, attr struct of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            target.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// A spec mount of type cgroup: v1 gets a tmpfs with one directory per hierarchy, v2 a cgroup2
/// mount (fresh in a cgroup namespace, else a bind of the container's own cgroup).
fn mount_cgroups(ctx: &Ctx, rootfd: &OwnedFd, dest: &Path, o: &MountOpts) -> Result<()> {
    let flags = (o.flags | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) & !libc::MS_REMOUNT;
    let v2_only = ctx.cgroups.len() == 1 && ctx.cgroups[0].subdir.is_empty();
    let target = mkdir_all_in_root(rootfd.as_raw_fd(), dest, 0o755)?;
    let tmpfs = if v2_only {
        None
    } else {
        sys_mount(Some("tmpfs"), &fd_path(&target), Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, Some("mode=755"))
            .step(|| format!("mount tmpfs for cgroups on {}", dest.display()))?;
        Some(reopen(rootfd, dest)?)
    };
    let attrs = mountopts::mount_attrs(flags & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC));
    for v in ctx.cgroups {
        let sub = dest.join(&v.subdir);
        let fast = match &tmpfs {
            Some(t) if !ctx.cgroupns => crate::mountapi::bind_into(&v.source, attrs, t, &v.subdir).map_err(|e| Error::sys(format!("bind cgroup {} on {}", v.source.display(), sub.display()), e))?,
            _ => false,
        };
        if fast {
            comount_links(v, tmpfs.as_ref().expect("fast path has the tmpfs"));
            continue;
        }
        let t = mkdir_all_in_root(rootfd.as_raw_fd(), &sub, 0o755)?;
        let r = if ctx.cgroupns {
            sys_mount(Some(v.fstype), &fd_path(&t), Some(v.fstype), flags, Some(&v.controllers.join(",")))
        } else {
            Err(Errno::EINVAL)
        };
        if r.is_err() {
            sys_mount(Some(&v.source.to_string_lossy()), &fd_path(&t), None, libc::MS_BIND | libc::MS_REC, None)
                .step(|| format!("bind cgroup {} on {}", v.source.display(), sub.display()))?;
            let m = reopen(rootfd, &sub)?;
            remount_bind(&m, flags & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC), &sub)?;
        }
        if let Some(t) = &tmpfs {
            comount_links(v, t);
        }
    }
    if let Some(t) = tmpfs.filter(|_| flags & libc::MS_RDONLY != 0) {
        sys_mount(None, &fd_path(&t), None, libc::MS_REMOUNT | flags, Some("mode=755"))
            .step(|| format!("remount cgroup tmpfs {} read-only", dest.display()))?;
    }
    Ok(())
}

/// Co-mounted controllers ("cpu,cpuacct") are also reachable by each name, as on the host:
/// symlinks in the cgroup tmpfs (`parent`).
fn comount_links(v: &crate::cgroups::CgroupMount, parent: &OwnedFd) {
    if !v.subdir.contains(',') {
        return;
    }
    let target_name = CString::new(v.subdir.as_bytes()).unwrap_or_default();
    for part in v.subdir.split(',') {
        let link = fsutil::relative(Path::new(part));
        let c = CString::new(link.file_name().unwrap_or_default().as_encoded_bytes()).unwrap_or_default();
        // SAFETY: valid fd and C strings.
        unsafe { libc::symlinkat(target_name.as_ptr(), parent.as_raw_fd(), c.as_ptr()) };
    }
}

/// The mount point holding `path` (the longest mount point that is a prefix of it; the topmost
/// of stacked mounts), made private if it is shared.
fn make_parent_private(path: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    let mut best: Option<(std::path::PathBuf, bool)> = None;
    for line in info.lines() {
        let Some((pre, _)) = line.split_once(" - ") else { continue };
        let f: Vec<&str> = pre.split(' ').collect();
        let Some(mp) = f.get(4).map(|m| std::path::PathBuf::from(unescape_mountinfo(m))) else { continue };
        if path.starts_with(&mp) && best.as_ref().is_none_or(|(b, _)| mp.components().count() >= b.components().count()) {
            let shared = f.iter().skip(6).any(|o| o.starts_with("shared:"));
            best = Some((mp, shared));
        }
    }
    match best {
        Some((mp, true)) => sys_mount(None, &mp.to_string_lossy(), None, libc::MS_PRIVATE, None)
            .step(|| format!("make {} (the mount holding the rootfs) private", mp.display())),
        _ => Ok(()),
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).filter(|o| b[i] == b'\\' && o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(o) => {
                out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// After the pivot: the spec's rootfsPropagation for the container's own root ("shared" could
/// not be set before pivot_root, which refuses a shared new root).
pub fn set_root_propagation(propagation: Option<&str>) -> Result<()> {
    let Some(p) = propagation.filter(|p| !p.is_empty()) else { return Ok(()) };
    let flag = mountopts::propagation_flag(p).ok_or_else(|| Error::invalid(format!("rootfsPropagation {p}")))?;
    sys_mount(None, "/", None, flag, None).step(|| format!("set propagation {p} of the container's /"))
}

/// Step 2: make the rootfs the process's root. pivot_root, or MS_MOVE + chroot where pivot_root
/// cannot work (rootfs on the initramfs) or `--no-pivot` asks for it.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if !no_pivot {
        match pivot_root(rootfs) {
            Ok(()) => return Ok(()),
            Err(Error::Sys { errno: Errno::EINVAL, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    nix::unistd::chdir(rootfs).step(|| format!("chdir {}", rootfs.display()))?;
    sys_mount(Some("."), "/", None, libc::MS_MOVE, None).step(|| format!("move {} to /", rootfs.display()))?;
    nix::unistd::chroot(".").step(|| "chroot into rootfs")?;
    nix::unistd::chdir("/").step(|| "chdir /")
}

/// (Detaching the old root waits for an RCU grace period, 0.1 ms on an idle host. Doing it in
/// a helper thread, overlapped with the masked paths and the identity, was measured slower on
/// the 2-CPU development VM as soon as it was busy: the init's two threads then compete for a
/// CPU with everything else.)
fn pivot_root(rootfs: &Path) -> Result<()> {
    let old = nix::fcntl::open("/", nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .step(|| "open /")?;
    nix::unistd::chdir(rootfs).step(|| format!("chdir {}", rootfs.display()))?;
    // pivot_root(".", "."): the old root ends up stacked on "." and is detached below, so no
    // directory for it is needed in the image.
    nix::unistd::pivot_root(".", ".").step(|| format!("pivot_root into {}", rootfs.display()))?;
    nix::unistd::fchdir(&old).step(|| "fchdir to old root")?;
    sys_mount(None, ".", None, libc::MS_SLAVE | libc::MS_REC, None).step(|| "make old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).step(|| "detach old root")?;
    nix::unistd::chdir("/").step(|| "chdir / in new root")
}

/// Step 3, after pivot_root: hide and protect /proc and /sys paths, then the read-only root.
pub fn mask_paths(masked: &[String]) -> Result<()> {
    for p in masked {
        let fd = match openat_in_root(libc::AT_FDCWD, Path::new(p), libc::O_PATH, 0) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("open masked path {p}"), e)),
        };
        let r = if fsutil::is_dir(&fd) {
            sys_mount(Some("tmpfs"), &fd_path(&fd), Some("tmpfs"), libc::MS_RDONLY, Some("size=0,mode=0555"))
        } else {
            sys_mount(Some("/dev/null"), &fd_path(&fd), None, libc::MS_BIND, None)
        };
        r.step(|| format!("mask {p}"))?;
    }
    Ok(())
}

pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let fd = match openat_in_root(libc::AT_FDCWD, Path::new(p), libc::O_PATH, 0) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("open read-only path {p}"), e)),
        };
        sys_mount(Some(&fd_path(&fd)), &fd_path(&fd), None, libc::MS_BIND | libc::MS_REC, None)
            .step(|| format!("bind read-only path {p}"))?;
        let m = openat_in_root(libc::AT_FDCWD, Path::new(p), libc::O_PATH, 0).step(|| format!("reopen {p}"))?;
        remount_bind(&m, libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, Path::new(p))?;
    }
    Ok(())
}

pub fn readonly_root() -> Result<()> {
    let fd = openat_in_root(libc::AT_FDCWD, Path::new("/"), libc::O_PATH, 0).step(|| "open /")?;
    remount_bind(&fd, libc::MS_RDONLY, Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b/c\134d\011"), "/a b/c\\d\t");
        assert_eq!(unescape_mountinfo(r"/plain\09"), r"/plain\09");
    }
}
