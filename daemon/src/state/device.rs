//! One device (a kernel link), as the core publishes it.

use zbus::OwnedObjectPath;

use crate::netlink::links::Link;

/// NM_DEVICE_STATE_UNMANAGED
pub const STATE_UNMANAGED: u32 = 10;
/// NM_DEVICE_STATE_ACTIVATED
pub const STATE_ACTIVATED: u32 = 100;

/// `NMDeviceState` (headers/nm-dbus-interface.h).
pub mod dev_state {
    /// No carrier.
    pub const UNAVAILABLE: u32 = 20;
    /// Managed, ready to activate.
    pub const DISCONNECTED: u32 = 30;
    /// Activation begins.
    pub const PREPARE: u32 = 40;
    /// The link is being set up.
    pub const CONFIG: u32 = 50;
    /// Getting IP configuration (DHCP, static).
    pub const IP_CONFIG: u32 = 70;
    /// Checking the IP configuration.
    pub const IP_CHECK: u32 = 80;
    /// Waiting for the secondary connections.
    pub const SECONDARIES: u32 = 90;
    /// Up.
    pub const ACTIVATED: u32 = 100;
    /// Going down.
    pub const DEACTIVATING: u32 = 110;
    /// Activation failed.
    pub const FAILED: u32 = 120;
}

/// `NMDeviceStateReason` values tinynmd gives.
pub mod dev_reason {
    /// No reason.
    pub const NONE: u32 = 0;
    /// The device is now managed.
    pub const NOW_MANAGED: u32 = 2;
    /// The configuration could not be applied (the kernel refused it).
    pub const CONFIG_FAILED: u32 = 5;
    /// The IP configuration could not be had (DHCP timed out).
    pub const IP_CONFIG_UNAVAILABLE: u32 = 17;
    /// The IP configuration expired (the DHCP lease ran out).
    pub const IP_CONFIG_EXPIRED: u32 = 18;
    /// The user asked for it.
    pub const USER_REQUESTED: u32 = 39;
    /// Carrier changed.
    pub const CARRIER: u32 = 40;
    /// The device's existing configuration was assumed as an external connection.
    pub const CONNECTION_ASSUMED: u32 = 41;
    /// A secondary connection failed.
    pub const SECONDARY_CONNECTION_FAILED: u32 = 54;
}

/// One device as the core publishes it.
#[derive(Debug, Clone)]
pub struct DeviceSnapshot {
    /// The kernel's link.
    pub link: Link,
    /// `NMDeviceState`: ACTIVATED when assumed, UNMANAGED when no profile of tinynmd's is for
    /// it, else the state of its activation (DISCONNECTED when none).
    pub state: u32,
    /// `NMDeviceStateReason` of the last state change.
    pub reason: u32,
    /// Whether tinynmd may autoconnect it (false after a user's `device disconnect`).
    pub autoconnect: bool,
    /// Its (external) active connection, or `/`.
    pub active: OwnedObjectPath,
    /// Profiles that can be active on it.
    pub available: Vec<OwnedObjectPath>,
    /// IP4Config object.
    pub ip4: OwnedObjectPath,
    /// IP6Config object.
    pub ip6: OwnedObjectPath,
    /// DHCP4Config object of its DHCP activation, or `/`.
    pub dhcp4: OwnedObjectPath,
    /// The veth peer's device, or `/`.
    pub peer: OwnedObjectPath,
    /// The kernel routes the default through it.
    pub default_route: bool,
}
