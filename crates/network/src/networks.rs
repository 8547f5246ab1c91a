//! The daemon's networks: the predefined ones (`bridge` when the default bridge exists, `host`,
//! `none`) and user-defined bridge networks, each its own Linux bridge, subnet and nftables
//! table, persisted in `<state>/networks/<id>.json` and brought back when the daemon starts.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::bridge::{check_bridge_name, BridgeNetwork, BridgeOptions, NetworkMeta};
use crate::error::{Error, Result};
use crate::ops::NetOps;
use crate::subnet;

pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// `POST /networks/create`, validated by the caller's parsing and again here.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub created: String,
}

/// A network as the API sees it.
#[derive(Clone)]
pub enum Found<O: NetOps> {
    Bridge(Arc<BridgeNetwork<O>>),
    /// `host` or `none` (driver `host` / `null`): no addresses, no endpoints here.
    Predefined { name: &'static str, driver: &'static str, id: String, created: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct PredefinedIds {
    host: String,
    none: String,
    /// When the daemon first made them (their `Created`).
    #[serde(default)]
    created: String,
}

pub struct Networks<O: NetOps> {
    ops: O,
    default: Option<Arc<BridgeNetwork<O>>>,
    /// By network ID.
    user: Mutex<BTreeMap<String, Arc<BridgeNetwork<O>>>>,
    ids: PredefinedIds,
    dir: PathBuf,
    netns_dir: PathBuf,
}

/// `com.docker.network.driver.mtu`, 1500 without it.
pub(crate) fn mtu_option(options: &BTreeMap<String, String>) -> Result<u32> {
    match options.get(MTU_OPTION) {
        Some(m) => m.parse::<u32>().ok().filter(|m| (68..=65535).contains(m)).ok_or_else(|| Error::InvalidParameter(format!("invalid MTU {m:?}"))),
        None => Ok(1500),
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric()) && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl<O: NetOps + Clone> Networks<O> {
    /// Opens the default bridge (unless `--bridge none`) and every persisted user network. A
    /// user network that cannot be restored is reported and skipped, not fatal.
    pub fn open(ops: O, default: Option<BridgeOptions>, state_dir: &Path, netns_dir: PathBuf, now: &str) -> Result<Networks<O>> {
        let default = match default {
            Some(opts) => Some(Arc::new(BridgeNetwork::open(ops.clone(), opts, state_dir, netns_dir.clone(), now)?)),
            None => None,
        };
        let dir = state_dir.join("networks");
        std::fs::create_dir_all(&dir).map_err(|e| Error::path("create", &dir, e))?;
        let ids_file = state_dir.join("predefined.json");
        let ids = match std::fs::read(&ids_file) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Internal(format!("{}: {e}", ids_file.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ids = PredefinedIds { host: crate::ops::random_id()?, none: crate::ops::random_id()?, created: now.to_owned() };
                let data = serde_json::to_vec(&ids).map_err(|e| Error::Internal(e.to_string()))?;
                std::fs::write(&ids_file, data).map_err(|e| Error::path("write", &ids_file, e))?;
                ids
            }
            Err(e) => return Err(Error::path("read", &ids_file, e)),
        };
        let mut user = BTreeMap::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::path("read", &dir, e))?;
        for f in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")) {
            match BridgeNetwork::load(ops.clone(), f.clone(), netns_dir.clone()) {
                Ok(n) => {
                    user.insert(n.id(), Arc::new(n));
                }
                Err(e) => eprintln!("berthd: network state {}: {e}", f.display()),
            }
        }
        Ok(Networks { ops, default, user: Mutex::new(user), ids, dir, netns_dir })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<BridgeNetwork<O>>>> {
        self.user.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn default_bridge(&self) -> Option<&Arc<BridgeNetwork<O>>> {
        self.default.as_ref()
    }

    /// Every bridge network, the default one first.
    pub fn bridges(&self) -> Vec<Arc<BridgeNetwork<O>>> {
        self.default.iter().cloned().chain(self.lock().values().cloned()).collect()
    }

    /// All networks: predefined first, then user networks by name.
    pub fn all(&self) -> Vec<Found<O>> {
        let mut v: Vec<Found<O>> = self.default.iter().cloned().map(Found::Bridge).collect();
        let created = self.ids.created.clone();
        v.push(Found::Predefined { name: "host", driver: "host", id: self.ids.host.clone(), created: created.clone() });
        v.push(Found::Predefined { name: "none", driver: "null", id: self.ids.none.clone(), created });
        let mut user: Vec<_> = self.lock().values().cloned().collect();
        user.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        v.extend(user.into_iter().map(Found::Bridge));
        v
    }

    /// By full ID, then exact name, then unique ID prefix (as Docker).
    pub fn find(&self, key: &str) -> Result<Found<O>> {
        let all = self.all();
        let id_of = |f: &Found<O>| match f {
            Found::Bridge(b) => b.id(),
            Found::Predefined { id, .. } => id.clone(),
        };
        let name_of = |f: &Found<O>| match f {
            Found::Bridge(b) => b.meta().name.clone(),
            Found::Predefined { name, .. } => (*name).to_owned(),
        };
        if let Some(f) = all.iter().find(|f| id_of(f) == key).or_else(|| all.iter().find(|f| name_of(f) == key)) {
            return Ok(f.clone());
        }
        let mut hits = all.iter().filter(|f| !key.is_empty() && id_of(f).starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(f), None) => Ok(f.clone()),
            (Some(_), Some(_)) => Err(Error::InvalidParameter(format!("network {key} is ambiguous"))),
            _ => Err(Error::NotFound(format!("network {key} not found"))),
        }
    }

    /// A bridge network by name or ID (`host`/`none` are not bridges).
    pub fn bridge(&self, key: &str) -> Result<Arc<BridgeNetwork<O>>> {
        match self.find(key)? {
            Found::Bridge(b) => Ok(b),
            Found::Predefined { name, .. } => Err(Error::Forbidden(format!("container cannot be disconnected from or connected to {name} network"))),
        }
    }

    pub fn create(&self, req: &CreateRequest) -> Result<Arc<BridgeNetwork<O>>> {
        if !valid_name(&req.name) {
            return Err(Error::InvalidParameter(format!("invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.name)));
        }
        let mut user = self.lock();
        let predefined = ["host", "none"].contains(&req.name.as_str()) || (req.name == "bridge" && self.default.is_some());
        if predefined || user.values().any(|n| n.meta().name == req.name) {
            return Err(Error::Conflict(format!("network with name {} already exists", req.name)));
        }
        let mtu = mtu_option(&req.options)?;
        let id = crate::ops::random_id()?;
        let bridge = req.options.get(BRIDGE_NAME_OPTION).cloned().unwrap_or_else(|| format!("br-{}", &id[..12]));
        check_bridge_name(&bridge)?;
        let existing: Vec<Arc<BridgeNetwork<O>>> = self.default.iter().cloned().chain(user.values().cloned()).collect();
        if existing.iter().any(|n| n.name() == bridge) {
            return Err(Error::Conflict(format!("bridge name {bridge} is already in use by another network")));
        }
        let taken: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet()).collect();
        let net = match req.subnet {
            Some(s) => {
                let s = s.trunc();
                if taken.iter().any(|t| overlaps(t, &s)) {
                    return Err(Error::Forbidden("invalid pool request: Pool overlaps with other one on this address space".into()));
                }
                s
            }
            None => {
                if req.gateway.is_some() || req.ip_range.is_some() {
                    return Err(Error::InvalidParameter("gateway and ip-range need a subnet".into()));
                }
                let mut routed = self.ops.host_routes()?;
                routed.extend(taken);
                subnet::pick(&routed)?
            }
        };
        let gw = match req.gateway {
            Some(g) => g,
            None => net.hosts().next().ok_or_else(|| Error::InvalidParameter(format!("subnet {net} has no host addresses")))?,
        };
        let meta = NetworkMeta {
            name: req.name.clone(),
            created: req.created.clone(),
            internal: req.internal,
            labels: req.labels.clone(),
            options: req.options.clone(),
            ip_range: req.ip_range,
            ipam_given: req.subnet.is_some(),
            gateway_given: req.gateway.is_some(),
        };
        let opts = BridgeOptions { name: bridge, bip: None, mtu };
        let file = self.dir.join(format!("{id}.json"));
        let n = Arc::new(BridgeNetwork::assemble(self.ops.clone(), opts, file, self.netns_dir.clone(), id.clone(), meta, (net, gw), BTreeMap::new())?);
        user.insert(id, n.clone());
        Ok(n)
    }

    /// Deletes a user network; predefined ones and networks with endpoints stay.
    pub fn remove(&self, key: &str) -> Result<()> {
        let n = match self.find(key)? {
            Found::Bridge(b) if self.default.as_ref().is_some_and(|d| Arc::ptr_eq(d, &b)) => None,
            Found::Bridge(b) => Some(b),
            Found::Predefined { .. } => None,
        };
        let Some(n) = n else {
            return Err(Error::Forbidden(format!("{key} is a pre-defined network and cannot be removed")));
        };
        let mut user = self.lock();
        n.destroy()?;
        user.remove(&n.id());
        Ok(())
    }

    /// Every bridge network's endpoint for a container.
    pub fn endpoints_of(&self, container_id: &str) -> Vec<(Arc<BridgeNetwork<O>>, crate::ops::Endpoint)> {
        self.bridges().into_iter().filter_map(|n| n.endpoint(container_id).map(|e| (n, e))).collect()
    }

    /// Tears down a container's endpoints on every network (its sandbox goes).
    pub fn detach_all(&self, container_id: &str) {
        for n in self.bridges() {
            let _ = n.detach(container_id);
        }
        // Also when the interface that made it was disconnected earlier.
        crate::sandbox::remove(&self.netns_dir.join(container_id));
    }

    /// At daemon shutdown: bridges and tables of networks without endpoints go (their state
    /// stays, they come back at the next start).
    pub fn shutdown(&self) {
        for n in self.bridges() {
            let _ = n.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::AttachOptions;
    use crate::ops::Fake;

    fn open(d: &Path, ops: &Arc<Fake>) -> Networks<Arc<Fake>> {
        Networks::open(ops.clone(), None, d, d.join("netns"), "t0").unwrap()
    }

    #[test]
    fn create_find_remove_and_restore() {
        let d = tempfile::tempdir().unwrap();
        let ops = Arc::new(Fake::with_routes(&["172.18.0.0/16"]));
        let nets = open(d.path(), &ops);
        let names: Vec<String> = nets.all().iter().map(|f| match f {
            Found::Bridge(b) => b.meta().name.clone(),
            Found::Predefined { name, .. } => name.to_string(),
        }).collect();
        assert_eq!(names, ["host", "none"]);
        let a = nets.create(&CreateRequest { name: "a".into(), ..Default::default() }).unwrap();
        assert_eq!(a.subnet().to_string(), "172.19.0.0/16", "host routes are avoided");
        assert_eq!(a.name(), format!("br-{}", &a.id()[..12]));
        let b = nets.create(&CreateRequest { name: "b".into(), ..Default::default() }).unwrap();
        assert_eq!(b.subnet().to_string(), "172.20.0.0/16", "other networks are avoided");
        assert!(matches!(nets.create(&CreateRequest { name: "a".into(), ..Default::default() }), Err(Error::Conflict(_))));
        assert!(matches!(nets.create(&CreateRequest { name: "none".into(), ..Default::default() }), Err(Error::Conflict(_))));
        assert!(matches!(nets.create(&CreateRequest { name: "-x".into(), ..Default::default() }), Err(Error::InvalidParameter(_))));
        let overlap = CreateRequest { name: "c".into(), subnet: Some("172.19.5.0/24".parse().unwrap()), ..Default::default() };
        assert!(matches!(nets.create(&overlap), Err(Error::Forbidden(_))));
        let opts = [(BRIDGE_NAME_OPTION.to_string(), "mybr0".to_string())].into();
        let c = CreateRequest {
            name: "c".into(),
            internal: true,
            subnet: Some("10.77.0.0/24".parse().unwrap()),
            gateway: Some("10.77.0.254".parse().unwrap()),
            ip_range: Some("10.77.0.128/25".parse().unwrap()),
            options: opts,
            ..Default::default()
        };
        let c = nets.create(&c).unwrap();
        assert_eq!(c.name(), "mybr0");
        let cid = "c".repeat(64);
        let ep = c.attach_with(&cid, &AttachOptions { ifname: "eth0".into(), ..Default::default() }).unwrap();
        assert_eq!(ep.ip.to_string(), "10.77.0.128", "from the range");
        assert!(!ep.default_route, "internal");
        let fixed = AttachOptions { ifname: "eth1".into(), ip: Some("10.19.0.9".parse().unwrap()), aliases: vec!["web".into()], ..Default::default() };
        assert!(a.attach_with(&cid, &fixed).is_err(), "outside the subnet");
        let fixed = AttachOptions { ip: Some("172.19.0.9".parse().unwrap()), ..fixed };
        let e1 = a.attach_with(&cid, &fixed).unwrap();
        assert_eq!((e1.ip.to_string(), e1.ifname.as_str(), e1.default_route), ("172.19.0.9".into(), "eth1", false));
        assert_eq!(nets.endpoints_of(&cid).len(), 2);
        // Found by name, ID and ID prefix.
        assert!(matches!(nets.find(&a.id()[..5]), Ok(Found::Bridge(x)) if x.id() == a.id()));
        assert!(matches!(nets.find("c"), Ok(Found::Bridge(x)) if x.id() == c.id()));
        assert!(matches!(nets.find("nope"), Err(Error::NotFound(_))));
        let e = nets.remove("c").unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)) && e.to_string().contains("has active endpoints"), "{e}");
        assert!(matches!(nets.remove("host"), Err(Error::Forbidden(_))));
        a.disconnect(&cid).unwrap();
        assert!(!ops.lock().links.contains(&e1.veth));
        drop(nets);
        // Restored with their endpoints and options.
        let nets = open(d.path(), &ops);
        let c2 = nets.bridge("c").unwrap();
        assert!(c2.meta().internal);
        assert_eq!(c2.endpoint(&cid).unwrap().ip, ep.ip);
        nets.detach_all(&cid);
        nets.remove("c").unwrap();
        nets.remove("a").unwrap();
        nets.remove(&b.id()).unwrap();
        // ("c" alone could still match an ID prefix.)
        assert!(nets.all().iter().all(|f| !matches!(f, Found::Bridge(b) if b.meta().name == "c")));
        assert!(ops.lock().links.is_empty(), "{:?}", ops.lock().links);
        assert_eq!(std::fs::read_dir(d.path().join("networks")).unwrap().count(), 0);
    }
}
