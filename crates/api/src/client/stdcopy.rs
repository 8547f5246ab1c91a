//! Docker's multiplexed stream: frames of `[stream, 0, 0, 0, len as u32 BE]` then `len` bytes,
//! stream 0 stdin, 1 stdout, 2 stderr, 3 a daemon-side error.

use std::io::{self, Read, Write};

/// Copies frames to `out`/`err` until EOF; a stream-3 frame ends the copy with its text.
pub fn demux(r: &mut impl Read, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let mut head = [0u8; 8];
    let mut buf = vec![0u8; 32 << 10];
    loop {
        if !read_full(r, &mut head)? {
            return Ok(());
        }
        let mut left = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let mut sys = Vec::new();
        while left > 0 {
            let want = left.min(buf.len());
            let n = r.read(&mut buf[..want])?;
            if n == 0 {
                return Ok(());
            }
            left -= n;
            match head[0] {
                0 | 1 => {
                    out.write_all(&buf[..n])?;
                    out.flush()?;
                }
                2 => {
                    err.write_all(&buf[..n])?;
                    err.flush()?;
                }
                3 => sys.extend_from_slice(&buf[..n]),
                s => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unrecognized stream: {s}"))),
            }
        }
        if head[0] == 3 {
            return Err(io::Error::other(String::from_utf8_lossy(&sys).into_owned()));
        }
    }
}

/// Fills `buf`; false at a clean EOF before its first byte.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated stream frame")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: u8, d: &[u8]) -> Vec<u8> {
        let mut v = vec![s, 0, 0, 0];
        v.extend_from_slice(&(d.len() as u32).to_be_bytes());
        v.extend_from_slice(d);
        v
    }

    #[test]
    fn splits_streams_and_reports_errors() {
        let mut input = frame(1, b"out\n");
        input.extend(frame(2, b"err\n"));
        input.extend(frame(1, b"more"));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(&mut &input[..], &mut o, &mut e).unwrap();
        assert_eq!((o.as_slice(), e.as_slice()), (&b"out\nmore"[..], &b"err\n"[..]));
        let input = frame(3, b"boom");
        let err = demux(&mut &input[..], &mut o, &mut e).unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }
}
