//! Capabilities: Docker's 14 defaults, tweaked by CapAdd/CapDrop (names with or without
//! `CAP_`, any case, `ALL`), everything for `--privileged`; always within the host's bounding
//! set. Sets are bit masks by capability number.

use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::error::{Error, Result};

/// Docker's default capabilities (moby `caps.DefaultCapabilities`).
pub const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Capability number of a full name (`CAP_CHOWN`), if the name is known.
fn index(full: &str) -> Option<u8> {
    caps::Capability::from_str(full).ok().map(|c| c.index())
}

fn mask_of(names: &[&str]) -> u64 {
    names.iter().filter_map(|n| index(n)).fold(0, |m, i| m | 1 << i)
}

/// Every capability this build knows, as a mask.
fn all_known() -> u64 {
    caps::all().into_iter().fold(0, |m, c| m | 1 << c.index())
}

/// `CapAdd`/`CapDrop` entries, upper-cased and `CAP_`-prefixed as Docker normalises them;
/// `Ok(None)` stands for `ALL`. An unknown name is Docker's "unknown capability".
fn normalize(list: &[String], field: &str) -> Result<(u64, bool)> {
    let mut mask = 0;
    let mut all = false;
    for c in list {
        let up = c.to_ascii_uppercase();
        if up == "ALL" {
            all = true;
            continue;
        }
        let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
        match index(&full) {
            Some(i) => mask |= 1 << i,
            None => return Err(Error::invalid(format!("invalid {field}: unknown capability: {full:?}"))),
        }
    }
    Ok((mask, all))
}

/// The container's capability mask (Docker's `TweakCapabilities`), limited to `host_bounding`:
/// privileged and `ALL` grant what the host has; a capability added by name that the host
/// lacks is an error (it could never be granted); a default one the host lacks is left out with
/// a warning.
pub(crate) fn effective_mask(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    host_bounding: u64,
    warnings: &mut Vec<String>,
) -> Result<u64> {
    // Validated even when privileged, as Docker validates them at create.
    let (add, add_all) = normalize(cap_add, "CapAdd")?;
    let (drop, drop_all) = normalize(cap_drop, "CapDrop")?;
    let everything = all_known() & host_bounding;
    let caps = if privileged {
        everything
    } else if add_all {
        everything & !drop
    } else if drop_all {
        add
    } else {
        (mask_of(&DOCKER_DEFAULT_CAPS) & !drop) | add
    };
    // Named additions only count where they decide (not next to --privileged or ALL).
    let missing = if privileged || add_all { 0 } else { add & !host_bounding };
    if missing != 0 {
        return Err(Error::invalid(format!(
            "invalid CapAdd: not in the host's capability bounding set: {}",
            names(missing).join(", ")
        )));
    }
    let lost = caps & !host_bounding;
    if lost != 0 {
        warnings.push(format!(
            "Capabilities not in the host's bounding set were not granted: {}",
            names(lost).join(", ")
        ));
    }
    Ok(caps & host_bounding)
}

/// Full names (`CAP_CHOWN`) of a mask, by number.
pub(crate) fn names(mask: u64) -> Vec<String> {
    let mut all = caps::all().into_iter().collect::<Vec<_>>();
    all.sort_by_key(|c| c.index());
    all.into_iter().filter(|c| mask & (1 << c.index()) != 0).map(|c| c.to_string()).collect()
}

fn oci_set(mask: u64) -> Result<Capabilities> {
    names(mask)
        .iter()
        .map(|n| {
            Capability::from_str(n.trim_start_matches("CAP_"))
                .map_err(|_| Error::invalid(format!("capability {n} has no OCI name")))
        })
        .collect()
}

/// The OCI sets Docker writes: bounding, effective and permitted all equal for root; a
/// non-root user keeps only the bounding set (it gains capabilities through setuid/file
/// capabilities at execve, not by default). Inheritable and ambient stay empty.
pub(crate) fn linux_capabilities(mask: u64, uid: u32) -> Result<LinuxCapabilities> {
    let set = oci_set(mask)?;
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(set.clone()));
    if uid == 0 {
        c.set_effective(Some(set.clone()));
        c.set_permitted(Some(set));
    } else {
        c.set_effective(None);
        c.set_permitted(None);
    }
    c.set_inheritable(None);
    c.set_ambient(None);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = (1 << 41) - 1;
    /// This VM's bounding set: no CAP_SYS_RESOURCE (24).
    const NO_SYS_RESOURCE: u64 = 0x1fffeffffff;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_are_dockers_14() {
        let m = effective_mask(&[], &[], false, ALL, &mut vec![]).unwrap();
        assert_eq!(m, 0xa80425fb, "Docker's CapEff");
        assert_eq!(names(m).len(), 14);
    }

    #[test]
    fn add_and_drop_any_spelling() {
        let m = effective_mask(&s(&["net_admin", "CAP_SYS_PTRACE"]), &s(&["chown", "Cap_Kill"]), false, ALL, &mut vec![]).unwrap();
        let n = names(m);
        assert!(n.contains(&"CAP_NET_ADMIN".into()) && n.contains(&"CAP_SYS_PTRACE".into()));
        assert!(!n.contains(&"CAP_CHOWN".into()) && !n.contains(&"CAP_KILL".into()));
        assert_eq!(n.len(), 14);
        // Drop ALL: only what is added.
        let m = effective_mask(&s(&["chown"]), &s(&["all"]), false, ALL, &mut vec![]).unwrap();
        assert_eq!(names(m), ["CAP_CHOWN"]);
        // Add ALL: everything the host has but the drops.
        let m = effective_mask(&s(&["ALL"]), &s(&["SYS_ADMIN"]), false, NO_SYS_RESOURCE, &mut vec![]).unwrap();
        assert_eq!(m, NO_SYS_RESOURCE & !(1 << 21));
    }

    #[test]
    fn privileged_gets_the_host_bounding_set() {
        assert_eq!(effective_mask(&[], &s(&["ALL"]), true, NO_SYS_RESOURCE, &mut vec![]).unwrap(), NO_SYS_RESOURCE);
        assert_eq!(effective_mask(&[], &[], true, ALL, &mut vec![]).unwrap(), ALL);
    }

    #[test]
    fn errors_like_docker() {
        let e = effective_mask(&s(&["CAP_FOO"]), &[], false, ALL, &mut vec![]).unwrap_err();
        assert_eq!(e.to_string(), r#"invalid CapAdd: unknown capability: "CAP_FOO""#);
        let e = effective_mask(&[], &s(&["bar"]), false, ALL, &mut vec![]).unwrap_err();
        assert_eq!(e.to_string(), r#"invalid CapDrop: unknown capability: "CAP_BAR""#);
        let e = effective_mask(&s(&["SYS_RESOURCE"]), &[], false, NO_SYS_RESOURCE, &mut vec![]).unwrap_err();
        assert!(e.to_string().contains("CAP_SYS_RESOURCE"), "{e}");
        // A default the host lacks is dropped with a warning.
        let mut w = vec![];
        let m = effective_mask(&[], &[], false, ALL & !(1 << 27), &mut w).unwrap();
        assert_eq!(m, 0xa80425fb & !(1 << 27));
        assert!(w[0].contains("CAP_MKNOD"), "{w:?}");
    }

    #[test]
    fn oci_sets_by_user() {
        let m = effective_mask(&[], &[], false, ALL, &mut vec![]).unwrap();
        let root = linux_capabilities(m, 0).unwrap();
        assert_eq!(root.bounding().as_ref().unwrap().len(), 14);
        assert_eq!(root.effective(), root.bounding());
        assert_eq!(root.permitted(), root.bounding());
        assert!(root.inheritable().is_none() && root.ambient().is_none());
        let user = linux_capabilities(m, 1000).unwrap();
        assert_eq!(user.bounding().as_ref().unwrap().len(), 14);
        assert!(user.effective().is_none() && user.permitted().is_none());
        // Every capability the caps crate knows has an OCI name.
        assert_eq!(linux_capabilities(ALL, 0).unwrap().bounding().as_ref().unwrap().len(), names(ALL).len());
    }
}
