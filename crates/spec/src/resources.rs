//! Cgroup resources (memory, CPU, block IO, PIDs), ulimits and the OOM score, validated with
//! Docker's messages; knobs the host's cgroups lack are dropped with Docker's warnings.

use std::os::unix::fs::MetadataExt;

use berth_api::container_config::{HostConfig, Resources, ThrottleDevice, Ulimit};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};

use crate::error::{Error, Result};
use crate::host::HostInfo;
use crate::input::DaemonDefaults;

/// Docker's smallest memory limit and reservation.
const MIN_MEMORY: i64 = 6 << 20;
const MIN_CPU_SHARES: i64 = 2;
const MAX_CPU_SHARES: i64 = 262_144;
/// NanoCpus are turned into a quota over this period (100ms, in µs).
const NANO_CPU_PERIOD: u64 = 100_000;

/// The resource part of the spec, before devices are added.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    pub memory: Option<LinuxMemory>,
    pub cpu: Option<LinuxCpu>,
    pub block_io: Option<LinuxBlockIo>,
    pub pids: Option<LinuxPids>,
}

fn unsupported(what: &str, thing: &str) -> String {
    format!("Your kernel does not support {what} or the cgroup is not mounted. {thing} discarded.")
}

/// Docker's `verifyPlatformContainerResources` + its spec conversion.
pub(crate) fn limits(r: &Resources, daemon: &DaemonDefaults, info: &HostInfo, warnings: &mut Vec<String>) -> Result<Limits> {
    let f = info.cgroup;
    let mut r = r.clone();
    let mut out = Limits::default();

    // Memory.
    if r.memory != 0 && r.memory < MIN_MEMORY {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    if r.memory > 0 && !f.memory {
        warnings.push(unsupported("memory limit capabilities", "Limitation"));
        r.memory = 0;
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap != -1 && !f.swap {
        warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(Error::invalid("Minimum memoryswap limit should be larger than memory limit, see usage"));
    }
    if r.memory == 0 && r.memory_swap > 0 {
        return Err(Error::invalid("You should always set the Memory limit when using Memoryswap limit, see usage"));
    }
    // The docker CLI sends -1 for "not set".
    let mut swappiness = r.memory_swappiness.filter(|&s| s != -1);
    if let Some(s) = swappiness {
        if !f.swappiness {
            warnings.push(unsupported("memory swappiness capabilities", "Memory swappiness"));
            swappiness = None;
        } else if !(0..=100).contains(&s) {
            return Err(Error::invalid(format!("Invalid value: {s}, valid memory swappiness range is 0-100")));
        }
    }
    if r.memory_reservation > 0 && !f.memory_reservation {
        warnings.push(unsupported("memory soft limit capabilities", "Limitation"));
        r.memory_reservation = 0;
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return Err(Error::invalid("Minimum memory reservation allowed is 6MB"));
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return Err(Error::invalid("Minimum memory limit can not be less than memory reservation limit, see usage"));
    }
    if r.kernel_memory != 0 {
        warnings.push("Specifying a kernel memory limit is deprecated and will be removed in a future release.".into());
    }
    if r.kernel_memory_tcp != 0 && !f.kernel_memory_tcp {
        warnings.push(unsupported("kernel memory TCP limit capabilities", "Limitation"));
        r.kernel_memory_tcp = 0;
    }
    let mut oom_kill_disable = r.oom_kill_disable == Some(true);
    if oom_kill_disable && !f.oom_kill_disable {
        warnings.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.".into());
        oom_kill_disable = false;
    }
    if oom_kill_disable && r.memory == 0 {
        warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    // Docker's default: memory+swap is twice the memory.
    if r.memory > 0 && r.memory_swap == 0 {
        r.memory_swap = r.memory * 2;
    }
    let mut mem = LinuxMemory::default();
    mem.set_limit((r.memory > 0).then_some(r.memory));
    mem.set_reservation((r.memory_reservation > 0).then_some(r.memory_reservation));
    mem.set_swap((r.memory > 0 && r.memory_swap != 0).then_some(r.memory_swap));
    mem.set_swappiness(swappiness.map(|s| s as u64));
    mem.set_disable_oom_killer(oom_kill_disable.then_some(true));
    mem.set_kernel_tcp((r.kernel_memory_tcp != 0).then_some(r.kernel_memory_tcp));
    if mem != LinuxMemory::default() {
        out.memory = Some(mem);
    }

    // CPU.
    if r.nano_cpus > 0 && r.cpu_period > 0 {
        return Err(Error::invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set"));
    }
    if r.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err(Error::invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set"));
    }
    if r.nano_cpus > 0 && !f.cpu_cfs {
        return Err(Error::invalid("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted"));
    }
    if r.nano_cpus < 0 || r.nano_cpus > i64::from(info.ncpu) * 1_000_000_000 {
        return Err(Error::invalid(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
            n = info.ncpu
        )));
    }
    r.cpu_shares = match r.cpu_shares {
        s if s < 0 => MIN_CPU_SHARES,
        s if s > MAX_CPU_SHARES => MAX_CPU_SHARES,
        s => s,
    };
    if r.cpu_shares > 0 && !f.cpu_shares {
        warnings.push(unsupported("CPU shares", "Shares"));
        r.cpu_shares = 0;
    }
    if r.cpu_period > 0 && !f.cpu_cfs {
        warnings.push(unsupported("CPU CFS period", "Period"));
        r.cpu_period = 0;
    }
    if r.cpu_quota > 0 && !f.cpu_cfs {
        warnings.push(unsupported("CPU CFS quota", "Quota"));
        r.cpu_quota = 0;
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(Error::invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"));
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err(Error::invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    if r.cpu_percent > 0 {
        warnings.push("linux does not support CPU percent. Percent discarded.".into());
    }
    if r.cpu_count > 0 {
        warnings.push("linux does not support CPU count. Count discarded.".into());
    }
    if (r.cpu_realtime_period != 0 || r.cpu_realtime_runtime != 0) && !f.cpu_realtime {
        return Err(Error::invalid("Your kernel does not support CPU real-time scheduler"));
    }
    if r.cpu_realtime_period != 0 && r.cpu_realtime_runtime != 0 && r.cpu_realtime_runtime > r.cpu_realtime_period {
        return Err(Error::invalid("cpu-rt-runtime cannot be higher than cpu-rt-period"));
    }
    if (!r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty()) && !f.cpuset {
        warnings.push(unsupported("cpuset", "Cpuset"));
        r.cpuset_cpus.clear();
        r.cpuset_mems.clear();
    }
    check_cpuset(&r.cpuset_cpus, &info.cpus, "cpus", "CPUs")?;
    check_cpuset(&r.cpuset_mems, &info.mems, "mems", "memory nodes")?;
    let mut cpu = LinuxCpu::default();
    cpu.set_shares((r.cpu_shares > 0).then_some(r.cpu_shares as u64));
    if r.nano_cpus > 0 {
        cpu.set_period(Some(NANO_CPU_PERIOD));
        cpu.set_quota(Some(r.nano_cpus * NANO_CPU_PERIOD as i64 / 1_000_000_000));
    }
    if r.cpu_period != 0 {
        cpu.set_period(Some(r.cpu_period as u64));
    }
    if r.cpu_quota != 0 {
        cpu.set_quota(Some(r.cpu_quota));
    }
    cpu.set_realtime_period((r.cpu_realtime_period != 0).then_some(r.cpu_realtime_period as u64));
    cpu.set_realtime_runtime((r.cpu_realtime_runtime != 0).then_some(r.cpu_realtime_runtime));
    cpu.set_cpus((!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()));
    cpu.set_mems((!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()));
    if cpu != LinuxCpu::default() {
        out.cpu = Some(cpu);
    }

    // Block IO.
    out.block_io = block_io(&r, info, warnings)?;

    // PIDs: null = the daemon's default, 0 or -1 = unlimited.
    let pids = match r.pids_limit {
        None => daemon.default_pids_limit.filter(|&l| l > 0),
        Some(l) if l <= 0 => None,
        Some(l) => Some(l),
    };
    if pids.is_some() && !f.pids {
        warnings.push(unsupported("PIDs limit capabilities", "PIDs limit"));
    } else if let Some(l) = pids {
        let mut p = LinuxPids::default();
        p.set_limit(l);
        out.pids = Some(p);
    }

    if r.io_maximum_bandwidth != 0 || r.io_maximum_iops != 0 {
        return Err(Error::invalid("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"));
    }
    Ok(out)
}

/// A cpuset list (`0-2,4`) as the set of numbers it names.
fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut out: Vec<u32> = Vec::new();
    for part in s.split(',') {
        let (a, b): (u32, u32) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if b < a || b - a > 65_536 {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

fn check_cpuset(requested: &str, available: &str, field: &str, what: &str) -> Result<()> {
    if requested.is_empty() {
        return Ok(());
    }
    let want = parse_cpuset(requested).ok_or_else(|| Error::invalid(format!("Invalid value {requested} for cpuset {field}")))?;
    let have = parse_cpuset(available).unwrap_or_default();
    if want.iter().any(|n| !have.contains(n)) {
        return Err(Error::invalid(format!(
            "Requested {what} are not available - requested {requested}, available: {available}"
        )));
    }
    Ok(())
}

/// The device numbers of a block device path (stat'ed on the host).
fn dev_numbers(path: &str) -> Result<(i64, i64)> {
    let md = std::fs::metadata(path).map_err(|e| Error::io("stat block device", path, e))?;
    let rdev = md.rdev();
    Ok((libc::major(rdev) as i64, libc::minor(rdev) as i64))
}

fn throttle(list: &Option<Vec<ThrottleDevice>>) -> Result<Option<Vec<LinuxThrottleDevice>>> {
    let Some(list) = list.as_ref().filter(|l| !l.is_empty()) else { return Ok(None) };
    let mut out = Vec::new();
    for t in list {
        let (major, minor) = dev_numbers(&t.path)?;
        let d = LinuxThrottleDeviceBuilder::default().major(major).minor(minor).rate(t.rate).build();
        out.push(d.map_err(|e| Error::invalid(e.to_string()))?);
    }
    Ok(Some(out))
}

fn block_io(r: &Resources, info: &HostInfo, warnings: &mut Vec<String>) -> Result<Option<LinuxBlockIo>> {
    let f = info.cgroup;
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return Err(Error::invalid("Range of blkio weight is from 10 to 1000"));
    }
    let mut b = LinuxBlockIo::default();
    if r.blkio_weight > 0 {
        if f.blkio_weight {
            b.set_weight(Some(r.blkio_weight));
        } else {
            warnings.push(unsupported("Block I/O weight", "Weight"));
        }
    }
    if let Some(list) = r.blkio_weight_device.as_ref().filter(|l| !l.is_empty()) {
        if f.blkio_weight_device {
            let mut out = Vec::new();
            for w in list {
                if w.weight > 0 && !(10..=1000).contains(&w.weight) {
                    return Err(Error::invalid("Range of blkio weight is from 10 to 1000"));
                }
                let (major, minor) = dev_numbers(&w.path)?;
                let d = LinuxWeightDeviceBuilder::default().major(major).minor(minor).weight(w.weight).build();
                out.push(d.map_err(|e| Error::invalid(e.to_string()))?);
            }
            b.set_weight_device(Some(out));
        } else {
            warnings.push(unsupported("Block I/O weight_device", "Weight-device"));
        }
    }
    let throttles = [
        (&r.blkio_device_read_bps, "BPS Block I/O read limit", "Block I/O BPS read limit"),
        (&r.blkio_device_write_bps, "BPS Block I/O write limit", "Block I/O BPS write limit"),
        (&r.blkio_device_read_iops, "IOPS Block read limit", "Block I/O IOPS read limit"),
        (&r.blkio_device_write_iops, "IOPS Block write limit", "Block I/O IOPS write limit"),
    ];
    let mut lists = Vec::new();
    for (list, what, thing) in throttles {
        if list.as_ref().is_some_and(|l| !l.is_empty()) && !f.blkio_throttle {
            warnings.push(unsupported(what, thing));
            lists.push(None);
        } else {
            lists.push(throttle(list)?);
        }
    }
    let mut lists = lists.into_iter();
    b.set_throttle_read_bps_device(lists.next().flatten());
    b.set_throttle_write_bps_device(lists.next().flatten());
    b.set_throttle_read_iops_device(lists.next().flatten());
    b.set_throttle_write_iops_device(lists.next().flatten());
    Ok((b != LinuxBlockIo::default()).then_some(b))
}

/// Ulimit names (go-units) -> RLIMIT types.
const RLIMITS: [(&str, PosixRlimitType); 16] = [
    ("as", PosixRlimitType::RlimitAs),
    ("core", PosixRlimitType::RlimitCore),
    ("cpu", PosixRlimitType::RlimitCpu),
    ("data", PosixRlimitType::RlimitData),
    ("fsize", PosixRlimitType::RlimitFsize),
    ("locks", PosixRlimitType::RlimitLocks),
    ("memlock", PosixRlimitType::RlimitMemlock),
    ("msgqueue", PosixRlimitType::RlimitMsgqueue),
    ("nice", PosixRlimitType::RlimitNice),
    ("nofile", PosixRlimitType::RlimitNofile),
    ("nproc", PosixRlimitType::RlimitNproc),
    ("rss", PosixRlimitType::RlimitRss),
    ("rtprio", PosixRlimitType::RlimitRtprio),
    ("rttime", PosixRlimitType::RlimitRttime),
    ("sigpending", PosixRlimitType::RlimitSigpending),
    ("stack", PosixRlimitType::RlimitStack),
];

/// The container's ulimits, then the daemon's for names the container does not set; -1 is
/// unlimited.
pub(crate) fn rlimits(container: &[Ulimit], daemon: &[Ulimit]) -> Result<Vec<PosixRlimit>> {
    let mut all: Vec<&Ulimit> = container.iter().collect();
    all.extend(daemon.iter().filter(|d| !container.iter().any(|c| c.name == d.name)));
    all.into_iter()
        .map(|u| {
            let typ = RLIMITS
                .iter()
                .find(|(n, _)| *n == u.name)
                .map(|(_, t)| *t)
                .ok_or_else(|| Error::invalid(format!("invalid ulimit type: {}", u.name)))?;
            let (soft, hard) = (u.soft as u64, u.hard as u64);
            if soft > hard {
                return Err(Error::invalid(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft, u.hard
                )));
            }
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(|e| Error::invalid(e.to_string()))
        })
        .collect()
}

/// OomScoreAdj within the kernel's range.
pub(crate) fn oom_score_adj(host: &HostConfig) -> Result<i32> {
    let v = host.oom_score_adj;
    if !(-1000..=1000).contains(&v) {
        return Err(Error::invalid(format!("Invalid value {v}, range for oom score adj is [-1000, 1000]")));
    }
    Ok(v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::CgroupFeatures;
    use berth_api::container_config::WeightDevice;

    fn run(r: Resources) -> Result<(Limits, Vec<String>)> {
        run_on(r, &HostInfo::full())
    }

    fn run_on(r: Resources, info: &HostInfo) -> Result<(Limits, Vec<String>)> {
        let mut w = Vec::new();
        let l = limits(&r, &DaemonDefaults::default(), info, &mut w)?;
        Ok((l, w))
    }

    fn err(r: Resources) -> String {
        run(r).unwrap_err().to_string()
    }

    #[test]
    fn memory_like_docker() {
        let (l, w) = run(Resources { memory: 64 << 20, memory_swappiness: Some(-1), oom_kill_disable: Some(false), ..Default::default() }).unwrap();
        let m = l.memory.unwrap();
        assert_eq!((m.limit(), m.swap(), m.swappiness(), m.disable_oom_killer()), (Some(64 << 20), Some(128 << 20), None, None));
        assert!(w.is_empty());
        let (l, _) = run(Resources { memory: 64 << 20, memory_swap: -1, memory_reservation: 32 << 20, memory_swappiness: Some(10), ..Default::default() }).unwrap();
        let m = l.memory.unwrap();
        assert_eq!((m.swap(), m.reservation(), m.swappiness()), (Some(-1), Some(32 << 20), Some(10)));
        assert!(run(Resources::default()).unwrap().0.memory.is_none());

        assert_eq!(err(Resources { memory: 1 << 20, ..Default::default() }), "Minimum memory limit allowed is 6MB");
        assert_eq!(err(Resources { memory: 64 << 20, memory_swap: 32 << 20, ..Default::default() }), "Minimum memoryswap limit should be larger than memory limit, see usage");
        assert_eq!(err(Resources { memory_swap: 64 << 20, ..Default::default() }), "You should always set the Memory limit when using Memoryswap limit, see usage");
        assert_eq!(err(Resources { memory_swappiness: Some(101), ..Default::default() }), "Invalid value: 101, valid memory swappiness range is 0-100");
        assert_eq!(err(Resources { memory: 64 << 20, memory_reservation: 128 << 20, ..Default::default() }), "Minimum memory limit can not be less than memory reservation limit, see usage");
        assert_eq!(err(Resources { memory_reservation: 1 << 20, ..Default::default() }), "Minimum memory reservation allowed is 6MB");

        let (_, w) = run(Resources { oom_kill_disable: Some(true), ..Default::default() }).unwrap();
        assert!(w[0].starts_with("OOM killer is disabled for the container"));
    }

    #[test]
    fn unsupported_knobs_are_dropped_with_dockers_warnings() {
        let info = HostInfo {
            cgroup: CgroupFeatures { swap: false, swappiness: false, blkio_weight: false, pids: false, ..CgroupFeatures::ALL },
            ..HostInfo::full()
        };
        let (l, w) = run_on(
            Resources { memory: 64 << 20, memory_swappiness: Some(5), blkio_weight: 300, pids_limit: Some(10), ..Default::default() },
            &info,
        )
        .unwrap();
        let m = l.memory.unwrap();
        assert_eq!((m.limit(), m.swap(), m.swappiness()), (Some(64 << 20), Some(-1), None));
        assert!(l.block_io.is_none() && l.pids.is_none());
        assert_eq!(
            w,
            [
                "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.",
                "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.",
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
                "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
            ]
        );
    }

    #[test]
    fn cpu_like_docker() {
        let (l, _) = run(Resources { nano_cpus: 1_500_000_000, cpu_shares: 512, cpuset_cpus: "0-1".into(), ..Default::default() }).unwrap();
        let c = l.cpu.unwrap();
        assert_eq!((c.quota(), c.period(), c.shares(), c.cpus().as_deref()), (Some(150_000), Some(100_000), Some(512), Some("0-1")));
        let (l, _) = run(Resources { cpu_period: 50_000, cpu_quota: 25_000, ..Default::default() }).unwrap();
        let c = l.cpu.unwrap();
        assert_eq!((c.quota(), c.period()), (Some(25_000), Some(50_000)));
        let (l, _) = run(Resources { cpu_shares: 1_000_000, ..Default::default() }).unwrap();
        assert_eq!(l.cpu.unwrap().shares(), Some(262_144));

        assert_eq!(err(Resources { nano_cpus: 1, cpu_period: 1000, ..Default::default() }), "Conflicting options: Nano CPUs and CPU Period cannot both be set");
        assert_eq!(err(Resources { nano_cpus: 1, cpu_quota: 1000, ..Default::default() }), "Conflicting options: Nano CPUs and CPU Quota cannot both be set");
        assert_eq!(err(Resources { nano_cpus: 5_000_000_000, ..Default::default() }), "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available");
        assert_eq!(err(Resources { cpu_period: 10, ..Default::default() }), "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
        assert_eq!(err(Resources { cpu_quota: 10, ..Default::default() }), "CPU cfs quota can not be less than 1ms (i.e. 1000)");
        assert_eq!(err(Resources { cpuset_cpus: "0-7".into(), ..Default::default() }), "Requested CPUs are not available - requested 0-7, available: 0-3");
        assert_eq!(err(Resources { cpuset_cpus: "a".into(), ..Default::default() }), "Invalid value a for cpuset cpus");
        assert_eq!(err(Resources { cpuset_mems: "1".into(), ..Default::default() }), "Requested memory nodes are not available - requested 1, available: 0");
        assert_eq!(err(Resources { cpu_realtime_period: 10, cpu_realtime_runtime: 20, ..Default::default() }), "cpu-rt-runtime cannot be higher than cpu-rt-period");
        assert_eq!(err(Resources { io_maximum_iops: 5, ..Default::default() }), "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps");
    }

    #[test]
    fn block_io_and_pids() {
        let (l, _) = run(Resources {
            blkio_weight: 300,
            blkio_weight_device: Some(vec![WeightDevice { path: "/dev/null".into(), weight: 20 }]),
            blkio_device_read_bps: Some(vec![ThrottleDevice { path: "/dev/null".into(), rate: 1024 }]),
            ..Default::default()
        })
        .unwrap();
        let b = l.block_io.unwrap();
        assert_eq!(b.weight(), Some(300));
        let wd = &b.weight_device().as_ref().unwrap()[0];
        assert_eq!((wd.major(), wd.minor(), wd.weight()), (1, 3, Some(20)));
        assert_eq!(b.throttle_read_bps_device().as_ref().unwrap()[0].rate(), 1024);
        assert_eq!(err(Resources { blkio_weight: 5, ..Default::default() }), "Range of blkio weight is from 10 to 1000");
        assert!(matches!(
            run(Resources { blkio_device_write_iops: Some(vec![ThrottleDevice { path: "/nonexistent".into(), rate: 1 }]), ..Default::default() }),
            Err(Error::Io { .. })
        ));

        let daemon = DaemonDefaults { default_pids_limit: Some(100), ..Default::default() };
        let pids = |p: Option<i64>| {
            limits(&Resources { pids_limit: p, ..Default::default() }, &daemon, &HostInfo::full(), &mut vec![]).unwrap().pids.map(|p| p.limit())
        };
        assert_eq!(pids(None), Some(100));
        assert_eq!(pids(Some(0)), None);
        assert_eq!(pids(Some(-1)), None);
        assert_eq!(pids(Some(50)), Some(50));
    }

    #[test]
    fn ulimits() {
        let u = |n: &str, s: i64, h: i64| Ulimit { name: n.into(), soft: s, hard: h };
        let r = rlimits(&[u("nofile", 1024, 2048)], &[u("nofile", 1, 1), u("nproc", -1, -1)]).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].typ(), r[0].soft(), r[0].hard()), (PosixRlimitType::RlimitNofile, 1024, 2048));
        assert_eq!((r[1].typ(), r[1].soft(), r[1].hard()), (PosixRlimitType::RlimitNproc, u64::MAX, u64::MAX));
        assert_eq!(rlimits(&[u("bogus", 1, 1)], &[]).unwrap_err().to_string(), "invalid ulimit type: bogus");
        assert_eq!(rlimits(&[u("nofile", 5, 1)], &[]).unwrap_err().to_string(), "ulimit soft limit must be less than or equal to hard limit: 5 > 1");
        assert!(rlimits(&[u("nofile", -1, 5)], &[]).is_err());
    }

    #[test]
    fn oom_score() {
        assert_eq!(oom_score_adj(&HostConfig { oom_score_adj: -1000, ..Default::default() }).unwrap(), -1000);
        assert_eq!(
            oom_score_adj(&HostConfig { oom_score_adj: 1001, ..Default::default() }).unwrap_err().to_string(),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
    }
}
