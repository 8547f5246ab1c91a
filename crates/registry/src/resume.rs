//! A blob download that survives a dropped connection: on a read error it asks again for the
//! rest with a Range request (`bytes=<read so far>-`), a few times, if the registry honours
//! ranges (206). The bytes are verified by the content store at the end either way.

use std::io::{self, Read};

use crate::client::{Body, Client};

const MAX_RESUMES: usize = 3;

pub struct Resuming<'a> {
    client: &'a Client,
    path: String,
    scope: &'a str,
    inner: Box<dyn Read + Send + Sync + 'static>,
    pos: u64,
    resumes: usize,
}

impl<'a> Resuming<'a> {
    pub fn new(client: &'a Client, path: String, scope: &'a str, first: ureq::Response) -> Self {
        Resuming { client, path, scope, inner: first.into_reader(), pos: 0, resumes: 0 }
    }

    /// Asks for the rest; the error to report when that cannot be done is `cause`.
    fn resume(&mut self, cause: io::Error) -> io::Result<()> {
        if self.resumes >= MAX_RESUMES {
            return Err(cause);
        }
        self.resumes += 1;
        let range = format!("bytes={}-", self.pos);
        let resp = self
            .client
            .send("GET", &self.path, self.scope, &[("Range", range.as_str())], Body::Empty)
            .map_err(|e| io::Error::other(format!("{cause}; resuming: {e}")))?;
        if resp.status() != 206 {
            return Err(io::Error::other(format!("{cause}; the registry cannot resume ({} to a Range request)", resp.status())));
        }
        self.inner = resp.into_reader();
        Ok(())
    }
}

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e)?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::client::Options;

    /// A registry whose first blob response breaks off half way; it honours ranges.
    fn flaky_server(blob: Vec<u8>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let mut ranges = Vec::new();
            for s in l.incoming() {
                let mut s = s.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut raw = Vec::new();
                let _ = r.read_until(b'\n', &mut raw);
                let line = String::from_utf8_lossy(&raw).into_owned();
                if !line.starts_with("GET ") {
                    continue; // the client's HTTPS attempt
                }
                let mut range = None;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.strip_prefix("Range: ").or_else(|| h.strip_prefix("range: ")) {
                        range = Some(v.trim().to_owned());
                    }
                }
                if line.starts_with("GET /v2/ ") {
                    write!(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}").unwrap();
                    continue;
                }
                match range {
                    None => {
                        write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", blob.len()).unwrap();
                        s.write_all(&blob[..blob.len() / 2]).unwrap();
                        // Dropped mid-body.
                    }
                    Some(r) => {
                        let from: usize = r.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
                        write!(
                            s,
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n",
                            blob.len() - from,
                            blob.len() - 1,
                            blob.len()
                        )
                        .unwrap();
                        s.write_all(&blob[from..]).unwrap();
                        ranges.push(r);
                        break;
                    }
                }
            }
            ranges
        });
        (addr, h)
    }

    #[test]
    fn resumes_a_broken_download_with_a_range() {
        let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (addr, server) = flaky_server(blob.clone());
        let client = Client::connect(&addr, None, &Options { certs_dirs: vec![], ..Default::default() }).unwrap();
        let first = client.send("GET", "/v2/x/blobs/sha256:0", "", &[], Body::Empty).unwrap();
        let mut r = Resuming::new(&client, "/v2/x/blobs/sha256:0".into(), "", first);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), blob.len());
        assert!(got == blob);
        assert_eq!(server.join().unwrap(), vec![format!("bytes={}-", blob.len() / 2)]);
    }
}
