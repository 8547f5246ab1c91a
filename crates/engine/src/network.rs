//! A container's network at start and exit: the default bridge's endpoint (a sandbox the
//! runtime joins), `none`, `host`, or another running container's namespace; and the
//! NetworkSettings inspect shows.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use berth_api::container_config::{ContainerConfig, HostConfig};
use berth_network::{ports, PortRequest};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::state::Status;
use crate::Engine;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NetMode {
    Bridge,
    None,
    Host,
    Container(String),
}

impl NetMode {
    pub(crate) fn of(host: &HostConfig) -> Result<NetMode> {
        match host.network_mode.as_str() {
            "" | "default" | "bridge" => Ok(NetMode::Bridge),
            "none" => Ok(NetMode::None),
            "host" => Ok(NetMode::Host),
            m => match m.strip_prefix("container:") {
                Some("") => Err(Error::InvalidParameter("Invalid network mode: invalid container format container:<name|id>".into())),
                Some(c) => Ok(NetMode::Container(c.to_owned())),
                None => Err(Error::NotFound(format!("network {m} not found"))),
            },
        }
    }
}

/// What a start prepared: the namespace to join and the address for /etc/hosts. Dropping it
/// without `keep` tears the endpoint down (a start that failed half way).
pub(crate) struct Prepared<'a> {
    engine: &'a Engine,
    id: String,
    pub net_ns: berth_spec::NetNs,
    pub ip: Option<Ipv4Addr>,
    /// `container:` mode: the container whose hostname and /etc files are shared.
    pub shared_with: Option<Record>,
    attached: bool,
}

impl Prepared<'_> {
    pub(crate) fn keep(mut self) {
        self.attached = false;
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        if self.attached {
            self.engine.detach_network(&self.id);
        }
    }
}

/// PortBindings, plus every exposed port without one under `-P`.
fn port_requests(config: &ContainerConfig, host: &HostConfig) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    let bindings = host.port_bindings.clone().unwrap_or_default();
    for (key, list) in &bindings {
        match list.as_deref() {
            Some(l) if !l.is_empty() => {
                for b in l {
                    out.push(ports::request(key, &b.host_ip, &b.host_port)?);
                }
            }
            _ if host.publish_all_ports => out.push(ports::request(key, "", "")?),
            _ => {}
        }
    }
    if host.publish_all_ports {
        for key in config.exposed_ports.iter().flat_map(|p| p.keys()).filter(|k| !bindings.contains_key(*k)) {
            out.push(ports::request(key, "", "")?);
        }
    }
    Ok(out)
}

/// Docker's summary `Ports` for `docker ps`.
pub(crate) fn summary_ports(e: Option<&berth_network::Endpoint>) -> Vec<serde_json::Value> {
    e.map(|e| {
        e.ports
            .iter()
            .map(|m| serde_json::json!({ "IP": m.host_ip.to_string(), "PrivatePort": m.container_port, "PublicPort": m.host_port, "Type": m.proto.as_str() }))
            .collect()
    })
    .unwrap_or_default()
}

impl Engine {
    pub(crate) fn endpoint(&self, id: &str) -> Option<berth_network::Endpoint> {
        self.network.as_ref().and_then(|n| n.endpoint(id))
    }

    /// Create-time check: the mode is known and published ports parse. A joined container
    /// is looked up at start, as Docker does (it may not exist yet).
    pub(crate) fn validate_network(&self, config: &ContainerConfig, host: &HostConfig) -> Result<()> {
        let mode = NetMode::of(host)?;
        let reqs = port_requests(config, host)?;
        if matches!(mode, NetMode::Container(_)) {
            if !reqs.is_empty() {
                return Err(Error::InvalidParameter("conflicting options: port publishing and the container type network mode".into()));
            }
            // The hostname is the joined container's.
            if !config.hostname.is_empty() {
                return Err(Error::InvalidParameter("conflicting options: hostname and the network mode".into()));
            }
        }
        Ok(())
    }

    /// Sets the container's network up for a start.
    pub(crate) fn prepare_network(&self, rec: &Record) -> Result<Prepared<'_>> {
        let mut p = Prepared { engine: self, id: rec.id.clone(), net_ns: berth_spec::NetNs::New, ip: None, shared_with: None, attached: false };
        match NetMode::of(&rec.host_config)? {
            NetMode::None => {}
            NetMode::Host => p.net_ns = berth_spec::NetNs::Host,
            // `--bridge none`: the default network is loopback only.
            NetMode::Bridge if self.network.is_none() => {}
            NetMode::Bridge => {
                let net = self.network.as_ref().expect("checked above");
                // A run that ended without its exit being handled may have left one.
                net.detach(&rec.id)?;
                // Host networking and `none` publish nothing, as Docker ignores -p there.
                let ep = net.attach(&rec.id, &port_requests(&rec.config, &rec.host_config)?)?;
                p.attached = true;
                p.ip = Some(ep.ip);
                p.net_ns = berth_spec::NetNs::Path(ep.sandbox);
            }
            NetMode::Container(c) => {
                let other = self.get(&c)?;
                if other.id == rec.id {
                    return Err(Error::InvalidParameter("cannot join own network namespace".into()));
                }
                if !matches!(other.state.status, Status::Running | Status::Paused) || other.state.pid <= 0 {
                    return Err(Error::Conflict(format!("cannot join network namespace of a non running container: {}", other.id)));
                }
                p.net_ns = berth_spec::NetNs::Path(match self.network.as_ref().and_then(|n| n.endpoint(&other.id)) {
                    Some(ep) => ep.sandbox,
                    None => PathBuf::from(format!("/proc/{}/ns/net", other.state.pid)),
                });
                p.shared_with = Some(other);
            }
        }
        Ok(p)
    }

    /// Tears a container's endpoint down (its veth, sandbox and address); no-op without one.
    pub(crate) fn detach_network(&self, id: &str) {
        if let Some(n) = &self.network {
            let _ = n.detach(id);
        }
    }

    /// Endpoints left by containers that are no longer running (exits while the daemon was
    /// down are handled before this).
    pub(crate) fn restore_network(&self) {
        let Some(n) = &self.network else { return };
        for id in n.attached() {
            let live = self.get(&id).is_ok_and(|r| matches!(r.state.status, Status::Running | Status::Paused) && r.monitor.is_some());
            if !live {
                let _ = n.detach(&id);
            }
        }
    }

    /// NetworkSettings in Docker's shape, with the endpoint's real values while it runs.
    pub(crate) fn network_settings(&self, rec: &Record) -> serde_json::Value {
        let is_bridge = matches!(NetMode::of(&rec.host_config), Ok(NetMode::Bridge));
        // "default" is the bridge network by its name.
        let mode = if is_bridge { "bridge".to_owned() } else { rec.host_config.network_mode.clone() };
        let ep = if is_bridge { self.network.as_ref().and_then(|n| n.endpoint(&rec.id)) } else { None };
        let network_id = if is_bridge { self.network.as_ref().map(|n| n.id()).unwrap_or_default() } else { String::new() };
        let (ip, prefix, gw, mac, eid, key) = match &ep {
            Some(e) => (
                e.ip.to_string(),
                e.prefix_len,
                e.gateway.to_string(),
                e.mac.clone(),
                e.endpoint_id.clone(),
                e.sandbox.display().to_string(),
            ),
            None => Default::default(),
        };
        let network = serde_json::json!({
            "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": mac, "DriverOpts": null,
            "NetworkID": network_id, "EndpointID": eid, "Gateway": gw, "IPAddress": ip, "IPPrefixLen": prefix,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
        });
        let mut ports = serde_json::Map::new();
        if let Some(ep) = &ep {
            for k in rec.config.exposed_ports.iter().flat_map(|p| p.keys()) {
                ports.insert(k.clone(), serde_json::Value::Null);
            }
            for m in &ep.ports {
                let key = format!("{}/{}", m.container_port, m.proto.as_str());
                let entry = ports.entry(key).or_insert_with(|| serde_json::json!([]));
                if !entry.is_array() {
                    *entry = serde_json::json!([]);
                }
                if let Some(a) = entry.as_array_mut() {
                    a.push(serde_json::json!({ "HostIp": m.host_ip.to_string(), "HostPort": m.host_port.to_string() }));
                }
            }
        }
        let mut s = serde_json::json!({
            "Bridge": "", "SandboxID": if ep.is_some() { rec.id.clone() } else { String::new() }, "SandboxKey": key,
            "Ports": ports, "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "Networks": { mode: network }
        });
        if is_bridge {
            for (k, v) in [("EndpointID", eid), ("Gateway", gw), ("IPAddress", ip), ("MacAddress", mac)] {
                s[k] = v.into();
            }
            s["IPPrefixLen"] = prefix.into();
            for k in ["GlobalIPv6Address", "IPv6Gateway"] {
                s[k] = "".into();
            }
            s["GlobalIPv6PrefixLen"] = 0.into();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let h = |m: &str| HostConfig { network_mode: m.into(), ..Default::default() };
        assert_eq!(NetMode::of(&h("")).unwrap(), NetMode::Bridge);
        assert_eq!(NetMode::of(&h("default")).unwrap(), NetMode::Bridge);
        assert_eq!(NetMode::of(&h("none")).unwrap(), NetMode::None);
        assert_eq!(NetMode::of(&h("container:web")).unwrap(), NetMode::Container("web".into()));
        assert!(matches!(NetMode::of(&h("container:")), Err(Error::InvalidParameter(_))));
        assert!(matches!(NetMode::of(&h("mynet")), Err(Error::NotFound(_))));
    }

    #[test]
    fn publish_requests() {
        let config: ContainerConfig = serde_json::from_value(serde_json::json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}}})).unwrap();
        let mut host: HostConfig = serde_json::from_value(serde_json::json!({
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8081"}]}
        }))
        .unwrap();
        let r = port_requests(&config, &host).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].host_ip.to_string(), r[0].host_ports), ("127.0.0.1".into(), Some((8080, 8080))));
        // -P adds every exposed port not bound yet, on any free host port.
        host.publish_all_ports = true;
        let r = port_requests(&config, &host).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].container_port, r[2].proto, r[2].host_ports), (53, berth_network::Proto::Udp, None));
        host.port_bindings = Some([("80/sctp".to_string(), None)].into());
        assert!(port_requests(&config, &host).is_err());
    }
}
