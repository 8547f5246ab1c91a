//! `network create|ls|inspect|rm|prune|connect|disconnect`, printed as the docker CLI
//! prints them.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use berth_api::container_config::{EndpointIpamConfig, EndpointSettings};
use berth_api::network::{Ipam, IpamConfig, Network, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};

use super::lifecycle::{confirm, filters};
use crate::cli::network::{NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs, NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs};
use crate::cli::InspectArgs;
use crate::format::json::Json;
use crate::format::Format;
use crate::Ctx;

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];


/// Each --subnet with the --gateway and --ip-range inside it, as the docker CLI pairs them.
fn pools(a: &NetworkCreateArgs) -> Result<Vec<IpamConfig>> {
    let within = |subnet: &str, addr: &str| -> bool {
        let (Ok(net), Ok(ip)) = (subnet.parse::<ipnet::IpNet>(), addr.split('/').next().unwrap_or("").parse::<std::net::IpAddr>()) else { return false };
        net.contains(&ip)
    };
    let mut out: Vec<IpamConfig> = a.subnet.iter().map(|s| IpamConfig { subnet: s.clone(), ..Default::default() }).collect();
    for g in &a.gateway {
        let p = out.iter_mut().find(|p| within(&p.subnet, g) && p.gateway.is_empty()).ok_or_else(|| anyhow!("no matching subnet for gateway {g}"))?;
        p.gateway = g.clone();
    }
    for r in &a.ip_range {
        let p = out.iter_mut().find(|p| within(&p.subnet, r) && p.ip_range.is_empty()).ok_or_else(|| anyhow!("no matching subnet for range {r}"))?;
        p.ip_range = r.clone();
    }
    Ok(out)
}

pub fn create(c: &Ctx, a: &NetworkCreateArgs) -> Result<i32> {
    let labels = super::key_values(&a.label, "label")?;
    let opts = super::key_values(&a.opt, "opt")?;
    let pools = pools(a)?;
    let req = NetworkCreateRequest {
        name: a.name.clone(),
        driver: a.driver.clone(),
        internal: a.internal,
        attachable: a.attachable,
        enable_ipv6: a.ipv6.then_some(true),
        ipam: Some(Ipam { driver: "default".into(), config: Some(pools), options: Some(BTreeMap::new()) }),
        options: Some(opts),
        labels: Some(labels),
        ..Default::default()
    };
    println!("{}", c.client.network_create(&req)?.id);
    Ok(0)
}

/// Docker prints Go's time.Time: "2006-01-02 15:04:05.999999999 +0000 UTC".
fn go_time(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z').and_then(|t| t.split_once('T')) {
        Some((d, t)) => format!("{d} {} +0000 UTC", t.trim_end_matches('0').trim_end_matches('.')),
        None => rfc3339.to_owned(),
    }
}

fn row(n: &Network, trunc: bool) -> Json {
    let s = Json::str;
    let labels = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let id = if trunc { n.id.chars().take(12).collect() } else { n.id.clone() };
    Json::Obj(vec![
        ("CreatedAt".into(), s(go_time(&n.created))),
        ("Driver".into(), s(n.driver.clone())),
        ("ID".into(), s(id)),
        ("IPv4".into(), s(n.enable_ipv4.to_string())),
        ("IPv6".into(), s(n.enable_ipv6.to_string())),
        ("Internal".into(), s(n.internal.to_string())),
        ("Labels".into(), s(labels)),
        ("Name".into(), s(n.name.clone())),
        ("Scope".into(), s(n.scope.clone())),
    ])
}

pub fn ls(c: &Ctx, a: &NetworkLsArgs) -> Result<i32> {
    let mut list = c.client.network_list(&filters(&a.filter)?)?;
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let custom = a.format.as_deref().filter(|f| !f.is_empty() && *f != "table");
    if a.quiet && custom.is_none() {
        let out: String = list.iter().map(|n| format!("{}\n", if a.no_trunc { &n.id } else { &n.id[..n.id.len().min(12)] })).collect();
        print!("{out}");
        return Ok(0);
    }
    let rows: Vec<Json> = list.iter().map(|n| row(n, !a.no_trunc)).collect();
    let fmt = Format::parse(a.format.as_deref(), DEFAULT, HEADERS).map_err(|e| anyhow!(e))?;
    print!("{}", fmt.render(&rows, HEADERS).map_err(|e| anyhow!(e))?);
    Ok(0)
}

pub fn inspect(c: &Ctx, a: &NetworkInspectArgs) -> Result<i32> {
    let args = InspectArgs { format: a.format.clone(), size: false, kind: None, names: a.names.clone() };
    super::inspect::inspect(c, &args, Some("network"))
}

pub fn rm(c: &Ctx, a: &NetworkRmArgs) -> Result<i32> {
    let mut failed = Vec::new();
    for n in &a.networks {
        match c.client.network_remove(n) {
            Ok(()) => println!("{n}"),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => failed.push(e.to_string()),
        }
    }
    // The docker CLI prints each failure, then its bare status error.
    if failed.is_empty() {
        return Ok(0);
    }
    for f in failed {
        eprintln!("{f}");
    }
    Err(anyhow!("exit status 1"))
}

pub fn prune(c: &Ctx, a: &NetworkPruneArgs) -> Result<i32> {
    if !a.force && !confirm("WARNING! This will remove all custom networks not used by at least one container.") {
        return Ok(0);
    }
    let r = c.client.network_prune(&filters(&a.filter)?)?;
    let deleted = r.networks_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        let mut out = "Deleted Networks:\n".to_owned();
        for n in &deleted {
            out.push_str(n);
            out.push('\n');
        }
        println!("{out}");
    }
    Ok(0)
}

pub fn connect(c: &Ctx, a: &NetworkConnectArgs) -> Result<i32> {
    let settings = EndpointSettings {
        ipam_config: a.ip.as_ref().map(|ip| EndpointIpamConfig { ipv4_address: ip.clone(), ..Default::default() }),
        aliases: (!a.alias.is_empty()).then(|| a.alias.clone()),
        ..Default::default()
    };
    c.client.network_connect(&a.network, &NetworkConnectRequest { container: a.container.clone(), endpoint_config: Some(settings) })?;
    Ok(0)
}

pub fn disconnect(c: &Ctx, a: &NetworkDisconnectArgs) -> Result<i32> {
    c.client.network_disconnect(&a.network, &NetworkDisconnectRequest { container: a.container.clone(), force: a.force })?;
    Ok(0)
}
