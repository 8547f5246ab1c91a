//! A container as the engine persists it.

use serde::{Deserialize, Serialize};

use berth_api::container_config::{ContainerConfig, HostConfig};

use crate::state::State;

/// The monitor process supervising a running container; (pid, start time) guards against a
/// reused pid after a reboot or a long downtime.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MonitorRef {
    pub pid: i32,
    pub start_time: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without Docker's leading '/'.
    pub name: String,
    pub created: String,
    /// The image as the request named it (`busybox`), shown by `docker ps`.
    pub image_ref: String,
    /// `sha256:...`: the image's ID.
    pub image_id: String,
    /// The request's config with the image's defaults filled in, as inspect shows it.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub restart_count: i64,
    pub monitor: Option<MonitorRef>,
    /// Stopped by a user: `unless-stopped` and `always` do not bring it back on their own.
    pub manually_stopped: bool,
    pub has_been_started: bool,
    /// Binds and volumes, as inspect shows them (`Mounts`).
    #[serde(default)]
    pub mounts: Vec<crate::volumes::ContainerMount>,
    /// The networks the container joins at start, by the name (or ID) the request used, with
    /// the request's settings (`--ip`, `--network-alias`): the network mode's own entry and
    /// networks connected since.
    #[serde(default)]
    pub endpoints_config: std::collections::BTreeMap<String, berth_api::container_config::EndpointSettings>,
    /// Disconnected from its network mode's own network: starts do not join it (until it is
    /// connected again), as Docker's.
    #[serde(default)]
    pub mode_disconnected: bool,
}

impl Record {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}
