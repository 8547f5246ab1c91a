//! What `set` will do, worked out (and validated) before anything is written: a list of
//! operations, and the planning helpers shared by the v1 and v2 managers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxHugepageLimit, LinuxRdma, LinuxThrottleDevice};

use super::convert::{check_hugepage_size, DevRule};
use super::{cg_err, devices_bpf, fs};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    /// Write a value to a cgroup file.
    Write(PathBuf, String),
    /// Install the eBPF device filter on a cgroup2 directory.
    DeviceFilter(PathBuf, Vec<DevRule>),
}

pub(super) fn write(dir: &Path, file: &str, value: impl Into<String>) -> Op {
    Op::Write(dir.join(file), value.into())
}

pub(super) fn run(ops: &[Op]) -> Result<()> {
    // Consecutive writes to one file (device rules: often 20+) share one open: cgroupfs takes
    // each write(2) as one command, and open+close cost more than the write itself.
    let mut open: Option<(&Path, std::fs::File)> = None;
    for op in ops {
        match op {
            Op::Write(path, value) => {
                if open.as_ref().is_none_or(|(p, _)| *p != path.as_path()) {
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(path)
                        .map_err(|e| Error::io(format!("write {value:?} to"), path, e))?;
                    open = Some((path.as_path(), f));
                }
                let (_, f) = open.as_mut().expect("opened above");
                match std::io::Write::write(f, value.as_bytes()) {
                    Ok(n) if n == value.len() => {}
                    Ok(_) => return Err(Error::io(format!("write {value:?} to"), path, std::io::ErrorKind::WriteZero.into())),
                    Err(e) => return Err(Error::io(format!("write {value:?} to"), path, e)),
                }
            }
            Op::DeviceFilter(dir, rules) => {
                open = None;
                devices_bpf::apply(dir, rules)?
            }
        }
    }
    Ok(())
}

/// `dir/file`, which must exist (an optional kernel feature).
pub(super) fn need_file(dir: &Path, file: &str, what: &str) -> Result<PathBuf> {
    let p = dir.join(file);
    if fs::exists(&p) {
        Ok(p)
    } else {
        Err(cg_err(format!(
            "{what} is not supported on this host: {} does not exist",
            p.display()
        )))
    }
}

/// Hugepage limits: `hugetlb.<size>.<limit_file>`, plus the reservation limit
/// `hugetlb.<size>.<rsvd_file>` where the kernel has it (the spec prefers reservation limits).
pub(super) fn hugetlb(
    dir: &Path,
    limits: &[LinuxHugepageLimit],
    limit_file: &str,
    rsvd_file: &str,
    ops: &mut Vec<Op>,
) -> Result<()> {
    for h in limits {
        let size = h.page_size();
        check_hugepage_size(size)?;
        let value = match h.limit() {
            v if v < 0 => {
                return Err(Error::invalid(format!(
                    "hugepage limit {v} for {size} is invalid"
                )))
            }
            v => v.to_string(),
        };
        let file = format!("hugetlb.{size}.{limit_file}");
        let p = need_file(dir, &file, &format!("hugepage size {size}"))?;
        ops.push(Op::Write(p, value.clone()));
        let rsvd = dir.join(format!("hugetlb.{size}.{rsvd_file}"));
        if fs::exists(&rsvd) {
            ops.push(Op::Write(rsvd, value));
        }
    }
    Ok(())
}

/// `rdma.max` lines: `mlx5_0 hca_handle=2 hca_object=2000` (one write per device).
pub(super) fn rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>, ops: &mut Vec<Op>) -> Result<()> {
    let mut devs: Vec<_> = rdma.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, r) in devs {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(Error::invalid(format!(
                "rdma device name {dev:?} is invalid"
            )));
        }
        let mut line = dev.clone();
        if let Some(h) = r.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() == dev.len() {
            return Err(Error::invalid(format!(
                "rdma {dev}: set hcaHandles or hcaObjects"
            )));
        }
        ops.push(write(dir, "rdma.max", line));
    }
    Ok(())
}

/// Throttle entries: `<major>:<minor> <rate>` with `fmt` turning the rate into the value.
pub(super) fn throttle_lines(
    devs: &Option<Vec<LinuxThrottleDevice>>,
    fmt: impl Fn(u64) -> String,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for d in devs.iter().flatten() {
        check_dev_numbers(d.major(), d.minor())?;
        out.push(format!("{}:{} {}", d.major(), d.minor(), fmt(d.rate())));
    }
    Ok(out)
}

pub(super) fn check_dev_numbers(major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 || major > i64::from(u32::MAX) || minor > i64::from(u32::MAX) {
        return Err(Error::invalid(format!(
            "invalid device number {major}:{minor}"
        )));
    }
    Ok(())
}

/// `unified` key/values: written as is, after the typed settings (so they win), in key order.
/// Each key must be a plain file name that exists in `dir`.
pub(super) fn unified(dir: &Path, map: &HashMap<String, String>, ops: &mut Vec<Op>) -> Result<()> {
    let mut keys: Vec<_> = map.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in keys {
        if k.is_empty() || k.contains('/') || k == "." || k == ".." || k.contains('\0') {
            return Err(Error::invalid(format!(
                "unified key {k:?} is not a cgroup file name"
            )));
        }
        if matches!(
            k.as_str(),
            "cgroup.procs" | "cgroup.threads" | "cgroup.kill" | "cgroup.freeze"
        ) {
            return Err(Error::invalid(format!(
                "unified key {k:?} is managed by the runtime and cannot be set"
            )));
        }
        let p = dir.join(k);
        if !fs::exists(&p) {
            let ctrl = k.split('.').next().unwrap_or(k);
            return Err(cg_err(format!(
                "unified key {k:?}: {} does not exist (is the {ctrl} controller enabled and \
                 available in this cgroup2 hierarchy?)",
                p.display()
            )));
        }
        ops.push(Op::Write(p, v.clone()));
    }
    Ok(())
}

/// Reads `cgroup.controllers` of a cgroup2 directory once, when first needed.
pub(super) struct Controllers<'a> {
    dir: &'a Path,
    list: Option<String>,
}

impl<'a> Controllers<'a> {
    pub fn new(dir: &'a Path) -> Self {
        Controllers { dir, list: None }
    }

    pub fn has(&mut self, ctrl: &str) -> Result<bool> {
        if self.list.is_none() {
            self.list = Some(fs::read(&self.dir.join("cgroup.controllers"))?);
        }
        Ok(fs::words(self.list.as_deref().unwrap_or("")).any(|c| c == ctrl))
    }

    /// Fails unless `ctrl` is enabled for this cgroup; `what` names the setting.
    pub fn require(&mut self, ctrl: &str, what: &str) -> Result<()> {
        if self.has(ctrl)? {
            return Ok(());
        }
        Err(cg_err(format!(
            "{what} needs the {ctrl} controller, which is not enabled for {} (not in its \
             cgroup.controllers: the kernel lacks it, it is bound to a cgroup v1 hierarchy, or \
             the parent's cgroup.subtree_control does not enable it)",
            self.dir.display()
        )))
    }
}
