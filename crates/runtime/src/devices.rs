//! Device nodes in the container's /dev: the defaults every container gets, the spec's
//! linux.devices, and the standard /dev symlinks. In a user namespace, where mknod is not
//! allowed, devices are bind-mounted from the host instead.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result, SysContext};
use crate::fsutil::{self, fd_path, mkdir_all_in_root, touch_in_root};

/// (name, major, minor) of the devices the runtime spec requires.
pub const DEFAULT_DEVICES: [(&str, u64, u64); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

const SYMLINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn mknod_at(dir: &OwnedFd, name: &str, kind: libc::mode_t, perm: u32, major: u64, minor: u64) -> std::result::Result<(), Errno> {
    let c = cstr(name);
    // Replace whatever the image had there (a stale node, a symlink planted to redirect us).
    // SAFETY: valid fd and C string.
    unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
    // SAFETY: as above.
    let r = unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), kind | perm, libc::makedev(major as u32, minor as u32)) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

fn bind_host_device(root: &OwnedFd, rel: &Path, host: &Path) -> Result<()> {
    let t = touch_in_root(root.as_raw_fd(), rel)?;
    nix::mount::mount(Some(host), fd_path(&t).as_str(), None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
        .step(|| format!("bind device {} to /{}", host.display(), rel.display()))
}

fn create_node(root: &OwnedFd, rel: &Path, kind: libc::mode_t, perm: u32, major: u64, minor: u64, userns: bool) -> Result<()> {
    let parent = mkdir_all_in_root(root.as_raw_fd(), rel.parent().unwrap_or(Path::new("")), 0o755)?;
    let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match mknod_at(&parent, &name, kind, perm, major, minor) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) if userns && kind != libc::S_IFIFO => {
            let host = format!("/sys/dev/{}/{major}:{minor}", if kind == libc::S_IFBLK { "block" } else { "char" });
            // The host node's path: /dev/<DEVNAME> from the uevent file.
            let devname = std::fs::read_to_string(format!("{host}/uevent"))
                .ok()
                .and_then(|u| u.lines().find_map(|l| l.strip_prefix("DEVNAME=").map(str::to_string)));
            match devname {
                Some(n) => bind_host_device(root, rel, &Path::new("/dev").join(n)),
                None => Err(Error::sys(format!("mknod /{} (no host node to bind in a user namespace)", rel.display()), Errno::EPERM)),
            }
        }
        Err(e) => Err(Error::sys(format!("mknod /{}", rel.display()), e)),
    }
}

/// The default devices and /dev symlinks, unless the spec defines a device at the same path.
pub fn create_default(root: &OwnedFd, spec_devices: &[LinuxDevice], userns: bool) -> Result<()> {
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let r = (|| {
        // /dev resolved once for all of them.
        let dev = mkdir_all_in_root(root.as_raw_fd(), Path::new("dev"), 0o755)?;
        for (name, major, minor) in DEFAULT_DEVICES {
            let path = Path::new("/dev").join(name);
            if spec_devices.iter().any(|d| d.path() == &path) {
                continue;
            }
            match mknod_at(&dev, name, libc::S_IFCHR, 0o666, major, minor) {
                Ok(()) => {}
                // create_node knows the user-namespace fallback.
                Err(Errno::EPERM) if userns => create_node(root, &fsutil::relative(&path), libc::S_IFCHR, 0o666, major, minor, userns)?,
                Err(e) => return Err(Error::sys(format!("mknod {}", path.display()), e)),
            }
        }
        let mut links: Vec<(&str, &str)> = SYMLINKS.to_vec();
        if Path::new("/proc/kcore").exists() {
            links.push(("/proc/kcore", "core"));
        }
        for (target, name) in links {
            let (t, n) = (cstr(target), cstr(name));
            // SAFETY: valid fd and C strings.
            unsafe { libc::unlinkat(dev.as_raw_fd(), n.as_ptr(), 0) };
            // SAFETY: as above.
            if unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) } != 0 {
                return Err(Error::sys(format!("symlink /dev/{name} -> {target}"), Errno::last()));
            }
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    r
}

pub fn create_spec_devices(root: &OwnedFd, devices: &[LinuxDevice], userns: bool) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let r = (|| {
        for d in devices {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
                LinuxDeviceType::B => libc::S_IFBLK,
                LinuxDeviceType::P => libc::S_IFIFO,
                LinuxDeviceType::A => {
                    return Err(Error::invalid(format!("device {}: type 'a' is not a node type", d.path().display())))
                }
            };
            let rel = fsutil::relative(d.path());
            let perm = d.file_mode().unwrap_or(0o666) & 0o7777;
            create_node(root, &rel, kind, perm, d.major() as u64, d.minor() as u64, userns)?;
            if d.uid().is_some() || d.gid().is_some() {
                let fd = fsutil::openat_in_root(root.as_raw_fd(), &rel, libc::O_PATH, 0)
                    .map_err(|e| Error::sys(format!("open device {}", d.path().display()), e))?;
                let empty = c"";
                // SAFETY: valid fd, empty path with AT_EMPTY_PATH.
                let r = unsafe {
                    libc::fchownat(
                        fd.as_raw_fd(),
                        empty.as_ptr(),
                        d.uid().unwrap_or(u32::MAX),
                        d.gid().unwrap_or(u32::MAX),
                        libc::AT_EMPTY_PATH,
                    )
                };
                if r != 0 {
                    return Err(Error::sys(format!("chown device {}", d.path().display()), Errno::last()));
                }
            }
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    r
}

/// The device cgroup rules a container gets: access to the default devices, mknod of any node,
/// the ptys, and every device the spec creates, then the spec's own rules. Without the defaults
/// a spec that only says "deny all" could not even create /dev/null. The defaults go after the
/// spec's last "deny all" (which would wipe them) but before its other rules, so that a spec
/// rule denying a default device (say /dev/zero) is obeyed; runc appends them last instead.
pub fn cgroup_rules(spec_rules: &[LinuxDeviceCgroup], spec_devices: &[LinuxDevice]) -> Vec<LinuxDeviceCgroup> {
    let rule = |allow: bool, typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    let deny_all = |r: &LinuxDeviceCgroup| {
        !r.allow() && matches!(r.typ(), None | Some(LinuxDeviceType::A)) && r.major().is_none() && r.minor().is_none()
    };
    let split = spec_rules.iter().rposition(deny_all).map_or(0, |i| i + 1);
    let mut out = spec_rules[..split].to_vec();
    out.push(rule(true, LinuxDeviceType::C, None, None, "m"));
    out.push(rule(true, LinuxDeviceType::B, None, None, "m"));
    for (_, major, minor) in DEFAULT_DEVICES {
        out.push(rule(true, LinuxDeviceType::C, Some(major as i64), Some(minor as i64), "rwm"));
    }
    out.push(rule(true, LinuxDeviceType::C, Some(5), Some(1), "rwm")); // /dev/console
    out.push(rule(true, LinuxDeviceType::C, Some(5), Some(2), "rwm")); // /dev/ptmx
    out.push(rule(true, LinuxDeviceType::C, Some(136), None, "rwm")); // /dev/pts/*
    for d in spec_devices {
        let typ = if d.typ() == LinuxDeviceType::U { LinuxDeviceType::C } else { d.typ() };
        out.push(rule(true, typ, Some(d.major()), Some(d.minor()), "rwm"));
    }
    out.extend_from_slice(&spec_rules[split..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec_rules() {
        let deny: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        let dev: LinuxDevice = serde_json::from_str(r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229}"#).unwrap();
        let rules = cgroup_rules(&[deny], &[dev]);
        assert!(!rules[0].allow());
        assert!(rules.iter().any(|r| r.allow() && r.major() == Some(1) && r.minor() == Some(3)));
        let last = rules.last().unwrap();
        assert_eq!((last.major(), last.minor()), (Some(10), Some(229)));
    }

    #[test]
    fn spec_rules_after_deny_all_override_the_defaults() {
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":false,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":5,"access":"r"}]"#,
        )
        .unwrap();
        let rules = cgroup_rules(&spec, &[]);
        assert!(!rules[0].allow());
        let last = rules.last().unwrap();
        assert!(!last.allow() && (last.major(), last.minor()) == (Some(1), Some(5)));
        assert!(rules.iter().any(|r| r.allow() && r.major() == Some(1) && r.minor() == Some(5)));
    }
}
