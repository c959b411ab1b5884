//! The Manager object's state, as the core publishes it.

use tinynm_config::nm::nm_state;
use zbus::OwnedObjectPath;

/// What the Manager view shows.
#[derive(Debug, Clone)]
pub struct ManagerSnapshot {
    /// Active connection paths, newest first (as NM orders them).
    pub active: Vec<OwnedObjectPath>,
    /// `NMState`
    pub state: u32,
    /// The active connection with the default route (the newest VPN that took it, else the
    /// connection of the device the kernel routes the default through), or `/`.
    pub primary: OwnedObjectPath,
    /// The primary connection's type, or `""`.
    pub primary_type: String,
    /// Device paths, by ifindex.
    pub devices: Vec<OwnedObjectPath>,
    /// NM's `Startup`: true until the connections started at start-up have settled.
    pub startup: bool,
}

impl ManagerSnapshot {
    /// The state of a daemon with nothing active.
    pub fn new() -> Self {
        ManagerSnapshot {
            active: Vec::new(),
            state: nm_state::DISCONNECTED,
            primary: OwnedObjectPath::try_from("/").expect("valid path"),
            primary_type: String::new(),
            devices: Vec::new(),
            startup: true,
        }
    }
}

impl Default for ManagerSnapshot {
    fn default() -> Self {
        Self::new()
    }
}

/// `NMConnectivityState` for an `NMState`: FULL when connected (tinynmd runs no checks).
pub fn connectivity(state: u32) -> u32 {
    if state == nm_state::CONNECTED_GLOBAL {
        4
    } else {
        1
    }
}
