//! Docker's detach keys on the daemon's side of a hijacked stream: the client's stdin is
//! scanned for the sequence (`ctrl-p,ctrl-q` unless the request names another), which ends
//! the attachment and leaves the container running. Bytes that start the sequence are held
//! back until it is clear whether they complete it; otherwise they are passed on unchanged.
//! The docker CLI also watches its own terminal; SDK clients and raw API users rely on this.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Docker's `detachKeys` parameter of attach: empty means `ctrl-p,ctrl-q`.
pub fn parse(keys: &str) -> Result<Vec<u8>, String> {
    if keys.is_empty() {
        return Ok(vec![16, 17]);
    }
    berth_engine::detach_key_bytes(keys).map_err(|_| format!("Invalid detach keys ({keys}) provided"))
}

/// What to do with a chunk of stdin.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Forward(Vec<u8>),
    /// The sequence was typed: forward what precedes it, then stop.
    Detach(Vec<u8>),
}

/// Matches the sequence across chunk boundaries.
struct Scanner {
    keys: Vec<u8>,
    /// How many bytes of `keys` the held-back input matched so far.
    matched: usize,
}

impl Scanner {
    fn feed(&mut self, chunk: &[u8]) -> Step {
        let mut out = Vec::with_capacity(chunk.len());
        for &b in chunk {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return Step::Detach(out);
                }
                continue;
            }
            // Not the sequence after all: release what was held, then look at this byte anew.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return Step::Detach(out);
                }
            } else {
                out.push(b);
            }
        }
        Step::Forward(out)
    }
}

/// Relays the client's stdin to the container until EOF, an error, or the detach sequence;
/// returns true when the client detached.
pub async fn relay_stdin<R, W>(mut client: R, mut container: W, keys: &[u8]) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scan = Scanner { keys: keys.to_vec(), matched: 0 };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match client.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = container.shutdown().await;
                return false;
            }
            Ok(n) => n,
        };
        match scan.feed(&buf[..n]) {
            Step::Forward(b) => {
                if !b.is_empty() && container.write_all(&b).await.is_err() {
                    return false;
                }
            }
            Step::Detach(b) => {
                let _ = container.write_all(&b).await;
                return true;
            }
        }
    }
}

/// The whole hijacked session: the container's output to the client, the client's stdin to
/// the container through the scanner; a detach ends both directions.
pub async fn session<C, M>(client: C, monitor: M, keys: Vec<u8>)
where
    C: AsyncRead + AsyncWrite + Unpin,
    M: AsyncRead + AsyncWrite + Unpin,
{
    let (client_r, mut client_w) = tokio::io::split(client);
    let (mut monitor_r, monitor_w) = tokio::io::split(monitor);
    let output = async {
        let _ = tokio::io::copy(&mut monitor_r, &mut client_w).await;
        let _ = client_w.shutdown().await;
    };
    let input = async {
        if relay_stdin(client_r, monitor_w, &keys).await {
            return; // detached: stop the output side too
        }
        // stdin ended: the output keeps flowing until the container closes it.
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_keys() {
        assert_eq!(parse("").unwrap(), [16, 17]);
        assert_eq!(parse("ctrl-a,x").unwrap(), [1, b'x']);
        assert_eq!(parse("ctrl-1").unwrap_err(), "Invalid detach keys (ctrl-1) provided");
    }

    #[test]
    fn scanner_holds_and_releases() {
        let mut s = Scanner { keys: vec![16, 17], matched: 0 };
        assert_eq!(s.feed(b"ab"), Step::Forward(b"ab".to_vec()));
        // A lone ctrl-p is held...
        assert_eq!(s.feed(&[16]), Step::Forward(vec![]));
        // ...and released when the next byte is not ctrl-q.
        assert_eq!(s.feed(b"x"), Step::Forward(vec![16, b'x']));
        // ctrl-p ctrl-p ctrl-q: the first is released, the pair detaches.
        assert_eq!(s.feed(&[16, 16, 17, b'z']), Step::Detach(vec![16]));
        let mut s = Scanner { keys: vec![16, 17], matched: 0 };
        assert_eq!(s.feed(&[b'e', 16]), Step::Forward(vec![b'e']));
        assert_eq!(s.feed(&[17]), Step::Detach(vec![]));
    }

    #[tokio::test]
    async fn relay_stops_at_the_sequence() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let (sink, mut sink_r) = tokio::io::duplex(64);
        let task = tokio::spawn(async move { relay_stdin(rx, sink, &[16, 17]).await });
        tx.write_all(b"echo hi\n\x10").await.unwrap();
        tx.write_all(b"\x11more").await.unwrap();
        assert!(task.await.unwrap());
        let mut got = vec![0u8; 8];
        sink_r.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"echo hi\n");
    }
}
