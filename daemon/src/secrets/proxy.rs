//! `org.freedesktop.NetworkManager.SecretAgent`, as tinynmd calls it on each agent.

use tinynm_config::dbus::SettingsDict;
use zbus::OwnedObjectPath;

/// An agent, at the unique name it registered from.
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.SecretAgent",
    default_path = "/org/freedesktop/NetworkManager/SecretAgent"
)]
pub trait SecretAgent {
    /// Asks for a setting's secrets.
    fn get_secrets(
        &self,
        connection: &SettingsDict,
        connection_path: &OwnedObjectPath,
        setting_name: &str,
        hints: &[String],
        flags: u32,
    ) -> zbus::Result<SettingsDict>;

    /// The request for these secrets is over.
    fn cancel_get_secrets(
        &self,
        connection_path: &OwnedObjectPath,
        setting_name: &str,
    ) -> zbus::Result<()>;

    /// Keep these (agent-owned) secrets.
    fn save_secrets(
        &self,
        connection: &SettingsDict,
        connection_path: &OwnedObjectPath,
    ) -> zbus::Result<()>;

    /// Forget this profile's secrets.
    fn delete_secrets(
        &self,
        connection: &SettingsDict,
        connection_path: &OwnedObjectPath,
    ) -> zbus::Result<()>;
}

/// The proxy of the agent at `sender` (never auto-started, as NM calls it).
pub async fn to(conn: &zbus::Connection, sender: &str) -> zbus::Result<SecretAgentProxy<'static>> {
    SecretAgentProxy::builder(conn)
        .destination(sender.to_string())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}
