//! Layer compression: detection by magic number, streaming decompression and compression.

use std::io::{self, Chain, Cursor, Read, Write};

use crate::{Error, Result};

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2_MAGIC: &[u8] = b"BZh";
/// Enough leading bytes for every magic number above.
const MAGIC_LEN: usize = 6;

impl Compression {
    /// The compression whose magic number starts `head` (a plain tar, or anything unknown, is
    /// `None`).
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The compression an OCI or Docker layer media type names (`None` for an unknown type).
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// A streaming decoder of this compression over `reader`.
    pub fn reader<'a, R: Read + Send + 'a>(self, reader: R) -> Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(reader).map_err(|e| Error::io("start zstd decoder", "layer", e))?,
            ),
        })
    }
}

/// Reads the first bytes of `reader`, detects its compression and returns a streaming reader of
/// the decompressed content (the bytes read to detect are replayed). xz and bzip2 are detected
/// and refused.
pub fn decompress<'a, R: Read + Send + 'a>(reader: R) -> Result<Box<dyn Read + Send + 'a>> {
    let (compression, reader) = detect_stream(reader)?;
    compression.reader(reader)
}

/// A stream with the bytes read to detect its compression put back in front.
pub(crate) type Replayed<R> = Chain<Cursor<Vec<u8>>, R>;

/// Detects the compression of a stream, returning the stream with the peeked bytes put back.
pub(crate) fn detect_stream<R: Read>(mut reader: R) -> Result<(Compression, Replayed<R>)> {
    let mut head = Vec::with_capacity(MAGIC_LEN);
    (&mut reader).take(MAGIC_LEN as u64).read_to_end(&mut head).map_err(|e| Error::io("read", "layer stream", e))?;
    if head.starts_with(XZ_MAGIC) || head.starts_with(BZIP2_MAGIC) {
        return Err(Error::Malformed("layer: xz and bzip2 compression are not supported".into()));
    }
    Ok((Compression::detect(&head), Cursor::new(head).chain(reader)))
}

/// A streaming compressor: write the tar stream to it, then [`Compressor::finish`].
pub struct Compressor<W: Write> {
    enc: Enc<W>,
}

enum Enc<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

/// A compressor writing `compression` of what it is given to `writer`.
pub fn compress<W: Write>(writer: W, compression: Compression) -> Result<Compressor<W>> {
    let enc = match compression {
        Compression::None => Enc::Plain(writer),
        Compression::Gzip => Enc::Gzip(flate2::write::GzEncoder::new(writer, flate2::Compression::default())),
        Compression::Zstd => Enc::Zstd(
            zstd::stream::write::Encoder::new(writer, 3).map_err(|e| Error::io("start zstd encoder", "layer", e))?,
        ),
    };
    Ok(Compressor { enc })
}

impl<W: Write> Compressor<W> {
    /// Writes the compressed stream's trailer and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        match self.enc {
            Enc::Plain(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Enc::Gzip(g) => g.finish(),
            Enc::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.enc {
            Enc::Plain(w) => w.write(buf),
            Enc::Gzip(g) => g.write(buf),
            Enc::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.enc {
            Enc::Plain(w) => w.flush(),
            Enc::Gzip(g) => g.flush(),
            Enc::Zstd(z) => z.flush(),
        }
    }
}
