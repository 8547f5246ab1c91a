//! rtnetlink over one socket: requests are batched into a single send and their acks read
//! back, so a container's whole endpoint costs a handful of syscalls and no process.

use std::net::Ipv4Addr;
use std::os::fd::RawFd;

use ipnet::Ipv4Net;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};

pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

/// One request of a batch: the message, its flags, and what it does (for errors).
pub struct Req {
    msg: RouteNetlinkMessage,
    flags: u16,
    what: String,
    /// Errnos that mean "already done" (e.g. ENODEV for a delete).
    ok_errnos: &'static [i32],
}

impl Req {
    fn new(msg: RouteNetlinkMessage, flags: u16, what: String) -> Req {
        Req { msg, flags, what, ok_errnos: &[] }
    }
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("open a netlink socket", e))?;
        sock.bind_auto().map_err(|e| Error::io("bind a netlink socket", e))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::io("connect a netlink socket", e))?;
        let _ = sock.set_ext_ack(true);
        Ok(Rtnl { sock, seq: 0 })
    }

    fn send(&mut self, reqs: &[Req]) -> Result<u32> {
        let mut buf = Vec::new();
        let first = self.seq + 1;
        for r in reqs {
            self.seq += 1;
            let mut h = NetlinkHeader::default();
            h.flags = NLM_F_REQUEST | r.flags;
            h.sequence_number = self.seq;
            let mut m = NetlinkMessage::new(h, NetlinkPayload::InnerMessage(r.msg.clone()));
            m.finalize();
            let at = buf.len();
            buf.resize(at + m.buffer_len(), 0);
            m.serialize(&mut buf[at..]);
        }
        self.sock.send(&buf, 0).map_err(|e| Error::io("send netlink requests", e))?;
        Ok(first)
    }

    /// Sends all requests at once and waits for every ack; the first failure is returned
    /// (the kernel still processes the rest: callers roll back what they asked for).
    pub fn batch(&mut self, reqs: Vec<Req>) -> Result<()> {
        if reqs.is_empty() {
            return Ok(());
        }
        let first = self.send(&reqs)?;
        let mut pending = reqs.len();
        let mut failure = None;
        let mut buf = vec![0u8; 64 * 1024];
        while pending > 0 {
            let n = self.sock.recv(&mut &mut buf[..], 0).map_err(|e| Error::io("receive netlink acks", e))?;
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..n])
                    .map_err(|e| Error::Internal(format!("bad netlink reply: {e}")))?;
                let len = m.header.length as usize;
                let seq = m.header.sequence_number;
                if let NetlinkPayload::Error(e) = &m.payload {
                    if seq >= first && ((seq - first) as usize) < reqs.len() {
                        pending -= 1;
                        let r = &reqs[(seq - first) as usize];
                        if let Some(code) = e.code {
                            let errno = -code.get();
                            if !r.ok_errnos.contains(&errno) && failure.is_none() {
                                failure = Some(Error::io(r.what.clone(), std::io::Error::from_raw_os_error(errno)));
                            }
                        }
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// A dump's messages.
    fn dump(&mut self, msg: RouteNetlinkMessage, what: &str) -> Result<Vec<RouteNetlinkMessage>> {
        let req = Req::new(msg, NLM_F_DUMP, what.into());
        let first = self.send(std::slice::from_ref(&req))?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.sock.recv(&mut &mut buf[..], 0).map_err(|e| Error::io(what, e))?;
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..n])
                    .map_err(|e| Error::Internal(format!("bad netlink reply: {e}")))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == first {
                    match m.payload {
                        NetlinkPayload::Done(_) => return Ok(out),
                        NetlinkPayload::Error(e) if e.code.is_some() => return Err(Error::io(what, e.to_io())),
                        NetlinkPayload::InnerMessage(i) => out.push(i),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// The index of a link, or None if there is none by that name.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let req = Req::new(RouteNetlinkMessage::GetLink(link(0, vec![LinkAttribute::IfName(name.into())])), 0, format!("look up link {name}"));
        let seq = self.send(std::slice::from_ref(&req))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.sock.recv(&mut &mut buf[..], 0).map_err(|e| Error::io(req.what.clone(), e))?;
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..n])
                .map_err(|e| Error::Internal(format!("bad netlink reply: {e}")))?;
            if m.header.sequence_number != seq {
                continue;
            }
            return match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => Ok(Some(l.header.index)),
                NetlinkPayload::Error(e) if e.raw_code() == -libc::ENODEV => Ok(None),
                NetlinkPayload::Error(e) => Err(Error::io(req.what, e.to_io())),
                _ => Err(Error::Internal(format!("{}: unexpected reply", req.what))),
            };
        }
    }

    /// A link's IPv4 addresses with their prefixes.
    pub fn addresses_v4(&mut self, index: u32) -> Result<Vec<Ipv4Net>> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        let all = self.dump(RouteNetlinkMessage::GetAddress(m), "list addresses")?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Local(std::net::IpAddr::V4(ip)) => Ipv4Net::new(*ip, a.header.prefix_len).ok(),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// The IPv4 destinations of the main table, default route excluded.
    pub fn routes_v4(&mut self) -> Result<Vec<Ipv4Net>> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        let routes = self.dump(RouteNetlinkMessage::GetRoute(m), "list routes")?;
        Ok(routes
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.destination_prefix_length > 0 => {
                    r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(d)) => Ipv4Net::new(*d, r.header.destination_prefix_length).ok(),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }
}

fn link(index: u32, attrs: Vec<LinkAttribute>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes = attrs;
    m
}

pub fn new_bridge(name: &str, mtu: u32) -> Req {
    let m = link(0, vec![
        LinkAttribute::IfName(name.into()),
        LinkAttribute::Mtu(mtu),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
    ]);
    Req::new(RouteNetlinkMessage::NewLink(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, format!("create bridge {name}"))
}

pub fn set_up(index: u32, what: &str) -> Req {
    let mut m = link(index, vec![]);
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    Req::new(RouteNetlinkMessage::SetLink(m), NLM_F_ACK, format!("set {what} up"))
}

pub fn delete_link(name: &str) -> Req {
    let m = link(0, vec![LinkAttribute::IfName(name.into())]);
    let mut r = Req::new(RouteNetlinkMessage::DelLink(m), NLM_F_ACK, format!("delete link {name}"));
    r.ok_errnos = &[libc::ENODEV];
    r
}

/// Replaces (or adds) `addr/prefix` on a link.
pub fn add_address(index: u32, net: Ipv4Net, what: &str) -> Req {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = net.prefix_len();
    m.header.index = index;
    m.attributes = vec![
        AddressAttribute::Local(net.addr().into()),
        AddressAttribute::Address(net.addr().into()),
        AddressAttribute::Broadcast(net.broadcast()),
    ];
    Req::new(RouteNetlinkMessage::NewAddress(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, format!("add address {net} to {what}"))
}

pub fn del_address(index: u32, net: Ipv4Net, what: &str) -> Req {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = net.prefix_len();
    m.header.index = index;
    m.attributes = vec![AddressAttribute::Local(net.addr().into())];
    let mut r = Req::new(RouteNetlinkMessage::DelAddress(m), NLM_F_ACK, format!("remove address {net} from {what}"));
    r.ok_errnos = &[libc::EADDRNOTAVAIL];
    r
}

pub fn default_route(oif: u32, gateway: Ipv4Addr) -> Req {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway)), RouteAttribute::Oif(oif)];
    Req::new(RouteNetlinkMessage::NewRoute(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, format!("add default route via {gateway}"))
}

/// A veth pair: `host` enslaved to the bridge and up; its peer created directly inside the
/// namespace `netns_fd` as `peer` with the given MAC.
pub fn new_veth(host: &str, bridge_index: u32, mtu: u32, peer: &str, netns_fd: RawFd, mac: [u8; 6]) -> Req {
    let p = link(0, vec![
        LinkAttribute::IfName(peer.into()),
        LinkAttribute::Mtu(mtu),
        LinkAttribute::Address(mac.to_vec()),
        LinkAttribute::NetNsFd(netns_fd),
    ]);
    let mut m = link(0, vec![
        LinkAttribute::IfName(host.into()),
        LinkAttribute::Mtu(mtu),
        LinkAttribute::Controller(bridge_index),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth), LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p)))]),
    ]);
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    Req::new(RouteNetlinkMessage::NewLink(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, format!("create veth {host}"))
}
