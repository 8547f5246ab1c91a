//! What the API does with a container's filesystem: `docker diff`, `docker export`,
//! `docker commit` (paused while its changes are read, unless told otherwise).

use std::io::Write;

use berth_image::layer::{self, Compression};
use berth_image::store::CommitOptions;

use crate::error::{Error, Result};
use crate::state::Status;
use crate::Engine;

pub struct CommitRequest {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    pub changes: Vec<String>,
    pub pause: bool,
}

impl Engine {
    /// `GET /containers/{id}/changes`: (path, Docker's kind number).
    pub fn changes(&self, name: &str) -> Result<Vec<(String, u8)>> {
        let rec = self.get(name)?;
        let out = self.images.changes(&rec.id)?;
        Ok(out.into_iter().map(|c| (c.path.display().to_string(), c.kind.docker_kind())).collect())
    }

    /// `GET /containers/{id}/export`: the container's whole filesystem as a tar. A running
    /// container's root is already mounted (overlay refuses a second mount of the same upper
    /// dir), so it is read there.
    pub fn export(&self, name: &str, w: &mut dyn Write) -> Result<()> {
        let rec = self.get(name)?;
        if rec.state.status.is_live() {
            let dir = self.bundle_dir(&rec.id).join("rootfs");
            layer::diff(&layer::DiffSource::Compare { dir: &dir, base: None }, w, Compression::None)?;
            return Ok(());
        }
        self.images.export(&rec.id, w)?;
        self.emit(&rec, "export", &[]);
        Ok(())
    }

    /// `POST /commit`: a new image from the container's changes; returns its ID.
    pub fn commit(&self, name: &str, req: &CommitRequest) -> Result<String> {
        let rec = self.get(name)?;
        let tag = match &req.repo {
            Some(repo) if !repo.is_empty() => {
                let t = match req.tag.as_deref().filter(|t| !t.is_empty()) {
                    Some(t) => format!("{repo}:{t}"),
                    None => repo.clone(),
                };
                Some(berth_image::Reference::parse_normalized(&t)?)
            }
            _ => None,
        };
        let mut cmd = vec![rec.path.clone()];
        cmd.extend(rec.args.iter().cloned());
        let opts = CommitOptions {
            changes: req.changes.clone(),
            message: req.message.clone(),
            author: req.author.clone(),
            tag,
            created_by: Some(cmd.join(" ")),
        };
        let pause = req.pause && rec.state.status == Status::Running;
        if pause {
            berth_runtime::container::pause(&self.cfg.runtime_root(), &rec.id)?;
        }
        let res = self.images.commit_with(&rec.id, &opts);
        if pause {
            if let Err(e) = berth_runtime::container::resume(&self.cfg.runtime_root(), &rec.id) {
                return Err(Error::Internal(format!("commit done but the container stays paused: {e}")));
            }
        }
        let id = res?.to_string();
        self.emit(&rec, "commit", &[]);
        Ok(id)
    }
}
