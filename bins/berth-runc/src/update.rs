//! Flags of `exec` and `update`, turned into an OCI Process and LinuxResources.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, LinuxResources, Process};

#[derive(clap::Args)]
pub struct ExecArgs {
    /// A process.json (OCI Process); "-" reads stdin.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective, permitted and inheritable sets.
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility.
    #[arg(long = "ignore-paused", hide = true)]
    pub ignore_paused: bool,
    pub container_id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf) -> Result<T> {
    let data = if path.as_os_str() == "-" {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read(path).with_context(|| format!("read {}", path.display()))?
    };
    serde_json::from_slice(&data).with_context(|| format!("parse {}", path.display()))
}

impl ExecArgs {
    /// The process to run: --process as given, or the container's own process with the flags
    /// applied on top (as runc does).
    pub fn process_with_root(&self, root: &std::path::Path) -> Result<Process> {
        if let Some(p) = &self.process {
            return read_json(p);
        }
        if self.args.is_empty() {
            bail!("exec: no command given (use --process or ARGS)");
        }
        let spec = berth_runtime::container::spec_of(root, &self.container_id)?;
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_args(Some(self.args.clone()));
        p.set_terminal(Some(self.tty));
        p.set_console_size(None);
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(self.env.iter().cloned());
        p.set_env(Some(env));
        if let Some(c) = &self.cwd {
            p.set_cwd(c.clone());
        }
        if let Some(u) = &self.user {
            let (uid, gid) = match u.split_once(':') {
                Some((a, b)) => (a.parse()?, Some(b.parse()?)),
                None => (u.parse().with_context(|| format!("--user {u}: must be UID[:GID]"))?, None),
            };
            let user = p.user_mut();
            user.set_uid(uid);
            if let Some(g) = gid {
                user.set_gid(g);
            }
        }
        if !self.additional_gids.is_empty() {
            p.user_mut().set_additional_gids(Some(self.additional_gids.clone()));
        }
        if !self.cap.is_empty() {
            let mut caps = p.capabilities().clone().unwrap_or_default();
            for c in &self.cap {
                let name = c.strip_prefix("CAP_").unwrap_or(c);
                let cap: Capability = name.parse().with_context(|| format!("unknown capability {c}"))?;
                for set in [caps.bounding().clone(), caps.effective().clone(), caps.permitted().clone(), caps.inheritable().clone()]
                    .iter()
                    .enumerate()
                {
                    let mut s = set.1.clone().unwrap_or_default();
                    s.insert(cap);
                    match set.0 {
                        0 => caps.set_bounding(Some(s)),
                        1 => caps.set_effective(Some(s)),
                        2 => caps.set_permitted(Some(s)),
                        _ => caps.set_inheritable(Some(s)),
                    };
                }
            }
            p.set_capabilities(Some(caps));
        }
        if self.no_new_privs {
            p.set_no_new_privileges(Some(true));
        }
        if let Some(a) = &self.apparmor {
            p.set_apparmor_profile(Some(a.clone()));
        }
        if let Some(l) = &self.process_label {
            p.set_selinux_label(Some(l.clone()));
        }
        Ok(p)
    }
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// A LinuxResources JSON file; "-" reads stdin.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub container_id: String,
}

/// "512m", "1g", "1048576", "-1" -> bytes (-1 = unlimited).
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

impl UpdateArgs {
    pub fn resources(&self) -> Result<LinuxResources> {
        let mut v = match &self.resources {
            Some(p) => serde_json::to_value(read_json::<LinuxResources>(p)?)?,
            None => serde_json::json!({}),
        };
        let mut set = |section: &str, key: &str, val: serde_json::Value| {
            v.as_object_mut().expect("object").entry(section).or_insert_with(|| serde_json::json!({}))[key] = val;
        };
        if let Some(m) = &self.memory {
            set("memory", "limit", parse_size(m)?.into());
        }
        if let Some(m) = &self.memory_reservation {
            set("memory", "reservation", parse_size(m)?.into());
        }
        if let Some(m) = &self.memory_swap {
            set("memory", "swap", parse_size(m)?.into());
        }
        if let Some(q) = self.cpu_quota {
            set("cpu", "quota", q.into());
        }
        if let Some(p) = self.cpu_period {
            set("cpu", "period", p.into());
        }
        if let Some(s) = self.cpu_share {
            set("cpu", "shares", s.into());
        }
        if let Some(c) = &self.cpuset_cpus {
            set("cpu", "cpus", c.clone().into());
        }
        if let Some(m) = &self.cpuset_mems {
            set("cpu", "mems", m.clone().into());
        }
        if let Some(p) = self.pids_limit {
            set("pids", "limit", p.into());
        }
        if let Some(w) = self.blkio_weight {
            set("blockIO", "weight", w.into());
        }
        serde_json::from_value(v).context("resources")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("lots").is_err());
    }
}
