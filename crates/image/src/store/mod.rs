//! The image store facade the engine calls: content store, metadata and snapshotter together.
//!
//! Layout under the data root: `content/` ([`ContentStore`]), `meta.redb` ([`Meta`]),
//! `snapshots/<driver>/` (the [`Snapshotter`] chosen by [`snapshot::detect`]), `tmp/` (scratch
//! space, emptied at open).
//!
//! Every operation that writes content first takes a lease on what it writes, then stores blobs
//! and layers, and puts the image (refs and layer counts) in one transaction before dropping the
//! lease, so a crash or a concurrent GC never leaves a half-stored image nor frees its content.
//!
//! - [`ImageStore::add_layer_blob`] unpacks a layer blob once per chain id, checking its diff id.
//! - [`ImageStore::import`] (`docker import`, with `--change`), `import.rs`.
//! - [`ImageStore::save`] (`save.rs`) / [`ImageStore::load`] (Docker archives, OCI layouts;
//!   `load.rs`, `load_stream.rs`).
//! - [`ImageStore::tag`], [`ImageStore::untag`], [`ImageStore::remove`] (`docker rmi`), here.
//! - [`ImageStore::list`], [`ImageStore::inspect`], [`ImageStore::history`], `list.rs`.
//! - [`ImageStore::create_rw`], [`ImageStore::remove_rw`], [`ImageStore::changes`],
//!   [`ImageStore::commit`], [`ImageStore::export`] (container snapshots), `container_ops.rs`.
//! - [`ImageStore::prune`], [`ImageStore::df`], `prune.rs`.

mod container_ops;
mod import;
mod list;
mod load;
mod load_stream;
mod prune;
mod registry_ops;
mod save;
pub mod time;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::content::ContentStore;
use crate::digest::DigestReader;
use crate::error::{Error, Result};
use crate::layer::{self, ApplyOptions, Compression, WhiteoutMode};
use crate::manifest::{self, media_types, ImageConfig};
use crate::meta::{ImageRecord, LayerRecord, Meta};
use crate::snapshot::{self, Snapshotter, UnpackMode};
use crate::{ChainId, DiffId, Digest, Reference};

pub use container_ops::CommitOptions;
pub use import::{apply_changes, parse_change};
pub use list::{HistoryEntry, ImageSummary, ListFilters};
pub use load::LoadedImage;
use load::UnpackedAhead;
pub use prune::{DiskUsage, PruneReport};
pub use registry_ops::{is_uncompressed_layer, IngestedLayer, PulledLayer, PushManifest};

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteResponse {
    Untagged(String),
    Deleted(String),
}

impl std::fmt::Display for DeleteResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeleteResponse::Untagged(s) => write!(f, "Untagged: {s}"),
            DeleteResponse::Deleted(s) => write!(f, "Deleted: {s}"),
        }
    }
}

pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    meta: Meta,
    snapshotter: Box<dyn Snapshotter>,
}

/// Drops its lease when the operation ends, however it ends.
struct Lease<'a> {
    meta: &'a Meta,
    id: String,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let _ = self.meta.delete_lease(&self.id);
    }
}

impl ImageStore {
    /// Opens (creating) the store under `data_root` and removes what a crash left: ingest
    /// leftovers, expired leases, snapshot staging, scratch files.
    pub fn open(data_root: &Path) -> Result<ImageStore> {
        Self::open_with(data_root, None)
    }

    /// [`ImageStore::open`] with the snapshot driver given (`None`: as [`snapshot::detect`]
    /// picks it: $BERTH_SNAPSHOTTER, else probed).
    pub fn open_with(data_root: &Path, driver: Option<snapshot::Driver>) -> Result<ImageStore> {
        std::fs::create_dir_all(data_root).map_err(|e| Error::io("create", data_root, e))?;
        let content = ContentStore::open(data_root.join("content"))?;
        let meta = Meta::open(data_root.join("meta.redb"))?;
        let snapshotter = match driver {
            Some(d) => snapshot::detect_with(data_root, Some(d))?,
            None => snapshot::detect(data_root)?,
        };
        let store = ImageStore {
            root: data_root.to_owned(),
            content,
            meta,
            snapshotter,
        };
        store.cleanup()?;
        Ok(store)
    }

    fn cleanup(&self) -> Result<()> {
        self.content.clean_ingest()?;
        self.meta.expire_leases()?;
        self.snapshotter.cleanup()?;
        let tmp = self.root.join("tmp");
        // A crashed export may have left a snapshot mounted there: never delete through it.
        if tmp.exists() {
            snapshot::mounts::unmount_all_under(&tmp)?;
        }
        match std::fs::remove_dir_all(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &tmp, e)),
        }
        Ok(())
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }
    pub fn meta(&self) -> &Meta {
        &self.meta
    }
    pub fn snapshotter(&self) -> &dyn Snapshotter {
        self.snapshotter.as_ref()
    }
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lease(&self) -> Result<Lease<'_>> {
        Ok(Lease {
            meta: &self.meta,
            id: self.meta.create_lease(None)?,
        })
    }

    /// A private scratch directory under `<root>/tmp`, removed when dropped.
    fn scratch(&self) -> Result<tempdir::ScratchDir> {
        tempdir::ScratchDir::new(&self.root.join("tmp"))
    }

    /// The diff id of a layer blob: the digest of its decompressed stream.
    pub fn blob_diff_id(&self, blob: &Digest, compression: Option<Compression>) -> Result<DiffId> {
        let f = self.content.open_blob(blob)?;
        let r = open_layer(f, compression)?;
        let mut dr = DigestReader::new(r);
        io::copy(&mut dr, &mut io::sink())
            .map_err(|e| Error::io("read layer", blob.to_string(), e))?;
        Ok(dr.finish().1)
    }

    /// Unpacks the layer blob `blob` (in the content store) on top of `parent` into the
    /// snapshotter, once per chain id, and registers it in meta. The diff id is computed on the
    /// decompressed stream while unpacking and must equal `diff_id` when given (without it, the
    /// blob is read once more first to learn the chain id). The layer is added to `lease`.
    pub fn add_layer_blob(
        &self,
        blob: &Digest,
        compression: Option<Compression>,
        diff_id: Option<&DiffId>,
        parent: Option<&ChainId>,
        lease: &str,
    ) -> Result<LayerRecord> {
        let diff_id = match diff_id {
            Some(d) => d.clone(),
            None => self.blob_diff_id(blob, compression)?,
        };
        let chain_id = chain_id(parent, &diff_id);
        self.meta
            .lease_add(lease, &[], std::slice::from_ref(&chain_id))?;
        self.place_layer(blob, compression, &diff_id, parent, None)
    }

    /// [`ImageStore::add_layer_blob`] for a layer whose chain id the caller has leased: taken
    /// from `ahead` (unpacked while its blob was being loaded) when that was unpacked with the
    /// same compression, else unpacked from the content store.
    fn place_layer(
        &self,
        blob: &Digest,
        compression: Option<Compression>,
        diff_id: &DiffId,
        parent: Option<&ChainId>,
        ahead: Option<UnpackedAhead>,
    ) -> Result<LayerRecord> {
        let chain_id = chain_id(parent, diff_id);
        let _hold = self.content.hold_off_gc();
        if let Some(rec) = self.meta.layer(&chain_id)? {
            if self.snapshotter.has_layer(&chain_id.to_string()) {
                return Ok(rec);
            }
        }
        let key = chain_id.to_string();
        let parent_key = parent.map(|p| p.to_string());
        let mismatch = |got: &DiffId| Error::DigestMismatch {
            what: format!("layer {blob}"),
            expected: diff_id.to_string(),
            actual: got.to_string(),
        };
        let ahead = ahead.filter(|a| compression.is_none_or(|c| c == a.compression));
        let (info, size) = match ahead {
            Some(a) => {
                let got = a.diff_id.as_ref().unwrap_or(blob);
                if got != diff_id {
                    return Err(mismatch(got));
                }
                let info =
                    self.snapshotter
                        .add_detached_layer(a.layer, &key, parent_key.as_deref())?;
                (info, Some(a.size))
            }
            None => {
                let mut size = None;
                let info =
                    self.snapshotter
                        .add_layer(&key, parent_key.as_deref(), &mut |dir, mode| {
                            let f = self.content.open_blob(blob)?;
                            let mut dr = DigestReader::new(open_layer(f, compression)?);
                            size = Some(unpack_stream(&mut dr, dir, mode)?);
                            io::copy(&mut dr, &mut io::sink())
                                .map_err(|e| Error::io("read layer", blob.to_string(), e))?;
                            let got = dr.digest();
                            if &got != diff_id {
                                return Err(mismatch(&got));
                            }
                            Ok(())
                        })?;
                (info, size)
            }
        };
        // Not unpacked (the snapshot was already there): its size on disk is what we know.
        let size = size.unwrap_or(info.size);
        let rec = LayerRecord {
            chain_id: chain_id.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size,
            refcount: 0,
            snapshot_key: key,
        };
        self.meta.put_layer(&rec)?;
        Ok(self.meta.layer(&chain_id)?.unwrap_or(rec))
    }

    /// Stores `config` and an OCI manifest for it over `layers` (blob digest, media type, size;
    /// the blobs must be stored and already unpacked), and puts the image with `refs`.
    fn commit_image(
        &self,
        config_bytes: &[u8],
        config: &ImageConfig,
        layers: &[(Digest, String, u64)],
        refs: &[Reference],
        lease: &str,
    ) -> Result<Digest> {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": {
                "mediaType": media_types::OCI_CONFIG,
                "digest": Digest::of(config_bytes),
                "size": config_bytes.len(),
            },
            "layers": layers.iter().map(|(d, mt, size)| serde_json::json!({
                "mediaType": mt, "digest": d, "size": size,
            })).collect::<Vec<_>>(),
        });
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| Error::Malformed(e.to_string()))?;
        self.put_image_docs(config_bytes, config, &manifest_bytes, layers, refs, lease)
    }

    /// Writes a config and manifest (both given as bytes) and puts the image.
    fn put_image_docs(
        &self,
        config_bytes: &[u8],
        config: &ImageConfig,
        manifest_bytes: &[u8],
        layers: &[(Digest, String, u64)],
        refs: &[Reference],
        lease: &str,
    ) -> Result<Digest> {
        let id = Digest::of(config_bytes);
        let mdigest = Digest::of(manifest_bytes);
        self.meta
            .lease_add(lease, &[id.clone(), mdigest.clone()], &[])?;
        self.content.write_blob(config_bytes, Some(&id))?;
        self.content.write_blob(manifest_bytes, Some(&mdigest))?;
        let mut rec = ImageRecord::from_config(id.clone(), config);
        rec.manifest = Some(mdigest);
        rec.blobs = layers.iter().map(|l| l.0.clone()).collect();
        let mut size = 0;
        for c in &rec.chain_ids {
            size += self.meta.layer(c)?.map_or(0, |l| l.size);
        }
        rec.size = size;
        self.meta.put_image(&rec, refs)?;
        Ok(id)
    }

    /// `docker tag`.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let id = self.meta.resolve(source)?;
        let target = if target.tag().is_none() && target.digest().is_none() {
            target.with_tag(crate::reference::DEFAULT_TAG)?
        } else {
            target.clone()
        };
        self.meta.tag(&target, &id)?;
        Ok(())
    }

    /// Removes a tag; the image stays.
    pub fn untag(&self, r: &Reference) -> Result<Digest> {
        self.meta.untag(r)
    }

    /// `docker rmi`: a reference that is one of several of its image is only untagged;
    /// otherwise the image is deleted (refused while a container uses it, unless `force`, which
    /// then only untags it, or when named by ID with several repositories, unless `force`).
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Vec<DeleteResponse>> {
        let id = self.meta.resolve(name_or_id)?;
        let refs = self.meta.refs_of(&id)?;
        let by_ref = Reference::parse_normalized(name_or_id)
            .ok()
            .filter(|r| refs.contains(r));
        let mut out = Vec::new();
        if let Some(r) = &by_ref {
            // As Docker: removing a repository's last tag also drops that repository's digest
            // references (a pulled or pushed image's), and the image goes with its last ref.
            let last_tag = r.digest().is_none()
                && !refs
                    .iter()
                    .any(|x| x != r && x.digest().is_none() && x.name() == r.name());
            let digests: Vec<&Reference> = refs
                .iter()
                .filter(|x| last_tag && x.digest().is_some() && x.name() == r.name())
                .collect();
            if refs.len() > 1 + digests.len() {
                self.meta.untag(r)?;
                out.push(DeleteResponse::Untagged(r.familiar_string()));
                for d in digests {
                    self.meta.untag(d)?;
                    out.push(DeleteResponse::Untagged(d.familiar_string()));
                }
                return Ok(out);
            }
        } else if refs.len() > 1 && !force {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        let users: Vec<String> = self
            .meta
            .containers()?
            .into_iter()
            .filter(|(_, img)| *img == id)
            .map(|(c, _)| c)
            .collect();
        if let Some(c) = users.first() {
            if !force {
                let what = by_ref
                    .as_ref()
                    .map_or_else(|| id.short().to_owned(), |r| r.familiar_string());
                return Err(Error::Conflict(format!(
                    "conflict: unable to remove repository reference \"{what}\" (must force) - container {} is using its referenced image {}",
                    &c[..c.len().min(12)],
                    id.short()
                )));
            }
            for r in &refs {
                self.meta.untag(r)?;
                out.push(DeleteResponse::Untagged(r.familiar_string()));
            }
            return Ok(out);
        }
        let deleted = self.meta.delete_image(&id)?;
        for r in &deleted.untagged {
            out.push(DeleteResponse::Untagged(r.familiar_string()));
        }
        out.push(DeleteResponse::Deleted(id.to_string()));
        let report = self.collect_garbage()?;
        for c in report.layers {
            out.push(DeleteResponse::Deleted(c.to_string()));
        }
        Ok(out)
    }

    /// Frees every blob and layer snapshot nothing references (see [`crate::gc::gc`]).
    fn collect_garbage(&self) -> Result<crate::gc::GcReport> {
        let snap = self.snapshotter.as_ref();
        crate::gc::gc(&self.content, &self.meta, &mut |c| {
            snap.remove_layer(&c.to_string())
        })
    }

    /// Reads the config of an image.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig> {
        manifest::read_config(&self.content, id)
    }
}

/// The chain id of a layer with `diff_id` on top of `parent`.
fn chain_id(parent: Option<&ChainId>, diff_id: &DiffId) -> ChainId {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Unpacks a decompressed layer stream at `dir` as the snapshotter asks; returns the bytes of
/// file content. No sync here: the snapshotter syncs once before it publishes the layer, and
/// finds little left to write (writeback starts while unpacking).
fn unpack_stream(r: impl Read, dir: &Path, mode: UnpackMode) -> Result<u64> {
    let mut opts = ApplyOptions {
        writeback: true,
        ..Default::default()
    };
    let stats = match mode {
        UnpackMode::OverlayDiff => {
            opts.whiteouts = WhiteoutMode::Overlay;
            layer::apply(r, dir, &opts)?
        }
        UnpackMode::Flatten => {
            opts.whiteouts = WhiteoutMode::Apply;
            layer::apply_onto(r, dir, &opts)?
        }
    };
    Ok(stats.content_bytes)
}

/// A decompressing reader over a layer blob (compression detected when not given).
fn open_layer<'a, R: Read + Send + 'a>(
    r: R,
    c: Option<Compression>,
) -> Result<Box<dyn Read + Send + 'a>> {
    match c {
        Some(c) => c.reader(r),
        None => layer::decompress(r),
    }
}

mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::error::{Error, Result};

    pub struct ScratchDir(PathBuf);

    impl ScratchDir {
        pub fn new(base: &Path) -> Result<ScratchDir> {
            static N: AtomicU64 = AtomicU64::new(0);
            std::fs::create_dir_all(base).map_err(|e| Error::io("create", base, e))?;
            let p = base.join(format!(
                "{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir(&p).map_err(|e| Error::io("create", &p, e))?;
            Ok(ScratchDir(p))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
