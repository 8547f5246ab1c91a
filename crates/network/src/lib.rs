//! berth-network: Docker's default bridge network for Berth containers. Each container gets
//! a network namespace bound under the exec root (its sandbox), a veth pair whose host side is
//! on the bridge and whose `eth0` holds an address from the bridge's pool. Host changes go
//! through netlink (no `ip`/`nft` processes), behind the `NetOps` trait; Berth's nftables
//! table (masquerade, forwarding, published ports) is regenerated whole and swapped atomically.

mod bridge;
pub mod error;
pub mod firewall;
pub mod ipam;
mod netlink;
pub mod nft;
pub mod ops;
pub mod ports;
pub mod sandbox;
pub mod subnet;

pub use bridge::{BridgeOptions, DefaultBridge};
pub use error::{Error, Result};
pub use ops::{Endpoint, Kernel, NetOps};
pub use ports::{PortMapping, PortRequest, Proto};

/// The default bridge on the real host.
pub type Network = DefaultBridge<Kernel>;
