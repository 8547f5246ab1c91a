//! Legacy `--link TARGET[:ALIAS]`, as Docker keeps it: on the default bridge the target's
//! address goes into /etc/hosts (alias, hostname, name) and its exposed ports and environment
//! into `ALIAS_*` variables; on a user network the alias is a name the embedded DNS server
//! answers for the linking container only.

use berth_api::container_config::HostConfig;

use crate::error::{Error, Result};
use crate::network::NetMode;
use crate::record::Record;
use crate::state::Status;
use crate::Engine;

/// (target name or ID, alias) from `web`, `web:db` or Docker's stored `/web:/self/db`.
pub(crate) fn parse(link: &str) -> Result<(String, String)> {
    let (target, alias) = match link.split_once(':') {
        Some((t, a)) => (t, a.rsplit('/').next().unwrap_or(a)),
        None => (link, link),
    };
    let target = target.trim_start_matches('/');
    let alias = alias.trim_start_matches('/');
    if target.is_empty() || alias.is_empty() {
        return Err(Error::InvalidParameter(format!("invalid link format: {link}")));
    }
    Ok((target.to_owned(), alias.to_owned()))
}

/// `ALIAS_...` variables for a target at `ip` with its exposed ports and environment.
fn env_for(self_name: &str, alias: &str, ip: &str, target: &Record) -> Vec<String> {
    let p = alias.to_ascii_uppercase().replace('-', "_");
    let mut env = vec![format!("{p}_NAME=/{self_name}/{alias}")];
    let mut ports: Vec<(u16, String)> = target
        .config
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys())
        .filter_map(|k| {
            let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
            Some((port.parse().ok()?, proto.to_owned()))
        })
        .collect();
    ports.sort();
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{p}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in &ports {
        let k = format!("{p}_PORT_{port}_{}", proto.to_ascii_uppercase());
        env.extend([
            format!("{k}={proto}://{ip}:{port}"),
            format!("{k}_ADDR={ip}"),
            format!("{k}_PORT={port}"),
            format!("{k}_PROTO={proto}"),
        ]);
    }
    for v in target.config.env.iter().flatten() {
        if let Some((k, val)) = v.split_once('=') {
            // Docker leaves out what every image sets.
            if k != "HOME" && k != "PATH" {
                env.push(format!("{p}_ENV_{k}={val}"));
            }
        }
    }
    env
}

impl Engine {
    /// Create: each target exists and the mode allows links; stored as Docker stores them
    /// (`/target:/self/alias`).
    pub(crate) fn normalize_links(&self, self_name: &str, host: &mut HostConfig) -> Result<()> {
        let Some(links) = host.links.as_ref().filter(|l| !l.is_empty()) else { return Ok(()) };
        match NetMode::of(host)? {
            NetMode::Host => return Err(Error::InvalidParameter("conflicting options: host type networking can't be used with links. This would result in undefined behavior".into())),
            NetMode::Container(_) => return Err(Error::InvalidParameter("conflicting options: container type network can't be used with links. This would result in undefined behavior".into())),
            _ => {}
        }
        let mut out = Vec::new();
        for l in links {
            let (target, alias) = parse(l)?;
            let rec = self.get(&target).map_err(|_| Error::InvalidParameter(format!("could not get container for {target}")))?;
            out.push(format!("/{}:/{self_name}/{alias}", rec.name));
        }
        host.links = Some(out);
        Ok(())
    }

    /// Start: the running targets' /etc/hosts lines (`NAMES:IP`, as `--add-host`) and
    /// variables, for a container on the default bridge.
    pub(crate) fn link_entries(&self, rec: &Record) -> Result<(Vec<String>, Vec<String>)> {
        let (mut hosts, mut env) = (Vec::new(), Vec::new());
        let Some(bridge) = self.networks.default_bridge() else { return Ok((hosts, env)) };
        if bridge.endpoint(&rec.id).is_none() {
            return Ok((hosts, env));
        }
        for l in rec.host_config.links.iter().flatten() {
            let (target, alias) = parse(l)?;
            let t = self.get(&target)?;
            let ep = bridge.endpoint(&t.id).filter(|_| matches!(t.state.status, Status::Running | Status::Paused));
            let Some(ep) = ep else {
                return Err(Error::Conflict(format!("Cannot link to a non running container: /{} AS /{}/{alias}", t.name, rec.name)));
            };
            let ip = ep.ip.to_string();
            let mut names = format!("{alias} {}", t.config.hostname);
            if alias != t.name {
                names.push_str(&format!(" {}", t.name));
            }
            hosts.push(format!("{names}:{ip}"));
            env.extend(env_for(&rec.name, &alias, &ip, &t));
        }
        Ok((hosts, env))
    }

    /// The link targets a container calls `alias` (for its embedded DNS answers).
    pub(crate) fn link_targets(&self, rec: &Record, alias: &str) -> Vec<String> {
        let links = rec.host_config.links.iter().flatten().filter_map(|l| parse(l).ok());
        links.filter(|(_, a)| a.eq_ignore_ascii_case(alias)).filter_map(|(t, _)| self.resolve(&t).ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_links() {
        assert_eq!(parse("web").unwrap(), ("web".into(), "web".into()));
        assert_eq!(parse("web:db").unwrap(), ("web".into(), "db".into()));
        assert_eq!(parse("/web:/app/db").unwrap(), ("web".into(), "db".into()));
        assert!(parse(":x").is_err());
    }

    #[test]
    fn link_variables() {
        let mut t: Record = serde_json::from_value(serde_json::json!({
            "id": "t".repeat(64), "name": "web", "created": "", "image_ref": "", "image_id": "",
            "config": {"ExposedPorts": {"8080/tcp": {}, "53/udp": {}}, "Env": ["PATH=/bin", "MODE=prod"]},
            "host_config": {}, "path": "", "args": [], "state": serde_json::to_value(crate::state::State::default()).unwrap(), "restart_count": 0, "monitor": null,
            "manually_stopped": false, "has_been_started": false
        }))
        .unwrap();
        t.config.hostname = "h".into();
        let env = env_for("app", "db-1", "10.0.0.5", &t);
        assert_eq!(env, [
            "DB_1_NAME=/app/db-1",
            "DB_1_PORT=udp://10.0.0.5:53",
            "DB_1_PORT_53_UDP=udp://10.0.0.5:53",
            "DB_1_PORT_53_UDP_ADDR=10.0.0.5",
            "DB_1_PORT_53_UDP_PORT=53",
            "DB_1_PORT_53_UDP_PROTO=udp",
            "DB_1_PORT_8080_TCP=tcp://10.0.0.5:8080",
            "DB_1_PORT_8080_TCP_ADDR=10.0.0.5",
            "DB_1_PORT_8080_TCP_PORT=8080",
            "DB_1_PORT_8080_TCP_PROTO=tcp",
            "DB_1_ENV_MODE=prod",
        ]);
    }
}
