//! The OCI `cgroupsPath` -> an absolute cgroup path (the same in every hierarchy).

use std::path::Path;

use super::{detect, fs};
use crate::{Error, Result};

/// Parent of the default cgroup of each container (`/berth/<id>`) with the cgroupfs driver.
pub const DEFAULT_PARENT: &str = "/berth";
/// Default slice and scope prefix with the systemd driver: `system.slice:berth:<id>`.
pub const DEFAULT_SLICE: &str = "system.slice";
pub const DEFAULT_SCOPE_PREFIX: &str = "berth";

/// Resolves the OCI `linux.cgroupsPath` into an absolute, normalised cgroup path such as
/// `/berth/abc`, the same in every hierarchy.
///
/// cgroupfs (`systemd == false`):
/// - `/a/b`: taken as is (relative to the hierarchy's mountpoint, per the spec).
/// - `a/b`: relative to the caller's own cgroup from `/proc/self/cgroup` (its cgroup2 entry,
///   else `name=systemd`, else the first one): `/user.slice/a/b`.
/// - unset or empty: `/berth/<id>`.
/// - A value of the systemd form `slice:prefix:name` is refused (the caller forgot
///   `--systemd-cgroup`).
///
/// systemd (`systemd == true`): `slice:prefix:name`, unset/empty meaning
/// `system.slice:berth:<id>`; an empty slice means `system.slice`. The path is the expanded
/// slice (`a-b.slice` -> `/a.slice/a-b.slice`, `-.slice` -> `/`) followed by the unit:
/// `prefix-name.scope` (`name.scope` when the prefix is empty), or `name` itself when it ends
/// in `.slice`. No D-Bus: the directory is then managed through cgroupfs.
///
/// Refused: `.` or `..` components, NUL bytes, components over 255 bytes, and anything that
/// resolves to the root cgroup.
pub fn resolve_path(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<String> {
    resolve_with(cgroups_path, id, systemd, || {
        let text = fs::read(Path::new("/proc/self/cgroup"))?;
        detect::own_cgroup(&text)
            .ok_or_else(|| Error::invalid("cannot find the caller's cgroup in /proc/self/cgroup"))
    })
}

pub(super) fn resolve_with(
    cgroups_path: Option<&str>,
    id: &str,
    systemd: bool,
    own_cgroup: impl FnOnce() -> Result<String>,
) -> Result<String> {
    let raw = cgroups_path.unwrap_or("");
    if raw.contains('\0') {
        return Err(Error::invalid(format!(
            "cgroupsPath {raw:?} contains a NUL byte"
        )));
    }
    if systemd {
        return resolve_systemd(raw, id);
    }
    let joined = if raw.is_empty() {
        check_component(id, raw)?;
        format!("{DEFAULT_PARENT}/{id}")
    } else if raw.starts_with('/') {
        raw.to_string()
    } else {
        if looks_systemd(raw) {
            return Err(Error::invalid(format!(
                "cgroupsPath {raw:?} has the systemd form slice:prefix:name, but the cgroupfs \
                 driver is in use (pass --systemd-cgroup to use systemd paths)"
            )));
        }
        format!("{}/{raw}", own_cgroup()?.trim_end_matches('/'))
    };
    normalise(&joined, raw)
}

fn looks_systemd(raw: &str) -> bool {
    !raw.contains('/') && raw.matches(':').count() == 2
}

/// Collapses `//` and trailing `/`, refuses `.`/`..` and the root.
fn normalise(path: &str, raw: &str) -> Result<String> {
    let mut out = String::with_capacity(path.len() + 1);
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        check_component(comp, raw)?;
        out.push('/');
        out.push_str(comp);
    }
    if out.is_empty() {
        return Err(Error::invalid(format!(
            "cgroupsPath {raw:?} resolves to the root cgroup, which cannot hold a container"
        )));
    }
    Ok(out)
}

fn check_component(comp: &str, raw: &str) -> Result<()> {
    if comp.is_empty() || comp == "." || comp == ".." || comp.contains('/') {
        return Err(Error::invalid(format!(
            "cgroupsPath {raw:?}: invalid path component {comp:?}"
        )));
    }
    if comp.len() > 255 {
        return Err(Error::invalid(format!(
            "cgroupsPath {raw:?}: component longer than 255 bytes"
        )));
    }
    Ok(())
}

fn resolve_systemd(raw: &str, id: &str) -> Result<String> {
    let (slice, prefix, name) = if raw.is_empty() {
        (DEFAULT_SLICE, DEFAULT_SCOPE_PREFIX, id)
    } else {
        let parts: Vec<&str> = raw.split(':').collect();
        if parts.len() != 3 {
            return Err(Error::invalid(format!(
                "cgroupsPath {raw:?}: the systemd cgroup driver expects \"slice:prefix:name\""
            )));
        }
        (parts[0], parts[1], parts[2])
    };
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "cgroupsPath {raw:?}: the unit name is empty"
        )));
    }
    if name.contains('/') || prefix.contains('/') {
        return Err(Error::invalid(format!(
            "cgroupsPath {raw:?}: '/' is not allowed"
        )));
    }
    let unit = if name.ends_with(".slice") {
        expand_slice(name).map_err(|e| Error::invalid(format!("cgroupsPath {raw:?}: {e}")))?;
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let parent =
        expand_slice(slice).map_err(|e| Error::invalid(format!("cgroupsPath {raw:?}: {e}")))?;
    normalise(&format!("{parent}/{unit}"), raw)
}

/// systemd's slice naming: `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`;
/// `-.slice` is the root.
pub(super) fn expand_slice(slice: &str) -> std::result::Result<String, String> {
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err(format!(
            "{slice:?} is not a slice name (must end in .slice)"
        ));
    };
    if slice.contains('/') {
        return Err(format!("slice {slice:?} contains '/'"));
    }
    if base == "-" {
        return Ok(String::new());
    }
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return Err(format!("invalid slice name {slice:?}"));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

/// Checks a path given to [`super::manager`]: absolute and already normalised.
pub(super) fn check_absolute(path: &str) -> Result<()> {
    let ok = path.starts_with('/') && normalise(path, path).map(|n| n == path).unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "cgroup path {path:?} must be absolute and normalised (see cgroups::resolve_path)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgfs(p: Option<&str>) -> Result<String> {
        resolve_with(
            p,
            "ctr1",
            false,
            || Ok("/user.slice/sess.scope".to_string()),
        )
    }
    fn sd(p: Option<&str>) -> Result<String> {
        resolve_with(p, "ctr1", true, || {
            panic!("systemd paths never read the own cgroup")
        })
    }

    #[test]
    fn cgroupfs_forms() {
        assert_eq!(cgfs(Some("/a/b")).unwrap(), "/a/b");
        assert_eq!(cgfs(Some("//a//b/")).unwrap(), "/a/b");
        assert!(cgfs(Some("/a/./b"))
            .unwrap_err()
            .to_string()
            .contains("\".\""));
        assert_eq!(cgfs(Some("a/b")).unwrap(), "/user.slice/sess.scope/a/b");
        assert_eq!(cgfs(None).unwrap(), "/berth/ctr1");
        assert_eq!(cgfs(Some("")).unwrap(), "/berth/ctr1");
        // colons are legal in cgroupfs names when not in the systemd form
        assert_eq!(cgfs(Some("/a:b:c")).unwrap(), "/a:b:c");
    }

    #[test]
    fn relative_at_root_own_cgroup() {
        let r = resolve_with(Some("x"), "id", false, || Ok("/".into())).unwrap();
        assert_eq!(r, "/x");
    }

    #[test]
    fn cgroupfs_invalid() {
        for bad in ["/", "///", "/a/../b", "../x", "/a/..", "/a\0b"] {
            let err = cgfs(Some(bad)).unwrap_err();
            assert!(matches!(err, Error::InvalidSpec(_)), "{bad:?}: {err}");
        }
        let long = format!("/{}", "x".repeat(256));
        assert!(cgfs(Some(&long)).is_err());
        let err = cgfs(Some("system.slice:docker:abc")).unwrap_err();
        assert!(err.to_string().contains("--systemd-cgroup"), "{err}");
        // invalid default id
        assert!(resolve_with(None, "..", false, || Ok("/".into())).is_err());
        assert!(resolve_with(None, "a/b", false, || Ok("/".into())).is_err());
        // own cgroup lookup failures propagate
        assert!(resolve_with(Some("x"), "id", false, || Err(Error::invalid("no"))).is_err());
    }

    #[test]
    fn systemd_forms() {
        assert_eq!(
            sd(Some("system.slice:docker:abc")).unwrap(),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(sd(None).unwrap(), "/system.slice/berth-ctr1.scope");
        assert_eq!(sd(Some(":berth:x")).unwrap(), "/system.slice/berth-x.scope");
        assert_eq!(
            sd(Some("system.slice::x")).unwrap(),
            "/system.slice/x.scope"
        );
        assert_eq!(
            sd(Some("machine-pod1-ab.slice:crio:c1")).unwrap(),
            "/machine.slice/machine-pod1.slice/machine-pod1-ab.slice/crio-c1.scope"
        );
        assert_eq!(sd(Some("-.slice:p:n")).unwrap(), "/p-n.scope");
        assert_eq!(
            sd(Some("user.slice:p:my.slice")).unwrap(),
            "/user.slice/my.slice"
        );
    }

    #[test]
    fn systemd_invalid() {
        for bad in [
            "/a/b",
            "a:b",
            "a:b:c:d",
            "system.slice:p:",
            "notaslice:p:n",
            "-a.slice:p:n",
            "a-.slice:p:n",
            "a--b.slice:p:n",
            ".slice:p:n",
            "system.slice:p/q:n",
            "system.slice:p:n/m",
            "system.slice:p:bad-.slice",
        ] {
            let err = sd(Some(bad)).unwrap_err();
            assert!(matches!(err, Error::InvalidSpec(_)), "{bad:?}: {err}");
        }
    }

    #[test]
    fn slice_expansion() {
        assert_eq!(expand_slice("a-b.slice").unwrap(), "/a.slice/a-b.slice");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "");
        assert!(expand_slice("a.scope").is_err());
    }

    #[test]
    fn absolute_check() {
        assert!(check_absolute("/a/b").is_ok());
        for bad in ["a/b", "/a/b/", "/a//b", "/", "", "/a/../b"] {
            assert!(check_absolute(bad).is_err(), "{bad:?}");
        }
    }
}
