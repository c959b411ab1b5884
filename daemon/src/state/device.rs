//! One device (a kernel link), as the core publishes it.

use zbus::OwnedObjectPath;

use crate::netlink::links::Link;

/// NM_DEVICE_STATE_UNMANAGED
pub const STATE_UNMANAGED: u32 = 10;
/// NM_DEVICE_STATE_ACTIVATED
pub const STATE_ACTIVATED: u32 = 100;

/// One device as the core publishes it.
#[derive(Debug, Clone)]
pub struct DeviceSnapshot {
    /// The kernel's link.
    pub link: Link,
    /// `NMDeviceState`: ACTIVATED when assumed, else UNMANAGED.
    pub state: u32,
    /// Its (external) active connection, or `/`.
    pub active: OwnedObjectPath,
    /// Profiles that can be active on it.
    pub available: Vec<OwnedObjectPath>,
    /// IP4Config object.
    pub ip4: OwnedObjectPath,
    /// IP6Config object.
    pub ip6: OwnedObjectPath,
    /// The veth peer's device, or `/`.
    pub peer: OwnedObjectPath,
    /// The kernel routes the default through it.
    pub default_route: bool,
}
