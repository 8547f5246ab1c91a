//! berth-network: Docker's bridge networks (the default one and user-defined ones) for Berth
//! containers. Each container gets
//! a network namespace bound under the exec root (its sandbox), a veth pair whose host side is
//! on the bridge and whose `eth0` holds an address from the bridge's pool. Host changes go
//! through netlink (no `ip`/`nft` processes), behind the `NetOps` trait; Berth's nftables
//! table (masquerade, forwarding, published ports) is regenerated whole and swapped atomically.

mod bridge;
pub mod error;
pub mod firewall;
pub mod ipam;
mod netlink;
pub mod networks;
pub mod nft;
pub mod ops;
pub mod ports;
pub mod sandbox;
pub mod subnet;

pub use bridge::{AttachOptions, BridgeNetwork, BridgeOptions, DefaultBridge, NetworkMeta};
pub use networks::{CreateRequest, Found, Networks};
pub use error::{Error, Result};
pub use ops::{Endpoint, Kernel, NetOps};
pub use ports::{PortMapping, PortRequest, Proto};

/// The networks on the real host.
pub type HostNetworks = Networks<Kernel>;
pub type Network = BridgeNetwork<Kernel>;
