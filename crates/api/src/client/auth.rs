//! Registry credentials as the docker CLI keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths` entries (base64 `user:pass`, or an identity token), or
//! a credential helper (`credsStore`, `credHelpers`: `docker-credential-<name> get|store|erase`).
//! Sent to the daemon as the X-Registry-Auth header and by `POST /auth`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::containers::{base64_decode, base64_encode};
use super::{Client, Error, Query, Result};

/// Docker Hub's key in config.json.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What `POST /auth` and X-Registry-Auth carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
}

impl Credentials {
    /// The X-Registry-Auth header: base64url JSON, as the docker CLI sends it.
    pub fn header(&self) -> String {
        let std = base64_encode(&serde_json::to_vec(self).unwrap_or_default());
        std.replace('+', "-").replace('/', "_")
    }
}

/// The registry host of an image name as the user wrote it (`busybox` -> Docker Hub).
pub fn image_host(image: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "docker.io" || first == "index.docker.io" {
                "docker.io".into()
            } else {
                first.to_owned()
            }
        }
        _ => "docker.io".into(),
    }
}

/// config.json's key for a registry host (and the address `POST /auth` is given).
pub fn config_key(host: &str) -> String {
    let h = host.trim().trim_start_matches("https://").trim_start_matches("http://");
    let h = h.split('/').next().unwrap_or("");
    match h {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_owned(),
        h => h.to_owned(),
    }
}

pub fn config_path() -> PathBuf {
    let dir = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".docker"),
    };
    dir.join("config.json")
}

fn io_err(what: &str, e: io::Error) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("{what}: {e}")))
}

fn read_config() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(Error::Decode(format!("{} is not a JSON object", p.display()))),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(io_err(&format!("read {}", p.display()), e)),
    }
}

/// Writes config.json through a temp file and a rename, private to its owner.
fn write_config(cfg: &Map<String, Value>) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let p = config_path();
    let dir = p.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_err(&format!("create {}", dir.display()), e))?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let data = serde_json::to_vec_pretty(cfg).map_err(|e| Error::Decode(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_err(&format!("create {}", tmp.display()), e))?;
    f.write_all(&data).map_err(|e| io_err(&format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &p).map_err(|e| io_err(&format!("rename to {}", p.display()), e))
}

/// The credential helper configured for `key`, if any.
fn helper_for(cfg: &Map<String, Value>, key: &str) -> Option<String> {
    let host = key.trim_start_matches("https://").split('/').next().unwrap_or(key);
    cfg.get("credHelpers")
        .and_then(|h| h.get(key).or_else(|| h.get(host)))
        .or_else(|| cfg.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<(bool, Vec<u8>)> {
    let bin = format!("docker-credential-{helper}");
    let mut child = Command::new(&bin)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io_err(&format!("run {bin}"), e))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(input).map_err(|e| io_err(&format!("write to {bin}"), e))?;
    }
    let out = child.wait_with_output().map_err(|e| io_err(&format!("run {bin}"), e))?;
    let mut text = out.stdout;
    if !out.status.success() && text.is_empty() {
        text = out.stderr;
    }
    Ok((out.status.success(), text))
}

/// The stored credentials for a registry host, if any.
pub fn lookup(host: &str) -> Result<Option<Credentials>> {
    let key = config_key(host);
    let cfg = read_config()?;
    if let Some(h) = helper_for(&cfg, &key) {
        let (ok, out) = run_helper(&h, "get", key.as_bytes())?;
        if !ok {
            // "credentials not found in native keychain": anonymous.
            return Ok(None);
        }
        let v: Value = serde_json::from_slice(&out).map_err(|e| Error::Decode(format!("docker-credential-{h} get: {e}")))?;
        let user = v["Username"].as_str().unwrap_or_default().to_owned();
        let secret = v["Secret"].as_str().unwrap_or_default().to_owned();
        let mut c = Credentials { serveraddress: key, ..Default::default() };
        if user == "<token>" {
            c.identitytoken = secret;
        } else {
            (c.username, c.password) = (user, secret);
        }
        return Ok(Some(c));
    }
    let Some(entry) = cfg.get("auths").and_then(|a| a.get(&key)) else {
        return Ok(None);
    };
    let mut c = Credentials { serveraddress: key.clone(), ..Default::default() };
    if let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        let raw = base64_decode(auth).and_then(|b| String::from_utf8(b).ok());
        let (u, p) = raw
            .as_deref()
            .and_then(|s| s.split_once(':'))
            .ok_or_else(|| Error::Decode(format!("{}: invalid auth for {key}", config_path().display())))?;
        (c.username, c.password) = (u.to_owned(), p.to_owned());
    }
    c.identitytoken = entry.get("identitytoken").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(Some(c).filter(|c| !c.username.is_empty() || !c.identitytoken.is_empty()))
}

/// The X-Registry-Auth header for pulling or pushing `image` (`{}` when anonymous).
pub fn header_for_image(image: &str) -> Result<String> {
    Ok(match lookup(&image_host(image))? {
        Some(c) => c.header(),
        None => base64_encode(b"{}"),
    })
}

/// Stores credentials (a helper's `store`, else `auths` in config.json). Returns where.
pub fn store(c: &Credentials) -> Result<String> {
    let key = config_key(&c.serveraddress);
    let mut cfg = read_config()?;
    if let Some(h) = helper_for(&cfg, &key) {
        let (user, secret) = if c.identitytoken.is_empty() { (c.username.as_str(), c.password.as_str()) } else { ("<token>", c.identitytoken.as_str()) };
        let input = json!({ "ServerURL": key, "Username": user, "Secret": secret }).to_string();
        let (ok, out) = run_helper(&h, "store", input.as_bytes())?;
        if !ok {
            return Err(Error::Decode(format!("error storing credentials: {}", String::from_utf8_lossy(&out).trim())));
        }
        return Ok(format!("docker-credential-{h}"));
    }
    let mut entry = Map::new();
    if c.identitytoken.is_empty() {
        entry.insert("auth".into(), json!(base64_encode(format!("{}:{}", c.username, c.password).as_bytes())));
    } else {
        entry.insert("identitytoken".into(), json!(c.identitytoken));
    }
    let auths = cfg.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    auths.as_object_mut().map(|a| a.insert(key, Value::Object(entry)));
    write_config(&cfg)?;
    Ok(config_path().display().to_string())
}

/// Removes stored credentials; false if there were none.
pub fn erase(host: &str) -> Result<bool> {
    let key = config_key(host);
    let mut cfg = read_config()?;
    if let Some(h) = helper_for(&cfg, &key) {
        let (ok, _) = run_helper(&h, "erase", key.as_bytes())?;
        return Ok(ok);
    }
    let removed = cfg.get_mut("auths").and_then(Value::as_object_mut).and_then(|a| a.remove(&key)).is_some();
    if removed {
        write_config(&cfg)?;
    }
    Ok(removed)
}

/// The answer to `POST /auth`.
#[derive(Debug, Default, Deserialize)]
pub struct AuthResponse {
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "IdentityToken", default)]
    pub identity_token: String,
}

impl Client {
    /// `POST /auth`: the daemon checks the credentials with the registry.
    pub fn login(&self, c: &Credentials) -> Result<AuthResponse> {
        self.post_json("/auth", Query::new(), Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_keys() {
        assert_eq!(image_host("busybox"), "docker.io");
        assert_eq!(image_host("me/app:1"), "docker.io");
        assert_eq!(image_host("docker.io/library/busybox"), "docker.io");
        assert_eq!(image_host("127.0.0.1:5000/app@sha256:ab"), "127.0.0.1:5000");
        assert_eq!(image_host("localhost/app"), "localhost");
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        let c = Credentials { username: "u".into(), password: "p".into(), serveraddress: "h".into(), ..Default::default() };
        let raw = base64_decode(&c.header().replace('-', "+").replace('_', "/")).unwrap();
        assert_eq!(serde_json::from_slice::<Credentials>(&raw).unwrap(), c);
    }
}
