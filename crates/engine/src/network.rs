//! A container's network at start and exit: its endpoints on the default bridge or a user
//! network (a sandbox the runtime joins, `eth0`, then `eth1`... for further networks), `none`,
//! `host`, or another running container's namespace; and the NetworkSettings inspect shows.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use berth_api::container_config::{ContainerConfig, EndpointSettings, HostConfig};
use berth_network::{ports, AttachOptions, PortRequest};

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
    /// A user-defined network, by the name or ID the request used.
    User(String),
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
                None => Ok(NetMode::User(m.to_owned())),
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
    /// On a user network: resolv.conf names the embedded DNS server.
    pub embedded_dns: bool,
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

/// A request's per-network settings as attach options.
fn attach_options(s: Option<&EndpointSettings>, ifname: String, publish: Vec<PortRequest>) -> Result<AttachOptions> {
    let ip = match s.and_then(|s| s.ipam_config.as_ref()).map(|c| c.ipv4_address.as_str()).filter(|a| !a.is_empty()) {
        Some(a) => Some(a.parse::<Ipv4Addr>().map_err(|_| Error::InvalidParameter(format!("invalid IPv4 address: {a}")))?),
        None => None,
    };
    let aliases = s.and_then(|s| s.aliases.clone()).unwrap_or_default();
    let mac = match s.map(|s| s.mac_address.as_str()).filter(|m| !m.is_empty()) {
        Some(m) => Some(berth_network::Endpoint::parse_mac(m)?),
        None => None,
    };
    Ok(AttachOptions { publish, ip, aliases, ifname, mac })
}

type Bridge = Arc<berth_network::Network>;

/// One of a container's networks: its name, the network (None: `host`, `none`, ... or a
/// default bridge turned off), the endpoint while it runs, the request's settings.
pub(crate) type ContainerNetwork = (String, Option<Bridge>, Option<berth_network::Endpoint>, Option<EndpointSettings>);

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
    /// The container's first interface (`eth0`), which carries its published ports.
    pub(crate) fn endpoint(&self, id: &str) -> Option<berth_network::Endpoint> {
        let eps = self.networks.endpoints_of(id);
        eps.iter().find(|(_, e)| e.ifname == "eth0").or(eps.first()).map(|(_, e)| e.clone())
    }

    /// The bridge network a mode names (None: `--bridge none` for the default one).
    fn mode_network(&self, mode: &NetMode) -> Result<Option<Bridge>> {
        Ok(match mode {
            NetMode::Bridge => self.networks.default_bridge().cloned(),
            NetMode::User(n) => Some(self.networks.bridge(n)?),
            _ => None,
        })
    }

    pub(crate) fn is_default_network(&self, n: &Bridge) -> bool {
        self.networks.default_bridge().is_some_and(|d| Arc::ptr_eq(d, n))
    }

    /// Further networks to join (connected ones), in name order, without the mode's own.
    fn extra_networks(&self, rec: &Record, primary: Option<&Bridge>) -> Result<Vec<(Bridge, Option<EndpointSettings>)>> {
        let mut out: Vec<(Bridge, Option<EndpointSettings>)> = Vec::new();
        for (key, s) in &rec.endpoints_config {
            if key == &rec.host_config.network_mode || (key == "default" || key == "bridge") && primary.is_none_or(|p| self.is_default_network(p)) {
                continue;
            }
            let n = self.networks.bridge(key)?;
            if primary.is_some_and(|p| Arc::ptr_eq(p, &n)) || out.iter().any(|(o, _)| Arc::ptr_eq(o, &n)) {
                continue;
            }
            out.push((n, Some(s.clone())));
        }
        Ok(out)
    }

    /// The networks a start joins, in order (the first is `eth0`): the mode's own network
    /// unless disconnected from it, then connected ones.
    fn join_list(&self, rec: &Record) -> Result<Vec<(Bridge, Option<EndpointSettings>)>> {
        let primary = self.mode_network(&NetMode::of(&rec.host_config)?)?;
        let mut out = Vec::new();
        if let Some(p) = primary.as_ref().filter(|_| !rec.mode_disconnected) {
            out.push((p.clone(), rec.endpoints_config.get(&rec.host_config.network_mode).cloned()));
        }
        out.extend(self.extra_networks(rec, primary.as_ref())?);
        Ok(out)
    }

    /// Whether `n` is the network the container's mode names.
    pub(crate) fn is_mode_network(&self, rec: &Record, n: &Bridge) -> bool {
        let mode = NetMode::of(&rec.host_config).ok();
        mode.and_then(|m| self.mode_network(&m).ok().flatten()).is_some_and(|m| Arc::ptr_eq(&m, n))
    }

    /// Create-time check: the mode is known, published ports parse, `--ip` and aliases only
    /// on user networks. A joined container is looked up at start, as Docker
    /// does (it may not exist yet).
    pub(crate) fn validate_network(&self, config: &ContainerConfig, host: &HostConfig, eps: &BTreeMap<String, EndpointSettings>) -> Result<()> {
        let mode = NetMode::of(host)?;
        let reqs = port_requests(config, host)?;
        // A network that does not exist (yet) fails the start, not the create, as with Docker
        // (whose CLI would take a 404 here for a missing image).
        for (key, s) in eps {
            let user = match key.as_str() {
                "default" | "bridge" => false,
                k => self.networks.bridge(k).map(|n| !self.is_default_network(&n)).unwrap_or(true),
            };
            attach_options(Some(s), String::new(), Vec::new())?;
            let fixed_ip = s.ipam_config.as_ref().is_some_and(|c| !c.ipv4_address.is_empty());
            if !user && fixed_ip {
                return Err(Error::InvalidParameter("user specified IP address is supported on user defined networks only".into()));
            }
            if !user && s.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(Error::InvalidParameter("network-scoped alias is supported only for containers in user defined networks".into()));
            }
        }
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
    pub(crate) fn prepare_network(self: &Arc<Self>, rec: &Record) -> Result<Prepared<'_>> {
        let mut p = Prepared { engine: self, id: rec.id.clone(), net_ns: berth_spec::NetNs::New, ip: None, shared_with: None, embedded_dns: false, attached: false };
        match NetMode::of(&rec.host_config)? {
            NetMode::None => {}
            NetMode::Host => p.net_ns = berth_spec::NetNs::Host,
            NetMode::Bridge | NetMode::User(_) => {
                // Nothing to join (`--bridge none`, or disconnected from all): loopback only.
                let list = self.join_list(rec)?;
                // A run that ended without its exit being handled may have left some.
                self.networks.detach_all(&rec.id);
                for (i, (n, s)) in list.iter().enumerate() {
                    // Host networking and `none` publish nothing, as Docker ignores -p there;
                    // ports go on the first interface.
                    let publish = if i == 0 { port_requests(&rec.config, &rec.host_config)? } else { Vec::new() };
                    let mut o = attach_options(s.as_ref(), format!("eth{i}"), publish)?;
                    // Older clients (API < 1.44, the Python SDK) send Config.MacAddress.
                    if i == 0 && o.mac.is_none() && !rec.config.mac_address.is_empty() {
                        o.mac = Some(berth_network::Endpoint::parse_mac(&rec.config.mac_address)?);
                    }
                    let ep = n.attach_with(&rec.id, &o)?;
                    if i == 0 {
                        p.attached = true;
                        p.ip = Some(ep.ip);
                        p.net_ns = berth_spec::NetNs::Path(ep.sandbox);
                    }
                }
                if let Some(sandbox) = self.wants_dns(&rec.id) {
                    self.dns_start(&rec.id, &sandbox)?;
                    p.embedded_dns = true;
                }
            }
            NetMode::Container(c) => {
                let other = self.get(&c)?;
                if other.id == rec.id {
                    return Err(Error::InvalidParameter("cannot join own network namespace".into()));
                }
                if !matches!(other.state.status, Status::Running | Status::Paused) || other.state.pid <= 0 {
                    return Err(Error::Conflict(format!("cannot join network namespace of a non running container: {}", other.id)));
                }
                p.net_ns = berth_spec::NetNs::Path(match self.endpoint(&other.id) {
                    Some(ep) => ep.sandbox,
                    None => PathBuf::from(format!("/proc/{}/ns/net", other.state.pid)),
                });
                p.shared_with = Some(other);
            }
        }
        Ok(p)
    }

    /// Tears a container's endpoints down (veths, sandbox, addresses); no-op without any.
    pub(crate) fn detach_network(&self, id: &str) {
        self.dns_stop(id);
        self.networks.detach_all(id);
    }

    /// Endpoints left by containers that are no longer running (exits while the daemon was
    /// down are handled before this).
    pub(crate) fn restore_network(&self) {
        for n in self.networks.bridges() {
            for id in n.attached() {
                let live = self.get(&id).is_ok_and(|r| matches!(r.state.status, Status::Running | Status::Paused) && r.monitor.is_some());
                if !live {
                    let _ = n.detach(&id);
                }
            }
        }
    }

    /// The networks a container is configured for, with their endpoints while it runs: the
    /// mode's network first, then connected ones.
    pub(crate) fn container_networks(&self, rec: &Record) -> Vec<ContainerNetwork> {
        let mode = NetMode::of(&rec.host_config).unwrap_or(NetMode::None);
        let mut out = Vec::new();
        let own = rec.endpoints_config.get(&rec.host_config.network_mode).cloned();
        let primary = self.mode_network(&mode).ok().flatten();
        match (&mode, &primary) {
            _ if rec.mode_disconnected => {}
            (NetMode::Bridge | NetMode::User(_), Some(n)) => {
                out.push((n.meta().name.clone(), Some(n.clone()), n.endpoint(&rec.id), own));
            }
            // "default" is the bridge network by its name.
            (NetMode::Bridge, None) => out.push(("bridge".into(), None, None, own)),
            _ => out.push((rec.host_config.network_mode.clone(), None, None, own)),
        }
        if matches!(mode, NetMode::Bridge | NetMode::User(_)) {
            for (n, s) in self.extra_networks(rec, primary.as_ref()).unwrap_or_default() {
                out.push((n.meta().name.clone(), Some(n.clone()), n.endpoint(&rec.id), s));
            }
        }
        out
    }

    /// `NetworkSettings.Networks` alone, as `docker ps` lists it (cheaper than the whole).
    pub(crate) fn network_summary(&self, rec: &Record) -> serde_json::Value {
        serde_json::json!({ "Networks": self.network_entries(rec).0 })
    }

    /// Each network the container is on, in inspect's shape, and its sandbox's path.
    fn network_entries(&self, rec: &Record) -> (serde_json::Map<String, serde_json::Value>, Option<String>) {
        let mut networks = serde_json::Map::new();
        let mut sandbox = None;
        for (name, net, ep, req) in self.container_networks(rec) {
            let user = net.as_ref().is_some_and(|n| !self.is_default_network(n));
            let (ip, prefix, gw, mac, eid) = match &ep {
                Some(e) => (e.ip.to_string(), e.prefix_len, e.gateway.to_string(), e.mac.clone(), e.endpoint_id.clone()),
                None => Default::default(),
            };
            if sandbox.is_none() {
                sandbox = ep.as_ref().map(|e| e.sandbox.display().to_string());
            }
            let aliases = req.as_ref().and_then(|r| r.aliases.clone()).filter(|a| !a.is_empty());
            let mut dns_names = None;
            if user {
                let mut d = vec![rec.name.clone()];
                d.extend(aliases.iter().flatten().cloned());
                d.push(rec.short_id().to_owned());
                dns_names = Some(d);
            }
            let ipam = req.as_ref().and_then(|r| r.ipam_config.as_ref()).map(|c| serde_json::json!({ "IPv4Address": c.ipv4_address }));
            networks.insert(name, serde_json::json!({
                "IPAMConfig": ipam, "Links": null, "Aliases": aliases, "MacAddress": mac, "DriverOpts": null,
                "NetworkID": net.as_ref().map(|n| n.id()).unwrap_or_default(), "EndpointID": eid, "Gateway": gw, "IPAddress": ip,
                "IPPrefixLen": prefix, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": dns_names
            }));
        }
        (networks, sandbox)
    }

    /// NetworkSettings in Docker's shape, with the endpoints' real values while it runs.
    pub(crate) fn network_settings(&self, rec: &Record) -> serde_json::Value {
        let is_bridge = matches!(NetMode::of(&rec.host_config), Ok(NetMode::Bridge));
        let (networks, sandbox) = self.network_entries(rec);
        let ep = self.endpoint(&rec.id);
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
            "Bridge": "", "SandboxID": if sandbox.is_some() { rec.id.clone() } else { String::new() }, "SandboxKey": sandbox.unwrap_or_default(),
            "Ports": ports, "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "Networks": networks
        });
        if is_bridge {
            let (ip, prefix, gw, mac, eid) = match &ep {
                Some(e) => (e.ip.to_string(), e.prefix_len, e.gateway.to_string(), e.mac.clone(), e.endpoint_id.clone()),
                None => Default::default(),
            };
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
        assert_eq!(NetMode::of(&h("mynet")).unwrap(), NetMode::User("mynet".into()));
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
