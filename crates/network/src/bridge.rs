//! A bridge network (the default bridge or a user-defined one): its subnet (chosen once,
//! persisted), its address pool and the endpoints of the containers attached to it,
//! persisted so a restarted daemon keeps them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ipam::Pool;
use crate::firewall;
use crate::ops::{Endpoint, NetOps};
use crate::ports::{self, PortMapping, PortRequest};
use crate::subnet;

/// berthd's `--bridge`, `--bip` and `--mtu`, as dockerd's.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    pub name: String,
    /// Gateway address with prefix (e.g. 10.20.0.1/24); chosen from free pools when None.
    pub bip: Option<String>,
    pub mtu: u32,
}

impl Default for BridgeOptions {
    fn default() -> BridgeOptions {
        BridgeOptions { name: "berth0".into(), bip: None, mtu: 1500 }
    }
}

/// What the API shows of a network beyond its addresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkMeta {
    /// The API's name ("bridge" for the default bridge).
    pub name: String,
    pub created: String,
    /// No default route and no masquerade: containers reach only each other.
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Addresses are handed out from this part of the subnet only.
    pub ip_range: Option<Ipv4Net>,
    /// Whether the subnet came from the request.
    pub ipam_given: bool,
    /// Whether the gateway did (with a given subnet, inspect shows only what was given).
    #[serde(default)]
    pub gateway_given: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Persisted {
    /// The network's ID (Docker's NetworkID), kept across restarts.
    id: String,
    bridge: String,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    endpoints: BTreeMap<String, Endpoint>,
    #[serde(default)]
    meta: NetworkMeta,
}

struct Inner {
    pool: Pool,
    endpoints: BTreeMap<String, Endpoint>,
}

/// How a container joins a network.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub publish: Vec<PortRequest>,
    /// A fixed address (`--ip`); from the pool when None.
    pub ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
    /// `eth0` creates the sandbox; `eth1`... join it.
    pub ifname: String,
    /// `--mac-address`; Docker's 02:42:<ip> when None.
    pub mac: Option<[u8; 6]>,
}

pub struct BridgeNetwork<O: NetOps> {
    ops: O,
    opts: BridgeOptions,
    state_file: PathBuf,
    netns_dir: PathBuf,
    id: String,
    meta: NetworkMeta,
    inner: Mutex<Inner>,
}

/// The default bridge is a bridge network with the daemon's options.
pub type DefaultBridge<O> = BridgeNetwork<O>;

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| Error::path("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::path("rename", &tmp, e))
}

pub(crate) fn check_bridge_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
        return Err(Error::InvalidParameter(format!("invalid bridge name {name:?}")));
    }
    Ok(())
}

impl<O: NetOps> BridgeNetwork<O> {
    /// Loads the persisted network (its subnet stays the same across restarts unless `bip`
    /// changes it), or picks a subnet; then makes sure the bridge exists.
    /// `now`: the creation time shown when the network is new.
    pub fn open(ops: O, opts: BridgeOptions, state_dir: &Path, netns_dir: PathBuf, now: &str) -> Result<BridgeNetwork<O>> {
        check_bridge_name(&opts.name)?;
        if !(68..=65535).contains(&opts.mtu) {
            return Err(Error::InvalidParameter(format!("invalid MTU {}", opts.mtu)));
        }
        std::fs::create_dir_all(state_dir).map_err(|e| Error::path("create", state_dir, e))?;
        let state_file = state_dir.join("bridge.json");
        let saved: Option<Persisted> = match std::fs::read(&state_file) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| Error::Internal(format!("{}: {e}", state_file.display())))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::path("read", &state_file, e)),
        };
        let id = match &saved {
            Some(s) => s.id.clone(),
            None => crate::ops::random_id()?,
        };
        let saved_created = saved.as_ref().map(|s| s.meta.created.clone()).filter(|c| !c.is_empty());
        let wanted = opts.bip.as_deref().map(subnet::parse_bip).transpose()?;
        let (net, gw, endpoints) = match (saved, wanted) {
            // Endpoints keep their addresses: a changed bip applies once they are gone.
            (Some(s), _) if s.bridge == opts.name && !s.endpoints.is_empty() => (s.subnet, s.gateway, s.endpoints),
            (_, Some((n, g))) => (n, g, BTreeMap::new()),
            (Some(s), None) if s.bridge == opts.name => (s.subnet, s.gateway, BTreeMap::new()),
            _ => {
                let n = subnet::pick(&ops.host_routes()?)?;
                (n, n.hosts().next().ok_or_else(|| Error::Internal(format!("{n} has no hosts")))?, BTreeMap::new())
            }
        };
        let created = saved_created.unwrap_or_else(|| now.to_owned());
        let meta = NetworkMeta { name: "bridge".into(), created, ..Default::default() };
        Self::assemble(ops, opts, state_file, netns_dir, id, meta, (net, gw), endpoints)
    }

    /// A user-defined network: created (`endpoints` empty) or loaded from its state file.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        ops: O,
        opts: BridgeOptions,
        state_file: PathBuf,
        netns_dir: PathBuf,
        id: String,
        meta: NetworkMeta,
        (net, gw): (Ipv4Net, Ipv4Addr),
        endpoints: BTreeMap<String, Endpoint>,
    ) -> Result<BridgeNetwork<O>> {
        let mut pool = Pool::new(net, gw)?.with_range(meta.ip_range)?;
        for ep in endpoints.values() {
            pool.reserve(ep.ip)?;
        }
        let gw_net = Ipv4Net::new(gw, net.prefix_len()).map_err(|e| Error::Internal(e.to_string()))?;
        ops.ensure_bridge(&opts.name, gw_net, opts.mtu)?;
        let b = BridgeNetwork { ops, opts, state_file, netns_dir, id, meta, inner: Mutex::new(Inner { pool, endpoints }) };
        let applied = {
            let inner = b.lock();
            b.apply_firewall(&inner).and_then(|_| b.save(&inner))
        };
        if let Err(e) = applied {
            let _ = b.shutdown();
            return Err(e);
        }
        Ok(b)
    }

    /// Loads a persisted user network.
    pub(crate) fn load(ops: O, state_file: PathBuf, netns_dir: PathBuf) -> Result<BridgeNetwork<O>> {
        let b = std::fs::read(&state_file).map_err(|e| Error::path("read", &state_file, e))?;
        let p: Persisted = serde_json::from_slice(&b).map_err(|e| Error::Internal(format!("{}: {e}", state_file.display())))?;
        let mtu = crate::networks::mtu_option(&p.meta.options)?;
        let opts = BridgeOptions { name: p.bridge, bip: None, mtu };
        Self::assemble(ops, opts, state_file, netns_dir, p.id, p.meta, (p.subnet, p.gateway), p.endpoints)
    }

    pub fn meta(&self) -> &NetworkMeta {
        &self.meta
    }

    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.lock().endpoints.values().cloned().collect()
    }

    /// Deletes the network: its bridge, its table and its state file. Refused while
    /// containers are attached.
    pub(crate) fn destroy(&self) -> Result<()> {
        if !self.shutdown()? {
            return Err(Error::Forbidden(format!("error while removing network: network {} has active endpoints", self.meta.name)));
        }
        std::fs::remove_file(&self.state_file).map_err(|e| Error::path("remove", &self.state_file, e))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, inner: &Inner) -> Result<()> {
        let p = Persisted {
            id: self.id.clone(),
            bridge: self.opts.name.clone(),
            subnet: inner.pool.subnet(),
            gateway: inner.pool.gateway(),
            endpoints: inner.endpoints.clone(),
            meta: self.meta.clone(),
        };
        write_atomic(&self.state_file, &serde_json::to_vec(&p).map_err(|e| Error::Internal(e.to_string()))?)
    }

    pub fn id(&self) -> String {
        self.id.clone()
    }

    fn apply_firewall(&self, inner: &Inner) -> Result<()> {
        self.ops.apply_firewall(&firewall::ruleset(&self.opts.name, inner.pool.subnet(), self.meta.internal, inner.endpoints.values()))
    }

    pub fn name(&self) -> &str {
        &self.opts.name
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.lock().pool.subnet()
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.lock().pool.gateway()
    }

    pub fn ops(&self) -> &O {
        &self.ops
    }

    /// Gives a container an address, a configured sandbox and its published ports; host ports
    /// are checked before anything is created, and everything is undone on failure.
    pub fn attach(&self, container_id: &str, publish: &[PortRequest]) -> Result<Endpoint> {
        self.attach_with(container_id, &AttachOptions { publish: publish.to_vec(), ifname: "eth0".into(), ..Default::default() })
    }

    pub fn attach_with(&self, container_id: &str, o: &AttachOptions) -> Result<Endpoint> {
        let mut inner = self.lock();
        if inner.endpoints.contains_key(container_id) {
            return Err(Error::Forbidden(format!("endpoint with name {} already exists in network {}", &container_id[..container_id.len().min(12)], self.meta.name)));
        }
        let taken: Vec<PortMapping> = inner.endpoints.values().flat_map(|e| e.ports.iter().copied()).collect();
        let mapped = ports::resolve(&o.publish, &taken, &|p, ip, port| self.ops.probe_port(p, ip, port))?;
        let ip = match o.ip {
            Some(ip) => {
                inner.pool.reserve(ip)?;
                ip
            }
            None => inner.pool.allocate()?,
        };
        let mac = o.mac.unwrap_or_else(|| Endpoint::mac_for(ip));
        let endpoint_id = match crate::ops::random_id() {
            Ok(i) => i,
            Err(e) => {
                inner.pool.release(ip);
                return Err(e);
            }
        };
        let ep = Endpoint {
            container_id: container_id.to_owned(),
            endpoint_id: endpoint_id.clone(),
            ip,
            prefix_len: inner.pool.subnet().prefix_len(),
            gateway: inner.pool.gateway(),
            mac: Endpoint::mac_string(mac),
            // Random as Docker's (a restarted container must not meet its previous veth, which
            // the kernel may still be removing); interface names are at most 15 bytes.
            veth: format!("veth{}", &endpoint_id[..7]),
            sandbox: self.netns_dir.join(container_id),
            ports: mapped,
            ifname: o.ifname.clone(),
            default_route: o.ifname == "eth0" && !self.meta.internal,
            aliases: o.aliases.clone(),
        };
        if let Err(e) = self.ops.create_endpoint(&ep, &self.opts.name, self.opts.mtu) {
            inner.pool.release(ip);
            return Err(e);
        }
        inner.endpoints.insert(container_id.to_owned(), ep.clone());
        let published = if ep.ports.is_empty() { Ok(()) } else { self.apply_firewall(&inner) };
        if let Err(e) = published.and_then(|_| self.save(&inner)) {
            inner.endpoints.remove(container_id);
            inner.pool.release(ip);
            self.ops.remove_endpoint(&ep);
            return Err(e);
        }
        Ok(ep)
    }

    /// Removes a container's endpoint and releases its address; no-op if it has none.
    pub fn detach(&self, container_id: &str) -> Result<()> {
        let mut inner = self.lock();
        let Some(ep) = inner.endpoints.remove(container_id) else { return Ok(()) };
        self.ops.remove_endpoint(&ep);
        inner.pool.release(ep.ip);
        let unpublished = if ep.ports.is_empty() { Ok(()) } else { self.apply_firewall(&inner) };
        let saved = self.save(&inner);
        unpublished.and(saved)
    }

    /// Removes one interface of a running container (its sandbox stays).
    pub fn disconnect(&self, container_id: &str) -> Result<()> {
        let mut inner = self.lock();
        let Some(ep) = inner.endpoints.get(container_id).cloned() else { return Ok(()) };
        self.ops.remove_interface(&ep)?;
        inner.endpoints.remove(container_id);
        inner.pool.release(ep.ip);
        let unpublished = if ep.ports.is_empty() { Ok(()) } else { self.apply_firewall(&inner) };
        let saved = self.save(&inner);
        unpublished.and(saved)
    }

    pub fn endpoint(&self, container_id: &str) -> Option<Endpoint> {
        self.lock().endpoints.get(container_id).cloned()
    }

    pub fn attached(&self) -> Vec<String> {
        self.lock().endpoints.keys().cloned().collect()
    }

    /// At daemon shutdown: the bridge goes only when no container uses it any more (running
    /// containers outlive the daemon and keep their network).
    pub fn shutdown(&self) -> Result<bool> {
        let inner = self.lock();
        if !inner.endpoints.is_empty() {
            return Ok(false);
        }
        let table = firewall::table_name(&self.opts.name);
        self.ops.apply_firewall(&crate::nft::Table { name: table, chains: Vec::new(), rules: Vec::new() })?;
        self.ops.remove_bridge(&self.opts.name)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Fake;

    fn open(dir: &Path, fake: Fake, bip: Option<&str>) -> BridgeNetwork<Fake> {
        let opts = BridgeOptions { name: "berthtest0".into(), bip: bip.map(Into::into), mtu: 1500 };
        DefaultBridge::open(fake, opts, dir, dir.join("netns"), "2026-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn picks_free_subnet_and_creates_bridge() {
        let d = tempfile::tempdir().unwrap();
        let b = open(d.path(), Fake::with_routes(&["172.17.0.0/16", "192.0.2.0/24"]), None);
        assert_eq!(b.subnet().to_string(), "172.18.0.0/16");
        assert_eq!(b.gateway().to_string(), "172.18.0.1");
        let s = b.ops().lock();
        assert!(s.links.contains("berthtest0") && s.forwarding);
    }

    #[test]
    fn attach_detach_and_persist() {
        let d = tempfile::tempdir().unwrap();
        let b = open(d.path(), Fake::default(), Some("10.44.0.1/24"));
        let a = b.attach(&"a".repeat(64), &[]).unwrap();
        let c = b.attach(&"c".repeat(64), &[]).unwrap();
        assert_eq!((a.ip.to_string(), c.ip.to_string()), ("10.44.0.2".into(), "10.44.0.3".into()));
        assert_eq!(a.mac, "02:42:0a:2c:00:02");
        assert!(a.veth.starts_with("veth") && a.veth.len() == 11 && a.veth != c.veth, "{}", a.veth);
        assert!(b.attach(&"a".repeat(64), &[]).is_err());
        drop(b);
        // A restarted daemon gets its endpoints back and does not hand their addresses out.
        let b = open(d.path(), Fake::default(), Some("10.99.0.1/24"));
        assert_eq!(b.subnet().to_string(), "10.44.0.0/24", "bip waits until no endpoint is left");
        assert_eq!(b.endpoint(&"c".repeat(64)).unwrap().ip, c.ip);
        let e = b.attach(&"e".repeat(64), &[]).unwrap();
        assert_eq!(e.ip.to_string(), "10.44.0.4");
        b.detach(&"a".repeat(64)).unwrap();
        b.detach(&"a".repeat(64)).unwrap();
        assert!(!b.ops().lock().links.contains(&a.veth));
        assert!(!b.shutdown().unwrap(), "the bridge stays while endpoints remain");
        b.detach(&"c".repeat(64)).unwrap();
        b.detach(&"e".repeat(64)).unwrap();
        assert!(b.shutdown().unwrap());
        assert_eq!(b.ops().lock().links.len(), 0);
        assert!(b.ops().lock().sandboxes.is_empty());
    }

    #[test]
    fn failed_endpoint_releases_address() {
        let d = tempfile::tempdir().unwrap();
        let b = open(d.path(), Fake::default(), Some("10.45.0.1/30"));
        b.ops().lock().fail_endpoint = true;
        assert!(b.attach(&"a".repeat(64), &[]).is_err());
        assert!(b.endpoint(&"a".repeat(64)).is_none());
        // The only address is free again.
        assert_eq!(b.attach(&"b".repeat(64), &[]).unwrap().ip.to_string(), "10.45.0.2");
        assert!(matches!(b.attach(&"c".repeat(64), &[]), Err(Error::Conflict(_))));
        assert!(matches!(b.attach(&"b".repeat(64), &[]), Err(Error::Forbidden(_))));
    }

    #[test]
    fn validates_options() {
        let d = tempfile::tempdir().unwrap();
        let bad = |name: &str, bip: Option<&str>, mtu| {
            let o = BridgeOptions { name: name.into(), bip: bip.map(Into::into), mtu };
            DefaultBridge::open(Fake::default(), o, d.path(), d.path().join("n"), "").is_err()
        };
        assert!(bad("a-name-longer-than-15", None, 1500));
        assert!(bad("ok", Some("10.0.0.1"), 1500));
        assert!(bad("ok", Some("10.0.0.1/31"), 1500));
        assert!(bad("ok", None, 10));
    }

    #[test]
    fn published_ports_and_firewall() {
        let d = tempfile::tempdir().unwrap();
        let b = open(d.path(), Fake::default(), Some("10.46.0.1/24"));
        let base = b.ops().lock().firewall.clone().expect("the table exists from the start");
        assert_eq!(base.name, "berth-berthtest0");
        let req = |hp: &str| vec![crate::ports::request("80/tcp", "127.0.0.1", hp).unwrap()];
        let a = b.attach(&"a".repeat(64), &req("8080")).unwrap();
        assert_eq!(a.ports[0].host_port, 8080);
        let has_dnat = |b: &BridgeNetwork<Fake>| b.ops().lock().firewall.as_ref().unwrap().rules.iter().any(|r| r.2.contains("dnat to 10.46.0.2:80"));
        assert!(has_dnat(&b));
        // The same host port again: refused before anything is created.
        let links = b.ops().lock().links.len();
        let e = b.attach(&"c".repeat(64), &req("8080")).unwrap_err().to_string();
        assert!(e.contains("already allocated"), "{e}");
        assert_eq!(b.ops().lock().links.len(), links);
        // In use on the host.
        b.ops().lock().busy_ports.insert(9090);
        assert!(b.attach(&"c".repeat(64), &req("9090")).unwrap_err().to_string().contains("9090"));
        // A firewall failure undoes the endpoint and frees the address.
        b.ops().lock().fail_firewall = true;
        assert!(b.attach(&"c".repeat(64), &req("9191")).is_err());
        assert!(b.endpoint(&"c".repeat(64)).is_none());
        assert_eq!(b.ops().lock().links.len(), links);
        b.detach(&"a".repeat(64)).unwrap();
        assert!(!has_dnat(&b));
        assert!(b.shutdown().unwrap());
        assert!(b.ops().lock().firewall.is_none());
    }
}
