//! What a registry client needs from the store: one lease around a pull or a push, putting a
//! pulled image from its registry documents (the blobs already stored), and the manifest to push
//! for an image (its layers compressed first when they are stored uncompressed).

use std::io::{self, Read, Write};

use super::load::UnpackedAhead;
use super::{unpack_stream, ImageStore};
use crate::content::BlobWriter;
use crate::digest::DigestReader;
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

/// A layer blob streamed in by [`ImageStore::ingest_layer`]: stored, and unpacked on the way
/// when the snapshotter allows it.
pub struct IngestedLayer {
    ahead: Option<UnpackedAhead>,
}

/// Data is handed to the disk in steps of this size while a blob is written, so the fsync at
/// commit finds little left to do.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Writes to a blob, starting the writeback of each step as it fills.
fn write_blob_data(w: &mut BlobWriter, data: &[u8], queued: &mut u64) -> io::Result<()> {
    w.write_all(data)?;
    let written = w.written();
    if written >= *queued + WRITEBACK_STEP {
        w.start_writeback(*queued, written - *queued);
        *queued = written;
    }
    Ok(())
}

/// Writes what is read through it into the blob being stored, reporting the bytes so far.
struct Tee<'a, R> {
    src: R,
    w: &'a mut BlobWriter,
    done: u64,
    queued: u64,
    progress: &'a mut (dyn FnMut(u64) + Send),
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read(buf)?;
        write_blob_data(self.w, &buf[..n], &mut self.queued)?;
        self.done += n as u64;
        if n > 0 {
            (self.progress)(self.done);
        }
        Ok(n)
    }
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

    /// Streams a layer blob from `src` (a registry download) into the content store, verified
    /// against `digest` and `size` at the end (nothing is kept on a mismatch), and, when the
    /// snapshotter can unpack a layer before its parent exists (overlay), unpacks it in the
    /// same pass: the data is read once, decompressed once, never copied to scratch space.
    /// `progress` gets the bytes read so far. The blob must be leased by the caller.
    pub fn ingest_layer(
        &self,
        src: impl Read + Send,
        digest: &Digest,
        size: u64,
        media_type: &str,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<IngestedLayer> {
        let compression = manifest::layer_compression(media_type)?;
        let mut w = self.content.writer(Some(digest), Some(size))?;
        let read_err = |e: io::Error| Error::io("download layer", digest.to_string(), e);
        let mut tee = Tee { src, w: &mut w, done: 0, queued: 0, progress };
        let mut unpacked = None;
        let ahead = if self.snapshotter.supports_detached() {
            let layer = self.snapshotter.unpack_detached(&mut |dir, mode| {
                let mut dr = DigestReader::new(compression.reader(&mut tee)?);
                let files = unpack_stream(&mut dr, dir, mode)?;
                io::copy(&mut dr, &mut io::sink()).map_err(read_err)?;
                unpacked = Some((dr.digest(), files));
                Ok(())
            });
            // The rest of the blob (past the end of the tar stream), and all of it if the
            // unpack failed: the digest check below says whether the data or the layer was bad.
            io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
            Some(layer)
        } else {
            io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
            None
        };
        w.commit()?;
        let ahead = match (ahead, unpacked) {
            (Some(layer), Some((diff_id, files))) => Some(UnpackedAhead {
                layer: layer?,
                compression,
                diff_id: Some(diff_id),
                size: files,
            }),
            (Some(layer), None) => return Err(layer.err().unwrap_or_else(|| Error::Malformed(format!("layer {digest} not unpacked")))),
            (None, _) => None,
        };
        Ok(IngestedLayer { ahead })
    }

    /// Puts a pulled image: `layers` (blobs stored and leased; with what
    /// [`ImageStore::ingest_layer`] unpacked of them, if anything) are placed in order, each
    /// checked against the config's diff ids, then the manifest and config are stored and the
    /// image is put with `refs` (its tag and its repository digest).
    pub fn put_pulled_image(
        &self,
        config_bytes: &[u8],
        manifest_bytes: &[u8],
        layers: &[PulledLayer],
        mut ingested: Vec<Option<IngestedLayer>>,
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
        ingested.resize_with(layers.len(), || None);
        let mut chains: Vec<ChainId> = Vec::new();
        for d in &config.rootfs.diff_ids {
            chains.push(super::chain_id(chains.last(), d));
        }
        self.meta.lease_add(lease, &[], &chains)?;
        let mut parent: Option<ChainId> = None;
        for ((l, diff_id), ing) in layers.iter().zip(&config.rootfs.diff_ids).zip(ingested) {
            let c = manifest::layer_compression(&l.media_type)?;
            let ahead = ing.and_then(|i| i.ahead);
            let rec = self.place_layer(&l.digest, Some(c), diff_id, parent.as_ref(), ahead)?;
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

    /// The manifest to push for image `id`, as the image keeps it. Layers it keeps
    /// uncompressed (loaded, committed, imported images) are to be gzipped while they are
    /// pushed ([`ImageStore::gzip_layer`]), then the manifest replaced
    /// ([`ImageStore::replace_push_manifest`]).
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
        let layers: Vec<(Digest, u64, String)> = m
            .layers()
            .iter()
            .map(|l| Ok((manifest::descriptor_digest(l)?, l.size(), l.media_type().to_string())))
            .collect::<Result<_>>()?;
        Ok(PushManifest {
            digest: mdigest,
            bytes,
            media_type,
            config: manifest::descriptor_digest(m.config())?,
            config_size: m.config().size(),
            config_media_type: m.config().media_type().to_string(),
            layers,
        })
    }

    /// Gzips the uncompressed layer blob `d` into the content store (leased) and into `out`
    /// at once: a push streams it to the registry while it is compressed, and the next push
    /// finds it stored. Returns the compressed blob's digest and size.
    pub fn gzip_layer(&self, d: &Digest, out: &mut dyn Write, lease: &str) -> Result<(Digest, u64)> {
        let err = |e| Error::io("compress layer", d.to_string(), e);
        let mut src = self.content.open_blob(d)?;
        let w = self.content.writer(None, None)?;
        // Level 1: a push is bound by compression speed, and more effort gains little.
        let mut gz = flate2::write::GzEncoder::new(Both { a: w, b: out, queued: 0 }, flate2::Compression::fast());
        io::copy(&mut src, &mut gz).map_err(err)?;
        let mut both = gz.finish().map_err(err)?;
        both.flush().map_err(err)?;
        let _hold = self.content.hold_off_gc();
        let (digest, size) = both.a.commit()?;
        self.meta.lease_add(lease, std::slice::from_ref(&digest), &[])?;
        Ok((digest, size))
    }

    /// Makes an OCI manifest over `layers` (`base`'s config) the image's manifest, stored under
    /// `lease`, and returns it.
    pub fn replace_push_manifest(
        &self,
        id: &Digest,
        base: &PushManifest,
        layers: Vec<(Digest, u64, String)>,
        lease: &str,
    ) -> Result<PushManifest> {
        let doc = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": { "mediaType": base.config_media_type, "digest": base.config, "size": base.config_size },
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
            config: base.config.clone(),
            config_size: base.config_size,
            config_media_type: base.config_media_type.clone(),
            layers,
        })
    }
}

/// Whether a layer media type is an uncompressed tar (gzipped for a push).
pub fn is_uncompressed_layer(media_type: &str) -> bool {
    Compression::from_media_type(media_type) == Some(Compression::None)
}

/// Writes to both.
struct Both<'a> {
    a: BlobWriter,
    b: &'a mut dyn Write,
    queued: u64,
}

impl Write for Both<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_blob_data(&mut self.a, buf, &mut self.queued)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.a.flush()?;
        self.b.flush()
    }
}
