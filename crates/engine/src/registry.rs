//! Pull, push and login: the registry client over the image store, with the daemon's
//! registry settings and image events.

use std::collections::BTreeMap;

use berth_image::Reference;
use berth_registry::progress::Sink;
use berth_registry::{AuthConfig, Client, Pulled, Pushed};

use crate::error::{Error, Result};
use crate::Engine;

/// `fromImage` + `tag` as the API gives them (`tag` may be a digest) as one reference.
pub fn pull_reference(image: &str, tag: Option<&str>) -> Result<Reference> {
    let s = match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image.to_owned(),
    };
    Ok(Reference::parse_normalized(&s)?)
}

/// The registry host a login's `serveraddress` names (`https://index.docker.io/v1/`,
/// `http://host:5000`, `host:5000`); empty is Docker Hub.
pub fn login_host(server: &str) -> String {
    let s = server.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" => berth_image::reference::DEFAULT_DOMAIN.to_owned(),
        h => h.to_owned(),
    }
}

impl Engine {
    fn registry_options(&self) -> berth_registry::Options {
        berth_registry::Options { insecure: self.cfg.insecure_registries.clone(), ..Default::default() }
    }

    fn registry_event(&self, action: &str, r: &Reference) {
        let name = r.familiar_string();
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_owned(), name.clone());
        self.events.emit("image", action, &name, attrs);
    }

    /// `docker pull`: progress goes to `sink` as Docker's JSON messages.
    pub fn pull_image(&self, r: &Reference, platform: Option<&str>, auth: Option<AuthConfig>, sink: Sink<'_>) -> Result<Pulled> {
        let platform = berth_registry::platform(platform)?;
        let opts = self.registry_options();
        if r.domain() == berth_image::reference::DEFAULT_DOMAIN {
            // Mirrors first, in order, then Docker Hub itself (as dockerd does); a digest
            // mismatch is not something another source should paper over.
            for m in &self.cfg.registry_mirrors {
                let pulled = Client::connect_mirror(m, r.domain(), auth.clone(), &opts)
                    .and_then(|c| berth_registry::pull(&self.images, &c, r, &platform, sink));
                match pulled {
                    Ok(p) => {
                        self.registry_event("pull", r);
                        return Ok(p);
                    }
                    Err(e @ berth_registry::Error::Image(berth_image::Error::DigestMismatch { .. })) => return Err(e.into()),
                    Err(_) => continue,
                }
            }
        }
        let client = Client::connect(r.domain(), auth, &opts)?;
        let pulled = berth_registry::pull(&self.images, &client, r, &platform, sink)?;
        self.registry_event("pull", r);
        Ok(pulled)
    }

    /// `docker push` of the image tagged `r`; without a tag (`push --all-tags`), of every tag
    /// of its repository, in order.
    pub fn push_image(&self, r: &Reference, auth: Option<AuthConfig>, sink: Sink<'_>) -> Result<Vec<Pushed>> {
        let tags: Vec<Reference> = if r.tag().is_none() && r.digest().is_none() {
            let mut v: Vec<Reference> = self
                .images
                .meta()
                .refs()?
                .into_iter()
                .map(|(t, _)| t)
                .filter(|t| t.name() == r.name() && t.tag().is_some() && t.digest().is_none())
                .collect();
            v.sort_by(|a, b| a.tag().cmp(&b.tag()));
            v
        } else {
            vec![r.clone()]
        };
        if tags.is_empty() {
            return Err(Error::NotFound(format!("An image does not exist locally with the tag: {}", r.familiar_name())));
        }
        let client = Client::connect(r.domain(), auth, &self.registry_options())?;
        let mut out = Vec::new();
        for t in &tags {
            out.push(self.push_one(&client, t, sink)?);
        }
        Ok(out)
    }

    fn push_one(&self, client: &Client, r: &Reference, sink: Sink<'_>) -> Result<Pushed> {
        if self.images.meta().lookup_ref(r)?.is_none() {
            return Err(Error::NotFound(format!("An image does not exist locally with the tag: {}", r.name_only().familiar_string())));
        }
        let pushed = berth_registry::push(&self.images, client, r, sink)?;
        self.registry_event("push", r);
        Ok(pushed)
    }

    /// `docker search`: `term` filtered by `is-official` and `stars` (Docker's filters).
    pub fn search_images(
        &self,
        term: &str,
        limit: Option<u32>,
        is_official: Option<bool>,
        min_stars: Option<u64>,
        auth: Option<AuthConfig>,
    ) -> Result<Vec<berth_registry::search::SearchResult>> {
        let mut out = berth_registry::search::search(term, limit, auth, &self.registry_options())?;
        out.retain(|r| is_official.is_none_or(|o| r.is_official == o) && min_stars.is_none_or(|s| r.star_count >= s));
        Ok(out)
    }

    /// `docker login`: checks the credentials with the registry.
    pub fn login(&self, auth: AuthConfig) -> Result<()> {
        let host = login_host(&auth.serveraddress);
        let client = Client::connect(&host, Some(auth), &self.registry_options())?;
        client.login()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_hosts() {
        assert_eq!(pull_reference("busybox", Some("1.36")).unwrap().familiar_string(), "busybox:1.36");
        let d = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
        assert_eq!(pull_reference("127.0.0.1:5000/x", Some(d)).unwrap().digest().unwrap().to_string(), d);
        assert_eq!(login_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_host("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
