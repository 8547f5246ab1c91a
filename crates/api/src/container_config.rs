//! Container create request types: Config, HostConfig, NetworkingConfig, in Docker Engine API
//! v1.56's JSON shapes (`POST /containers/create`; also the `Config` and `HostConfig` of
//! `GET /containers/{id}/json`).
//!
//! Decoding follows Go's `encoding/json` as dockerd uses it: unknown fields are ignored, `null`
//! is accepted for every field (Docker clients send `null` for empty lists and maps), and
//! `Cmd`, `Entrypoint`, `Shell`, `CapAdd`, `CapDrop` (Docker's `StrSlice`) take a string or an
//! array. Encoding follows Go's too: a field Docker tags `omitempty` is left out when empty, the
//! others are always written (`null` for an unset list or map). Maps are `BTreeMap`, so keys come
//! out sorted, as Go writes them.
//!
//! Go value types (`string`, `bool`, integers, value structs) are plain Rust fields whose
//! zero value means "unset", exactly as in Docker; Go pointers, slices and maps are `Option`s so
//! that `null`/absent and empty stay distinct (Docker tells `"Entrypoint": null` from
//! `"Entrypoint": []`, and `PidsLimit: null` from `0`).

use std::collections::BTreeMap;

use serde::de::{Deserializer, IgnoredAny};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// `{"80/tcp": {}}`: Docker's port and volume sets map keys to empty objects.
pub type PortSet = BTreeMap<String, EmptyObject>;
/// `HostConfig.PortBindings`: `"<port>/<proto>"` -> bindings (`null` allowed).
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// The empty object `{}` of Docker's sets (`ExposedPorts`, `Volumes`). Any value decodes to it,
/// as Go's `struct{}` ignores whatever fields it is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for EmptyObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| EmptyObject)
    }
}

/// `null` -> the type's zero value (Go leaves a field untouched on `null`).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's `StrSlice`: `null`, `"one string"` or `["a", "b"]`.
pub(crate) fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// Go's `omitempty`: what it leaves out when encoding.
trait OmitEmpty {
    fn omit(&self) -> bool;
}
impl OmitEmpty for String {
    fn omit(&self) -> bool {
        self.is_empty()
    }
}
impl OmitEmpty for bool {
    fn omit(&self) -> bool {
        !*self
    }
}
macro_rules! omit_zero {
    ($($t:ty),*) => {$(impl OmitEmpty for $t { fn omit(&self) -> bool { *self == 0 } })*};
}
omit_zero!(i64, u32, u64);
impl<T> OmitEmpty for Option<Vec<T>> {
    fn omit(&self) -> bool {
        self.as_ref().is_none_or(Vec::is_empty)
    }
}
impl<K, V> OmitEmpty for Option<BTreeMap<K, V>> {
    fn omit(&self) -> bool {
        self.as_ref().is_none_or(BTreeMap::is_empty)
    }
}

/// `POST /containers/create` body: the Config fields at the top level, plus `HostConfig` and
/// `NetworkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_config: Option<HostConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<NetworkingConfig>,
}

/// `201 Created` answer to `POST /containers/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    #[serde(default, deserialize_with = "nullable")]
    pub id: String,
    /// Always written, as `[]` when there are none.
    #[serde(default, deserialize_with = "nullable")]
    pub warnings: Vec<String>,
}

/// The portable part of a container's configuration (definition `ContainerConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub hostname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub domainname: String,
    /// `user`, `uid`, `user:group`, `uid:gid`, ...
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub exposed_ports: Option<PortSet>,
    #[serde(default, deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub stdin_once: bool,
    /// `KEY=value`; a bare `KEY` removes the variable.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub args_escaped: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<PortSet>,
    #[serde(default, deserialize_with = "nullable")]
    pub working_dir: String,
    /// `[""]` resets the image's entrypoint.
    #[serde(default, deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub network_disabled: bool,
    /// Deprecated since API v1.44 (EndpointSettings.MacAddress replaces it); still accepted.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub mac_address: String,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, deserialize_with = "str_slice", skip_serializing_if = "OmitEmpty::omit")]
    pub shell: Option<Vec<String>>,
}

/// Definition `HealthConfig`; durations in nanoseconds, 0 = inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]`, `["CMD", ...]`, `["CMD-SHELL", cmd]`.
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub test: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub interval: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub timeout: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub start_period: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub start_interval: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub retries: i64,
}

/// Definition `HostConfig`: the host-dependent configuration, with the `Resources` fields
/// inline (flattened, where Docker's Go struct embeds them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// `host-src:container-dest[:options]` or `volume-name:container-dest[:options]`.
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile", default, deserialize_with = "nullable")]
    pub container_id_file: String,
    #[serde(default, deserialize_with = "nullable")]
    pub log_config: LogConfig,
    /// `bridge`, `host`, `none`, `container:<name|id>`, `default` or a network name.
    #[serde(default, deserialize_with = "nullable")]
    pub network_mode: String,
    #[serde(default)]
    pub port_bindings: Option<PortMap>,
    #[serde(default, deserialize_with = "nullable")]
    pub restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "nullable")]
    pub auto_remove: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub volume_driver: String,
    #[serde(default)]
    pub volumes_from: Option<Vec<String>>,
    /// `[height, width]`.
    #[serde(default, deserialize_with = "nullable")]
    pub console_size: [u64; 2],
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub cap_add: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub cap_drop: Option<Vec<String>>,
    /// `private`, `host` or empty (daemon default).
    #[serde(default, deserialize_with = "nullable")]
    pub cgroupns_mode: String,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub dns_options: Option<Vec<String>>,
    #[serde(default)]
    pub dns_search: Option<Vec<String>>,
    /// `hostname:IP`.
    #[serde(default)]
    pub extra_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub group_add: Option<Vec<String>>,
    /// `none`, `private`, `shareable`, `container:<name|id>`, `host` or empty.
    #[serde(default, deserialize_with = "nullable")]
    pub ipc_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub cgroup: String,
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub oom_score_adj: i64,
    /// `host`, `container:<name|id>` or empty.
    #[serde(default, deserialize_with = "nullable")]
    pub pid_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub publish_all_ports: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub storage_opt: Option<BTreeMap<String, String>>,
    /// Container path -> tmpfs mount options (`"rw,noexec,size=65536k"`).
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode", default, deserialize_with = "nullable")]
    pub uts_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub userns_mode: String,
    /// Bytes; 0 = daemon default (64 MiB).
    #[serde(default, deserialize_with = "nullable")]
    pub shm_size: i64,
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub sysctls: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub runtime: String,
    #[serde(default, deserialize_with = "nullable")]
    pub isolation: String,
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub mounts: Option<Vec<Mount>>,
    /// Replaces the default masked paths when set (even to `[]`).
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    /// Replaces the default read-only paths when set (even to `[]`).
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    /// `None`: the daemon's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

/// Definition `Resources` (cgroups, devices, ulimits); also the body of container update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_shares: i64,
    /// Bytes.
    #[serde(default, deserialize_with = "nullable")]
    pub memory: i64,
    /// CPU quota in 1e-9 CPUs.
    #[serde(default, deserialize_with = "nullable")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cgroup_parent: String,
    #[serde(default, deserialize_with = "nullable")]
    pub blkio_weight: u16,
    #[serde(default)]
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    #[serde(default)]
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    #[serde(default)]
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps", default)]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps", default)]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_quota: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_realtime_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_realtime_runtime: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpuset_cpus: String,
    #[serde(default, deserialize_with = "nullable")]
    pub cpuset_mems: String,
    #[serde(default)]
    pub devices: Option<Vec<DeviceMapping>>,
    /// `"c 13:* rwm"`.
    #[serde(default)]
    pub device_cgroup_rules: Option<Vec<String>>,
    #[serde(default)]
    pub device_requests: Option<Vec<DeviceRequest>>,
    /// Deprecated (kernel 5.4 dropped it); accepted and ignored.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub kernel_memory: i64,
    #[serde(rename = "KernelMemoryTCP", default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub kernel_memory_tcp: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub memory_reservation: i64,
    /// Memory + swap; -1 = unlimited swap; 0 with Memory set = twice Memory.
    #[serde(default, deserialize_with = "nullable")]
    pub memory_swap: i64,
    /// 0..=100; the docker CLI sends -1 for "not set".
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    /// 0 or -1 = unlimited, `None` = not set.
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub ulimits: Option<Vec<Ulimit>>,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_count: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps", default, deserialize_with = "nullable")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth", default, deserialize_with = "nullable")]
    pub io_maximum_bandwidth: u64,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type", default, deserialize_with = "nullable")]
    pub typ: String,
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
}

/// Definition `RestartPolicy`: `""`, `no`, `always`, `unless-stopped`, `on-failure`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub maximum_retry_count: i64,
}

/// Definition `PortBinding`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(default, deserialize_with = "nullable")]
    pub host_ip: String,
    #[serde(default, deserialize_with = "nullable")]
    pub host_port: String,
}

/// Definition `DeviceMapping`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    #[serde(default, deserialize_with = "nullable")]
    pub path_on_host: String,
    #[serde(default, deserialize_with = "nullable")]
    pub path_in_container: String,
    /// A subset of `rwm`.
    #[serde(default, deserialize_with = "nullable")]
    pub cgroup_permissions: String,
}

/// Definition `DeviceRequest` (GPUs and the like, for device drivers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default, deserialize_with = "nullable")]
    pub count: i64,
    #[serde(rename = "DeviceIDs", default)]
    pub device_ids: Option<Vec<String>>,
    /// An OR list of AND lists.
    #[serde(default)]
    pub capabilities: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

/// Definition `ThrottleDevice` (bytes or IOs per second).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleDevice {
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub rate: u64,
}

/// An entry of `BlkioWeightDevice`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WeightDevice {
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub weight: u16,
}

/// An entry of `Ulimits`; -1 = unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub hard: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub soft: i64,
}

/// Definition `Mount` (`HostConfig.Mounts`); every field is `omitempty` in Docker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`, `image`, `npipe`, `cluster`.
    #[serde(rename = "Type", default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub typ: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub source: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub target: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub read_only: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_options: Option<ImageOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
    /// Swarm cluster volumes: kept as given, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_options: Option<serde_json::Value>,
}

/// `Mount.BindOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptions {
    /// `[r]private`, `[r]shared`, `[r]slave`.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub propagation: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub non_recursive: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub create_mountpoint: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub read_only_non_recursive: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub read_only_force_recursive: bool,
}

/// `Mount.VolumeOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub no_copy: bool,
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub subpath: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<VolumeDriverConfig>,
}

/// `Mount.VolumeOptions.DriverConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeDriverConfig {
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub name: String,
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub options: Option<BTreeMap<String, String>>,
}

/// `Mount.ImageOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageOptions {
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub subpath: String,
}

/// `Mount.TmpfsOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub size_bytes: i64,
    /// Permission bits as a plain integer (493 = 0o755).
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub mode: u32,
    /// `[["noexec"], ["uid", "1000"]]`: flags alone, key/value pairs as two strings.
    #[serde(default, skip_serializing_if = "OmitEmpty::omit")]
    pub options: Option<Vec<Vec<String>>>,
}

/// Definition `NetworkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    /// Network name -> endpoint settings (`null` allowed).
    #[serde(default)]
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointSettings>>>,
}

/// Definition `EndpointSettings`: configuration, then operational data (inspect).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig", default)]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub mac_address: String,
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub gw_priority: i64,
    #[serde(rename = "NetworkID", default, deserialize_with = "nullable")]
    pub network_id: String,
    #[serde(rename = "EndpointID", default, deserialize_with = "nullable")]
    pub endpoint_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub gateway: String,
    #[serde(rename = "IPAddress", default, deserialize_with = "nullable")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", default, deserialize_with = "nullable")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway", default, deserialize_with = "nullable")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address", default, deserialize_with = "nullable")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen", default, deserialize_with = "nullable")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "DNSNames", default)]
    pub dns_names: Option<Vec<String>>,
}

/// Definition `EndpointIPAMConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", default, deserialize_with = "nullable", skip_serializing_if = "OmitEmpty::omit")]
    pub ipv6_address: String,
    #[serde(rename = "LinkLocalIPs", default, skip_serializing_if = "OmitEmpty::omit")]
    pub link_local_ips: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The body docker CLI 28.2.2 (API 1.47) sent for `docker create --name x -e A=1 --memory 64m
    /// --cpus 1.5 --cap-add NET_ADMIN --ulimit nofile=1024:2048 --restart on-failure:3 --init
    /// --read-only --tmpfs /run -p 8080:80 --sysctl net.ipv4.ip_forward=1 --device
    /// /dev/null:/dev/xnull --security-opt no-new-privileges busybox sh`, captured on a unix
    /// socket.
    const CLI_CREATE_RICH: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["sh"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":["CAP_NET_ADMIN"],"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":true,"SecurityOpt":["no-new-privileges"],"Tmpfs":{"/run":""},"UTSMode":"","UsernsMode":"","ShmSize":0,"Sysctls":{"net.ipv4.ip_forward":"1"},"Isolation":"","CpuShares":0,"Memory":67108864,"NanoCpus":1500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/xnull","CgroupPermissions":"rwm"}],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[{"Name":"nofile","Hard":2048,"Soft":1024}],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null,"Init":true},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#;

    /// The same CLI for `docker create -t -i --privileged -v /tmp:/data:ro --mount
    /// type=tmpfs,dst=/scratch,tmpfs-size=1m --mount
    /// type=bind,src=/etc,dst=/hostetc,readonly,bind-propagation=rslave --entrypoint ""
    /// --health-cmd true --health-interval 5s -u 1000:1000 --group-add 10 --pids-limit 50
    /// --network host --ipc host --pid host --uts host --cgroupns private --label a=b --log-opt
    /// max-size=1m --dns 1.1.1.1 --add-host h:1.2.3.4 --stop-signal SIGINT --stop-timeout 5
    /// --shm-size 128m --device-cgroup-rule 'c 1:3 rwm' --blkio-weight 300 --oom-score-adj 100
    /// --cpu-shares 512 --memory-swappiness 10 -w /tmp --hostname hh --domainname dd --cap-drop
    /// ALL --annotation x=y --expose 9000/udp busybox echo hi`.
    const CLI_CREATE_TTY_PRIVILEGED: &str = r#"{"Hostname":"hh","Domainname":"dd","User":"1000:1000","AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{"9000/udp":{}},"Tty":true,"OpenStdin":true,"StdinOnce":true,"Env":null,"Cmd":["echo","hi"],"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":5000000000},"Image":"busybox","Volumes":{},"WorkingDir":"/tmp","Entrypoint":[""],"OnBuild":null,"Labels":{"a":"b"},"StopSignal":"SIGINT","StopTimeout":5,"HostConfig":{"Binds":["/tmp:/data:ro"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{"max-size":"1m"}},"NetworkMode":"host","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"Annotations":{"x":"y"},"CapAdd":null,"CapDrop":["ALL"],"CgroupnsMode":"private","Dns":["1.1.1.1"],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":["h:1.2.3.4"],"GroupAdd":["10"],"IpcMode":"host","Cgroup":"","Links":null,"OomScoreAdj":100,"PidMode":"host","Privileged":true,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"host","UsernsMode":"","ShmSize":134217728,"Isolation":"","CpuShares":512,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":300,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":["c 1:3 rwm"],"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":10,"OomKillDisable":false,"PidsLimit":50,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"Mounts":[{"Type":"tmpfs","Target":"/scratch","TmpfsOptions":{"SizeBytes":1048576}},{"Type":"bind","Source":"/etc","Target":"/hostetc","ReadOnly":true,"BindOptions":{"Propagation":"rslave"}}],"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#;

    fn parse(s: &str) -> ContainerCreateRequest {
        serde_json::from_str(s).expect("decode")
    }

    /// Decoding then encoding gives back exactly the CLI's JSON: same fields, same values, the
    /// same omitted ones.
    fn assert_round_trip(s: &str) {
        let req = parse(s);
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(s).unwrap());
        // Field order too: Go writes struct fields in declaration order.
        assert_eq!(serde_json::to_string(&req).unwrap(), s);
        assert_eq!(parse(&serde_json::to_string(&req).unwrap()), req);
    }

    #[test]
    fn cli_rich_create_decodes() {
        let req = parse(CLI_CREATE_RICH);
        let c = &req.config;
        assert_eq!(c.env.as_deref(), Some(&["A=1".to_string()][..]));
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.image, "busybox");
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(c.attach_stdout && c.attach_stderr && !c.attach_stdin);
        let h = req.host_config.as_ref().unwrap();
        let r = &h.resources;
        assert_eq!(r.memory, 64 << 20);
        assert_eq!(r.nano_cpus, 1_500_000_000);
        assert_eq!(r.memory_swappiness, Some(-1));
        assert_eq!(r.pids_limit, Some(0));
        assert_eq!(r.oom_kill_disable, Some(false));
        assert_eq!(
            r.ulimits.as_deref(),
            Some(&[Ulimit { name: "nofile".into(), hard: 2048, soft: 1024 }][..])
        );
        assert_eq!(
            r.devices.as_deref().unwrap()[0],
            DeviceMapping {
                path_on_host: "/dev/null".into(),
                path_in_container: "/dev/xnull".into(),
                cgroup_permissions: "rwm".into()
            }
        );
        assert_eq!(h.cap_add.as_deref(), Some(&["CAP_NET_ADMIN".to_string()][..]));
        assert_eq!(h.cap_drop, None);
        assert_eq!(h.restart_policy, RestartPolicy { name: "on-failure".into(), maximum_retry_count: 3 });
        assert_eq!(h.init, Some(true));
        assert!(h.readonly_rootfs);
        assert_eq!(h.tmpfs.as_ref().unwrap()["/run"], "");
        assert_eq!(h.sysctls.as_ref().unwrap()["net.ipv4.ip_forward"], "1");
        assert_eq!(h.security_opt.as_deref(), Some(&["no-new-privileges".to_string()][..]));
        assert_eq!(h.network_mode, "default");
        assert_eq!(
            h.port_bindings.as_ref().unwrap()["80/tcp"].as_deref().unwrap()[0].host_port,
            "8080"
        );
        assert_eq!(h.dns.as_deref(), Some(&[][..]));
        assert_eq!(h.binds, None);
        let eps = req.networking_config.as_ref().unwrap().endpoints_config.as_ref().unwrap();
        assert_eq!(eps["default"].as_ref().unwrap().ipam_config, None);
    }

    #[test]
    fn cli_rich_create_round_trips() {
        assert_round_trip(CLI_CREATE_RICH);
    }

    #[test]
    fn cli_tty_privileged_create_round_trips() {
        let req = parse(CLI_CREATE_TTY_PRIVILEGED);
        assert_eq!(req.config.entrypoint.as_deref(), Some(&[String::new()][..]));
        assert_eq!(req.config.stop_timeout, Some(5));
        assert_eq!(req.config.healthcheck.as_ref().unwrap().interval, 5_000_000_000);
        let h = req.host_config.as_ref().unwrap();
        assert_eq!(h.uts_mode, "host");
        assert_eq!(h.cgroupns_mode, "private");
        assert_eq!(h.resources.pids_limit, Some(50));
        assert_eq!(h.resources.blkio_weight, 300);
        let m = h.mounts.as_deref().unwrap();
        assert_eq!(m[0].tmpfs_options.as_ref().unwrap().size_bytes, 1 << 20);
        assert_eq!(m[1].bind_options.as_ref().unwrap().propagation, "rslave");
        assert!(m[1].read_only);
        assert_round_trip(CLI_CREATE_TTY_PRIVILEGED);
    }

    #[test]
    fn nulls_and_absent_fields_decode_to_zero_values() {
        let nulls = json!({
            "Hostname": null, "Tty": null, "Env": null, "Cmd": null, "ExposedPorts": null,
            "Labels": null, "Healthcheck": null, "StopTimeout": null,
            "HostConfig": {
                "Binds": null, "LogConfig": null, "RestartPolicy": null, "ConsoleSize": null,
                "CapAdd": null, "Memory": null, "PidsLimit": null, "Ulimits": null,
                "Mounts": null, "Tmpfs": null, "Sysctls": null, "Init": null, "ShmSize": null,
                "PortBindings": {"80/tcp": null}, "BlkioWeight": null
            },
            "NetworkingConfig": {"EndpointsConfig": {"net": null}}
        });
        let req: ContainerCreateRequest = serde_json::from_value(nulls).unwrap();
        assert_eq!(req.config, ContainerConfig::default());
        let h = req.host_config.unwrap();
        assert_eq!(h.port_bindings.as_ref().unwrap()["80/tcp"], None);
        assert_eq!(HostConfig { port_bindings: None, ..h }, HostConfig::default());
        let empty: ContainerCreateRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, ContainerCreateRequest::default());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let req: ContainerCreateRequest = serde_json::from_value(json!({
            "Image": "x", "SomethingNew": [1, 2],
            "HostConfig": {"FutureKnob": {"a": 1}, "Memory": 5},
            "ExposedPorts": {"80/tcp": {"weird": true}}
        }))
        .unwrap();
        assert_eq!(req.config.image, "x");
        assert_eq!(req.host_config.unwrap().resources.memory, 5);
    }

    #[test]
    fn str_slices_take_a_string_or_an_array() {
        let c: ContainerConfig = serde_json::from_value(json!({
            "Cmd": "echo hi", "Entrypoint": [], "Shell": ["/bin/sh", "-c"]
        }))
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["echo hi".to_string()]));
        assert_eq!(c.entrypoint, Some(vec![]));
        let h: HostConfig = serde_json::from_value(json!({"CapAdd": "NET_ADMIN"})).unwrap();
        assert_eq!(h.cap_add, Some(vec!["NET_ADMIN".to_string()]));
    }

    #[test]
    fn encoding_matches_docker_inspect_shape() {
        // Zero values: written unless Docker's Go type says omitempty.
        let v = serde_json::to_value(ContainerConfig::default()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["Hostname", "Env", "Cmd", "Entrypoint", "Volumes", "OnBuild", "Labels", "Image"] {
            assert!(keys.contains(&k), "{k} missing");
        }
        for k in ["ExposedPorts", "Healthcheck", "StopSignal", "StopTimeout", "Shell", "ArgsEscaped", "MacAddress"] {
            assert!(!keys.contains(&k), "{k} should be omitted");
        }
        assert_eq!(v["Env"], Value::Null);
        let h = serde_json::to_value(HostConfig::default()).unwrap();
        assert_eq!(h["ConsoleSize"], json!([0, 0]));
        assert_eq!(h["LogConfig"], json!({"Type": "", "Config": null}));
        assert_eq!(h["PidsLimit"], Value::Null);
        assert_eq!(h["CpuShares"], json!(0));
        assert_eq!(h["IOMaximumIOps"], json!(0));
        for k in ["Init", "Mounts", "Tmpfs", "Sysctls", "Runtime", "Annotations", "KernelMemory"] {
            assert!(h.get(k).is_none(), "{k} should be omitted");
        }
        // A set writes `{}` per key.
        let c = ContainerConfig {
            exposed_ports: Some([("80/tcp".to_string(), EmptyObject)].into()),
            ..Default::default()
        };
        assert_eq!(serde_json::to_value(c).unwrap()["ExposedPorts"], json!({"80/tcp": {}}));
        // The create response always carries Warnings.
        let r = ContainerCreateResponse { id: "abc".into(), warnings: vec![] };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"Id":"abc","Warnings":[]}"#);
        let r: ContainerCreateResponse = serde_json::from_str(r#"{"Id":"a","Warnings":null}"#).unwrap();
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn mount_options_use_docker_names() {
        let m: Mount = serde_json::from_value(json!({
            "Type": "volume", "Source": "v", "Target": "/data",
            "VolumeOptions": {"NoCopy": true, "Subpath": "a/b", "DriverConfig": {"Name": "local"}},
            "TmpfsOptions": {"Mode": 493, "Options": [["noexec"], ["uid", "1000"]]},
            "BindOptions": {"NonRecursive": true, "ReadOnlyForceRecursive": true}
        }))
        .unwrap();
        assert_eq!(m.volume_options.as_ref().unwrap().driver_config.as_ref().unwrap().name, "local");
        assert_eq!(m.tmpfs_options.as_ref().unwrap().mode, 0o755);
        assert!(m.bind_options.as_ref().unwrap().read_only_force_recursive);
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["VolumeOptions"], json!({"NoCopy": true, "Subpath": "a/b", "DriverConfig": {"Name": "local"}}));
    }

    #[test]
    fn endpoint_settings_use_docker_names() {
        let n: NetworkingConfig = serde_json::from_value(json!({"EndpointsConfig": {"isolated_nw": {
            "IPAMConfig": {"IPv4Address": "172.20.30.33", "LinkLocalIPs": ["169.254.34.68"]},
            "Aliases": ["server_x"], "MacAddress": "02:42:ac:12:05:02", "GwPriority": 10,
            "DNSNames": ["a"], "IPPrefixLen": 16, "GlobalIPv6PrefixLen": 64
        }}}))
        .unwrap();
        let e = n.endpoints_config.as_ref().unwrap()["isolated_nw"].clone().unwrap();
        assert_eq!(e.ipam_config.as_ref().unwrap().ipv4_address, "172.20.30.33");
        assert_eq!(e.gw_priority, 10);
        assert_eq!(e.ip_prefix_len, 16);
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["IPAMConfig"], json!({"IPv4Address": "172.20.30.33", "LinkLocalIPs": ["169.254.34.68"]}));
        assert_eq!(back["DNSNames"], json!(["a"]));
    }
}
