//! `docker save`: Docker 25+'s archive. Every blob (configs, layers as stored, manifests) goes
//! under `blobs/sha256/<hex>`, then `manifest.json` (`[{Config, RepoTags, Layers}]`),
//! `repositories`, and `oci-layout` + `index.json`, so the archive is also an OCI image layout.
//! Blobs come first and the small documents last, as Docker writes them (`load` copes with
//! any order).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};

use serde_json::{json, Value};

use super::ImageStore;
use crate::error::{Error, Result};
use crate::manifest::{self, media_types};
use crate::{Digest, Reference};

fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

pub(super) fn blob_path(d: &Digest) -> String {
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

/// Blob data is copied in steps of this size (the tar crate copies 8 KiB at a time)...
const COPY_STEP: usize = 1 << 20;
/// ...and dropped from the page cache behind the copy in steps of this size...
const RELEASE_STEP: u64 = 8 << 20;
/// ...while this much ahead of it is being read in.
const READ_AHEAD: u64 = 16 << 20;

/// A blob's entry. Its data is read once, so its pages are released as it is copied: they
/// serve the next reads instead of growing the cache (see crate::pagecache).
fn append_blob(
    tar: &mut tar::Builder<impl Write>,
    d: &Digest,
    size: u64,
    f: File,
    buf: &mut [u8],
) -> Result<()> {
    let path = blob_path(d);
    let err = |e| Error::io("write archive", &path, e);
    let mut h = tar::Header::new_ustar();
    h.set_path(&path).map_err(err)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let w = tar.get_mut();
    w.write_all(h.as_bytes()).map_err(err)?;
    let (mut done, mut released, mut requested) = (0u64, 0u64, 0u64);
    // Reads are queued a window ahead of the copy, so the copy rarely waits for the disk.
    let mut read_ahead = |done: u64| {
        let upto = (done + READ_AHEAD).min(size);
        if upto > requested {
            crate::pagecache::read_ahead(&f, requested, upto - requested);
            requested = upto;
        }
    };
    read_ahead(0);
    while done < size {
        let want = buf
            .len()
            .min(usize::try_from(size - done).unwrap_or(usize::MAX));
        let n = match (&f).read(&mut buf[..want]) {
            Ok(0) => {
                return Err(malformed(format!(
                    "blob {d} is shorter than its size {size}"
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", d.to_string(), e)),
        };
        w.write_all(&buf[..n]).map_err(err)?;
        done += n as u64;
        if done - released >= RELEASE_STEP {
            crate::pagecache::drop_clean(&f, released, done - released);
            released = done;
            read_ahead(done);
        }
    }
    crate::pagecache::drop_clean(&f, released, 0);
    // Entries fill whole 512-byte blocks.
    let pad = (512 - size % 512) % 512;
    w.write_all(&[0u8; 512][..pad as usize]).map_err(err)
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
        let mut buf = vec![0u8; COPY_STEP];
        let mut put = |tar: &mut tar::Builder<_>, d: &Digest| -> Result<()> {
            if written.insert(d.clone()) {
                let size = self.content.size(d)?;
                append_blob(tar, d, size, self.content.open_blob(d)?, &mut buf)?;
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
}

fn repositories_empty(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.is_empty())
}
