//! Connections to monitor.sock: the one-line request, and for attach clients a bounded output
//! backlog, so that a slow client never stalls the container, the log or the other clients.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::sys;

/// Output a client may fall behind by before it is disconnected.
pub(crate) const MAX_BACKLOG: usize = 1 << 20;
/// Connections at once (handshaking or attached); more are closed at once.
pub(crate) const MAX_CLIENTS: usize = 128;
/// The longest request line.
const MAX_REQUEST: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Attach { stdin: bool, stdout: bool, stderr: bool },
    Resize { rows: u16, cols: u16 },
    /// Signal the monitored process (an exec's, to end a health probe that timed out).
    Kill { signal: i32 },
}

/// Parses `attach <0|1> <0|1> <0|1>`, `resize <rows> <cols>` or `kill <signal>` (without the
/// newline).
pub(crate) fn parse_request(line: &[u8]) -> Result<Request, String> {
    let line = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_string())?;
    let mut words = line.split(' ');
    let flag = |w: Option<&str>| match w {
        Some("0") => Ok(false),
        Some("1") => Ok(true),
        _ => Err(format!("bad request {line:?}: attach takes three 0|1 flags")),
    };
    let req = match words.next() {
        Some("attach") => Request::Attach { stdin: flag(words.next())?, stdout: flag(words.next())?, stderr: flag(words.next())? },
        Some("resize") => {
            let mut dim = || words.next().and_then(|w| w.parse::<u16>().ok()).ok_or_else(|| format!("bad request {line:?}: resize takes rows and cols"));
            Request::Resize { rows: dim()?, cols: dim()? }
        }
        Some("kill") => {
            let signal = words.next().and_then(|w| w.parse::<i32>().ok()).filter(|s| (1..=64).contains(s));
            Request::Kill { signal: signal.ok_or_else(|| format!("bad request {line:?}: kill takes a signal number"))? }
        }
        _ => return Err(format!("unknown request {line:?}")),
    };
    if words.next().is_some() {
        return Err(format!("bad request {line:?}: too many words"));
    }
    Ok(req)
}

pub(crate) struct Client {
    pub(crate) fd: OwnedFd,
    /// Set once the attach request was answered `ok`.
    pub(crate) attached: bool,
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    /// The client shut down its sending side (or sent its request and nothing else matters).
    pub(crate) read_closed: bool,
    /// The socket reported POLLHUP/POLLERR.
    pub(crate) hup: bool,
    /// To be closed at the end of this round.
    pub(crate) dead: bool,
    req: [u8; MAX_REQUEST],
    req_len: usize,
    backlog: Vec<u8>,
    sent: usize,
}

/// What reading a handshaking client gave.
pub(crate) enum Handshake {
    /// The line is not complete yet.
    Pending,
    Line(Result<Request, String>),
    /// Gone (EOF or error) before finishing its request.
    Gone,
}

impl Client {
    pub(crate) fn new(fd: OwnedFd) -> Client {
        Client {
            fd,
            attached: false,
            stdin: false,
            stdout: false,
            stderr: false,
            read_closed: false,
            hup: false,
            dead: false,
            req: [0; MAX_REQUEST],
            req_len: 0,
            backlog: Vec::new(),
            sent: 0,
        }
    }

    pub(crate) fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Reads the request one byte at a time: nothing past the newline is consumed, so stdin
    /// bytes the client sends right behind its request stay in the socket for the relay.
    pub(crate) fn read_request(&mut self) -> Handshake {
        loop {
            let mut b = [0u8; 1];
            match sys::read(self.raw(), &mut b) {
                Ok(0) => return Handshake::Gone,
                Ok(_) if b[0] == b'\n' => return Handshake::Line(parse_request(&self.req[..self.req_len])),
                Ok(_) if self.req_len == MAX_REQUEST => return Handshake::Line(Err("request line too long".into())),
                Ok(_) => {
                    self.req[self.req_len] = b[0];
                    self.req_len += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Handshake::Pending,
                Err(_) => return Handshake::Gone,
            }
        }
    }

    /// A short answer on a fresh connection (its socket buffer is empty, so it fits).
    pub(crate) fn answer(&self, text: &str) -> bool {
        sys::write(self.raw(), text.as_bytes()).is_ok_and(|n| n == text.len())
    }

    pub(crate) fn pending(&self) -> usize {
        self.backlog.len() - self.sent
    }

    /// Sends `header` + `payload` (header may be empty), queueing what the socket does not take.
    /// Returns false when the client must be dropped: broken, or too far behind.
    pub(crate) fn send(&mut self, header: &[u8], payload: &[u8]) -> bool {
        let total = header.len() + payload.len();
        let mut done = 0;
        if self.pending() == 0 {
            match sys::writev2(self.raw(), header, payload) {
                Ok(n) if n == total => return true,
                Ok(n) => done = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        if self.pending() + total - done > MAX_BACKLOG {
            return false;
        }
        // Drop what was sent once it is half the buffer: the Vec stays within 2x the bound.
        if self.sent > 0 && self.sent >= self.backlog.len() / 2 {
            self.backlog.drain(..self.sent);
            self.sent = 0;
        }
        if done < header.len() {
            self.backlog.extend_from_slice(&header[done..]);
            self.backlog.extend_from_slice(payload);
        } else {
            self.backlog.extend_from_slice(&payload[done - header.len()..]);
        }
        true
    }

    /// Writes queued output while the socket takes it. Returns false when the client is broken.
    pub(crate) fn flush(&mut self) -> bool {
        while self.pending() > 0 {
            match sys::write(self.raw(), &self.backlog[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        // Caught up: release the memory a burst may have taken.
        self.backlog = Vec::new();
        self.sent = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(parse_request(b"attach 1 0 1"), Ok(Request::Attach { stdin: true, stdout: false, stderr: true }));
        assert_eq!(parse_request(b"resize 24 80"), Ok(Request::Resize { rows: 24, cols: 80 }));
        assert_eq!(parse_request(b"kill 9"), Ok(Request::Kill { signal: 9 }));
        for bad in [&b"attach 1 0"[..], b"attach 1 0 2", b"resize 24", b"resize -1 80", b"resize 1 2 3", b"hello", b"", b"kill 0", b"kill x"] {
            assert!(parse_request(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn backlog_is_bounded_and_flushed_in_order() {
        let (a, b) = sys::socketpair().unwrap();
        sys::set_nonblocking(a.as_raw_fd()).unwrap();
        let mut c = Client::new(a);
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while c.send(b"hdr", &chunk) {
            sent += 1;
            assert!(sent < 1000, "never hit the bound");
        }
        assert!(c.pending() <= MAX_BACKLOG);
        // The reader drains: everything queued arrives.
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        sys::set_nonblocking(b.as_raw_fd()).unwrap();
        loop {
            assert!(c.flush());
            match sys::read(b.as_raw_fd(), &mut buf) {
                Ok(n) => got += n,
                Err(_) if c.pending() == 0 => break,
                Err(_) => {}
            }
        }
        assert_eq!(got, sent * (3 + chunk.len()));
    }
}
