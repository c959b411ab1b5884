//! tinynm-vpn-plugin: NetworkManager's VPN plugin protocol, both sides.
//!
//! - [`wire`]: typed `Config`/`Ip4Config`/`Ip6Config`, parsed with NM's rules, and builders.
//! - [`service`]: the plugin side; implement [`service::VpnService`] and call [`service::run`].
//! - [`proxy`]: the daemon side, a proxy to a running plugin.
//! - [`process`]: a child's output, line by line.
#![deny(missing_docs)]

pub mod process;
pub mod proxy;
pub mod service;
pub mod wire;

pub use service::{Control, PluginArgs, PluginError, VpnService};
pub use wire::{ConfigError, Dict, GenericConfig, IpConfig, PluginRoute};
