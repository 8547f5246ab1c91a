//! The OCI spec of a container: berth-spec builds it from the stored (already merged) config,
//! the daemon's settings and the host's facts.

use std::path::Path;

use berth_api::container_config::{ContainerConfig, HostConfig};
use oci_spec::runtime::Spec;

use crate::error::Result;
use crate::etcfiles::EtcPaths;
use crate::record::Record;
use crate::Engine;

pub(crate) fn daemon_defaults(e: &Engine) -> berth_spec::DaemonDefaults {
    berth_spec::DaemonDefaults {
        default_pids_limit: e.cfg.default_pids_limit,
        default_shm_size: e.cfg.default_shm_size,
        cgroup_parent: e.cfg.cgroup_parent.clone(),
        init_path: e.cfg.init_bin.clone(),
        data_root: Some(e.cfg.data_root.clone()),
        ..Default::default()
    }
}

/// The image's config in the API's shape (both are Docker's JSON).
pub(crate) fn image_config(e: &Engine, image_id: &berth_image::Digest) -> Result<ContainerConfig> {
    let c = e.images.config(image_id)?.config.unwrap_or_default();
    let v = serde_json::to_value(&c)?;
    Ok(serde_json::from_value(v)?)
}


impl Engine {
    /// The stored config is already merged with the image's, so the image adds nothing here.
    fn spec_input<'a>(
        &'a self,
        daemon: &'a berth_spec::DaemonDefaults,
        id: &'a str,
        config: &'a ContainerConfig,
        host: &'a HostConfig,
        rootfs: &'a Path,
        etc: Option<&'a EtcPaths>,
    ) -> Result<berth_spec::SpecInput<'a>> {
        static NO_IMAGE: std::sync::OnceLock<berth_spec::ImageDefaults> = std::sync::OnceLock::new();
        Ok(berth_spec::SpecInput {
            id,
            config,
            host,
            image: NO_IMAGE.get_or_init(Default::default),
            rootfs,
            etc_files: etc.map(|p| berth_spec::EtcFiles {
                hostname: Some(&p.hostname),
                hosts: Some(&p.hosts),
                resolv_conf: Some(&p.resolv_conf),
            }),
            // Set by the callers: the network layer decides.
            net_ns: berth_spec::NetNs::New,
            join_ns: Vec::new(),
            ipc_shm: None,
            volumes: Default::default(),
            daemon,
            host_info: &self.host_info,
        })
    }

    /// Create-time validation and warnings, so that bad capabilities, resources or mounts fail
    /// before anything is created (user names need the image's files: checked at start).
    pub(crate) fn validate_spec(&self, config: &ContainerConfig, host: &HostConfig) -> Result<Vec<String>> {
        let daemon = daemon_defaults(self);
        let id = "0".repeat(64);
        let net_ns = match crate::network::NetMode::of(host)? {
            crate::network::NetMode::Host => berth_spec::NetNs::Host,
            _ => berth_spec::NetNs::New,
        };
        let mut input = self.spec_input(&daemon, &id, config, host, Path::new("/nonexistent-berth-rootfs"), None)?;
        input.net_ns = net_ns;
        Ok(berth_spec::validate(&input)?)
    }

    pub(crate) fn build_spec(&self, rec: &Record, rootfs: &Path, net_ns: berth_spec::NetNs) -> Result<Spec> {
        let daemon = daemon_defaults(self);
        let etc = EtcPaths::in_dir(&self.bundle_dir(&rec.id));
        let (sources, extra) = self.start_mounts(rec, rootfs)?;
        let mut input = self.spec_input(&daemon, &rec.id, &rec.config, &rec.host_config, rootfs, Some(&etc))?;
        input.volumes = berth_spec::Volumes { sources: &sources, extra: &extra };
        input.net_ns = net_ns;
        Ok(berth_spec::build(&input)?)
    }
}
