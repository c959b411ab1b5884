//! `Connection.Active` and `VPN.Connection`: views onto one active connection's snapshot.

use tokio::sync::watch;
use zbus::OwnedObjectPath;
use zbus::object_server::SignalEmitter;

use crate::state::{AcSnapshot, root};

/// `org.freedesktop.NetworkManager.Connection.Active`
pub struct ActiveView {
    /// The task's snapshot.
    pub snap: watch::Receiver<AcSnapshot>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Connection.Active")]
impl ActiveView {
    #[zbus(property)]
    fn connection(&self) -> OwnedObjectPath {
        self.snap.borrow().connection.clone()
    }
    #[zbus(property)]
    fn specific_object(&self) -> OwnedObjectPath {
        self.snap.borrow().specific_object.clone()
    }
    #[zbus(property)]
    fn id(&self) -> String {
        self.snap.borrow().id.clone()
    }
    #[zbus(property)]
    fn uuid(&self) -> String {
        self.snap.borrow().uuid.clone()
    }
    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        self.snap.borrow().kind.clone()
    }
    #[zbus(property)]
    fn devices(&self) -> Vec<OwnedObjectPath> {
        self.snap.borrow().devices.clone()
    }
    #[zbus(property)]
    fn state(&self) -> u32 {
        self.snap.borrow().state
    }
    #[zbus(property)]
    fn state_flags(&self) -> u32 {
        self.snap.borrow().state_flags
    }
    #[zbus(property)]
    fn default(&self) -> bool {
        self.snap.borrow().default4
    }
    #[zbus(property)]
    fn ip4_config(&self) -> OwnedObjectPath {
        self.snap.borrow().ip4_config.clone()
    }
    #[zbus(property)]
    fn dhcp4_config(&self) -> OwnedObjectPath {
        self.snap.borrow().dhcp4_config.clone()
    }
    #[zbus(property)]
    fn default6(&self) -> bool {
        self.snap.borrow().default6
    }
    #[zbus(property)]
    fn ip6_config(&self) -> OwnedObjectPath {
        self.snap.borrow().ip6_config.clone()
    }
    #[zbus(property)]
    fn dhcp6_config(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn vpn(&self) -> bool {
        self.snap.borrow().vpn
    }
    #[zbus(property)]
    fn controller(&self) -> OwnedObjectPath {
        self.snap.borrow().controller.clone()
    }
    #[zbus(property)]
    fn master(&self) -> OwnedObjectPath {
        self.snap.borrow().controller.clone()
    }

    /// Property `State` already generates `state_changed()`: the signal needs another name.
    #[zbus(signal, name = "StateChanged")]
    pub async fn emit_state_changed(
        e: &SignalEmitter<'_>,
        state: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

/// `org.freedesktop.NetworkManager.VPN.Connection`
pub struct VpnView {
    /// The task's snapshot.
    pub snap: watch::Receiver<AcSnapshot>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.VPN.Connection")]
impl VpnView {
    #[zbus(property)]
    fn vpn_state(&self) -> u32 {
        self.snap.borrow().vpn_state
    }
    #[zbus(property)]
    fn banner(&self) -> String {
        self.snap.borrow().banner.clone()
    }

    #[zbus(signal, name = "VpnStateChanged")]
    pub async fn emit_vpn_state_changed(
        e: &SignalEmitter<'_>,
        state: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}
