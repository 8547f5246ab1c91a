//! A synchronous Docker Engine API client (the berth CLI's): finds the daemon (`-H`,
//! `BERTH_HOST`, `DOCKER_HOST`, the default socket), sends requests under the `/vX.YY` prefix
//! Berth implements, and turns Docker's error bodies into [`Error::Api`]. Streams (logs,
//! events, attach, save, load) are handed back as readers; nothing is buffered that need not be.

pub mod auth;
mod containers;
mod exec;
pub mod http;
mod images;
pub mod stdcopy;
mod system;
mod networks;
mod volumes;
pub mod types;

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;

use serde::de::DeserializeOwned;

pub use containers::{AttachOptions, CommitOptions, LogsOptions, UpdateOptions, WaitHandle};
pub use http::{Body, Conn, Endpoint, Hijacked, Response};

/// Where berthd listens unless told otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Debug)]
pub enum Error {
    /// Nothing answers at the daemon's address.
    Connect { host: String, source: io::Error },
    /// The daemon answered with an error status and Docker's `{"message": ...}`.
    Api { status: u16, message: String },
    Io(io::Error),
    /// An answer that does not decode.
    Decode(String),
    /// A host string that is not `unix://`, `tcp://` or a path.
    BadHost(String),
}

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 404, .. })
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { host, source } => {
                let why = match source.kind() {
                    io::ErrorKind::PermissionDenied => "permission denied (are you root or in the berth group?)".to_owned(),
                    _ => "Is the berth daemon running?".to_owned(),
                };
                write!(f, "Cannot connect to the Berth daemon at {host}. {why}")
            }
            // The docker CLI's wording, so scripts matching on it keep working.
            Error::Api { message, .. } => write!(f, "Error response from daemon: {message}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Decode(e) => write!(f, "unexpected answer from the daemon: {e}"),
            Error::BadHost(h) => write!(f, "unable to parse docker host `{h}`"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Query strings, escaped as Go's `url.Values` does.
#[derive(Default)]
pub struct Query(String);

impl Query {
    pub fn new() -> Query {
        Query(String::new())
    }
    pub fn set(mut self, k: &str, v: &str) -> Query {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(&http::query_escape(k));
        self.0.push('=');
        self.0.push_str(&http::query_escape(v));
        self
    }
    pub fn flag(self, k: &str, on: bool) -> Query {
        if on {
            self.set(k, "1")
        } else {
            self
        }
    }
    pub fn opt(self, k: &str, v: Option<&str>) -> Query {
        match v {
            Some(v) if !v.is_empty() => self.set(k, v),
            _ => self,
        }
    }
    /// Docker's `filters` parameter: `{"key": ["value", ...]}`.
    pub fn filters(self, f: &[(String, String)]) -> Query {
        if f.is_empty() {
            return self;
        }
        let mut m: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (k, v) in f {
            m.entry(k.as_str()).or_default().push(v.as_str());
        }
        let s = serde_json::to_string(&m).unwrap_or_default();
        self.set("filters", &s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub struct Client {
    endpoint: Endpoint,
    host: String,
    prefix: String,
}

/// Parses `unix:///path`, `/path`, `tcp://host:port` (also `http://`).
pub fn parse_host(h: &str) -> Result<Endpoint> {
    if let Some(p) = h.strip_prefix("unix://") {
        return Ok(Endpoint::Unix(PathBuf::from(if p.is_empty() { "/run/berth/berth.sock" } else { p })));
    }
    if h.starts_with('/') {
        return Ok(Endpoint::Unix(PathBuf::from(h)));
    }
    for scheme in ["tcp://", "http://"] {
        if let Some(a) = h.strip_prefix(scheme) {
            let a = a.trim_end_matches('/');
            let a = if a.contains(':') { a.to_owned() } else { format!("{a}:2375") };
            return Ok(Endpoint::Tcp(a));
        }
    }
    Err(Error::BadHost(h.to_owned()))
}

/// The daemon address: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default socket.
pub fn resolve_host(flag: Option<&str>) -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    flag.map(str::to_owned).or_else(|| env("BERTH_HOST")).or_else(|| env("DOCKER_HOST")).unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

impl Client {
    pub fn new(host: &str) -> Result<Client> {
        Ok(Client { endpoint: parse_host(host)?, host: host.to_owned(), prefix: format!("/v{}", crate::API_VERSION) })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends a request; error statuses come back as [`Error::Api`].
    pub fn request(&self, method: &str, path: &str, q: Query, body: Body<'_>) -> Result<Response> {
        self.request_with(method, path, q, &[], body)
    }

    pub fn request_with(&self, method: &str, path: &str, q: Query, headers: &[(&str, &str)], body: Body<'_>) -> Result<Response> {
        let full = format!("{}{path}{}", self.prefix, q.as_str());
        let resp = http::send(&self.endpoint, method, &full, headers, body).map_err(|e| self.conn_err(e))?;
        check(resp)
    }

    fn conn_err(&self, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused | io::ErrorKind::PermissionDenied => {
                Error::Connect { host: self.host.clone(), source: e }
            }
            _ => Error::Io(e),
        }
    }

    pub fn get_json<T: DeserializeOwned>(&self, path: &str, q: Query) -> Result<T> {
        decode(&self.request("GET", path, q, Body::Empty)?.bytes()?)
    }

    /// The body as the daemon sent it (inspect keeps Docker's field order this way).
    pub fn get_raw(&self, path: &str, q: Query) -> Result<Vec<u8>> {
        Ok(self.request("GET", path, q, Body::Empty)?.bytes()?)
    }

    pub fn post_json<T: DeserializeOwned>(&self, path: &str, q: Query, body: Option<&impl serde::Serialize>) -> Result<T> {
        let b = match body {
            Some(b) => Body::Json(serde_json::to_vec(b).map_err(|e| Error::Decode(e.to_string()))?),
            None => Body::Empty,
        };
        let bytes = self.request("POST", path, q, b)?.bytes()?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return decode(b"null");
        }
        decode(&bytes)
    }

    /// A POST whose answer is empty (204) or ignored.
    pub fn post(&self, path: &str, q: Query) -> Result<()> {
        let _ = self.request("POST", path, q, Body::Empty)?.bytes()?;
        Ok(())
    }
}

/// Error statuses become [`Error::Api`] with the daemon's message.
fn check(resp: Response) -> Result<Response> {
    if resp.status < 400 {
        return Ok(resp);
    }
    let status = resp.status;
    let bytes = resp.bytes().unwrap_or_default();
    let message = serde_json::from_slice::<crate::error::ErrorResponse>(&bytes)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_owned());
    let message = if message.is_empty() { format!("HTTP {status}") } else { message };
    Err(Error::Api { status, message })
}

pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::Decode(e.to_string()))
}

/// Reads newline-delimited JSON messages from a streamed body (events, pull/load progress,
/// stats), one at a time.
pub struct JsonLines<R> {
    r: io::BufReader<R>,
    line: Vec<u8>,
}

impl<R: Read> JsonLines<R> {
    pub fn new(r: R) -> JsonLines<R> {
        JsonLines { r: io::BufReader::new(r), line: Vec::new() }
    }

    /// The next message, raw; `None` at the end of the stream.
    pub fn next_raw(&mut self) -> Result<Option<&[u8]>> {
        use io::BufRead;
        loop {
            self.line.clear();
            if self.r.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(None);
            }
            if !self.line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(&self.line));
            }
        }
    }

    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        match self.next_raw()? {
            None => Ok(None),
            Some(b) => decode(b).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(parse_host("unix:///run/x.sock").unwrap(), Endpoint::Unix("/run/x.sock".into()));
        assert_eq!(parse_host("/tmp/s").unwrap(), Endpoint::Unix("/tmp/s".into()));
        assert_eq!(parse_host("tcp://127.0.0.1").unwrap(), Endpoint::Tcp("127.0.0.1:2375".into()));
        assert!(parse_host("ssh://me@host").is_err());
    }

    #[test]
    fn queries_escape_and_filters_group() {
        let q = Query::new().flag("all", true).flag("size", false).opt("x", Some("")).filters(&[
            ("status".into(), "running".into()),
            ("status".into(), "paused".into()),
        ]);
        assert_eq!(q.as_str(), "?all=1&filters=%7B%22status%22%3A%5B%22running%22%2C%22paused%22%5D%7D");
    }
}
