//! Image references with Docker's grammar and normalisation, so `busybox`, `library/busybox` and
//! `docker.io/library/busybox:latest` name the same thing and errors read exactly as Docker's.
//!
//! Grammar (distribution/reference):
//! ```text
//! reference   := name [ ":" tag ] [ "@" digest ]
//! name        := [domain '/'] path-component ['/' path-component]*
//! domain      := (domain-component ['.' domain-component]* | '[' ipv6 ']') [':' port]
//! path-comp   := [a-z0-9]+ ([._] | "__" | [-]+ [a-z0-9]+)*
//! tag         := [\w][\w.-]{0,127}
//! digest      := algorithm ":" hex{32,}
//! ```

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A fully qualified reference: always has a domain; tag and digest are optional.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

impl Reference {
    /// Parses and normalises as Docker's `ParseDockerRef` does: a bare name gets `:latest`.
    pub fn parse_normalized(s: &str) -> Result<Reference> {
        let mut r = Self::parse_normalized_named(s)?;
        if r.is_name_only() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Parses and normalises as Docker's `ParseNormalizedNamed`: no default tag is added (for
    /// `docker images busybox`, `pull --all-tags` and the like).
    pub fn parse_normalized_named(s: &str) -> Result<Reference> {
        if s.len() == 64 && s.bytes().all(is_lower_hex) {
            return Err(invalid(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder.split(':').next().unwrap_or_default();
        if remote_name.to_lowercase() != remote_name {
            return Err(invalid(format!(
                "invalid reference format: repository name ({remote_name}) must be lowercase"
            )));
        }
        Self::parse(&format!("{domain}/{remainder}"))
    }

    /// Parses a reference that is already fully qualified (Docker's `reference.Parse`).
    pub fn parse(s: &str) -> Result<Reference> {
        let Some(parts) = split_reference(s) else {
            if s.is_empty() {
                return Err(invalid("repository name must have at least one component"));
            }
            if split_reference(&s.to_lowercase()).is_some() {
                return Err(invalid("repository name must be lowercase"));
            }
            return Err(invalid("invalid reference format"));
        };
        let (name, tag, digest) = parts;
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        let (domain, path) = split_name(name).ok_or_else(|| invalid("invalid reference format"))?;
        let Some(domain) = domain else {
            // Only reachable through `parse` of an unqualified name: this type always has one.
            return Err(invalid(format!("reference {s} has no domain")));
        };
        let digest = digest.map(Digest::parse).transpose()?;
        Ok(Reference {
            domain: domain.to_owned(),
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// "docker.io/library/busybox"
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// "library/busybox"
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The same repository with this tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        if !is_tag(tag) {
            return Err(invalid("invalid reference format"));
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.name_only()
        })
    }

    /// The same repository with this digest (and no tag), as a repo digest is recorded.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.name_only()
        }
    }

    pub fn name_only(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The name as Docker shows it: "busybox", "user/app", "localhost:5000/app".
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The reference as Docker shows it: "busybox:latest", "localhost:5000/app:1".
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

/// The full form: "docker.io/library/busybox:latest".
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse_normalized_named(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Reference::parse_normalized_named(&s).map_err(serde::de::Error::custom)
    }
}

/// Docker's splitDockerDomain: the first component is a registry when it looks like a host
/// (has '.' or ':', is "localhost", or has uppercase letters, which repositories cannot).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Splits `name[:tag][@digest]` when each part matches the grammar.
fn split_reference(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        if !is_digest_syntax(d) {
            return None;
        }
    }
    // A ':' after the last '/' separates the tag; one before it can only be a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return None;
        }
    }
    split_name(name)?;
    Some((name, tag, digest))
}

/// Splits a name into (domain, path); the first component is taken as the domain when it can be
/// one, as the anchored regular expression does.
fn split_name(name: &str) -> Option<(Option<&str>, &str)> {
    if let Some((first, rest)) = name.split_once('/') {
        if is_domain(first) && is_path(rest) {
            return Some((Some(first), rest));
        }
    }
    is_path(name).then_some((None, name))
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

/// `[a-z0-9]+ (([._] | "__" | [-]+) [a-z0-9]+)*` for each '/'-separated component.
fn is_path(p: &str) -> bool {
    p.split('/').all(is_path_component)
}

fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false; // empty component, or a separator at the start or doubled
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|s| s == b'-');
        if !ok {
            return false;
        }
    }
}

/// host [':' port], host = domain components joined by '.', or a bracketed IPv6 address.
fn is_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let (addr, after) = (&rest[..end], &rest[end + 1..]);
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if d.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

/// algorithm ":" hex{32,}, algorithm = [A-Za-z][A-Za-z0-9]* joined by [-_+.].
fn is_digest_syntax(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let algo_ok = algo.split(['-', '_', '+', '.']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    algo_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";

    fn full(s: &str) -> String {
        Reference::parse_normalized(s).unwrap().to_string()
    }
    fn err(s: &str) -> String {
        Reference::parse_normalized(s).unwrap_err().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            full("library/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/docker/docker"),
            "docker.io/docker/docker:latest"
        );
        assert_eq!(full("docker/docker"), "docker.io/docker/docker:latest");
        assert_eq!(full("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(
            full("127.0.0.1:5000/library/debian"),
            "127.0.0.1:5000/library/debian:latest"
        );
        assert_eq!(full("192.168.0.1"), "docker.io/library/192.168.0.1:latest");
        assert_eq!(full("192.168.0.1:80"), "docker.io/library/192.168.0.1:80");
        assert_eq!(
            full("[fc00::1]:5000/docker/docker"),
            "[fc00::1]:5000/docker/docker:latest"
        );
        assert_eq!(
            full("foo_bar.com:8080"),
            "docker.io/library/foo_bar.com:8080"
        );
        assert_eq!(full("Foo/bar"), "Foo/bar:latest"); // uppercase first component = registry
        assert_eq!(
            full("a__b/c-d--e/f.g_h:T_a.g-1"),
            "docker.io/a__b/c-d--e/f.g_h:T_a.g-1"
        );
        assert_eq!(
            full(&format!("docker.io/{HEX}")),
            format!("docker.io/library/{HEX}:latest")
        );
        let digested = format!("busybox@sha256:{}", &HEX.replace('1', "2"));
        let r = Reference::parse_normalized(&digested).unwrap();
        assert_eq!(r.tag(), None, "a digest reference gets no default tag");
        assert_eq!(r.to_string(), format!("docker.io/library/{digested}"));
        assert_eq!(r.familiar_string(), digested);
        let both = Reference::parse_normalized(&format!("busybox:1@sha256:{HEX}")).unwrap();
        assert_eq!((both.tag(), both.digest().unwrap().hex()), (Some("1"), HEX));
    }

    #[test]
    fn accessors_and_familiar_forms() {
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        assert_eq!(r.familiar_string(), "busybox:latest");
        let r = Reference::parse_normalized("localhost:5000/app:1").unwrap();
        assert_eq!(r.familiar_string(), "localhost:5000/app:1");
        assert_eq!(
            Reference::parse_normalized("user/app")
                .unwrap()
                .familiar_name(),
            "user/app"
        );
        let nested = Reference::parse_normalized("library/a/b").unwrap();
        assert_eq!(nested.familiar_name(), "library/a/b");
        let named = Reference::parse_normalized_named("busybox").unwrap();
        assert!(named.is_name_only());
        assert_eq!(named.to_string(), "docker.io/library/busybox");
        assert_eq!(
            named.with_tag("1.36").unwrap().familiar_string(),
            "busybox:1.36"
        );
        assert!(named.with_tag("-x").is_err());
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Reference>(&s).unwrap(), r);
    }

    #[test]
    fn rejects_with_dockers_wording() {
        assert_eq!(
            err("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            err("docker/Docker"),
            "invalid reference format: repository name (docker/Docker) must be lowercase"
        );
        assert_eq!(
            err("localhost:5000/App:1"),
            "invalid reference format: repository name (App) must be lowercase"
        );
        assert_eq!(
            err(HEX),
            format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
        );
        for bad in [
            "",
            "busybox:",
            "busybox:-tag",
            ":latest",
            "-docker",
            "-docker/docker",
            "docker///docker",
            "docker.io/docker///docker",
            "https://github.com/docker/docker",
            "[fc00::1]",
            "fc00::1:5000/debian",
            "foo_bar.com:8080/my_app",
            "a/b..c",
            "a/b___c",
            "a/b-",
            "busybox@sha256:abc",
            "busybox@@sha256:abc",
            "localhost:x/app",
        ] {
            assert_eq!(err(bad), "invalid reference format", "{bad:?}");
        }
        let long_tag = format!("busybox:{}", "t".repeat(129));
        assert_eq!(err(&long_tag), "invalid reference format");
        assert!(Reference::parse_normalized(&format!("busybox:{}", "t".repeat(128))).is_ok());
        let long = format!("a/{}", "b".repeat(250));
        assert_eq!(
            err(&long),
            "repository name must not be more than 255 characters"
        );
        assert_eq!(
            err(&format!("busybox@sha256:{}", &HEX[..40])),
            "invalid checksum digest length"
        );
        assert_eq!(
            err(&format!("busybox@sha256:{}", HEX.to_uppercase())),
            "invalid checksum digest format"
        );
        assert_eq!(
            err(&format!("busybox@md5:{HEX}")),
            "unsupported digest algorithm"
        );
        assert_eq!(
            Reference::parse("").unwrap_err().to_string(),
            "repository name must have at least one component"
        );
        assert_eq!(
            Reference::parse("docker.io/Foo").unwrap_err().to_string(),
            "repository name must be lowercase"
        );
    }
}
