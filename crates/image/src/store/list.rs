//! `docker images` (with filters), `docker image inspect` and `docker history`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::{time, ImageStore};
use crate::error::{Error, Result};
use crate::meta::ImageRecord;
use crate::{Digest, Reference};

/// One image in `docker images` (the Engine API's ImageSummary).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: u64,
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

/// `docker images --filter`: every given condition must hold (several references or labels:
/// any reference, every label).
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub dangling: Option<bool>,
    /// Globs over `name` or `name:tag` (familiar form), as `path.Match` matches them.
    pub reference: Vec<String>,
    /// `key` or `key=value`.
    pub label: Vec<String>,
    /// Images created before / since the named image.
    pub before: Option<String>,
    pub since: Option<String>,
}

/// One `docker history` line (the Engine API's HistoryResponseItem).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEntry {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}

/// `path.Match` for one pattern: `*` matches a run of non-'/' characters, `?` one of them.
fn glob(pattern: &[u8], s: &[u8]) -> bool {
    match pattern.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => {
            let mut i = 0;
            loop {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i == s.len() || s[i] == b'/' {
                    return false;
                }
                i += 1;
            }
        }
        Some((b'?', rest)) => !s.is_empty() && s[0] != b'/' && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

fn created_secs(rec: &ImageRecord) -> i64 {
    rec.created
        .as_deref()
        .and_then(time::parse_rfc3339)
        .unwrap_or(0)
}

impl ImageStore {
    fn labels(&self, id: &Digest) -> Result<BTreeMap<String, String>> {
        Ok(self
            .config(id)?
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default())
    }

    fn tags_and_digests(&self, id: &Digest) -> Result<(Vec<Reference>, Vec<String>, Vec<String>)> {
        let refs = self.meta.refs_of(id)?;
        let tags = refs
            .iter()
            .filter(|r| r.digest().is_none())
            .map(|r| r.familiar_string())
            .collect();
        let digests = refs
            .iter()
            .filter(|r| r.digest().is_some())
            .map(|r| r.familiar_string())
            .collect();
        Ok((refs, tags, digests))
    }

    /// `docker images`, newest first.
    pub fn list(&self, filters: &ListFilters) -> Result<Vec<ImageSummary>> {
        let bound = |s: &Option<String>| -> Result<Option<i64>> {
            match s {
                Some(name) => Ok(Some(created_secs(
                    &self.meta.image(&self.meta.resolve(name)?)?,
                ))),
                None => Ok(None),
            }
        };
        let before = bound(&filters.before)?;
        let since = bound(&filters.since)?;
        let users = self.meta.containers()?;
        let mut out = Vec::new();
        for rec in self.meta.images()? {
            let created = created_secs(&rec);
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            let (refs, repo_tags, repo_digests) = self.tags_and_digests(&rec.id)?;
            if let Some(d) = filters.dangling {
                if d != repo_tags.is_empty() {
                    continue;
                }
            }
            if !filters.reference.is_empty() {
                let hit = refs.iter().any(|r| {
                    let name = r.name_only().familiar_string();
                    let full = r.familiar_string();
                    filters.reference.iter().any(|p| {
                        glob(p.as_bytes(), name.as_bytes()) || glob(p.as_bytes(), full.as_bytes())
                    })
                });
                if !hit {
                    continue;
                }
            }
            let labels = self.labels(&rec.id)?;
            let labels_ok = filters.label.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l.as_str()),
            });
            if !labels_ok {
                continue;
            }
            out.push(ImageSummary {
                id: rec.id.to_string(),
                parent_id: rec
                    .parent
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                repo_tags,
                repo_digests,
                created,
                size: rec.size,
                shared_size: -1,
                labels,
                containers: users.iter().filter(|(_, i)| *i == rec.id).count() as i64,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `docker image inspect`, in the Engine API's ImageInspect shape.
    pub fn inspect(&self, name_or_id: &str) -> Result<Value> {
        let id = self.meta.resolve(name_or_id)?;
        let rec = self.meta.image(&id)?;
        let cfg = self.config(&id)?;
        let (_, tags, digests) = self.tags_and_digests(&id)?;
        let mut v = json!({
            "Id": id.to_string(),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": rec.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            "Comment": cfg.comment.clone().unwrap_or_default(),
            "Created": cfg.created.clone().unwrap_or_default(),
            "DockerVersion": cfg.docker_version.clone().unwrap_or_default(),
            "Author": cfg.author.clone().unwrap_or_default(),
            "Config": serde_json::to_value(cfg.config.clone().unwrap_or_default())
                .map_err(|e| Error::Malformed(e.to_string()))?,
            "Architecture": cfg.architecture,
            "Os": cfg.os,
            "Size": rec.size,
            "GraphDriver": {"Name": self.snapshotter.name(), "Data": null},
            "RootFS": {
                "Type": if cfg.rootfs.fs_type.is_empty() { "layers".to_owned() } else { cfg.rootfs.fs_type.clone() },
                "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            },
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        });
        if let Some(var) = &cfg.variant {
            v["Variant"] = json!(var);
        }
        if let Some(m) = &rec.manifest {
            v["Descriptor"] = json!({
                "mediaType": crate::manifest::media_types::OCI_MANIFEST,
                "digest": m.to_string(),
                "size": self.content.size(m).unwrap_or(0),
            });
        }
        Ok(v)
    }

    /// `docker history`, newest first.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryEntry>> {
        let id = self.meta.resolve(name_or_id)?;
        let rec = self.meta.image(&id)?;
        let cfg = self.config(&id)?;
        let (_, tags, _) = self.tags_and_digests(&id)?;
        let mut sizes = Vec::new();
        for c in &rec.chain_ids {
            sizes.push(self.meta.layer(c)?.map_or(0, |l| l.size));
        }
        let mut layer = 0;
        let mut out: Vec<HistoryEntry> = cfg
            .history
            .iter()
            .map(|h| {
                let size = if h.empty_layer {
                    0
                } else {
                    layer += 1;
                    sizes.get(layer - 1).copied().unwrap_or(0)
                };
                HistoryEntry {
                    id: "<missing>".into(),
                    created: h
                        .created
                        .as_deref()
                        .and_then(time::parse_rfc3339)
                        .unwrap_or(0),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    tags: Vec::new(),
                    size,
                    comment: h.comment.clone().unwrap_or_default(),
                }
            })
            .collect();
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = id.to_string();
            top.tags = tags;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob(b"busy*", b"busybox"));
        assert!(glob(b"busybox:*", b"busybox:1.36"));
        assert!(!glob(b"*", b"library/x"));
        assert!(glob(b"*/x", b"library/x"));
        assert!(glob(b"b?sybox", b"busybox"));
        assert!(!glob(b"busy", b"busybox"));
    }
}
