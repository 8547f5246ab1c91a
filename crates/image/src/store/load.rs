//! `docker load`: Docker's archive (`manifest.json`; Docker 25+ puts every blob under
//! `blobs/sha256/<hex>`, older versions write `<id>/layer.tar` and `<config hex>.json`, layers
//! possibly symlinked to one another) and plain OCI layouts (`index.json` + `blobs/`).
//!
//! The archive is read once ([`ImageStore::read_archive`], `load_stream.rs`): blobs go straight
//! into the content store, verified against their digest, and layers are unpacked while they
//! arrive. Then each image is resolved from its documents: its layers are placed in the
//! snapshotter in order (taking what was unpacked ahead, checked against the config's diff ids)
//! and the image is put with its tags.
//!
//! One lease covers the whole load. GC is held off while the archive is read, until every blob
//! stored is leased. A failed load leaves nothing behind: no image, no layer, no staging, and
//! the blobs it stored are collected; a killed one leaves no image, and what it staged goes at
//! the next open (its blobs at the next GC).

use std::borrow::Cow;
use std::thread::Scope;

use super::load_stream::{ArchiveIndex, Item};
use super::save::blob_path;
use super::ImageStore;
use crate::digest::DiffId;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::manifest::{self, Document, ImageConfig, Platform};
use crate::snapshot::DetachedLayer;
use crate::{ChainId, Digest, Reference};

/// An image `load` stored, with the tags it set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    pub tags: Vec<Reference>,
}

/// A layer unpacked while its blob was being loaded, not yet published.
pub(crate) struct UnpackedAhead {
    pub(crate) layer: DetachedLayer,
    /// The compression it was decoded with.
    pub(crate) compression: Compression,
    /// The digest of the decompressed stream; None for an uncompressed blob, whose diff id is
    /// the blob's own digest.
    pub(crate) diff_id: Option<DiffId>,
    /// Bytes of file content.
    pub(crate) size: u64,
}

/// A layer blob of an image, stored and leased.
struct LayerBlob {
    digest: Digest,
    size: u64,
    compression: Compression,
    ahead: Option<UnpackedAhead>,
}

fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

/// The digest a path names: `blobs/sha256/<hex>`, `<hex>.json`.
pub(super) fn digest_in_path(path: &str) -> Option<Digest> {
    let p = path.trim_start_matches("./");
    if let Some(hex) = p.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex).ok();
    }
    p.strip_suffix(".json")
        .and_then(|h| Digest::from_hex(h).ok())
}

fn check(what: &str, expected: &Digest, actual: &Digest) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

impl ImageStore {
    /// `docker load`: stores every image of a Docker archive or OCI layout.
    pub fn load(&self, reader: impl std::io::Read) -> Result<Vec<LoadedImage>> {
        let result = {
            let lease = self.lease()?;
            std::thread::scope(|scope| self.load_in(reader, scope, &lease.id))
        };
        if result.is_err() {
            // Its lease gone, what the failed load stored (and no image took) is garbage: collect
            // it now rather than at the next rmi. Best effort: the load's error is what matters.
            let _ = self.collect_garbage();
        }
        result
    }

    fn load_in<'scope, 'env>(
        &'env self,
        reader: impl std::io::Read,
        scope: &'scope Scope<'scope, 'env>,
        lease: &str,
    ) -> Result<Vec<LoadedImage>> {
        let mut ar = {
            // Blobs are committed before their digests are known: lease them before GC may
            // run (see crate::gc).
            let _hold = self.content.hold_off_gc();
            let ar = self.read_archive(reader, scope)?;
            self.meta.lease_add(lease, &ar.stored(), &[])?;
            ar
        };
        if ar.exists("manifest.json") {
            self.load_docker(&mut ar, lease)
        } else if ar.exists("index.json") {
            self.load_oci(&mut ar, lease)
        } else {
            Err(malformed(
                "invalid archive: neither manifest.json nor index.json found",
            ))
        }
    }

    fn load_docker(&self, ar: &mut ArchiveIndex<'_>, lease: &str) -> Result<Vec<LoadedImage>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(&self.archive_read(ar, "manifest.json")?)
            .map_err(|e| malformed(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for e in entries {
            let config_bytes = self.archive_read(ar, &e.config)?.into_owned();
            let id = Digest::of(&config_bytes);
            if let Some(want) = digest_in_path(&e.config) {
                check(&e.config, &want, &id)?;
            }
            let config = ImageConfig::parse(&config_bytes)?;
            if config.rootfs.diff_ids.len() != e.layers.len() {
                return Err(malformed(format!(
                    "image {id}: config has {} layers, manifest.json {}",
                    config.rootfs.diff_ids.len(),
                    e.layers.len()
                )));
            }
            let mut blobs = Vec::new();
            for path in &e.layers {
                blobs.push(self.layer_blob(ar, path, digest_in_path(path).as_ref(), lease)?);
            }
            let compressions: Vec<_> = blobs.iter().map(|b| b.compression).collect();
            let layers = self.place_layers(blobs, &compressions, &config.rootfs.diff_ids, lease)?;
            let layers: Vec<_> = layers
                .into_iter()
                .map(|(d, c, size)| (d, c.oci_media_type().to_owned(), size))
                .collect();
            let tags = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse_normalized(t))
                .collect::<Result<Vec<_>>>()?;
            let id = self.commit_image(&config_bytes, &config, &layers, &tags, lease)?;
            out.push(LoadedImage { id, tags });
        }
        Ok(out)
    }

    fn load_oci(&self, ar: &mut ArchiveIndex<'_>, lease: &str) -> Result<Vec<LoadedImage>> {
        let index = manifest::parse_index(&self.archive_read(ar, "index.json")?)?;
        let mut out = Vec::new();
        for desc in index.manifests() {
            let mut d = manifest::descriptor_digest(desc)?;
            let mut bytes = self.archive_blob_doc(ar, &d)?;
            if let Document::Index(inner) =
                manifest::parse_document(&bytes, Some(desc.media_type().as_ref()))?
            {
                let chosen = manifest::select_manifest(&inner, &Platform::host())?;
                d = manifest::descriptor_digest(chosen)?;
                bytes = self.archive_blob_doc(ar, &d)?;
            }
            let m = manifest::parse_manifest(&bytes)?;
            let cd = manifest::descriptor_digest(m.config())?;
            let config_bytes = self.archive_blob_doc(ar, &cd)?;
            let config = ImageConfig::parse(&config_bytes)?;
            manifest::check_image_manifest(&m, Some(&config))?;
            let mut blobs = Vec::new();
            let mut compressions = Vec::new();
            for l in m.layers().iter().take(config.rootfs.diff_ids.len()) {
                let ld = manifest::descriptor_digest(l)?;
                let b = self.layer_blob(ar, &blob_path(&ld), Some(&ld), lease)?;
                compressions.push(
                    Compression::from_media_type(l.media_type().as_ref()).unwrap_or(b.compression),
                );
                blobs.push(b);
            }
            let placed = self.place_layers(blobs, &compressions, &config.rootfs.diff_ids, lease)?;
            let blobs: Vec<_> = placed
                .into_iter()
                .zip(m.layers())
                .map(|((d, _, size), l)| (d, l.media_type().to_string(), size))
                .collect();
            let mut tags = Vec::new();
            if let Some(a) = desc.annotations() {
                let name = a
                    .get("io.containerd.image.name")
                    .or_else(|| a.get("org.opencontainers.image.ref.name"));
                if let Some(r) = name.and_then(|n| Reference::parse_normalized(n).ok()) {
                    if r.tag().is_some() && r.digest().is_none() {
                        tags.push(r);
                    }
                }
            }
            let id = self.put_image_docs(&config_bytes, &config, &bytes, &blobs, &tags, lease)?;
            match out.iter_mut().find(|i: &&mut LoadedImage| i.id == id) {
                Some(i) => i.tags.extend(tags),
                None => out.push(LoadedImage { id, tags }),
            }
        }
        Ok(out)
    }

    /// Places an image's layers in order (chain ids leased first, in one go). Returns each
    /// layer's blob digest, compression and size.
    fn place_layers(
        &self,
        blobs: Vec<LayerBlob>,
        compressions: &[Compression],
        diff_ids: &[DiffId],
        lease: &str,
    ) -> Result<Vec<(Digest, Compression, u64)>> {
        let mut chains: Vec<ChainId> = Vec::new();
        for d in diff_ids.iter().take(blobs.len()) {
            chains.push(super::chain_id(chains.last(), d));
        }
        self.meta.lease_add(lease, &[], &chains)?;
        let mut parent: Option<ChainId> = None;
        let mut out = Vec::new();
        for ((b, &c), diff_id) in blobs.into_iter().zip(compressions).zip(diff_ids) {
            let rec = self.place_layer(&b.digest, Some(c), diff_id, parent.as_ref(), b.ahead)?;
            parent = Some(rec.chain_id);
            out.push((b.digest, c, b.size));
        }
        Ok(out)
    }

    /// The bytes of a small archive file (a document), from memory or the content store.
    fn archive_read<'a>(&self, ar: &'a ArchiveIndex<'_>, path: &str) -> Result<Cow<'a, [u8]>> {
        match ar.get(path)? {
            Item::Bytes(b) => Ok(Cow::Borrowed(b)),
            Item::Stored { digest, .. } => Ok(Cow::Owned(self.content.read_verified(digest)?)),
        }
    }

    /// A document of an OCI layout, by digest, verified.
    fn archive_blob_doc(&self, ar: &ArchiveIndex<'_>, d: &Digest) -> Result<Vec<u8>> {
        let path = blob_path(d);
        let bytes = self.archive_read(ar, &path)?.into_owned();
        check(&path, d, &Digest::of(&bytes))?;
        Ok(bytes)
    }

    /// A layer's archive file as a blob of the content store (verified against `expected` when
    /// known), leased, with what was unpacked ahead from it.
    fn layer_blob(
        &self,
        ar: &mut ArchiveIndex<'_>,
        path: &str,
        expected: Option<&Digest>,
        lease: &str,
    ) -> Result<LayerBlob> {
        let (digest, size, compression) = match ar.get(path)? {
            Item::Bytes(b) => {
                let d = Digest::of(b);
                if let Some(want) = expected {
                    check(path, want, &d)?;
                }
                // Reference first, then write (see crate::gc).
                self.meta.lease_add(lease, std::slice::from_ref(&d), &[])?;
                if !self.content.exists(&d) {
                    self.content.write_blob(b, Some(&d))?;
                }
                (d, b.len() as u64, Compression::detect(b))
            }
            Item::Stored {
                digest,
                size,
                compression,
                ..
            } => {
                if let Some(want) = expected {
                    check(path, want, digest)?;
                }
                (digest.clone(), *size, *compression)
            }
        };
        Ok(LayerBlob {
            digest,
            size,
            compression,
            ahead: ar.take_ahead(path)?,
        })
    }
}
