//! The /etc/hostname, /etc/hosts and /etc/resolv.conf each container gets, written under its
//! directory in the data root and bind-mounted by the spec.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct EtcPaths {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

impl EtcPaths {
    pub fn in_dir(dir: &Path) -> EtcPaths {
        EtcPaths { hostname: dir.join("hostname"), hosts: dir.join("hosts"), resolv_conf: dir.join("resolv.conf") }
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

/// The host's resolv.conf with loopback name servers dropped (they mean nothing inside a
/// network namespace), as Docker does; when none are left, Google's public ones are Docker's
/// fallback, here only written, never contacted by Berth.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if ns.starts_with("127.") || ns == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// `--dns`, `--dns-search`, `--dns-option` over a resolv.conf, as Docker applies them: each
/// one given replaces the file's lines of its kind (`--dns-search .`: no search list).
pub fn with_overrides(resolv: &str, servers: &[String], search: &[String], options: &[String]) -> String {
    let mut out = String::new();
    for line in resolv.lines() {
        let t = line.trim_start();
        let replaced = (!servers.is_empty() && t.starts_with("nameserver"))
            || (!search.is_empty() && (t.starts_with("search") || t.starts_with("domain")))
            || (!options.is_empty() && t.starts_with("options"));
        if !replaced {
            out.push_str(line);
            out.push('\n');
        }
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() && search != ["."] {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// `container:` network mode: the joined container's files (Docker shares them).
pub fn copy_all(from: &EtcPaths, to: &EtcPaths) -> Result<()> {
    for (a, b) in [(&from.hostname, &to.hostname), (&from.hosts, &to.hosts), (&from.resolv_conf, &to.resolv_conf)] {
        std::fs::copy(a, b).map_err(|e| Error::io("copy", a, e))?;
    }
    Ok(())
}

/// Writes the three files for a container; `host_network` copies the host's own; `ip` (on a
/// bridge) names the container in /etc/hosts as Docker does, else 127.0.1.1 does.
pub fn write_all(p: &EtcPaths, ip: Option<std::net::Ipv4Addr>, hostname: &str, domainname: &str, host_network: bool, extra_hosts: &[String]) -> Result<()> {
    write(&p.hostname, &format!("{hostname}\n"))?;
    let mut hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        let fqdn = if domainname.is_empty() { String::new() } else { format!("{hostname}.{domainname} ") };
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{self_ip}\t{fqdn}{hostname}\n",
            self_ip = ip.map_or_else(|| "127.0.1.1".to_owned(), |a| a.to_string())
        )
    };
    for h in extra_hosts {
        // "name:ip" (Docker also accepts "name=ip").
        if let Some((name, ip)) = h.split_once('=').or_else(|| h.split_once(':')) {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    write(&p.hosts, &hosts)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write(&p.resolv_conf, &if host_network { host_resolv } else { resolv_conf(&host_resolv) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn resolv_drops_loopback() {
        let r = super::resolv_conf("search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n");
        assert_eq!(r, "search lan\nnameserver 10.0.0.2\n");
        assert!(super::resolv_conf("nameserver 127.0.0.1\n").contains("8.8.8.8"));
    }

    #[test]
    fn dns_overrides() {
        let host = "search lan\nnameserver 10.0.0.2\noptions edns0\n";
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(super::with_overrides(host, &[], &[], &[]), host);
        assert_eq!(
            super::with_overrides(host, &s(&["1.1.1.1", "9.9.9.9"]), &s(&["a.test", "b.test"]), &s(&["ndots:3"])),
            "nameserver 1.1.1.1\nnameserver 9.9.9.9\nsearch a.test b.test\noptions ndots:3\n"
        );
        assert_eq!(super::with_overrides(host, &[], &s(&["."]), &[]), "nameserver 10.0.0.2\noptions edns0\n");
    }

    #[test]
    fn hosts_name_the_container_by_its_address() {
        let d = tempfile::tempdir().unwrap();
        let p = super::EtcPaths::in_dir(d.path());
        super::write_all(&p, Some("10.1.0.5".parse().unwrap()), "web", "", false, &[]).unwrap();
        let hosts = std::fs::read_to_string(&p.hosts).unwrap();
        assert!(hosts.contains("10.1.0.5\tweb\n") && !hosts.contains("127.0.1.1"), "{hosts}");
        super::write_all(&p, None, "web", "", false, &[]).unwrap();
        assert!(std::fs::read_to_string(&p.hosts).unwrap().contains("127.0.1.1\tweb\n"));
    }
}
