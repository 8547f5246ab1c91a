//! `docker push`: the image's manifest (its layers gzipped first if stored uncompressed), each
//! blob skipped when the registry has it (HEAD), mounted from another repository of the same
//! registry the image came from, or uploaded monolithically (POST, then PUT with the digest);
//! then the manifest PUT under the tag with its media type. The image gains the repository
//! digest the registry now serves it under.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use berth_image::store::ImageStore;
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
    let mount_from: Vec<String> = store
        .meta()
        .refs_of(&id)?
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
    let layers: Vec<&(Digest, u64, String)> = pm.layers.iter().rev().collect();
    for (d, _, _) in &layers {
        sink(progress::status(Some(&progress::short(d)), "Preparing"));
    }
    upload_all(store, &t, &layers, sink)?;
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
    let rec = store.meta().image(&id)?;
    store.meta().put_image(&rec, &[r.name_only().with_digest(pm.digest.clone())])?;
    let size = pm.bytes.len();
    sink(progress::status(None, &format!("{tag}: digest: {} size: {size}", pm.digest)));
    sink(serde_json::json!({
        "progressDetail": {},
        "aux": { "Tag": tag, "Digest": pm.digest.to_string(), "Size": size },
    }));
    Ok(Pushed { digest: pm.digest, size })
}

fn upload_all(store: &ImageStore, t: &Target<'_>, layers: &[&(Digest, u64, String)], sink: Sink<'_>) -> Result<()> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..CONCURRENT_UPLOADS.min(layers.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= layers.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let (d, size, _) = layers[i];
                if let Err(e) = push_blob(store, t, d, *size, Some(sink), &stop) {
                    stop.store(true, Ordering::Relaxed);
                    first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    break;
                }
            });
        }
    });
    match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
