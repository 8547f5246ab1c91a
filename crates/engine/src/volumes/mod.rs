//! Named and anonymous volumes with Docker's `local` driver: a directory
//! `<data-root>/volumes/<name>/_data`, or — with `type`/`device`/`o` options — a filesystem
//! mounted there while containers use it. Records live in the engine's redb store; the data
//! outlives every container and image operation, and only `volume rm`/`prune`, `rm -v` and
//! `--rm` (anonymous volumes) delete it.

mod local;
mod mounts;
mod table;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use berth_api::volume::{UsageData, Volume, VolumeCreateRequest, VolumePruneReport, ANONYMOUS_LABEL};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{lock, Engine};

pub use mounts::ContainerMount;

/// A volume as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub created_at: String,
}

impl VolumeRecord {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// In-memory state beside the records: one lock serialising volume create/remove against the
/// container creates and removals that use volumes, and the option volumes currently mounted.
#[derive(Default)]
pub(crate) struct VolumeState {
    pub lock: Mutex<()>,
    pub mounted: Mutex<HashSet<String>>,
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("get {name}: no such volume"))
}

impl Engine {
    pub(crate) fn volumes_dir(&self) -> PathBuf {
        self.cfg.data_root.join("volumes")
    }

    /// The directory containers see: `<data-root>/volumes/<name>/_data`.
    pub(crate) fn volume_data(&self, name: &str) -> PathBuf {
        self.volumes_dir().join(name).join("_data")
    }

    fn volume_view(&self, r: &VolumeRecord) -> Volume {
        Volume {
            created_at: r.created_at.clone(),
            driver: r.driver.clone(),
            labels: (!r.labels.is_empty()).then(|| r.labels.clone()),
            mountpoint: self.volume_data(&r.name).to_string_lossy().into_owned(),
            name: r.name.clone(),
            options: (!r.options.is_empty()).then(|| r.options.clone()),
            scope: "local".into(),
            usage_data: None,
        }
    }

    /// `POST /volumes/create`. An existing volume of that name is returned as it is (Docker's
    /// idempotent create), unless the request names another driver.
    pub fn volume_create(&self, req: &VolumeCreateRequest) -> Result<Volume> {
        let _g = lock(&self.volumes.lock);
        let (rec, _) = self.volume_get_or_create(&req.name, &req.driver, req.driver_opts.clone().unwrap_or_default(), req.labels.clone().unwrap_or_default())?;
        Ok(self.volume_view(&rec))
    }

    /// Under the volume lock. `name` empty: a new anonymous volume. Returns the record and
    /// whether this call created it.
    pub(crate) fn volume_get_or_create(
        &self,
        name: &str,
        driver: &str,
        options: BTreeMap<String, String>,
        mut labels: BTreeMap<String, String>,
    ) -> Result<(VolumeRecord, bool)> {
        let driver = if driver.is_empty() { "local" } else { driver };
        if driver != "local" {
            return Err(Error::NotFound(format!("error looking up volume plugin {driver}: plugin \"{driver}\" not found")));
        }
        let name = if name.is_empty() {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
            crate::names::new_id()
        } else {
            berth_spec::check_volume_name(name)?;
            name.to_owned()
        };
        if let Some(existing) = table::get(self.store.db(), &name)? {
            if existing.driver != driver {
                return Err(Error::Conflict(format!("volume {name} already exists with driver {}", existing.driver)));
            }
            return Ok((existing, false));
        }
        local::validate_options(&options)?;
        let rec = VolumeRecord {
            name: name.clone(),
            driver: driver.into(),
            labels,
            options,
            // Whole seconds, as Docker shows a volume's creation.
            created_at: {
                let now = berth_image::store::time::now_rfc3339();
                format!("{}Z", &now[..19])
            },
        };
        // The record first: a crash before the directory exists leaves a volume whose
        // directory is made at first use, never a directory no record owns.
        table::put(self.store.db(), &rec)?;
        let data = self.volume_data(&name);
        if let Err(e) = local::make_dirs(&self.volumes_dir(), &data) {
            let _ = table::delete(self.store.db(), &name);
            return Err(e);
        }
        self.events.emit("volume", "create", &name, BTreeMap::from([("driver".into(), rec.driver.clone())]));
        Ok((rec, true))
    }

    pub fn volume_inspect(&self, name: &str) -> Result<Volume> {
        let rec = table::get(self.store.db(), name)?.ok_or_else(|| not_found(name))?;
        Ok(self.volume_view(&rec))
    }

    /// Containers (any state) whose mounts use the volume.
    fn volume_users(&self, name: &str) -> Vec<String> {
        lock(&self.containers)
            .values()
            .filter(|r| r.mounts.iter().any(|m| m.point.typ == "volume" && m.point.name == name))
            .map(|r| r.id.clone())
            .collect()
    }

    /// `GET /volumes` with Docker's filters: dangling, name (substring), label, driver.
    pub fn volume_list(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Vec<Volume>> {
        for k in filters.keys() {
            if !["dangling", "name", "label", "driver"].contains(&k.as_str()) {
                return Err(Error::InvalidParameter(format!("invalid filter '{k}'")));
            }
        }
        let dangling = match filters.get("dangling").and_then(|v| v.first()).map(String::as_str) {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(v) => return Err(Error::InvalidParameter(format!("invalid filter 'dangling={v}'"))),
        };
        let mut out = Vec::new();
        for r in table::all(self.store.db())? {
            if dangling.is_some_and(|d| d != self.volume_users(&r.name).is_empty()) {
                continue;
            }
            if filters.get("name").is_some_and(|ns| !ns.iter().any(|n| r.name.contains(n.as_str()))) {
                continue;
            }
            if filters.get("driver").is_some_and(|ds| !ds.contains(&r.driver)) {
                continue;
            }
            if !labels_match(&r.labels, filters.get("label")) {
                continue;
            }
            out.push(self.volume_view(&r));
        }
        Ok(out)
    }

    /// `DELETE /volumes/{name}`: refused while a container uses it; `force` only makes a
    /// missing volume not an error, as with Docker.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let _g = lock(&self.volumes.lock);
        self.volume_remove_locked(name, force)
    }

    fn volume_remove_locked(&self, name: &str, force: bool) -> Result<()> {
        let Some(rec) = table::get(self.store.db(), name)? else {
            return if force { Ok(()) } else { Err(not_found(name)) };
        };
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(Error::Conflict(format!("remove {name}: volume is in use - [{}]", users.join(", "))));
        }
        self.volume_unmount(&rec)?;
        // Out of sight first (one rename), then forgotten, then deleted: a crash midway leaves
        // a `.trash-*` directory that the next start removes, never a record without data.
        let dir = self.volumes_dir().join(name);
        let trash = self.volumes_dir().join(format!(".trash-{name}"));
        match std::fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("rename", &dir, e)),
        }
        if let Err(e) = table::delete(self.store.db(), name) {
            let _ = std::fs::rename(&trash, &dir);
            return Err(e);
        }
        let res = local::remove_tree(&trash);
        self.events.emit("volume", "destroy", name, BTreeMap::from([("driver".into(), rec.driver)]));
        res
    }

    /// `POST /volumes/prune`: unused volumes; only anonymous ones unless `all=true`.
    pub fn volume_prune(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<VolumePruneReport> {
        for k in filters.keys() {
            if !["all", "label", "label!"].contains(&k.as_str()) {
                return Err(Error::InvalidParameter(format!("invalid filter '{k}'")));
            }
        }
        let all = match filters.get("all").and_then(|v| v.first()).map(String::as_str) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(v) => return Err(Error::InvalidParameter(format!("invalid filter 'all={v}'"))),
        };
        let _g = lock(&self.volumes.lock);
        let mut report = VolumePruneReport::default();
        for r in table::all(self.store.db())? {
            if (!all && !r.anonymous()) || !labels_match(&r.labels, filters.get("label")) {
                continue;
            }
            if filters.get("label!").is_some_and(|ls| ls.iter().any(|l| labels_match(&r.labels, Some(&vec![l.clone()])))) {
                continue;
            }
            if !self.volume_users(&r.name).is_empty() {
                continue;
            }
            let size = local::disk_usage(&self.volume_data(&r.name));
            if self.volume_remove_locked(&r.name, false).is_ok() {
                report.volumes_deleted.push(r.name.clone());
                report.space_reclaimed += size;
            }
        }
        Ok(report)
    }

    /// Volumes for `system df`: with their size and how many containers use them.
    pub fn volume_usage(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for r in table::all(self.store.db())? {
            let mut v = self.volume_view(&r);
            v.usage_data = Some(UsageData {
                size: local::disk_usage(&self.volume_data(&r.name)) as i64,
                ref_count: self.volume_users(&r.name).len() as i64,
            });
            out.push(v);
        }
        Ok(out)
    }

    /// At daemon start: remove what an interrupted `volume rm` left.
    pub(crate) fn volume_restore(&self) {
        let Ok(rd) = std::fs::read_dir(self.volumes_dir()) else { return };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".trash-") {
                let _ = local::remove_tree(&e.path());
            }
        }
    }
}

/// Docker's label filter: `key` (present) or `key=value`, all of them.
pub(crate) fn labels_match(labels: &BTreeMap<String, String>, want: Option<&Vec<String>>) -> bool {
    want.is_none_or(|ls| {
        ls.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        })
    })
}
