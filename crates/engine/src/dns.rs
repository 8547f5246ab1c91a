//! Embedded DNS for user networks, as Docker's: a container on a user network has
//! `nameserver 127.0.0.11`; berthd answers A queries for the names, 12-hex short IDs and
//! network aliases of the containers that share a user network with the asker (every
//! address of a shared name, rotated per query), and forwards anything else to the host's
//! non-loopback resolvers (SERVFAIL when there are none).
//!
//! No NAT: each container's sandbox gets its own UDP socket and TCP listener on
//! 127.0.0.11:53, made inside its namespace (`sandbox::bind_inside`) and served here by tasks
//! on berthd's runtime, stopped with the container's network (a socket would keep its
//! namespace, and with it the veth pair, alive).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record as RR, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::{lock, Engine};

pub(crate) const ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
pub(crate) struct Dns {
    /// Per container: its server tasks.
    servers: Mutex<HashMap<String, Vec<tokio::task::AbortHandle>>>,
    /// Rotates the order of a shared name's addresses (round-robin).
    turn: AtomicUsize,
}

/// The host's resolvers a container may use: its resolv.conf's name servers, minus loopback
/// ones (they mean nothing from berthd's view of a container's question either).
fn upstreams(resolv_conf: &std::path::Path) -> Vec<SocketAddr> {
    let text = std::fs::read_to_string(resolv_conf).unwrap_or_default();
    let servers: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("nameserver")).collect();
    addresses(&servers)
}

fn addresses(servers: &[&str]) -> Vec<SocketAddr> {
    servers
        .iter()
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .filter(|a| !a.is_loopback())
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

/// Docker's resolv.conf for a container with the embedded server: the host's search and
/// options lines are kept, its name servers are replaced.
pub(crate) fn resolv_conf(host: &str) -> String {
    let mut out = format!("nameserver {ADDR}\n");
    let mut ndots = false;
    for l in host.lines().map(str::trim) {
        if l.starts_with("search") || l.starts_with("domain") {
            out.push_str(l);
            out.push('\n');
        } else if let Some(o) = l.strip_prefix("options") {
            ndots |= o.contains("ndots:");
            out.push_str(l);
            out.push('\n');
        }
    }
    if !ndots {
        out.push_str("options ndots:0\n");
    }
    out
}

/// A response to `query` with `code` and no records.
fn reply(query: &Message, code: ResponseCode) -> Message {
    let mut m = Message::new();
    m.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(code);
    m.add_queries(query.queries().to_vec());
    m
}

async fn forward(raw: &[u8], servers: Vec<SocketAddr>) -> Option<Vec<u8>> {
    for server in servers {
        let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse().ok()? } else { "[::]:0".parse().ok()? };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else { continue };
        if sock.send_to(raw, server).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, from))) = tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv_from(&mut buf)).await {
            if from == server {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

impl Engine {
    /// The addresses `name` has for container `asker`: None when it names no container on
    /// the asker's user networks (the question goes upstream then).
    pub(crate) fn dns_lookup(&self, asker: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mine: Vec<_> = self.networks.endpoints_of(asker).into_iter().filter(|(n, _)| !self.is_default_network(n)).collect();
        if mine.is_empty() || name.is_empty() {
            return None;
        }
        // Links are names for the linking container only.
        let linked = self.get(asker).map(|r| self.link_targets(&r, &name)).unwrap_or_default();
        let names: HashMap<String, String> = lock(&self.containers).values().map(|r| (r.id.clone(), r.name.to_ascii_lowercase())).collect();
        let mut out = Vec::new();
        for (n, _) in mine {
            for ep in n.endpoints() {
                let hit = names.get(&ep.container_id).is_some_and(|c| *c == name)
                    || (name.len() == 12 && ep.container_id.starts_with(&name))
                    || ep.aliases.iter().any(|a| a.eq_ignore_ascii_case(&name))
                    || linked.contains(&ep.container_id);
                if hit && !out.contains(&ep.ip) {
                    out.push(ep.ip);
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// A container's `--dns` servers, else the host's.
    fn dns_upstreams(&self, asker: &str) -> Vec<SocketAddr> {
        let own = lock(&self.containers).get(asker).and_then(|r| r.host_config.dns.clone()).unwrap_or_default();
        if own.is_empty() {
            upstreams(&self.cfg.resolv_conf)
        } else {
            addresses(&own.iter().map(String::as_str).collect::<Vec<_>>())
        }
    }

    /// The answer to one DNS message from container `asker` (None: not a query to answer).
    async fn dns_answer(self: Arc<Self>, asker: String, raw: Vec<u8>) -> Option<Vec<u8>> {
        let q = Message::from_vec(&raw).ok()?;
        if q.message_type() != MessageType::Query {
            return None;
        }
        let Some(question) = q.queries().first().cloned() else {
            return reply(&q, ResponseCode::FormErr).to_vec().ok();
        };
        let local = self.dns_lookup(&asker, &question.name().to_ascii());
        let m = match local {
            Some(mut ips) => {
                let mut m = reply(&q, ResponseCode::NoError);
                m.set_authoritative(true);
                // Other types (AAAA...) of a container's name: no records, not NXDOMAIN.
                if question.query_type() == RecordType::A {
                    let n = ips.len();
                    ips.rotate_left(self.dns.turn.fetch_add(1, Ordering::Relaxed) % n);
                    for ip in ips {
                        m.add_answer(RR::from_rdata(question.name().clone(), TTL, RData::A(A(ip))));
                    }
                }
                m
            }
            None => match forward(&raw, self.dns_upstreams(&asker)).await {
                Some(answer) => return Some(answer),
                None => reply(&q, ResponseCode::ServFail),
            },
        };
        m.to_vec().ok()
    }

    /// Serves 127.0.0.11:53 inside a container's sandbox (again after a daemon restart);
    /// a no-op when it already does.
    pub(crate) fn dns_start(self: &Arc<Self>, id: &str, sandbox: &std::path::Path) -> Result<()> {
        let mut servers = lock(&self.dns.servers);
        if servers.contains_key(id) {
            return Ok(());
        }
        let (udp, tcp) = berth_network::sandbox::bind_inside(sandbox, SocketAddr::from((ADDR, 53)))?;
        let _rt = self.rt.enter();
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| Error::io("register", "the DNS socket", e))?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| Error::io("register", "the DNS listener", e))?;
        let weak = Arc::downgrade(self);
        let tasks = vec![
            self.rt.spawn(serve_udp(weak.clone(), id.to_owned(), Arc::new(udp))).abort_handle(),
            self.rt.spawn(serve_tcp(weak, id.to_owned(), tcp)).abort_handle(),
        ];
        servers.insert(id.to_owned(), tasks);
        Ok(())
    }

    /// Stops a container's server (its sockets close with the tasks).
    pub(crate) fn dns_stop(&self, id: &str) {
        if let Some(tasks) = lock(&self.dns.servers).remove(id) {
            for t in tasks {
                t.abort();
            }
        }
    }

    /// Whether a container with these endpoints gets the embedded server.
    pub(crate) fn wants_dns(&self, id: &str) -> Option<std::path::PathBuf> {
        self.networks.endpoints_of(id).into_iter().find(|(n, _)| !self.is_default_network(n)).map(|(_, e)| e.sandbox)
    }

    /// After a daemon restart: the servers of the running containers on user networks.
    pub(crate) fn dns_restore(self: &Arc<Self>) {
        for rec in self.records() {
            if !matches!(rec.state.status, crate::state::Status::Running | crate::state::Status::Paused) {
                continue;
            }
            if let Some(sandbox) = self.wants_dns(&rec.id) {
                if let Err(e) = self.dns_start(&rec.id, &sandbox) {
                    eprintln!("berthd: embedded DNS for {}: {e}", rec.short_id());
                }
            }
        }
    }
}

async fn serve_udp(engine: Weak<Engine>, id: String, sock: Arc<tokio::net::UdpSocket>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
        let Some(e) = engine.upgrade() else { return };
        let (raw, id, sock) = (buf[..n].to_vec(), id.clone(), sock.clone());
        // One task per question: a slow upstream must not hold the others up.
        tokio::spawn(async move {
            if let Some(answer) = e.dns_answer(id, raw).await {
                let _ = sock.send_to(&answer, from).await;
            }
        });
    }
}

async fn serve_tcp(engine: Weak<Engine>, id: String, listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { return };
        let (engine, id) = (engine.clone(), id.clone());
        tokio::spawn(async move {
            // Length-prefixed messages until the client closes (RFC 1035 4.2.2).
            loop {
                let Ok(len) = conn.read_u16().await else { return };
                let mut raw = vec![0u8; len as usize];
                if conn.read_exact(&mut raw).await.is_err() {
                    return;
                }
                let Some(e) = engine.upgrade() else { return };
                let Some(answer) = e.dns_answer(id.clone(), raw).await else { return };
                let Ok(n) = u16::try_from(answer.len()) else { return };
                if conn.write_u16(n).await.is_err() || conn.write_all(&answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_keeps_search_and_options() {
        let host = "# x\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n";
        assert_eq!(resolv_conf(host), "nameserver 127.0.0.11\nsearch corp.example\noptions edns0\noptions ndots:0\n");
        assert_eq!(resolv_conf("options ndots:2\n"), "nameserver 127.0.0.11\noptions ndots:2\n");
    }

    #[test]
    fn replies_carry_the_question() {
        let mut q = Message::new();
        q.set_id(77).set_recursion_desired(true);
        q.add_query(hickory_proto::op::Query::query("web.".parse().unwrap(), RecordType::A));
        let r = reply(&q, ResponseCode::ServFail);
        let r = Message::from_vec(&r.to_vec().unwrap()).unwrap();
        assert_eq!((r.id(), r.message_type(), r.response_code()), (77, MessageType::Response, ResponseCode::ServFail));
        assert_eq!(r.queries()[0].name().to_ascii(), "web.");
    }
}
