//! `POST /containers/create`: validate the request against its image, then create the
//! container's writable snapshot and /etc files and persist its record, undoing each step if a
//! later one fails.

use berth_api::container_config::{ContainerConfig, EndpointSettings, HostConfig, NetworkingConfig};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::state::State;
use crate::{lock, names, Engine};

pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

/// The command line Docker reports as Path and Args.
pub(crate) fn path_and_args(cfg: &ContainerConfig) -> Result<(String, Vec<String>)> {
    let mut argv: Vec<String> = cfg.entrypoint.clone().unwrap_or_default();
    if argv.len() == 1 && argv[0].is_empty() {
        argv.clear();
    }
    argv.extend(cfg.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(Error::InvalidParameter("no command specified".into()));
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

impl Engine {
    pub fn create(&self, name: Option<&str>, config: ContainerConfig, host: HostConfig) -> Result<Created> {
        self.create_with_networks(name, config, host, &NetworkingConfig::default())
    }

    /// `net`: the request's NetworkingConfig (per-network `--ip`, `--network-alias`, ...).
    pub fn create_with_networks(&self, name: Option<&str>, mut config: ContainerConfig, mut host: HostConfig, net: &NetworkingConfig) -> Result<Created> {
        berth_runtime::timing::mark("engine create: begin");
        let endpoints_config: std::collections::BTreeMap<String, EndpointSettings> =
            net.endpoints_config.iter().flatten().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
        let image_ref = config.image.clone();
        if image_ref.is_empty() {
            return Err(Error::InvalidParameter("config cannot be empty in order to create a container".into()));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = names::validate(n)?;
                if let Some(other) = lock(&self.containers).values().find(|r| r.name == n) {
                    return Err(crate::store::name_in_use(&n, &other.id));
                }
                n
            }
            None => {
                let c = lock(&self.containers);
                names::generate(|n| c.values().any(|r| r.name == n))
            }
        };
        berth_spec::check_request(&config, &host)?;
        self.validate_network(&config, &host, &endpoints_config)?;
        self.normalize_links(&name, &mut host)?;
        let image_id = self.images.meta().resolve(&image_ref)?;
        let image_cfg = crate::spec::image_config(self, &image_id)?;
        config = berth_spec::merge_image_config(&config, &berth_spec::ImageDefaults::from_config(&image_cfg))?;
        let (path, args) = path_and_args(&config)?;
        let id = names::new_id();
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_owned();
        }
        let warnings = self.validate_host_config(&config, &host)?;
        // Docker stores these defaults in the HostConfig at create.
        if host.resources.memory > 0 && host.resources.memory_swap == 0 {
            host.resources.memory_swap = host.resources.memory * 2;
        }
        if host.shm_size == 0 {
            host.shm_size = self.cfg.default_shm_size as i64;
        }
        self.resolve_log_config(&mut host)?;

        // Apply: volumes, snapshot, then record. A crash between them leaves a snapshot no
        // record names, which `restore` removes at the next start (and volumes, kept as Docker
        // keeps them; anonymous ones go with `volume prune`). The container's files (/etc
        // files, log) are made at start.
        let (mounts, new_volumes) = self.create_mounts(&config, &host)?;
        if let Err(e) = self.images.create_rw(&id, &image_id.to_string()) {
            self.volumes_rollback(&new_volumes);
            return Err(e.into());
        }
        let undo = |e: Error| -> Error {
            let _ = self.images.remove_rw(&id);
            self.volumes_rollback(&new_volumes);
            e
        };
        let rec = Record {
            id: id.clone(),
            name,
            created: berth_image::store::time::now_rfc3339(),
            image_ref,
            image_id: image_id.to_string(),
            config,
            host_config: host,
            path,
            args,
            state: State::default(),
            restart_count: 0,
            monitor: None,
            manually_stopped: false,
            has_been_started: false,
            mounts,
            endpoints_config,
            mode_disconnected: false,
        };
        {
            let mut c = lock(&self.containers);
            self.store.insert(&rec).map_err(undo)?;
            c.insert(id.clone(), rec.clone());
        }
        self.emit(&rec, "create", &[]);
        berth_runtime::timing::mark("engine create: done");
        Ok(Created { id, warnings })
    }

    /// Checks what Docker checks at create time, so that bad input fails before anything is
    /// made; the spec builder repeats the full validation at start.
    fn validate_host_config(&self, config: &ContainerConfig, host: &HostConfig) -> Result<Vec<String>> {
        {
            let p = &host.restart_policy;
            let name = p.name.as_str();
            if !matches!(name, "" | "no" | "always" | "unless-stopped" | "on-failure") {
                return Err(Error::InvalidParameter(format!("invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")));
            }
            if p.maximum_retry_count != 0 && name != "on-failure" {
                return Err(Error::InvalidParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'".into()));
            }
            if p.maximum_retry_count < 0 {
                return Err(Error::InvalidParameter("invalid restart policy: maximum retry count cannot be negative".into()));
            }
            if host.auto_remove && !matches!(name, "" | "no") {
                return Err(Error::InvalidParameter("conflicting options: cannot specify both --restart and --rm".into()));
            }
        }
        self.validate_spec(config, host)
    }
}
