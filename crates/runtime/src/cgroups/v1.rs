//! cgroup v1 manager, also used for hybrid hosts: v1 hierarchies for the controllers bound to
//! them, plus the same path in the cgroup2 mount for what only it has (controllers such as
//! hugetlb that are not bound to v1, `unified` settings, and freeze/kill/device filtering when
//! the v1 freezer or devices controller is missing).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};

use super::convert::{check_cpu_list, dev_rule, mem_value, nz, pids_max};
use super::detect::Hierarchy;
use super::plan::{self, need_file, write, Controllers, Op};
use super::v2::{check_usage, check_weight, FREEZE_TIMEOUT};
use super::{cg_err, fs, v2, CgroupManager, CgroupMount};
use crate::error::Errors;
use crate::{Error, Result};

#[derive(Debug)]
pub(super) struct V1Manager {
    /// Each hierarchy with the container's directory in it.
    dirs: Vec<(Hierarchy, PathBuf)>,
    /// Hybrid: the cgroup2 mountpoint, the container's directory there, and the cgroup path.
    unified: Option<(PathBuf, PathBuf, String)>,
}

impl V1Manager {
    pub fn new(hierarchies: &[Hierarchy], unified: Option<&PathBuf>, path: &str) -> Self {
        V1Manager {
            dirs: hierarchies
                .iter()
                .map(|h| (h.clone(), fs::join(&h.mountpoint, path)))
                .collect(),
            unified: unified.map(|m| (m.clone(), fs::join(m, path), path.to_string())),
        }
    }

    fn dir(&self, ctrl: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| h.has(ctrl))
            .map(|(_, d)| d.as_path())
    }

    fn need(&self, ctrl: &str, what: &str) -> Result<&Path> {
        self.dir(ctrl).ok_or_else(|| {
            cg_err(format!(
                "{what} needs the {ctrl} controller, which is not mounted on this host \
                 (no cgroup v1 hierarchy has it{})",
                if self.unified.is_some() {
                    " and it is not usable here through cgroup2"
                } else {
                    ""
                }
            ))
        })
    }

    fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|(_, d, _)| d.as_path())
    }

    /// Validates `r` and lists the writes `set` will do.
    pub(super) fn plan(&self, r: &LinuxResources) -> Result<Vec<Op>> {
        let mut ops = Vec::new();
        if let Some(m) = r.memory() {
            self.plan_memory(m, &mut ops)?;
        }
        if let Some(c) = r.cpu() {
            self.plan_cpu(c, &mut ops)?;
        }
        if let Some(p) = r.pids() {
            let d = self.need("pids", "pids.limit")?;
            ops.push(write(d, "pids.max", pids_max(p.limit())));
        }
        if let Some(b) = r.block_io() {
            self.plan_blkio(b, &mut ops)?;
        }
        if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
            if let Some(d) = self.dir("hugetlb") {
                plan::hugetlb(d, h, "limit_in_bytes", "rsvd.limit_in_bytes", &mut ops)?;
            } else if let Some(u) = self.unified_dir() {
                Controllers::new(u).require("hugetlb", "hugepageLimits")?;
                plan::hugetlb(u, h, "max", "rsvd.max", &mut ops)?;
            } else {
                self.need("hugetlb", "hugepageLimits")?;
            }
        }
        if let Some(n) = r.network() {
            self.plan_network(n, &mut ops)?;
        }
        if let Some(rd) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            if let Some(d) = self.dir("rdma") {
                plan::rdma(d, rd, &mut ops)?;
            } else if let Some(u) = self.unified_dir() {
                Controllers::new(u).require("rdma", "rdma limits")?;
                plan::rdma(u, rd, &mut ops)?;
            } else {
                self.need("rdma", "rdma limits")?;
            }
        }
        if let Some(devs) = r.devices() {
            let rules = devs.iter().map(dev_rule).collect::<Result<Vec<_>>>()?;
            if let Some(d) = self.dir("devices") {
                // default-deny, then each rule in order
                ops.push(write(d, "devices.deny", "a"));
                for rule in &rules {
                    let (file, line) = rule.v1_line();
                    ops.push(write(d, file, line));
                }
            } else if let Some(u) = self.unified_dir() {
                ops.push(Op::DeviceFilter(u.to_path_buf(), rules));
            } else {
                self.need("devices", "devices")?;
            }
        }
        if let Some(u) = r.unified().as_ref().filter(|m| !m.is_empty()) {
            let Some(dir) = self.unified_dir() else {
                return Err(cg_err(
                    "unified (cgroup v2) settings are not supported: this host has only cgroup v1",
                ));
            };
            plan::unified(dir, u, &mut ops)?;
        }
        Ok(ops)
    }

    fn plan_memory(&self, m: &LinuxMemory, ops: &mut Vec<Op>) -> Result<()> {
        let limit = m.limit().filter(|&l| l != 0);
        let mut swap = m.swap().filter(|&s| s != 0);
        let reservation = m.reservation().filter(|&v| v != 0);
        // kernel / kernelTCP (kmem) are deprecated (kernel 5.4+) and not recommended by the
        // spec: ignored, as runc does.
        let any = limit.is_some()
            || swap.is_some()
            || reservation.is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some()
            || m.use_hierarchy().is_some();
        if !any {
            return Ok(());
        }
        let d = self.need("memory", "memory settings")?;
        let limit_v = limit
            .map(|l| mem_value("memory.limit", l, "-1"))
            .transpose()?;
        if let Some(s) = swap {
            mem_value("memory.swap", s, "-1")?;
        }
        let memsw = d.join("memory.memsw.limit_in_bytes");
        let has_memsw = (limit == Some(-1) || swap.is_some()) && fs::exists(&memsw);
        if limit == Some(-1) && swap.is_none() && has_memsw {
            swap = Some(-1); // unlimited memory means unlimited memory+swap too
        }
        if let Some(s) = swap {
            if !has_memsw {
                if s != -1 {
                    return Err(cg_err(format!(
                        "memory.swap is not supported on this host: swap accounting is off \
                         ({} does not exist)",
                        memsw.display()
                    )));
                }
                swap = None; // no swap accounting: memory+swap is unlimited anyway
            } else if let Some(l) = limit.filter(|&l| l > 0) {
                if s != -1 && s < l {
                    return Err(Error::invalid(format!(
                        "memory.swap {s} (memory+swap) must be >= memory.limit {l}"
                    )));
                }
            }
        }
        if let (Some(true), Some(l)) = (m.check_before_update(), limit.filter(|&l| l > 0)) {
            let f = d.join("memory.usage_in_bytes");
            check_usage(fs::read(&f)?.trim(), l, &f)?;
        }
        if let Some(v) = m.swappiness() {
            if v > 100 {
                return Err(Error::invalid(format!(
                    "memory.swappiness {v} must be within 0..100"
                )));
            }
        }
        // memory.limit_in_bytes <= memory.memsw.limit_in_bytes must hold after each write
        match (limit_v, swap) {
            (Some(lv), Some(s)) => {
                let sw = write(d, "memory.memsw.limit_in_bytes", s.to_string());
                let li = write(d, "memory.limit_in_bytes", lv);
                let swap_first = s == -1 || {
                    let cur = fs::read(&d.join("memory.limit_in_bytes"))?;
                    cur.trim().parse::<i64>().unwrap_or(i64::MAX) < s
                };
                if swap_first {
                    ops.extend([sw, li]);
                } else {
                    ops.extend([li, sw]);
                }
            }
            (Some(lv), None) => ops.push(write(d, "memory.limit_in_bytes", lv)),
            (None, Some(s)) => ops.push(write(d, "memory.memsw.limit_in_bytes", s.to_string())),
            (None, None) => {}
        }
        if let Some(v) = reservation {
            ops.push(write(
                d,
                "memory.soft_limit_in_bytes",
                mem_value("memory.reservation", v, "-1")?,
            ));
        }
        if let Some(v) = m.swappiness() {
            ops.push(write(d, "memory.swappiness", v.to_string()));
        }
        if let Some(v) = m.disable_oom_killer() {
            ops.push(write(d, "memory.oom_control", if v { "1" } else { "0" }));
        }
        if let Some(v) = m.use_hierarchy() {
            ops.push(write(d, "memory.use_hierarchy", if v { "1" } else { "0" }));
        }
        Ok(())
    }

    fn plan_cpu(&self, c: &LinuxCpu, ops: &mut Vec<Op>) -> Result<()> {
        let shares = c.shares().filter(|&s| s != 0);
        let quota = c.quota().filter(|&q| q != 0);
        let period = c.period().filter(|&p| p != 0);
        let rt_runtime = c.realtime_runtime().filter(|&v| v != 0);
        let rt_period = c.realtime_period().filter(|&v| v != 0);
        let uses_cpu = shares.is_some()
            || quota.is_some()
            || period.is_some()
            || c.burst().is_some()
            || rt_runtime.is_some()
            || rt_period.is_some()
            || c.idle().is_some();
        if uses_cpu {
            let d = self.need("cpu", "cpu settings")?;
            if let Some(s) = shares {
                ops.push(write(d, "cpu.shares", s.to_string()));
            }
            let burst = match c.burst() {
                Some(b) => {
                    if let Some(q) = quota.filter(|&q| q > 0) {
                        if b > q as u64 {
                            return Err(Error::invalid(format!(
                                "cpu.burst {b} must not exceed cpu.quota {q}"
                            )));
                        }
                    }
                    Some(Op::Write(
                        need_file(d, "cpu.cfs_burst_us", "cpu.burst")?,
                        b.to_string(),
                    ))
                }
                None => None,
            };
            if burst.is_some() && quota.is_some() {
                ops.push(write(d, "cpu.cfs_burst_us", "0"));
            }
            if let Some(p) = period {
                ops.push(write(d, "cpu.cfs_period_us", p.to_string()));
            }
            if let Some(q) = quota {
                ops.push(write(
                    d,
                    "cpu.cfs_quota_us",
                    if q > 0 { q.to_string() } else { "-1".into() },
                ));
            }
            ops.extend(burst);
            let rt_p = rt_period
                .map(|p| {
                    need_file(d, "cpu.rt_period_us", "cpu.realtimePeriod")
                        .map(|f| Op::Write(f, p.to_string()))
                })
                .transpose()?;
            let rt_r = rt_runtime
                .map(|r| {
                    need_file(d, "cpu.rt_runtime_us", "cpu.realtimeRuntime")
                        .map(|f| Op::Write(f, if r > 0 { r.to_string() } else { "-1".into() }))
                })
                .transpose()?;
            // runtime <= period must hold after each write
            let runtime_first = match (rt_runtime, rt_period) {
                (Some(_), Some(p)) => {
                    let cur = fs::read(&d.join("cpu.rt_runtime_us"))?;
                    cur.trim().parse::<i64>().unwrap_or(0) > p as i64
                }
                _ => false,
            };
            if runtime_first {
                ops.extend(rt_r.into_iter().chain(rt_p));
            } else {
                ops.extend(rt_p.into_iter().chain(rt_r));
            }
            if let Some(idle) = c.idle() {
                if !(0..=1).contains(&idle) {
                    return Err(Error::invalid(format!("cpu.idle {idle} must be 0 or 1")));
                }
                ops.push(Op::Write(
                    need_file(d, "cpu.idle", "cpu.idle")?,
                    idle.to_string(),
                ));
            }
        }
        for (val, what, file) in [
            (c.cpus(), "cpu.cpus", "cpuset.cpus"),
            (c.mems(), "cpu.mems", "cpuset.mems"),
        ] {
            if let Some(v) = val.as_deref().filter(|s| !s.is_empty()) {
                let d = self.need("cpuset", what)?;
                check_cpu_list(what, v)?;
                ops.push(write(d, file, v));
            }
        }
        Ok(())
    }

    fn plan_blkio(&self, b: &LinuxBlockIo, ops: &mut Vec<Op>) -> Result<()> {
        let weight_devs = b.weight_device().as_deref().unwrap_or(&[]);
        let mut throttles = Vec::new();
        for (devs, file) in [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
            ),
        ] {
            for l in plan::throttle_lines(devs, |r| r.to_string())? {
                throttles.push((file, l));
            }
        }
        if nz(b.weight()).is_none()
            && nz(b.leaf_weight()).is_none()
            && weight_devs.is_empty()
            && throttles.is_empty()
        {
            return Ok(());
        }
        let d = self.need("blkio", "blockIO settings")?;
        let weights_wanted =
            nz(b.weight()).is_some() || weight_devs.iter().any(|w| w.weight().is_some());
        let prefix = if !weights_wanted || fs::exists(&d.join("blkio.weight")) {
            "blkio."
        } else if fs::exists(&d.join("blkio.bfq.weight")) {
            "blkio.bfq."
        } else {
            return Err(cg_err(format!(
                "blockIO weight is not supported on this host: {} has neither blkio.weight nor \
                 blkio.bfq.weight (no CFQ/BFQ I/O scheduler)",
                d.display()
            )));
        };
        if let Some(w) = nz(b.weight()) {
            check_weight(w)?;
            ops.push(write(d, &format!("{prefix}weight"), w.to_string()));
        }
        if let Some(w) = nz(b.leaf_weight()) {
            check_weight(w)?;
            ops.push(Op::Write(
                need_file(d, "blkio.leaf_weight", "blockIO.leafWeight")?,
                w.to_string(),
            ));
        }
        for wd in weight_devs {
            plan::check_dev_numbers(wd.major(), wd.minor())?;
            if let Some(w) = wd.weight() {
                check_weight(w)?;
                ops.push(write(
                    d,
                    &format!("{prefix}weight_device"),
                    format!("{}:{} {w}", wd.major(), wd.minor()),
                ));
            }
            if let Some(w) = wd.leaf_weight() {
                check_weight(w)?;
                let f = need_file(
                    d,
                    "blkio.leaf_weight_device",
                    "blockIO.weightDevice leafWeight",
                )?;
                ops.push(Op::Write(f, format!("{}:{} {w}", wd.major(), wd.minor())));
            }
        }
        for (file, line) in throttles {
            ops.push(Op::Write(need_file(d, file, "blockIO throttling")?, line));
        }
        Ok(())
    }

    fn plan_network(&self, n: &LinuxNetwork, ops: &mut Vec<Op>) -> Result<()> {
        if let Some(id) = n.class_id() {
            let d = self.need("net_cls", "network.classID")?;
            ops.push(write(d, "net_cls.classid", id.to_string()));
        }
        for p in n.priorities().iter().flatten() {
            let d = self.need("net_prio", "network.priorities")?;
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(Error::invalid(format!(
                    "network priority interface {:?} is invalid",
                    p.name()
                )));
            }
            ops.push(write(
                d,
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
        Ok(())
    }

    /// Where to list processes: the cgroup2 directory on a hybrid host, else the first of
    /// freezer, pids, memory, or any hierarchy.
    fn procs_dir(&self) -> Result<&Path> {
        if let Some(u) = self.unified_dir() {
            return Ok(u);
        }
        ["freezer", "pids", "memory"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.dirs.first().map(|(_, d)| d.as_path()))
            .ok_or_else(|| cg_err("no cgroup hierarchy is mounted"))
    }
}

/// Fills an empty `cpuset.cpus`/`cpuset.mems` from the parent (recursively), or no task can
/// join the cgroup (ENOSPC).
fn ensure_cpuset(mountpoint: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        fill_from_parent(mountpoint, dir, file)?;
    }
    Ok(())
}

fn fill_from_parent(mountpoint: &Path, dir: &Path, file: &str) -> Result<String> {
    let cur = fs::read(&dir.join(file))?.trim().to_string();
    if !cur.is_empty() || dir == mountpoint {
        return Ok(cur);
    }
    let Some(parent) = dir.parent() else {
        return Ok(cur);
    };
    let value = fill_from_parent(mountpoint, parent, file)?;
    fs::write(&dir.join(file), &value)?;
    Ok(value)
}

fn freeze_v1(dir: &Path) -> Result<()> {
    let state = dir.join("freezer.state");
    fs::write(&state, "FROZEN")?;
    let frozen = fs::wait_until(FREEZE_TIMEOUT, || Ok(fs::read(&state)?.trim() == "FROZEN"))?;
    if !frozen {
        let _ = fs::write(&state, "THAWED");
        return Err(cg_err(format!(
            "freeze {}: still FREEZING after {}s (thawed it again)",
            dir.display(),
            FREEZE_TIMEOUT.as_secs()
        )));
    }
    Ok(())
}

impl CgroupManager for V1Manager {
    fn create_cgroup2(&self) -> Result<()> {
        if let Some((mp, d, path)) = &self.unified {
            fs::mkdir_p(d)?;
            v2::enable_controllers(mp, path)?;
        }
        Ok(())
    }

    fn create_rest(&self) -> Result<()> {
        for (h, d) in &self.dirs {
            fs::mkdir_p(d)?;
            if h.has("cpuset") {
                ensure_cpuset(&h.mountpoint, d)?;
            }
        }
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        let value = pid.to_string();
        let dirs = self
            .dirs
            .iter()
            .map(|(_, d)| d)
            .chain(self.unified.as_ref().map(|u| &u.1));
        for d in dirs {
            let p = d.join("cgroup.procs");
            fs::write_io(&p, &value)
                .map_err(|e| Error::io(format!("move pid {pid} into"), p, e))?;
        }
        Ok(())
    }

    fn apply_self(&self) -> Result<()> {
        for (_, d) in &self.dirs {
            let p = d.join("tasks");
            fs::write_io(&p, "0").map_err(|e| Error::io("move this thread into", p, e))?;
        }
        if let Some((_, d, path)) = &self.unified {
            v2::join_self(d, path)?;
        }
        Ok(())
    }

    fn cgroup2_dir(&self) -> Option<&Path> {
        self.unified_dir()
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        plan::run(&self.plan(r)?)
    }

    fn freeze(&self) -> Result<()> {
        match (self.dir("freezer"), self.unified_dir()) {
            (Some(d), _) => freeze_v1(d),
            (None, Some(u)) => v2::freeze(u),
            (None, None) => Err(self.need("freezer", "freeze").unwrap_err()),
        }
    }

    fn thaw(&self) -> Result<()> {
        match (self.dir("freezer"), self.unified_dir()) {
            (Some(d), _) => fs::write(&d.join("freezer.state"), "THAWED"),
            (None, Some(u)) => v2::thaw(u),
            (None, None) => Err(self.need("freezer", "thaw").unwrap_err()),
        }
    }

    fn is_frozen(&self) -> Result<bool> {
        match (self.dir("freezer"), self.unified_dir()) {
            (Some(d), _) => Ok(fs::read(&d.join("freezer.state"))?.trim() == "FROZEN"),
            (None, Some(u)) => v2::is_frozen(u),
            (None, None) => Ok(false),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        fs::procs_recursive(self.procs_dir()?, &mut out)?;
        Ok(out)
    }

    fn kill_all(&self, sig: i32) -> Result<()> {
        if !fs::exists(self.procs_dir()?) {
            return Ok(()); // no cgroup, no process in it
        }
        if sig == libc::SIGKILL {
            if let Some(u) = self.unified_dir() {
                // v1-frozen tasks cannot die: thaw after the kill (a no-op if not frozen)
                if v2::cgroup_kill(u)? {
                    if let Some(d) = self.dir("freezer") {
                        fs::write(&d.join("freezer.state"), "THAWED")?;
                    }
                    return Ok(());
                }
            }
        }
        let can_freeze = self.dir("freezer").is_some() || self.unified.is_some();
        super::signal_all(self, sig, can_freeze)
    }

    fn destroy(&self) -> Result<()> {
        let mut errs = Errors::default();
        for (_, d) in &self.dirs {
            errs.push(fs::remove_cgroup(d));
        }
        if let Some(u) = self.unified_dir() {
            errs.push(fs::remove_cgroup(u));
        }
        errs.into_result()
    }

    fn container_mounts(&self) -> Vec<CgroupMount> {
        let base = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut v: Vec<CgroupMount> = self
            .dirs
            .iter()
            .map(|(h, d)| CgroupMount {
                fstype: "cgroup",
                host_mountpoint: h.mountpoint.clone(),
                controllers: h.controllers.clone(),
                source: d.clone(),
                subdir: base(&h.mountpoint),
            })
            .collect();
        if let Some((mp, d, _)) = &self.unified {
            v.push(CgroupMount {
                fstype: "cgroup2",
                host_mountpoint: mp.clone(),
                controllers: Vec::new(),
                source: d.clone(),
                subdir: base(mp),
            });
        }
        v
    }
}

#[cfg(test)]
#[path = "v1_tests.rs"]
mod tests;
