//! Container snapshots seen from the image store: `create_rw` / `remove_rw` (the writable
//! snapshot of a container, recorded in meta so `rmi` refuses its image), `changes`
//! (`docker diff`), `commit` (`docker commit`) and `export` (`docker export`).
//!
//! Pausing the container during `commit` and `export` is the engine's job: these read the
//! snapshot as it is on disk.

use std::io::{self, Write};

use super::{time, ImageStore};
use crate::digest::DigestWriter;
use crate::error::{Error, Result};
use crate::layer::{self, Change, Compression};
use crate::manifest::{media_types, History};
use crate::meta::ImageRecord;
use crate::snapshot::DiffSource;
use crate::{Digest, Reference};

/// What `docker commit` takes besides the container (the query of `POST /commit`).
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `--change` instructions, applied to the image's config.
    pub changes: Vec<String>,
    /// `--message`: the history entry's and the config's comment.
    pub message: Option<String>,
    /// `--author`.
    pub author: Option<String>,
    /// The reference to tag the new image with (`latest` when it has no tag).
    pub tag: Option<Reference>,
    /// The history entry's `created_by`: the container's command line, which the engine knows
    /// (Docker joins the container's Cmd with spaces). None: the image's CMD, as the image
    /// store knows no better.
    pub created_by: Option<String>,
}

/// Runs `f` with the `layer::DiffSource` borrowing a snapshotter's `DiffSource`.
fn with_source<T>(
    src: &DiffSource,
    f: impl FnOnce(&layer::DiffSource<'_>) -> Result<T>,
) -> Result<T> {
    match src {
        DiffSource::Overlay { upper, lowers } => f(&layer::DiffSource::Overlay { upper, lowers }),
        DiffSource::Compare { dir, base } => f(&layer::DiffSource::Compare {
            dir,
            base: base.as_deref(),
        }),
    }
}

impl ImageStore {
    /// Creates the writable snapshot `key` of a container over `image`'s top layer and records
    /// that the container uses the image (so `remove` refuses it). The record comes first: the
    /// image cannot vanish between the two steps.
    pub fn create_rw(&self, key: &str, image: &str) -> Result<()> {
        let id = self.meta.resolve(image)?;
        let rec = self.meta.image(&id)?;
        self.meta.add_container(key, &id)?;
        let parent = rec.top_layer().map(|c| c.to_string());
        if let Err(e) = self.snapshotter.prepare(key, parent.as_deref()) {
            let _ = self.meta.remove_container(key);
            return Err(e);
        }
        Ok(())
    }

    /// Removes a container's snapshot and its image record; absent is fine.
    pub fn remove_rw(&self, key: &str) -> Result<()> {
        self.snapshotter.remove(key)?;
        self.meta.remove_container(key)?;
        Ok(())
    }

    /// The image a container was created from.
    pub fn container_image(&self, key: &str) -> Result<Digest> {
        self.meta
            .containers()?
            .into_iter()
            .find(|(c, _)| c == key)
            .map(|(_, id)| id)
            .ok_or_else(|| Error::NotFound(format!("No such container: {key}")))
    }

    /// `docker diff`: what the container added, changed and deleted.
    pub fn changes(&self, key: &str) -> Result<Vec<Change>> {
        let src = self.snapshotter.diff_source(key)?;
        with_source(&src, layer::changes)
    }

    /// `docker commit`: the container's changes become a gzip layer on top of its image's, with
    /// the image's config plus `changes` (`--change`) and a history entry whose `created_by` is
    /// the image's command ([`ImageStore::commit_with`] takes the container's). The image
    /// records its parent. Returns the new image's ID.
    pub fn commit(
        &self,
        key: &str,
        changes: &[String],
        message: Option<&str>,
        author: Option<&str>,
        tag: Option<&Reference>,
    ) -> Result<Digest> {
        let opts = CommitOptions {
            changes: changes.to_vec(),
            message: message.map(str::to_owned),
            author: author.map(str::to_owned),
            tag: tag.cloned(),
            created_by: None,
        };
        self.commit_with(key, &opts)
    }

    /// [`ImageStore::commit`] with every option, the history entry's `created_by` included.
    pub fn commit_with(&self, key: &str, opts: &CommitOptions) -> Result<Digest> {
        let (changes, message, author, tag) = (
            &opts.changes,
            opts.message.as_deref(),
            opts.author.as_deref(),
            opts.tag.as_ref(),
        );
        let parent_id = self.container_image(key)?;
        let parent = self.meta.image(&parent_id)?;
        let mut config = self.config(&parent_id)?;
        let mut cc = config.config.clone().unwrap_or_default();
        for c in changes {
            super::apply_changes(&mut cc, c)?;
        }
        let refs = match tag {
            Some(t) if t.tag().is_none() && t.digest().is_none() => {
                vec![t.with_tag(crate::reference::DEFAULT_TAG)?]
            }
            Some(t) => vec![t.clone()],
            None => vec![],
        };
        let lease = self.lease()?;

        // The layer: gzip into the content store, diff id hashed on the uncompressed stream.
        let src = self.snapshotter.diff_source(key)?;
        let w = self.content.writer(None, None)?;
        let mut dw = DigestWriter::new(layer::compress(w, Compression::Gzip)?);
        with_source(&src, |s| layer::diff(s, &mut dw, Compression::None))?;
        let (gz, diff_id, _) = dw.finish();
        let w = gz
            .finish()
            .map_err(|e| Error::io("write", "layer blob", e))?;
        let (blob, size) = w.commit()?;
        self.meta
            .lease_add(&lease.id, std::slice::from_ref(&blob), &[])?;
        let layer = self.add_layer_blob(
            &blob,
            Some(Compression::Gzip),
            Some(&diff_id),
            parent.top_layer(),
            &lease.id,
        )?;

        let created = time::now_rfc3339();
        let created_by = match &opts.created_by {
            Some(c) => c.clone(),
            None => cc.cmd.as_ref().map(|c| c.join(" ")).unwrap_or_default(),
        };
        config.created = Some(created.clone());
        config.author = author.map(str::to_owned);
        config.comment = message.map(str::to_owned);
        config.config = Some(cc);
        config.rootfs.diff_ids.push(layer.diff_id.clone());
        config.history.push(History {
            created: Some(created),
            author: author.map(str::to_owned),
            created_by: Some(created_by),
            comment: message.map(str::to_owned),
            empty_layer: false,
        });
        config
            .extra
            .insert("container".into(), serde_json::Value::String(key.into()));
        config.extra.insert(
            "parent".into(),
            serde_json::Value::String(parent_id.to_string()),
        );
        let config_bytes =
            serde_json::to_vec(&config).map_err(|e| Error::Malformed(e.to_string()))?;

        // Manifest over the parent's blobs (when it has them) and the new one.
        let mut layers = Vec::new();
        if let Some(m) = &parent.manifest {
            let pm = crate::manifest::read_manifest(&self.content, m)?;
            for d in pm.layers() {
                layers.push((
                    crate::manifest::descriptor_digest(d)?,
                    d.media_type().to_string(),
                    d.size(),
                ));
            }
        }
        layers.push((blob, Compression::Gzip.oci_media_type().to_owned(), size));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": {
                "mediaType": media_types::OCI_CONFIG,
                "digest": Digest::of(&config_bytes),
                "size": config_bytes.len(),
            },
            "layers": layers.iter().map(|(d, mt, size)| serde_json::json!({
                "mediaType": mt, "digest": d, "size": size,
            })).collect::<Vec<_>>(),
        });
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| Error::Malformed(e.to_string()))?;
        let id = Digest::of(&config_bytes);
        let mdigest = Digest::of(&manifest_bytes);
        self.meta
            .lease_add(&lease.id, &[id.clone(), mdigest.clone()], &[])?;
        self.content.write_blob(&config_bytes, Some(&id))?;
        self.content.write_blob(&manifest_bytes, Some(&mdigest))?;
        let mut rec = ImageRecord::from_config(id.clone(), &config);
        rec.manifest = Some(mdigest);
        rec.blobs = parent.blobs.clone();
        if !rec.blobs.contains(&layers[layers.len() - 1].0) {
            rec.blobs.push(layers[layers.len() - 1].0.clone());
        }
        rec.parent = Some(parent_id);
        let mut total = 0;
        for c in &rec.chain_ids {
            total += self.meta.layer(c)?.map_or(0, |l| l.size);
        }
        rec.size = total;
        self.meta.put_image(&rec, &refs)?;
        Ok(id)
    }

    /// `docker export`: the container's whole filesystem as an uncompressed tar, with owners,
    /// modes, xattrs and hardlinks.
    pub fn export(&self, key: &str, writer: impl Write) -> Result<()> {
        let scratch = self.scratch()?;
        let target = scratch.path().join("rootfs");
        std::fs::create_dir(&target).map_err(|e| Error::io("create", &target, e))?;
        let guard = self.snapshotter.mount(key, &target)?;
        let res = layer::diff(
            &layer::DiffSource::Compare {
                dir: &target,
                base: None,
            },
            writer,
            Compression::None,
        );
        if guard.unmount().is_err() {
            // Never remove a tree that may still be mounted: keep the scratch dir.
            std::mem::forget(scratch);
            return Err(Error::io(
                "unmount",
                &target,
                io::Error::other("export mount still busy"),
            ));
        }
        res.map(|_| ())
    }
}
