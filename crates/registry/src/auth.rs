//! Credentials (from the API's X-Registry-Auth header, or the docker CLI's config.json) and
//! the WWW-Authenticate challenges a registry answers with.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a client authenticates with: a user and password, or an identity (refresh) token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty", alias = "serveraddress")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty", alias = "identitytoken")]
    pub identitytoken: String,
    /// Some clients send `auth` (base64 user:pass) instead of the two fields.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
}

impl AuthConfig {
    /// Decodes an X-Registry-Auth header: base64url (padded or not, and plain base64 as older
    /// clients send) JSON. An empty header or `{}` is anonymous.
    pub fn from_header(h: &str) -> Result<Option<AuthConfig>> {
        let h = h.trim();
        if h.is_empty() {
            return Ok(None);
        }
        let raw = decode_b64(h)
            .ok_or_else(|| Error::InvalidArgument("invalid X-Registry-Auth header: not base64".into()))?;
        let mut a: AuthConfig = serde_json::from_slice(&raw)
            .map_err(|e| Error::InvalidArgument(format!("invalid X-Registry-Auth header: {e}")))?;
        a.expand_auth();
        Ok(if a.is_anonymous() { None } else { Some(a) })
    }

    /// The X-Registry-Auth header value for these credentials.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identitytoken.is_empty()
    }

    /// Fills username/password from `auth` (base64 "user:pass") when they are missing.
    pub fn expand_auth(&mut self) {
        if self.username.is_empty() && !self.auth.is_empty() {
            if let Some((u, p)) = decode_b64(&self.auth)
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
            {
                self.username = u;
                self.password = p;
            }
        }
        self.auth.clear();
    }

    /// `Basic <base64 user:pass>`.
    pub fn basic(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        let b = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        Some(format!("Basic {b}"))
    }
}

/// Base64 in any of the alphabets and paddings clients use.
pub(crate) fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

impl Challenge {
    /// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
    pub fn parse(h: &str) -> Option<Challenge> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        let params = parse_params(rest);
        let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
        } else {
            None
        }
    }
}

/// `k="v", k2=v2` (quoted values may hold commas and escaped quotes).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_owned(), val.trim().to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            })
        );
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    #[test]
    fn header_round_trip_and_auth_field() {
        let a = AuthConfig { username: "u".into(), password: "p:w".into(), serveraddress: "h:5000".into(), ..Default::default() };
        assert_eq!(AuthConfig::from_header(&a.to_header()).unwrap(), Some(a.clone()));
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"auth":"dTpwOnc="}"#);
        let got = AuthConfig::from_header(&b64).unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.password.as_str()), ("u", "p:w"));
        assert_eq!(AuthConfig::from_header("e30=").unwrap(), None);
        assert!(AuthConfig::from_header("!!").is_err());
        assert_eq!(a.basic().unwrap(), "Basic dTpwOnc=");
    }
}
