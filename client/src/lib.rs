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
    /// State changes.
    #[zbus(signal, name = "StateChanged")]
    fn state_signal(&self, state: u32, reason: u32) -> zbus::Result<()>;
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
