//! What a registry client needs from the store: one lease around a pull or a push, putting a
//! pulled image from its registry documents (the blobs already stored), and the manifest to push
//! for an image (its layers compressed first when they are stored uncompressed).

use std::io::{self, Write};

use super::ImageStore;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::manifest::{self, media_types, ImageConfig};
use crate::{ChainId, Digest, Reference};

/// A layer of a pulled image: its blob (stored), media type and size.
#[derive(Debug, Clone)]
pub struct PulledLayer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// The manifest to push for an image.
#[derive(Debug, Clone)]
pub struct PushManifest {
    pub digest: Digest,
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub config: Digest,
    pub config_size: u64,
    pub config_media_type: String,
    /// Layer blobs: digest, size, media type.
    pub layers: Vec<(Digest, u64, String)>,
}

impl ImageStore {
    /// Runs `f` under a lease it hands over; when `f` fails, what it stored and nothing else
    /// references is collected.
    pub fn with_lease<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&str) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let result = {
            let lease = self.lease()?;
            f(&lease.id)
        };
        if result.is_err() {
            let _ = self.collect_garbage();
        }
        result
    }

    /// Puts a pulled image: `layers` (blobs stored and leased) are unpacked in order, each
    /// checked against the config's diff ids, then the manifest and config are stored and the
    /// image is put with `refs` (its tag and its repository digest).
    pub fn put_pulled_image(
        &self,
        config_bytes: &[u8],
        manifest_bytes: &[u8],
        layers: &[PulledLayer],
        refs: &[Reference],
        lease: &str,
    ) -> Result<Digest> {
        let config = ImageConfig::parse(config_bytes)?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(Error::Malformed(format!(
                "manifest has {} layers, its config {}",
                layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let mut parent: Option<ChainId> = None;
        for (l, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
            let c = manifest::layer_compression(&l.media_type)?;
            let rec = self.add_layer_blob(&l.digest, Some(c), Some(diff_id), parent.as_ref(), lease)?;
            parent = Some(rec.chain_id);
        }
        let blobs: Vec<_> = layers
            .iter()
            .map(|l| (l.digest.clone(), l.media_type.clone(), l.size))
            .collect();
        let id = self.put_image_docs(config_bytes, &config, manifest_bytes, &blobs, refs, lease)?;
        // An image already present keeps the manifest it had; a pull names the registry's.
        self.meta
            .set_manifest(&id, &Digest::of(manifest_bytes), &blobs.iter().map(|b| b.0.clone()).collect::<Vec<_>>())?;
        Ok(id)
    }

    /// The manifest to push for image `id`. Layers stored uncompressed are gzipped first, in
    /// parallel, into the content store, and the image then keeps the compressed manifest, so
    /// that a second push finds every blob already there.
    pub fn push_manifest(&self, id: &Digest) -> Result<PushManifest> {
        let rec = self.meta.image(id)?;
        let mdigest = rec
            .manifest
            .clone()
            .ok_or_else(|| Error::NotFound(format!("image {id} has no manifest to push")))?;
        let bytes = self.content.read_verified(&mdigest)?;
        let m = manifest::parse_manifest(&bytes)?;
        let media_type = m
            .media_type()
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| media_types::OCI_MANIFEST.to_owned());
        let layer_descs: Vec<(Digest, u64, String)> = m
            .layers()
            .iter()
            .map(|l| Ok((manifest::descriptor_digest(l)?, l.size(), l.media_type().to_string())))
            .collect::<Result<_>>()?;
        let config = manifest::descriptor_digest(m.config())?;
        let config_size = m.config().size();
        let config_media_type = m.config().media_type().to_string();
        let plain = layer_descs
            .iter()
            .any(|(_, _, t)| Compression::from_media_type(t) == Some(Compression::None));
        if !plain {
            return Ok(PushManifest {
                digest: mdigest,
                bytes,
                media_type,
                config,
                config_size,
                config_media_type,
                layers: layer_descs,
            });
        }
        self.with_lease(|lease| -> Result<PushManifest> {
            let layers = std::thread::scope(|s| {
                let handles: Vec<_> = layer_descs
                    .iter()
                    .map(|(d, size, t)| {
                        s.spawn(move || -> Result<(Digest, u64, String)> {
                            if Compression::from_media_type(t) != Some(Compression::None) {
                                return Ok((d.clone(), *size, t.clone()));
                            }
                            self.gzip_blob(d, lease)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect::<Result<Vec<_>>>()
            })?;
            let doc = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_types::OCI_MANIFEST,
                "config": { "mediaType": config_media_type, "digest": config, "size": config_size },
                "layers": layers.iter().map(|(d, size, t)| serde_json::json!({
                    "mediaType": t, "digest": d, "size": size,
                })).collect::<Vec<_>>(),
            });
            let bytes = serde_json::to_vec(&doc).map_err(|e| Error::Malformed(e.to_string()))?;
            let digest = Digest::of(&bytes);
            self.meta.lease_add(lease, std::slice::from_ref(&digest), &[])?;
            self.content.write_blob(&bytes, Some(&digest))?;
            let blobs: Vec<Digest> = layers.iter().map(|l| l.0.clone()).collect();
            self.meta.set_manifest(id, &digest, &blobs)?;
            Ok(PushManifest {
                digest,
                bytes,
                media_type: media_types::OCI_MANIFEST.to_owned(),
                config: config.clone(),
                config_size,
                config_media_type: config_media_type.clone(),
                layers,
            })
        })
    }

    /// Gzips an uncompressed layer blob into the content store (leased).
    fn gzip_blob(&self, d: &Digest, lease: &str) -> Result<(Digest, u64, String)> {
        let mut src = self.content.open_blob(d)?;
        let w = self.content.writer(None, None)?;
        // Level 1: pushing is bound by compression speed, and random-ish layer data gains
        // little from more effort.
        let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
        io::copy(&mut src, &mut gz).map_err(|e| Error::io("compress layer", d.to_string(), e))?;
        let mut w = gz
            .finish()
            .map_err(|e| Error::io("compress layer", d.to_string(), e))?;
        w.flush().map_err(|e| Error::io("compress layer", d.to_string(), e))?;
        // Reference first, then publish (see crate::gc): the digest is known before commit.
        let (digest, size) = {
            let _hold = self.content.hold_off_gc();
            let (digest, size) = w.commit()?;
            self.meta.lease_add(lease, std::slice::from_ref(&digest), &[])?;
            (digest, size)
        };
        Ok((digest, size, media_types::OCI_LAYER_GZIP.to_owned()))
    }
}
