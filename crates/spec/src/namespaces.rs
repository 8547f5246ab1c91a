//! Namespaces from PidMode / IpcMode / UTSMode / NetworkMode / CgroupnsMode, and the sysctls
//! (Docker's defaults for a private network, the request's, validated as runc validates them:
//! only namespaced ones, each in a namespace of the container's own).

use std::collections::HashMap;
use std::path::PathBuf;

use berth_api::container_config::HostConfig;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Error, Result};
use crate::host::HostInfo;
use crate::input::{DaemonDefaults, NetNs};

/// The resolved IPC mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ipc {
    Private,
    Shareable,
    None,
    Host,
    Container,
}

#[derive(Debug, Clone)]
pub(crate) struct Namespaces {
    pub list: Vec<LinuxNamespace>,
    pub ipc: Ipc,
    /// PidMode is private (the init is only added then, as Docker does).
    pub pid_private: bool,
    pub uts_host: bool,
    /// NetworkMode neither `host` nor `container:` (Docker's `IsPrivate`): gets the default
    /// network sysctls.
    pub net_private: bool,
}

impl Namespaces {
    fn has(&self, t: LinuxNamespaceType) -> bool {
        self.list.iter().any(|n| n.typ() == t)
    }
}

fn ns(t: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(t);
    n.set_path(path);
    n
}

fn container_mode(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

pub(crate) fn resolve(
    host: &HostConfig,
    net: &NetNs,
    joins: &[(LinuxNamespaceType, PathBuf)],
    daemon: &DaemonDefaults,
    info: &HostInfo,
    validating: bool,
) -> Result<Namespaces> {
    let ipc_mode = if host.ipc_mode.is_empty() { daemon.default_ipc_mode.as_str() } else { host.ipc_mode.as_str() };
    let ipc = match ipc_mode {
        "private" => Ipc::Private,
        "shareable" => Ipc::Shareable,
        "none" => Ipc::None,
        "host" => Ipc::Host,
        m if container_mode(m).is_some_and(|c| !c.is_empty()) => Ipc::Container,
        m => return Err(Error::invalid(format!("invalid IPC mode: {m}"))),
    };
    let pid = host.pid_mode.as_str();
    if !(pid.is_empty() || pid == "host" || container_mode(pid).is_some_and(|c| !c.is_empty())) {
        return Err(Error::invalid(format!("invalid PID mode: {pid}")));
    }
    let uts = host.uts_mode.as_str();
    if !(uts.is_empty() || uts == "host") {
        return Err(Error::invalid(format!("invalid UTS mode: {uts}")));
    }
    let cgroupns = match host.cgroupns_mode.as_str() {
        "" => daemon.default_cgroupns_mode.as_deref().unwrap_or(if info.cgroup_v2 { "private" } else { "host" }),
        m => m,
    };
    if !["private", "host"].contains(&cgroupns) {
        return Err(Error::invalid(format!("invalid cgroup namespace mode: {}", host.cgroupns_mode)));
    }
    match host.userns_mode.as_str() {
        "" | "host" => {}
        m => return Err(Error::InvalidParameter(format!("user namespaces (UsernsMode {m:?}) are not supported yet"))),
    }
    let net_mode = host.network_mode.as_str();
    if let Some(c) = container_mode(net_mode) {
        if c.is_empty() {
            return Err(Error::invalid("Invalid network mode: invalid container format container:<name|id>"));
        }
        if !validating && !matches!(net, NetNs::Path(_)) {
            return Err(Error::invalid(format!("network mode {net_mode}: the container's network namespace was not resolved")));
        }
    }

    let joined = |t: LinuxNamespaceType| joins.iter().find(|(k, _)| *k == t).map(|(_, p)| p.clone());
    let mut list = vec![ns(LinuxNamespaceType::Mount, None)];
    match net {
        NetNs::Host => {}
        NetNs::New => list.push(ns(LinuxNamespaceType::Network, None)),
        NetNs::Path(p) => list.push(ns(LinuxNamespaceType::Network, Some(p.clone()))),
    }
    if uts != "host" {
        list.push(ns(LinuxNamespaceType::Uts, joined(LinuxNamespaceType::Uts)));
    }
    match (pid, joined(LinuxNamespaceType::Pid)) {
        ("host", _) => {}
        (p, None) if container_mode(p).is_some() && !validating => {
            return Err(Error::invalid(format!("PID mode {p}: the container's pid namespace was not resolved")));
        }
        (_, path) => list.push(ns(LinuxNamespaceType::Pid, path)),
    }
    match (&ipc, joined(LinuxNamespaceType::Ipc)) {
        (Ipc::Host, _) => {}
        (Ipc::Container, None) if !validating => {
            return Err(Error::invalid(format!("IPC mode {ipc_mode}: the container's ipc namespace was not resolved")));
        }
        (_, path) => list.push(ns(LinuxNamespaceType::Ipc, path)),
    }
    if cgroupns == "private" {
        list.push(ns(LinuxNamespaceType::Cgroup, joined(LinuxNamespaceType::Cgroup)));
    }
    Ok(Namespaces {
        list,
        ipc,
        pid_private: pid.is_empty(),
        uts_host: uts == "host",
        net_private: *net != NetNs::Host && net_mode != "host" && container_mode(net_mode).is_none(),
    })
}

/// runc's namespaced IPC sysctls (plus `fs.mqueue.*`).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The spec's sysctls: `kernel.domainname` for a Domainname (Docker has no OCI field for it),
/// Docker's defaults for a private network (ping sockets and low ports without privileges),
/// then the request's, which win. Each must be in a namespace the container owns.
pub(crate) fn sysctls(host: &HostConfig, domainname: &str, ns: &Namespaces, info: &HostInfo) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    if !domainname.is_empty() {
        out.insert("kernel.domainname".to_string(), domainname.to_string());
    }
    if ns.net_private {
        if info.ping_group_range {
            out.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
        }
        if info.unprivileged_port_start {
            out.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        }
    }
    for (k, v) in host.sysctls.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    let mut keys: Vec<&str> = out.keys().map(String::as_str).collect();
    keys.sort_unstable(); // the first bad one, in a stable order
    for k in keys {
        let allowed = if IPC_SYSCTLS.contains(&k) || k.starts_with("fs.mqueue.") {
            if !ns.has(LinuxNamespaceType::Ipc) {
                return Err(Error::invalid(format!("sysctl {k:?} is not allowed in the hosts ipc namespace")));
            }
            true
        } else if k.starts_with("net.") {
            if !ns.has(LinuxNamespaceType::Network) {
                return Err(Error::invalid(format!("sysctl {k:?} not allowed in host network namespace")));
            }
            true
        } else if k == "kernel.hostname" && ns.has(LinuxNamespaceType::Uts) {
            return Err(Error::invalid(format!("sysctl {k:?} is not allowed as it conflicts with the OCI \"hostname\" field")));
        } else {
            k == "kernel.domainname" && ns.has(LinuxNamespaceType::Uts)
        };
        if !allowed {
            return Err(Error::invalid(format!("sysctl {k:?} is not in a separate kernel namespace")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxNamespaceType as T;

    fn hc(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
        let mut h = HostConfig::default();
        f(&mut h);
        h
    }

    fn kinds(n: &Namespaces) -> Vec<(T, Option<PathBuf>)> {
        n.list.iter().map(|n| (n.typ(), n.path().clone())).collect()
    }

    fn resolve_v(h: &HostConfig, net: NetNs, joins: &[(T, PathBuf)], v2: bool) -> Result<Namespaces> {
        let info = HostInfo { cgroup_v2: v2, ..HostInfo::full() };
        resolve(h, &net, joins, &DaemonDefaults::default(), &info, false)
    }

    #[test]
    fn defaults_like_docker() {
        let n = resolve_v(&HostConfig::default(), NetNs::New, &[], false).unwrap();
        assert_eq!(kinds(&n), [(T::Mount, None), (T::Network, None), (T::Uts, None), (T::Pid, None), (T::Ipc, None)]);
        assert_eq!(n.ipc, Ipc::Private);
        assert!(n.pid_private && n.net_private && !n.uts_host);
        // cgroup v2: a private cgroup namespace by default.
        let n = resolve_v(&HostConfig::default(), NetNs::New, &[], true).unwrap();
        assert_eq!(n.list.last().unwrap().typ(), T::Cgroup);
        let n = resolve_v(&hc(|h| h.cgroupns_mode = "host".into()), NetNs::New, &[], true).unwrap();
        assert!(!n.has(T::Cgroup));
        let n = resolve_v(&hc(|h| h.cgroupns_mode = "private".into()), NetNs::New, &[], false).unwrap();
        assert!(n.has(T::Cgroup));
    }

    #[test]
    fn host_and_container_modes() {
        let h = hc(|h| {
            h.pid_mode = "host".into();
            h.ipc_mode = "host".into();
            h.uts_mode = "host".into();
            h.network_mode = "host".into();
        });
        let n = resolve_v(&h, NetNs::Host, &[], false).unwrap();
        assert_eq!(kinds(&n), [(T::Mount, None)]);
        assert!(!n.pid_private && n.uts_host && !n.net_private && n.ipc == Ipc::Host);

        let h = hc(|h| {
            h.pid_mode = "container:abc".into();
            h.ipc_mode = "container:abc".into();
            h.network_mode = "container:abc".into();
        });
        let joins = [(T::Pid, PathBuf::from("/proc/1/ns/pid")), (T::Ipc, PathBuf::from("/proc/1/ns/ipc"))];
        let n = resolve_v(&h, NetNs::Path("/proc/1/ns/net".into()), &joins, false).unwrap();
        assert_eq!(
            kinds(&n),
            [
                (T::Mount, None),
                (T::Network, Some("/proc/1/ns/net".into())),
                (T::Uts, None),
                (T::Pid, Some("/proc/1/ns/pid".into())),
                (T::Ipc, Some("/proc/1/ns/ipc".into())),
            ]
        );
        assert!(!n.pid_private && !n.net_private);
        assert!(resolve_v(&h, NetNs::Path("/x".into()), &joins[..1], false).is_err());
        assert!(resolve_v(&h, NetNs::New, &joins, false).is_err());
        // IpcMode none still gets its own namespace.
        let n = resolve_v(&hc(|h| h.ipc_mode = "none".into()), NetNs::New, &[], false).unwrap();
        assert!(n.has(T::Ipc) && n.ipc == Ipc::None);
    }

    #[test]
    fn invalid_modes_like_docker() {
        let e = |h: HostConfig| resolve_v(&h, NetNs::New, &[], false).unwrap_err().to_string();
        assert_eq!(e(hc(|h| h.ipc_mode = "bogus".into())), "invalid IPC mode: bogus");
        assert_eq!(e(hc(|h| h.ipc_mode = "container:".into())), "invalid IPC mode: container:");
        assert_eq!(e(hc(|h| h.pid_mode = "bogus".into())), "invalid PID mode: bogus");
        assert_eq!(e(hc(|h| h.uts_mode = "private".into())), "invalid UTS mode: private");
        assert_eq!(e(hc(|h| h.cgroupns_mode = "x".into())), "invalid cgroup namespace mode: x");
        assert!(e(hc(|h| h.network_mode = "container:".into())).starts_with("Invalid network mode"));
    }

    #[test]
    fn sysctls_like_docker_and_runc() {
        let info = HostInfo::full();
        let n = resolve_v(&HostConfig::default(), NetNs::New, &[], false).unwrap();
        let h = hc(|h| h.sysctls = Some([("net.ipv4.ip_forward".to_string(), "1".to_string()), ("net.ipv4.ip_unprivileged_port_start".to_string(), "1024".to_string())].into()));
        let s = sysctls(&h, "example.com", &n, &info).unwrap();
        assert_eq!(s["kernel.domainname"], "example.com");
        assert_eq!(s["net.ipv4.ping_group_range"], "0 2147483647");
        assert_eq!(s["net.ipv4.ip_unprivileged_port_start"], "1024", "the request wins");
        assert_eq!(s["net.ipv4.ip_forward"], "1");

        let host_net = resolve_v(&hc(|h| h.network_mode = "host".into()), NetNs::Host, &[], false).unwrap();
        assert!(sysctls(&HostConfig::default(), "", &host_net, &info).unwrap().is_empty());
        assert_eq!(
            sysctls(&h, "", &host_net, &info).unwrap_err().to_string(),
            r#"sysctl "net.ipv4.ip_forward" not allowed in host network namespace"#
        );
        let one = |k: &str| hc(|h| h.sysctls = Some([(k.to_string(), "1".to_string())].into()));
        assert!(sysctls(&one("kernel.shmmax"), "", &n, &info).is_ok());
        assert!(sysctls(&one("fs.mqueue.msg_max"), "", &n, &info).is_ok());
        assert_eq!(
            sysctls(&one("kernel.pid_max"), "", &n, &info).unwrap_err().to_string(),
            r#"sysctl "kernel.pid_max" is not in a separate kernel namespace"#
        );
        assert!(sysctls(&one("kernel.hostname"), "", &n, &info).unwrap_err().to_string().contains("conflicts with the OCI"));
        let host_ipc = resolve_v(&hc(|h| h.ipc_mode = "host".into()), NetNs::New, &[], false).unwrap();
        assert_eq!(
            sysctls(&one("kernel.shmmax"), "", &host_ipc, &info).unwrap_err().to_string(),
            r#"sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace"#
        );
        let host_uts = resolve_v(&hc(|h| h.uts_mode = "host".into()), NetNs::New, &[], false).unwrap();
        assert!(sysctls(&HostConfig::default(), "dom", &host_uts, &info).is_err());
    }
}
