//! IPv4 address management for one subnet: the network and broadcast addresses and the
//! gateway are never handed out; addresses are given lowest-first after the last one handed
//! out (as Docker does, so a released address is not reused at once).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Pool {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    used: BTreeSet<u32>,
    last: u32,
    /// `IPRange`: allocation stays inside it (fixed addresses may be anywhere in the subnet).
    range: Option<Ipv4Net>,
}

impl Pool {
    pub fn new(subnet: Ipv4Net, gateway: Ipv4Addr) -> Result<Pool> {
        if subnet.prefix_len() > 30 {
            return Err(Error::InvalidParameter(format!("subnet {subnet} is too small for containers")));
        }
        if !subnet.contains(&gateway) || gateway == subnet.network() || gateway == subnet.broadcast() {
            return Err(Error::InvalidParameter(format!("gateway {gateway} is not a host address of {subnet}")));
        }
        Ok(Pool { subnet: subnet.trunc(), gateway, used: BTreeSet::new(), last: u32::from(gateway), range: None })
    }

    pub fn with_range(mut self, range: Option<Ipv4Net>) -> Result<Pool> {
        if let Some(r) = range {
            if !self.subnet.contains(&r) {
                return Err(Error::InvalidParameter(format!("IP range {r} is not within subnet {}", self.subnet)));
            }
        }
        self.range = range.map(|r| r.trunc());
        Ok(self)
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn is_host(&self, a: u32) -> bool {
        a > u32::from(self.subnet.network()) && a < u32::from(self.subnet.broadcast()) && a != u32::from(self.gateway)
    }

    /// Marks an address as in use (restoring persisted endpoints).
    pub fn reserve(&mut self, ip: Ipv4Addr) -> Result<()> {
        let a = u32::from(ip);
        if !self.is_host(a) {
            return Err(Error::InvalidParameter(format!("address {ip} is not available in {}", self.subnet)));
        }
        if !self.used.insert(a) {
            return Err(Error::Conflict(format!("address {ip} is already in use")));
        }
        Ok(())
    }

    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        let first = u32::from(self.subnet.network()) + 1;
        let end = u32::from(self.subnet.broadcast());
        let after = (self.last.saturating_add(1)..end).chain(first..end);
        for a in after {
            let in_range = self.range.is_none_or(|r| r.contains(&Ipv4Addr::from(a)));
            if in_range && self.is_host(a) && !self.used.contains(&a) {
                self.used.insert(a);
                self.last = a;
                return Ok(Ipv4Addr::from(a));
            }
        }
        Err(Error::Conflict(format!("no available IPv4 addresses on network {}", self.subnet)))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(s: &str, gw: &str) -> Pool {
        Pool::new(s.parse().unwrap(), gw.parse().unwrap()).unwrap()
    }

    #[test]
    fn skips_gateway_network_broadcast() {
        let mut p = pool("10.9.0.0/30", "10.9.0.1");
        assert_eq!(p.allocate().unwrap(), "10.9.0.2".parse::<Ipv4Addr>().unwrap());
        assert!(matches!(p.allocate(), Err(Error::Conflict(_))));
    }

    #[test]
    fn release_is_reused_after_wrapping() {
        let mut p = pool("10.9.0.0/29", "10.9.0.1");
        let all: Vec<_> = (0..5).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(all.last().unwrap(), &"10.9.0.6".parse::<Ipv4Addr>().unwrap());
        p.release(all[1]);
        assert_eq!(p.allocate().unwrap(), all[1]);
        assert_eq!(p.in_use(), 5);
    }

    #[test]
    fn next_after_last_not_lowest_free() {
        let mut p = pool("10.9.0.0/24", "10.9.0.1");
        let a = p.allocate().unwrap();
        p.release(a);
        assert_eq!(p.allocate().unwrap(), "10.9.0.3".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn reserve_validates() {
        let mut p = pool("10.9.0.0/24", "10.9.0.1");
        p.reserve("10.9.0.7".parse().unwrap()).unwrap();
        assert!(matches!(p.reserve("10.9.0.7".parse().unwrap()), Err(Error::Conflict(_))));
        assert!(p.reserve("10.9.0.1".parse().unwrap()).is_err());
        assert!(p.reserve("10.9.0.255".parse().unwrap()).is_err());
        assert!(p.reserve("10.8.0.3".parse().unwrap()).is_err());
        assert!(Pool::new("10.9.0.0/24".parse().unwrap(), "10.9.1.1".parse().unwrap()).is_err());
    }
}
