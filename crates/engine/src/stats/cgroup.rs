//! One container's cgroup counters, read as Docker (through containerd's cgroups package) reads
//! them: pure functions over the cgroup directories, so cgroup v1 and v2 are both testable from
//! fixture files without root. A missing file leaves its part of the sample at zero, as it does
//! in Docker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::stats::{BlkioStatEntry, BlkioStats, CpuStats, MemoryStats, PidsStats};
use berth_runtime::cgroups::Layout;

/// Where a container's counters live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupDirs {
    /// v1 (and the v1 side of a hybrid host): one directory per controller that is mounted.
    V1 { cpuacct: Option<PathBuf>, cpu: Option<PathBuf>, memory: Option<PathBuf>, blkio: Option<PathBuf>, pids: Option<PathBuf> },
    /// Pure v2: one directory for everything.
    V2 { dir: PathBuf },
}

/// What the cgroup says; the caller adds the host's CPU time, networks and the sample time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CgroupSample {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub blkio: BlkioStats,
    pub pids: PidsStats,
}

impl CgroupDirs {
    /// The directories of cgroup `path` (absolute, as the runtime resolved the spec's
    /// cgroupsPath) on `layout`. A hybrid host's unified mount holds no counter Docker reports.
    pub fn new(layout: &Layout, path: &str) -> CgroupDirs {
        let rel = path.trim_start_matches('/');
        match layout {
            Layout::V2 { mountpoint } => CgroupDirs::V2 { dir: mountpoint.join(rel) },
            Layout::V1 { hierarchies } | Layout::Hybrid { hierarchies, .. } => {
                let dir = |c: &str| hierarchies.iter().find(|h| h.has(c)).map(|h| h.mountpoint.join(rel));
                CgroupDirs::V1 { cpuacct: dir("cpuacct"), cpu: dir("cpu"), memory: dir("memory"), blkio: dir("blkio"), pids: dir("pids") }
            }
        }
    }

    /// The counters, or None when the cgroup is gone (the container stopped).
    pub fn read(&self) -> Option<CgroupSample> {
        match self {
            CgroupDirs::V2 { dir } => dir.is_dir().then(|| read_v2(dir)),
            CgroupDirs::V1 { cpuacct, cpu, memory, blkio, pids } => {
                let dirs = [cpuacct, cpu, memory, blkio, pids];
                if !dirs.iter().any(|d| d.as_deref().is_some_and(Path::is_dir)) {
                    return None;
                }
                Some(read_v1(cpuacct.as_deref(), cpu.as_deref(), memory.as_deref(), blkio.as_deref(), pids.as_deref()))
            }
        }
    }
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// A file holding one number; "max" (no limit) is u64::MAX.
fn number(dir: &Path, file: &str) -> Option<u64> {
    let text = read(dir, file)?;
    match text.trim() {
        "max" => Some(u64::MAX),
        t => t.parse().ok(),
    }
}

/// `key value` lines (memory.stat, cpu.stat, memory.events...).
pub(crate) fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (k, v) = (f.next()?, f.next()?);
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn keyed(dir: &Path, file: &str) -> Option<BTreeMap<String, u64>> {
    read(dir, file).map(|t| flat_keyed(&t))
}

/// USER_HZ: cpuacct.stat counts in these ticks (100 on every Linux ABI; Docker hard-codes it).
const CLOCK_TICKS: u64 = 100;
const NS_PER_SEC: u64 = 1_000_000_000;

/// The memory.stat keys Docker reports on cgroup v1, each 0 when the kernel lacks it.
const V1_MEMORY_KEYS: &[&str] = &[
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault", "pgmajfault",
    "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "hierarchical_memory_limit",
    "hierarchical_memsw_limit", "total_cache", "total_rss", "total_rss_huge", "total_mapped_file", "total_dirty",
    "total_writeback", "total_pgpgin", "total_pgpgout", "total_pgfault", "total_pgmajfault", "total_inactive_anon",
    "total_active_anon", "total_inactive_file", "total_active_file", "total_unevictable",
];

/// The memory.stat keys Docker reports on cgroup v2.
const V2_MEMORY_KEYS: &[&str] = &[
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback", "anon_thp",
    "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
    "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault", "workingset_activate",
    "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
];

fn pick(all: &BTreeMap<String, u64>, keys: &[&str]) -> BTreeMap<String, u64> {
    keys.iter().map(|k| ((*k).to_owned(), all.get(*k).copied().unwrap_or(0))).collect()
}

/// "max" in pids.max means no limit, which Docker reports as 0.
fn pids(dir: Option<&Path>) -> PidsStats {
    let Some(dir) = dir else { return PidsStats::default() };
    let limit = number(dir, "pids.max").filter(|&l| l != u64::MAX).unwrap_or(0);
    PidsStats { current: number(dir, "pids.current").unwrap_or(0), limit }
}

/// cgroup v1: cpuacct for usage, cpu for throttling, memory, blkio, pids.
pub(crate) fn read_v1(cpuacct: Option<&Path>, cpu: Option<&Path>, memory: Option<&Path>, blkio: Option<&Path>, pids_dir: Option<&Path>) -> CgroupSample {
    let mut s = CgroupSample::default();
    if let Some(d) = cpuacct {
        let u = &mut s.cpu.cpu_usage;
        u.total_usage = number(d, "cpuacct.usage").unwrap_or(0);
        u.percpu_usage = read(d, "cpuacct.usage_percpu").map(|t| t.split_whitespace().filter_map(|n| n.parse().ok()).collect());
        if let Some(st) = keyed(d, "cpuacct.stat") {
            u.usage_in_usermode = st.get("user").copied().unwrap_or(0) * NS_PER_SEC / CLOCK_TICKS;
            u.usage_in_kernelmode = st.get("system").copied().unwrap_or(0) * NS_PER_SEC / CLOCK_TICKS;
        }
    }
    if let Some(st) = cpu.and_then(|d| keyed(d, "cpu.stat")) {
        let t = &mut s.cpu.throttling_data;
        t.periods = st.get("nr_periods").copied().unwrap_or(0);
        t.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        t.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = memory.filter(|d| d.is_dir()) {
        let all = keyed(d, "memory.stat").unwrap_or_default();
        s.memory = MemoryStats {
            usage: number(d, "memory.usage_in_bytes").unwrap_or(0),
            max_usage: number(d, "memory.max_usage_in_bytes").unwrap_or(0),
            stats: pick(&all, V1_MEMORY_KEYS),
            failcnt: number(d, "memory.failcnt").unwrap_or(0),
            limit: number(d, "memory.limit_in_bytes").unwrap_or(0),
        };
    }
    if let Some(d) = blkio.filter(|d| d.is_dir()) {
        s.blkio = blkio_v1(d);
    }
    s.pids = pids(pids_dir);
    s
}

/// One blkio.* file: `MAJ:MIN [Op] value` lines; the `Total` line is skipped.
pub(crate) fn blkio_entries(text: &str) -> Vec<BlkioStatEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split([' ', ':']).filter(|s| !s.is_empty()).collect();
        let parsed = match f.as_slice() {
            [maj, min, op, v] => (maj.parse(), min.parse(), *op, v.parse()),
            [maj, min, v] => (maj.parse(), min.parse(), "", v.parse()),
            _ => continue,
        };
        if let (Ok(major), Ok(minor), op, Ok(value)) = parsed {
            out.push(BlkioStatEntry { major, minor, op: op.to_owned(), value });
        }
    }
    out
}

/// The CFQ files when the kernel has them and they say something, else the throttle ones (as
/// containerd does); every list is present, possibly empty.
fn blkio_v1(d: &Path) -> BlkioStats {
    let entries = |f: &str| read(d, &format!("blkio.{f}")).map(|t| blkio_entries(&t)).unwrap_or_default();
    let mut s = BlkioStats {
        io_service_bytes_recursive: Some(Vec::new()),
        io_serviced_recursive: Some(Vec::new()),
        io_queue_recursive: Some(Vec::new()),
        io_service_time_recursive: Some(Vec::new()),
        io_wait_time_recursive: Some(Vec::new()),
        io_merged_recursive: Some(Vec::new()),
        io_time_recursive: Some(Vec::new()),
        sectors_recursive: Some(Vec::new()),
    };
    if d.join("blkio.io_serviced_recursive").exists() {
        s.sectors_recursive = Some(entries("sectors_recursive"));
        s.io_service_bytes_recursive = Some(entries("io_service_bytes_recursive"));
        s.io_serviced_recursive = Some(entries("io_serviced_recursive"));
        s.io_queue_recursive = Some(entries("io_queued_recursive"));
        s.io_service_time_recursive = Some(entries("io_service_time_recursive"));
        s.io_wait_time_recursive = Some(entries("io_wait_time_recursive"));
        s.io_merged_recursive = Some(entries("io_merged_recursive"));
        s.io_time_recursive = Some(entries("time_recursive"));
        let lists = [&s.sectors_recursive, &s.io_service_bytes_recursive, &s.io_serviced_recursive, &s.io_queue_recursive];
        if lists.iter().any(|l| l.as_ref().is_some_and(|v| !v.is_empty())) {
            return s;
        }
    }
    s.io_serviced_recursive = Some(entries("throttle.io_serviced_recursive"));
    s.io_service_bytes_recursive = Some(entries("throttle.io_service_bytes_recursive"));
    s
}

/// io.stat: `MAJ:MIN rbytes=.. wbytes=.. rios=..` -> Docker's read/write byte pairs per device.
pub(crate) fn io_stat_v2(text: &str) -> Vec<BlkioStatEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else { continue };
        let kv: BTreeMap<&str, u64> = f.filter_map(|p| p.split_once('=')).filter_map(|(k, v)| Some((k, v.parse().ok()?))).collect();
        for (op, key) in [("read", "rbytes"), ("write", "wbytes")] {
            out.push(BlkioStatEntry { major, minor, op: op.into(), value: kv.get(key).copied().unwrap_or(0) });
        }
    }
    out
}

/// Pure cgroup v2: every counter in one directory.
pub(crate) fn read_v2(d: &Path) -> CgroupSample {
    let mut s = CgroupSample::default();
    if let Some(st) = keyed(d, "cpu.stat") {
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        s.cpu.cpu_usage.total_usage = g("usage_usec") * 1000;
        s.cpu.cpu_usage.usage_in_usermode = g("user_usec") * 1000;
        s.cpu.cpu_usage.usage_in_kernelmode = g("system_usec") * 1000;
        s.cpu.throttling_data.periods = g("nr_periods");
        s.cpu.throttling_data.throttled_periods = g("nr_throttled");
        s.cpu.throttling_data.throttled_time = g("throttled_usec") * 1000;
    }
    if let Some(usage) = number(d, "memory.current") {
        let all = keyed(d, "memory.stat").unwrap_or_default();
        s.memory = MemoryStats {
            usage,
            max_usage: 0,
            stats: pick(&all, V2_MEMORY_KEYS),
            failcnt: keyed(d, "memory.events").and_then(|e| e.get("oom").copied()).unwrap_or(0),
            limit: number(d, "memory.max").unwrap_or(0),
        };
    }
    if let Some(t) = read(d, "io.stat") {
        let e = io_stat_v2(&t);
        s.blkio.io_service_bytes_recursive = (!e.is_empty()).then_some(e);
    }
    s.pids = pids(Some(d));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    const V1_MEMORY_STAT: &str = "cache 4096\nrss 1011712\nrss_huge 0\nshmem 0\nmapped_file 0\ndirty 0\nwriteback 0\n\
workingset_refault_anon 0\nswap 0\npgpgin 51791781\npgpgout 51791534\npgfault 51792099\npgmajfault 0\n\
inactive_anon 892928\nactive_anon 4096\ninactive_file 8192\nactive_file 0\nunevictable 0\n\
hierarchical_memory_limit 67108864\nhierarchical_memsw_limit 134217728\ntotal_cache 4096\ntotal_rss 1011712\n\
total_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file 0\ntotal_dirty 0\ntotal_writeback 0\ntotal_swap 0\n\
total_pgpgin 51791781\ntotal_pgpgout 51791534\ntotal_pgfault 51792099\ntotal_pgmajfault 0\n\
total_inactive_anon 892928\ntotal_active_anon 4096\ntotal_inactive_file 8192\ntotal_active_file 0\n\
total_unevictable 0\n";

    fn v1_fixture(root: &Path) -> [PathBuf; 5] {
        let d = ["cpuacct", "cpu", "memory", "blkio", "pids"].map(|c| root.join(c).join("berth/abc"));
        write(&d[0], &[("cpuacct.usage", "137532460319\n"), ("cpuacct.usage_percpu", "67858586876 69673873443 \n"), ("cpuacct.stat", "user 5397\nsystem 8356\n")]);
        write(&d[1], &[("cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\nnr_bursts 0\nburst_time 0\n")]);
        write(
            &d[2],
            &[
                ("memory.stat", V1_MEMORY_STAT),
                ("memory.usage_in_bytes", "1425408\n"),
                ("memory.max_usage_in_bytes", "4075520\n"),
                ("memory.limit_in_bytes", "67108864\n"),
                ("memory.failcnt", "0\n"),
            ],
        );
        write(
            &d[3],
            &[
                ("blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n"),
                ("blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\nTotal 3\n"),
            ],
        );
        write(&d[4], &[("pids.current", "3\n"), ("pids.max", "max\n")]);
        d
    }

    #[test]
    fn v1_counters_as_docker_reports_them() {
        let tmp = tempfile::tempdir().unwrap();
        let d = v1_fixture(tmp.path());
        let s = read_v1(Some(&d[0]), Some(&d[1]), Some(&d[2]), Some(&d[3]), Some(&d[4]));
        let u = &s.cpu.cpu_usage;
        assert_eq!(u.total_usage, 137_532_460_319);
        assert_eq!(u.percpu_usage, Some(vec![67_858_586_876, 69_673_873_443]));
        assert_eq!(u.usage_in_usermode, 53_970_000_000);
        assert_eq!(u.usage_in_kernelmode, 83_560_000_000);
        assert_eq!((s.cpu.throttling_data.periods, s.cpu.throttling_data.throttled_periods, s.cpu.throttling_data.throttled_time), (10, 2, 5000));
        assert_eq!((s.memory.usage, s.memory.max_usage, s.memory.limit, s.memory.failcnt), (1_425_408, 4_075_520, 67_108_864, 0));
        assert_eq!(s.memory.stats.len(), 32, "exactly Docker's v1 keys");
        assert_eq!(s.memory.stats["total_inactive_file"], 8192);
        assert_eq!(s.memory.stats["hierarchical_memsw_limit"], 134_217_728);
        assert!(!s.memory.stats.contains_key("shmem") && !s.memory.stats.contains_key("swap"));
        let bytes = s.blkio.io_service_bytes_recursive.as_ref().unwrap();
        assert_eq!(bytes.len(), 6, "the Total line is skipped, per-op lines kept");
        assert_eq!(bytes[0], BlkioStatEntry { major: 8, minor: 0, op: "Read".into(), value: 4096 });
        assert_eq!(s.blkio.io_serviced_recursive.as_ref().unwrap().len(), 2);
        assert_eq!(s.blkio.sectors_recursive, Some(vec![]), "v1 lists are empty, not null");
        assert_eq!(s.pids, PidsStats { current: 3, limit: 0 });
        let json = serde_json::to_value(&s.blkio).unwrap();
        assert_eq!(json["io_queue_recursive"], serde_json::json!([]));
    }

    #[test]
    fn v1_prefers_cfq_files_when_they_have_data() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("blkio");
        write(
            &d,
            &[
                ("blkio.io_serviced_recursive", "253:1 Read 7\nTotal 7\n"),
                ("blkio.io_service_bytes_recursive", "253:1 Read 28672\nTotal 28672\n"),
                ("blkio.sectors_recursive", "253:1 56\n"),
                ("blkio.throttle.io_service_bytes_recursive", "8:0 Read 1\n"),
            ],
        );
        let s = blkio_v1(&d);
        assert_eq!(s.io_service_bytes_recursive.unwrap()[0].value, 28672);
        assert_eq!(s.sectors_recursive.unwrap()[0], BlkioStatEntry { major: 253, minor: 1, op: String::new(), value: 56 });
        assert_eq!(s.io_wait_time_recursive, Some(vec![]));
    }

    #[test]
    fn v1_layout_and_missing_cgroup() {
        let tmp = tempfile::tempdir().unwrap();
        v1_fixture(tmp.path());
        let h = |c: &str| berth_runtime::cgroups::Hierarchy { mountpoint: tmp.path().join(c), controllers: vec![c.to_owned()] };
        let layout = Layout::Hybrid { hierarchies: ["cpuacct", "cpu", "memory", "blkio", "pids"].map(h).to_vec(), unified: tmp.path().join("unified") };
        let dirs = CgroupDirs::new(&layout, "/berth/abc");
        let CgroupDirs::V1 { memory, .. } = &dirs else { panic!("{dirs:?}") };
        assert_eq!(memory.as_deref(), Some(tmp.path().join("memory/berth/abc").as_path()));
        assert_eq!(dirs.read().unwrap().pids.current, 3);
        assert!(CgroupDirs::new(&layout, "/berth/gone").read().is_none(), "a stopped container has no cgroup");
    }

    #[test]
    fn v2_counters_as_docker_reports_them() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("berth/abc");
        write(
            &d,
            &[
                ("cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 4\nnr_throttled 1\nthrottled_usec 300\nnr_bursts 0\nburst_usec 0\n"),
                ("memory.current", "3145728\n"),
                ("memory.max", "67108864\n"),
                (
                    "memory.stat",
                    "anon 1572864\nfile 7626752\nkernel 300000\nkernel_stack 16384\nslab 1180928\nsock 0\nshmem 0\n\
file_mapped 2723840\nfile_dirty 0\nfile_writeback 0\nanon_thp 0\ninactive_anon 0\nactive_anon 1572864\n\
inactive_file 2510848\nactive_file 5115904\nunevictable 0\nslab_reclaimable 725576\nslab_unreclaimable 455352\n\
workingset_refault_anon 0\nworkingset_refault_file 3\npgfault 2042\npgmajfault 45\n",
                ),
                ("memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n"),
                ("io.stat", "254:0 rbytes=7593984 wbytes=100 rios=80 wios=1 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n"),
                ("pids.current", "5\n"),
                ("pids.max", "100\n"),
            ],
        );
        let layout = Layout::V2 { mountpoint: tmp.path().to_path_buf() };
        let dirs = CgroupDirs::new(&layout, "/berth/abc");
        assert_eq!(dirs, CgroupDirs::V2 { dir: d.clone() });
        let s = dirs.read().unwrap();
        let u = &s.cpu.cpu_usage;
        assert_eq!((u.total_usage, u.usage_in_usermode, u.usage_in_kernelmode), (2_500_000_000, 2_000_000_000, 500_000_000));
        assert_eq!(u.percpu_usage, None, "no per-CPU usage on v2");
        assert_eq!(s.cpu.throttling_data.throttled_time, 300_000);
        assert_eq!((s.memory.usage, s.memory.limit, s.memory.max_usage, s.memory.failcnt), (3_145_728, 67_108_864, 0, 2));
        assert_eq!(s.memory.stats.len(), 31, "exactly Docker's v2 keys");
        assert_eq!(s.memory.stats["inactive_file"], 2_510_848);
        assert_eq!(s.memory.stats["workingset_refault"], 0);
        assert!(!s.memory.stats.contains_key("kernel"));
        let io = s.blkio.io_service_bytes_recursive.as_ref().unwrap();
        assert_eq!(io.len(), 4);
        assert_eq!(io[0], BlkioStatEntry { major: 254, minor: 0, op: "read".into(), value: 7_593_984 });
        assert_eq!(io[1], BlkioStatEntry { major: 254, minor: 0, op: "write".into(), value: 100 });
        assert_eq!(s.blkio.io_serviced_recursive, None, "v2 has only io_service_bytes_recursive");
        assert_eq!(s.pids, PidsStats { current: 5, limit: 100 });
        let json = serde_json::to_value(&s.memory).unwrap();
        assert!(json.get("max_usage").is_none() && json.get("failcnt").is_some());
    }

    #[test]
    fn v2_without_limits_or_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("c");
        write(&d, &[("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n"), ("memory.current", "4096\n"), ("memory.max", "max\n"), ("io.stat", ""), ("pids.max", "max\n")]);
        let s = read_v2(&d);
        assert_eq!(s.memory.limit, u64::MAX, "the caller caps it to the host's memory");
        assert_eq!(s.cpu.throttling_data.periods, 0);
        assert_eq!(s.blkio.io_service_bytes_recursive, None, "no device: null, as Docker");
        assert_eq!(s.pids, PidsStats::default());
        assert!(CgroupDirs::V2 { dir: tmp.path().join("gone") }.read().is_none());
    }
}
