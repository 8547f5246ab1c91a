//! A private Docker registry (Debian's `docker-registry`, the CNCF distribution) for tests and
//! benchmarks: filesystem storage in a temp dir, on 127.0.0.1:<free port>, optionally with
//! htpasswd basic auth or bearer tokens from a small in-process token server; killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::dockerd::poll;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How the registry authenticates clients.
pub enum Auth {
    None,
    /// htpasswd (bcrypt) with one user.
    Basic { user: String, password: String },
    /// Bearer tokens from [`TokenServer`], which checks this user's password.
    Token { user: String, password: String },
}

pub struct Registry {
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub addr: String,
    child: Child,
    pub token_server: Option<TokenServer>,
}

/// Whether the registry binary is installed (tests skip otherwise).
pub fn available() -> bool {
    Path::new(REGISTRY_BIN).exists()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with(Auth::None)
    }

    pub fn start_with(auth: Auth) -> Registry {
        Self::start_full(auth, None)
    }

    /// Serving HTTPS with `tls` (see [`Tls::generate`]).
    pub fn start_tls(tls: &Tls) -> Registry {
        Self::start_full(Auth::None, Some(tls))
    }

    fn start_full(auth: Auth, tls: Option<&Tls>) -> Registry {
        let dir = tempfile::Builder::new().prefix("registry-test-").tempdir_in("/tmp").expect("temp dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut token_server = None;
        let auth_cfg = match &auth {
            Auth::None => String::new(),
            Auth::Basic { user, password } => {
                let o = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (apache2-utils)");
                assert!(o.status.success(), "htpasswd: {}", String::from_utf8_lossy(&o.stderr));
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &o.stdout).expect("write htpasswd");
                format!("auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n", file.display())
            }
            Auth::Token { user, password } => {
                let ts = TokenServer::start(dir.path(), user, password);
                let cfg = format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                    ts.addr,
                    ts.cert.display()
                );
                token_server = Some(ts);
                cfg
            }
        };
        let tls_cfg = match tls {
            Some(t) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
                t.server_cert.display(),
                t.server_key.display(),
                t.ca.display()
            ),
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: berth-test-secret\n{tls_cfg}{auth_cfg}",
            dir.path().join("data").display()
        );
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, config).expect("write config.yml");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let r = Registry { dir, addr, child, token_server };
        poll("the registry to listen", Duration::from_secs(20), || TcpStream::connect(&r.addr).ok().map(|_| ()));
        if tls.is_none() {
            poll("the registry to answer", Duration::from_secs(20), || r.get("/v2/").map(|_| ()));
        }
        r
    }

    /// A plain HTTP GET; returns the status line and headers, and the body.
    pub fn get(&self, path: &str) -> Option<(String, Vec<u8>)> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: {accept}\r\n\r\n", self.addr).ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
        Some((String::from_utf8_lossy(&out[..split]).into_owned(), out[split + 4..].to_vec()))
    }

    /// A plain HTTP PUT of a manifest; returns the status code.
    pub fn put_manifest(&self, path: &str, media_type: &str, body: &[u8]) -> Option<u16> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "PUT {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .ok()?;
        s.write_all(body).ok()?;
        let mut out = String::new();
        BufReader::new(s).read_line(&mut out).ok()?;
        out.split_whitespace().nth(1)?.parse().ok()
    }

    /// The file of a blob in the registry's storage.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed.
pub struct Tls {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Tls {
    pub fn generate() -> Tls {
        let dir = tempfile::Builder::new().prefix("registry-tls-").tempdir_in("/tmp").expect("temp dir");
        let p = |n: &str| dir.path().join(n);
        let run = |args: &[&str]| {
            let o = Command::new("openssl").args(args).current_dir(dir.path()).output().expect("openssl");
            assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth-test-ca", "-keyout", "ca.key", "-out", "ca.crt"]);
        std::fs::write(p("server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
        std::fs::write(p("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, cn) in [("server", "127.0.0.1"), ("client", "berth-test-client")] {
            run(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", &format!("/CN={cn}"), "-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr")]);
            run(&[
                "x509", "-req", "-in", &format!("{name}.csr"), "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", &format!("{name}.ext"), "-out", &format!("{name}.crt"),
            ]);
        }
        Tls {
            ca: p("ca.crt"),
            server_cert: p("server.crt"),
            server_key: p("server.key"),
            client_cert: p("client.crt"),
            client_key: p("client.key"),
            dir,
        }
    }
}

/// A token server for the registry's bearer flow: checks basic credentials, grants every
/// requested scope to the user (nothing to anonymous requests), and signs RS256 JWTs with a
/// self-signed certificate the registry trusts (sent as the x5c chain). Signing uses openssl.
pub struct TokenServer {
    pub addr: String,
    cert: PathBuf,
    /// Every `scope` a request asked for, in order.
    pub scopes: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let o = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(o.status.success(), "openssl req: {}", String::from_utf8_lossy(&o.stderr));
        let der = Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert).output().expect("openssl x509");
        let x5c = b64(&der.stdout, false);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let expected = format!("Basic {}", b64(format!("{user}:{password}").as_bytes(), false));
        let (sc, st, user) = (scopes.clone(), stop.clone(), user.to_owned());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        serve_token(s, &expected, &user, &key, &x5c, &sc);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        TokenServer { addr, cert, scopes, stop }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn b64(data: &[u8], url: bool) -> String {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let t = if url { URL } else { STD };
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(t[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=="[..3 - c.len()]);
        }
    }
    out
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_token(mut s: TcpStream, expected: &str, user: &str, key: &Path, x5c: &str, scopes: &Mutex<Vec<String>>) {
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut authz = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authz = v.trim().to_owned();
            }
        }
    }
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut asked = Vec::new();
    let mut service = String::new();
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("scope", v)) => asked.push(pct_decode(v)),
            Some(("service", v)) => service = pct_decode(v),
            _ => {}
        }
    }
    scopes.lock().unwrap().extend(asked.iter().cloned());
    // Anonymous requests get a token granting nothing (as Docker Hub's server does); wrong
    // credentials are refused.
    let anonymous = authz.is_empty();
    if !anonymous && authz != expected {
        let body = r#"{"details":"incorrect username or password"}"#;
        let _ = write!(s, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        return;
    }
    let access: Vec<String> = asked
        .iter()
        .filter(|_| !anonymous)
        .filter_map(|sc| {
            let mut parts = sc.splitn(3, ':');
            let (t, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let acts: Vec<String> = actions.split(',').map(|a| format!("\"{a}\"")).collect();
            Some(format!(r#"{{"type":"{t}","name":"{name}","actions":[{}]}}"#, acts.join(",")))
        })
        .collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","x5c":["{x5c}"]}}"#);
    let claims = format!(
        r#"{{"iss":"test-issuer","sub":"{user}","aud":"{service}","exp":{},"nbf":{},"iat":{now},"jti":"{now}-{}","access":[{}]}}"#,
        now + 300,
        now - 10,
        std::process::id(),
        access.join(",")
    );
    let signing_input = format!("{}.{}", b64(header.as_bytes(), true), b64(claims.as_bytes(), true));
    let mut sign = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    sign.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
    let sig = sign.wait_with_output().expect("openssl dgst").stdout;
    let token = format!("{signing_input}.{}", b64(&sig, true));
    let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
    let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(super::b64(b"u:p", false), "dTpw");
        assert_eq!(super::b64(b"ab", false), "YWI=");
        assert_eq!(super::b64(b"ab", true), "YWI");
        assert_eq!(super::pct_decode("repository%3Ax%3Apull%2Cpush"), "repository:x:pull,push");
    }
}
