//! `/version`, `/info`: real figures from the host and the engine.

use berth_api::system::{Info, Platform, Version, VersionComponent};

use crate::state::Status;
use crate::Engine;

fn uname() -> nix::sys::utsname::UtsName {
    nix::sys::utsname::uname().expect("uname cannot fail")
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> i64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        a => a.into(),
    }
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Engine {
    pub fn version(&self) -> Version {
        let u = uname();
        let kernel = u.release().to_string_lossy().into_owned();
        Version {
            platform: Platform { name: "Berth Engine".into() },
            components: vec![VersionComponent {
                name: "Engine".into(),
                version: VERSION.into(),
                details: serde_json::json!({
                    "ApiVersion": berth_api::API_VERSION, "MinAPIVersion": berth_api::MIN_API_VERSION,
                    "Arch": arch(), "Os": "linux", "KernelVersion": kernel, "GitCommit": "", "GoVersion": "", "BuildTime": "",
                }),
            }],
            version: VERSION.into(),
            api_version: berth_api::API_VERSION.into(),
            min_api_version: berth_api::MIN_API_VERSION.into(),
            git_commit: String::new(),
            go_version: String::new(),
            os: "linux".into(),
            arch: arch(),
            kernel_version: kernel,
            build_time: String::new(),
            experimental: false,
        }
    }

    pub fn info(&self) -> Info {
        let recs = self.records();
        let count = |f: &dyn Fn(Status) -> bool| recs.iter().filter(|r| f(r.state.status)).count() as i64;
        let u = uname();
        let (os, os_version) = os_release();
        let cg = berth_runtime::cgroups::detect().ok();
        let (cg_version, memory) = match &cg {
            Some(berth_runtime::cgroups::Layout::V2 { .. }) => ("2", true),
            Some(_) => ("1", true),
            None => ("1", false),
        };
        let nfd = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as i64).unwrap_or(0);
        let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count() as i64).unwrap_or(0);
        let ncpu = std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1);
        Info {
            id: self.daemon_id(),
            containers: recs.len() as i64,
            containers_running: count(&|s| s == Status::Running || s == Status::Restarting),
            containers_paused: count(&|s| s == Status::Paused),
            containers_stopped: count(&|s| !s.is_live() && s != Status::Restarting),
            images: self.images.meta().images().map(|i| i.len() as i64).unwrap_or(0),
            driver: self.images.snapshotter().name().into(),
            driver_status: self.images.snapshotter().status().into_iter().map(|(a, b)| [a, b]).collect(),
            memory_limit: memory,
            swap_limit: memory,
            cpu_cfs_period: true,
            cpu_cfs_quota: true,
            cpu_shares: true,
            cpu_set: true,
            pids_limit: true,
            oom_kill_disable: cg_version == "1",
            ipv4_forwarding: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|s| s.trim() == "1"),
            debug: self.cfg.debug,
            nfd,
            n_goroutines: threads,
            system_time: berth_image::store::time::now_rfc3339(),
            logging_driver: self.cfg.log_driver.clone(),
            cgroup_driver: if self.cfg.systemd_cgroup { "systemd" } else { "cgroupfs" }.into(),
            cgroup_version: cg_version.into(),
            n_events_listener: self.events.listeners() as i64,
            kernel_version: u.release().to_string_lossy().into_owned(),
            operating_system: os,
            os_version,
            os_type: "linux".into(),
            architecture: u.machine().to_string_lossy().into_owned(),
            ncpu,
            mem_total: mem_total(),
            index_server_address: "https://index.docker.io/v1/".into(),
            docker_root_dir: self.cfg.data_root.display().to_string(),
            name: u.nodename().to_string_lossy().into_owned(),
            labels: Vec::new(),
            experimental_build: false,
            server_version: VERSION.into(),
            runtimes: serde_json::json!({ "berth-runtime": { "path": "berth-runtime (in-process)" } }),
            default_runtime: "berth-runtime".into(),
            live_restore_enabled: true,
            isolation: String::new(),
            init_binary: self.cfg.init_bin.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            security_options: vec!["name=seccomp,profile=builtin".into(), "name=cgroupns".into()],
            warnings: Vec::new(),
            plugins: serde_json::json!({ "Volume": [], "Network": [], "Authorization": null, "Log": ["json-file", "none"] }),
            registry_config: serde_json::json!({ "IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": [] }),
            swarm: serde_json::json!({ "LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null }),
            containerd_commit: serde_json::json!({ "ID": "" }),
            runc_commit: serde_json::json!({ "ID": "" }),
            init_commit: serde_json::json!({ "ID": "" }),
        }
    }

    /// A stable identity for this daemon, kept in the data root.
    fn daemon_id(&self) -> String {
        let p = self.cfg.data_root.join("engine-id");
        if let Ok(s) = std::fs::read_to_string(&p) {
            return s.trim().to_owned();
        }
        let id = crate::names::new_id();
        let _ = std::fs::write(&p, &id);
        id
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

pub use berth_image::store::time::now_rfc3339;
