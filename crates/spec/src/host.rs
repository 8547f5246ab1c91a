//! Facts about the host that change the spec the way they change Docker's: the capability
//! bounding set (`--privileged` grants only what exists), which cgroup knobs the kernel has
//! (Docker discards the others with a warning), the CPUs and memory nodes, the kernel version,
//! the LSMs. Detected once ([`HostInfo::detect`]); tests build one by hand.

use std::fs;
use std::path::{Path, PathBuf};

use berth_runtime::cgroups::Layout;

use crate::error::{Error, Result};

/// The host as [`crate::build`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The bounding set this process (the daemon) has, as a bit mask by capability number:
    /// containers can never get more. See [`host_bounding_caps`].
    pub bounding_caps: u64,
    /// Pure cgroup v2 (unified); hybrid and v1 hosts are `false`, as Docker counts them.
    pub cgroup_v2: bool,
    pub cgroup: CgroupFeatures,
    /// CPUs this process may run on (Go's `runtime.NumCPU`, Docker's bound for `NanoCpus`).
    pub ncpu: u32,
    /// Online CPUs and memory nodes (`0-3`), the bounds for `CpusetCpus` / `CpusetMems`.
    pub cpus: String,
    pub mems: String,
    /// (major, minor, patch) of the running kernel.
    pub kernel: (u32, u32, u32),
    pub apparmor: bool,
    pub selinux: bool,
    /// `net.ipv4.ping_group_range` / `net.ipv4.ip_unprivileged_port_start` exist: Docker sets
    /// them in a container's own network namespace only where the kernel has them.
    pub ping_group_range: bool,
    pub unprivileged_port_start: bool,
    /// The host's hostname: a container on the host network gets it by default.
    pub hostname: String,
    /// Where the host's device nodes are (`/dev`): a privileged container gets all of them.
    pub dev_dir: PathBuf,
}

/// Which resource knobs the host's cgroups have (Docker's `sysinfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupFeatures {
    pub memory: bool,
    pub memory_reservation: bool,
    pub swap: bool,
    pub swappiness: bool,
    pub oom_kill_disable: bool,
    pub kernel_memory_tcp: bool,
    pub cpu_shares: bool,
    pub cpu_cfs: bool,
    pub cpu_realtime: bool,
    pub cpuset: bool,
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub blkio_throttle: bool,
    pub pids: bool,
}

impl CgroupFeatures {
    /// Everything available (for tests and hosts known to have it all).
    pub const ALL: CgroupFeatures = CgroupFeatures {
        memory: true,
        memory_reservation: true,
        swap: true,
        swappiness: true,
        oom_kill_disable: true,
        kernel_memory_tcp: true,
        cpu_shares: true,
        cpu_cfs: true,
        cpu_realtime: true,
        cpuset: true,
        blkio_weight: true,
        blkio_weight_device: true,
        blkio_throttle: true,
        pids: true,
    };

    /// Reads the host's cgroup mounts the way Docker's sysinfo does: a knob is available when
    /// its file exists at the root of its hierarchy.
    pub fn detect(layout: &Layout) -> CgroupFeatures {
        if let Layout::V2 { mountpoint } = layout {
            let ctl = fs::read_to_string(mountpoint.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| ctl.split_whitespace().any(|x| x == c);
            // cgroup v2: Docker reports no swappiness, OOM-killer switch nor kernel memory.
            return CgroupFeatures {
                memory: has("memory"),
                memory_reservation: has("memory"),
                swap: has("memory"),
                swappiness: false,
                oom_kill_disable: false,
                kernel_memory_tcp: false,
                cpu_shares: has("cpu"),
                cpu_cfs: has("cpu"),
                cpu_realtime: false,
                cpuset: has("cpuset"),
                blkio_weight: has("io"),
                blkio_weight_device: has("io"),
                blkio_throttle: has("io"),
                pids: has("pids"),
            };
        }
        let dir = |c: &str| layout.hierarchies().iter().find(|h| h.has(c)).map(|h| h.mountpoint.clone());
        let file = |c: &str, f: &str| dir(c).is_some_and(|d| d.join(f).exists());
        CgroupFeatures {
            memory: file("memory", "memory.limit_in_bytes"),
            memory_reservation: file("memory", "memory.soft_limit_in_bytes"),
            swap: file("memory", "memory.memsw.limit_in_bytes"),
            swappiness: file("memory", "memory.swappiness"),
            oom_kill_disable: file("memory", "memory.oom_control"),
            kernel_memory_tcp: file("memory", "memory.kmem.tcp.limit_in_bytes"),
            cpu_shares: file("cpu", "cpu.shares"),
            cpu_cfs: file("cpu", "cpu.cfs_quota_us"),
            cpu_realtime: file("cpu", "cpu.rt_runtime_us"),
            cpuset: dir("cpuset").is_some(),
            blkio_weight: file("blkio", "blkio.weight") || file("blkio", "blkio.bfq.weight"),
            blkio_weight_device: file("blkio", "blkio.weight_device")
                || file("blkio", "blkio.bfq.weight_device"),
            blkio_throttle: file("blkio", "blkio.throttle.read_bps_device"),
            pids: dir("pids").is_some(),
        }
    }
}

/// The bounding set of this process, from `CapBnd` in /proc/self/status.
pub fn host_bounding_caps() -> Result<u64> {
    let path = "/proc/self/status";
    let status = fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    parse_cap_bnd(&status)
        .ok_or_else(|| Error::io("parse CapBnd in", path, std::io::Error::other("no CapBnd line")))
}

pub(crate) fn parse_cap_bnd(status: &str) -> Option<u64> {
    let v = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(v.trim(), 16).ok()
}

fn read_trim(p: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// The running kernel's (major, minor, patch), from uname(2).
fn kernel_version() -> (u32, u32, u32) {
    // SAFETY: uname fills the zeroed struct; release is NUL-terminated.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return (0, 0, 0);
    }
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy();
    let mut it = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length; gethostname NUL-terminates within it.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn affinity_cpus() -> u32 {
    // SAFETY: sched_getaffinity fills the zeroed set for this thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let n = if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } == 0 {
        unsafe { libc::CPU_COUNT(&set) as u32 }
    } else {
        0
    };
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1)
    }
}

impl HostInfo {
    /// Reads everything from the running host.
    pub fn detect() -> Result<HostInfo> {
        let layout = berth_runtime::cgroups::detect().map_err(|e| {
            Error::io("detect cgroups from", "/proc/self/mountinfo", std::io::Error::other(e.to_string()))
        })?;
        Ok(HostInfo {
            bounding_caps: host_bounding_caps()?,
            cgroup_v2: matches!(layout, Layout::V2 { .. }),
            cgroup: CgroupFeatures::detect(&layout),
            ncpu: affinity_cpus(),
            cpus: read_trim("/sys/devices/system/cpu/online").unwrap_or_else(|| "0".into()),
            mems: read_trim("/sys/devices/system/node/online").unwrap_or_else(|| "0".into()),
            kernel: kernel_version(),
            apparmor: berth_runtime::lsm::apparmor_enabled(),
            selinux: berth_runtime::lsm::selinux_enabled(),
            ping_group_range: Path::new("/proc/sys/net/ipv4/ping_group_range").exists(),
            unprivileged_port_start: Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start").exists(),
            hostname: hostname(),
            dev_dir: PathBuf::from("/dev"),
        })
    }

    /// A host with everything (all capabilities, every cgroup knob, 4 CPUs, kernel 6.1, no
    /// LSM, cgroup v2): for tests.
    pub fn full() -> HostInfo {
        HostInfo {
            bounding_caps: (1u64 << 41) - 1,
            cgroup_v2: true,
            cgroup: CgroupFeatures::ALL,
            ncpu: 4,
            cpus: "0-3".into(),
            mems: "0".into(),
            kernel: (6, 1, 0),
            apparmor: false,
            selinux: false,
            ping_group_range: true,
            unprivileged_port_start: true,
            hostname: "host".into(),
            dev_dir: PathBuf::from("/dev"),
        }
    }
}

/// The propagation fields (`shared:N`, `master:N`) of the mount `path` lives on, and that
/// mount's mountpoint, from /proc/self/mountinfo (the longest mountpoint that is a prefix).
pub(crate) fn mount_propagation(path: &Path) -> Result<(PathBuf, String)> {
    let real = fs::canonicalize(path).map_err(|e| Error::io("resolve", path, e))?;
    let mi = "/proc/self/mountinfo";
    let text = fs::read_to_string(mi).map_err(|e| Error::io("read", mi, e))?;
    let mut best: Option<(PathBuf, String)> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else { continue };
        if f.len() < 7 || sep < 6 {
            continue;
        }
        let mp = PathBuf::from(unescape(f[4]));
        let longer = best.as_ref().is_none_or(|(b, _)| mp.as_os_str().len() >= b.as_os_str().len());
        if real.starts_with(&mp) && longer {
            best = Some((mp, f[6..sep].join(" ")));
        }
    }
    best.ok_or_else(|| Error::invalid(format!("Can't find mount point of {}", path.display())))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_bnd_parses() {
        let s = "Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";
        assert_eq!(parse_cap_bnd(s), Some(0x1fffeffffff));
        assert_eq!(parse_cap_bnd("Name: x\n"), None);
        assert!(host_bounding_caps().unwrap() & 1 != 0 || unsafe { libc::geteuid() } != 0);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\\"), r"/a\\");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn root_is_on_a_mount() {
        let (mp, _) = mount_propagation(Path::new("/")).unwrap();
        assert_eq!(mp, PathBuf::from("/"));
    }

    #[test]
    fn detect_reads_this_host() {
        let h = HostInfo::detect().unwrap();
        assert_eq!(h.bounding_caps, host_bounding_caps().unwrap());
        assert!(h.ncpu >= 1);
        assert!(h.kernel.0 >= 3);
        assert!(!h.cpus.is_empty());
    }
}
