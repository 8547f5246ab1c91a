//! Answers the client decodes that have no shared type elsewhere in berth-api (the image
//! store's shapes, archive stats, progress messages), lenient as Go's decoder is: missing
//! fields and `null` default.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /images/json` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    #[serde(default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub parent_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub repo_tags: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub repo_digests: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub created: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub shared_size: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub containers: i64,
}

/// `GET /images/{name}/history` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    #[serde(default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub created: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub created_by: String,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub comment: String,
}

/// `DELETE /images/{name}` and prune entries: one of the two is set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDeleteItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagePruneResponse {
    #[serde(default, deserialize_with = "nullable")]
    pub images_deleted: Vec<ImageDeleteItem>,
    #[serde(default, deserialize_with = "nullable")]
    pub space_reclaimed: u64,
}

/// `GET /containers/{id}/changes` entry; Kind 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeItem {
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub kind: u8,
}

/// `{"Id": ...}` answers (commit, exec create).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IdResponse {
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
}

/// `X-Docker-Container-Path-Stat`: what `HEAD/GET /containers/{id}/archive` says of a path.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PathStat {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
    /// Go's `os.FileMode` bits (directory = 1<<31, symlink = 1<<27).
    #[serde(default, deserialize_with = "nullable")]
    pub mode: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub mtime: String,
    #[serde(rename = "linkTarget", default, deserialize_with = "nullable")]
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }
}

/// One message of a pull/push/load progress stream (Docker's `jsonmessage`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JsonMessage {
    #[serde(default, deserialize_with = "nullable")]
    pub stream: String,
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub progress: String,
    #[serde(rename = "progressDetail", default, deserialize_with = "nullable")]
    pub progress_detail: ProgressDetail,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(rename = "errorDetail", default)]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default)]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProgressDetail {
    #[serde(default, deserialize_with = "nullable")]
    pub current: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub total: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default, deserialize_with = "nullable")]
    pub message: String,
}
