//! Devices: `HostConfig.Devices` (host nodes stat'ed for type, numbers, mode and owner; a
//! directory adds every device under it), `DeviceCgroupRules` (`c 1:3 rwm`), the device cgroup
//! Docker allows by default, and every host device for `--privileged`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_api::container_config::{DeviceMapping, DeviceRequest};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// Docker's default device cgroup (moby `oci.DefaultLinuxSpec`): deny everything, then allow
/// null, zero, full... as (allow, type, major, minor); `/dev/net/tun` (10:229) stays denied.
const DEFAULT_RULES: [(bool, Option<char>, i64, i64); 8] = [
    (false, None, -1, -1),
    (true, Some('c'), 1, 5),
    (true, Some('c'), 1, 3),
    (true, Some('c'), 1, 9),
    (true, Some('c'), 1, 8),
    (true, Some('c'), 5, 0),
    (true, Some('c'), 5, 1),
    (false, Some('c'), 10, 229),
];

/// Directories and files of the host's /dev a privileged container does not get (they are
/// mounted separately, or are the host's console).
const HOST_DEV_SKIP_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

fn dev_type(c: char) -> LinuxDeviceType {
    match c {
        'b' => LinuxDeviceType::B,
        'p' => LinuxDeviceType::P,
        'a' => LinuxDeviceType::A,
        _ => LinuxDeviceType::C,
    }
}

fn rule(allow: bool, typ: Option<char>, major: Option<i64>, minor: Option<i64>, access: &str) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(typ.map(dev_type));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

pub(crate) fn default_rules() -> Vec<LinuxDeviceCgroup> {
    DEFAULT_RULES
        .iter()
        .map(|&(allow, t, ma, mi)| rule(allow, t, (ma >= 0).then_some(ma), (mi >= 0).then_some(mi), "rwm"))
        .collect()
}

/// A device node on the host (lstat: a symlink is not a device), or `None`.
fn device_at(path: &Path) -> Option<(char, std::fs::Metadata)> {
    let md = std::fs::symlink_metadata(path).ok()?;
    let ft = md.file_type();
    let t = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        'p'
    } else {
        return None;
    };
    Some((t, md))
}

fn spec_device(path_in_container: &str, t: char, md: &std::fs::Metadata) -> LinuxDevice {
    let mut d = LinuxDevice::default();
    d.set_path(PathBuf::from(path_in_container));
    d.set_typ(dev_type(t));
    d.set_major(libc::major(md.rdev()) as i64);
    d.set_minor(libc::minor(md.rdev()) as i64);
    d.set_file_mode(Some(md.mode() & 0o7777));
    d.set_uid(Some(md.uid()));
    d.set_gid(Some(md.gid()));
    d
}

/// Docker's `DevicesFromPath`: the node (symlinks followed once), or every node under a
/// directory with its path rebased on `in_container`; each with its cgroup rule (none for a
/// FIFO, which the device cgroup does not control).
fn devices_from_path(m: &DeviceMapping) -> Result<Vec<(LinuxDevice, Option<LinuxDeviceCgroup>)>> {
    let on_host = PathBuf::from(&m.path_on_host);
    let in_container = if m.path_in_container.is_empty() { &m.path_on_host } else { &m.path_in_container };
    let perms = if m.cgroup_permissions.is_empty() { "rwm" } else { m.cgroup_permissions.as_str() };
    if perms.chars().any(|c| !"rwm".contains(c)) || perms.len() > 3 {
        return Err(Error::invalid(format!("invalid device mode: {perms}")));
    }
    let resolved = match std::fs::symlink_metadata(&on_host) {
        Ok(md) if md.file_type().is_symlink() => std::fs::canonicalize(&on_host).unwrap_or(on_host.clone()),
        _ => on_host.clone(),
    };
    let with_rule = |d: LinuxDevice| {
        let t = match d.typ() {
            LinuxDeviceType::B => Some('b'),
            LinuxDeviceType::P => None,
            _ => Some('c'),
        };
        let r = t.map(|t| rule(true, Some(t), Some(d.major()), Some(d.minor()), perms));
        (d, r)
    };
    if let Some((t, md)) = device_at(&resolved) {
        return Ok(vec![with_rule(spec_device(in_container, t, &md))]);
    }
    let mut out = Vec::new();
    if resolved.is_dir() {
        let mut stack = vec![resolved.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            entries.sort();
            for p in entries {
                if let Some((t, md)) = device_at(&p) {
                    let rel = p.strip_prefix(&resolved).unwrap_or(&p);
                    let dest = Path::new(in_container).join(rel);
                    out.push(with_rule(spec_device(&dest.to_string_lossy(), t, &md)));
                } else if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                    stack.push(p);
                }
            }
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(format!(
            "error gathering device information while adding custom device {:?}: not a device node",
            m.path_on_host
        )));
    }
    Ok(out)
}

/// `DeviceCgroupRules` entries: `<a|b|c> <major|*>:<minor|*> <rwm>`.
fn parse_rule(s: &str) -> Result<LinuxDeviceCgroup> {
    let bad = || Error::invalid(format!("invalid device cgroup rule format: '{s}'"));
    let mut f = s.split(' ');
    let (Some(t), Some(nums), Some(access), None) = (f.next(), f.next(), f.next(), f.next()) else {
        return Err(bad());
    };
    let t = match t {
        "a" | "b" | "c" => t.chars().next().unwrap(),
        _ => return Err(bad()),
    };
    let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
    let num = |n: &str| -> Result<i64> {
        match n {
            "*" => Ok(-1),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.parse().map_err(|_| bad()),
            _ => Err(bad()),
        }
    };
    if access.is_empty() || access.len() > 3 || access.chars().any(|c| !"rwm".contains(c)) {
        return Err(bad());
    }
    Ok(rule(true, Some(t), Some(num(ma)?), Some(num(mi)?), access))
}

/// Every device node under the host's /dev (containerd's `HostDevices`), for `--privileged`.
fn host_devices(dev: &Path) -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    let mut stack = vec![dev.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if !HOST_DEV_SKIP_DIRS.contains(&name.as_ref()) {
                    stack.push(p);
                }
                continue;
            }
            if name == "console" {
                continue;
            }
            if let Some((t, md)) = device_at(&p).filter(|(t, _)| *t != 'p') {
                out.push(spec_device(&p.to_string_lossy(), t, &md));
            }
        }
    }
    out
}

/// Device nodes and device cgroup rules.
pub(crate) fn devices(
    mappings: &[DeviceMapping],
    cgroup_rules: &[String],
    requests: &[DeviceRequest],
    privileged: bool,
    host_dev: &Path,
    warnings: &mut Vec<String>,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    if let Some(r) = requests.first() {
        // No device drivers (NVIDIA, CDI) yet: Docker's answer when none matches.
        let caps: Vec<String> = r.capabilities.iter().flatten().map(|c| format!("[{}]", c.join(" "))).collect();
        return Err(Error::invalid(format!(
            "could not select device driver {:?} with capabilities: [{}]",
            r.driver,
            caps.join(" ")
        )));
    }
    let mut devs = Vec::new();
    let mut rules;
    if privileged {
        devs = host_devices(host_dev);
        for m in mappings {
            if !m.cgroup_permissions.is_empty() && m.cgroup_permissions != "rwm" {
                warnings.push(format!(
                    "custom {} permissions for device {} are ignored in privileged mode",
                    m.cgroup_permissions, m.path_on_host
                ));
            }
            if m.path_on_host == m.path_in_container || m.path_in_container.is_empty() {
                continue; // already there, from the host's /dev
            }
            let m = DeviceMapping { cgroup_permissions: "rwm".into(), ..m.clone() };
            devs.extend(devices_from_path(&m)?.into_iter().map(|(d, _)| d));
        }
        rules = vec![rule(true, None, None, None, "rwm")];
    } else {
        rules = default_rules();
        for m in mappings {
            for (d, r) in devices_from_path(m)? {
                devs.push(d);
                rules.extend(r);
            }
        }
        for r in cgroup_rules {
            rules.push(parse_rule(r)?);
        }
    }
    Ok((devs, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(r: &LinuxDeviceCgroup) -> String {
        let t = r.typ().map(|t| format!("{t:?}").to_lowercase()).unwrap_or_else(|| "-".into());
        let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        format!("{} {t} {}:{} {}", r.allow(), n(r.major()), n(r.minor()), r.access().as_deref().unwrap_or(""))
    }

    #[test]
    fn default_cgroup_is_dockers() {
        let (devs, rules) = devices(&[], &[], &[], false, Path::new("/dev"), &mut vec![]).unwrap();
        assert!(devs.is_empty());
        let s: Vec<String> = rules.iter().map(summary).collect();
        assert_eq!(s, ["false - -:- rwm", "true c 1:5 rwm", "true c 1:3 rwm", "true c 1:9 rwm", "true c 1:8 rwm", "true c 5:0 rwm", "true c 5:1 rwm", "false c 10:229 rwm"]);
    }

    #[test]
    fn mapped_devices_are_stated() {
        let m = DeviceMapping { path_on_host: "/dev/null".into(), path_in_container: "/dev/xnull".into(), cgroup_permissions: "rw".into() };
        let rules = ["c 1:3 rwm".to_string(), "b *:* m".to_string()];
        let (devs, r) = devices(&[m], &rules, &[], false, Path::new("/dev"), &mut vec![]).unwrap();
        let d = &devs[0];
        assert_eq!((d.path().to_str(), d.typ(), d.major(), d.minor(), d.file_mode()), (Some("/dev/xnull"), LinuxDeviceType::C, 1, 3, Some(0o666)));
        assert_eq!((d.uid(), d.gid()), (Some(0), Some(0)));
        let s: Vec<String> = r[8..].iter().map(summary).collect();
        assert_eq!(s, ["true c 1:3 rw", "true c 1:3 rwm", "true b -1:-1 m"]);
    }

    #[test]
    fn a_directory_adds_the_devices_under_it() {
        let m = DeviceMapping { path_on_host: "/dev".into(), path_in_container: "/hostdev".into(), cgroup_permissions: "r".into() };
        let (devs, rules) = devices(&[m], &[], &[], false, Path::new("/dev"), &mut vec![]).unwrap();
        assert!(devs.iter().any(|d| d.path() == Path::new("/hostdev/null")));
        assert!(devs.iter().all(|d| d.path().starts_with("/hostdev")));
        assert_eq!(rules.len(), 8 + devs.len());
    }

    #[test]
    fn errors_like_docker() {
        let e = |m: DeviceMapping| devices(&[m], &[], &[], false, Path::new("/dev"), &mut vec![]).unwrap_err().to_string();
        let m = DeviceMapping { path_on_host: "/etc/hostname".into(), ..Default::default() };
        assert_eq!(e(m), r#"error gathering device information while adding custom device "/etc/hostname": not a device node"#);
        let m = DeviceMapping { path_on_host: "/dev/null".into(), cgroup_permissions: "rwx".into(), ..Default::default() };
        assert_eq!(e(m), "invalid device mode: rwx");
        for bad in ["c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c a:3 rwm", "c 1:3 rwx", "c 1:3 rwm extra"] {
            let r = devices(&[], &[bad.to_string()], &[], false, Path::new("/dev"), &mut vec![]).unwrap_err();
            assert_eq!(r.to_string(), format!("invalid device cgroup rule format: '{bad}'"));
        }
        let req = DeviceRequest { count: -1, capabilities: Some(vec![vec!["gpu".into()]]), ..Default::default() };
        let r = devices(&[], &[], &[req], false, Path::new("/dev"), &mut vec![]).unwrap_err();
        assert_eq!(r.to_string(), r#"could not select device driver "" with capabilities: [[gpu]]"#);
    }

    #[test]
    fn privileged_gets_every_host_device() {
        let mut w = vec![];
        let m = DeviceMapping { path_on_host: "/dev/null".into(), path_in_container: "/dev/other".into(), cgroup_permissions: "r".into() };
        let (devs, rules) = devices(&[m], &["c 1:3 r".into()], &[], true, Path::new("/dev"), &mut w).unwrap();
        assert!(devs.iter().any(|d| d.path() == Path::new("/dev/null")));
        assert!(devs.iter().any(|d| d.path() == Path::new("/dev/other")));
        assert!(!devs.iter().any(|d| d.path().starts_with("/dev/pts") || d.path() == Path::new("/dev/console")));
        assert_eq!(rules.iter().map(summary).collect::<Vec<_>>(), ["true - -:- rwm"]);
        assert_eq!(w.len(), 1);
    }
}
