//! The Docker Engine API's types, in Docker's JSON shapes, shared by berthd's server, the engine
//! and the berth CLI's client.

#[cfg(feature = "client")] pub mod client;
pub mod container;
pub mod container_config;
pub mod error;
pub mod event;
pub mod exec;
pub mod network;
pub mod stats;
pub mod system;
pub mod volume;

/// The newest API version Berth implements, announced by /version and the Api-Version header.
pub const API_VERSION: &str = "1.47";
/// The oldest version clients may ask for with a /vX.YY prefix.
pub const MIN_API_VERSION: &str = "1.24";
