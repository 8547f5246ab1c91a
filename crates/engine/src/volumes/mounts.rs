//! A container's mounts as the engine records them (inspect's `Mounts`): the request's binds
//! and volumes, `--volumes-from`, and an anonymous volume for each image VOLUME the request
//! does not cover. Volumes are created at container create (and removed again if the create
//! fails); at start each volume is resolved to its directory, filled from the image the first
//! time (copy-up), and handed to the spec builder.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use berth_api::container_config::{ContainerConfig, HostConfig};
use berth_api::volume::MountPoint;
use berth_spec::{MountKind, UserMount};
use serde::{Deserialize, Serialize};

use super::table;
use crate::error::{Error, Result};
use crate::record::Record;
use crate::{lock, Engine};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMount {
    #[serde(flatten)]
    pub point: MountPoint,
    /// Named by the request's Binds/Mounts, which the spec builder parses again: it gets the
    /// volume's directory by destination. Otherwise (image VOLUME, --volumes-from) the engine
    /// adds it as a plain bind.
    pub requested: bool,
    /// Fill the volume from the image's content at the destination at the next start, if the
    /// volume is empty then (Docker's copy-up; off with `nocopy`).
    pub copy_up: bool,
}

/// A volume to create or reuse for `mounts[index]`; an empty name is a new anonymous one.
struct WantedVolume {
    index: usize,
    name: String,
    driver: String,
    options: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

impl WantedVolume {
    fn anonymous(index: usize) -> WantedVolume {
        WantedVolume { index, name: String::new(), driver: String::new(), options: BTreeMap::new(), labels: BTreeMap::new() }
    }
}

/// What the create will make, validated before anything is.
struct Plan {
    mounts: Vec<ContainerMount>,
    volumes: Vec<WantedVolume>,
}

fn volume_point(dest: &str, rw: bool, mode: &str) -> MountPoint {
    MountPoint {
        typ: "volume".into(),
        destination: dest.into(),
        driver: "local".into(),
        mode: mode.into(),
        rw,
        ..Default::default()
    }
}

/// `--volumes-from NAME[:ro|rw]`.
fn split_volumes_from(spec: &str) -> Result<(&str, Option<bool>)> {
    let (name, mode) = spec.split_once(':').unwrap_or((spec, ""));
    let rw = match mode {
        "" | "z" | "Z" => None,
        "rw" | "rw,z" | "rw,Z" | "z,rw" | "Z,rw" => Some(true),
        "ro" | "ro,z" | "ro,Z" | "z,ro" | "Z,ro" => Some(false),
        _ => return Err(Error::InvalidParameter(format!("invalid mode for volumes-from: {mode}"))),
    };
    if name.is_empty() {
        return Err(Error::InvalidParameter(format!("invalid volumes-from: {spec:?}")));
    }
    Ok((name, rw))
}

impl Engine {
    fn plan_mounts(&self, config: &ContainerConfig, host: &HostConfig) -> Result<Plan> {
        let user = berth_spec::user_mounts(
            host.binds.as_deref().unwrap_or_default(),
            host.mounts.as_deref().unwrap_or_default(),
            host.tmpfs.as_ref(),
        )?;
        let mut taken: HashSet<String> = user.iter().map(|m| m.dest.clone()).collect();
        let mut plan = Plan { mounts: Vec::new(), volumes: Vec::new() };
        for m in &user {
            let point = match &m.kind {
                MountKind::Bind { source, writable, propagation, .. } => MountPoint {
                    typ: "bind".into(),
                    source: source.clone(),
                    destination: m.dest.clone(),
                    mode: m.mode.clone(),
                    rw: *writable,
                    propagation: propagation.clone(),
                    ..Default::default()
                },
                MountKind::Volume { name, writable, nocopy, driver, driver_opts, labels } => {
                    plan.volumes.push(WantedVolume {
                        index: plan.mounts.len(),
                        name: name.clone(),
                        driver: driver.clone(),
                        options: driver_opts.clone(),
                        labels: labels.clone(),
                    });
                    plan.mounts.push(ContainerMount { point: volume_point(&m.dest, *writable, &m.mode), requested: true, copy_up: !nocopy });
                    continue;
                }
                MountKind::Tmpfs { .. } => continue,
            };
            plan.mounts.push(ContainerMount { point, requested: true, copy_up: false });
        }
        for spec in host.volumes_from.iter().flatten() {
            let (name, rw) = split_volumes_from(spec)?;
            // 400, not 404: the docker CLI would take a 404 for a missing image and pull.
            let from = self.get(name).map_err(|e| match e {
                Error::NotFound(m) => Error::InvalidParameter(m),
                e => e,
            })?;
            for m in &from.mounts {
                if taken.insert(m.point.destination.clone()) {
                    let mut point = m.point.clone();
                    if let Some(rw) = rw {
                        point.rw = rw;
                    }
                    plan.mounts.push(ContainerMount { point, requested: false, copy_up: false });
                }
            }
        }
        for dest in config.volumes.iter().flat_map(|v| v.keys()) {
            let dest = berth_spec::clean_path(dest);
            if !dest.starts_with('/') || dest == "/" {
                return Err(Error::InvalidParameter(format!("invalid volume path {dest:?}: must be absolute and not /")));
            }
            if taken.insert(dest.clone()) {
                plan.volumes.push(WantedVolume::anonymous(plan.mounts.len()));
                plan.mounts.push(ContainerMount { point: volume_point(&dest, true, ""), requested: false, copy_up: true });
            }
        }
        Ok(plan)
    }

    /// At create, after validation: the container's mounts, with every volume they name made
    /// (named ones reused if they exist). Returns the volumes this call created, which the
    /// caller passes to [`Engine::volumes_rollback`] if the create fails later.
    pub(crate) fn create_mounts(&self, config: &ContainerConfig, host: &HostConfig) -> Result<(Vec<ContainerMount>, Vec<String>)> {
        let mut plan = self.plan_mounts(config, host)?;
        let _g = lock(&self.volumes.lock);
        let mut created = Vec::new();
        for w in std::mem::take(&mut plan.volumes) {
            match self.volume_get_or_create(&w.name, &w.driver, w.options, w.labels) {
                Ok((rec, new)) => {
                    if new {
                        created.push(rec.name.clone());
                    }
                    let p = &mut plan.mounts[w.index].point;
                    p.source = self.volume_data(&rec.name).to_string_lossy().into_owned();
                    p.name = rec.name;
                }
                Err(e) => {
                    drop(_g);
                    self.volumes_rollback(&created);
                    return Err(e);
                }
            }
        }
        Ok((plan.mounts, created))
    }

    /// Removes volumes a failed create made (nothing uses them yet).
    pub(crate) fn volumes_rollback(&self, created: &[String]) {
        for name in created {
            let _ = self.volume_remove(name, true);
        }
    }

    /// At removal with `-v` (and for `--rm` containers): the container's anonymous volumes,
    /// unless another container uses them too. Errors are collected, not fatal.
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[ContainerMount]) -> Vec<String> {
        let mut errs = Vec::new();
        for m in mounts.iter().filter(|m| m.point.typ == "volume") {
            match table::get(self.store.db(), &m.point.name) {
                Ok(Some(v)) if v.anonymous() => {
                    if let Err(e) = self.volume_remove(&v.name, true) {
                        if !matches!(e, Error::Conflict(_)) {
                            errs.push(e.to_string());
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => errs.push(e.to_string()),
            }
        }
        errs
    }

    /// At start, with the rootfs mounted: each volume's directory (mounted for option volumes,
    /// filled from the image if asked and empty), as the spec builder takes them.
    pub(crate) fn start_mounts(&self, rec: &Record, rootfs: &Path) -> Result<(BTreeMap<String, PathBuf>, Vec<UserMount>)> {
        let mut sources = BTreeMap::new();
        let mut extra = Vec::new();
        let mut copied = false;
        for m in &rec.mounts {
            let p = &m.point;
            let source = if p.typ == "volume" {
                let v = table::get(self.store.db(), &p.name)?
                    .ok_or_else(|| Error::NotFound(format!("volume {} of container {} no longer exists", p.name, rec.name)))?;
                let dir = self.volume_ensure_mounted(&v)?;
                if m.copy_up {
                    copy_up(rootfs, &p.destination, &dir)?;
                    copied = true;
                }
                dir
            } else {
                PathBuf::from(&p.source)
            };
            if m.requested && p.typ == "volume" {
                sources.insert(p.destination.clone(), source);
            } else if !m.requested {
                extra.push(UserMount { dest: p.destination.clone(), kind: berth_spec::bind_kind(&source, p.rw), mode: p.mode.clone() });
            }
        }
        if copied {
            // Once: later starts keep whatever the volume holds, even if emptied on purpose.
            self.update(&rec.id, |r| {
                r.mounts.iter_mut().for_each(|m| m.copy_up = false);
                Ok(())
            })?;
        }
        Ok((sources, extra))
    }

    /// After a container stops: option volumes no running container uses any more are
    /// unmounted (their data stays where the device keeps it).
    pub(crate) fn release_volumes(&self, rec: &Record) {
        let names: Vec<&str> = rec.mounts.iter().filter(|m| m.point.typ == "volume").map(|m| m.point.name.as_str()).collect();
        if names.is_empty() {
            return;
        }
        let _g = lock(&self.volumes.lock);
        let busy: HashSet<String> = lock(&self.containers)
            .values()
            .filter(|r| r.id != rec.id && r.state.status.is_live())
            .flat_map(|r| r.mounts.iter().filter(|m| m.point.typ == "volume").map(|m| m.point.name.clone()))
            .collect();
        for name in names.into_iter().filter(|n| !busy.contains(*n)) {
            if let Ok(Some(v)) = table::get(self.store.db(), name) {
                if !v.options.is_empty() {
                    let _ = self.volume_unmount(&v);
                }
            }
        }
    }
}

/// Copies the image's content at `dest` (resolved inside the rootfs: a symlink in the image
/// cannot point the copy at a host path) into the volume directory, if that is empty.
fn copy_up(rootfs: &Path, dest: &str, volume: &Path) -> Result<()> {
    let empty = std::fs::read_dir(volume).map_err(|e| Error::io("read", volume, e))?.next().is_none();
    if !empty {
        return Ok(());
    }
    let root = std::fs::File::open(rootfs).map_err(|e| Error::io("open", rootfs, e))?;
    let rel = dest.trim_start_matches('/');
    let dir = match crate::archive::in_root::open_in(root.as_fd(), rel.as_bytes(), libc::O_PATH | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        // Nothing there in the image (or not a directory): nothing to copy.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(()),
        Err(e) => return Err(Error::io("open", rootfs.join(rel), e)),
    };
    let src = PathBuf::from(format!("/proc/self/fd/{}/.", dir.as_raw_fd()));
    berth_image::snapshot::copy_contents(&src, volume).map_err(|e| Error::Internal(format!("copy {dest} of the image into volume {}: {e}", volume.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_from_modes() {
        assert_eq!(split_volumes_from("db").unwrap(), ("db", None));
        assert_eq!(split_volumes_from("db:ro").unwrap(), ("db", Some(false)));
        assert_eq!(split_volumes_from("db:rw").unwrap(), ("db", Some(true)));
        assert_eq!(split_volumes_from("db:bogus").unwrap_err().to_string(), "invalid mode for volumes-from: bogus");
        assert!(split_volumes_from(":ro").is_err());
    }

    #[test]
    fn copy_up_stays_in_the_root() {
        let d = tempfile::tempdir().unwrap();
        let rootfs = d.path().join("rootfs");
        let host_secret = d.path().join("host");
        std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        std::fs::write(rootfs.join("data/sub/f"), b"image").unwrap();
        std::fs::create_dir_all(&host_secret).unwrap();
        std::fs::write(host_secret.join("secret"), b"host").unwrap();
        // A symlink in the image pointing at a host path resolves inside the rootfs instead.
        std::os::unix::fs::symlink(&host_secret, rootfs.join("evil")).unwrap();
        let vol = d.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        copy_up(&rootfs, "/evil", &vol).unwrap();
        assert!(std::fs::read_dir(&vol).unwrap().next().is_none(), "copied from the host");
        copy_up(&rootfs, "/data", &vol).unwrap();
        assert_eq!(std::fs::read(vol.join("sub/f")).unwrap(), b"image");
        // Not empty any more: a second copy-up keeps what is there.
        std::fs::write(vol.join("sub/f"), b"changed").unwrap();
        copy_up(&rootfs, "/data", &vol).unwrap();
        assert_eq!(std::fs::read(vol.join("sub/f")).unwrap(), b"changed");
        copy_up(&rootfs, "/missing", &vol).unwrap();
    }
}
