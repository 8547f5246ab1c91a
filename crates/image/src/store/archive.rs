//! `docker save` / `docker load`.
//!
//! Save writes Docker 25+'s archive: every blob (configs, layers as stored, manifests) under
//! `blobs/sha256/<hex>`, `manifest.json` (`[{Config, RepoTags, Layers}]`), `repositories`, and
//! `oci-layout` + `index.json`, so the archive is also an OCI image layout.
//!
//! Load accepts that, Docker's legacy archive (`<id>/layer.tar`, `<config hex>.json`, layers
//! possibly symlinked to one another) and plain OCI layouts (`index.json` + `blobs/`). The
//! archive is extracted to scratch space first (only regular files and directories; symlinks
//! are resolved inside the archive, never on the host), every blob is verified against its
//! digest, layers are unpacked and images put with their tags.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::ImageStore;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::manifest::{self, media_types, Document, ImageConfig, Platform};
use crate::{ChainId, Digest, Reference};

/// An image `load` stored, with the tags it set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    pub tags: Vec<Reference>,
}

fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    path: &str,
    size: u64,
    data: &mut dyn Read,
) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
        .map_err(|e| Error::io("write archive", path, e))
}

fn append_dir(tar: &mut tar::Builder<impl Write>, path: &str) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut h, path, io::empty())
        .map_err(|e| Error::io("write archive", path, e))
}

impl ImageStore {
    /// `docker save`: the images named (by reference: with that tag; by ID: untagged).
    pub fn save(&self, names: &[String], writer: impl Write) -> Result<()> {
        let mut images: Vec<(Digest, Vec<Reference>)> = Vec::new();
        for n in names {
            let id = self.meta.resolve(n)?;
            let tag = Reference::parse_normalized(n).ok().filter(|r| {
                self.meta.lookup_ref(r).ok().flatten().as_ref() == Some(&id) && r.digest().is_none()
            });
            match images.iter_mut().find(|(i, _)| *i == id) {
                Some((_, tags)) => tags.extend(tag),
                None => images.push((id, tag.into_iter().collect())),
            }
        }
        let mut tar = tar::Builder::new(writer);
        append_dir(&mut tar, "blobs/")?;
        append_dir(&mut tar, "blobs/sha256/")?;
        let mut written: HashSet<Digest> = HashSet::new();
        let mut put = |tar: &mut tar::Builder<_>, d: &Digest| -> Result<()> {
            if written.insert(d.clone()) {
                let size = self.content.size(d)?;
                let mut f = self.content.open_blob(d)?;
                append(tar, &blob_path(d), size, &mut f)?;
            }
            Ok(())
        };
        let mut manifest_json = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (id, tags) in &images {
            let rec = self.meta.image(id)?;
            let mdigest = rec
                .manifest
                .clone()
                .ok_or_else(|| malformed(format!("image {id} has no manifest")))?;
            let m = manifest::read_manifest(&self.content, &mdigest)?;
            put(&mut tar, id)?;
            let mut layers = Vec::new();
            for l in m.layers() {
                let d = manifest::descriptor_digest(l)?;
                put(&mut tar, &d)?;
                layers.push(blob_path(&d));
            }
            put(&mut tar, &mdigest)?;
            let tag_strings: Vec<String> = tags.iter().map(|t| t.familiar_string()).collect();
            manifest_json
                .push(json!({"Config": blob_path(id), "RepoTags": tag_strings, "Layers": layers}));
            let desc = json!({
                "mediaType": m.media_type().as_ref().map_or_else(|| media_types::OCI_MANIFEST.to_owned(), |t| t.to_string()),
                "digest": mdigest,
                "size": self.content.size(&mdigest)?,
            });
            if tags.is_empty() {
                index.push(desc.clone());
            }
            for t in tags {
                let mut d = desc.clone();
                d["annotations"] = json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag().unwrap_or_default(),
                });
                index.push(d);
                if let Some(top) = layers.last() {
                    repositories
                        .entry(t.name_only().familiar_string())
                        .or_default()
                        .insert(
                            t.tag().unwrap_or_default().to_owned(),
                            top.trim_start_matches("blobs/sha256/").to_owned(),
                        );
                }
            }
        }
        let docs: [(&str, Value); 4] = [
            (
                "index.json",
                json!({"schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": index}),
            ),
            ("manifest.json", Value::Array(manifest_json)),
            ("oci-layout", json!({"imageLayoutVersion": "1.0.0"})),
            ("repositories", json!(repositories)),
        ];
        for (name, v) in docs {
            if name == "repositories" && repositories_empty(&v) {
                continue;
            }
            let bytes = serde_json::to_vec(&v).map_err(|e| malformed(e.to_string()))?;
            append(&mut tar, name, bytes.len() as u64, &mut &bytes[..])?;
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| Error::io("write archive", "", e))
    }

    /// `docker load`: stores every image of a Docker archive or OCI layout.
    pub fn load(&self, reader: impl Read) -> Result<Vec<LoadedImage>> {
        let scratch = self.scratch()?;
        let ar = Extracted::unpack(reader, scratch.path())?;
        if ar.exists("manifest.json") {
            self.load_docker(&ar)
        } else if ar.exists("index.json") {
            self.load_oci(&ar)
        } else {
            Err(malformed(
                "invalid archive: neither manifest.json nor index.json found",
            ))
        }
    }

    fn load_docker(&self, ar: &Extracted) -> Result<Vec<LoadedImage>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(&ar.read("manifest.json")?)
            .map_err(|e| malformed(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for e in entries {
            let lease = self.lease()?;
            let config_bytes = ar.read(&e.config)?;
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
            let mut layers = Vec::new();
            let mut parent: Option<ChainId> = None;
            for (path, diff_id) in e.layers.iter().zip(&config.rootfs.diff_ids) {
                let (d, size, c) =
                    self.store_file(ar, path, digest_in_path(path).as_ref(), &lease.id)?;
                let l =
                    self.add_layer_blob(&d, Some(c), Some(diff_id), parent.as_ref(), &lease.id)?;
                parent = Some(l.chain_id);
                layers.push((d, layer_media_type(c), size));
            }
            let tags = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse_normalized(t))
                .collect::<Result<Vec<_>>>()?;
            let id = self.commit_image(&config_bytes, &config, &layers, &tags, &lease.id)?;
            out.push(LoadedImage { id, tags });
        }
        Ok(out)
    }

    fn load_oci(&self, ar: &Extracted) -> Result<Vec<LoadedImage>> {
        let index = manifest::parse_index(&ar.read("index.json")?)?;
        let mut out = Vec::new();
        for desc in index.manifests() {
            let lease = self.lease()?;
            let mut d = manifest::descriptor_digest(desc)?;
            let mut bytes = self.read_blob_file(ar, &d)?;
            if let Document::Index(inner) =
                manifest::parse_document(&bytes, Some(desc.media_type().as_ref()))?
            {
                let chosen = manifest::select_manifest(&inner, &Platform::host())?;
                d = manifest::descriptor_digest(chosen)?;
                bytes = self.read_blob_file(ar, &d)?;
            }
            let m = manifest::parse_manifest(&bytes)?;
            let cd = manifest::descriptor_digest(m.config())?;
            let config_bytes = self.read_blob_file(ar, &cd)?;
            let config = ImageConfig::parse(&config_bytes)?;
            manifest::check_image_manifest(&m, Some(&config))?;
            let mut parent: Option<ChainId> = None;
            let mut blobs = Vec::new();
            for (l, diff_id) in m.layers().iter().zip(&config.rootfs.diff_ids) {
                let ld = manifest::descriptor_digest(l)?;
                let path = blob_path(&ld);
                let (ld, size, c) = self.store_file(ar, &path, Some(&ld), &lease.id)?;
                let c = Compression::from_media_type(l.media_type().as_ref()).unwrap_or(c);
                let rec =
                    self.add_layer_blob(&ld, Some(c), Some(diff_id), parent.as_ref(), &lease.id)?;
                parent = Some(rec.chain_id);
                blobs.push((ld, l.media_type().to_string(), size));
            }
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
            let id =
                self.put_image_docs(&config_bytes, &config, &bytes, &blobs, &tags, &lease.id)?;
            match out.iter_mut().find(|i: &&mut LoadedImage| i.id == id) {
                Some(i) => i.tags.extend(tags),
                None => out.push(LoadedImage { id, tags }),
            }
        }
        Ok(out)
    }

    /// Reads a small blob of an OCI layout, verified.
    fn read_blob_file(&self, ar: &Extracted, d: &Digest) -> Result<Vec<u8>> {
        let path = blob_path(d);
        let bytes = ar.read(&path)?;
        check(&path, d, &Digest::of(&bytes))?;
        Ok(bytes)
    }

    /// Stores an archive file as a blob (verified when its digest is known), leased.
    fn store_file(
        &self,
        ar: &Extracted,
        path: &str,
        expected: Option<&Digest>,
        lease: &str,
    ) -> Result<(Digest, u64, Compression)> {
        let file = ar.resolve(path)?;
        let mut f = File::open(&file).map_err(|e| Error::io("open", &file, e))?;
        let mut head = [0u8; 8];
        let n = f.read(&mut head).map_err(|e| Error::io("read", &file, e))?;
        let c = Compression::detect(&head[..n]);
        drop(f);
        if let Some(d) = expected {
            self.meta.lease_add(lease, std::slice::from_ref(d), &[])?;
            if self.content.exists(d) {
                return Ok((d.clone(), self.content.size(d)?, c));
            }
        }
        let mut f = File::open(&file).map_err(|e| Error::io("open", &file, e))?;
        let _hold = self.content.hold_off_gc();
        let mut w = self.content.writer(expected, None)?;
        io::copy(&mut f, &mut w).map_err(|e| Error::io("copy", &file, e))?;
        let (d, size) = w.commit().map_err(|e| match e {
            Error::DigestMismatch {
                expected, actual, ..
            } => Error::DigestMismatch {
                what: path.to_owned(),
                expected,
                actual,
            },
            e => e,
        })?;
        self.meta.lease_add(lease, std::slice::from_ref(&d), &[])?;
        Ok((d, size, c))
    }
}

fn repositories_empty(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.is_empty())
}

fn layer_media_type(c: Compression) -> String {
    c.oci_media_type().to_owned()
}

/// The digest a path names: `blobs/sha256/<hex>`, `<hex>.json`, `<hex>/layer.tar`.
fn digest_in_path(path: &str) -> Option<Digest> {
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

/// An archive extracted to a directory: regular files and directories only; symlinks kept
/// aside and resolved within the archive.
struct Extracted {
    dir: PathBuf,
    links: HashMap<PathBuf, PathBuf>,
}

/// A relative, normalized archive path; None if it climbs out.
fn clean(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    Some(out)
}

impl Extracted {
    fn unpack(reader: impl Read, dir: &Path) -> Result<Extracted> {
        let mut links = HashMap::new();
        let mut ar = tar::Archive::new(reader);
        let entries = ar.entries().map_err(|e| Error::io("read archive", "", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::io("read archive", "", e))?;
            let raw = entry
                .path()
                .map_err(|e| Error::io("read archive", "", e))?
                .into_owned();
            let path = clean(&raw).ok_or_else(|| Error::UnsafeEntry {
                entry: raw.display().to_string(),
                reason: "path escapes the archive".into(),
            })?;
            if path.as_os_str().is_empty() {
                continue;
            }
            let target = dir.join(&path);
            match entry.header().entry_type() {
                tar::EntryType::Directory => {
                    std::fs::create_dir_all(&target)
                        .map_err(|e| Error::io("create", &target, e))?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if let Some(p) = target.parent() {
                        std::fs::create_dir_all(p).map_err(|e| Error::io("create", p, e))?;
                    }
                    let mut f =
                        File::create(&target).map_err(|e| Error::io("create", &target, e))?;
                    io::copy(&mut entry, &mut f).map_err(|e| Error::io("extract", &target, e))?;
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let link = entry
                        .link_name()
                        .map_err(|e| Error::io("read archive", &path, e))?
                        .ok_or_else(|| {
                            malformed(format!("{}: link without target", path.display()))
                        })?
                        .into_owned();
                    let resolved = if entry.header().entry_type() == tar::EntryType::Link
                        || link.is_absolute()
                    {
                        clean(&link)
                    } else {
                        clean(&path.parent().unwrap_or(Path::new("")).join(&link))
                    };
                    let resolved = resolved.ok_or_else(|| Error::UnsafeEntry {
                        entry: path.display().to_string(),
                        reason: "link escapes the archive".into(),
                    })?;
                    links.insert(path, resolved);
                }
                _ => {}
            }
        }
        Ok(Extracted {
            dir: dir.to_owned(),
            links,
        })
    }

    /// The host path of an archive path, following archive symlinks (of the path and of its
    /// directories).
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        let mut p =
            clean(Path::new(path)).ok_or_else(|| malformed(format!("bad path {path:?}")))?;
        for _ in 0..16 {
            let mut changed = false;
            let mut prefix = PathBuf::new();
            let comps: Vec<_> = p.components().collect();
            for (i, c) in comps.iter().enumerate() {
                prefix.push(c);
                if let Some(t) = self.links.get(&prefix) {
                    let mut np = t.clone();
                    for rest in &comps[i + 1..] {
                        np.push(rest);
                    }
                    p = np;
                    changed = true;
                    break;
                }
            }
            if !changed {
                let full = self.dir.join(&p);
                let meta = std::fs::symlink_metadata(&full)
                    .map_err(|_| malformed(format!("invalid archive: {path} not found")))?;
                if !meta.is_file() {
                    return Err(malformed(format!("invalid archive: {path} is not a file")));
                }
                return Ok(full);
            }
        }
        Err(malformed(format!("too many links resolving {path}")))
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        let p = self.resolve(path)?;
        std::fs::read(&p).map_err(|e| Error::io("read", &p, e))
    }
}
