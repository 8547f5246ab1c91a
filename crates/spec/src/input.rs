//! What [`crate::build`] needs besides the request: the image's defaults, the daemon's settings,
//! and what the engine resolved (rootfs, /etc files, namespaces to join).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::container_config::{ContainerConfig, HealthConfig, HostConfig, PortSet, Ulimit};
use oci_spec::runtime::LinuxNamespaceType;

use crate::host::HostInfo;

/// Everything one container's spec is built from.
#[derive(Clone)]
pub struct SpecInput<'a> {
    /// The full 64-hex container id (cgroup path; its first 12 characters are the default
    /// hostname).
    pub id: &'a str,
    /// The request's `Config` as the client sent it: [`crate::build`] merges it with `image`
    /// the way Docker does at create. (Passing a config already merged by
    /// [`crate::merge_image_config`] together with `ImageDefaults::default()` gives the same
    /// spec; merging twice does not, for `Entrypoint: [""]`.)
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    pub image: &'a ImageDefaults,
    /// Absolute host path of the mounted rootfs (`root.path`); its /etc/passwd and /etc/group
    /// name the user.
    pub rootfs: &'a Path,
    /// Host files bind-mounted at /etc/hostname, /etc/hosts, /etc/resolv.conf (`rbind`,
    /// `rprivate`; read-only with `ReadonlyRootfs`), unless the request mounts something there.
    pub etc_files: Option<EtcFiles<'a>>,
    pub net_ns: NetNs,
    /// Namespaces to join by path, for `PidMode`/`IpcMode` `container:<id>` (and any other
    /// kind the engine wants joined): `(kind, /proc/<pid>/ns/<kind>)`. The network namespace is
    /// given by `net_ns` instead.
    pub join_ns: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Host path bind-mounted at /dev/shm instead of a private tmpfs: required with
    /// `IpcMode: container:<id>` (that container's /dev/shm, e.g. `/proc/<pid>/root/dev/shm`),
    /// optional with `shareable` (a host tmpfs the engine mounted); `host` binds the host's
    /// /dev/shm on its own.
    pub ipc_shm: Option<&'a Path>,
    /// The request's volumes as the engine resolved them, and the mounts it adds.
    pub volumes: Volumes<'a>,
    pub daemon: &'a DaemonDefaults,
    /// Facts about the host: capability bounding set, cgroup knobs, CPUs, kernel, LSMs.
    /// Detect once with [`HostInfo::detect`]; tests make their own.
    pub host_info: &'a HostInfo,
}

/// Volumes, resolved by the engine's volume store.
#[derive(Debug, Clone, Copy)]
pub struct Volumes<'a> {
    /// Each volume destination of the request (cleaned path) -> the volume's host directory.
    pub sources: &'a BTreeMap<String, PathBuf>,
    /// Mounts the request does not name (the image's VOLUMEs, `--volumes-from`): added unless
    /// the request mounts something at the same destination.
    pub extra: &'a [crate::volumes::UserMount],
}

impl Default for Volumes<'_> {
    fn default() -> Self {
        static EMPTY: BTreeMap<String, PathBuf> = BTreeMap::new();
        Volumes { sources: &EMPTY, extra: &[] }
    }
}

/// The container's /etc files on the host (each optional: missing ones are not mounted).
#[derive(Debug, Clone, Copy, Default)]
pub struct EtcFiles<'a> {
    pub hostname: Option<&'a Path>,
    pub hosts: Option<&'a Path>,
    pub resolv_conf: Option<&'a Path>,
}

/// The container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetNs {
    /// The host's (NetworkMode `host`): no network namespace in the spec.
    Host,
    /// A fresh one, loopback only (modes `none` and, until networking lands, `bridge`/default).
    New,
    /// Join this one (NetworkMode `container:<id>`, or one the network layer prepared).
    Path(PathBuf),
}

/// The image config's fields a container inherits (`Config` of the image's JSON): what Docker's
/// `merge` copies into the container's Config at create. Plain owned values, Docker's types;
/// `None` and empty differ where Docker tells them apart (`Entrypoint: null` is inherited,
/// `[]` is not).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageDefaults {
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    /// `user[:group]`, names or ids.
    pub user: String,
    /// Not part of the OCI spec (the engine stops with it); merged into the Config.
    pub stop_signal: Option<String>,
    pub exposed_ports: Option<PortSet>,
    pub volumes: Option<PortSet>,
    pub labels: Option<BTreeMap<String, String>>,
    pub healthcheck: Option<HealthConfig>,
    /// Windows-only; carried along with Cmd as Docker does.
    pub args_escaped: bool,
}

impl ImageDefaults {
    /// An image's config is a Docker container Config: take the inherited fields from one.
    pub fn from_config(c: &ContainerConfig) -> ImageDefaults {
        ImageDefaults {
            env: c.env.clone().unwrap_or_default(),
            cmd: c.cmd.clone(),
            entrypoint: c.entrypoint.clone(),
            working_dir: c.working_dir.clone(),
            user: c.user.clone(),
            stop_signal: Some(c.stop_signal.clone()).filter(|s| !s.is_empty()),
            exposed_ports: c.exposed_ports.clone(),
            volumes: c.volumes.clone(),
            labels: c.labels.clone(),
            healthcheck: c.healthcheck.clone(),
            args_escaped: c.args_escaped,
        }
    }
}

/// Daemon-wide settings (dockerd's flags / daemon.json equivalents).
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonDefaults {
    /// PIDs limit for containers whose `PidsLimit` is `None`.
    pub default_pids_limit: Option<i64>,
    /// /dev/shm size when `ShmSize` is 0 (`--default-shm-size`, 64 MiB).
    pub default_shm_size: u64,
    /// Parent cgroup (`--cgroup-parent`): `"berth"` gives cgroupsPath `/berth/<id>`; a
    /// container's `CgroupParent` wins.
    pub cgroup_parent: String,
    /// `--default-ulimit`s: added for every name the container does not set.
    pub default_ulimits: Vec<Ulimit>,
    /// `--seccomp-profile`: a profile in Docker's JSON format replacing Docker's default one.
    pub seccomp_profile: Option<String>,
    /// `--no-new-privileges`: the default for `security_opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--init`: run the init for containers whose `Init` is `None`.
    pub init: bool,
    /// Host path of the init binary (docker-init / tini), bind-mounted read-only at
    /// /sbin/docker-init when a container runs with an init.
    pub init_path: Option<PathBuf>,
    /// `--default-ipc-mode`: `private` (Docker's default) or `shareable`.
    pub default_ipc_mode: String,
    /// `--default-cgroupns-mode`: `private`/`host`; `None`: private on cgroup v2, host on v1.
    pub default_cgroupns_mode: Option<String>,
    /// The daemon's data root: a bind whose source contains it (or lies in it) gets `rslave`
    /// propagation unless the request says otherwise, as Docker does for its own root.
    pub data_root: Option<PathBuf>,
}

impl Default for DaemonDefaults {
    fn default() -> Self {
        DaemonDefaults {
            default_pids_limit: None,
            default_shm_size: 64 << 20,
            cgroup_parent: "berth".into(),
            default_ulimits: Vec::new(),
            seccomp_profile: None,
            no_new_privileges: false,
            init: false,
            init_path: None,
            default_ipc_mode: "private".into(),
            default_cgroupns_mode: None,
            data_root: None,
        }
    }
}
