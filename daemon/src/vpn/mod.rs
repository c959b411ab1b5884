//! The VPN manager: plugin registry, plugin processes, and one task per active connection.

pub mod connection;
pub mod machine;
pub mod plugin;
pub mod registry;
pub mod secrets;
