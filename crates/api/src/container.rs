//! Container responses: inspect, list summaries, wait, and the state they share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container_config::{ContainerConfig, HostConfig};

/// `State` of `docker inspect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// created, running, paused, restarting, removing, exited or dead.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Only for a container with a healthcheck, once it has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `State.Health`: the healthcheck's status and its last probes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// starting, healthy or unhealthy.
    pub status: String,
    pub failing_streak: i64,
    /// The last few probes, oldest first.
    pub log: Vec<HealthcheckResult>,
}

/// One probe of a healthcheck.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    /// RFC 3339 with nanoseconds.
    pub start: String,
    pub end: String,
    /// 0 healthy, 1 unhealthy, -1 the probe could not run or timed out.
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

/// `docker inspect CONTAINER`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<crate::volume::MountPoint>,
    pub config: ContainerConfig,
    pub network_settings: serde_json::Value,
}

/// One line of `docker ps` (`GET /containers/json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: serde_json::Value,
    pub mounts: Vec<crate::volume::MountPoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitError {
    #[serde(rename = "Message")]
    pub message: String,
}

/// `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    pub status_code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
}

/// `docker top`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// `POST /containers/{id}/update` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateResponse {
    pub warnings: Vec<String>,
}

/// `POST /containers/prune` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPruneResponse {
    pub containers_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}
