//! berthd's settings: flags named as dockerd's, over /etc/berth/daemon.json (Docker's keys
//! where they apply). A flag given on the command line wins over the file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Deserialize;

#[derive(Parser, Debug, Default)]
#[command(name = "berthd", version, about = "The Berth daemon: the Docker Engine API on a unix socket")]
pub struct Flags {
    /// Daemon socket to listen on (unix:///path). tcp:// needs TLS with client verification.
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    #[arg(long)]
    pub exec_root: Option<PathBuf>,
    #[arg(long, default_value = "/etc/berth/daemon.json")]
    pub config_file: PathBuf,
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// debug, info, warn, error, fatal.
    #[arg(short = 'l', long)]
    pub log_level: Option<String>,
    /// Group owning the unix socket (default "berth" when it exists).
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// Host path of the init run by `--init` containers.
    #[arg(long)]
    pub init_path: Option<PathBuf>,
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// e.g. native.cgroupdriver=systemd
    #[arg(long = "exec-opt")]
    pub exec_opts: Vec<String>,
    #[arg(long)]
    pub default_pids_limit: Option<i64>,
    #[arg(long)]
    pub log_driver: Option<String>,
    /// The default bridge's interface (created if missing); "none" disables it.
    #[arg(short = 'b', long)]
    pub bridge: Option<String>,
    /// The default bridge's address and prefix (e.g. 10.20.0.1/24).
    #[arg(long)]
    pub bip: Option<String>,
    /// Containers' MTU on the default bridge.
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Registries reached over plain HTTP (HOST[:PORT] or a CIDR); loopback always is.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Mirrors tried in order for Docker Hub pulls (http:// or https:// URLs).
    #[arg(long = "registry-mirror")]
    pub registry_mirrors: Vec<String>,
    /// The host's resolver configuration (Berth-specific, default /etc/resolv.conf): the
    /// embedded DNS server of user networks forwards to its non-loopback name servers.
    #[arg(long)]
    pub resolv_conf: Option<PathBuf>,
    #[arg(long)]
    pub tlsverify: bool,
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct File {
    pub hosts: Option<Vec<String>>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    pub group: Option<String>,
    pub init_path: Option<PathBuf>,
    pub cgroup_parent: Option<String>,
    pub exec_opts: Option<Vec<String>>,
    pub default_pids_limit: Option<i64>,
    pub default_shm_size: Option<String>,
    pub log_driver: Option<String>,
    /// Options of the default log driver (strings, as in Docker's daemon.json).
    pub log_opts: Option<std::collections::BTreeMap<String, String>>,
    /// Berth always keeps containers running across daemon restarts; `false` is refused.
    pub live_restore: Option<bool>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub mtu: Option<u32>,
    pub insecure_registries: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Listen {
    Unix(PathBuf),
    /// TCP with TLS; clients must present a certificate signed by `ca`.
    Tls { addr: String, ca: PathBuf, cert: PathBuf, key: PathBuf },
}

#[derive(Debug)]
pub struct Settings {
    pub listen: Vec<Listen>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub debug: bool,
    pub group: Option<String>,
    pub init_path: Option<PathBuf>,
    pub cgroup_parent: String,
    pub systemd_cgroup: bool,
    pub default_pids_limit: Option<i64>,
    pub default_shm_size: u64,
    pub log_driver: String,
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// None with `--bridge none`: containers get no default network.
    pub bridge: Option<berth_engine::BridgeOptions>,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub resolv_conf: PathBuf,
}

fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = match t.trim_end_matches('b').chars().last() {
        Some('k') => (&t[..t.trim_end_matches('b').len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (t.trim_end_matches('b'), 1),
    };
    Ok(num.parse::<u64>().with_context(|| format!("invalid size: {s}"))? * mul)
}

fn read_file(path: &Path, explicit: bool) -> Result<File> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("unable to configure the daemon from {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(File::default()),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

impl Settings {
    pub fn load(f: Flags) -> Result<Settings> {
        let explicit = f.config_file != Path::new("/etc/berth/daemon.json");
        let file = read_file(&f.config_file, explicit)?;
        let hosts = if f.hosts.is_empty() { file.hosts.clone().unwrap_or_default() } else { f.hosts.clone() };
        let hosts = if hosts.is_empty() { vec!["unix:///run/berth/berth.sock".to_owned()] } else { hosts };
        let tls = f.tlsverify || file.tlsverify.unwrap_or(false);
        let certs = (f.tlscacert.or(file.tlscacert), f.tlscert.or(file.tlscert), f.tlskey.or(file.tlskey));
        let mut listen = Vec::new();
        for host in hosts {
            if let Some(p) = host.strip_prefix("unix://") {
                listen.push(Listen::Unix(PathBuf::from(p)));
            } else if let Some(addr) = host.strip_prefix("tcp://") {
                let (Some(ca), Some(cert), Some(key)) = (&certs.0, &certs.1, &certs.2) else {
                    bail!("refusing to listen on {host}: a TCP socket needs --tlsverify with --tlscacert, --tlscert and --tlskey (client certificates are required)");
                };
                if !tls {
                    bail!("refusing to listen on {host} without --tlsverify: clients must present certificates");
                }
                listen.push(Listen::Tls { addr: addr.to_owned(), ca: ca.clone(), cert: cert.clone(), key: key.clone() });
            } else {
                bail!("invalid host {host}: expected unix:///path or tcp://host:port");
            }
        }
        if file.live_restore == Some(false) {
            bail!("live-restore cannot be disabled: Berth's containers always outlive the daemon");
        }
        let mut exec_opts = file.exec_opts.clone().unwrap_or_default();
        exec_opts.extend(f.exec_opts.iter().cloned());
        let mut systemd_cgroup = false;
        for o in &exec_opts {
            match o.split_once('=') {
                Some(("native.cgroupdriver", "systemd")) => systemd_cgroup = true,
                Some(("native.cgroupdriver", "cgroupfs")) => systemd_cgroup = false,
                _ => bail!("unsupported exec-opt {o}"),
            }
        }
        let level = f.log_level.clone().or(file.log_level.clone());
        if let Some(l) = &level {
            if !matches!(l.as_str(), "debug" | "info" | "warn" | "error" | "fatal") {
                bail!("unable to parse logging level: {l}");
            }
        }
        let log_driver = f.log_driver.clone().or(file.log_driver.clone()).unwrap_or_else(|| "json-file".into());
        let log_opts = file.log_opts.clone().unwrap_or_default();
        berth_engine::logconfig::check_log_opts(&log_driver, &log_opts).map_err(|e| anyhow::anyhow!("failed to set log opts: {e}"))?;
        let bridge_name = f.bridge.clone().or(file.bridge.clone()).unwrap_or_else(|| "berth0".into());
        let bridge = (bridge_name != "none").then(|| berth_engine::BridgeOptions {
            name: bridge_name,
            bip: f.bip.clone().or(file.bip.clone()),
            mtu: f.mtu.or(file.mtu).unwrap_or(1500),
        });
        let mut insecure_registries = file.insecure_registries.clone().unwrap_or_default();
        insecure_registries.extend(f.insecure_registries.iter().cloned());
        let mut registry_mirrors = file.registry_mirrors.clone().unwrap_or_default();
        registry_mirrors.extend(f.registry_mirrors.iter().cloned());
        for m in &registry_mirrors {
            if !(m.starts_with("http://") || m.starts_with("https://")) {
                bail!("invalid mirror: unsupported scheme \"{m}\": must use either 'https://' or 'http://'");
            }
        }
        Ok(Settings {
            listen,
            bridge,
            data_root: f.data_root.or(file.data_root).unwrap_or_else(|| "/var/lib/berth".into()),
            exec_root: f.exec_root.or(file.exec_root).unwrap_or_else(|| "/run/berth".into()),
            pidfile: f.pidfile.or(file.pidfile).unwrap_or_else(|| "/run/berth/berthd.pid".into()),
            debug: f.debug || file.debug.unwrap_or(false) || level.as_deref() == Some("debug"),
            group: f.group.or(file.group),
            init_path: f.init_path.or(file.init_path),
            cgroup_parent: f.cgroup_parent.or(file.cgroup_parent).unwrap_or_else(|| "berth".into()),
            systemd_cgroup,
            default_pids_limit: f.default_pids_limit.or(file.default_pids_limit),
            default_shm_size: file.default_shm_size.as_deref().map(parse_size).transpose()?.unwrap_or(64 << 20),
            log_driver,
            log_opts,
            insecure_registries,
            registry_mirrors,
            resolv_conf: f.resolv_conf.unwrap_or_else(|| "/etc/resolv.conf".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_settings() {
        let load = |f: Flags| Settings::load(Flags { config_file: "/etc/berth/daemon.json".into(), ..f }).unwrap();
        let s = load(Flags::default());
        let b = s.bridge.expect("a default bridge");
        assert_eq!((b.name.as_str(), b.bip, b.mtu), ("berth0", None, 1500));
        assert!(load(Flags { bridge: Some("none".into()), ..Default::default() }).bridge.is_none());
        let s = load(Flags { bridge: Some("bt1".into()), bip: Some("10.9.0.1/24".into()), mtu: Some(1400), ..Default::default() });
        let b = s.bridge.unwrap();
        assert_eq!((b.name.as_str(), b.bip.as_deref(), b.mtu), ("bt1", Some("10.9.0.1/24"), 1400));
        // daemon.json's keys, under the flags.
        let f = std::env::temp_dir().join(format!("berthd-bridge-{}.json", std::process::id()));
        std::fs::write(&f, r#"{"bridge": "bt2", "bip": "10.8.0.1/24", "mtu": 1450}"#).unwrap();
        let s = Settings::load(Flags { config_file: f.clone(), mtu: Some(1300), ..Default::default() });
        let _ = std::fs::remove_file(&f);
        let b = s.unwrap().bridge.unwrap();
        assert_eq!((b.name.as_str(), b.bip.as_deref(), b.mtu), ("bt2", Some("10.8.0.1/24"), 1300));
    }

    #[test]
    fn tcp_needs_tls() {
        let f = Flags { hosts: vec!["tcp://0.0.0.0:2375".into()], config_file: "/nonexistent/daemon.json".into(), ..Default::default() };
        let e = Settings::load(f).unwrap_err().to_string();
        assert!(e.contains("read /nonexistent") || e.contains("tlsverify"), "{e}");
        let f = Flags { hosts: vec!["tcp://0.0.0.0:2375".into()], ..Default::default() };
        assert!(Settings::load(Flags { config_file: "/etc/berth/daemon.json".into(), ..f }).unwrap_err().to_string().contains("tlsverify"));
    }

    #[test]
    fn file_keys() {
        let d = tempfile_dir();
        let p = d.join("daemon.json");
        std::fs::write(&p, r#"{"data-root": "/x", "default-pids-limit": 100, "default-shm-size": "128M"}"#).unwrap();
        let s = Settings::load(Flags { config_file: p.clone(), ..Default::default() }).unwrap();
        assert_eq!(s.data_root, PathBuf::from("/x"));
        assert_eq!(s.default_pids_limit, Some(100));
        assert_eq!(s.default_shm_size, 128 << 20);
        std::fs::write(&p, r#"{"log-driver": "local", "log-opts": {"max-size": "1m", "max-file": "2"}}"#).unwrap();
        let s = Settings::load(Flags { config_file: p.clone(), ..Default::default() }).unwrap();
        assert_eq!((s.log_driver.as_str(), s.log_opts.len()), ("local", 2));
        std::fs::write(&p, r#"{"log-opts": {"max-size": "1q"}}"#).unwrap();
        let e = Settings::load(Flags { config_file: p.clone(), ..Default::default() }).unwrap_err();
        assert_eq!(e.to_string(), "failed to set log opts: invalid size: '1q'");
        std::fs::write(&p, r#"{"log-driver": "syslog"}"#).unwrap();
        assert!(Settings::load(Flags { config_file: p.clone(), ..Default::default() }).is_err());
        std::fs::write(&p, r#"{"no-such-key": 1}"#).unwrap();
        assert!(Settings::load(Flags { config_file: p, ..Default::default() }).is_err());
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("berthd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
