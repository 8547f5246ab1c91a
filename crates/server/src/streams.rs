//! Bridges between blocking engine I/O and HTTP bodies: a request body read as `std::io::Read`
//! on the blocking pool, and a `std::io::Write` whose bytes become a streamed response body.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use futures_util::TryStreamExt;
use tokio::sync::mpsc;

/// The request body as a blocking reader (use it only inside `spawn_blocking`).
pub fn body_reader(body: Body) -> impl io::Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream))
}

/// A writer feeding a response body through a small bounded channel, so a slow client slows
/// the producer instead of filling memory.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl ChannelWriter {
    pub fn new() -> (ChannelWriter, Body) {
        let (tx, rx) = mpsc::channel(8);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        (ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) }, Body::from_stream(stream))
    }

    /// Ends the body with an error (the client sees a truncated transfer).
    pub fn fail(self, e: io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}
