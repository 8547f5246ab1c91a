//! `docker update`: new resource limits (applied to the running container's cgroup) and a new
//! restart policy, merged into the stored HostConfig the way Docker merges them.

use berth_api::container_config::{Resources, RestartPolicy};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::state::Status;
use crate::{lock, Engine};

/// `POST /containers/{id}/update` body: Resources fields plus RestartPolicy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
}

/// Docker's rule: only the fields the request sets (non-zero) change.
fn merge(cur: &mut Resources, new: &Resources) -> Result<()> {
    macro_rules! take {
        ($($f:ident),*) => {$(
            if new.$f != Resources::default().$f {
                cur.$f = new.$f.clone();
            }
        )*};
    }
    take!(cpu_shares, nano_cpus, blkio_weight, cpu_period, cpu_quota, cpu_realtime_period, cpu_realtime_runtime, cpuset_cpus, cpuset_mems, memory_reservation);
    if new.memory != 0 {
        // Docker refuses a memory limit above the swap limit already set, unless both change.
        if new.memory_swap == 0 && cur.memory_swap > 0 && new.memory > cur.memory_swap {
            return Err(Error::InvalidParameter(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
            ));
        }
        cur.memory = new.memory;
    }
    if new.memory_swap != 0 {
        cur.memory_swap = new.memory_swap;
    }
    if new.pids_limit.is_some() {
        cur.pids_limit = new.pids_limit;
    }
    Ok(())
}

impl Engine {
    pub fn update_container(&self, name: &str, upd: &UpdateConfig) -> Result<Vec<String>> {
        let id = self.resolve(name)?;
        let l = self.op_lock(&id);
        let _g = lock(&l);
        let rec = self.get(&id)?;
        let mut host = rec.host_config.clone();
        merge(&mut host.resources, &upd.resources)?;
        if let Some(p) = &upd.restart_policy {
            if host.auto_remove && !matches!(p.name.as_str(), "" | "no") {
                return Err(Error::InvalidParameter("Restart policy cannot be updated because AutoRemove is enabled for the container".into()));
            }
            host.restart_policy = p.clone();
        }
        let daemon = crate::spec::daemon_defaults(self);
        let (res, warnings) = berth_spec::update_resources(&host.resources, &daemon, &self.host_info)?;
        if matches!(rec.state.status, Status::Running | Status::Paused) {
            berth_runtime::container::update(&self.cfg.runtime_root(), &id, &res)
                .map_err(|e| Error::Internal(format!("Cannot update container {id}: {e}")))?;
        }
        let rec = self.update(&id, |r| {
            r.host_config = host.clone();
            Ok(r.clone())
        })?;
        self.emit(&rec, "update", &[]);
        Ok(warnings)
    }
}
