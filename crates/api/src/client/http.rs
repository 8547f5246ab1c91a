//! A small synchronous HTTP/1.1 client: one request per connection, bodies by Content-Length,
//! chunked or until EOF, and Docker's connection hijack (101 Upgrade). Synchronous on purpose:
//! the CLI makes one or two requests per command, and skipping an async runtime keeps its
//! start-up well under the docker CLI's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// A connection to the daemon: a unix socket or plain TCP.
pub trait Conn: Read + Write + Send {
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>>;
    /// Half-close: the daemon sees EOF on what we send, and output keeps flowing.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Conn for UnixStream {
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Conn for TcpStream {
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    pub fn connect(&self) -> io::Result<Box<dyn Conn>> {
        Ok(match self {
            Endpoint::Unix(p) => Box::new(UnixStream::connect(p)?),
            Endpoint::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
        })
    }
}

/// What a request sends as its body.
pub enum Body<'a> {
    Empty,
    Json(Vec<u8>),
    /// Streamed with chunked transfer encoding (load, import, archive upload).
    Stream { content_type: &'static str, reader: &'a mut dyn Read },
}

/// A response whose body has not been read yet.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: BodyReader,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.body.read_to_end(&mut v)?;
        Ok(v)
    }

    /// The raw connection after `101 Switching Protocols`.
    pub fn into_hijacked(self) -> io::Result<Hijacked> {
        let reader = self.body.inner;
        let writer = reader.get_ref().try_clone_conn()?;
        Ok(Hijacked { reader, writer })
    }
}

/// A hijacked connection: the reader holds whatever was read past the response head; the
/// writer is the same socket.
pub struct Hijacked {
    pub reader: BufReader<Box<dyn Conn>>,
    pub writer: Box<dyn Conn>,
}

enum Framing {
    Length(u64),
    /// Bytes left in the current chunk; `done` after the last one.
    Chunked { left: u64, done: bool },
    Eof,
}

/// The body of a response, de-framed.
pub struct BodyReader {
    inner: BufReader<Box<dyn Conn>>,
    framing: Framing,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.framing {
            Framing::Eof => self.inner.read(buf),
            Framing::Length(0) => Ok(0),
            Framing::Length(n) => {
                let max = (*n).min(buf.len() as u64) as usize;
                let got = self.inner.read(&mut buf[..max])?;
                if got == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "response body truncated"));
                }
                *n -= got as u64;
                Ok(got)
            }
            Framing::Chunked { done: true, .. } => Ok(0),
            Framing::Chunked { left, done } => {
                if *left == 0 {
                    let size = read_chunk_size(&mut self.inner)?;
                    if size == 0 {
                        // Trailers, then the blank line.
                        loop {
                            let l = read_line(&mut self.inner)?;
                            if l.is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let max = (*left).min(buf.len() as u64) as usize;
                let got = self.inner.read(&mut buf[..max])?;
                if got == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body truncated"));
                }
                *left -= got as u64;
                if *left == 0 {
                    let crlf = read_line(&mut self.inner)?;
                    if !crlf.is_empty() {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk terminator"));
                    }
                }
                Ok(got)
            }
        }
    }
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut l = String::new();
    if r.read_line(&mut l)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the daemon"));
    }
    Ok(l.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_chunk_size(r: &mut impl BufRead) -> io::Result<u64> {
    let l = read_line(r)?;
    let hex = l.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {hex:?}")))
}

/// Sends one request on a fresh connection and reads the response head.
pub fn send(
    ep: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> io::Result<Response> {
    let mut conn = ep.connect()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth/{}\r\n", env!("CARGO_PKG_VERSION"));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &body {
        Body::Empty => {
            if matches!(method, "POST" | "PUT") {
                head.push_str("Content-Length: 0\r\n");
            }
        }
        Body::Json(b) => head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len())),
        Body::Stream { content_type, .. } => {
            head.push_str(&format!("Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"));
        }
    }
    head.push_str("\r\n");
    match body {
        Body::Empty => conn.write_all(head.as_bytes())?,
        Body::Json(b) => {
            let mut all = head.into_bytes();
            all.extend_from_slice(&b);
            conn.write_all(&all)?;
        }
        Body::Stream { reader, .. } => {
            conn.write_all(head.as_bytes())?;
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                // An early answer (an error) closes the connection: stop sending, read it.
                if write_chunk(&mut conn, &buf[..n]).is_err() {
                    break;
                }
            }
            let _ = conn.write_all(b"0\r\n\r\n");
        }
    }
    conn.flush()?;
    read_head(conn, method)
}

fn write_chunk(conn: &mut Box<dyn Conn>, data: &[u8]) -> io::Result<()> {
    conn.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    conn.write_all(data)?;
    conn.write_all(b"\r\n")
}

fn read_head(conn: Box<dyn Conn>, method: &str) -> io::Result<Response> {
    let mut r = BufReader::with_capacity(64 << 10, conn);
    let status_line = read_line(&mut r)?;
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    if !proto.starts_with("HTTP/1.") || status == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP response: {status_line:?}")));
    }
    let mut headers = Vec::new();
    loop {
        let l = read_line(&mut r)?;
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    let framing = if status == 101 || method == "HEAD" || status == 204 || status == 304 {
        if status == 101 {
            Framing::Eof
        } else {
            Framing::Length(0)
        }
    } else if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        Framing::Chunked { left: 0, done: false }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse().ok()) {
        Framing::Length(n)
    } else {
        Framing::Eof
    };
    Ok(Response { status, headers, body: BodyReader { inner: r, framing } })
}

/// `application/x-www-form-urlencoded` escaping for query values.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Path segment escaping (image names keep their slashes and colons).
pub fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b':' | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot server on a socketpair answering with `resp`.
    fn roundtrip(resp: &'static [u8]) -> Response {
        let (a, mut b) = UnixStream::pair().unwrap();
        std::thread::spawn(move || {
            let mut r = BufReader::new(b.try_clone().unwrap());
            let mut l = String::new();
            while r.read_line(&mut l).unwrap() > 0 && l != "\r\n" {
                l.clear();
            }
            b.write_all(resp).unwrap();
        });
        let mut conn: Box<dyn Conn> = Box::new(a);
        conn.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        read_head(conn, "GET").unwrap()
    }

    #[test]
    fn content_length_and_chunked_bodies() {
        let r = roundtrip(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nApi-Version: 1.47\r\n\r\nhello");
        assert_eq!(r.header("api-version"), Some("1.47"));
        assert_eq!(r.bytes().unwrap(), b"hello");
        let r = roundtrip(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
        assert_eq!(r.bytes().unwrap(), b"abcde");
        let r = roundtrip(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n{\"message\":\"x\"}");
        assert_eq!(r.status, 404);
        assert_eq!(r.bytes().unwrap(), b"{\"message\":\"x\"}");
    }

    #[test]
    fn hijack_keeps_bytes_read_past_the_head() {
        let r = roundtrip(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00\x00\x00\x00\x02hi");
        assert_eq!(r.status, 101);
        let mut h = r.into_hijacked().unwrap();
        let mut v = Vec::new();
        h.reader.read_to_end(&mut v).unwrap();
        assert_eq!(&v[8..], b"hi");
    }

    #[test]
    fn escaping() {
        assert_eq!(query_escape("{\"a\":[\"b c\"]}"), "%7B%22a%22%3A%5B%22b+c%22%5D%7D");
        assert_eq!(path_escape("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(path_escape("a b#"), "a%20b%23");
    }
}
