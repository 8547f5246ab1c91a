//! Image metadata in redb, an embedded ACID store: images, references, layers with their
//! reference counts, leases and the containers that use images. Every change that touches more
//! than one record is one write transaction, so a crash leaves either all of it or none of it:
//! an image never becomes visible before its refs and layer counts, nor half-deleted.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{
    MultimapTableDefinition, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::digest::{ChainId, DiffId, Digest};
use crate::manifest::ImageConfig;
use crate::reference::Reference;
use crate::{Error, Result};

/// image id ("sha256:...") -> ImageRecord JSON
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
/// full reference ("docker.io/library/busybox:latest" or "...@sha256:...") -> image id
const REFS: TableDefinition<&str, &str> = TableDefinition::new("refs");
/// image id -> its references (reverse of REFS, kept in the same transactions)
const IMAGE_REFS: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("image_refs");
/// chain id -> LayerRecord JSON
const LAYERS: TableDefinition<&str, &[u8]> = TableDefinition::new("layers");
/// lease id -> LeaseRecord JSON
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
/// container id -> image id
const CONTAINERS: TableDefinition<&str, &str> = TableDefinition::new("containers");
/// "schema" -> version
const INFO: TableDefinition<&str, u64> = TableDefinition::new("info");
const SCHEMA_VERSION: u64 = 1;

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Store(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// An image: its config digest is its ID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest.
    pub id: Digest,
    /// The manifest it was pulled or loaded with; None for images made locally.
    #[serde(default)]
    pub manifest: Option<Digest>,
    /// Other blobs kept with the image (index, compressed layers); GC keeps them.
    #[serde(default)]
    pub blobs: Vec<Digest>,
    pub diff_ids: Vec<DiffId>,
    pub chain_ids: Vec<ChainId>,
    /// RFC 3339, from the config.
    #[serde(default)]
    pub created: Option<String>,
    /// Unpacked size of all layers, in bytes.
    #[serde(default)]
    pub size: u64,
    /// The image this one was built or committed from, locally.
    #[serde(default)]
    pub parent: Option<Digest>,
}

impl ImageRecord {
    /// A record with no layers nor content besides its config.
    pub fn new(id: Digest) -> ImageRecord {
        ImageRecord {
            id,
            manifest: None,
            blobs: Vec::new(),
            diff_ids: Vec::new(),
            chain_ids: Vec::new(),
            created: None,
            size: 0,
            parent: None,
        }
    }

    /// A record for the config with digest `id`: layers and creation time from the config.
    pub fn from_config(id: Digest, config: &ImageConfig) -> ImageRecord {
        ImageRecord {
            diff_ids: config.rootfs.diff_ids.clone(),
            chain_ids: config.chain_ids(),
            created: config.created.clone(),
            ..ImageRecord::new(id)
        }
    }

    /// The snapshot a container of this image starts from.
    pub fn top_layer(&self) -> Option<&ChainId> {
        self.chain_ids.last()
    }

    /// Every blob the image keeps alive.
    pub fn referenced_blobs(&self) -> impl Iterator<Item = &Digest> {
        std::iter::once(&self.id)
            .chain(&self.manifest)
            .chain(&self.blobs)
    }
}

/// An unpacked layer, shared by every image whose stack contains it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: ChainId,
    pub diff_id: DiffId,
    pub parent: Option<ChainId>,
    /// Unpacked size in bytes.
    pub size: u64,
    /// Images (and explicit `layer_ref` holders) using this layer.
    pub refcount: u64,
    /// The snapshotter's name for the layer's directory.
    pub snapshot_key: String,
}

/// What an in-progress operation protects from GC until it records an image (or fails).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; None: the lease ends with the process (dropped at the next open).
    pub expires: Option<u64>,
    pub blobs: BTreeSet<Digest>,
    pub layers: BTreeSet<ChainId>,
}

/// Outcome of [`Meta::put_image`].
#[derive(Debug, Default, PartialEq)]
pub struct PutImage {
    /// False when the image was already stored (only its refs changed).
    pub created: bool,
    /// References that pointed to another image before, with that image's ID.
    pub moved: Vec<(Reference, Digest)>,
}

/// Outcome of [`Meta::delete_image`].
#[derive(Debug, Default, PartialEq)]
pub struct DeletedImage {
    pub untagged: Vec<Reference>,
    /// Layers no image uses any more (GC frees them).
    pub released_layers: Vec<ChainId>,
}

/// Everything GC must keep, read in one transaction.
#[derive(Debug, Default)]
pub struct GcRoots {
    pub blobs: HashSet<Digest>,
    pub layers: HashSet<ChainId>,
    pub layer_records: Vec<LayerRecord>,
}

pub struct Meta {
    db: redb::Database,
    path: PathBuf,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("metadata records serialize")
}

fn dec<T: DeserializeOwned>(what: &str, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Store(format!("corrupt {what} record {key}: {e}")))
}

fn parse_id(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|e| Error::Store(format!("corrupt image id {s:?}: {e}")))
}

fn no_such_image(what: impl std::fmt::Display) -> Error {
    Error::NotFound(format!("No such image: {what}"))
}

fn get_json<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    what: &str,
    key: &str,
) -> Result<Option<T>> {
    match t.get(key)? {
        Some(v) => Ok(Some(dec(what, key, v.value())?)),
        None => Ok(None),
    }
}

fn all_json<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    what: &str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        out.push(dec(what, k.value(), v.value())?);
    }
    Ok(out)
}

/// Lowercase hex of 4..=64 chars, optionally after "sha256:": what may be an image ID prefix.
fn id_prefix(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    let ok = (4..=64).contains(&hex.len())
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(hex)
}

impl Meta {
    /// Opens (creating if needed) the database file. Leases that do not outlive their process,
    /// and expired ones, are dropped: redb locks the file, so no other process is using them,
    /// and whatever they protected is now left for GC.
    pub fn open(path: impl AsRef<Path>) -> Result<Meta> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let db = redb::Builder::new()
            .create_with_file_format_v3(true)
            .set_cache_size(32 << 20)
            .create(&path)
            .map_err(|e| Error::Store(format!("open {}: {e}", path.display())))?;
        let meta = Meta { db, path };
        meta.write(|txn| {
            let mut info = txn.open_table(INFO)?;
            let version = info.get("schema")?.map(|v| v.value());
            match version {
                None => {
                    info.insert("schema", SCHEMA_VERSION)?;
                }
                Some(SCHEMA_VERSION) => {}
                Some(v) => {
                    return Err(Error::Store(format!(
                        "unsupported metadata schema version {v}"
                    )))
                }
            }
            txn.open_table(IMAGES)?;
            txn.open_table(REFS)?;
            txn.open_multimap_table(IMAGE_REFS)?;
            txn.open_table(LAYERS)?;
            txn.open_table(CONTAINERS)?;
            let mut leases = txn.open_table(LEASES)?;
            let stale: Vec<String> = all_json::<LeaseRecord>(&leases, "lease")?
                .into_iter()
                .filter(|l| l.expires.is_none_or(|t| t <= now()))
                .map(|l| l.id)
                .collect();
            for id in stale {
                leases.remove(id.as_str())?;
            }
            Ok(())
        })?;
        Ok(meta)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a write transaction, committed only if it returns Ok.
    fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_write()?;
        let out = f(&txn)?; // dropping an uncommitted transaction aborts it
        txn.commit()?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        f(&self.db.begin_read()?)
    }

    // ----- images and references -----

    /// Stores an image with its references (tagged or digested), all in one transaction, and
    /// counts a reference on each of its layers, which must already be registered. Storing an
    /// image that exists only updates its references and merges the blobs it keeps.
    pub fn put_image(&self, record: &ImageRecord, refs: &[Reference]) -> Result<PutImage> {
        for r in refs {
            if r.is_name_only() {
                return Err(Error::InvalidArgument(format!(
                    "reference {r} has neither tag nor digest"
                )));
            }
        }
        self.write(|txn| {
            let mut images = txn.open_table(IMAGES)?;
            let key = record.id.to_string();
            let existing: Option<ImageRecord> = get_json(&images, "image", &key)?;
            let created = existing.is_none();
            let stored = match existing {
                Some(mut old) => {
                    old.manifest = old.manifest.or_else(|| record.manifest.clone());
                    for b in &record.blobs {
                        if !old.blobs.contains(b) {
                            old.blobs.push(b.clone());
                        }
                    }
                    old
                }
                None => {
                    if let Some(p) = &record.parent {
                        if images.get(p.to_string().as_str())?.is_none() {
                            return Err(no_such_image(p));
                        }
                    }
                    let mut layers = txn.open_table(LAYERS)?;
                    for c in &record.chain_ids {
                        let k = c.to_string();
                        let mut l: LayerRecord =
                            get_json(&layers, "layer", &k)?.ok_or_else(|| {
                                Error::NotFound(format!("layer {c} is not registered"))
                            })?;
                        l.refcount += 1;
                        layers.insert(k.as_str(), enc(&l).as_slice())?;
                    }
                    record.clone()
                }
            };
            images.insert(key.as_str(), enc(&stored).as_slice())?;
            drop(images);
            let mut moved = Vec::new();
            for r in refs {
                if let Some(old) = set_ref(txn, r, &record.id)? {
                    moved.push((r.clone(), old));
                }
            }
            Ok(PutImage { created, moved })
        })
    }

    /// Makes `manifest` the image's manifest (a pulled or compressed-for-push one) and adds
    /// `blobs` to those it keeps.
    pub fn set_manifest(&self, id: &Digest, manifest: &Digest, blobs: &[Digest]) -> Result<()> {
        self.write(|txn| {
            let mut images = txn.open_table(IMAGES)?;
            let key = id.to_string();
            let mut rec: ImageRecord =
                get_json(&images, "image", &key)?.ok_or_else(|| no_such_image(id))?;
            rec.manifest = Some(manifest.clone());
            for b in blobs {
                if !rec.blobs.contains(b) {
                    rec.blobs.push(b.clone());
                }
            }
            images.insert(key.as_str(), enc(&rec).as_slice())?;
            Ok(())
        })
    }

    pub fn get_image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        self.read(|txn| get_json(&txn.open_table(IMAGES)?, "image", &id.to_string()))
    }

    pub fn image(&self, id: &Digest) -> Result<ImageRecord> {
        self.get_image(id)?.ok_or_else(|| no_such_image(id))
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.read(|txn| all_json(&txn.open_table(IMAGES)?, "image"))
    }

    /// Points a tag at an image (`docker tag`); returns the image it pointed to before, if any.
    pub fn tag(&self, r: &Reference, id: &Digest) -> Result<Option<Digest>> {
        if r.digest().is_some() {
            return Err(Error::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        if r.tag().is_none() {
            return Err(Error::InvalidArgument(format!("reference {r} has no tag")));
        }
        self.write(|txn| {
            if txn
                .open_table(IMAGES)?
                .get(id.to_string().as_str())?
                .is_none()
            {
                return Err(no_such_image(id));
            }
            set_ref(txn, r, id)
        })
    }

    /// Removes a reference; returns the image it pointed to. The image itself stays (dangling
    /// when this was its last reference): deleting it is the caller's decision.
    pub fn untag(&self, r: &Reference) -> Result<Digest> {
        self.write(|txn| {
            let key = r.to_string();
            let id = txn
                .open_table(REFS)?
                .remove(key.as_str())?
                .map(|v| v.value().to_owned());
            let id = id.ok_or_else(|| no_such_image(r.familiar_string()))?;
            txn.open_multimap_table(IMAGE_REFS)?
                .remove(id.as_str(), key.as_str())?;
            parse_id(&id)
        })
    }

    /// The image a reference points to.
    pub fn lookup_ref(&self, r: &Reference) -> Result<Option<Digest>> {
        self.read(
            |txn| match txn.open_table(REFS)?.get(r.to_string().as_str())? {
                Some(v) => Ok(Some(parse_id(v.value())?)),
                None => Ok(None),
            },
        )
    }

    /// Every reference and its image, sorted by reference.
    pub fn refs(&self) -> Result<Vec<(Reference, Digest)>> {
        self.read(|txn| {
            let mut out = Vec::new();
            for item in txn.open_table(REFS)?.iter()? {
                let (k, v) = item?;
                out.push((Reference::parse(k.value())?, parse_id(v.value())?));
            }
            Ok(out)
        })
    }

    /// An image's references (tags and repo digests), sorted.
    pub fn refs_of(&self, id: &Digest) -> Result<Vec<Reference>> {
        self.read(|txn| {
            let mut out = Vec::new();
            for v in txn
                .open_multimap_table(IMAGE_REFS)?
                .get(id.to_string().as_str())?
            {
                out.push(Reference::parse(v?.value())?);
            }
            Ok(out)
        })
    }

    /// Finds an image as `docker image inspect` does: a full ID, a reference (bare names get
    /// `:latest`), or a unique ID prefix of at least 4 hex digits.
    pub fn resolve(&self, s: &str) -> Result<Digest> {
        if let Some(hex) = id_prefix(s).filter(|h| h.len() == 64) {
            let id = Digest::from_hex(hex)?;
            return match self.get_image(&id)? {
                Some(_) => Ok(id),
                None => Err(no_such_image(id)),
            };
        }
        let parsed = Reference::parse_normalized(s);
        self.read(|txn| {
            if let Ok(r) = &parsed {
                if let Some(v) = txn.open_table(REFS)?.get(r.to_string().as_str())? {
                    return parse_id(v.value());
                }
            }
            if let Some(hex) = id_prefix(s) {
                let start = format!("sha256:{hex}");
                let images = txn.open_table(IMAGES)?;
                let mut found: Vec<Digest> = Vec::new();
                for item in images.range(start.as_str()..)? {
                    let (k, _) = item?;
                    if !k.value().starts_with(&start) || found.len() == 2 {
                        break;
                    }
                    found.push(parse_id(k.value())?);
                }
                match found.len() {
                    1 => return Ok(found.remove(0)),
                    2 => {
                        return Err(Error::InvalidArgument(format!(
                            "multiple IDs found with provided prefix: {s}"
                        )))
                    }
                    _ => {}
                }
            }
            match &parsed {
                Ok(r) => Err(no_such_image(r.familiar_string())),
                Err(e) => Err(Error::InvalidArgument(e.to_string())),
            }
        })
    }

    /// Deletes an image and all its references, releasing its layers, in one transaction.
    /// Refused while a container or a child image uses it.
    pub fn delete_image(&self, id: &Digest) -> Result<DeletedImage> {
        self.write(|txn| {
            let key = id.to_string();
            let mut images = txn.open_table(IMAGES)?;
            let rec: ImageRecord = get_json(&images, "image", &key)?.ok_or_else(|| no_such_image(id))?;
            for item in txn.open_table(CONTAINERS)?.iter()? {
                let (cid, img) = item?;
                if img.value() == key {
                    let cid = cid.value();
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is being used by container {}",
                        id.short(),
                        &cid[..cid.len().min(12)]
                    )));
                }
            }
            for other in all_json::<ImageRecord>(&images, "image")? {
                if other.parent.as_ref() == Some(id) {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                        id.short()
                    )));
                }
            }
            let mut out = DeletedImage::default();
            let mut refs = txn.open_table(REFS)?;
            let mut names = Vec::new();
            for v in txn.open_multimap_table(IMAGE_REFS)?.remove_all(key.as_str())? {
                names.push(v?.value().to_owned());
            }
            for n in names {
                refs.remove(n.as_str())?;
                out.untagged.push(Reference::parse(&n)?);
            }
            let mut layers = txn.open_table(LAYERS)?;
            for c in &rec.chain_ids {
                let k = c.to_string();
                if let Some(mut l) = get_json::<LayerRecord>(&layers, "layer", &k)? {
                    l.refcount = l.refcount.saturating_sub(1);
                    if l.refcount == 0 {
                        out.released_layers.push(c.clone());
                    }
                    layers.insert(k.as_str(), enc(&l).as_slice())?;
                }
            }
            images.remove(key.as_str())?;
            Ok(out)
        })
    }

    // ----- layers -----

    /// Registers an unpacked layer (refcount starts at 0: protect it with a lease until an
    /// image uses it). Returns false, changing nothing, when it is already registered.
    pub fn put_layer(&self, layer: &LayerRecord) -> Result<bool> {
        self.write(|txn| {
            let mut t = txn.open_table(LAYERS)?;
            let k = layer.chain_id.to_string();
            if t.get(k.as_str())?.is_some() {
                return Ok(false);
            }
            if let Some(p) = &layer.parent {
                if t.get(p.to_string().as_str())?.is_none() {
                    return Err(Error::NotFound(format!(
                        "parent layer {p} is not registered"
                    )));
                }
            }
            t.insert(
                k.as_str(),
                enc(&LayerRecord {
                    refcount: 0,
                    ..layer.clone()
                })
                .as_slice(),
            )?;
            Ok(true)
        })
    }

    pub fn layer(&self, chain_id: &ChainId) -> Result<Option<LayerRecord>> {
        self.read(|txn| get_json(&txn.open_table(LAYERS)?, "layer", &chain_id.to_string()))
    }

    pub fn layers(&self) -> Result<Vec<LayerRecord>> {
        self.read(|txn| all_json(&txn.open_table(LAYERS)?, "layer"))
    }

    /// Adds `delta` (negative to release) to a layer's refcount; returns the new count.
    pub fn layer_refcount_add(&self, chain_id: &ChainId, delta: i64) -> Result<u64> {
        self.write(|txn| {
            let mut t = txn.open_table(LAYERS)?;
            let k = chain_id.to_string();
            let mut l: LayerRecord = get_json(&t, "layer", &k)?
                .ok_or_else(|| Error::NotFound(format!("layer {chain_id} is not registered")))?;
            l.refcount = l.refcount.saturating_add_signed(delta);
            t.insert(k.as_str(), enc(&l).as_slice())?;
            Ok(l.refcount)
        })
    }

    /// Forgets a layer whose snapshot was removed. Refused while referenced or a parent.
    pub fn remove_layer(&self, chain_id: &ChainId) -> Result<bool> {
        self.write(|txn| {
            let mut t = txn.open_table(LAYERS)?;
            let k = chain_id.to_string();
            let Some(l) = get_json::<LayerRecord>(&t, "layer", &k)? else {
                return Ok(false);
            };
            if l.refcount > 0 {
                return Err(Error::Conflict(format!(
                    "layer {chain_id} is in use ({} references)",
                    l.refcount
                )));
            }
            for other in all_json::<LayerRecord>(&t, "layer")? {
                if other.parent.as_ref() == Some(chain_id) {
                    return Err(Error::Conflict(format!(
                        "layer {chain_id} is the parent of {}",
                        other.chain_id
                    )));
                }
            }
            t.remove(k.as_str())?;
            Ok(true)
        })
    }

    // ----- containers -----

    /// Records that a container uses an image, so the image cannot be deleted under it.
    pub fn add_container(&self, container_id: &str, image: &Digest) -> Result<()> {
        self.write(|txn| {
            if txn
                .open_table(IMAGES)?
                .get(image.to_string().as_str())?
                .is_none()
            {
                return Err(no_such_image(image));
            }
            txn.open_table(CONTAINERS)?
                .insert(container_id, image.to_string().as_str())?;
            Ok(())
        })
    }

    pub fn remove_container(&self, container_id: &str) -> Result<bool> {
        self.write(|txn| Ok(txn.open_table(CONTAINERS)?.remove(container_id)?.is_some()))
    }

    pub fn containers(&self) -> Result<Vec<(String, Digest)>> {
        self.read(|txn| {
            let mut out = Vec::new();
            for item in txn.open_table(CONTAINERS)?.iter()? {
                let (k, v) = item?;
                out.push((k.value().to_owned(), parse_id(v.value())?));
            }
            Ok(out)
        })
    }

    // ----- leases -----

    /// Starts a lease. `expires_in: None` ties it to this process: it is dropped at the next
    /// open, so an operation killed mid-way leaves nothing protected forever.
    pub fn create_lease(&self, expires_in: Option<Duration>) -> Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = format!(
            "{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let id = format!("lease-{}", &Digest::of(seed.as_bytes()).hex()[..20]);
        let created = now();
        let rec = LeaseRecord {
            id: id.clone(),
            created,
            expires: expires_in.map(|d| created + d.as_secs().max(1)),
            blobs: BTreeSet::new(),
            layers: BTreeSet::new(),
        };
        self.write(|txn| {
            txn.open_table(LEASES)?
                .insert(id.as_str(), enc(&rec).as_slice())?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Protects blobs and layers (present or about to be written) under a lease.
    pub fn lease_add(&self, lease: &str, blobs: &[Digest], layers: &[ChainId]) -> Result<()> {
        self.write(|txn| {
            let mut t = txn.open_table(LEASES)?;
            let mut rec: LeaseRecord = get_json(&t, "lease", lease)?
                .ok_or_else(|| Error::NotFound(format!("lease {lease} not found")))?;
            rec.blobs.extend(blobs.iter().cloned());
            rec.layers.extend(layers.iter().cloned());
            t.insert(lease, enc(&rec).as_slice())?;
            Ok(())
        })
    }

    pub fn delete_lease(&self, lease: &str) -> Result<bool> {
        self.write(|txn| Ok(txn.open_table(LEASES)?.remove(lease)?.is_some()))
    }

    pub fn lease(&self, lease: &str) -> Result<Option<LeaseRecord>> {
        self.read(|txn| get_json(&txn.open_table(LEASES)?, "lease", lease))
    }

    pub fn leases(&self) -> Result<Vec<LeaseRecord>> {
        self.read(|txn| all_json(&txn.open_table(LEASES)?, "lease"))
    }

    /// Deletes leases past their expiry; returns their IDs.
    pub fn expire_leases(&self) -> Result<Vec<String>> {
        let t = now();
        self.write(|txn| {
            let mut leases = txn.open_table(LEASES)?;
            let expired: Vec<String> = all_json::<LeaseRecord>(&leases, "lease")?
                .into_iter()
                .filter(|l| l.expires.is_some_and(|e| e <= t))
                .map(|l| l.id)
                .collect();
            for id in &expired {
                leases.remove(id.as_str())?;
            }
            Ok(expired)
        })
    }

    // ----- garbage collection support -----

    /// What must survive GC: every image's blobs and layers, everything leased, every layer
    /// with references, and the parents of all of those layers.
    pub fn gc_roots(&self) -> Result<GcRoots> {
        self.read(|txn| {
            let mut roots = GcRoots::default();
            for img in all_json::<ImageRecord>(&txn.open_table(IMAGES)?, "image")? {
                roots.blobs.extend(img.referenced_blobs().cloned());
                roots.layers.extend(img.chain_ids);
            }
            for l in all_json::<LeaseRecord>(&txn.open_table(LEASES)?, "lease")? {
                roots.blobs.extend(l.blobs);
                roots.layers.extend(l.layers);
            }
            roots.layer_records = all_json(&txn.open_table(LAYERS)?, "layer")?;
            let parents: std::collections::HashMap<&ChainId, &ChainId> = roots
                .layer_records
                .iter()
                .filter_map(|l| Some((&l.chain_id, l.parent.as_ref()?)))
                .collect();
            let mut stack: Vec<ChainId> = roots.layers.iter().cloned().collect();
            stack.extend(
                roots
                    .layer_records
                    .iter()
                    .filter(|l| l.refcount > 0)
                    .map(|l| l.chain_id.clone()),
            );
            while let Some(c) = stack.pop() {
                if let Some(p) = parents.get(&c) {
                    if !roots.layers.contains(*p) {
                        stack.push((*p).clone());
                    }
                }
                roots.layers.insert(c);
            }
            Ok(roots)
        })
    }
}

/// Points `r` at `id` inside a transaction, keeping the reverse index in step. Returns the
/// image it pointed to before when that was another one.
fn set_ref(txn: &WriteTransaction, r: &Reference, id: &Digest) -> Result<Option<Digest>> {
    let (key, idk) = (r.to_string(), id.to_string());
    let mut refs = txn.open_table(REFS)?;
    let mut rev = txn.open_multimap_table(IMAGE_REFS)?;
    let old = refs
        .insert(key.as_str(), idk.as_str())?
        .map(|v| v.value().to_owned());
    let moved = match old {
        Some(old) if old != idk => {
            rev.remove(old.as_str(), key.as_str())?;
            Some(parse_id(&old)?)
        }
        _ => None,
    };
    rev.insert(idk.as_str(), key.as_str())?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    #[test]
    fn uncommitted_transaction_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let m = Meta::open(&path).unwrap();
        let img = ImageRecord::new(Digest::of(b"half"));
        let res: Result<()> = m.write(|txn| {
            txn.open_table(IMAGES)?
                .insert(img.id.to_string().as_str(), enc(&img).as_slice())?;
            set_ref(txn, &r("half"), &img.id)?;
            Err(Error::Store("simulated crash before commit".into()))
        });
        assert!(res.is_err());
        drop(m);
        let m = Meta::open(&path).unwrap();
        assert!(m.images().unwrap().is_empty());
        assert!(m.refs().unwrap().is_empty());
    }
}
