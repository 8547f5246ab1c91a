//! berth-image: the image store. Content-addressed blobs (sha256, verified on write and read),
//! OCI/Docker manifests and configs, references normalised as Docker does, image metadata in an
//! embedded ACID store, layers unpacked once into read-only snapshots shared by every image and
//! container (overlayfs, or copies where overlay cannot mount).

pub mod content;
pub mod digest;
pub mod error;
pub mod gc;
pub mod layer;
pub mod manifest;
pub mod meta;
mod pagecache;
pub mod reference;
pub mod snapshot;
pub mod store;

pub use digest::{ChainId, DiffId, Digest};
pub use error::{Error, Result};
pub use reference::Reference;
