//! The host operations the bridge driver needs, behind a trait: `Kernel` does them through
//! netlink and procfs; `Fake` keeps them in memory for unit tests without root.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::netlink::{self, Rtnl};
use crate::nft;
use crate::ports::{PortMapping, Proto};
use crate::sandbox;

/// A container's attachment to a bridge network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    /// Docker's EndpointID: random, 64 hex digits.
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// The host side of the veth pair, enslaved to the bridge.
    pub veth: String,
    /// The bind-mounted network namespace the container joins.
    pub sandbox: PathBuf,
    /// Published ports, DNATed to `ip`.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The interface in the sandbox: `eth0` for the network the container starts on, `eth1`...
    /// for networks connected later (which join the existing sandbox).
    #[serde(default = "eth0")]
    pub ifname: String,
    /// Whether the default route goes through this network's gateway (not on internal
    /// networks, nor on networks connected later).
    #[serde(default = "yes")]
    pub default_route: bool,
    /// Network-scoped names (`--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
}

fn eth0() -> String {
    "eth0".into()
}

fn yes() -> bool {
    true
}

/// 64 random hex digits, as Docker's network and endpoint IDs.
pub fn random_id() -> Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io("read /dev/urandom", e))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Endpoint {
    /// Docker's scheme: 02:42 then the IPv4 address, so a MAC is unique on the bridge.
    pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
        let o = ip.octets();
        [0x02, 0x42, o[0], o[1], o[2], o[3]]
    }

    pub fn mac_string(mac: [u8; 6]) -> String {
        mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// `aa:bb:cc:dd:ee:ff` (or with dashes); a unicast address, as an interface needs.
    pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
        let bad = || Error::InvalidParameter(format!("invalid MAC address: {s}"));
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut mac = [0u8; 6];
        for (m, p) in mac.iter_mut().zip(&parts) {
            if p.len() != 2 {
                return Err(bad());
            }
            *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if mac[0] & 1 != 0 {
            return Err(Error::InvalidParameter(format!("invalid MAC address: {s}: a multicast address")));
        }
        Ok(mac)
    }

    /// The endpoint's MAC as bytes (its stored text; Docker's scheme if that is unreadable).
    pub fn mac_bytes(&self) -> [u8; 6] {
        Self::parse_mac(&self.mac).unwrap_or_else(|_| Self::mac_for(self.ip))
    }
}

pub trait NetOps: Send + Sync {
    /// IPv4 prefixes the host routes (default route excluded).
    fn host_routes(&self) -> Result<Vec<Ipv4Net>>;
    /// Creates the bridge if missing, gives it `gateway` (address/prefix), brings it up and
    /// turns IPv4 forwarding on.
    fn ensure_bridge(&self, name: &str, gateway: Ipv4Net, mtu: u32) -> Result<()>;
    fn remove_bridge(&self, name: &str) -> Result<()>;
    /// Sandbox (for `eth0`; other interfaces join the existing one), veth pair, the
    /// interface's address and default route; nothing is left if it fails.
    fn create_endpoint(&self, ep: &Endpoint, bridge: &str, mtu: u32) -> Result<()>;
    /// Best effort: what is already gone is not an error. The veth pair may outlive the call
    /// briefly (the kernel removes it with the namespace).
    fn remove_endpoint(&self, ep: &Endpoint);
    /// Removes one interface from a sandbox that stays (a disconnect): its veth pair goes.
    fn remove_interface(&self, ep: &Endpoint) -> Result<()>;
    /// Replaces the table atomically (a table without chains: removes it).
    fn apply_firewall(&self, table: &nft::Table) -> Result<()>;
    /// Binds a host port (0: any free one) to prove it is free; returns the port.
    fn probe_port(&self, proto: Proto, ip: Ipv4Addr, port: u16) -> std::io::Result<u16>;
}

#[derive(Clone, Copy)]
pub struct Kernel;

/// Networks share one host: the registry hands each bridge the same operations.
impl<T: NetOps + ?Sized> NetOps for std::sync::Arc<T> {
    fn host_routes(&self) -> Result<Vec<Ipv4Net>> {
        (**self).host_routes()
    }
    fn ensure_bridge(&self, name: &str, gateway: Ipv4Net, mtu: u32) -> Result<()> {
        (**self).ensure_bridge(name, gateway, mtu)
    }
    fn remove_bridge(&self, name: &str) -> Result<()> {
        (**self).remove_bridge(name)
    }
    fn create_endpoint(&self, ep: &Endpoint, bridge: &str, mtu: u32) -> Result<()> {
        (**self).create_endpoint(ep, bridge, mtu)
    }
    fn remove_endpoint(&self, ep: &Endpoint) {
        (**self).remove_endpoint(ep)
    }
    fn remove_interface(&self, ep: &Endpoint) -> Result<()> {
        (**self).remove_interface(ep)
    }
    fn apply_firewall(&self, table: &nft::Table) -> Result<()> {
        (**self).apply_firewall(table)
    }
    fn probe_port(&self, proto: Proto, ip: Ipv4Addr, port: u16) -> std::io::Result<u16> {
        (**self).probe_port(proto, ip, port)
    }
}

fn enable_forwarding() -> Result<()> {
    let p = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(p).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(p, "1").map_err(|e| Error::io("enable IPv4 forwarding", e))
}

impl NetOps for Kernel {
    fn host_routes(&self) -> Result<Vec<Ipv4Net>> {
        Rtnl::open()?.routes_v4()
    }

    fn ensure_bridge(&self, name: &str, gateway: Ipv4Net, mtu: u32) -> Result<()> {
        let mut nl = Rtnl::open()?;
        let index = match nl.link_index(name)? {
            Some(i) => i,
            None => {
                nl.batch(vec![netlink::new_bridge(name, mtu)])?;
                nl.link_index(name)?.ok_or_else(|| Error::Internal(format!("bridge {name} vanished after its creation")))?
            }
        };
        // A bridge kept from an earlier subnet (a changed --bip) loses its old addresses.
        let stale = nl.addresses_v4(index)?.into_iter().filter(|a| *a != gateway).map(|a| netlink::del_address(index, a, name));
        let mut reqs: Vec<_> = stale.collect();
        reqs.extend([netlink::add_address(index, gateway, name), netlink::set_up(index, name)]);
        nl.batch(reqs)?;
        // Lets DNATed 127.0.0.1 traffic leave through the bridge (ports published on loopback).
        let p = format!("/proc/sys/net/ipv4/conf/{name}/route_localnet");
        std::fs::write(&p, "1").map_err(|e| Error::io(format!("write {p}"), e))?;
        enable_forwarding()
    }

    fn remove_bridge(&self, name: &str) -> Result<()> {
        Rtnl::open()?.batch(vec![netlink::delete_link(name)])
    }

    fn create_endpoint(&self, ep: &Endpoint, bridge: &str, mtu: u32) -> Result<()> {
        let mut host = Rtnl::open()?;
        let bridge_index = host.link_index(bridge)?.ok_or_else(|| Error::Internal(format!("bridge {bridge} does not exist")))?;
        let fresh = ep.ifname == "eth0";
        let (mut inside, ns) = if fresh { sandbox::create(&ep.sandbox)? } else { sandbox::enter(&ep.sandbox)? };
        let res = (|| {
            let name = ep.ifname.as_str();
            host.batch(vec![netlink::new_veth(&ep.veth, bridge_index, mtu, name, ns.as_raw_fd(), ep.mac_bytes())])?;
            let index = inside.link_index(name)?.ok_or_else(|| Error::Internal(format!("{name} missing in the sandbox")))?;
            let addr = Ipv4Net::new(ep.ip, ep.prefix_len).map_err(|e| Error::Internal(e.to_string()))?;
            let mut reqs = vec![netlink::set_up(1, "lo"), netlink::add_address(index, addr, name), netlink::set_up(index, name)];
            if ep.default_route {
                reqs.push(netlink::default_route(index, ep.gateway));
            }
            inside.batch(reqs)
        })();
        if res.is_err() {
            if fresh {
                self.remove_endpoint(ep);
            } else {
                let _ = self.remove_interface(ep);
            }
        }
        res
    }

    fn remove_endpoint(&self, ep: &Endpoint) {
        // Only the namespace's bind mount goes: with the container's processes already gone,
        // the kernel then destroys the namespace and with it eth0 and its host peer, in the
        // background. Deleting the veth here would wait out an RCU grace period (~30 ms) on
        // every container exit.
        sandbox::remove(&ep.sandbox);
    }

    fn remove_interface(&self, ep: &Endpoint) -> Result<()> {
        let mut nl = Rtnl::open()?;
        if nl.link_index(&ep.veth)?.is_none() {
            return Ok(());
        }
        nl.batch(vec![netlink::delete_link(&ep.veth)])
    }

    fn apply_firewall(&self, table: &nft::Table) -> Result<()> {
        let (batch, acks) = nft::encode(table);
        nft::send(&batch, acks, &format!("replace nftables table ip {}", table.name))
    }

    fn probe_port(&self, proto: Proto, ip: Ipv4Addr, port: u16) -> std::io::Result<u16> {
        crate::ports::probe_host(proto, ip, port)
    }
}

/// In-memory host: links and sandboxes as names; `fail_endpoint` makes the next endpoint fail.
#[derive(Default)]
pub struct Fake {
    pub state: std::sync::Mutex<FakeState>,
}

#[derive(Default, Debug)]
pub struct FakeState {
    pub routes: Vec<Ipv4Net>,
    pub links: std::collections::BTreeSet<String>,
    pub sandboxes: std::collections::BTreeSet<PathBuf>,
    pub forwarding: bool,
    pub fail_endpoint: bool,
    /// The table as last applied (None: removed or never created).
    pub firewall: Option<nft::Table>,
    pub busy_ports: std::collections::BTreeSet<u16>,
    pub fail_firewall: bool,
}

impl Fake {
    pub fn with_routes(routes: &[&str]) -> Fake {
        let f = Fake::default();
        f.lock().routes = routes.iter().map(|r| r.parse().expect("valid prefix")).collect();
        f
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NetOps for Fake {
    fn host_routes(&self) -> Result<Vec<Ipv4Net>> {
        Ok(self.lock().routes.clone())
    }

    fn ensure_bridge(&self, name: &str, gateway: Ipv4Net, _mtu: u32) -> Result<()> {
        let mut s = self.lock();
        s.links.insert(name.into());
        s.routes.push(gateway.trunc());
        s.forwarding = true;
        Ok(())
    }

    fn remove_bridge(&self, name: &str) -> Result<()> {
        self.lock().links.remove(name);
        Ok(())
    }

    fn create_endpoint(&self, ep: &Endpoint, bridge: &str, _mtu: u32) -> Result<()> {
        let mut s = self.lock();
        if !s.links.contains(bridge) {
            return Err(Error::Internal(format!("bridge {bridge} does not exist")));
        }
        if std::mem::take(&mut s.fail_endpoint) {
            return Err(Error::io("create veth", std::io::Error::from_raw_os_error(libc::EEXIST)));
        }
        let fresh = ep.ifname == "eth0";
        if fresh && s.sandboxes.contains(&ep.sandbox) || !fresh && !s.sandboxes.contains(&ep.sandbox) {
            return Err(Error::io("create the sandbox", std::io::Error::from_raw_os_error(libc::EEXIST)));
        }
        if !s.links.insert(ep.veth.clone()) {
            return Err(Error::io("create veth", std::io::Error::from_raw_os_error(libc::EEXIST)));
        }
        s.sandboxes.insert(ep.sandbox.clone());
        Ok(())
    }

    fn remove_endpoint(&self, ep: &Endpoint) {
        let mut s = self.lock();
        s.links.remove(&ep.veth);
        s.sandboxes.remove(&ep.sandbox);
    }

    fn remove_interface(&self, ep: &Endpoint) -> Result<()> {
        self.lock().links.remove(&ep.veth);
        Ok(())
    }

    fn apply_firewall(&self, table: &nft::Table) -> Result<()> {
        let mut s = self.lock();
        if std::mem::take(&mut s.fail_firewall) {
            return Err(Error::io("replace nftables table", std::io::Error::from_raw_os_error(libc::EINVAL)));
        }
        s.firewall = (!table.chains.is_empty()).then(|| table.clone());
        Ok(())
    }

    fn probe_port(&self, _proto: Proto, _ip: Ipv4Addr, port: u16) -> std::io::Result<u16> {
        let s = self.lock();
        if s.busy_ports.contains(&port) {
            return Err(std::io::Error::from_raw_os_error(libc::EADDRINUSE));
        }
        Ok(if port == 0 { (40000..).find(|p| !s.busy_ports.contains(p)).unwrap_or(0) } else { port })
    }
}

#[cfg(test)]
mod mac_tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(Endpoint::parse_mac("02:42:de:ad:BE:ef").unwrap(), [2, 0x42, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Endpoint::parse_mac("02-42-00-00-00-01").unwrap(), [2, 0x42, 0, 0, 0, 1]);
        assert!(Endpoint::parse_mac("03:00:00:00:00:01").unwrap_err().to_string().contains("multicast"));
        for bad in ["", "02:42", "02:42:00:00:00:0g", "002:42:00:00:00:01", "02:42:00:00:00:00:00"] {
            assert!(Endpoint::parse_mac(bad).is_err(), "{bad}");
        }
    }
}
