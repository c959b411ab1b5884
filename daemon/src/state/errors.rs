//! NM's D-Bus errors, as the core answers the views' commands with them.

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

/// Errors of the Device interface (`NMDeviceError`).
#[allow(missing_docs)]
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager.Device")]
pub enum DeviceError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    PermissionDenied(String),
    NotActive(String),
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
