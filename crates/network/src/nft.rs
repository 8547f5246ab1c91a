//! nftables over its netlink protocol (nfnetlink, subsystem nf_tables): the few expressions
//! Berth's rules need, encoded as the kernel's uapi (linux/netfilter/nf_tables.h) describes,
//! sent as one atomic batch.

use std::net::Ipv4Addr;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::error::{Error, Result};

// nfnetlink / nf_tables uapi values.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFPROTO_IPV4: u8 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;

pub const NF_DROP: i32 = 0;
pub const NF_ACCEPT: i32 = 1;
pub const NFT_JUMP: i32 = -3;

/// The hooks Berth's base chains attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Output,
    Forward,
    Postrouting,
}

impl Hook {
    fn num(self) -> u32 {
        match self {
            Hook::Prerouting => 0,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// (type "nat"/"filter", hook, priority) for a base chain; None for a regular one.
    pub base: Option<(&'static str, Hook, i32)>,
}

/// One nf_tables expression, as few as the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// meta key -> reg 1 (NFT_META_IIFNAME 6, OIFNAME 7, L4PROTO 16).
    Meta(u32),
    /// Compare reg 1 (op NFT_CMP_EQ 0 / NEQ 1).
    Cmp(u32, Vec<u8>),
    /// payload (base 1 network / 2 transport, offset, len) -> reg 1.
    Payload(u32, u32, u32),
    /// reg 1 = (reg 1 & mask) ^ 0.
    Mask(Vec<u8>),
    /// ct key (NFT_CT_STATE 0, STATUS 2) -> reg 1.
    Ct(u32),
    /// fib daddr type -> reg 1.
    FibDaddrType,
    /// A value into a register.
    Imm(u32, Vec<u8>),
    /// Verdict code, with a chain for jump.
    Verdict(i32, Option<String>),
    Masquerade,
    /// dnat to reg 1 (address) : reg 2 (port).
    Dnat,
}

struct Nla(Vec<u8>);

impl Nla {
    fn put(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }

    fn be32(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_be_bytes());
    }

    fn str(&mut self, ty: u16, s: &str) {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.put(ty, &b);
    }

    fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Nla)) {
        let mut inner = Nla(Vec::new());
        f(&mut inner);
        self.put(ty | NLA_F_NESTED, &inner.0);
    }
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta(_) => "meta",
            Expr::Cmp(..) => "cmp",
            Expr::Payload(..) => "payload",
            Expr::Mask(_) => "bitwise",
            Expr::Ct(_) => "ct",
            Expr::FibDaddrType => "fib",
            Expr::Imm(..) | Expr::Verdict(..) => "immediate",
            Expr::Masquerade => "masq",
            Expr::Dnat => "nat",
        }
    }

    /// NFTA_EXPR_DATA's attributes (registers: reg 1 for loads, reg 0 for verdicts).
    fn data(&self, d: &mut Nla) {
        match self {
            Expr::Meta(key) => {
                d.be32(2, *key); // NFTA_META_KEY
                d.be32(1, 1); // NFTA_META_DREG
            }
            Expr::Cmp(op, v) => {
                d.be32(1, 1); // NFTA_CMP_SREG
                d.be32(2, *op); // NFTA_CMP_OP
                d.nest(3, |x| x.put(1, v)); // NFTA_CMP_DATA { NFTA_DATA_VALUE }
            }
            Expr::Payload(base, off, len) => {
                d.be32(1, 1); // NFTA_PAYLOAD_DREG
                d.be32(2, *base);
                d.be32(3, *off);
                d.be32(4, *len);
            }
            Expr::Mask(m) => {
                d.be32(1, 1); // SREG
                d.be32(2, 1); // DREG
                d.be32(3, m.len() as u32); // LEN
                d.nest(4, |x| x.put(1, m)); // MASK
                d.nest(5, |x| x.put(1, &vec![0; m.len()])); // XOR
            }
            Expr::Ct(key) => {
                d.be32(1, 1); // NFTA_CT_DREG
                d.be32(2, *key); // NFTA_CT_KEY
            }
            Expr::FibDaddrType => {
                d.be32(1, 1); // NFTA_FIB_DREG
                d.be32(2, 3); // NFTA_FIB_RESULT = NFT_FIB_RESULT_ADDRTYPE
                d.be32(3, 2); // NFTA_FIB_FLAGS = NFTA_FIB_F_DADDR
            }
            Expr::Imm(reg, v) => {
                d.be32(1, *reg); // NFTA_IMMEDIATE_DREG
                d.nest(2, |x| x.put(1, v)); // NFTA_IMMEDIATE_DATA { VALUE }
            }
            Expr::Verdict(code, chain) => {
                d.be32(1, 0); // NFT_REG_VERDICT
                d.nest(2, |x| {
                    x.nest(2, |v| {
                        // NFTA_DATA_VERDICT { CODE, CHAIN }
                        v.be32(1, *code as u32);
                        if let Some(c) = chain {
                            v.str(2, c);
                        }
                    })
                });
            }
            Expr::Masquerade => {}
            Expr::Dnat => {
                d.be32(1, 1); // NFTA_NAT_TYPE = NFT_NAT_DNAT
                d.be32(2, NFPROTO_IPV4 as u32); // NFTA_NAT_FAMILY
                d.be32(3, 1); // NFTA_NAT_REG_ADDR_MIN
                d.be32(5, 2); // NFTA_NAT_REG_PROTO_MIN
            }
        }
    }

    /// NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }
    fn encode(&self, a: &mut Nla) {
        a.nest(1, |e| {
            e.str(1, self.name());
            let mut inner = Nla(Vec::new());
            self.data(&mut inner);
            if !inner.0.is_empty() {
                e.put(2 | NLA_F_NESTED, &inner.0);
            }
        });
    }
}

/// A table's whole content: replaced atomically by `apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub chains: Vec<Chain>,
    /// (chain, expressions, the rule in nft's syntax for people and tests).
    pub rules: Vec<(String, Vec<Expr>, String)>,
}

struct Batch {
    buf: Vec<u8>,
    seq: u32,
    acks: u32,
}

impl Batch {
    fn new() -> Batch {
        let mut b = Batch { buf: Vec::new(), seq: 0, acks: 0 };
        b.msg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES, &[]);
        b
    }

    fn msg(&mut self, ty: u16, flags: u16, family: u8, res_id: u16, attrs: &[u8]) {
        self.seq += 1;
        if flags & NLM_F_ACK != 0 {
            self.acks += 1;
        }
        let len = 16 + 4 + attrs.len();
        self.buf.extend_from_slice(&(len as u32).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.buf.extend_from_slice(attrs);
    }

    fn nft(&mut self, ty: u16, flags: u16, attrs: Nla) {
        self.msg((NFNL_SUBSYS_NFTABLES << 8) | ty, NLM_F_REQUEST | NLM_F_ACK | flags, NFPROTO_IPV4, 0, &attrs.0);
    }

    fn table(&mut self, ty: u16, name: &str) {
        let mut a = Nla(Vec::new());
        a.str(1, name); // NFTA_TABLE_NAME
        self.nft(ty, if ty == NFT_MSG_NEWTABLE { NLM_F_CREATE } else { 0 }, a);
    }

    fn finish(mut self) -> (Vec<u8>, u32) {
        self.msg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES, &[]);
        (self.buf, self.acks)
    }
}

/// The batch replacing `t` (or, with no chains, removing it): add-then-delete makes the
/// delete succeed whether or not the table exists; the kernel applies the batch atomically.
pub fn encode(t: &Table) -> (Vec<u8>, u32) {
    let mut b = Batch::new();
    b.table(NFT_MSG_NEWTABLE, &t.name);
    b.table(NFT_MSG_DELTABLE, &t.name);
    if t.chains.is_empty() {
        return b.finish();
    }
    b.table(NFT_MSG_NEWTABLE, &t.name);
    for c in &t.chains {
        let mut a = Nla(Vec::new());
        a.str(1, &t.name); // NFTA_CHAIN_TABLE
        a.str(3, &c.name); // NFTA_CHAIN_NAME
        if let Some((ty, hook, prio)) = c.base {
            a.nest(4, |h| {
                h.be32(1, hook.num()); // NFTA_HOOK_HOOKNUM
                h.be32(2, prio as u32); // NFTA_HOOK_PRIORITY
            });
            a.be32(5, NF_ACCEPT as u32); // NFTA_CHAIN_POLICY
            a.str(7, ty); // NFTA_CHAIN_TYPE
        }
        b.nft(NFT_MSG_NEWCHAIN, NLM_F_CREATE, a);
    }
    for (chain, exprs, _) in &t.rules {
        let mut a = Nla(Vec::new());
        a.str(1, &t.name); // NFTA_RULE_TABLE
        a.str(2, chain); // NFTA_RULE_CHAIN
        a.nest(4, |l| exprs.iter().for_each(|e| e.encode(l))); // NFTA_RULE_EXPRESSIONS
        b.nft(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, a);
    }
    b.finish()
}

/// Sends a batch and waits for every ack; the kernel applied all of it or nothing.
pub fn send(batch: &[u8], acks: u32, what: &str) -> Result<()> {
    let mut sock = Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io("open a netfilter netlink socket", e))?;
    sock.bind_auto().map_err(|e| Error::io("bind a netfilter netlink socket", e))?;
    sock.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::io("connect a netfilter netlink socket", e))?;
    let tv = libc::timeval { tv_sec: 5, tv_usec: 0 };
    // SAFETY: setsockopt on an owned socket with a correctly sized timeval.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&tv as *const libc::timeval).cast(), std::mem::size_of::<libc::timeval>() as u32);
    }
    sock.send(batch, 0).map_err(|e| Error::io(format!("{what}: send the nftables batch"), e))?;
    let mut seen = 0;
    let mut failure: Option<Error> = None;
    let mut buf = vec![0u8; 64 * 1024];
    while seen < acks {
        let n = sock.recv(&mut &mut buf[..], 0).map_err(|e| Error::io(format!("{what}: read the nftables acks"), e))?;
        let mut off = 0;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
            let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
            if ty == NLMSG_ERROR && off + 20 <= n {
                seen += 1;
                let code = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().expect("4 bytes"));
                if code != 0 && failure.is_none() {
                    failure = Some(Error::io(what.to_owned(), std::io::Error::from_raw_os_error(-code)));
                }
            }
            if len < 16 {
                break;
            }
            off += len.next_multiple_of(4);
        }
        // A failed batch is aborted: the kernel reports the error and not every ack.
        if failure.is_some() {
            break;
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Rule building blocks, each with its nft text.
pub struct RuleBuilder {
    chain: String,
    exprs: Vec<Expr>,
    text: Vec<String>,
}

fn ifname(name: &str) -> Vec<u8> {
    let mut b = name.as_bytes().to_vec();
    b.resize(16, 0);
    b
}

impl RuleBuilder {
    pub fn new(chain: &str) -> RuleBuilder {
        RuleBuilder { chain: chain.into(), exprs: Vec::new(), text: Vec::new() }
    }

    fn add(mut self, exprs: Vec<Expr>, text: String) -> Self {
        self.exprs.extend(exprs);
        self.text.push(text);
        self
    }

    pub fn iifname(self, name: &str, eq: bool) -> Self {
        let op = if eq { "" } else { "!= " };
        self.add(vec![Expr::Meta(6), Expr::Cmp(u32::from(!eq), ifname(name))], format!("iifname {op}\"{name}\""))
    }

    pub fn oifname(self, name: &str, eq: bool) -> Self {
        let op = if eq { "" } else { "!= " };
        self.add(vec![Expr::Meta(7), Expr::Cmp(u32::from(!eq), ifname(name))], format!("oifname {op}\"{name}\""))
    }

    pub fn saddr_in(self, net: ipnet::Ipv4Net) -> Self {
        self.add(
            vec![Expr::Payload(1, 12, 4), Expr::Mask(net.netmask().octets().to_vec()), Expr::Cmp(0, net.network().octets().to_vec())],
            format!("ip saddr {net}"),
        )
    }

    pub fn daddr(self, a: Ipv4Addr) -> Self {
        self.add(vec![Expr::Payload(1, 16, 4), Expr::Cmp(0, a.octets().to_vec())], format!("ip daddr {a}"))
    }

    /// `meta l4proto tcp th dport N` (proto 6 or 17).
    pub fn dport(self, proto: u8, port: u16) -> Self {
        let name = if proto == 6 { "tcp" } else { "udp" };
        self.add(
            vec![Expr::Meta(16), Expr::Cmp(0, vec![proto]), Expr::Payload(2, 2, 2), Expr::Cmp(0, port.to_be_bytes().to_vec())],
            format!("{name} dport {port}"),
        )
    }

    pub fn fib_local(self) -> Self {
        // RTN_LOCAL = 2, in host order as the fib expression stores it.
        self.add(vec![Expr::FibDaddrType, Expr::Cmp(0, 2u32.to_ne_bytes().to_vec())], "fib daddr type local".into())
    }

    /// ct state established,related.
    pub fn ct_established(self) -> Self {
        self.add(vec![Expr::Ct(0), Expr::Mask(6u32.to_ne_bytes().to_vec()), Expr::Cmp(1, vec![0; 4])], "ct state established,related".into())
    }

    /// ct status dnat.
    pub fn ct_dnat(self) -> Self {
        self.add(vec![Expr::Ct(2), Expr::Mask(32u32.to_ne_bytes().to_vec()), Expr::Cmp(1, vec![0; 4])], "ct status dnat".into())
    }

    pub fn verdict(self, code: i32) -> (String, Vec<Expr>, String) {
        let t = match code {
            NF_ACCEPT => "accept",
            NF_DROP => "drop",
            _ => "verdict",
        };
        self.add(vec![Expr::Verdict(code, None)], t.into()).done()
    }

    pub fn jump(self, chain: &str) -> (String, Vec<Expr>, String) {
        self.add(vec![Expr::Verdict(NFT_JUMP, Some(chain.into()))], format!("jump {chain}")).done()
    }

    pub fn masquerade(self) -> (String, Vec<Expr>, String) {
        self.add(vec![Expr::Masquerade], "masquerade".into()).done()
    }

    pub fn dnat(self, to: Ipv4Addr, port: u16) -> (String, Vec<Expr>, String) {
        self.add(
            vec![Expr::Imm(1, to.octets().to_vec()), Expr::Imm(2, port.to_be_bytes().to_vec()), Expr::Dnat],
            format!("dnat to {to}:{port}"),
        )
        .done()
    }

    fn done(self) -> (String, Vec<Expr>, String) {
        (self.chain, self.exprs, self.text.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_layout() {
        let t = Table {
            name: "t".into(),
            chains: vec![Chain { name: "c".into(), base: Some(("nat", Hook::Postrouting, 100)) }],
            rules: vec![RuleBuilder::new("c").masquerade()],
        };
        let (b, acks) = encode(&t);
        // add, delete, add table; one chain; one rule.
        assert_eq!(acks, 5);
        // Every message is 4-aligned and the lengths chain to the end.
        let mut off = 0;
        let mut types = Vec::new();
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            types.push(u16::from_ne_bytes(b[off + 4..off + 6].try_into().unwrap()));
            assert_eq!(len % 4, 0);
            off += len;
        }
        assert_eq!(off, b.len());
        assert_eq!(types, vec![16, 0xa00, 0xa02, 0xa00, 0xa03, 0xa06, 17]);
    }

    #[test]
    fn attribute_encoding() {
        let mut a = Nla(Vec::new());
        a.str(1, "abc");
        assert_eq!(a.0, [8, 0, 1, 0, b'a', b'b', b'c', 0]);
        let mut a = Nla(Vec::new());
        a.nest(4, |n| n.be32(1, 7));
        assert_eq!(a.0, [12, 0, 4, 0x80, 8, 0, 1, 0, 0, 0, 0, 7]);
    }

    #[test]
    fn rule_text() {
        let r = RuleBuilder::new("ports").daddr([127, 0, 0, 1].into()).dport(6, 8080).dnat([10, 1, 0, 2].into(), 80);
        assert_eq!(r.2, "ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.1.0.2:80");
        assert_eq!(r.1.len(), 9);
    }
}
