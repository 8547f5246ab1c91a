//! POSIX rlimits: validated against the inherited hard limits before anything is created, because
//! raising a hard limit needs CAP_SYS_RESOURCE, which the caller may lack.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::error::{Error, Result};

pub fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    (match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::__rlimit_resource_t
}

/// The spec's name of an rlimit ("RLIMIT_NOFILE"), for messages.
fn name(t: PosixRlimitType) -> String {
    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| format!("{t:?}"))
}

fn has_sys_resource() -> bool {
    caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_RESOURCE).unwrap_or(false)
}

pub fn validate(limits: &[PosixRlimit]) -> Result<()> {
    let privileged = has_sys_resource();
    let mut seen = std::collections::HashSet::new();
    for l in limits {
        if !seen.insert(resource(l.typ())) {
            return Err(Error::invalid(format!("rlimit {} listed twice", name(l.typ()))));
        }
        if l.soft() > l.hard() {
            return Err(Error::invalid(format!(
                "rlimit {}: soft limit {} exceeds hard limit {}",
                name(l.typ()),
                l.soft(),
                l.hard()
            )));
        }
        if privileged {
            continue;
        }
        let cur = nix::sys::resource::getrlimit(unsafe_resource(l.typ()))
            .map_err(|e| Error::sys(format!("getrlimit {}", name(l.typ())), e))?;
        if l.hard() > cur.1 {
            return Err(Error::NotPermitted(format!(
                "rlimit {}: hard limit {} is above the inherited hard limit {} and the runtime lacks CAP_SYS_RESOURCE",
                name(l.typ()),
                l.hard(),
                cur.1
            )));
        }
    }
    Ok(())
}

fn unsafe_resource(t: PosixRlimitType) -> nix::sys::resource::Resource {
    // nix's Resource is a repr of the same libc constants.
    use nix::sys::resource::Resource::*;
    use PosixRlimitType::*;
    match t {
        RlimitCpu => RLIMIT_CPU,
        RlimitFsize => RLIMIT_FSIZE,
        RlimitData => RLIMIT_DATA,
        RlimitStack => RLIMIT_STACK,
        RlimitCore => RLIMIT_CORE,
        RlimitRss => RLIMIT_RSS,
        RlimitNproc => RLIMIT_NPROC,
        RlimitNofile => RLIMIT_NOFILE,
        RlimitMemlock => RLIMIT_MEMLOCK,
        RlimitAs => RLIMIT_AS,
        RlimitLocks => RLIMIT_LOCKS,
        RlimitSigpending => RLIMIT_SIGPENDING,
        RlimitMsgqueue => RLIMIT_MSGQUEUE,
        RlimitNice => RLIMIT_NICE,
        RlimitRtprio => RLIMIT_RTPRIO,
        RlimitRttime => RLIMIT_RTTIME,
    }
}

/// Precomputed (resource, soft, hard) triples, applied in the child with setrlimit only.
pub fn plan(limits: &[PosixRlimit]) -> Vec<(libc::__rlimit_resource_t, u64, u64)> {
    limits.iter().map(|l| (resource(l.typ()), l.soft(), l.hard())).collect()
}

pub fn apply(plan: &[(libc::__rlimit_resource_t, u64, u64)]) -> Result<()> {
    for &(res, soft, hard) in plan {
        let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        // SAFETY: valid pointer to a stack rlimit.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(Error::sys(format!("setrlimit {res} to {soft}/{hard}"), nix::errno::Errno::last()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(json: &str) -> Vec<PosixRlimit> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn soft_above_hard_rejected() {
        let l = lim(r#"[{"type":"RLIMIT_NOFILE","soft":10,"hard":5}]"#);
        assert!(validate(&l).unwrap_err().to_string().contains("exceeds hard"));
    }

    #[test]
    fn above_inherited_hard_limit_rejected_without_cap_sys_resource() {
        if has_sys_resource() {
            eprintln!("skipped: this process has CAP_SYS_RESOURCE");
            return;
        }
        let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let l = lim(&format!(r#"[{{"type":"RLIMIT_NOFILE","soft":{h},"hard":{h}}}]"#, h = hard + 1));
        let e = validate(&l).unwrap_err();
        assert!(e.to_string().contains("CAP_SYS_RESOURCE") && e.to_string().contains("RLIMIT_NOFILE"), "{e}");
        let l = lim(&format!(r#"[{{"type":"RLIMIT_NOFILE","soft":{h},"hard":{h}}}]"#, h = hard));
        validate(&l).unwrap();
    }
}
