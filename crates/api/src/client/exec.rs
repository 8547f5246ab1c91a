//! /exec/... endpoints (`docker exec`).

use super::http::{path_escape, Body, Hijacked};
use super::types::IdResponse;
use crate::exec::{ExecCreateRequest, ExecInspect, ExecStartRequest};
use super::{Client, Query, Result};

impl Client {
    pub fn exec_create(&self, container: &str, c: &ExecCreateRequest) -> Result<String> {
        let r: IdResponse = self.post_json(&format!("/containers/{}/exec", path_escape(container)), Query::new(), Some(c))?;
        Ok(r.id)
    }

    /// Starts an exec; attached, the connection is hijacked as for attach.
    pub fn exec_start(&self, id: &str, c: &ExecStartRequest) -> Result<Option<Hijacked>> {
        let body = Body::Json(serde_json::to_vec(c).unwrap_or_default());
        let path = format!("/exec/{}/start", path_escape(id));
        if c.detach {
            let _ = self.request("POST", &path, Query::new(), body)?.bytes()?;
            return Ok(None);
        }
        let resp = self.request_with("POST", &path, Query::new(), &[("Connection", "Upgrade"), ("Upgrade", "tcp")], body)?;
        Ok(Some(resp.into_hijacked()?))
    }

    pub fn exec_resize(&self, id: &str, h: u16, w: u16) -> Result<()> {
        self.post(&format!("/exec/{}/resize", path_escape(id)), Query::new().set("h", &h.to_string()).set("w", &w.to_string()))
    }

    pub fn exec_inspect(&self, id: &str) -> Result<ExecInspect> {
        self.get_json(&format!("/exec/{}/json", path_escape(id)), Query::new())
    }
}
