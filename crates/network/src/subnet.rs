//! The default bridge's subnet: Docker's candidate pools, the first that overlaps nothing
//! the host already routes (docker0's 172.17.0.0/16 among them when Docker runs alongside).

use ipnet::Ipv4Net;

use crate::error::{Error, Result};

/// 172.18-31.0.0/16, then 192.168.0-240.0/20, as Docker's default address pools after its own
/// 172.17 (left to docker0).
pub fn candidates() -> impl Iterator<Item = Ipv4Net> {
    let a = (18..32u8).map(|b| Ipv4Net::new([172, b, 0, 0].into(), 16).expect("valid prefix"));
    let b = (0..16u8).map(|i| Ipv4Net::new([192, 168, i * 16, 0].into(), 20).expect("valid prefix"));
    a.chain(b)
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first candidate not overlapping any of `routed` (the host's routes, default route
/// excluded by the caller).
pub fn pick(routed: &[Ipv4Net]) -> Result<Ipv4Net> {
    candidates()
        .find(|c| !routed.iter().any(|r| overlaps(c, r)))
        .ok_or_else(|| Error::Conflict("could not find an available, non-overlapping IPv4 address pool for the network".into()))
}

/// A user's `bip` (gateway address with prefix, e.g. 10.20.0.1/24) into subnet and gateway.
pub fn parse_bip(bip: &str) -> Result<(Ipv4Net, std::net::Ipv4Addr)> {
    let net: Ipv4Net = bip.parse().map_err(|_| Error::InvalidParameter(format!("invalid bip {bip:?}: want an IPv4 address with a prefix length")))?;
    Ok((net.trunc(), net.addr()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avoids_routed() {
        let r: Vec<Ipv4Net> = vec!["172.17.0.0/16".parse().unwrap(), "172.18.5.0/24".parse().unwrap()];
        assert_eq!(pick(&r).unwrap().to_string(), "172.19.0.0/16");
        assert_eq!(pick(&[]).unwrap().to_string(), "172.18.0.0/16");
        // A wide route covering all 172.16/12 leaves the 192.168 pools.
        assert_eq!(pick(&["172.16.0.0/12".parse().unwrap()]).unwrap().to_string(), "192.168.0.0/20");
        assert!(pick(&["0.0.0.0/1".parse().unwrap(), "128.0.0.0/1".parse().unwrap()]).is_err());
    }

    #[test]
    fn bip() {
        let (n, g) = parse_bip("10.20.0.1/24").unwrap();
        assert_eq!((n.to_string(), g.to_string()), ("10.20.0.0/24".into(), "10.20.0.1".into()));
        assert!(parse_bip("10.20.0.1").is_err());
    }
}
