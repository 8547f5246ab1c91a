//! berth-image: the image store. Content-addressed blobs (sha256, verified on write and read),
//! OCI/Docker manifests and configs, references normalised as Docker does, image metadata in an
//! embedded ACID store, layers unpacked once into read-only snapshots shared by every image and
//! container (overlayfs, or copies where overlay cannot mount).

pub mod error;

pub use error::{Error, Result};
