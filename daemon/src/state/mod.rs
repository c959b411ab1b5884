//! The daemon's shared state: what the core and the connection tasks publish and the D-Bus
//! views read, the core's command interface, NM's errors and object paths. It sits below
//! everything that uses it and imports only the kernel's types (`netlink`) and DNS entries.

mod active;
mod command;
mod device;
mod dns;
mod errors;
mod ids;
mod ip;
mod keepup;
mod manager;
pub mod paths;
mod profile;

pub use active::{AcSnapshot, root};
pub use command::Command;
pub use device::{DeviceSnapshot, STATE_ACTIVATED, STATE_UNMANAGED, dev_reason, dev_state};
pub use dns::DnsSnapshot;
pub use errors::{DeviceError, NmError, SettingsError};
pub use ids::{AcId, DeviceId, ProfileId};
pub use ip::{IpData, Routes};
pub use keepup::{KeepUpSnapshot, PendingTry};
pub use manager::{ManagerSnapshot, connectivity};
pub use profile::{Generated, ProfileSnapshot, Storage};
