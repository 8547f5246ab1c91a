//! /containers/... endpoints.

use std::io::Read;

use serde::Serialize;

use super::http::{path_escape, Body, Hijacked, Response};
use super::types::{ChangeItem, IdResponse, PathStat};
use super::{decode, Client, Error, Query, Result};
use crate::container::{ContainerInspect, ContainerPruneResponse, ContainerSummary, TopResponse, UpdateResponse, WaitResponse};
use crate::container_config::{ContainerCreateRequest, ContainerCreateResponse, Resources, RestartPolicy};

/// `POST /containers/{id}/attach` parameters.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub logs: bool,
    pub detach_keys: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds with a fraction, as Docker's client sends them.
    pub since: Option<String>,
    pub until: Option<String>,
    pub timestamps: bool,
    pub tail: Option<String>,
    pub details: bool,
}

/// `POST /containers/{id}/update` body: the resources and the restart policy.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateOptions {
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
}

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    pub changes: Vec<String>,
    pub pause: bool,
}

/// A wait registered with the daemon: its answer arrives when the condition holds.
pub struct WaitHandle(Response);

impl WaitHandle {
    pub fn result(self) -> Result<WaitResponse> {
        decode(&self.0.bytes()?)
    }
}

fn id_path(id: &str, tail: &str) -> String {
    format!("/containers/{}{tail}", path_escape(id))
}

impl Client {
    pub fn container_create(&self, name: Option<&str>, req: &ContainerCreateRequest) -> Result<ContainerCreateResponse> {
        self.post_json("/containers/create", Query::new().opt("name", name), Some(req))
    }

    pub fn container_list(&self, all: bool, limit: Option<i64>, size: bool, filters: &[(String, String)]) -> Result<Vec<ContainerSummary>> {
        let q = Query::new().flag("all", all).flag("size", size).filters(filters);
        let q = match limit {
            Some(n) if n > 0 => q.set("limit", &n.to_string()),
            _ => q,
        };
        self.get_json("/containers/json", q)
    }

    pub fn container_inspect(&self, id: &str) -> Result<ContainerInspect> {
        self.get_json(&id_path(id, "/json"), Query::new())
    }

    /// Inspect as the daemon wrote it (field order kept for `inspect` and templates).
    pub fn container_inspect_raw(&self, id: &str, size: bool) -> Result<Vec<u8>> {
        self.get_raw(&id_path(id, "/json"), Query::new().flag("size", size))
    }

    pub fn container_start(&self, id: &str) -> Result<()> {
        self.post(&id_path(id, "/start"), Query::new())
    }

    pub fn container_stop(&self, id: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let q = Query::new().opt("t", timeout.map(|t| t.to_string()).as_deref()).opt("signal", signal);
        self.post(&id_path(id, "/stop"), q)
    }

    pub fn container_restart(&self, id: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let q = Query::new().opt("t", timeout.map(|t| t.to_string()).as_deref()).opt("signal", signal);
        self.post(&id_path(id, "/restart"), q)
    }

    pub fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        self.post(&id_path(id, "/kill"), Query::new().opt("signal", signal))
    }

    pub fn container_pause(&self, id: &str) -> Result<()> {
        self.post(&id_path(id, "/pause"), Query::new())
    }

    pub fn container_unpause(&self, id: &str) -> Result<()> {
        self.post(&id_path(id, "/unpause"), Query::new())
    }

    pub fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let q = Query::new().flag("force", force).flag("v", volumes);
        let _ = self.request("DELETE", &id_path(id, ""), q, Body::Empty)?.bytes()?;
        Ok(())
    }

    pub fn container_rename(&self, id: &str, name: &str) -> Result<()> {
        self.post(&id_path(id, "/rename"), Query::new().set("name", name))
    }

    pub fn container_resize(&self, id: &str, h: u16, w: u16) -> Result<()> {
        self.post(&id_path(id, "/resize"), Query::new().set("h", &h.to_string()).set("w", &w.to_string()))
    }

    pub fn container_update(&self, id: &str, u: &UpdateOptions) -> Result<UpdateResponse> {
        self.post_json(&id_path(id, "/update"), Query::new(), Some(u))
    }

    pub fn container_top(&self, id: &str, ps_args: Option<&str>) -> Result<TopResponse> {
        self.get_json(&id_path(id, "/top"), Query::new().opt("ps_args", ps_args))
    }

    pub fn container_changes(&self, id: &str) -> Result<Vec<ChangeItem>> {
        let v: Option<Vec<ChangeItem>> = self.get_json(&id_path(id, "/changes"), Query::new())?;
        Ok(v.unwrap_or_default())
    }

    pub fn container_prune(&self, filters: &[(String, String)]) -> Result<ContainerPruneResponse> {
        self.post_json::<ContainerPruneResponse>("/containers/prune", Query::new().filters(filters), None::<&()>)
    }

    /// Registers a wait (`condition`: `not-running`, `next-exit`, `removed`); the daemon sends
    /// the status line at once, so the wait is in place when this returns.
    pub fn container_wait(&self, id: &str, condition: &str) -> Result<WaitHandle> {
        let q = Query::new().opt("condition", Some(condition));
        Ok(WaitHandle(self.request("POST", &id_path(id, "/wait"), q, Body::Empty)?))
    }

    /// The hijacked attach connection: a reader of the container's output (raw with a TTY,
    /// else multiplexed) and a writer to its stdin.
    pub fn container_attach(&self, id: &str, o: &AttachOptions) -> Result<Hijacked> {
        let q = Query::new()
            .flag("stream", true)
            .flag("stdin", o.stdin)
            .flag("stdout", o.stdout)
            .flag("stderr", o.stderr)
            .flag("logs", o.logs)
            .opt("detachKeys", o.detach_keys.as_deref());
        let resp = self.request_with("POST", &id_path(id, "/attach"), q, &[("Connection", "Upgrade"), ("Upgrade", "tcp")], Body::Empty)?;
        Ok(resp.into_hijacked()?)
    }

    /// The log stream (multiplexed unless the container has a TTY).
    pub fn container_logs(&self, id: &str, o: &LogsOptions) -> Result<Response> {
        let q = Query::new()
            .flag("follow", o.follow)
            .flag("stdout", o.stdout)
            .flag("stderr", o.stderr)
            .opt("since", o.since.as_deref())
            .opt("until", o.until.as_deref())
            .flag("timestamps", o.timestamps)
            .flag("details", o.details)
            .opt("tail", o.tail.as_deref());
        self.request("GET", &id_path(id, "/logs"), q, Body::Empty)
    }

    pub fn container_export(&self, id: &str) -> Result<Response> {
        self.request("GET", &id_path(id, "/export"), Query::new(), Body::Empty)
    }

    pub fn container_commit(&self, container: &str, o: &CommitOptions) -> Result<String> {
        let mut q = Query::new()
            .set("container", container)
            .opt("repo", o.repo.as_deref())
            .opt("tag", o.tag.as_deref())
            .opt("comment", o.comment.as_deref())
            .opt("author", o.author.as_deref())
            .set("pause", if o.pause { "1" } else { "0" });
        for c in &o.changes {
            q = q.set("changes", c);
        }
        let r: IdResponse = self.post_json("/commit", q, Some(&serde_json::json!({})))?;
        Ok(r.id)
    }

    /// `GET /containers/{id}/stats`: one JSON document, or a stream of them.
    pub fn container_stats(&self, id: &str, stream: bool) -> Result<Response> {
        let q = Query::new().set("stream", if stream { "1" } else { "0" }).flag("one-shot", !stream);
        self.request("GET", &id_path(id, "/stats"), q, Body::Empty)
    }

    /// `HEAD /containers/{id}/archive`: what is at `path`.
    pub fn archive_stat(&self, id: &str, path: &str) -> Result<PathStat> {
        let r = self.request("HEAD", &id_path(id, "/archive"), Query::new().set("path", path), Body::Empty)?;
        path_stat(&r)
    }

    /// `GET /containers/{id}/archive`: a tar of `path` and its stat.
    pub fn archive_get(&self, id: &str, path: &str) -> Result<(PathStat, Response)> {
        let r = self.request("GET", &id_path(id, "/archive"), Query::new().set("path", path), Body::Empty)?;
        Ok((path_stat(&r).unwrap_or_default(), r))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into the directory `path`.
    pub fn archive_put(&self, id: &str, path: &str, tar: &mut dyn Read, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> Result<()> {
        let q = Query::new().set("path", path).flag("noOverwriteDirNonDir", no_overwrite_dir_non_dir).flag("copyUIDGID", copy_uid_gid);
        let body = Body::Stream { content_type: "application/x-tar", reader: tar };
        let _ = self.request("PUT", &id_path(id, "/archive"), q, body)?.bytes()?;
        Ok(())
    }
}

fn path_stat(r: &Response) -> Result<PathStat> {
    let h = r.header("X-Docker-Container-Path-Stat").ok_or_else(|| Error::Decode("no path stat header".into()))?;
    let raw = base64_decode(h).ok_or_else(|| Error::Decode("bad path stat header".into()))?;
    decode(&raw)
}

/// Standard base64 (with or without padding); small enough not to need a crate.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// Standard base64 with padding (the `X-Registry-Auth` header).
pub(crate) fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | (x as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "{\"name\":\"x\",\"mode\":2147484141}"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"{}"), "e30=");
    }
}
