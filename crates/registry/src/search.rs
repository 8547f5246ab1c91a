//! `docker search`: the registry's v1 search endpoint (`GET /v1/search?q=&n=`), which Docker
//! Hub serves (at index.docker.io) and most other registries do not: those get a clear error.

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::client::{status_error, Body, Client, Options};
use crate::error::{Error, Result};

/// One result, in the Engine API's ImageSearchResponseItem shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub star_count: u64,
}

/// Splits `host/term` (a first component that looks like a host) from a plain term, which
/// searches Docker Hub.
pub fn split_term(term: &str) -> (String, String) {
    match term.split_once('/') {
        Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => {
            let host = if h == "docker.io" || h == "index.docker.io" { "docker.io" } else { h };
            (host.to_owned(), rest.to_owned())
        }
        _ => ("docker.io".to_owned(), term.to_owned()),
    }
}

/// Searches `term` (see [`split_term`]); at most `limit` results (Docker's default 25).
pub fn search(term: &str, limit: Option<u32>, auth: Option<AuthConfig>, opts: &Options) -> Result<Vec<SearchResult>> {
    let (host, q) = split_term(term);
    if q.is_empty() {
        return Err(Error::InvalidArgument("search term must not be empty".into()));
    }
    let limit = limit.filter(|&n| n > 0).unwrap_or(25);
    if limit > 100 {
        return Err(Error::InvalidArgument(format!("limit {limit} is outside the range of [1, 100]")));
    }
    let client = if host == "docker.io" {
        Client::connect_mirror("https://index.docker.io", &host, auth, opts)?
    } else {
        Client::connect(&host, auth, opts)?
    };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &q)
        .append_pair("n", &limit.to_string())
        .finish();
    let resp = client.send("GET", &format!("/v1/search?{query}"), "registry:catalog:*", &[], Body::Empty)?;
    match resp.status() {
        200 => {}
        404 | 405 => {
            return Err(Error::NotFound(format!(
                "registry {host} does not support search: GET {}/v1/search answered {} {}",
                client.base(),
                resp.status(),
                resp.status_text()
            )))
        }
        _ => return Err(status_error(&format!("searching {host}"), resp)),
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        results: Vec<SearchResult>,
    }
    let a: Answer = serde_json::from_reader(resp.into_reader())
        .map_err(|e| Error::Registry(format!("search results from {host}: {e}")))?;
    let mut out = a.results;
    out.truncate(limit as usize);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms() {
        assert_eq!(split_term("busybox"), ("docker.io".into(), "busybox".into()));
        assert_eq!(split_term("me/app"), ("docker.io".into(), "me/app".into()));
        assert_eq!(split_term("127.0.0.1:5000/app"), ("127.0.0.1:5000".into(), "app".into()));
        assert_eq!(split_term("docker.io/library/x"), ("docker.io".into(), "library/x".into()));
    }
}
