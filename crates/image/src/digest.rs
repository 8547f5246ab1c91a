//! Content digests ("sha256:<64 lowercase hex>") and stream wrappers that hash while copying, so
//! content is verified in the same pass that stores or reads it.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// A sha256 content digest. Only sha256 is supported: it is what Docker and every registry use
/// for image content, and one algorithm keeps the store's paths and IDs unambiguous.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// 64 lowercase hex characters (validated on construction).
    hex: String,
}

/// Uncompressed layer digest (config rootfs.diff_ids).
pub type DiffId = Digest;
/// Identity of a stack of layers: see [`crate::manifest::chain_ids`].
pub type ChainId = Digest;

impl Digest {
    pub const ALGORITHM: &'static str = "sha256";

    /// Parses "sha256:<hex>", with go-digest's error wording (Docker shows these verbatim).
    pub fn parse(s: &str) -> Result<Digest> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(Error::InvalidArgument(
                "invalid checksum digest format".into(),
            ));
        };
        if algo.is_empty() || hex.is_empty() {
            return Err(Error::InvalidArgument(
                "invalid checksum digest format".into(),
            ));
        }
        if algo != Self::ALGORITHM {
            return Err(Error::InvalidArgument(
                "unsupported digest algorithm".into(),
            ));
        }
        Self::from_hex(hex)
    }

    /// From the bare 64-character hex part.
    pub fn from_hex(hex: &str) -> Result<Digest> {
        if hex.len() != 64 {
            return Err(Error::InvalidArgument(
                "invalid checksum digest length".into(),
            ));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::InvalidArgument(
                "invalid checksum digest format".into(),
            ));
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }

    /// The digest of a byte string.
    pub fn of(data: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }

    pub fn algorithm(&self) -> &'static str {
        Self::ALGORITHM
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Docker's short form of an ID: the first 12 hex characters.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", Self::ALGORITHM, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(|e| serde::de::Error::custom(format!("digest {s:?}: {e}")))
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = Error;
    fn try_from(d: &oci_spec::image::Digest) -> Result<Digest> {
        Digest::parse(d.as_ref())
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    fn from(d: &Digest) -> Self {
        // A validated sha256 digest is always a valid OCI digest.
        d.to_string()
            .parse()
            .expect("sha256 digest is a valid OCI digest")
    }
}

/// Incremental sha256.
#[derive(Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new() -> Self {
        Hasher(Sha256::new())
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.0.finalize()),
        }
    }
}

/// A writer that hashes and counts every byte it passes on.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Hasher,
    size: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            hasher: Hasher::new(),
            size: 0,
        }
    }
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    /// The inner writer, the digest and the size of everything written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.size)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Hash only what the inner writer accepted, so a short write stays consistent.
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts every byte read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: Hasher,
    size: u64,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Hasher::new(),
            size: 0,
        }
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }
    pub fn finish(self) -> (R, Digest, u64) {
        (self.inner, self.hasher.finish(), self.size)
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_and_display() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{EMPTY}\""));
        let back: Digest = serde_json::from_str(&format!("\"{EMPTY}\"")).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn rejects_bad_digests() {
        let err = |s: &str| Digest::parse(s).unwrap_err().to_string();
        assert_eq!(err("sha256"), "invalid checksum digest format");
        assert_eq!(err("sha256:abc"), "invalid checksum digest length");
        assert_eq!(
            err(&EMPTY.to_uppercase().replace("SHA256", "sha256")),
            "invalid checksum digest format"
        );
        assert_eq!(
            err(&EMPTY.replace("sha256", "sha512")),
            "unsupported digest algorithm"
        );
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }

    #[test]
    fn streams_hash_what_passes() {
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!((d.clone(), n), (Digest::of(b"hello world"), 11));
        let mut r = DigestReader::new(&buf[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!((r.digest(), r.size()), (d, 11));
    }
}
