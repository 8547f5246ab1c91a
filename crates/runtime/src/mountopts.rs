//! OCI mount options -> mount(2) flags, propagation, recursive attributes (mount_setattr) and
//! the filesystem data string.

use crate::error::{Error, Result};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOpts {
    /// Flags for mount(2) (MS_RDONLY, MS_NOSUID, ... and MS_BIND/MS_REC for binds).
    pub flags: libc::c_ulong,
    /// Flags explicitly cleared (e.g. "rw", "suid"), relevant when remounting.
    pub cleared: libc::c_ulong,
    /// Propagation flags applied after the mount (MS_PRIVATE, MS_SHARED|MS_REC, ...).
    pub propagation: Vec<libc::c_ulong>,
    /// Attributes set recursively with mount_setattr(AT_RECURSIVE) ("rro", "rnosuid", ...).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Everything else, comma-joined: filesystem-specific data such as "mode=755,size=65536k".
    pub data: String,
    /// Copy the existing directory content into the new tmpfs.
    pub tmpcopyup: bool,
}

impl MountOpts {
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }
}

// mount_setattr attribute bits (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// The mount_setattr attributes for the per-mount flags among `flags` (MS_RDONLY, MS_NOSUID,
/// MS_NODEV, MS_NOEXEC).
pub fn mount_attrs(flags: libc::c_ulong) -> u64 {
    [
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    ]
    .iter()
    .filter(|(f, _)| flags & f != 0)
    .fold(0, |a, (_, m)| a | m)
}

pub fn propagation_flag(name: &str) -> Option<libc::c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

pub fn parse(options: &[String]) -> Result<MountOpts> {
    let mut o = MountOpts::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_str();
        // (flag, set?) for plain mount flags.
        let plain: Option<(libc::c_ulong, bool)> = match opt {
            "defaults" => Some((0, true)),
            "ro" => Some((libc::MS_RDONLY, true)),
            "rw" => Some((libc::MS_RDONLY, false)),
            "nosuid" => Some((libc::MS_NOSUID, true)),
            "suid" => Some((libc::MS_NOSUID, false)),
            "nodev" => Some((libc::MS_NODEV, true)),
            "dev" => Some((libc::MS_NODEV, false)),
            "noexec" => Some((libc::MS_NOEXEC, true)),
            "exec" => Some((libc::MS_NOEXEC, false)),
            "sync" => Some((libc::MS_SYNCHRONOUS, true)),
            "async" => Some((libc::MS_SYNCHRONOUS, false)),
            "dirsync" => Some((libc::MS_DIRSYNC, true)),
            "remount" => Some((libc::MS_REMOUNT, true)),
            "mand" => Some((libc::MS_MANDLOCK, true)),
            "nomand" => Some((libc::MS_MANDLOCK, false)),
            "atime" => Some((libc::MS_NOATIME, false)),
            "noatime" => Some((libc::MS_NOATIME, true)),
            "diratime" => Some((libc::MS_NODIRATIME, false)),
            "nodiratime" => Some((libc::MS_NODIRATIME, true)),
            "relatime" => Some((libc::MS_RELATIME, true)),
            "norelatime" => Some((libc::MS_RELATIME, false)),
            "strictatime" => Some((libc::MS_STRICTATIME, true)),
            "nostrictatime" => Some((libc::MS_STRICTATIME, false)),
            "nosymfollow" => Some((libc::MS_NOSYMFOLLOW, true)),
            "symfollow" => Some((libc::MS_NOSYMFOLLOW, false)),
            "bind" => Some((libc::MS_BIND, true)),
            "rbind" => Some((libc::MS_BIND | libc::MS_REC, true)),
            _ => None,
        };
        if let Some((flag, set)) = plain {
            if set {
                o.flags |= flag;
                o.cleared &= !flag;
            } else {
                o.flags &= !flag;
                o.cleared |= flag;
            }
            continue;
        }
        if let Some(p) = propagation_flag(opt) {
            o.propagation.push(p);
            continue;
        }
        let rec: Option<(u64, bool)> = match opt {
            "rro" => Some((MOUNT_ATTR_RDONLY, true)),
            "rrw" => Some((MOUNT_ATTR_RDONLY, false)),
            "rnosuid" => Some((MOUNT_ATTR_NOSUID, true)),
            "rsuid" => Some((MOUNT_ATTR_NOSUID, false)),
            "rnodev" => Some((MOUNT_ATTR_NODEV, true)),
            "rdev" => Some((MOUNT_ATTR_NODEV, false)),
            "rnoexec" => Some((MOUNT_ATTR_NOEXEC, true)),
            "rexec" => Some((MOUNT_ATTR_NOEXEC, false)),
            "rnodiratime" => Some((MOUNT_ATTR_NODIRATIME, true)),
            "rdiratime" => Some((MOUNT_ATTR_NODIRATIME, false)),
            "rnosymfollow" => Some((MOUNT_ATTR_NOSYMFOLLOW, true)),
            "rsymfollow" => Some((MOUNT_ATTR_NOSYMFOLLOW, false)),
            _ => None,
        };
        if let Some((attr, set)) = rec {
            if set {
                o.rec_set |= attr;
                o.rec_clear &= !attr;
            } else {
                o.rec_clear |= attr;
                o.rec_set &= !attr;
            }
            continue;
        }
        // Access-time options are one field: setting one clears the whole __ATIME group.
        let atime = match opt {
            "rrelatime" => Some(MOUNT_ATTR_RELATIME),
            "rnoatime" => Some(MOUNT_ATTR_NOATIME),
            "rstrictatime" => Some(MOUNT_ATTR_STRICTATIME),
            "ratime" | "rnorelatime" | "rnostrictatime" => Some(MOUNT_ATTR_RELATIME),
            _ => None,
        };
        if let Some(a) = atime {
            o.rec_clear |= MOUNT_ATTR__ATIME;
            o.rec_set = (o.rec_set & !MOUNT_ATTR__ATIME) | a;
            continue;
        }
        match opt {
            "tmpcopyup" => o.tmpcopyup = true,
            "idmap" | "ridmap" => {
                return Err(Error::invalid(format!("mount option {opt} is not supported yet")))
            }
            "" => {}
            _ => data.push(opt),
        }
    }
    o.data = data.join(",");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_attrs_from_flags() {
        assert_eq!(mount_attrs(0), 0);
        let all = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        assert_eq!(mount_attrs(all | libc::MS_BIND | libc::MS_REC), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        assert_eq!(mount_attrs(libc::MS_NOEXEC), MOUNT_ATTR_NOEXEC);
    }

    fn p(opts: &[&str]) -> MountOpts {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn plain_flags_and_data() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = p(&["ro", "rw"]);
        assert_eq!(o.flags & libc::MS_RDONLY, 0);
        assert_eq!(o.cleared, libc::MS_RDONLY);
    }

    #[test]
    fn binds_propagation_and_recursive() {
        let o = p(&["rbind", "rprivate", "rro", "rnosuid"]);
        assert!(o.is_bind());
        assert_eq!(o.flags & libc::MS_REC, libc::MS_REC);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        assert_eq!(o.rec_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        let o = p(&["rnoatime"]);
        assert_eq!(o.rec_clear, MOUNT_ATTR__ATIME);
        assert_eq!(o.rec_set, MOUNT_ATTR_NOATIME);
    }

    #[test]
    fn idmap_is_refused_clearly() {
        let e = parse(&["idmap".into()]).unwrap_err().to_string();
        assert!(e.contains("idmap"), "{e}");
    }
}
