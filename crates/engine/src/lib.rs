//! berth-engine: what berthd does. Containers live in an explicit, persisted state machine
//! (state.rs, store.rs); each running container has a berth-monitor process that outlives the
//! daemon; images come from berth-image; every step emits Docker's events.

pub mod archive;
pub mod config;
mod dns;
mod create;
pub mod error;
pub mod etcfiles;
pub mod events;
mod exec;
mod health;
mod images;
mod links;
pub mod registry;
mod lifecycle;
pub mod names;
mod network;
mod networks;
mod query;
pub mod record;
mod snapshot_ops;
mod spec;
pub mod state;
pub mod stats;
pub mod logconfig;
pub mod logs;
pub mod store;
mod supervise;
pub mod update;
pub mod system;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_image::store::ImageStore;

pub use berth_network::BridgeOptions;
pub use config::EngineConfig;
pub use error::{Error, Result};
pub use exec::detach_key_bytes;
pub use lifecycle::WaitCondition;
pub use query::ListOptions;
pub use snapshot_ops::CommitRequest;

use crate::events::Events;
use crate::record::Record;
use crate::store::Store;

/// A client waiting in `attach` for a created container to start.
type PendingAttach = (AttachRequest, tokio::sync::oneshot::Sender<Result<std::os::unix::net::UnixStream>>);

#[derive(Debug, Clone, Copy, Default)]
pub struct AttachRequest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

pub struct Engine {
    pub cfg: EngineConfig,
    pub images: ImageStore,
    store: Store,
    containers: Mutex<BTreeMap<String, Record>>,
    /// One operation at a time per container (start, stop, rm... never interleave).
    op_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pending_attach: Mutex<HashMap<String, Vec<PendingAttach>>>,
    /// `docker exec` instances (in memory only, as in Docker).
    execs: exec::Execs,
    health: health::HealthMonitors,
    pub events: Events,
    rt: tokio::runtime::Handle,
    started: std::time::Instant,
    host_info: berth_spec::HostInfo,
    volumes: volumes::VolumeState,
    /// The default bridge (absent with `--bridge none`), `host`, `none` and user networks.
    networks: berth_network::HostNetworks,
    dns: dns::Dns,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// Opens the stores under the data root and brings back the containers: those whose
    /// monitor still runs are watched again, exits that happened while the daemon was down are
    /// recorded, restart policies are applied.
    pub fn open(cfg: EngineConfig, rt: tokio::runtime::Handle) -> Result<Arc<Engine>> {
        for d in [cfg.data_root.join("containers"), cfg.exec_root.join("containers"), cfg.runtime_root()] {
            std::fs::create_dir_all(&d).map_err(|e| Error::io("create", &d, e))?;
        }
        let images = ImageStore::open(&cfg.data_root)?;
        let store = Store::open(&cfg.data_root.join("engine.redb"))?;
        let host_info = berth_spec::HostInfo::detect()?;
        let networks = berth_network::Networks::open(
            berth_network::Kernel,
            cfg.bridge.clone(),
            &cfg.data_root.join("network"),
            cfg.netns_dir(),
            &berth_image::store::time::now_rfc3339(),
        )?;
        let containers = store.all()?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let engine = Arc::new(Engine {
            cfg,
            images,
            store,
            containers: Mutex::new(containers),
            op_locks: Mutex::default(),
            pending_attach: Mutex::default(),
            execs: Default::default(),
            health: Default::default(),
            events: Events::default(),
            rt,
            started: std::time::Instant::now(),
            host_info,
            volumes: Default::default(),
            networks,
            dns: Default::default(),
        });
        engine.volume_restore();
        engine.restore();
        engine.dns_restore();
        Ok(engine)
    }

    /// At daemon shutdown: bridges go if no container is attached to them any more.
    pub fn shutdown(&self) {
        self.networks.shutdown();
    }

    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    /// Resolves a full ID, a name (with or without '/'), or a unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<String> {
        let c = lock(&self.containers);
        if c.contains_key(name_or_id) {
            return Ok(name_or_id.to_owned());
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(r) = c.values().find(|r| r.name == name) {
            return Ok(r.id.clone());
        }
        if name_or_id.is_empty() {
            return Err(Error::no_such_container(name_or_id));
        }
        let mut hits = c.keys().filter(|k| k.starts_with(name_or_id));
        match (hits.next(), hits.next()) {
            (Some(id), None) => Ok(id.clone()),
            (Some(_), Some(_)) => Err(Error::InvalidParameter(format!("multiple IDs found with provided prefix: {name_or_id}"))),
            _ => Err(Error::no_such_container(name_or_id)),
        }
    }

    pub fn get(&self, name_or_id: &str) -> Result<Record> {
        let id = self.resolve(name_or_id)?;
        lock(&self.containers).get(&id).cloned().ok_or_else(|| Error::no_such_container(name_or_id))
    }

    pub fn records(&self) -> Vec<Record> {
        lock(&self.containers).values().cloned().collect()
    }

    /// Applies `f` to a container's record and persists the result; nothing changes if `f`
    /// or the store fails.
    fn update<T>(&self, id: &str, f: impl FnOnce(&mut Record) -> Result<T>) -> Result<T> {
        let mut c = lock(&self.containers);
        let cur = c.get(id).ok_or_else(|| Error::no_such_container(id))?;
        let mut next = cur.clone();
        let out = f(&mut next)?;
        if next != *cur {
            self.store.put(&next)?;
            c.insert(id.to_owned(), next);
        }
        Ok(out)
    }

    fn op_lock(&self, id: &str) -> Arc<Mutex<()>> {
        lock(&self.op_locks).entry(id.to_owned()).or_default().clone()
    }

    fn emit(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        let mut attrs: BTreeMap<String, String> = rec.config.labels.clone().unwrap_or_default().into_iter().collect();
        attrs.insert("name".into(), rec.name.clone());
        attrs.insert("image".into(), rec.image_ref.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.events.emit("container", action, &rec.id, attrs);
    }
}
