//! Berth's nftables table for one bridge, generated whole from the network's state and
//! replaced atomically: outbound masquerade, forwarding to and from the bridge, and the DNAT
//! of published ports (from outside, from the host itself including 127.0.0.1, and from
//! other containers).

use ipnet::Ipv4Net;

use crate::nft::{Chain, Hook, RuleBuilder as R, Table, NF_ACCEPT, NF_DROP};
use crate::ops::Endpoint;

/// `berth` for the default `berth0`; one table per bridge so daemons never share rules.
pub fn table_name(bridge: &str) -> String {
    if bridge == "berth0" {
        "berth".into()
    } else {
        format!("berth-{bridge}")
    }
}

/// `internal`: nothing leaves the bridge for another interface and nothing is masqueraded.
pub fn ruleset<'a>(bridge: &str, subnet: Ipv4Net, internal: bool, endpoints: impl Iterator<Item = &'a Endpoint>) -> Table {
    let b = bridge;
    let loopback: Ipv4Net = "127.0.0.0/8".parse().expect("valid prefix");
    let chains = vec![
        Chain { name: "prerouting".into(), base: Some(("nat", Hook::Prerouting, -100)) },
        Chain { name: "output".into(), base: Some(("nat", Hook::Output, -100)) },
        Chain { name: "ports".into(), base: None },
        Chain { name: "forward".into(), base: Some(("filter", Hook::Forward, 0)) },
        Chain { name: "postrouting".into(), base: Some(("nat", Hook::Postrouting, 100)) },
    ];
    let mut rules = vec![
        R::new("prerouting").fib_local().jump("ports"),
        R::new("output").fib_local().jump("ports"),
    ];
    for ep in endpoints {
        for m in &ep.ports {
            let r = R::new("ports");
            let r = if m.host_ip.is_unspecified() { r } else { r.daddr(m.host_ip) };
            rules.push(r.dport(m.proto.number(), m.host_port).dnat(ep.ip, m.container_port));
        }
    }
    if internal {
        rules.push(R::new("forward").iifname(b, true).oifname(b, false).verdict(NF_DROP));
        // Traffic between its containers passes (with br_netfilter it is seen here too).
        rules.push(R::new("forward").oifname(b, true).iifname(b, false).verdict(NF_DROP));
        return Table { name: table_name(bridge), chains, rules };
    }
    rules.extend([
        R::new("forward").iifname(b, true).verdict(NF_ACCEPT),
        R::new("forward").oifname(b, true).ct_established().verdict(NF_ACCEPT),
        R::new("forward").oifname(b, true).ct_dnat().verdict(NF_ACCEPT),
        // Nothing else reaches the containers from other interfaces or networks.
        R::new("forward").oifname(b, true).verdict(NF_DROP),
        R::new("postrouting").saddr_in(subnet).oifname(b, false).masquerade(),
        // 127.0.0.1:port published: the DNATed packet leaves by the bridge (route_localnet)
        // and must not carry a loopback source.
        R::new("postrouting").oifname(b, true).saddr_in(loopback).masquerade(),
        // A container reaching a published port of the bridge: the reply must come back
        // through the host, not straight over the bridge.
        R::new("postrouting").oifname(b, true).ct_dnat().saddr_in(subnet).masquerade(),
    ]);
    Table { name: table_name(bridge), chains, rules }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{PortMapping, Proto};

    #[test]
    fn rules_for_a_published_port() {
        let ep = Endpoint {
            container_id: "c".repeat(64),
            endpoint_id: String::new(),
            ip: "10.3.0.2".parse().unwrap(),
            prefix_len: 24,
            gateway: "10.3.0.1".parse().unwrap(),
            mac: String::new(),
            veth: "vethx".into(),
            sandbox: "/x".into(),
            ports: vec![
                PortMapping { proto: Proto::Tcp, container_port: 80, host_ip: "127.0.0.1".parse().unwrap(), host_port: 8080 },
                PortMapping { proto: Proto::Udp, container_port: 53, host_ip: "0.0.0.0".parse().unwrap(), host_port: 5353 },
            ],
            ifname: "eth0".into(),
            default_route: true,
            aliases: Vec::new(),
        };
        let t = ruleset("bt0", "10.3.0.0/24".parse().unwrap(), false, [ep].iter());
        assert_eq!(t.name, "berth-bt0");
        assert_eq!(table_name("berth0"), "berth");
        let text: Vec<String> = t.rules.iter().map(|(c, _, t)| format!("{c}: {t}")).collect();
        assert_eq!(text, vec![
            "prerouting: fib daddr type local jump ports",
            "output: fib daddr type local jump ports",
            "ports: ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.3.0.2:80",
            "ports: udp dport 5353 dnat to 10.3.0.2:53",
            "forward: iifname \"bt0\" accept",
            "forward: oifname \"bt0\" ct state established,related accept",
            "forward: oifname \"bt0\" ct status dnat accept",
            "forward: oifname \"bt0\" drop",
            "postrouting: ip saddr 10.3.0.0/24 oifname != \"bt0\" masquerade",
            "postrouting: oifname \"bt0\" ip saddr 127.0.0.0/8 masquerade",
            "postrouting: oifname \"bt0\" ct status dnat ip saddr 10.3.0.0/24 masquerade",
        ]);
        let t = ruleset("bt0", "10.3.0.0/24".parse().unwrap(), true, std::iter::empty());
        let text: Vec<String> = t.rules.iter().map(|(c, _, t)| format!("{c}: {t}")).collect();
        assert!(text.contains(&"forward: iifname \"bt0\" oifname != \"bt0\" drop".to_string()), "{text:?}");
        assert!(!text.iter().any(|r| r.contains("masquerade")));
    }
}
