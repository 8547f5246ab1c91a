//! The engine's settings, filled by berthd from its flags and daemon.json.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub monitor_bin: PathBuf,
    /// Host path of the init bind-mounted at /sbin/docker-init for `--init`.
    pub init_bin: Option<PathBuf>,
    pub default_pids_limit: Option<i64>,
    pub default_shm_size: u64,
    /// Parent of every container's cgroup ("berth" -> /berth/<id>).
    pub cgroup_parent: String,
    pub systemd_cgroup: bool,
    pub debug: bool,
    /// daemon.json "log-driver": json-file, local or none.
    pub log_driver: String,
    /// daemon.json "log-opts": options of containers using the daemon's driver.
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// The default bridge network; None (`--bridge none`) leaves containers on the default
    /// network with loopback only.
    pub bridge: Option<berth_network::BridgeOptions>,
    /// daemon.json "insecure-registries": reached over plain HTTP (loopback always is).
    pub insecure_registries: Vec<String>,
    /// daemon.json "registry-mirrors": tried in order for Docker Hub pulls.
    pub registry_mirrors: Vec<String>,
    /// The host's resolver configuration: the embedded DNS server's upstreams and the
    /// search/options lines of its containers' resolv.conf.
    pub resolv_conf: PathBuf,
}

impl EngineConfig {
    pub fn new(data_root: PathBuf, exec_root: PathBuf, monitor_bin: PathBuf) -> EngineConfig {
        EngineConfig {
            data_root,
            exec_root,
            monitor_bin,
            init_bin: None,
            default_pids_limit: None,
            default_shm_size: 64 << 20,
            cgroup_parent: "berth".into(),
            systemd_cgroup: false,
            debug: false,
            log_driver: "json-file".into(),
            log_opts: Default::default(),
            bridge: Some(Default::default()),
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }

    /// Where containers' network namespaces are bound.
    pub fn netns_dir(&self) -> PathBuf {
        self.exec_root.join("netns")
    }

    /// berth-runtime's state root.
    pub fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }
}
