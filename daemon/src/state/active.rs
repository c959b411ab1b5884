//! One active connection, as its task (or the core, for external ones) publishes it.

use zbus::OwnedObjectPath;

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
    /// DHCP4Config object (a DHCP uplink's, once ACTIVATED), or `/`.
    pub dhcp4_config: OwnedObjectPath,
    /// Its DNS, once up.
    pub dns: Vec<crate::dns::DnsEntry>,
    /// `NMActiveConnectionStateReason` of its last state change (why it ended, at the end).
    pub reason: u32,
    /// A VPN's own tunnel interface, once its config is applied (the kill switch lets it
    /// through).
    pub tunnel: Option<String>,
    /// The VPN server's address as the plugin's `Config` gave it.
    pub vpn_gateway: Option<std::net::IpAddr>,
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
            dhcp4_config: root(),
            dns: Vec::new(),
            reason: 0,
            tunnel: None,
            vpn_gateway: None,
        }
    }
}

impl AcSnapshot {
    /// A new activation of a device's own connection (wired, or external), ACTIVATING, with
    /// NM's LIFETIME_BOUND_TO_PROFILE_VISIBILITY flag.
    pub fn device(
        connection: OwnedObjectPath,
        id: String,
        uuid: String,
        kind: String,
        device: OwnedObjectPath,
        ip4_config: OwnedObjectPath,
        ip6_config: OwnedObjectPath,
    ) -> Self {
        AcSnapshot {
            connection,
            specific_object: root(),
            id,
            uuid,
            state: tinynm_config::nm::AcState::Activating as u32,
            vpn_state: 0,
            banner: String::new(),
            default4: false,
            default6: false,
            kind,
            vpn: false,
            devices: vec![device],
            state_flags: 0x40,
            controller: root(),
            ip4_config,
            ip6_config,
            dhcp4_config: root(),
            dns: Vec::new(),
            reason: 0,
            tunnel: None,
            vpn_gateway: None,
        }
    }
}

/// The empty object reference.
pub fn root() -> OwnedObjectPath {
    OwnedObjectPath::try_from("/").expect("valid path")
}
