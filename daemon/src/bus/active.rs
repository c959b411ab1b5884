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
    /// `connection.type` of the profile (`vpn`, `loopback`, `802-3-ethernet`…).
    pub kind: String,
    /// A VPN (then `VPN.Connection` is served too).
    pub vpn: bool,
    /// The device(s): a VPN's parent device, an external connection's own.
    pub devices: Vec<OwnedObjectPath>,
    /// NM_ACTIVATION_STATE_FLAG_*.
    pub state_flags: u32,
    /// NM shows a VPN's parent device as its controller.
    pub controller: OwnedObjectPath,
    /// IP4Config object, or `/`.
    pub ip4_config: OwnedObjectPath,
    /// IP6Config object, or `/`.
    pub ip6_config: OwnedObjectPath,
    /// Its DNS, once up.
    pub dns: Vec<crate::dns::DnsEntry>,
}

impl AcSnapshot {
    /// A new VPN activation, ACTIVATING.
    pub fn vpn(
        connection: OwnedObjectPath,
        specific_object: OwnedObjectPath,
        id: String,
        uuid: String,
        parent: Option<OwnedObjectPath>,
    ) -> Self {
        AcSnapshot {
            connection,
            specific_object,
            id,
            uuid,
            state: tinynm_config::nm::AcState::Activating as u32,
            vpn_state: tinynm_config::nm::VpnState::Prepare as u32,
            banner: String::new(),
            default4: false,
            default6: false,
            kind: "vpn".into(),
            vpn: true,
            devices: parent.iter().cloned().collect(),
            state_flags: 0,
            controller: parent.unwrap_or_else(root),
            ip4_config: root(),
            ip6_config: root(),
            dns: Vec::new(),
        }
    }
}

/// The empty object reference.
pub fn root() -> OwnedObjectPath {
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
        root()
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
