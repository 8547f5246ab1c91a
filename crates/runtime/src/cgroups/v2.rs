//! cgroup v2 (unified hierarchy) manager. The freeze/kill/controller-enabling helpers here are
//! also used for the cgroup2 mount of a hybrid host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::convert::{
    nz,
    blkio_weight_to_io_weight, check_cpu_list, dev_rule, mem_value, pids_max, shares_to_weight,
    v2_swap_max,
};
use super::plan::{self, need_file, write, Controllers, Op};
use super::{cg_err, fs, CgroupManager, CgroupMount};
use crate::{Error, Result};

pub(super) const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(super) struct V2Manager {
    mountpoint: PathBuf,
    path: String,
    dir: PathBuf,
}

impl V2Manager {
    pub fn new(mountpoint: &Path, path: &str) -> Self {
        V2Manager {
            mountpoint: mountpoint.to_path_buf(),
            path: path.to_string(),
            dir: fs::join(mountpoint, path),
        }
    }

    /// Validates `r` and lists the writes `set` will do.
    pub(super) fn plan(&self, r: &LinuxResources) -> Result<Vec<Op>> {
        let d = self.dir.as_path();
        let mut ctl = Controllers::new(d);
        let mut ops = Vec::new();
        if let Some(m) = r.memory() {
            plan_memory(d, m, &mut ctl, &mut ops)?;
        }
        if let Some(c) = r.cpu() {
            plan_cpu(d, c, &mut ctl, &mut ops)?;
        }
        if let Some(p) = r.pids() {
            ctl.require("pids", "pids.limit")?;
            ops.push(write(d, "pids.max", pids_max(p.limit())));
        }
        if let Some(b) = r.block_io() {
            plan_io(d, b, &mut ctl, &mut ops)?;
        }
        if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
            ctl.require("hugetlb", "hugepageLimits")?;
            plan::hugetlb(d, h, "max", "rsvd.max", &mut ops)?;
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(cg_err(
                    "network.classID/priorities need the net_cls/net_prio controllers, which \
                     cgroup v2 does not have",
                ));
            }
        }
        if let Some(rd) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            ctl.require("rdma", "rdma limits")?;
            plan::rdma(d, rd, &mut ops)?;
        }
        if let Some(devs) = r.devices() {
            let rules = devs.iter().map(dev_rule).collect::<Result<Vec<_>>>()?;
            ops.push(Op::DeviceFilter(self.dir.clone(), rules));
        }
        if let Some(u) = r.unified() {
            plan::unified(d, u, &mut ops)?;
        }
        Ok(ops)
    }
}

fn plan_memory(d: &Path, m: &LinuxMemory, ctl: &mut Controllers, ops: &mut Vec<Op>) -> Result<()> {
    let limit = m.limit().filter(|&l| l != 0);
    if let Some(l) = limit {
        ctl.require("memory", "memory.limit")?;
        ops.push(write(d, "memory.max", mem_value("memory.limit", l, "max")?));
        if m.check_before_update() == Some(true) && l > 0 {
            let usage = fs::read(&d.join("memory.current"))?;
            check_usage(usage.trim(), l, &d.join("memory.current"))?;
        }
    }
    if let Some(v) = m.reservation().filter(|&v| v != 0) {
        ctl.require("memory", "memory.reservation")?;
        ops.push(write(
            d,
            "memory.low",
            mem_value("memory.reservation", v, "max")?,
        ));
    }
    if let Some(v) = v2_swap_max(limit, m.swap())? {
        let explicit = m.swap().is_some_and(|s| s != 0);
        if explicit {
            ctl.require("memory", "memory.swap")?;
            let p = need_file(d, "memory.swap.max", "memory.swap (swap accounting)")?;
            ops.push(Op::Write(p, v));
        } else if fs::exists(&d.join("memory.swap.max")) {
            ops.push(write(d, "memory.swap.max", v));
        }
    }
    if m.swappiness().is_some() {
        return Err(cg_err("memory.swappiness is not supported on cgroup v2"));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(cg_err(
            "memory.disableOOMKiller is not supported on cgroup v2",
        ));
    }
    // kernel / kernelTCP: kernel memory is always accounted with user memory on v2; the
    // spec marks both NOT RECOMMENDED and runc ignores them: ignored. useHierarchy: v2 is
    // always hierarchical: ignored.
    Ok(())
}

pub(super) fn check_usage(usage: &str, limit: i64, file: &Path) -> Result<()> {
    let usage: i64 = usage
        .parse()
        .map_err(|_| cg_err(format!("{}: unexpected value {usage:?}", file.display())))?;
    if usage > limit {
        return Err(cg_err(format!(
            "memory.limit {limit} is below the current usage {usage} ({}); \
             refused because memory.checkBeforeUpdate is set",
            file.display()
        )));
    }
    Ok(())
}

fn plan_cpu(d: &Path, c: &LinuxCpu, ctl: &mut Controllers, ops: &mut Vec<Op>) -> Result<()> {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        ctl.require("cpu", "cpu.shares")?;
        ops.push(write(d, "cpu.weight", shares_to_weight(s).to_string()));
    }
    let quota = c.quota().filter(|&q| q != 0);
    let period = c.period().filter(|&p| p != 0);
    let burst_op = match c.burst() {
        Some(b) => {
            ctl.require("cpu", "cpu.burst")?;
            if let Some(q) = quota.filter(|&q| q > 0) {
                if b > q as u64 {
                    return Err(Error::invalid(format!(
                        "cpu.burst {b} must not exceed cpu.quota {q}"
                    )));
                }
            }
            Some(Op::Write(
                need_file(d, "cpu.max.burst", "cpu.burst")?,
                b.to_string(),
            ))
        }
        None => None,
    };
    if quota.is_some() || period.is_some() {
        ctl.require("cpu", "cpu.quota/cpu.period")?;
        let q = quota.map(|q| {
            if q > 0 {
                q.to_string()
            } else {
                "max".to_string()
            }
        });
        let value = match (q, period) {
            (Some(q), Some(p)) => format!("{q} {p}"),
            (Some(q), None) => q, // the kernel keeps the period
            (None, Some(p)) => {
                // keep the current quota
                let cur = fs::read(&d.join("cpu.max"))?;
                format!("{} {p}", cur.split_whitespace().next().unwrap_or("max"))
            }
            (None, None) => unreachable!(),
        };
        if burst_op.is_some() {
            // burst must stay <= quota at every step: clear it first
            ops.push(write(d, "cpu.max.burst", "0"));
        }
        ops.push(write(d, "cpu.max", value));
    }
    ops.extend(burst_op);
    if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
        return Err(cg_err(
            "cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2",
        ));
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        ctl.require("cpuset", "cpu.cpus")?;
        check_cpu_list("cpu.cpus", cpus)?;
        ops.push(write(d, "cpuset.cpus", cpus));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        ctl.require("cpuset", "cpu.mems")?;
        check_cpu_list("cpu.mems", mems)?;
        ops.push(write(d, "cpuset.mems", mems));
    }
    if let Some(idle) = c.idle() {
        ctl.require("cpu", "cpu.idle")?;
        if !(0..=1).contains(&idle) {
            return Err(Error::invalid(format!("cpu.idle {idle} must be 0 or 1")));
        }
        ops.push(Op::Write(
            need_file(d, "cpu.idle", "cpu.idle")?,
            idle.to_string(),
        ));
    }
    Ok(())
}

fn plan_io(d: &Path, b: &LinuxBlockIo, ctl: &mut Controllers, ops: &mut Vec<Op>) -> Result<()> {
    if nz(b.leaf_weight()).is_some()
        || b.weight_device()
            .iter()
            .flatten()
            .any(|w| w.leaf_weight().is_some())
    {
        return Err(cg_err("blockIO leafWeight is not supported on cgroup v2"));
    }
    let has_weights =
        nz(b.weight()).is_some() || b.weight_device().as_ref().is_some_and(|v| !v.is_empty());
    if has_weights {
        ctl.require("io", "blockIO.weight")?;
        // BFQ takes the v1 range (1..1000) directly; otherwise io.weight (1..10000).
        let bfq = fs::exists(&d.join("io.bfq.weight"));
        let (file, conv): (&str, fn(u16) -> u64) = if bfq {
            ("io.bfq.weight", u64::from)
        } else {
            need_file(
                d,
                "io.weight",
                "blockIO.weight (no io.bfq.weight nor io.weight)",
            )?;
            ("io.weight", blkio_weight_to_io_weight)
        };
        if let Some(w) = nz(b.weight()) {
            check_weight(w)?;
            ops.push(write(d, file, conv(w).to_string()));
        }
        for wd in b.weight_device().iter().flatten() {
            plan::check_dev_numbers(wd.major(), wd.minor())?;
            if let Some(w) = wd.weight() {
                check_weight(w)?;
                ops.push(write(
                    d,
                    file,
                    format!("{}:{} {}", wd.major(), wd.minor(), conv(w)),
                ));
            }
        }
    }
    let rate = |r: u64| {
        if r == 0 {
            "max".to_string()
        } else {
            r.to_string()
        }
    };
    let mut lines = Vec::new();
    for (devs, key) in [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ] {
        for l in plan::throttle_lines(devs, |r| format!("{key}={}", rate(r)))? {
            lines.push(l);
        }
    }
    if !lines.is_empty() {
        ctl.require("io", "blockIO throttling")?;
        for l in lines {
            ops.push(write(d, "io.max", l));
        }
    }
    Ok(())
}

pub(super) fn check_weight(w: u16) -> Result<()> {
    if (1..=1000).contains(&w) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "blockIO weight {w} must be within 1..1000"
        )))
    }
}

/// Enables, in each ancestor of `path` (from the root down to its parent), every controller
/// that ancestor has available. Skips the walk when `path` already has every controller the
/// root offers (two reads). A controller that cannot be enabled is left out; `set` then
/// reports it if a setting needs it.
pub(super) fn enable_controllers(mountpoint: &Path, path: &str) -> Result<()> {
    let root_avail = fs::read(&mountpoint.join("cgroup.controllers"))?;
    let leaf = fs::join(mountpoint, path);
    let leaf_avail = fs::read(&leaf.join("cgroup.controllers"))?;
    if fs::words(&root_avail).all(|c| fs::words(&leaf_avail).any(|l| l == c)) {
        return Ok(());
    }
    let mut cur = mountpoint.to_path_buf();
    for (i, comp) in path.split('/').filter(|c| !c.is_empty()).enumerate() {
        let avail = if i == 0 {
            root_avail.clone()
        } else {
            fs::read(&cur.join("cgroup.controllers"))?
        };
        let sub = cur.join("cgroup.subtree_control");
        let enabled = fs::read(&sub)?;
        let missing: Vec<&str> = fs::words(&avail)
            .filter(|c| !fs::words(&enabled).any(|e| e == *c))
            .collect();
        if !missing.is_empty() {
            let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
            if fs::write_io(&sub, &all.join(" ")).is_err() {
                for c in &all {
                    let _ = fs::write_io(&sub, c);
                }
            }
        }
        cur.push(comp);
    }
    Ok(())
}

fn event(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().to_string())
    })
}

pub(super) fn freeze(dir: &Path) -> Result<()> {
    freeze_within(dir, FREEZE_TIMEOUT)
}

pub(super) fn freeze_within(dir: &Path, timeout: Duration) -> Result<()> {
    fs::write(&dir.join("cgroup.freeze"), "1")?;
    let events = dir.join("cgroup.events");
    let frozen = fs::wait_until(timeout, || {
        Ok(event(&fs::read(&events)?, "frozen").as_deref() == Some("1"))
    })?;
    if !frozen {
        let _ = fs::write(&dir.join("cgroup.freeze"), "0");
        return Err(cg_err(format!(
            "freeze {}: not frozen after {:?} (thawed it again)",
            dir.display(),
            timeout
        )));
    }
    Ok(())
}

pub(super) fn thaw(dir: &Path) -> Result<()> {
    fs::write(&dir.join("cgroup.freeze"), "0")
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fs::read(&dir.join("cgroup.freeze"))?.trim() == "1")
}

/// Moves the calling process into cgroup2 directory `dir` (cgroup `path`) unless it is there.
pub(super) fn join_self(dir: &Path, path: &str) -> Result<()> {
    if super::self_in_unified(path) {
        return Ok(());
    }
    let p = dir.join("cgroup.procs");
    fs::write_io(&p, "0").map_err(|e| Error::io("move this process into", p, e))
}

/// Writes `cgroup.kill`; `Ok(false)` when the kernel has none (before 5.14).
pub(super) fn cgroup_kill(dir: &Path) -> Result<bool> {
    let p = dir.join("cgroup.kill");
    match fs::write_io(&p, "1") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && fs::exists(dir) => Ok(false),
        Err(e) => Err(Error::io("write \"1\" to", p, e)),
    }
}

impl CgroupManager for V2Manager {
    fn create_cgroup2(&self) -> Result<()> {
        fs::mkdir_p(&self.dir)?;
        enable_controllers(&self.mountpoint, &self.path)
    }

    fn create_rest(&self) -> Result<()> {
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        let p = self.dir.join("cgroup.procs");
        fs::write_io(&p, &pid.to_string())
            .map_err(|e| Error::io(format!("move pid {pid} into"), p, e))
    }

    fn apply_self(&self) -> Result<()> {
        join_self(&self.dir, &self.path)
    }

    fn cgroup2_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        plan::run(&self.plan(r)?)
    }

    fn freeze(&self) -> Result<()> {
        freeze(&self.dir)
    }

    fn thaw(&self) -> Result<()> {
        thaw(&self.dir)
    }

    fn is_frozen(&self) -> Result<bool> {
        is_frozen(&self.dir)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        fs::procs_recursive(&self.dir, &mut out)?;
        Ok(out)
    }

    fn kill_all(&self, sig: i32) -> Result<()> {
        if !fs::exists(&self.dir) {
            return Ok(()); // no cgroup, no process in it
        }
        if sig == libc::SIGKILL && cgroup_kill(&self.dir)? {
            return Ok(());
        }
        super::signal_all(self, sig, true)
    }

    fn destroy(&self) -> Result<()> {
        fs::remove_cgroup(&self.dir)
    }

    fn container_mounts(&self) -> Vec<CgroupMount> {
        vec![CgroupMount {
            fstype: "cgroup2",
            host_mountpoint: self.mountpoint.clone(),
            controllers: Vec::new(),
            source: self.dir.clone(),
            subdir: String::new(),
        }]
    }
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
