//! The `/networks` API: create, list, inspect, remove, prune user-defined networks, and
//! connect/disconnect containers (a running container gets or loses an interface at once).

use std::collections::BTreeMap;

use berth_api::container_config::EndpointSettings;
use berth_api::network::{
    ConfigFrom, Ipam, IpamConfig, Network, NetworkConnectRequest, NetworkContainer, NetworkCreateRequest, NetworkDisconnectRequest,
    NetworkPruneResponse,
};
use berth_network::{CreateRequest, Found};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::network::NetMode;
use crate::state::Status;
use crate::{lock, Engine};

type Filters = BTreeMap<String, Vec<String>>;

fn parse<T: std::str::FromStr>(what: &str, v: &str) -> Result<Option<T>> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| Error::InvalidParameter(format!("invalid {what}: {v}")))
}

/// The request as the network crate takes it: only the bridge driver, one IPv4 pool.
fn create_request(req: &NetworkCreateRequest) -> Result<CreateRequest> {
    if req.name.is_empty() {
        return Err(Error::InvalidParameter("network name cannot be empty".into()));
    }
    match req.driver.as_str() {
        "" | "bridge" => {}
        "host" | "null" => return Err(Error::Forbidden(format!("only one instance of \"{}\" network is allowed", req.driver))),
        d => return Err(Error::NotFound(format!("plugin \"{d}\" not found"))),
    }
    if req.enable_ipv6 == Some(true) {
        return Err(Error::InvalidParameter("IPv6 networks are not supported by Berth".into()));
    }
    if req.ingress || !matches!(req.scope.as_str(), "" | "local") {
        return Err(Error::InvalidParameter("only local-scope networks are supported".into()));
    }
    let pools = req.ipam.as_ref().and_then(|i| i.config.clone()).unwrap_or_default();
    if pools.len() > 1 {
        return Err(Error::InvalidParameter("only one IPv4 pool is supported per network".into()));
    }
    let pool = pools.into_iter().next().unwrap_or_default();
    let subnet: Option<ipnet::Ipv4Net> = parse("subnet", &pool.subnet)?;
    let gateway = parse("gateway", &pool.gateway)?;
    let ip_range = parse("ip-range", &pool.ip_range)?;
    if let (Some(s), Some(g)) = (subnet, gateway) {
        if !s.contains(&g) {
            return Err(Error::Forbidden(format!("no matching subnet for gateway {g}")));
        }
    }
    Ok(CreateRequest {
        name: req.name.clone(),
        internal: req.internal,
        labels: req.labels.clone().unwrap_or_default(),
        options: req.options.clone().unwrap_or_default(),
        subnet,
        gateway,
        ip_range,
        created: berth_image::store::time::now_rfc3339(),
    })
}

impl Engine {
    /// Docker's shape; `containers`: the endpoints (inspect), or none (list).
    fn network_view(&self, f: &Found<berth_network::Kernel>, containers: bool) -> Network {
        match f {
            Found::Predefined { name, driver, id, created } => Network {
                name: (*name).into(),
                id: id.clone(),
                created: created.clone(),
                scope: "local".into(),
                driver: (*driver).into(),
                enable_ipv4: true,
                ipam: Ipam { driver: "default".into(), config: Some(Vec::new()), options: None },
                ..Default::default()
            },
            Found::Bridge(n) => {
                let m = n.meta();
                let default = self.networks.default_bridge().is_some_and(|d| std::sync::Arc::ptr_eq(d, n));
                let mut options = m.options.clone();
                if default {
                    options.insert("com.docker.network.bridge.default_bridge".into(), "true".into());
                    options.insert("com.docker.network.bridge.name".into(), n.name().into());
                }
                let mut eps = BTreeMap::new();
                if containers {
                    let names: BTreeMap<String, String> = lock(&self.containers).values().map(|r| (r.id.clone(), r.name.clone())).collect();
                    for e in n.endpoints() {
                        eps.insert(e.container_id.clone(), NetworkContainer {
                            name: names.get(&e.container_id).cloned().unwrap_or_default(),
                            endpoint_id: e.endpoint_id.clone(),
                            mac_address: e.mac.clone(),
                            ipv4_address: format!("{}/{}", e.ip, e.prefix_len),
                            ipv6_address: String::new(),
                        });
                    }
                }
                let cfg = IpamConfig {
                    subnet: n.subnet().to_string(),
                    ip_range: m.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                    gateway: if m.ipam_given && !m.gateway_given { String::new() } else { n.gateway().to_string() },
                    auxiliary_addresses: None,
                };
                Network {
                    name: m.name.clone(),
                    id: n.id(),
                    created: m.created.clone(),
                    scope: "local".into(),
                    driver: "bridge".into(),
                    enable_ipv4: true,
                    ipam: Ipam { driver: "default".into(), config: Some(vec![cfg]), options: (!default).then(BTreeMap::new) },
                    internal: m.internal,
                    config_from: ConfigFrom::default(),
                    containers: eps,
                    options,
                    labels: m.labels.clone(),
                    ..Default::default()
                }
            }
        }
    }

    pub fn network_create(&self, req: &NetworkCreateRequest) -> Result<String> {
        let c = create_request(req)?;
        let n = self.networks.create(&c)?;
        self.network_event("create", &n.id(), &c.name);
        Ok(n.id())
    }

    fn network_event(&self, action: &str, id: &str, name: &str) {
        let attrs = [("name".to_string(), name.to_string()), ("type".to_string(), "bridge".to_string())].into();
        self.events.emit("network", action, id, attrs);
    }

    pub fn network_inspect(&self, key: &str) -> Result<Network> {
        Ok(self.network_view(&self.networks.find(key)?, true))
    }

    fn network_matches(&self, f: &Found<berth_network::Kernel>, v: &Network, filters: &Filters) -> Result<bool> {
        for k in filters.keys() {
            if !["dangling", "driver", "id", "label", "name", "scope", "type"].contains(&k.as_str()) {
                return Err(Error::InvalidParameter(format!("invalid filter '{k}'")));
            }
        }
        let any = |k: &str, pred: &dyn Fn(&str) -> bool| filters.get(k).is_none_or(|vs| vs.iter().any(|x| pred(x)));
        let builtin = matches!(f, Found::Predefined { .. }) || self.networks.default_bridge().is_some_and(|d| v.id == d.id());
        for t in filters.get("type").into_iter().flatten() {
            if !["custom", "builtin"].contains(&t.as_str()) {
                return Err(Error::InvalidParameter(format!("invalid filter: 'type'='{t}'")));
            }
        }
        let dangling = match filters.get("dangling").and_then(|d| d.first()).map(String::as_str) {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(d) => return Err(Error::InvalidParameter(format!("invalid filter 'dangling={d}'"))),
        };
        let unused = match f {
            Found::Bridge(n) => n.attached().is_empty(),
            Found::Predefined { .. } => true,
        };
        Ok(any("name", &|x| v.name.contains(x))
            && any("id", &|x| v.id.starts_with(x))
            && any("driver", &|x| v.driver == x)
            && any("scope", &|x| x == "local")
            && any("type", &|x| (x == "builtin") == builtin)
            && dangling.is_none_or(|d| !builtin && d == unused)
            && crate::volumes::labels_match(&v.labels, filters.get("label")))
    }

    pub fn network_list(&self, filters: &Filters) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        for f in self.networks.all() {
            let v = self.network_view(&f, false);
            if self.network_matches(&f, &v, filters)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    pub fn network_remove(&self, key: &str) -> Result<()> {
        let v = self.network_view(&self.networks.find(key)?, false);
        self.networks.remove(key)?;
        self.network_event("destroy", &v.id, &v.name);
        Ok(())
    }

    /// Removes every user network no container uses (nor is configured for).
    pub fn network_prune(&self, filters: &Filters) -> Result<NetworkPruneResponse> {
        for k in filters.keys() {
            if !["label", "label!", "until"].contains(&k.as_str()) {
                return Err(Error::InvalidParameter(format!("invalid filter '{k}'")));
            }
        }
        let mut deleted = Vec::new();
        for f in self.networks.all() {
            let Found::Bridge(n) = &f else { continue };
            if self.networks.default_bridge().is_some_and(|d| d.id() == n.id()) || !n.attached().is_empty() {
                continue;
            }
            let v = self.network_view(&f, false);
            let unwanted = filters.get("label!").is_some_and(|ls| ls.iter().any(|l| crate::volumes::labels_match(&v.labels, Some(&vec![l.clone()]))));
            if unwanted || !crate::volumes::labels_match(&v.labels, filters.get("label")) {
                continue;
            }
            let configured = self.records().iter().any(|r| self.container_networks(r).iter().any(|(_, net, _, _)| net.as_ref().is_some_and(|x| x.id() == n.id())));
            if configured {
                continue;
            }
            if self.networks.remove(&n.id()).is_ok() {
                self.network_event("destroy", &v.id, &v.name);
                deleted.push(v.name);
            }
        }
        Ok(NetworkPruneResponse { networks_deleted: Some(deleted) })
    }

    /// Adds a network to a container: at once (a new interface) if it runs, at its next start
    /// otherwise; kept in its record for later starts either way.
    pub fn network_connect(self: &Arc<Self>, key: &str, req: &NetworkConnectRequest) -> Result<()> {
        let n = self.networks.bridge(key)?;
        let id = self.resolve(&req.container)?;
        let op = self.op_lock(&id);
        let _g = lock(&op);
        let rec = self.get(&id)?;
        let mode = NetMode::of(&rec.host_config)?;
        if !matches!(mode, NetMode::Bridge | NetMode::User(_)) {
            return Err(Error::Forbidden(format!("container sharing network namespace with another container or host cannot be connected to any other network ({})", rec.host_config.network_mode)));
        }
        let settings: EndpointSettings = req.endpoint_config.clone().unwrap_or_default();
        let name = n.meta().name.clone();
        let already = self.container_networks(&rec).iter().any(|(_, net, _, _)| net.as_ref().is_some_and(|x| x.id() == n.id()));
        if already {
            return Err(Error::Forbidden(format!("endpoint with name {} already exists in network {name}", rec.name)));
        }
        let eps = [(name.clone(), settings.clone())].into();
        self.validate_network(&rec.config, &rec.host_config, &eps)?;
        let running = matches!(rec.state.status, Status::Running | Status::Paused);
        if running && self.endpoint(&id).is_none() {
            // On the default network with `--bridge none`: loopback only, no sandbox to join.
            return Err(Error::Forbidden(format!("container {} has no network sandbox to connect to {name} (the default bridge is disabled); connect it while stopped", rec.name)));
        }
        if running {
            let used: Vec<String> = self.networks.endpoints_of(&id).into_iter().map(|(_, e)| e.ifname).collect();
            let ifname = (1..).map(|i| format!("eth{i}")).find(|n| !used.contains(n)).expect("unbounded");
            let fixed = settings.ipam_config.as_ref().map(|c| c.ipv4_address.clone()).filter(|a| !a.is_empty());
            let ip = fixed.map(|a| a.parse().map_err(|_| Error::InvalidParameter(format!("invalid IPv4 address: {a}")))).transpose()?;
            let mac = match settings.mac_address.as_str() {
                "" => None,
                m => Some(berth_network::Endpoint::parse_mac(m)?),
            };
            let opts = berth_network::AttachOptions { publish: Vec::new(), ip, aliases: settings.aliases.clone().unwrap_or_default(), ifname, mac };
            n.attach_with(&id, &opts)?;
        }
        let dns = if running { self.wants_dns(&id).map(|sandbox| self.dns_start(&id, &sandbox)) } else { None };
        let mode_net = self.is_mode_network(&rec, &n);
        let saved = self.update(&id, |r| {
            if mode_net {
                r.mode_disconnected = false;
                r.endpoints_config.insert(r.host_config.network_mode.clone(), settings);
            } else {
                r.endpoints_config.insert(name.clone(), settings);
            }
            Ok(())
        });
        if let Err(e) = saved.and(dns.unwrap_or(Ok(()))) {
            if running {
                let _ = n.disconnect(&id);
            }
            return Err(e);
        }
        self.emit_network_change("connect", &n.id(), &name, &id);
        Ok(())
    }

    fn emit_network_change(&self, action: &str, net_id: &str, net_name: &str, container: &str) {
        let attrs = [
            ("name".to_string(), net_name.to_string()),
            ("type".to_string(), "bridge".to_string()),
            ("container".to_string(), container.to_string()),
        ]
        .into();
        self.events.emit("network", action, net_id, attrs);
    }

    /// Removes a network from a container (its interface at once if it runs).
    pub fn network_disconnect(&self, key: &str, req: &NetworkDisconnectRequest) -> Result<()> {
        let n = self.networks.bridge(key)?;
        let id = match self.resolve(&req.container) {
            Ok(id) => id,
            // Force: a container that is gone still loses its endpoint.
            Err(_) if req.force && n.endpoint(&req.container).is_some() => {
                n.detach(&req.container)?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let op = self.op_lock(&id);
        let _g = lock(&op);
        let rec = self.get(&id)?;
        let listed = self.container_networks(&rec);
        if !listed.iter().any(|(_, net, _, _)| net.as_ref().is_some_and(|x| x.id() == n.id())) {
            return Err(Error::Forbidden(format!("container {} is not connected to network {}", rec.name, n.meta().name)));
        }
        let mode_net = self.is_mode_network(&rec, &n);
        if n.endpoint(&id).is_some() {
            n.disconnect(&id)?;
        }
        let net_id = n.id();
        self.update(&id, |r| {
            // Later starts leave the mode's network out (its settings are kept for a reconnect).
            if mode_net {
                r.mode_disconnected = true;
                return Ok(());
            }
            let keys: Vec<String> = r.endpoints_config.keys().cloned().collect();
            for k in keys {
                if self.networks.bridge(&k).is_ok_and(|x| x.id() == net_id) {
                    r.endpoints_config.remove(&k);
                }
            }
            Ok(())
        })?;
        self.emit_network_change("disconnect", &net_id, &n.meta().name, &id);
        Ok(())
    }
}
