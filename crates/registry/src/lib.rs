//! berth-registry: a client of OCI distribution (Docker registry v2) registries. It pulls
//! images into the image store (manifests and indexes, platform selection, layers downloaded
//! in parallel and verified as they stream into the content store), pushes them (existing
//! blobs skipped, cross-repository mounts, monolithic uploads), and checks logins. Progress is
//! reported as Docker's JSON messages.

pub mod auth;
pub mod client;
pub mod error;
pub mod progress;
mod pull;
mod push;
mod resume;
pub mod search;
pub mod tls;

pub use auth::AuthConfig;
pub use client::{Client, Options};
pub use error::{Error, Result};
pub use pull::{platform, pull, Pulled};
pub use push::{push, Pushed};
