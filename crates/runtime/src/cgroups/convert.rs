//! Pure conversions from OCI resource values to cgroup file values, shared by v1 and v2.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::{Error, Result};

/// cgroup v1 `cpu.shares` -> cgroup v2 `cpu.weight`, the conversion runc and crun use:
/// `1 + ((shares - 2) * 9999) / 262142`, with shares clamped to the v1 range [2, 262144]
/// (so the weight is always within [1, 10000]).
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// cgroup v1 `blkio.weight` (10..1000) -> cgroup v2 `io.weight` (1..10000).
pub(super) fn blkio_weight_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

/// The cgroup v2 `memory.swap.max` value for an OCI memory `limit` and `swap`, or `None` to
/// leave it alone. OCI's `swap` is memory+swap (the v1 `memsw` meaning); v2 limits swap alone,
/// so the value is `swap - limit` (runc's conversion):
/// - swap unset (or 0): unset, except with limit -1 (unlimited), which also makes swap "max";
/// - swap -1: "max";
/// - otherwise the limit must be set and positive, and swap >= limit.
pub fn v2_swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>> {
    let limit = limit.filter(|&l| l != 0);
    match swap.filter(|&s| s != 0) {
        None if limit == Some(-1) => Ok(Some("max".into())),
        None => Ok(None),
        Some(-1) => Ok(Some("max".into())),
        Some(s) if s < 0 => Err(Error::invalid(format!("memory.swap {s} is invalid"))),
        Some(s) => match limit {
            None | Some(-1) => Err(Error::invalid(format!(
                "memory.swap {s} needs a memory.limit: on cgroup v2 swap is limited as \
                 swap - limit"
            ))),
            Some(l) if l < 0 => Err(Error::invalid(format!("memory.limit {l} is invalid"))),
            Some(l) if s < l => Err(Error::invalid(format!(
                "memory.swap {s} (memory+swap) must be >= memory.limit {l}"
            ))),
            Some(l) => Ok(Some((s - l).to_string())),
        },
    }
}

/// A memory value: -1 = "max"; other negatives are refused.
pub(super) fn mem_value(what: &str, v: i64, max: &str) -> Result<String> {
    match v {
        -1 => Ok(max.to_string()),
        v if v < 0 => Err(Error::invalid(format!("{what} {v} is invalid"))),
        v => Ok(v.to_string()),
    }
}

/// OCI `pids.limit` -> `pids.max`: a positive value is the limit; 0 and -1 (and any negative)
/// mean "max". oci-spec deserialises a missing limit as 0, so 0 cannot be told apart from
/// "unset" and is taken as unlimited, as runc and Docker do.
pub(super) fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

/// Checks a cpuset list such as `0-3,7` (syntax only; the kernel checks the CPUs exist).
pub(super) fn check_cpu_list(what: &str, s: &str) -> Result<()> {
    let ok = s.split(',').all(|part| {
        let part = part.trim();
        let mut ends = part.splitn(2, '-');
        let num =
            |x: Option<&str>| x.map(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()));
        matches!(
            (num(ends.next()), num(ends.next())),
            (Some(true), None | Some(true))
        )
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {s:?} is not a list such as \"0-3,7\""
        )))
    }
}

/// Checks an OCI hugepage size (`2MB`, `64KB`, `1GB`): digits and a unit, as used in the
/// `hugetlb.<size>.*` file names.
pub(super) fn check_hugepage_size(s: &str) -> Result<()> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "B" | "KB" | "MB" | "GB" | "TB" | "PB");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "hugepageLimits pageSize {s:?} must look like \"2MB\", \"64KB\" or \"1GB\""
        )))
    }
}

/// A device rule, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DevRule {
    pub allow: bool,
    /// `a`, `b` or `c`
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACC_*` bits
    pub access: u8,
}

pub(super) const ACC_MKNOD: u8 = 1;
pub(super) const ACC_READ: u8 = 2;
pub(super) const ACC_WRITE: u8 = 4;

/// Checks an OCI device rule. Type unset = `a`; `u` (unbuffered char) = `c`; `p` (FIFO) has
/// no cgroup meaning and is refused. Major/minor unset (or -1) = any. Access unset or empty =
/// `rwm`.
pub(super) fn dev_rule(d: &LinuxDeviceCgroup) -> Result<DevRule> {
    let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => {
            return Err(Error::invalid(format!(
                "device rule {d}: type p (FIFO) cannot be controlled by the device cgroup"
            )))
        }
    };
    let num = |what: &str, v: Option<i64>| -> Result<Option<u32>> {
        match v {
            None | Some(-1) => Ok(None),
            // Linux device numbers are 12-bit major, 20-bit minor; stay within i32 so the
            // eBPF immediates compare correctly.
            Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(Error::invalid(format!(
                "device rule {d}: invalid {what} {n}"
            ))),
        }
    };
    let access = match d.access().as_deref() {
        None | Some("") => ACC_READ | ACC_WRITE | ACC_MKNOD,
        Some(s) => {
            let mut a = 0;
            for c in s.chars() {
                a |= match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => {
                        return Err(Error::invalid(format!(
                            "device rule access {s:?}: only r, w and m are allowed"
                        )))
                    }
                };
            }
            a
        }
    };
    Ok(DevRule {
        allow: d.allow(),
        typ,
        major: num("major", d.major())?,
        minor: num("minor", d.minor())?,
        access,
    })
}

impl DevRule {
    /// The cgroup v1 file (`devices.allow`/`devices.deny`) and line, e.g. `c 1:3 rwm`. The
    /// kernel treats any `a` rule as "all devices, all access" whatever its numbers and access.
    pub fn v1_line(&self) -> (&'static str, String) {
        let file = if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        let mut acc = String::with_capacity(3);
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        (
            file,
            format!("{} {}:{} {}", self.typ, n(self.major), n(self.minor), acc),
        )
    }
}

/// A blkio weight of 0 means "not set" (Docker sends `"weight": 0` for every container).
pub(super) fn nz(w: Option<u16>) -> Option<u16> {
    w.filter(|w| *w != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn shares_weight() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_conversion() {
        let mib = 1 << 20;
        assert_eq!(
            v2_swap_max(Some(100 * mib), Some(300 * mib)).unwrap(),
            Some((200 * mib).to_string())
        );
        assert_eq!(v2_swap_max(Some(100), Some(100)).unwrap(), Some("0".into()));
        assert_eq!(
            v2_swap_max(Some(100), Some(-1)).unwrap(),
            Some("max".into())
        );
        assert_eq!(v2_swap_max(Some(-1), None).unwrap(), Some("max".into()));
        assert_eq!(v2_swap_max(Some(100), None).unwrap(), None);
        assert_eq!(v2_swap_max(Some(100), Some(0)).unwrap(), None);
        assert_eq!(v2_swap_max(None, Some(-1)).unwrap(), Some("max".into()));
        assert!(v2_swap_max(Some(200), Some(100))
            .unwrap_err()
            .to_string()
            .contains(">="));
        assert!(v2_swap_max(None, Some(100)).is_err());
        assert!(v2_swap_max(Some(-1), Some(100)).is_err());
        assert!(v2_swap_max(Some(100), Some(-5)).is_err());
    }

    #[test]
    fn pids_and_memory_values() {
        assert_eq!(pids_max(10), "10");
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(-1), "max");
        assert_eq!(mem_value("m", -1, "max").unwrap(), "max");
        assert_eq!(mem_value("m", -1, "-1").unwrap(), "-1");
        assert_eq!(mem_value("m", 5, "max").unwrap(), "5");
        assert!(mem_value("m", -2, "max").is_err());
    }

    #[test]
    fn lists_and_sizes() {
        for ok in ["0", "0-3", "0-3,7", "1,2, 4-5"] {
            check_cpu_list("cpus", ok).unwrap();
        }
        for bad in ["a", "1-", "-1", "1-2-3", "1;2", ""] {
            assert!(check_cpu_list("cpus", bad).is_err(), "{bad:?}");
        }
        for ok in ["2MB", "64KB", "1GB"] {
            check_hugepage_size(ok).unwrap();
        }
        for bad in ["2M", "MB", "2 MB", "2mb", "../x", "2MB/"] {
            assert!(check_hugepage_size(bad).is_err(), "{bad:?}");
        }
    }

    fn rule(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        minor: Option<i64>,
        access: Option<&str>,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        if let Some(a) = access {
            b = b.access(a);
        }
        b.build().unwrap()
    }

    #[test]
    fn device_rules_to_v1_lines() {
        let r = |d| dev_rule(&d).unwrap().v1_line();
        assert_eq!(
            r(rule(false, None, None, None, Some("rwm"))),
            ("devices.deny", "a *:* rwm".into())
        );
        assert_eq!(
            r(rule(
                true,
                Some(LinuxDeviceType::C),
                Some(1),
                Some(3),
                Some("rw")
            )),
            ("devices.allow", "c 1:3 rw".into())
        );
        assert_eq!(
            r(rule(
                true,
                Some(LinuxDeviceType::B),
                Some(8),
                None,
                Some("mr")
            )),
            ("devices.allow", "b 8:* rm".into())
        );
        assert_eq!(
            r(rule(
                false,
                Some(LinuxDeviceType::U),
                Some(-1),
                Some(5),
                None
            )),
            ("devices.deny", "c *:5 rwm".into())
        );
        assert!(dev_rule(&rule(true, Some(LinuxDeviceType::P), None, None, None)).is_err());
        assert!(dev_rule(&rule(true, None, None, None, Some("rx"))).is_err());
        assert!(dev_rule(&rule(true, None, Some(-2), None, None)).is_err());
        assert!(dev_rule(&rule(true, None, Some(1 << 40), None, None)).is_err());
    }
}
