//! `Connection.Active` and `VPN.Connection`: views onto one active connection's snapshot.

use tokio::sync::watch;
use zbus::OwnedObjectPath;
use zbus::object_server::SignalEmitter;

/// What the connection's task publishes; the views only read it.
#[derive(Debug, Clone)]
pub struct AcSnapshot {
    /// The profile's Settings.Connection path.
    pub connection: OwnedObjectPath,
    /// The base active connection, or `/`.
    pub specific_object: OwnedObjectPath,
    /// Profile id.
    pub id: String,
    /// Profile uuid.
    pub uuid: String,
    /// `NMActiveConnectionState`
    pub state: u32,
    /// `NMVpnConnectionState`
    pub vpn_state: u32,
    /// Login banner.
    pub banner: String,
    /// The VPN has the IPv4 default route.
    pub default4: bool,
    /// The VPN has the IPv6 default route.
    pub default6: bool,
}

fn root() -> OwnedObjectPath {
    OwnedObjectPath::try_from("/").expect("valid path")
}

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
        "vpn".into()
    }
    #[zbus(property)]
    fn devices(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }
    #[zbus(property)]
    fn state(&self) -> u32 {
        self.snap.borrow().state
    }
    #[zbus(property)]
    fn state_flags(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn default(&self) -> bool {
        self.snap.borrow().default4
    }
    #[zbus(property)]
    fn ip4_config(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn dhcp4_config(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn default6(&self) -> bool {
        self.snap.borrow().default6
    }
    #[zbus(property)]
    fn ip6_config(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn dhcp6_config(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn vpn(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn controller(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn master(&self) -> OwnedObjectPath {
        root()
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
