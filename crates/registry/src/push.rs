//! `docker push`: each blob of the image's manifest skipped when the registry has it (HEAD),
//! mounted from another repository of the same registry the image came from, or uploaded
//! monolithically (POST, then PUT with the digest); a layer the image keeps uncompressed is
//! gzipped while it streams to the registry (POST, chunked PATCH, PUT with the digest learnt at
//! the end) and into the content store, and the image then keeps that manifest, so the next
//! push is all skips. Then the manifest PUT under the tag with its media type; the image gains
//! the repository digest the registry now serves it under. One lease covers the push.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use berth_image::store::{is_uncompressed_layer, ImageStore};
use berth_image::{Digest, Reference};

use crate::client::{status_error, Body, Client};
use crate::error::{Error, Result};
use crate::progress::{self, Sink};

/// Like dockerd's max-concurrent-uploads default.
const CONCURRENT_UPLOADS: usize = 5;
const PROGRESS_STEP: u64 = 512 << 10;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: Digest,
    pub size: usize,
}

struct Target<'a> {
    client: &'a Client,
    path: &'a str,
    scope: String,
    /// Repositories of the same registry holding this image: candidates for mounts.
    mount_from: Vec<String>,
}

/// Pushes the image tagged `r` (`latest` when no tag is given) to its registry.
pub fn push(store: &ImageStore, client: &Client, r: &Reference, sink: Sink<'_>) -> Result<Pushed> {
    let r = if r.tag().is_none() { r.with_tag(berth_image::reference::DEFAULT_TAG)? } else { r.clone() };
    let tag = r.tag().unwrap_or(berth_image::reference::DEFAULT_TAG).to_owned();
    let id = store
        .meta()
        .lookup_ref(&r)?
        .ok_or_else(|| Error::NotFound(format!("An image does not exist locally with the tag: {}", r.name_only().familiar_string())))?;
    sink(progress::status(None, &format!("The push refers to repository [{}]", r.name())));
    let pm = store.push_manifest(&id)?;
    store.with_lease(|lease| push_in(store, client, &r, &tag, &id, pm, lease, sink))
}

#[allow(clippy::too_many_arguments)]
fn push_in(
    store: &ImageStore,
    client: &Client,
    r: &Reference,
    tag: &str,
    id: &Digest,
    pm: berth_image::store::PushManifest,
    lease: &str,
    sink: Sink<'_>,
) -> Result<Pushed> {
    let mount_from: Vec<String> = store
        .meta()
        .refs_of(id)?
        .into_iter()
        .filter(|o| o.domain() == r.domain() && o.path() != r.path())
        .map(|o| o.path().to_owned())
        .fold(Vec::new(), |mut v, p| {
            if !v.contains(&p) {
                v.push(p);
            }
            v
        });
    let t = Target { client, path: r.path(), scope: format!("repository:{}:pull,push", r.path()), mount_from };
    // Docker lists the top layer first.
    for (d, _, _) in pm.layers.iter().rev() {
        sink(progress::status(Some(&progress::short(d)), "Preparing"));
    }
    let pushed = upload_all(store, &t, &pm.layers, lease, sink)?;
    let pm = if pm.layers.iter().any(|l| is_uncompressed_layer(&l.2)) {
        store.replace_push_manifest(id, &pm, pushed, lease)?
    } else {
        pm
    };
    push_blob(store, &t, &pm.config, pm.config_size, None, &AtomicBool::new(false))?;
    let resp = client.send(
        "PUT",
        &format!("/v2/{}/manifests/{tag}", t.path),
        &t.scope,
        &[("Content-Type", pm.media_type.as_str())],
        Body::Bytes(&pm.bytes),
    )?;
    if !matches!(resp.status(), 200 | 201) {
        return Err(status_error(&format!("pushing manifest {}:{tag}", r.name()), resp));
    }
    // The image is known under the repository digest now (put, as tags refuse digests).
    let rec = store.meta().image(id)?;
    store.meta().put_image(&rec, &[r.name_only().with_digest(pm.digest.clone())])?;
    let size = pm.bytes.len();
    sink(progress::status(None, &format!("{tag}: digest: {} size: {size}", pm.digest)));
    sink(serde_json::json!({
        "progressDetail": {},
        "aux": { "Tag": tag, "Digest": pm.digest.to_string(), "Size": size },
    }));
    Ok(Pushed { digest: pm.digest, size })
}

/// Pushes `layers` (top first, a few at a time); returns each as the registry now has it
/// (gzipped if it was not), in manifest order.
fn upload_all(store: &ImageStore, t: &Target<'_>, layers: &[(Digest, u64, String)], lease: &str, sink: Sink<'_>) -> Result<Vec<(Digest, u64, String)>> {
    let order: Vec<usize> = (0..layers.len()).rev().collect();
    let done: Mutex<Vec<Option<(Digest, u64, String)>>> = Mutex::new(vec![None; layers.len()]);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..CONCURRENT_UPLOADS.min(layers.len()) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= order.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = order[k];
                let (d, size, mt) = &layers[i];
                let result = if is_uncompressed_layer(mt) {
                    push_gzipped(store, t, d, *size, lease, sink, &stop)
                } else {
                    push_blob(store, t, d, *size, Some(sink), &stop).map(|()| (d.clone(), *size, mt.clone()))
                };
                match result {
                    Ok(l) => done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(l),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    done.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|l| l.ok_or_else(|| Error::Registry("a layer was not pushed".into())))
        .collect()
}

/// Feeds the compressor's output to the upload, in chunks, through a small bounded channel.
struct ChanWriter {
    tx: mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.tx.send(chunk).map_err(|_| std::io::Error::other("upload ended"))?;
        }
        Ok(())
    }
}

/// The upload's side of [`ChanWriter`]: ends when the compressor is done (or gave up).
struct ChanReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => (self.cur, self.pos) = (c, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Gzips an uncompressed layer while streaming it to the registry (and into the content
/// store): POST, chunked PATCH, then PUT with the digest the compression produced.
fn push_gzipped(
    store: &ImageStore,
    t: &Target<'_>,
    d: &Digest,
    size: u64,
    lease: &str,
    sink: Sink<'_>,
    stop: &AtomicBool,
) -> Result<(Digest, u64, String)> {
    let id = progress::short(d);
    let c = t.client;
    let resp = c.send("POST", &format!("/v2/{}/blobs/uploads/", t.path), &t.scope, &[("Content-Length", "0")], Body::Empty)?;
    if resp.status() != 202 {
        return Err(status_error(&format!("starting the upload of {d}"), resp));
    }
    let loc = location(&resp, d)?;
    let (tx, rx) = mpsc::sync_channel(8);
    let (patched, gz) = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let mut w = ChanWriter { tx, buf: Vec::with_capacity(CHUNK) };
            store.gzip_layer(d, &mut w, lease)
        });
        // Progress is the compressed bytes sent against the layer's size (the compressed
        // size is known only at the end).
        let body = Counting { inner: ChanReader { rx, cur: Vec::new(), pos: 0 }, id: id.clone(), done: 0, shown: 0, total: size, sink: Some(sink), stop };
        let patched = c.send("PATCH", &loc, &t.scope, &[("Content-Type", "application/octet-stream")], Body::Chunked(Box::new(body)));
        (patched, h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    });
    let patched = patched?;
    let (digest, gz_size) = gz?;
    if patched.status() != 202 {
        return Err(status_error(&format!("uploading {digest}"), patched));
    }
    let loc = location(&patched, &digest)?;
    let sep = if loc.contains('?') { '&' } else { '?' };
    let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("digest", &digest.to_string()).finish();
    let resp = c.send("PUT", &format!("{loc}{sep}{q}"), &t.scope, &[("Content-Length", "0")], Body::Empty)?;
    if !matches!(resp.status(), 201 | 204) {
        return Err(status_error(&format!("completing the upload of {digest}"), resp));
    }
    sink(progress::status(Some(&id), "Pushed"));
    Ok((digest, gz_size, berth_image::manifest::media_types::OCI_LAYER_GZIP.to_owned()))
}

fn location(resp: &ureq::Response, d: &Digest) -> Result<String> {
    resp.header("location")
        .map(str::to_owned)
        .ok_or_else(|| Error::Registry(format!("upload of {d}: the registry gave no Location")))
}

/// Counts what the upload has read, reporting progress.
struct Counting<'a, R> {
    inner: R,
    id: String,
    done: u64,
    shown: u64,
    total: u64,
    sink: Option<Sink<'a>>,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("push cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(sink) = self.sink {
            if self.done - self.shown >= PROGRESS_STEP || (n > 0 && self.done == self.total) {
                self.shown = self.done;
                sink(progress::bytes(&self.id, "Pushing", self.done, self.total));
            }
        }
        Ok(n)
    }
}

/// Makes one blob present in the target repository.
fn push_blob(store: &ImageStore, t: &Target<'_>, d: &Digest, size: u64, sink: Option<Sink<'_>>, stop: &AtomicBool) -> Result<()> {
    let id = progress::short(d);
    let say = |s: &str| {
        if let Some(sink) = sink {
            sink(progress::status(Some(&id), s));
        }
    };
    let c = t.client;
    let head = c.send("HEAD", &format!("/v2/{}/blobs/{d}", t.path), &t.scope, &[], Body::Empty)?;
    if head.status() == 200 {
        say("Layer already exists");
        return Ok(());
    }
    // A mount the registry cannot do starts a normal upload instead (202), per the spec.
    let mut start = format!("/v2/{}/blobs/uploads/", t.path);
    if let Some(from) = t.mount_from.first() {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("mount", &d.to_string())
            .append_pair("from", from)
            .finish();
        start = format!("{start}?{q}");
    }
    let resp = c.send("POST", &start, &t.scope, &[("Content-Length", "0")], Body::Empty)?;
    match resp.status() {
        201 => {
            say(&format!("Mounted from {}", t.mount_from[0]));
            return Ok(());
        }
        202 => {}
        _ => return Err(status_error(&format!("starting the upload of {d}"), resp)),
    }
    let loc = resp
        .header("location")
        .ok_or_else(|| Error::Registry(format!("upload of {d}: the registry gave no Location")))?
        .to_owned();
    let sep = if loc.contains('?') { '&' } else { '?' };
    let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("digest", &d.to_string()).finish();
    let url = format!("{loc}{sep}{q}");
    let file = store.content().open_blob(d)?;
    let body = Counting { inner: file, id: id.clone(), done: 0, shown: 0, total: size, sink, stop };
    let resp = c.send(
        "PUT",
        &url,
        &t.scope,
        &[("Content-Type", "application/octet-stream")],
        Body::Reader(Box::new(body), size),
    )?;
    if !matches!(resp.status(), 201 | 204) {
        return Err(status_error(&format!("uploading {d}"), resp));
    }
    say("Pushed");
    Ok(())
}
