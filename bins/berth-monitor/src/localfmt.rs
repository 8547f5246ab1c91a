//! Docker's `local` log driver format: each entry is a protobuf LogEntry (source = 1 string,
//! time_nano = 2 int64, line = 3 bytes, partial = 4 bool) framed by its length as a 4-byte
//! big-endian integer before and after it (the trailing copy lets readers walk backwards). The
//! line is stored without its newline; partial marks a piece of a longer or unterminated line.

/// One decoded entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub time_nano: i64,
    pub line: Vec<u8>,
    pub partial: bool,
}

/// Entries larger than this are refused when reading (Docker's reader limit is of this order).
pub const MAX_ENTRY: usize = 1 << 20;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends one framed entry for `line` (its newline, if any, dropped: partial otherwise).
pub fn encode(out: &mut Vec<u8>, source: &str, time_nano: i64, line: &[u8]) {
    let (body, partial) = match line.strip_suffix(b"\n") {
        Some(b) => (b, false),
        None => (line, true),
    };
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(0x0a);
    varint(out, source.len() as u64);
    out.extend_from_slice(source.as_bytes());
    if time_nano != 0 {
        out.push(0x10);
        varint(out, time_nano as u64);
    }
    if !body.is_empty() {
        out.push(0x1a);
        varint(out, body.len() as u64);
        out.extend_from_slice(body);
    }
    if partial {
        out.extend_from_slice(&[0x20, 1]);
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Decodes a LogEntry message (without its framing); unknown fields are skipped.
pub fn decode(b: &[u8]) -> Option<Entry> {
    let mut e = Entry::default();
    let mut i = 0;
    while i < b.len() {
        let key = read_varint(b, &mut i)?;
        match (key >> 3, key & 7) {
            (_, 0) => {
                let v = read_varint(b, &mut i)?;
                match key >> 3 {
                    2 => e.time_nano = v as i64,
                    4 => e.partial = v != 0,
                    _ => {}
                }
            }
            (field, 2) => {
                let n = read_varint(b, &mut i)? as usize;
                let data = b.get(i..i.checked_add(n)?)?;
                i += n;
                match field {
                    1 => e.source = String::from_utf8_lossy(data).into_owned(),
                    3 => e.line = data.to_vec(),
                    _ => {}
                }
            }
            (_, 1) => i += 8,
            (_, 5) => i += 4,
            _ => return None,
        }
    }
    (i == b.len()).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_framing() {
        let mut out = vec![];
        encode(&mut out, "stdout", 1_795_441_501_123_456_789, b"hello\n");
        encode(&mut out, "stderr", 5, b"part");
        // Known bytes of the first entry: source, time_nano, line.
        let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(&out[4..12], b"\x0a\x06stdout");
        assert_eq!(out[12], 0x10);
        assert_eq!(&out[4 + len - 7..4 + len], b"\x1a\x05hello");
        assert_eq!(&out[4 + len..8 + len], &out[..4]);
        let e = decode(&out[4..4 + len]).unwrap();
        assert_eq!(e, Entry { source: "stdout".into(), time_nano: 1_795_441_501_123_456_789, line: b"hello".to_vec(), partial: false });
        let rest = &out[8 + len..];
        let len2 = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(rest.len(), len2 + 8);
        let e = decode(&rest[4..4 + len2]).unwrap();
        assert_eq!(e, Entry { source: "stderr".into(), time_nano: 5, line: b"part".to_vec(), partial: true });
    }

    #[test]
    fn varints_and_garbage() {
        let mut v = vec![];
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        assert!(decode(&[0x0a, 0x05, b'a']).is_none());
        assert!(decode(&[0x0f]).is_none());
        // An unknown length-delimited field (5: partial_log_metadata) is skipped.
        assert!(decode(&[0x2a, 0x01, 0x00, 0x20, 0x01]).unwrap().partial);
    }
}
