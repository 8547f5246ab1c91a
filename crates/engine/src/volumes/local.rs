//! The `local` driver's host side: directories, option validation, and the filesystem an
//! option volume (`-o type=tmpfs -o device=tmpfs -o o=size=64m`, or a bind of a host
//! directory with `-o type=none -o o=bind -o device=/srv/x`) mounts on its `_data`.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::VolumeRecord;
use crate::error::{Error, Result};
use crate::Engine;

const KEYS: [&str; 4] = ["type", "device", "o", "size"];

/// Docker's checks on `local` driver options, before anything is created.
pub(super) fn validate_options(opts: &BTreeMap<String, String>) -> Result<()> {
    if opts.is_empty() {
        return Ok(());
    }
    for k in opts.keys() {
        if !KEYS.contains(&k.as_str()) {
            return Err(Error::InvalidParameter(format!("invalid option: \"{k}\"")));
        }
    }
    if opts.contains_key("size") {
        return Err(Error::InvalidParameter("quota size requested but no quota support".into()));
    }
    for req in ["type", "device"] {
        if opts.get(req).is_none_or(|v| v.is_empty()) {
            return Err(Error::InvalidParameter(format!("missing required option: \"{req}\"")));
        }
    }
    let (flags, _) = parse_o(opts.get("o").map_or("", String::as_str));
    if flags.contains(MsFlags::MS_BIND) && !opts["device"].starts_with('/') {
        return Err(Error::InvalidParameter(format!("bind device must be an absolute path: {:?}", opts["device"])));
    }
    Ok(())
}

/// `o=` split as mount(8) does: flags the kernel takes as bits, the rest as data.
fn parse_o(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

pub(super) fn make_dirs(volumes_dir: &Path, data: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    // Like Docker's 0701: other users may reach a volume's data by its path, not list them.
    if !volumes_dir.exists() {
        b.recursive(true).mode(0o701).create(volumes_dir).map_err(|e| Error::io("create", volumes_dir, e))?;
        let _ = std::fs::set_permissions(volumes_dir, std::fs::Permissions::from_mode(0o701));
    }
    b.recursive(true).mode(0o755).create(data).map_err(|e| Error::io("create", data, e))
}

pub(super) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

pub(super) fn disk_usage(path: &Path) -> u64 {
    berth_image::snapshot::disk_usage(path).unwrap_or(0)
}

/// Whether something is mounted exactly at `path` (survives a daemon restart, unlike memory).
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = path.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4).is_some_and(|mp| mp == want))
}

impl Engine {
    /// The volume's data directory, with its filesystem mounted for an option volume.
    pub(crate) fn volume_ensure_mounted(&self, rec: &VolumeRecord) -> Result<std::path::PathBuf> {
        let data = self.volume_data(&rec.name);
        make_dirs(&self.volumes_dir(), &data)?;
        if rec.options.is_empty() || is_mount_point(&data) {
            return Ok(data);
        }
        let (flags, o) = parse_o(rec.options.get("o").map_or("", String::as_str));
        let typ = rec.options["type"].as_str();
        let typ = (!flags.contains(MsFlags::MS_BIND) && typ != "none").then_some(typ);
        let device = rec.options["device"].as_str();
        nix::mount::mount(Some(device), &data, typ, flags, (!o.is_empty()).then_some(o.as_str()))
            .map_err(|e| Error::Internal(format!("mount {device} on {} for volume {}: {e}", data.display(), rec.name)))?;
        crate::lock(&self.volumes.mounted).insert(rec.name.clone());
        self.events.emit("volume", "mount", &rec.name, BTreeMap::from([("driver".into(), rec.driver.clone())]));
        Ok(data)
    }

    /// Unmounts an option volume's filesystem (nothing for a plain directory volume).
    pub(crate) fn volume_unmount(&self, rec: &VolumeRecord) -> Result<()> {
        let data = self.volume_data(&rec.name);
        crate::lock(&self.volumes.mounted).remove(&rec.name);
        if rec.options.is_empty() || !is_mount_point(&data) {
            return Ok(());
        }
        nix::mount::umount2(&data, MntFlags::MNT_DETACH)
            .map_err(|e| Error::Internal(format!("unmount volume {} at {}: {e}", rec.name, data.display())))?;
        self.events.emit("volume", "unmount", &rec.name, BTreeMap::from([("driver".into(), rec.driver.clone())]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_like_docker() {
        assert!(validate_options(&opts(&[])).is_ok());
        assert!(validate_options(&opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=64m,uid=1000")])).is_ok());
        assert!(validate_options(&opts(&[("type", "none"), ("device", "/srv/x"), ("o", "bind")])).is_ok());
        let e = |kv: &[(&str, &str)]| validate_options(&opts(kv)).unwrap_err().to_string();
        assert_eq!(e(&[("bogus", "1")]), "invalid option: \"bogus\"");
        assert_eq!(e(&[("type", "tmpfs")]), "missing required option: \"device\"");
        assert_eq!(e(&[("device", "tmpfs")]), "missing required option: \"type\"");
        assert_eq!(e(&[("type", "none"), ("device", "rel"), ("o", "bind")]), "bind device must be an absolute path: \"rel\"");
        assert!(e(&[("size", "1g")]).contains("quota"));
    }

    #[test]
    fn o_splits_flags_from_data() {
        let (f, d) = parse_o("ro,size=64m,nosuid,uid=1000");
        assert_eq!(f, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(d, "size=64m,uid=1000");
        assert_eq!(parse_o("rbind").0, MsFlags::MS_BIND | MsFlags::MS_REC);
    }
}
