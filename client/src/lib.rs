//! tinynm-client: client proxies for NetworkManager's D-Bus API (as tinynmd and NM serve it),
//! for the `tinynm` CLI and the tests.

use std::collections::HashMap;

use zbus::{OwnedObjectPath, OwnedVariant};

/// `a{sa{sv}}`
pub type SettingsDict = HashMap<String, HashMap<String, OwnedVariant>>;

/// `org.freedesktop.NetworkManager`
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager"
)]
pub trait Manager {
    /// Activate a profile.
    fn activate_connection(
        &self,
        connection: &zbus::ObjectPath<'_>,
        device: &zbus::ObjectPath<'_>,
        specific_object: &zbus::ObjectPath<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    /// Deactivate an active connection.
    fn deactivate_connection(&self, active_connection: &zbus::ObjectPath<'_>) -> zbus::Result<()>;
    /// Active connections.
    #[zbus(property)]
    fn active_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    /// NMState.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<u32>;
    /// Version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    /// Devices.
    #[zbus(property)]
    fn devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    /// The primary connection.
    #[zbus(property)]
    fn primary_connection(&self) -> zbus::Result<OwnedObjectPath>;
    /// NMConnectivityState.
    #[zbus(property)]
    fn connectivity(&self) -> zbus::Result<u32>;
    /// Still starting up.
    #[zbus(property)]
    fn startup(&self) -> zbus::Result<bool>;
    /// Networking enabled.
    #[zbus(property)]
    fn networking_enabled(&self) -> zbus::Result<bool>;
    /// What the caller may do: permission → yes, no or auth.
    fn get_permissions(&self) -> zbus::Result<HashMap<String, String>>;
    /// The realized devices.
    fn get_devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
}

/// `org.freedesktop.NetworkManager.Device`
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Device",
    default_service = "org.freedesktop.NetworkManager"
)]
pub trait Device {
    /// Interface name.
    #[zbus(property)]
    fn interface(&self) -> zbus::Result<String>;
    /// NMDeviceState.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<u32>;
    /// Its active connection.
    #[zbus(property)]
    fn active_connection(&self) -> zbus::Result<OwnedObjectPath>;
    /// NMDeviceType.
    #[zbus(property)]
    fn device_type(&self) -> zbus::Result<u32>;
    /// The state and why.
    #[zbus(property)]
    fn state_reason(&self) -> zbus::Result<(u32, u32)>;
    /// MAC address.
    #[zbus(property)]
    fn hw_address(&self) -> zbus::Result<String>;
    /// MTU.
    #[zbus(property)]
    fn mtu(&self) -> zbus::Result<u32>;
    /// Managed by the daemon.
    #[zbus(property)]
    fn managed(&self) -> zbus::Result<bool>;
    /// Its IPv4 config ("/" when none).
    #[zbus(property)]
    fn ip4_config(&self) -> zbus::Result<OwnedObjectPath>;
    /// Its IPv6 config ("/" when none).
    #[zbus(property)]
    fn ip6_config(&self) -> zbus::Result<OwnedObjectPath>;
    /// Takes its connection down and keeps it from autoconnecting.
    fn disconnect(&self) -> zbus::Result<()>;
}

/// `org.freedesktop.NetworkManager.IP4Config` and `IP6Config` (the same properties; build with
/// `.interface(…IP6Config)` for the second).
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.IP4Config",
    default_service = "org.freedesktop.NetworkManager"
)]
pub trait IpConfig {
    /// Addresses: {address, prefix}.
    #[zbus(property)]
    fn address_data(&self) -> zbus::Result<Vec<HashMap<String, OwnedVariant>>>;
    /// The gateway ("" when none).
    #[zbus(property)]
    fn gateway(&self) -> zbus::Result<String>;
    /// Routes: {dest, prefix, next-hop?, metric?}.
    #[zbus(property)]
    fn route_data(&self) -> zbus::Result<Vec<HashMap<String, OwnedVariant>>>;
    /// Name servers: {address}.
    #[zbus(property)]
    fn nameserver_data(&self) -> zbus::Result<Vec<HashMap<String, OwnedVariant>>>;
    /// Search domains.
    #[zbus(property)]
    fn domains(&self) -> zbus::Result<Vec<String>>;
}

/// `org.freedesktop.NetworkManager.Settings`
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Settings",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager/Settings"
)]
pub trait Settings {
    /// All profiles.
    fn list_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    /// A profile by UUID.
    fn get_connection_by_uuid(&self, uuid: &str) -> zbus::Result<OwnedObjectPath>;
    /// Add and save a profile.
    fn add_connection(&self, connection: SettingsDict) -> zbus::Result<OwnedObjectPath>;
    /// Add a profile in memory only.
    fn add_connection_unsaved(&self, connection: SettingsDict) -> zbus::Result<OwnedObjectPath>;
    /// Load or reload these files.
    fn load_connections(&self, filenames: &[&str]) -> zbus::Result<(bool, Vec<String>)>;
    /// Re-read every profile file.
    fn reload_connections(&self) -> zbus::Result<bool>;
}

/// `org.freedesktop.NetworkManager.Settings.Connection`
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Settings.Connection",
    default_service = "org.freedesktop.NetworkManager"
)]
pub trait SettingsConnection {
    /// The profile without secrets.
    fn get_settings(&self) -> zbus::Result<SettingsDict>;
    /// Replace the profile.
    fn update(&self, properties: SettingsDict) -> zbus::Result<()>;
    /// Delete the profile.
    fn delete(&self) -> zbus::Result<()>;
    /// The secrets of a setting.
    fn get_secrets(&self, setting_name: &str) -> zbus::Result<SettingsDict>;
    /// Forget the stored secrets.
    fn clear_secrets(&self) -> zbus::Result<()>;
    /// NMSettingsConnectionFlags (0x2: generated for an interface configured elsewhere).
    #[zbus(property)]
    fn flags(&self) -> zbus::Result<u32>;
}

/// `org.freedesktop.NetworkManager.Connection.Active`
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Connection.Active",
    default_service = "org.freedesktop.NetworkManager"
)]
pub trait Active {
    /// State.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<u32>;
    /// Profile id.
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    /// The profile's path.
    #[zbus(property)]
    fn connection(&self) -> zbus::Result<OwnedObjectPath>;
    /// A VPN.
    #[zbus(property)]
    fn vpn(&self) -> zbus::Result<bool>;
    /// Its devices.
    #[zbus(property)]
    fn devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    /// Its IPv4 config.
    #[zbus(property)]
    fn ip4_config(&self) -> zbus::Result<OwnedObjectPath>;
    /// Profile UUID.
    #[zbus(property)]
    fn uuid(&self) -> zbus::Result<String>;
    /// NMActivationStateFlags (0x80: external, configured outside the daemon).
    #[zbus(property)]
    fn state_flags(&self) -> zbus::Result<u32>;
    /// Profile type (`vpn`, `802-3-ethernet`…).
    #[zbus(property, name = "Type")]
    fn kind(&self) -> zbus::Result<String>;
    /// State changes.
    #[zbus(signal, name = "StateChanged")]
    fn state_signal(&self, state: u32, reason: u32) -> zbus::Result<()>;
}

/// `org.tinynm.Settings`: tinynmd's own settings interface (NetworkManager has none).
#[zbus::proxy(
    interface = "org.tinynm.Settings",
    default_service = "org.tinynm",
    default_path = "/org/tinynm/Settings"
)]
pub trait TinynmSettings {
    /// Adds a profile after writing the files it names into `CertDir`.
    fn add_connection_with_files(
        &self,
        settings: SettingsDict,
        files: HashMap<String, Vec<u8>>,
        save: bool,
    ) -> zbus::Result<OwnedObjectPath>;
    /// The last lines of the profile's last plugin.
    fn plugin_log(&self, uuid: &str) -> zbus::Result<Vec<String>>;
    /// Where imported certificates go.
    #[zbus(property)]
    fn cert_dir(&self) -> zbus::Result<String>;
}

/// `org.freedesktop.NetworkManager.VPN.Connection`
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.VPN.Connection",
    default_service = "org.freedesktop.NetworkManager"
)]
pub trait VpnConnection {
    /// VPN state.
    #[zbus(property)]
    fn vpn_state(&self) -> zbus::Result<u32>;
    /// VPN state changes.
    #[zbus(signal, name = "VpnStateChanged")]
    fn vpn_state_signal(&self, state: u32, reason: u32) -> zbus::Result<()>;
}
