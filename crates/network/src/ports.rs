//! Published ports: Docker's PortBindings parsed into requests, then resolved to host ports
//! (a free one picked by the kernel when none is given, the first free one of a range), each
//! checked by binding it before anything is created.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    /// None: any free port.
    pub host_ports: Option<(u16, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

fn port(s: &str, what: &str) -> Result<u16> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::InvalidParameter(format!("invalid {what} port: {s}"))),
    }
}

/// "80/tcp" (or "80") into the port and protocol.
pub fn parse_key(key: &str) -> Result<(u16, Proto)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => return Err(Error::InvalidParameter(format!("invalid proto: {other} (tcp and udp are supported)"))),
    };
    Ok((port(p, "container")?, proto))
}

/// One PortBindings entry: "80/tcp" with HostIp and HostPort ("" any, "8080", "8000-8010").
pub fn request(key: &str, host_ip: &str, host_port: &str) -> Result<PortRequest> {
    let (container_port, proto) = parse_key(key)?;
    let host_ip = match host_ip {
        "" => Ipv4Addr::UNSPECIFIED,
        s => s.parse().map_err(|_| Error::InvalidParameter(format!("invalid host IP {s:?}: only IPv4 addresses can be published")))?,
    };
    let host_ports = match host_port {
        "" | "0" => None,
        s => Some(match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a, "host")?, port(b, "host")?);
                if a > b {
                    return Err(Error::InvalidParameter(format!("invalid host port range: {s}")));
                }
                (a, b)
            }
            None => (port(s, "host")?, port(s, "host")?),
        }),
    };
    Ok(PortRequest { proto, container_port, host_ip, host_ports })
}

fn overlaps(a: &PortMapping, proto: Proto, ip: Ipv4Addr, port: u16) -> bool {
    a.proto == proto && a.host_port == port && (a.host_ip == ip || a.host_ip.is_unspecified() || ip.is_unspecified())
}

/// Picks the host ports. `taken` are other containers' mappings; `probe` binds a port (0: the
/// kernel picks) and returns it, failing when the port is in use on the host.
pub fn resolve(
    reqs: &[PortRequest],
    taken: &[PortMapping],
    probe: &dyn Fn(Proto, Ipv4Addr, u16) -> std::io::Result<u16>,
) -> Result<Vec<PortMapping>> {
    let mut out: Vec<PortMapping> = Vec::new();
    for r in reqs {
        let in_use = |p: u16, out: &[PortMapping]| taken.iter().chain(out).any(|m| overlaps(m, r.proto, r.host_ip, p));
        let chosen = match r.host_ports {
            None => {
                let mut got = None;
                for _ in 0..16 {
                    let p = probe(r.proto, r.host_ip, 0).map_err(|e| Error::io(format!("pick a free host port on {}", r.host_ip), e))?;
                    if !in_use(p, &out) {
                        got = Some(p);
                        break;
                    }
                }
                got.ok_or_else(|| Error::Conflict(format!("no free host port on {} for {}/{}", r.host_ip, r.container_port, r.proto.as_str())))?
            }
            Some((a, b)) => {
                let mut last = None;
                let mut got = None;
                for p in a..=b {
                    if in_use(p, &out) {
                        last = Some(format!("Bind for {}:{p} failed: port is already allocated", r.host_ip));
                        continue;
                    }
                    match probe(r.proto, r.host_ip, p) {
                        Ok(_) => {
                            got = Some(p);
                            break;
                        }
                        Err(e) => last = Some(format!("failed to bind host port {}:{p}/{}: {e}", r.host_ip, r.proto.as_str())),
                    }
                }
                got.ok_or_else(|| Error::Conflict(last.unwrap_or_default()))?
            }
        };
        out.push(PortMapping { proto: r.proto, container_port: r.container_port, host_ip: r.host_ip, host_port: chosen });
    }
    Ok(out)
}

/// Binds the port on the host and lets it go: proves it is free now.
pub fn probe_host(proto: Proto, ip: Ipv4Addr, port: u16) -> std::io::Result<u16> {
    let addr = std::net::SocketAddr::from((ip, port));
    Ok(match proto {
        Proto::Tcp => std::net::TcpListener::bind(addr)?.local_addr()?.port(),
        Proto::Udp => std::net::UdpSocket::bind(addr)?.local_addr()?.port(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(_: Proto, _: Ipv4Addr, p: u16) -> std::io::Result<u16> {
        Ok(if p == 0 { 40000 } else { p })
    }

    #[test]
    fn parses_bindings() {
        assert_eq!(parse_key("80").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_key("53/udp").unwrap(), (53, Proto::Udp));
        assert!(parse_key("80/sctp").is_err() && parse_key("0/tcp").is_err() && parse_key("x").is_err());
        let r = request("80/tcp", "127.0.0.1", "8000-8002").unwrap();
        assert_eq!((r.host_ip, r.host_ports), (Ipv4Addr::LOCALHOST, Some((8000, 8002))));
        assert_eq!(request("80/tcp", "", "").unwrap().host_ports, None);
        assert!(request("80/tcp", "::", "80").is_err());
        assert!(request("80/tcp", "", "9-8").is_err());
        assert!(request("80/tcp", "", "70000").is_err());
    }

    #[test]
    fn resolves_and_detects_conflicts() {
        let taken = [PortMapping { proto: Proto::Tcp, container_port: 80, host_ip: Ipv4Addr::UNSPECIFIED, host_port: 8000 }];
        let reqs = [request("80/tcp", "127.0.0.1", "8000-8001").unwrap(), request("81/tcp", "", "").unwrap(), request("80/udp", "", "8000").unwrap()];
        let m = resolve(&reqs, &taken, &free).unwrap();
        assert_eq!(m.iter().map(|m| m.host_port).collect::<Vec<_>>(), vec![8001, 40000, 8000]);
        let e = resolve(&[request("80/tcp", "127.0.0.1", "8000").unwrap()], &taken, &free).unwrap_err().to_string();
        assert!(e.contains("port is already allocated"), "{e}");
        // Two requests of one container for the same port conflict too.
        let dup = [request("80/tcp", "", "9000").unwrap(), request("81/tcp", "", "9000").unwrap()];
        assert!(resolve(&dup, &[], &free).is_err());
        let busy = |_: Proto, _: Ipv4Addr, _: u16| Err(std::io::Error::from_raw_os_error(libc::EADDRINUSE));
        let e = resolve(&[request("80/tcp", "", "9000").unwrap()], &[], &busy).unwrap_err().to_string();
        assert!(e.contains("failed to bind host port 0.0.0.0:9000/tcp"), "{e}");
    }

    #[test]
    fn probe_sees_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        assert!(probe_host(Proto::Tcp, Ipv4Addr::LOCALHOST, p).is_err());
        assert!(probe_host(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).unwrap() > 0);
    }
}
