//! tinynm's model: connection profiles, VPNs and wired base connections (typed sections, validation, secret flags), their
//! conversion to and from NetworkManager's `a{sa{sv}}`, TOML profile files, `daemon.toml`, and
//! NM's enum values. No I/O runtime.
#![deny(missing_docs)]

pub mod daemon_config;
pub mod dbus;
mod dbus_wired;
pub mod endpoints;
pub mod error;
pub mod ethernet;
pub mod keyfile;
pub mod namefile;
pub mod nm;
pub mod ovpn;
pub mod profile;
pub mod toml_profile;

pub use daemon_config::DaemonConfig;
pub use error::ProfileError;
pub use profile::Profile;
