//! The daemon's side of the protocol: a proxy for `org.freedesktop.NetworkManager.VPN.Plugin`.

use std::collections::HashMap;

use tinynm_config::dbus::SettingsDict;
use zbus::OwnedVariant;

/// `org.freedesktop.NetworkManager.VPN.Plugin` at its fixed path.
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.VPN.Plugin",
    default_path = "/org/freedesktop/NetworkManager/VPN/Plugin"
)]
pub trait VpnPlugin {
    /// Start the VPN; no interactive secrets.
    fn connect(&self, connection: SettingsDict) -> zbus::Result<()>;

    /// Start the VPN; the plugin may emit `SecretsRequired`.
    fn connect_interactive(
        &self,
        connection: SettingsDict,
        details: HashMap<String, OwnedVariant>,
    ) -> zbus::Result<()>;

    /// Which setting still lacks secrets (`""`: none).
    fn need_secrets(&self, settings: SettingsDict) -> zbus::Result<String>;

    /// Stop the VPN.
    fn disconnect(&self) -> zbus::Result<()>;

    /// Answer to `SecretsRequired`.
    fn new_secrets(&self, connection: SettingsDict) -> zbus::Result<()>;

    /// Called by a plugin's helper.
    fn set_config(&self, config: HashMap<String, OwnedVariant>) -> zbus::Result<()>;

    /// Called by a plugin's helper.
    fn set_ip4_config(&self, config: HashMap<String, OwnedVariant>) -> zbus::Result<()>;

    /// Called by a plugin's helper.
    fn set_ip6_config(&self, config: HashMap<String, OwnedVariant>) -> zbus::Result<()>;

    /// Called by a plugin's helper.
    fn set_failure(&self, reason: &str) -> zbus::Result<()>;

    /// `NMVpnServiceState`.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<u32>;

    /// The service state changed.
    #[zbus(signal, name = "StateChanged")]
    fn state_signal(&self, state: u32) -> zbus::Result<()>;

    /// Generic config.
    #[zbus(signal)]
    fn config(&self, config: HashMap<String, OwnedVariant>) -> zbus::Result<()>;

    /// IPv4 config.
    #[zbus(signal)]
    fn ip4_config(&self, ip4config: HashMap<String, OwnedVariant>) -> zbus::Result<()>;

    /// IPv6 config.
    #[zbus(signal)]
    fn ip6_config(&self, ip6config: HashMap<String, OwnedVariant>) -> zbus::Result<()>;

    /// `NMVpnPluginFailure`.
    #[zbus(signal)]
    fn failure(&self, reason: u32) -> zbus::Result<()>;

    /// More secrets are needed while connecting.
    #[zbus(signal)]
    fn secrets_required(&self, message: String, secrets: Vec<String>) -> zbus::Result<()>;
}
