//! Volumes (`/volumes/*`) and the mount points containers report (`Mounts` in inspect and ps),
//! in Docker's JSON shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The label Docker (23+) puts on anonymous volumes: `volume prune` without `--all` removes
/// only these.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume as `GET /volumes/{name}` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    /// `null` when there are none, as Docker prints it.
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
    /// Only in `system df` (and list with usage): -1 when not computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<UsageData>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsageData {
    pub size: i64,
    pub ref_count: i64,
}

/// `POST /volumes/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeCreateRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `GET /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeList {
    pub volumes: Vec<Volume>,
    pub warnings: Vec<String>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumePruneReport {
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// One entry of a container's `Mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}
