//! A Docker create request -> an OCI runtime spec with Docker's defaults, for berth-runtime
//! (runc-compatible).
//!
//! [`build`] takes the request's `Config` and `HostConfig`, the image's config
//! ([`ImageDefaults`]), what the engine resolved (rootfs, /etc files, namespaces to join) and
//! the daemon's settings, and produces the `config.json` dockerd + containerd would give runc
//! for the same `docker create`: Docker's capabilities, seccomp profile, masked and read-only
//! paths, mounts, device cgroup, resources and validation messages (Docker's wording, as
//! [`Error::InvalidParameter`]).
//!
//! Modules follow the parts of the spec: [`process`] (merge with the image, args, env),
//! `user`, `caps`, `security` (security options, seccomp), `volumes` + `mounts`,
//! `namespaces` (+ sysctls), `resources` (+ ulimits), `devices`; [`host`] holds the host
//! facts that change the result.

mod caps;
mod devices;
mod error;
pub mod exec;
pub mod host;
mod input;
mod mounts;
mod namespaces;
pub mod process;
mod resources;
mod security;
mod user;
mod volumes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_api::container_config::{ContainerConfig, HostConfig};
use oci_spec::runtime::{BoxBuilder, Linux, LinuxResources, Process, Root, Spec, User};

pub use caps::DOCKER_DEFAULT_CAPS;
pub use error::{Error, Result};
pub use host::{host_bounding_caps, CgroupFeatures, HostInfo};
pub use input::{DaemonDefaults, EtcFiles, ImageDefaults, NetNs, SpecInput, Volumes};
pub use volumes::{bind_kind, check_volume_name, clean as clean_path, user_mounts, Kind as MountKind, UserMount};
pub use mounts::INIT_PATH_IN_CONTAINER;
pub use process::merge_image_config;

use mounts::Shm;
use namespaces::Ipc;

/// The OCI version written in `ociVersion`.
pub const OCI_VERSION: &str = "1.2.0";

/// Docker's default masked paths (Docker 28).
pub const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's default read-only paths.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The OCI runtime spec for one container. See [`build_with_warnings`] for the warnings Docker
/// would return alongside.
pub fn build(input: &SpecInput) -> Result<Spec> {
    build_with_warnings(input).map(|(spec, _)| spec)
}

/// The spec, and the warnings Docker returns for the same request (`Warnings` of the create
/// answer: settings the host cannot honour, dropped).
pub fn build_with_warnings(input: &SpecInput) -> Result<(Spec, Vec<String>)> {
    assemble(input, Mode::Build)
}

/// Create-time validation: every check [`build`] makes that needs neither the rootfs nor the
/// containers to share namespaces with (user names are looked up at start, `container:` modes
/// resolved then: `rootfs`, `join_ns` and `ipc_shm` are not used), without touching the host
/// (missing bind sources are not created). Returns Docker's warnings for the create answer.
pub fn validate(input: &SpecInput) -> Result<Vec<String>> {
    assemble(input, Mode::Validate).map(|(_, w)| w)
}

/// Docker's checks of the request as the client sent it, before the engine fills in defaults
/// (a generated hostname, the image's working directory): an absolute `WorkingDir`, no
/// `Hostname` with `UTSMode: host`.
pub fn check_request(config: &ContainerConfig, host: &HostConfig) -> Result<()> {
    process::check_working_dir(config)?;
    if host.uts_mode == "host" && !config.hostname.is_empty() {
        return Err(Error::invalid("conflicting options: hostname and the UTS mode"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Build,
    Validate,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn assemble(input: &SpecInput, mode: Mode) -> Result<(Spec, Vec<String>)> {
    let mut warnings = Vec::new();
    let (host, daemon, info) = (input.host, input.daemon, input.host_info);
    let res = &host.resources;
    let validating = mode == Mode::Validate;

    if host.shm_size < 0 {
        return Err(Error::invalid("SHM size can not be less than 0"));
    }
    if !host.cgroup.is_empty() {
        return Err(Error::invalid(format!(
            "Cgroup {:?} (running in another container's cgroup) is not supported yet",
            host.cgroup
        )));
    }
    let config = merge_image_config(input.config, input.image)?;
    let sec = security::parse(host.security_opt.as_deref().unwrap_or_default(), daemon.no_new_privileges)?;
    let ns = namespaces::resolve(host, &input.net_ns, &input.join_ns, daemon, info, validating)?;

    // Docker names a container after its short id; on the host's network or UTS namespace it
    // gets the host's name.
    let hostname = if !config.hostname.is_empty() {
        config.hostname.clone()
    } else if ns.uts_host || input.net_ns == NetNs::Host {
        info.hostname.clone()
    } else {
        input.id.chars().take(12).collect()
    };

    // The command, behind the init when there is one (only in a private PID namespace).
    let mut args = process::command(&config)?;
    let init = if host.init.unwrap_or(daemon.init) && ns.pid_private {
        let path = daemon.init_path.as_deref().ok_or_else(|| {
            Error::invalid("an init was requested (--init) but the daemon has no init binary (docker-init) configured")
        })?;
        args.splice(0..0, strings(&[INIT_PATH_IN_CONTAINER, "--"]));
        Some(path)
    } else {
        None
    };

    let group_add = host.group_add.as_deref().unwrap_or_default();
    let who = if validating {
        user::check_numeric(&config.user, group_add)?
    } else {
        user::resolve(input.rootfs, &config.user, group_add)?
    };
    let cap_mask = caps::effective_mask(
        host.cap_add.as_deref().unwrap_or_default(),
        host.cap_drop.as_deref().unwrap_or_default(),
        host.privileged,
        info.bounding_caps,
        &mut warnings,
    )?;
    let cap_names = caps::names(cap_mask);
    let seccomp = security::seccomp(sec.seccomp.as_deref(), daemon.seccomp_profile.as_deref(), host.privileged, &cap_names)?;
    if !sec.labels.is_empty() && info.selinux {
        warnings.push("SELinux labels (security-opt label=...) are not supported by Berth yet: ignored".into());
    }
    // An AppArmor profile only where the host has AppArmor (Docker ignores it elsewhere).
    let apparmor = sec.apparmor.clone().filter(|p| info.apparmor && p != "unconfined");

    let rlimits = resources::rlimits(res.ulimits.as_deref().unwrap_or_default(), &daemon.default_ulimits)?;
    let oom_score_adj = resources::oom_score_adj(host)?;
    let limits = resources::limits(res, daemon, info, &mut warnings)?;
    let (devices, device_rules) = devices::devices(
        res.devices.as_deref().unwrap_or_default(),
        res.device_cgroup_rules.as_deref().unwrap_or_default(),
        res.device_requests.as_deref().unwrap_or_default(),
        host.privileged,
        &info.dev_dir,
        &mut warnings,
    )?;

    let shm_size = if host.shm_size > 0 { host.shm_size as u64 } else { daemon.default_shm_size };
    let shm = match ns.ipc {
        Ipc::None => Shm::None,
        Ipc::Private => Shm::Private(shm_size),
        Ipc::Shareable => input.ipc_shm.map_or(Shm::Private(shm_size), |p| Shm::Bind(p.into())),
        Ipc::Host => {
            if !Path::new("/dev/shm").exists() {
                return Err(Error::invalid("/dev/shm is not mounted, but must be for --ipc=host"));
            }
            Shm::Bind("/dev/shm".into())
        }
        Ipc::Container if validating => Shm::None,
        Ipc::Container => Shm::Bind(
            input
                .ipc_shm
                .ok_or_else(|| Error::invalid(format!("IPC mode {}: the container's /dev/shm was not resolved", host.ipc_mode)))?
                .into(),
        ),
    };
    // The image's VOLUMEs and --volumes-from come resolved from the engine in `input.volumes`.
    let user_mounts = volumes::resolve(
        volumes::user_mounts(
            host.binds.as_deref().unwrap_or_default(),
            host.mounts.as_deref().unwrap_or_default(),
            host.tmpfs.as_ref(),
        )?,
        &input.volumes,
        validating,
    )?;
    let (mounts, rootfs_propagation, mount_warnings) = mounts::build(mounts::MountPlan {
        user: user_mounts,
        etc: input.etc_files,
        shm,
        init,
        readonly_rootfs: host.readonly_rootfs,
        privileged: host.privileged,
        writable_cgroups: sec.writable_cgroups.unwrap_or(false),
        rro: info.kernel >= (5, 12, 0),
        data_root: daemon.data_root.as_deref(),
        create_sources: !validating,
    })?;
    warnings.extend(mount_warnings);
    let sysctls = namespaces::sysctls(host, &config.domainname, &ns, info)?;

    // Assemble.
    let mut process = Process::default();
    process.set_terminal(Some(config.tty));
    if config.tty && host.console_size != [0, 0] {
        let b = BoxBuilder::default().height(host.console_size[0]).width(host.console_size[1]).build();
        process.set_console_size(Some(b.map_err(|e| Error::invalid(e.to_string()))?));
    } else {
        process.set_console_size(None);
    }
    let mut u = User::default();
    u.set_uid(who.uid);
    u.set_gid(who.gid);
    u.set_additional_gids(Some(who.additional_gids));
    process.set_user(u);
    process.set_args(Some(args));
    process.set_env(Some(process::environment(&config, &hostname, &who.home)));
    process.set_cwd(PathBuf::from(process::cwd(&config)));
    process.set_capabilities(Some(caps::linux_capabilities(cap_mask, who.uid)?));
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_no_new_privileges(sec.no_new_privileges.then_some(true));
    process.set_apparmor_profile(apparmor);
    process.set_oom_score_adj(Some(oom_score_adj));
    process.set_selinux_label(None);

    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf());
    root.set_readonly(host.readonly_rootfs.then_some(true));

    let mut resources = LinuxResources::default();
    resources.set_devices(Some(device_rules));
    resources.set_memory(limits.memory);
    resources.set_cpu(limits.cpu);
    resources.set_pids(limits.pids);
    resources.set_block_io(limits.block_io);

    let mut linux = Linux::default();
    linux.set_namespaces(Some(ns.list.clone()));
    linux.set_sysctl((!sysctls.is_empty()).then_some(sysctls));
    linux.set_resources(Some(resources));
    linux.set_cgroups_path(Some(cgroups_path(&res.cgroup_parent, &daemon.cgroup_parent, input.id)));
    linux.set_devices((!devices.is_empty()).then_some(devices));
    linux.set_seccomp(seccomp);
    linux.set_rootfs_propagation(rootfs_propagation);
    let (masked, readonly) = if host.privileged {
        (None, None)
    } else {
        (
            Some(host.masked_paths.clone().unwrap_or_else(|| strings(&DEFAULT_MASKED_PATHS))),
            Some(host.readonly_paths.clone().unwrap_or_else(|| strings(&DEFAULT_READONLY_PATHS))),
        )
    };
    linux.set_masked_paths(masked);
    linux.set_readonly_paths(readonly);
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.into());
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    spec.set_hostname((!ns.uts_host).then_some(hostname));
    spec.set_domainname(None);
    spec.set_mounts(Some(mounts));
    spec.set_hooks(None);
    let annotations: HashMap<String, String> = host.annotations.clone().unwrap_or_default().into_iter().collect();
    spec.set_annotations((!annotations.is_empty()).then_some(annotations));
    spec.set_linux(Some(linux));
    Ok((spec, warnings))
}

/// `<parent>/<id>`: the container's `CgroupParent` (relative ones stay relative, as Docker
/// passes them), else the daemon's, made absolute.
fn cgroups_path(container_parent: &str, daemon_parent: &str, id: &str) -> PathBuf {
    let parent = if !container_parent.is_empty() {
        container_parent.to_string()
    } else if daemon_parent.is_empty() {
        "/berth".to_string()
    } else {
        format!("/{}", daemon_parent.trim_start_matches('/'))
    };
    PathBuf::from(volumes::clean(&format!("{parent}/{id}")))
}

#[cfg(test)]
mod tests;

/// `docker update`: the cgroup limits of `r` (already merged with the container's current
/// resources), validated as at create; devices are left as they are. Returns Docker's warnings.
pub fn update_resources(r: &berth_api::container_config::Resources, daemon: &DaemonDefaults, info: &HostInfo) -> Result<(LinuxResources, Vec<String>)> {
    let mut warnings = Vec::new();
    let limits = resources::limits(r, daemon, info, &mut warnings)?;
    let mut out = LinuxResources::default();
    out.set_memory(limits.memory);
    out.set_cpu(limits.cpu);
    out.set_pids(limits.pids);
    out.set_block_io(limits.block_io);
    Ok((out, warnings))
}
