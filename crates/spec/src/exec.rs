//! What `docker exec` needs from the container's settings: the user it names (looked up in the
//! container's /etc/passwd and /etc/group, as at create) and `--privileged`'s capabilities.

use std::path::Path;

use oci_spec::runtime::{LinuxCapabilities, User};

use crate::error::Result;

/// The OCI user for `user` (`uid`, `name`, `name:group`, ...) plus `group_add`
/// (HostConfig.GroupAdd), resolved in `rootfs`, and the user's home directory (for HOME).
pub fn resolve_user(rootfs: &Path, user: &str, group_add: &[String]) -> Result<(User, String)> {
    let who = crate::user::resolve(rootfs, user, group_add)?;
    let mut u = User::default();
    u.set_uid(who.uid);
    u.set_gid(who.gid);
    u.set_additional_gids(Some(who.additional_gids));
    Ok((u, who.home))
}

/// `docker exec --privileged`: every capability of the host's bounding set, in the bounding,
/// effective and permitted sets (Docker's exec grants them whatever the container has).
pub fn privileged_capabilities() -> Result<LinuxCapabilities> {
    let host = crate::host::host_bounding_caps()?;
    let mask = crate::caps::effective_mask(&[], &[], true, host, &mut Vec::new())?;
    crate::caps::linux_capabilities(mask, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_in_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n").unwrap();
        let (u, home) = resolve_user(dir.path(), "app", &[]).unwrap();
        assert_eq!((u.uid(), u.gid(), home.as_str()), (1000, 1001, "/home/app"));
        let (u, home) = resolve_user(dir.path(), "7:8", &["9".into()]).unwrap();
        assert_eq!((u.uid(), u.gid(), u.additional_gids().clone(), home.as_str()), (7, 8, Some(vec![8, 9]), "/"));
        assert!(resolve_user(dir.path(), "nobody", &[]).unwrap_err().to_string().contains("unable to find user nobody"));
    }

    #[test]
    fn privileged_gets_the_bounding_set() {
        let c = privileged_capabilities().unwrap();
        let n = c.bounding().as_ref().map_or(0, |b| b.len());
        assert!(n >= 14, "{n}");
        assert_eq!(c.effective(), c.bounding());
    }
}
