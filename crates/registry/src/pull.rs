//! `docker pull`: resolve the manifest (by tag or digest; an index narrowed to the platform),
//! download the config and the missing layers (three at a time, as dockerd does) straight into
//! the content store, verified while they stream, then unpack them and put the image with its
//! tag and the registry's digest. One lease covers the pull; a failed pull keeps nothing.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use berth_image::manifest::{self, Document, Platform};
use berth_image::store::{ImageStore, IngestedLayer, PulledLayer};
use berth_image::{Digest, Reference};

use crate::client::{status_error, Body, Client};
use crate::error::{Error, Result};
use crate::progress::{self, Sink};
use crate::resume::Resuming;

/// Like dockerd's max-concurrent-downloads default.
const CONCURRENT_DOWNLOADS: usize = 3;
/// Manifests and configs are small; anything bigger is refused rather than buffered.
const MAX_DOCUMENT: u64 = 16 << 20;
/// Progress is reported at most once per this many bytes of a layer.
const PROGRESS_STEP: u64 = 512 << 10;

const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: Digest,
    /// The registry's digest of what the reference names (an index for multi-platform images).
    pub digest: Digest,
    /// False when the reference already named this image.
    pub updated: bool,
}

/// Fetches a manifest or index by tag or digest; verified against the digest when named by
/// one. Returns its bytes and media type.
fn fetch_manifest(client: &Client, path: &str, reference: &str, scope: &str) -> Result<(Vec<u8>, Option<String>)> {
    let resp = client.send("GET", &format!("/v2/{path}/manifests/{reference}"), scope, &[("Accept", ACCEPT)], Body::Empty)?;
    if resp.status() != 200 {
        let sep = if reference.contains(':') { '@' } else { ':' };
        let what = format!("manifest for {}/{path}{sep}{reference}", client.host());
        if resp.status() == 404 {
            let body = resp.into_string().unwrap_or_default();
            return Err(Error::NotFound(format!("{what} not found: {}", crate::client::registry_message(&body))));
        }
        return Err(match status_error(&what, resp) {
            Error::Unauthorized(m) => Error::NotFound(format!(
                "pull access denied for {path}, repository does not exist or may require 'docker login': {m}"
            )),
            e => e,
        });
    }
    let media_type = resp.header("content-type").map(|t| t.split(';').next().unwrap_or(t).trim().to_owned());
    let bytes = read_limited(resp.into_reader(), "manifest")?;
    if let Ok(d) = Digest::parse(reference) {
        let got = Digest::of(&bytes);
        if got != d {
            return Err(Error::Image(berth_image::Error::DigestMismatch {
                what: format!("manifest {path}@{d}"),
                expected: d.to_string(),
                actual: got.to_string(),
            }));
        }
    }
    Ok((bytes, media_type))
}

fn read_limited(r: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    r.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut v)
        .map_err(|e| Error::Registry(format!("reading {what}: {e}")))?;
    if v.len() as u64 > MAX_DOCUMENT {
        return Err(Error::Registry(format!("{what} larger than {MAX_DOCUMENT} bytes")));
    }
    Ok(v)
}

/// Pulls `r` (a tag, `latest` when it has neither tag nor digest, or a digest) for `platform`.
pub fn pull(store: &ImageStore, client: &Client, r: &Reference, platform: &Platform, sink: Sink<'_>) -> Result<Pulled> {
    let r = if r.is_name_only() { r.with_tag(berth_image::reference::DEFAULT_TAG)? } else { r.clone() };
    let path = r.path();
    let scope = format!("repository:{path}:pull");
    let reference = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => unreachable!("tagged above"),
    };
    let (top, top_type) = fetch_manifest(client, path, &reference, &scope)?;
    sink(progress::status(Some(&reference), &format!("Pulling from {path}")));
    let top_digest = Digest::of(&top);
    let manifest_bytes = match manifest::parse_document(&top, top_type.as_deref())? {
        Document::Manifest(_) => top,
        Document::Index(index) => {
            let chosen = manifest::select_manifest(&index, platform)?;
            let d = manifest::descriptor_digest(chosen)?;
            fetch_manifest(client, path, &d.to_string(), &scope)?.0
        }
    };
    let m = manifest::parse_manifest(&manifest_bytes)?;
    manifest::check_image_manifest(&m, None)?;
    let config_digest = manifest::descriptor_digest(m.config())?;
    let layers: Vec<PulledLayer> = m
        .layers()
        .iter()
        .map(|l| {
            let media_type = l.media_type().to_string();
            manifest::layer_compression(&media_type)?;
            Ok(PulledLayer { digest: manifest::descriptor_digest(l)?, media_type, size: l.size() })
        })
        .collect::<Result<_>>()?;
    let before = match r.tag() {
        Some(_) => store.meta().lookup_ref(&r)?,
        None => None,
    };
    let id = store.with_lease(|lease| -> Result<Digest> {
        let mut blobs: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
        blobs.push(config_digest.clone());
        // Referenced before anything is written (see berth_image::gc).
        store.meta().lease_add(lease, &blobs, &[])?;
        let config_bytes = if store.content().exists(&config_digest) {
            store.content().read_verified(&config_digest)?
        } else {
            let resp = client.send("GET", &format!("/v2/{path}/blobs/{config_digest}"), &scope, &[], Body::Empty)?;
            if resp.status() != 200 {
                return Err(status_error(&format!("config {config_digest}"), resp));
            }
            let bytes = read_limited(resp.into_reader(), "config")?;
            store.content().write_blob(&bytes, Some(&config_digest))?;
            bytes
        };
        // An image already here is not reported layer by layer (as dockerd does).
        let have_image = store.meta().get_image(&config_digest)?.is_some();
        let mut todo = Vec::new();
        for l in &layers {
            let id = progress::short(&l.digest);
            if store.content().exists(&l.digest) {
                if !have_image {
                    sink(progress::status(Some(&id), "Already exists"));
                }
            } else if !todo.iter().any(|t: &&PulledLayer| t.digest == l.digest) {
                sink(progress::status(Some(&id), "Pulling fs layer"));
                todo.push(l);
            }
        }
        let mut got = download_all(store, client, path, &scope, &todo, sink)?;
        // Each downloaded blob's unpacked layer goes with its first use in the image.
        let ingested: Vec<Option<IngestedLayer>> = layers
            .iter()
            .map(|l| got.iter().position(|(d, _)| *d == l.digest).map(|i| got.swap_remove(i).1))
            .collect();
        let mut refs = vec![r.name_only().with_digest(top_digest.clone())];
        if r.tag().is_some() {
            refs.push(r.clone());
        }
        let id = store.put_pulled_image(&config_bytes, &manifest_bytes, &layers, ingested, &refs, lease)?;
        for l in &todo {
            sink(progress::status(Some(&progress::short(&l.digest)), "Pull complete"));
        }
        Ok(id)
    });
    let id = id?;
    sink(progress::status(None, &format!("Digest: {top_digest}")));
    let updated = before.as_ref() != Some(&id);
    let shown = r.familiar_string();
    sink(progress::status(
        None,
        &if updated { format!("Status: Downloaded newer image for {shown}") } else { format!("Status: Image is up to date for {shown}") },
    ));
    Ok(Pulled { id, digest: top_digest, updated })
}

/// Downloads `layers`, a few at a time; the first failure stops the others.
fn download_all(
    store: &ImageStore,
    client: &Client,
    path: &str,
    scope: &str,
    layers: &[&PulledLayer],
    sink: Sink<'_>,
) -> Result<Vec<(Digest, IngestedLayer)>> {
    let done = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..CONCURRENT_DOWNLOADS.min(layers.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= layers.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                match download(store, client, path, scope, layers[i], &stop, sink) {
                    Ok(l) => done.lock().unwrap_or_else(|p| p.into_inner()).push((layers[i].digest.clone(), l)),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(done.into_inner().unwrap_or_else(|p| p.into_inner())),
    }
}

/// Streams one layer blob into the content store, unpacked on the way where the snapshotter
/// allows it; the store verifies its size and digest at the end and keeps nothing on a
/// mismatch.
fn download(store: &ImageStore, client: &Client, path: &str, scope: &str, l: &PulledLayer, stop: &AtomicBool, sink: Sink<'_>) -> Result<IngestedLayer> {
    let id = progress::short(&l.digest);
    let blob_path = format!("/v2/{path}/blobs/{}", l.digest);
    let resp = client.send("GET", &blob_path, scope, &[], Body::Empty)?;
    if resp.status() != 200 {
        return Err(status_error(&format!("blob {}", l.digest), resp));
    }
    let body = Cancellable { inner: Resuming::new(client, blob_path, scope, resp), stop };
    let mut shown = 0u64;
    let mut report = |done: u64| {
        if done - shown >= PROGRESS_STEP || done == l.size {
            shown = done;
            sink(progress::bytes(&id, "Downloading", done, l.size));
        }
    };
    let ingested = store.ingest_layer(body, &l.digest, l.size, &l.media_type, &mut report)?;
    sink(progress::status(Some(&id), "Verifying Checksum"));
    sink(progress::status(Some(&id), "Download complete"));
    Ok(ingested)
}

/// A download that stops when another one failed.
struct Cancellable<'a, R> {
    inner: R,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("download cancelled"));
        }
        self.inner.read(buf)
    }
}

/// The platform to pull: as given (`os/arch[/variant]`), else the host's.
pub fn platform(s: Option<&str>) -> Result<Platform> {
    match s.filter(|s| !s.is_empty()) {
        Some(s) => Ok(Platform::parse(s)?),
        None => Ok(Platform::host()),
    }
}
