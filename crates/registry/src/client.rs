//! One registry endpoint: HTTPS by default (plain HTTP only for loopback and the daemon's
//! insecure registries), and its authentication: anonymous, basic, or bearer tokens fetched
//! from the challenge's realm and cached per scope.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::auth::{AuthConfig, Challenge};
use crate::error::{Error, Result};
use crate::tls;

/// How to reach registries (from the daemon's configuration).
#[derive(Debug, Clone)]
pub struct Options {
    /// Hosts (HOST[:PORT]) or CIDRs that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// `certs.d` directories, searched in order.
    pub certs_dirs: Vec<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options { insecure: Vec::new(), certs_dirs: tls::default_certs_dirs() }
    }
}

/// The request body: replayable ones are re-sent after an authentication challenge.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of this length (sent once: authorise before sending it).
    Reader(Box<dyn Read + Send + 'a>, u64),
    /// A stream of unknown length, sent chunked (once).
    Chunked(Box<dyn Read + Send + 'a>),
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<String, String>,
}

pub struct Client {
    /// As in references: `127.0.0.1:5000`, `docker.io`.
    host: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    base: String,
    agent: ureq::Agent,
    auth: Option<AuthConfig>,
    state: Mutex<AuthState>,
}

/// The API host of a reference's registry.
fn api_host(host: &str) -> &str {
    if host == berth_image::reference::DEFAULT_DOMAIN || host == "index.docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

/// Whether `host` may be reached over plain HTTP: loopback, or listed as insecure (by host,
/// host:port, or a CIDR holding its address).
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    let name = host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let ip: Option<IpAddr> = name.parse().ok();
    if name == "localhost" || ip.is_some_and(|i| i.is_loopback()) {
        return true;
    }
    insecure.iter().any(|entry| {
        if entry == host || entry == name {
            return true;
        }
        let (Some(ip), Some((net, bits))) = (ip, entry.split_once('/')) else {
            return false;
        };
        match (ip, net.parse::<IpAddr>(), bits.parse::<u32>()) {
            (IpAddr::V4(a), Ok(IpAddr::V4(n)), Ok(b)) if b <= 32 => {
                let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), Ok(IpAddr::V6(n)), Ok(b)) if b <= 128 => {
                let mask = if b == 0 { 0 } else { u128::MAX << (128 - b) };
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    })
}

/// The registry's error message from an error response body (`{"errors":[{code,message}]}`).
pub(crate) fn registry_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        errors: Vec<E>,
    }
    match serde_json::from_str::<Es>(body) {
        Ok(es) if !es.errors.is_empty() => es
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code.to_lowercase().replace('_', " "), e.message))
            .collect::<Vec<_>>()
            .join(", "),
        _ => body.trim().chars().take(200).collect(),
    }
}

/// An error for a response the caller did not expect.
pub fn status_error(what: &str, resp: ureq::Response) -> Error {
    let status = resp.status();
    let text = resp.status_text().to_owned();
    let body = resp.into_string().unwrap_or_default();
    let msg = format!("{what}: {}", if body.trim().is_empty() { format!("{status} {text}") } else { registry_message(&body) });
    match status {
        401 | 403 => Error::Unauthorized(msg),
        404 => Error::NotFound(msg),
        _ => Error::Registry(msg),
    }
}

fn transport(url: &str, e: ureq::Transport) -> Error {
    Error::Registry(format!("Get \"{url}\": {e}"))
}

impl Client {
    /// Connects to a mirror of `host` (Docker Hub) at `url` (`https://mirror.lan`,
    /// `http://127.0.0.1:5000`): the scheme is the mirror's.
    pub fn connect_mirror(url: &str, host: &str, auth: Option<AuthConfig>, opts: &Options) -> Result<Client> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::InvalidArgument(format!("invalid registry mirror {url}: it must start with http:// or https://")))?;
        let api = rest.trim_end_matches('/');
        if !matches!(scheme, "http" | "https") || api.is_empty() || api.contains('/') {
            return Err(Error::InvalidArgument(format!("invalid registry mirror {url}")));
        }
        let client = Client {
            host: host.to_owned(),
            base: format!("{scheme}://{api}"),
            agent: Self::agent(api, opts)?,
            auth: auth.filter(|a| !a.is_anonymous()),
            state: Mutex::new(AuthState::default()),
        };
        client.ping()?;
        Ok(client)
    }

    fn agent(api: &str, opts: &Options) -> Result<ureq::Agent> {
        Ok(ureq::AgentBuilder::new()
            .tls_config(tls::client_config(api, &opts.certs_dirs)?)
            .timeout_connect(Duration::from_secs(15))
            .redirects(8)
            .build())
    }

    /// Connects to the registry `host` (as references name it): HTTPS, or, for an insecure
    /// registry that does not speak TLS, HTTP. Pings `/v2/` to learn how it authenticates.
    pub fn connect(host: &str, auth: Option<AuthConfig>, opts: &Options) -> Result<Client> {
        let api = api_host(host);
        let agent = Self::agent(api, opts)?;
        let mut client = Client {
            host: host.to_owned(),
            base: format!("https://{api}"),
            agent,
            auth: auth.filter(|a| !a.is_anonymous()),
            state: Mutex::new(AuthState::default()),
        };
        match client.ping() {
            Ok(_) => {}
            Err(e) if is_insecure(api, &opts.insecure) => {
                client.base = format!("http://{api}");
                // Over HTTP only a registry's answer counts (not an HTTPS server's 400).
                match client.ping() {
                    Ok(200 | 401) => {}
                    Ok(_) => return Err(e),
                    Err(e2) => return Err(Error::Registry(format!("{e2} (over HTTPS: {e})"))),
                }
            }
            Err(e) => return Err(e),
        }
        Ok(client)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET /v2/: reachable (its status), and its challenge if it asks for one.
    fn ping(&self) -> Result<u16> {
        let url = format!("{}/v2/", self.base);
        match self.agent.get(&url).call() {
            Ok(r) => Ok(r.status()),
            Err(ureq::Error::Status(401, r)) => {
                self.lock().challenge = r.header("www-authenticate").and_then(Challenge::parse);
                Ok(401)
            }
            Err(ureq::Error::Status(code, _)) => Ok(code),
            Err(ureq::Error::Transport(t)) => Err(transport(&url, t)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the credentials with the registry, as `docker login` does.
    pub fn login(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let failed = |status: &str| Error::Unauthorized(format!("login attempt to {url} failed with status: {status}"));
        let challenge = self.lock().challenge.clone();
        let authz = match challenge {
            None => return Ok(()),
            Some(Challenge::Basic) => self.auth.as_ref().and_then(AuthConfig::basic),
            Some(Challenge::Bearer { realm, service, .. }) => {
                Some(format!("Bearer {}", self.fetch_token(&realm, service.as_deref(), None)?))
            }
        };
        let mut req = self.agent.get(&url);
        if let Some(a) = &authz {
            req = req.set("Authorization", a);
        }
        match req.call() {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, r)) => Err(failed(&format!("{code} {}", r.status_text()))),
            Err(ureq::Error::Transport(t)) => Err(transport(&url, t)),
        }
    }

    /// A bearer token from the challenge's realm (a refresh-token POST with an identity token,
    /// else a GET with basic credentials if any).
    fn fetch_token(&self, realm: &str, service: Option<&str>, scope: Option<&str>) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct Tok {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let auth = self.auth.as_ref();
        let result = match auth.filter(|a| !a.identitytoken.is_empty()) {
            Some(a) => {
                let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", a.identitytoken.as_str()), ("client_id", "berth")];
                form.extend(service.map(|s| ("service", s)));
                form.extend(scope.map(|s| ("scope", s)));
                self.agent.post(realm).send_form(&form)
            }
            None => {
                let mut q = form_urlencoded::Serializer::new(String::new());
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                if let Some(s) = scope {
                    q.append_pair("scope", s);
                }
                if let Some(a) = auth.filter(|a| !a.username.is_empty()) {
                    q.append_pair("account", &a.username);
                }
                let sep = if realm.contains('?') { '&' } else { '?' };
                let mut req = self.agent.get(&format!("{realm}{sep}{}", q.finish()));
                if let Some(b) = auth.and_then(AuthConfig::basic) {
                    req = req.set("Authorization", &b);
                }
                req.call()
            }
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(401 | 403, r)) => {
                // Token servers explain refusals in `details` (Docker Hub) or registry errors.
                let body = r.into_string().unwrap_or_default();
                let why = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("details").and_then(|d| d.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| registry_message(&body));
                return Err(Error::Unauthorized(format!("Get \"{realm}\": unauthorized: {why}")));
            }
            Err(ureq::Error::Status(_, r)) => return Err(status_error(&format!("fetching a token from {realm}"), r)),
            Err(ureq::Error::Transport(t)) => return Err(transport(realm, t)),
        };
        let t: Tok = serde_json::from_reader(resp.into_reader())
            .map_err(|e| Error::Registry(format!("token from {realm}: {e}")))?;
        let t = if t.token.is_empty() { t.access_token } else { t.token };
        if t.is_empty() {
            return Err(Error::Registry(format!("{realm} returned no token")));
        }
        Ok(t)
    }

    /// The Authorization header for `scope`, fetching (and caching) a token when needed.
    fn authorization(&self, scope: &str) -> Result<Option<String>> {
        let challenge = self.lock().challenge.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.auth.as_ref().and_then(AuthConfig::basic)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(t) = self.lock().tokens.get(scope) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let t = self.fetch_token(&realm, service.as_deref(), Some(scope))?;
                self.lock().tokens.insert(scope.to_owned(), t.clone());
                Ok(Some(format!("Bearer {t}")))
            }
        }
    }

    /// The URL of a path under the registry (`/v2/...`), or an absolute one (upload locations).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends a request authorised for `scope`; on a 401 with a new challenge, authorises again
    /// and re-sends it once (a streamed body is not re-sent). Answers of any status come back
    /// as responses; only transport failures are errors.
    pub fn send(&self, method: &str, path: &str, scope: &str, headers: &[(&str, &str)], body: Body<'_>) -> Result<ureq::Response> {
        let url = self.url(path);
        let mut body = Some(body);
        for attempt in 0..2 {
            let mut req = self.agent.request(method, &url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = self.authorization(scope)? {
                req = req.set("Authorization", &a);
            }
            let (result, replayable) = match body.take().unwrap_or(Body::Empty) {
                Body::Empty => (req.call(), true),
                Body::Bytes(b) => {
                    body = Some(Body::Bytes(b));
                    (req.send_bytes(b), true)
                }
                Body::Reader(r, len) => (req.set("Content-Length", &len.to_string()).send(r), false),
                Body::Chunked(r) => (req.send(r), false),
            };
            match result {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, r)) if attempt == 0 && replayable => {
                    let c = r.header("www-authenticate").and_then(Challenge::parse);
                    let mut st = self.lock();
                    if c.is_none() || st.challenge == c && !matches!(c, Some(Challenge::Bearer { .. })) {
                        return Ok(r);
                    }
                    st.tokens.remove(scope);
                    st.challenge = c;
                }
                Err(ureq::Error::Status(_, r)) => return Ok(r),
                Err(ureq::Error::Transport(t)) => return Err(Error::Registry(format!("{method} \"{url}\": {t}"))),
            }
        }
        Err(Error::Unauthorized(format!("{method} {url}: authentication required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_hosts() {
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("localhost:5000", &[]));
        assert!(is_insecure("[::1]:5000", &[]));
        assert!(!is_insecure("10.1.2.3:5000", &[]));
        assert!(is_insecure("10.1.2.3:5000", &["10.0.0.0/8".into()]));
        assert!(is_insecure("reg.lan:5000", &["reg.lan:5000".into()]));
        assert!(is_insecure("reg.lan", &["reg.lan".into()]));
        assert!(!is_insecure("reg.lan:5000", &["10.0.0.0/8".into()]));
    }

    #[test]
    fn registry_errors() {
        assert_eq!(
            registry_message(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#),
            "manifest unknown: manifest unknown"
        );
    }
}
