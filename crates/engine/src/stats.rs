//! `docker stats`: samples of a container's cgroup counters (cgroup.rs), the host's CPU time
//! from /proc/stat and the container's interfaces from /proc/<init>/net/dev, in Docker's
//! shape. Streaming writes one sample a second with `precpu_stats` from the one before;
//! `stream=false` takes two samples a second apart (so the CPU % means something) unless
//! `one-shot`; a container that is not running gives Docker's empty sample.

mod cgroup;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use berth_api::stats::{NetworkStats, StatsResponse};
use berth_runtime::cgroups::Layout;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::Engine;

use self::cgroup::CgroupDirs;

/// Docker's collector interval.
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct StatsOptions {
    pub stream: bool,
    pub one_shot: bool,
}

/// Go's RFC 3339 with nanoseconds as `time.Time` marshals it: trailing zeros of the fraction
/// dropped, and the fraction with them when it is zero.
pub(crate) fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let full = berth_runtime::state::format_rfc3339(d.as_secs() as i64, d.subsec_nanos());
    let (base, frac) = full.trim_end_matches('Z').split_once('.').unwrap_or((&full, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{base}Z")
    } else {
        format!("{base}.{frac}Z")
    }
}

/// Docker's `getSystemCPUUsage`: the first seven fields of the `cpu` line of /proc/stat, in
/// USER_HZ ticks, as nanoseconds; and the number of `cpuN` lines (online CPUs).
pub(crate) fn system_cpu(proc_stat: &str) -> Option<(u64, u32)> {
    let mut usage = None;
    let mut cpus = 0;
    for line in proc_stat.lines() {
        let Some(rest) = line.strip_prefix("cpu") else { break };
        if rest.starts_with(' ') {
            let ticks: Vec<u64> = rest.split_whitespace().take(7).map(|f| f.parse().ok()).collect::<Option<_>>()?;
            if ticks.len() < 7 {
                return None;
            }
            usage = Some(ticks.iter().sum::<u64>() * 1_000_000_000 / 100);
        } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
            cpus += 1;
        }
    }
    Some((usage?, cpus))
}

/// /proc/<pid>/net/dev -> per interface counters, loopback left out (Docker reports only the
/// interfaces its networks gave the container).
pub(crate) fn net_dev(text: &str) -> BTreeMap<String, NetworkStats> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let name = name.trim();
        let f: Vec<u64> = rest.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        if name == "lo" || f.len() < 12 {
            continue;
        }
        out.insert(
            name.to_owned(),
            NetworkStats {
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            },
        );
    }
    out
}

/// MemTotal of /proc/meminfo in bytes: Docker caps a limit above it (no limit) to it.
fn machine_memory() -> u64 {
    static MEM: OnceLock<u64> = OnceLock::new();
    *MEM.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    })
}

fn layout() -> Option<&'static Layout> {
    static LAYOUT: OnceLock<Option<Layout>> = OnceLock::new();
    LAYOUT.get_or_init(|| berth_runtime::cgroups::detect().ok()).as_ref()
}

fn write_json(w: &mut dyn Write, s: &StatsResponse) -> Result<()> {
    let mut v = serde_json::to_vec(s)?;
    v.push(b'\n');
    w.write_all(&v).and_then(|_| w.flush()).map_err(|e| Error::io("write", "stats stream", e))
}

impl Engine {
    /// What Docker sends for a container that is not running: its name and ID, zeros.
    fn empty_sample(rec: &Record) -> StatsResponse {
        StatsResponse { name: format!("/{}", rec.name), id: rec.id.clone(), ..Default::default() }
    }

    /// One sample of a running container; the empty sample when it is not running (or stops
    /// while being read).
    fn sample(&self, rec: &Record) -> StatsResponse {
        let mut out = Self::empty_sample(rec);
        if !rec.state.status.is_live() {
            return out;
        }
        let Ok((_, rt)) = berth_runtime::state::StateDir::load(&self.cfg.runtime_root(), &rec.id) else { return out };
        let Some(cg) = layout().and_then(|l| CgroupDirs::new(l, &rt.cgroup_path).read()) else { return out };
        let read = SystemTime::now();
        // Sampled right after the cgroup, as Docker does, to keep CPU % noise low.
        let host = std::fs::read_to_string("/proc/stat").ok().and_then(|t| system_cpu(&t));
        out.read = rfc3339_nano(read);
        out.os_type = "linux".into();
        out.cpu_stats = cg.cpu;
        if let Some((usage, cpus)) = host {
            out.cpu_stats.system_cpu_usage = usage;
            out.cpu_stats.online_cpus = cpus;
        }
        out.memory_stats = cg.memory;
        let machine = machine_memory();
        if machine > 0 && out.memory_stats.limit > machine {
            out.memory_stats.limit = machine;
        }
        out.blkio_stats = cg.blkio;
        out.pids_stats = cg.pids;
        // The host's interfaces are not the container's: Docker reports none in host mode.
        if rec.host_config.network_mode != "host" && rec.state.pid > 0 {
            let nets = std::fs::read_to_string(format!("/proc/{}/net/dev", rec.state.pid)).map(|t| net_dev(&t)).unwrap_or_default();
            out.networks = (!nets.is_empty()).then_some(nets);
        }
        out
    }

    /// `GET /containers/{id}/stats`: writes the samples as JSON lines to `w` until the stream
    /// ends (one sample unless `stream`), the client goes away, or the container is removed.
    pub fn stats_to(&self, name: &str, o: StatsOptions, w: &mut dyn Write) -> Result<()> {
        let rec = self.get(name)?;
        if !o.stream && !rec.state.status.is_live() {
            return write_json(w, &Self::empty_sample(&rec));
        }
        if o.one_shot {
            return write_json(w, &self.sample(&rec));
        }
        let id = rec.id;
        let mut prev: Option<StatsResponse> = None;
        loop {
            let Ok(rec) = self.get(&id) else {
                // Removed: a one-sample request still gets the sample it primed.
                return match prev {
                    Some(p) if !o.stream => write_json(w, &p),
                    _ => Ok(()),
                };
            };
            let mut s = self.sample(&rec);
            if let Some(p) = prev.take() {
                s.precpu_stats = p.cpu_stats;
                s.preread = p.read;
            } else if !o.stream {
                // Docker primes the CPU counters with a first sample it does not send.
                prev = Some(s);
                std::thread::sleep(INTERVAL);
                continue;
            }
            write_json(w, &s)?;
            if !o.stream {
                return Ok(());
            }
            prev = Some(s);
            std::thread::sleep(INTERVAL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_cpu_like_docker() {
        let text = "cpu  273527 0 75996 355053 5843 0 716 341 0 0\ncpu0 131491 0 32761 189651 1394 0 87 167 0 0\n\
cpu1 142035 0 43235 165402 4449 0 628 174 0 0\nintr 1 2 3\ncpu9 1 1 1 1 1 1 1\n";
        let ticks = 273_527 + 75_996 + 355_053 + 5_843 + 716;
        assert_eq!(system_cpu(text), Some((ticks * 10_000_000, 2)), "steal/guest excluded; cpu lines after others ignored");
        assert_eq!(system_cpu("cpu  1 2 3\n"), None);
        assert_eq!(system_cpu("intr 1\n"), None);
    }

    #[test]
    fn net_dev_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    5338      36    1    2    0     0          0         0      648       8    3    4    0     0       0          0
";
        let n = net_dev(text);
        assert_eq!(n.len(), 1, "{n:?}");
        let e = &n["eth0"];
        assert_eq!((e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped), (5338, 36, 1, 2));
        assert_eq!((e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped), (648, 8, 3, 4));
        assert!(net_dev(&text.replace("  eth0", "  #")).len() <= 1);
    }

    #[test]
    fn times_as_go_marshals_them() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_737_035_722, 165_243_637);
        assert_eq!(rfc3339_nano(t), "2025-01-16T13:55:22.165243637Z");
        assert_eq!(rfc3339_nano(SystemTime::UNIX_EPOCH + Duration::new(1_737_035_722, 500_000_000)), "2025-01-16T13:55:22.5Z");
        assert_eq!(rfc3339_nano(SystemTime::UNIX_EPOCH + Duration::from_secs(1_737_035_722)), "2025-01-16T13:55:22Z");
        assert_eq!(StatsResponse::default().read, berth_api::stats::ZERO_TIME);
    }
}
