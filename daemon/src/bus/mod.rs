//! Thin D-Bus views. They read snapshots and send commands; they hold no logic of their own.

pub mod active;
pub mod agent;
pub mod device;
pub mod dns;
pub mod ipconfig;
pub mod manager;
pub mod objects;
pub mod settings;

use std::collections::HashMap;

use zbus::Variant;
use zbus::object_server::SignalEmitter;

/// NM's well-known bus name.
pub const NM_NAME: &str = "org.freedesktop.NetworkManager";
/// The Manager object.
pub const NM_PATH: &str = "/org/freedesktop/NetworkManager";
/// The Settings object.
pub const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
/// The DnsManager object.
pub const DNS_PATH: &str = "/org/freedesktop/NetworkManager/DnsManager";
/// Where devices live.
pub const DEVICE_PREFIX: &str = "/org/freedesktop/NetworkManager/Devices";
/// Where IPv4 configs live.
pub const IP4_PREFIX: &str = "/org/freedesktop/NetworkManager/IP4Config";
/// Where IPv6 configs live.
pub const IP6_PREFIX: &str = "/org/freedesktop/NetworkManager/IP6Config";
/// Where active connections live.
pub const AC_PREFIX: &str = "/org/freedesktop/NetworkManager/ActiveConnection";

/// Errors of the `org.freedesktop.NetworkManager` interface (`NMManagerError`).
#[allow(missing_docs)]
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager")]
pub enum NmError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    PermissionDenied(String),
    UnknownConnection(String),
    UnknownDevice(String),
    ConnectionNotAvailable(String),
    ConnectionNotActive(String),
    ConnectionAlreadyActive(String),
    DependencyFailed(String),
    InvalidArguments(String),
    MissingPlugin(String),
}

/// Errors of the Settings interfaces (`NMSettingsError`).
#[allow(missing_docs)]
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager.Settings")]
pub enum SettingsError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    PermissionDenied(String),
    NotSupported(String),
    InvalidConnection(String),
    ReadOnlyConnection(String),
    UuidExists(String),
    InvalidArguments(String),
}

impl From<tokio::sync::oneshot::error::RecvError> for NmError {
    fn from(_: tokio::sync::oneshot::error::RecvError) -> Self {
        NmError::Failed("tinynmd is shutting down".into())
    }
}

impl From<tokio::sync::oneshot::error::RecvError> for SettingsError {
    fn from(_: tokio::sync::oneshot::error::RecvError) -> Self {
        SettingsError::Failed("tinynmd is shutting down".into())
    }
}

/// The caller's uid, from the bus.
pub async fn caller_uid(
    conn: &zbus::Connection,
    hdr: &zbus::message::Header<'_>,
) -> Result<u32, zbus::Error> {
    let Some(sender) = hdr.sender() else {
        // A peer-to-peer connection has no bus to ask: it is our own process.
        return Ok(nix::unistd::getuid().as_raw());
    };
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    Ok(dbus.get_connection_unix_user(sender.clone().into()).await?)
}

/// Emits `PropertiesChanged` with values for several properties of one interface.
pub async fn properties_changed(
    conn: &zbus::Connection,
    path: &str,
    iface: &str,
    props: Vec<(&str, Variant<'_>)>,
) -> zbus::Result<()> {
    let e = SignalEmitter::new(conn, path)?;
    let changed: HashMap<&str, Variant<'_>> = props.into_iter().collect();
    zbus::fdo::Properties::properties_changed(
        &e,
        iface.try_into()?,
        changed,
        std::borrow::Cow::Borrowed(&[]),
    )
    .await
}
