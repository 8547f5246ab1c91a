//! /images/... endpoints.

use std::io::Read;

use super::http::{path_escape, Body, Response};
use super::types::{HistoryItem, ImageDeleteItem, ImagePruneResponse, ImageSummary};
use super::{Client, Query, Result};

fn image_path(name: &str, tail: &str) -> String {
    format!("/images/{}{tail}", path_escape(name))
}


impl Client {
    pub fn image_list(&self, all: bool, digests: bool, filters: &[(String, String)]) -> Result<Vec<ImageSummary>> {
        self.get_json("/images/json", Query::new().flag("all", all).flag("digests", digests).filters(filters))
    }

    pub fn image_inspect_raw(&self, name: &str) -> Result<Vec<u8>> {
        self.get_raw(&image_path(name, "/json"), Query::new())
    }

    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        self.get_json(&image_path(name, "/history"), Query::new())
    }

    pub fn image_remove(&self, name: &str, force: bool, no_prune: bool) -> Result<Vec<ImageDeleteItem>> {
        let q = Query::new().flag("force", force).flag("noprune", no_prune);
        let b = self.request("DELETE", &image_path(name, ""), q, Body::Empty)?.bytes()?;
        super::decode(&b)
    }

    pub fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        self.post(&image_path(name, "/tag"), Query::new().set("repo", repo).opt("tag", Some(tag)))
    }

    /// A tar of the named images (Docker's archive format).
    pub fn image_save(&self, names: &[String]) -> Result<Response> {
        let mut q = Query::new();
        for n in names {
            q = q.set("names", n);
        }
        self.request("GET", "/images/get", q, Body::Empty)
    }

    /// Uploads an image archive; the answer is a JSON message stream.
    pub fn image_load(&self, tar: &mut dyn Read, quiet: bool) -> Result<Response> {
        let body = Body::Stream { content_type: "application/x-tar", reader: tar };
        self.request("POST", "/images/load", Query::new().flag("quiet", quiet), body)
    }

    /// `docker import -`: a root filesystem tar becomes an image.
    pub fn image_import(&self, tar: &mut dyn Read, repo: Option<&str>, tag: Option<&str>, message: Option<&str>, changes: &[String]) -> Result<Response> {
        let mut q = Query::new().set("fromSrc", "-").opt("repo", repo).opt("tag", tag).opt("message", message);
        for c in changes {
            q = q.set("changes", c);
        }
        let body = Body::Stream { content_type: "application/x-tar", reader: tar };
        self.request("POST", "/images/create", q, body)
    }

    /// Pulls `image[:tag]`; the answer is a JSON progress stream.
    pub fn image_pull(&self, image: &str, tag: Option<&str>, platform: Option<&str>) -> Result<Response> {
        let q = Query::new().set("fromImage", image).opt("tag", tag).opt("platform", platform);
        let auth = super::auth::header_for_image(image)?;
        self.request_with("POST", "/images/create", q, &[("X-Registry-Auth", &auth)], Body::Empty)
    }

    /// `GET /images/search`: the registry's search results (Docker Hub's v1 shape).
    pub fn image_search(&self, term: &str, limit: Option<u32>, filters: &[(String, String)]) -> Result<Vec<serde_json::Value>> {
        let limit = limit.map(|l| l.to_string());
        let q = Query::new().set("term", term).opt("limit", limit.as_deref()).filters(filters);
        let auth = super::auth::header_for_image(term)?;
        let b = self.request_with("GET", "/images/search", q, &[("X-Registry-Auth", &auth)], Body::Empty)?.bytes()?;
        super::decode(&b)
    }

    pub fn image_push(&self, name: &str, tag: Option<&str>) -> Result<Response> {
        let auth = super::auth::header_for_image(name)?;
        self.request_with("POST", &image_path(name, "/push"), Query::new().opt("tag", tag), &[("X-Registry-Auth", &auth)], Body::Empty)
    }

    pub fn image_prune(&self, filters: &[(String, String)]) -> Result<ImagePruneResponse> {
        self.post_json("/images/prune", Query::new().filters(filters), None::<&()>)
    }
}
