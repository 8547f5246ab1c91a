//! The five capability sets of the container process, as bit masks computed in the parent and
//! applied in the child with a handful of raw syscalls (no allocation after fork).

use std::str::FromStr;

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Capability number from an OCI name such as `CAP_NET_ADMIN` (or oci-spec's `NET_ADMIN`).
pub fn cap_index(name: &str) -> Result<u8> {
    let full = if name.starts_with("CAP_") { name.to_string() } else { format!("CAP_{name}") };
    caps::Capability::from_str(&full)
        .map(|c| c.index())
        .map_err(|_| Error::invalid(format!("unknown capability {name:?}")))
}

fn mask(set: &Option<Capabilities>) -> Result<u64> {
    let mut m = 0u64;
    for c in set.iter().flatten() {
        m |= 1u64 << cap_index(&c.to_string())?;
    }
    Ok(m)
}

/// The caller's bounding set, read from /proc/self/status (CapBnd).
pub fn current_bounding() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::io("read", "/proc/self/status", e))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| Error::invalid("CapBnd missing from /proc/self/status"))
}

pub fn names(mask: u64) -> Vec<String> {
    caps::all()
        .into_iter()
        .filter(|c| mask & (1u64 << c.index()) != 0)
        .map(|c| c.to_string())
        .collect()
}

impl CapSets {
    pub fn from_spec(c: &LinuxCapabilities) -> Result<CapSets> {
        Ok(CapSets {
            bounding: mask(c.bounding())?,
            effective: mask(c.effective())?,
            permitted: mask(c.permitted())?,
            inheritable: mask(c.inheritable())?,
            ambient: mask(c.ambient())?,
        })
    }

    /// The kernel only raises ambient capabilities that are permitted and inheritable; runc
    /// warns and goes on for the others, and so do we (specs written for runc rely on it).
    pub fn effective_ambient(&mut self, warn: &mut dyn FnMut(String)) {
        let bad = self.ambient & !(self.permitted & self.inheritable);
        if bad != 0 {
            warn(format!("ambient capabilities {} ignored: not both permitted and inheritable", names(bad).join(", ")));
            self.ambient &= !bad;
        }
    }

    /// A capability the caller's bounding set lacks can never be granted: say which.
    pub fn check_bounding(&self) -> Result<()> {
        // PR_CAPBSET_READ of just the wanted capabilities: a few cheap syscalls, where
        // /proc/self/status makes the kernel format a page of text.
        let wanted = self.bounding | self.effective | self.permitted | self.inheritable | self.ambient;
        let mut have = 0u64;
        for cap in (0..64).filter(|c| wanted & (1u64 << c) != 0) {
            // SAFETY: prctl with integer arguments only.
            match unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) } {
                1 => have |= 1u64 << cap,
                0 => {}
                // EINVAL: a capability this kernel does not know, so not in the bounding set.
                _ if nix::errno::Errno::last() == nix::errno::Errno::EINVAL => {}
                _ => return self.check_against(current_bounding()?),
            }
        }
        self.check_against(have)
    }

    pub fn check_against(&self, host: u64) -> Result<()> {
        let wanted = self.bounding | self.effective | self.permitted | self.inheritable | self.ambient;
        let missing = wanted & !host;
        if missing != 0 {
            return Err(Error::NotPermitted(format!(
                "capabilities {} are not in the runtime's bounding set",
                names(missing).join(", ")
            )));
        }
        Ok(())
    }

    /// Drops from the bounding set everything not in `self.bounding`. Runs in the child while it
    /// still has CAP_SETPCAP.
    pub fn drop_bounding(&self) -> Result<()> {
        let last = last_cap();
        for cap in 0..=last {
            if self.bounding & (1u64 << cap) == 0 {
                // SAFETY: prctl with integer arguments only.
                let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                if r != 0 {
                    let e = nix::errno::Errno::last();
                    if e != nix::errno::Errno::EINVAL {
                        return Err(Error::sys(format!("drop capability {cap} from bounding set"), e));
                    }
                }
            }
        }
        Ok(())
    }

    /// Sets effective/permitted/inheritable, then raises the ambient ones.
    pub fn apply(&self) -> Result<()> {
        let hdr = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let data = [
            CapData {
                effective: self.effective as u32,
                permitted: self.permitted as u32,
                inheritable: self.inheritable as u32,
            },
            CapData {
                effective: (self.effective >> 32) as u32,
                permitted: (self.permitted >> 32) as u32,
                inheritable: (self.inheritable >> 32) as u32,
            },
        ];
        // SAFETY: header and two data structs laid out as the kernel's v3 ABI.
        let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
        if r != 0 {
            return Err(Error::sys("capset", nix::errno::Errno::last()));
        }
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
        for cap in 0..64u64 {
            if self.ambient & (1 << cap) != 0 {
                // SAFETY: as above.
                let r = unsafe {
                    libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap as libc::c_ulong, 0, 0)
                };
                if r != 0 {
                    return Err(Error::sys(format!("raise ambient capability {cap}"), nix::errno::Errno::last()));
                }
            }
        }
        Ok(())
    }
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability the running kernel knows. Read once per process: `create` reads it
/// before the fork, so that the init does not.
pub fn last_cap() -> u8 {
    static LAST: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_from_spec_and_bounding_check() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"],
                "permitted":["CAP_KILL"],"inheritable":["CAP_KILL"],"ambient":["CAP_KILL"]}"#,
        )
        .unwrap();
        let s = CapSets::from_spec(&c).unwrap();
        assert_eq!(s.bounding, (1u64 << 0) | (1u64 << 5));
        assert_eq!(s.effective, 1u64 << 5);
        s.check_against(u64::MAX).unwrap();
        let err = s.check_against(1u64 << 5).unwrap_err().to_string();
        assert!(err.contains("CAP_CHOWN"), "{err}");
    }

    #[test]
    fn ambient_not_inheritable_is_dropped_with_a_warning() {
        let c: LinuxCapabilities =
            serde_json::from_str(r#"{"ambient":["CAP_KILL","CAP_CHOWN"],"permitted":["CAP_KILL","CAP_CHOWN"],"inheritable":["CAP_CHOWN"]}"#).unwrap();
        let mut s = CapSets::from_spec(&c).unwrap();
        let mut w = vec![];
        s.effective_ambient(&mut |m| w.push(m));
        assert_eq!(s.ambient, 1u64 << 0);
        assert!(w[0].contains("CAP_KILL"), "{w:?}");
    }

    #[test]
    fn index_accepts_both_spellings() {
        assert_eq!(cap_index("CAP_SYS_ADMIN").unwrap(), 21);
        assert_eq!(cap_index("SYS_ADMIN").unwrap(), 21);
        assert!(cap_index("CAP_NOPE").is_err());
    }
}
