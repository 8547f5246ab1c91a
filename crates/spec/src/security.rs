//! `SecurityOpt` (no-new-privileges, seccomp, apparmor, label, writable-cgroups) and the
//! container's seccomp filter: Docker's default profile (or a given one) filtered by the
//! container's capabilities and the host's architecture, via berth-runtime's data-driven
//! converter of Docker's profile format.

use berth_runtime::seccomp::docker_profile::{docker_default_profile, native_arch, DOCKER_DEFAULT_PROFILE_JSON};
use oci_spec::runtime::LinuxSeccomp;

use crate::error::{Error, Result};

/// What `HostConfig.SecurityOpt` asks for, over the daemon's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SecurityOpts {
    pub no_new_privileges: bool,
    /// `unconfined`, `builtin` or a profile's JSON text (the CLI sends the file's content).
    pub seccomp: Option<String>,
    pub apparmor: Option<String>,
    /// SELinux label options (`label=user:...`, `label=disable`): accepted, not applied.
    pub labels: Vec<String>,
    pub writable_cgroups: Option<bool>,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Docker's `parseSecurityOpt`, with its error messages.
pub(crate) fn parse(opts: &[String], daemon_nnp: bool) -> Result<SecurityOpts> {
    let mut s = SecurityOpts { no_new_privileges: daemon_nnp, ..Default::default() };
    for opt in opts {
        if opt == "no-new-privileges" {
            s.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            s.labels.push("disable".into());
            continue;
        }
        // `key=value`; the old `key:value` form is still accepted.
        let kv = opt.split_once('=').or_else(|| opt.split_once(':'));
        let Some((k, v)) = kv else {
            return Err(Error::invalid(format!("invalid --security-opt 1: {opt:?}")));
        };
        let bad = || Error::invalid(format!("invalid --security-opt 2: {opt:?}"));
        match k {
            "label" => s.labels.push(v.into()),
            "apparmor" => s.apparmor = Some(v.into()),
            "seccomp" => s.seccomp = Some(v.into()),
            "no-new-privileges" => s.no_new_privileges = parse_bool(v).ok_or_else(bad)?,
            "writable-cgroups" => s.writable_cgroups = Some(parse_bool(v).ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    Ok(s)
}

/// The container's `linux.seccomp`: none for privileged containers and `seccomp=unconfined`;
/// else the requested profile, the daemon's, or Docker's default, keeping only the rules that
/// apply to `caps` (the container's bounding set) on this architecture and kernel.
pub(crate) fn seccomp(
    requested: Option<&str>,
    daemon_profile: Option<&str>,
    privileged: bool,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>> {
    if requested == Some("unconfined") || privileged {
        return Ok(None);
    }
    let profile = match (requested, daemon_profile) {
        (Some("builtin"), _) | (None, None) | (None, Some("builtin")) => DOCKER_DEFAULT_PROFILE_JSON,
        (None, Some("unconfined")) => return Ok(None),
        (Some(p), _) | (None, Some(p)) => p,
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(profile) {
        return Err(Error::invalid(format!("Decoding seccomp profile failed: {e}")));
    }
    let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
    docker_default_profile(profile, &caps, native_arch())
        .map(Some)
        .map_err(|e| Error::invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::DOCKER_DEFAULT_CAPS;
    use oci_spec::runtime::LinuxSeccompAction;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn security_opts_like_docker() {
        let o = parse(&s(&["no-new-privileges", "seccomp=unconfined", "apparmor=p", "label=disable"]), false).unwrap();
        assert!(o.no_new_privileges);
        assert_eq!(o.seccomp.as_deref(), Some("unconfined"));
        assert_eq!(o.apparmor.as_deref(), Some("p"));
        assert_eq!(o.labels, ["disable"]);
        assert!(!parse(&s(&["no-new-privileges=false"]), true).unwrap().no_new_privileges);
        assert!(parse(&s(&["no-new-privileges:true"]), false).unwrap().no_new_privileges);
        assert!(parse(&[], true).unwrap().no_new_privileges);
        assert_eq!(parse(&s(&["writable-cgroups=1"]), false).unwrap().writable_cgroups, Some(true));
        // A JSON profile may contain ':' and '=': only the first '=' splits.
        let o = parse(&s(&[r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","a":"b=c"}"#]), false).unwrap();
        assert_eq!(o.seccomp.as_deref(), Some(r#"{"defaultAction":"SCMP_ACT_ALLOW","a":"b=c"}"#));
        assert_eq!(parse(&s(&["bogus"]), false).unwrap_err().to_string(), r#"invalid --security-opt 1: "bogus""#);
        assert_eq!(parse(&s(&["foo=bar"]), false).unwrap_err().to_string(), r#"invalid --security-opt 2: "foo=bar""#);
        assert_eq!(
            parse(&s(&["no-new-privileges=maybe"]), false).unwrap_err().to_string(),
            r#"invalid --security-opt 2: "no-new-privileges=maybe""#
        );
    }

    #[test]
    fn default_profile_follows_the_capabilities() {
        let default: Vec<String> = DOCKER_DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        let p = seccomp(None, None, false, &default).unwrap().unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        let allowed = |p: &LinuxSeccomp, name: &str| {
            p.syscalls().iter().flatten().any(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.names().iter().any(|n| n == name))
        };
        assert!(allowed(&p, "read"));
        assert!(!allowed(&p, "mount"), "mount needs CAP_SYS_ADMIN");
        let mut admin = default.clone();
        admin.push("CAP_SYS_ADMIN".into());
        let p2 = seccomp(None, None, false, &admin).unwrap().unwrap();
        assert!(allowed(&p2, "mount"));
        assert_eq!(seccomp(Some("builtin"), None, false, &default).unwrap().unwrap(), p);
        // The daemon's profile replaces the default; the request's replaces the daemon's.
        let allow_all = r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#;
        let d = seccomp(None, Some(allow_all), false, &default).unwrap().unwrap();
        assert_eq!(d.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(seccomp(Some("builtin"), Some(allow_all), false, &default).unwrap().unwrap(), p);
    }

    #[test]
    fn unconfined_and_privileged_have_none() {
        assert_eq!(seccomp(Some("unconfined"), None, false, &[]).unwrap(), None);
        assert_eq!(seccomp(None, None, true, &[]).unwrap(), None);
        assert_eq!(seccomp(None, Some("unconfined"), false, &[]).unwrap(), None);
    }

    #[test]
    fn bad_profiles_are_invalid_parameters() {
        let e = seccomp(Some("{not json"), None, false, &[]).unwrap_err();
        assert!(e.to_string().starts_with("Decoding seccomp profile failed: "), "{e}");
        let e = seccomp(Some(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#), None, false, &[]).unwrap_err();
        assert!(matches!(e, Error::InvalidParameter(_)));
    }
}
