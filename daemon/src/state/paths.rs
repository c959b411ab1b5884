//! Where NM's objects live on the bus.

/// NM's well-known bus name.
pub const NM_NAME: &str = "org.freedesktop.NetworkManager";
/// The Manager object.
pub const NM_PATH: &str = "/org/freedesktop/NetworkManager";
/// The Settings object.
pub const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
/// The DnsManager object.
pub const DNS_PATH: &str = "/org/freedesktop/NetworkManager/DnsManager";
/// The name of tinynmd's second connection, which serves tinynm's own interfaces.
pub const TINYNM_NAME: &str = "org.tinynm";
/// tinynm's own interfaces live outside `/org/freedesktop`, which libnm watches: a
/// PropertiesChanged of an interface it does not know, on an object it knows, is an error to
/// it (nmcli aborts on it with `G_DEBUG=fatal-warnings`). `org.tinynm.Settings` is here.
pub const TINYNM_SETTINGS_PATH: &str = "/org/tinynm/Settings";
/// `org.tinynm.DnsManager` is here.
pub const TINYNM_DNS_PATH: &str = "/org/tinynm/DnsManager";
/// Where devices live.
pub const DEVICE_PREFIX: &str = "/org/freedesktop/NetworkManager/Devices";
/// Where IPv4 configs live.
pub const IP4_PREFIX: &str = "/org/freedesktop/NetworkManager/IP4Config";
/// Where IPv6 configs live.
pub const IP6_PREFIX: &str = "/org/freedesktop/NetworkManager/IP6Config";
/// DHCP4Config objects: `<prefix>/<n>`, one per DHCP activation, never reused.
pub const DHCP4_PREFIX: &str = "/org/freedesktop/NetworkManager/DHCP4Config";
/// Where active connections live.
pub const AC_PREFIX: &str = "/org/freedesktop/NetworkManager/ActiveConnection";
/// Where the AgentManager is served.
pub const AGENT_PATH: &str = "/org/freedesktop/NetworkManager/AgentManager";

/// The plugins' runtime directory (`TINYNM_RUNTIME_DIR`): a connection's sockets and files, in
/// tinynmd's state directory; what a crashed run left there is removed at the next start.
pub fn runtime_dir(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("run")
}
