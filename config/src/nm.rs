//! NetworkManager 1.42's enum values (spec/headers), as tinynm uses them on the wire.

/// `NMVpnConnectionState`: the `VpnState` property and `VpnStateChanged` signal.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum VpnState {
    Unknown = 0,
    Prepare = 1,
    NeedAuth = 2,
    Connect = 3,
    IpConfigGet = 4,
    Activated = 5,
    Failed = 6,
    Disconnected = 7,
}

/// `NMActiveConnectionState`: `Connection.Active.State`.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AcState {
    Unknown = 0,
    Activating = 1,
    Activated = 2,
    Deactivating = 3,
    Deactivated = 4,
}

/// `NMActiveConnectionStateReason`, which NM 1.42 sends in both `VpnStateChanged` and
/// `Connection.Active.StateChanged`.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Reason {
    Unknown = 0,
    None = 1,
    UserDisconnected = 2,
    DeviceDisconnected = 3,
    ServiceStopped = 4,
    IpConfigInvalid = 5,
    ConnectTimeout = 6,
    ServiceStartTimeout = 7,
    ServiceStartFailed = 8,
    NoSecrets = 9,
    LoginFailed = 10,
    ConnectionRemoved = 11,
    DependencyFailed = 12,
    DeviceRealizeFailed = 13,
    DeviceRemoved = 14,
}

impl Reason {
    /// The text nmcli 1.42 prints after "Connection activation failed: ".
    pub fn nmcli_text(self) -> &'static str {
        match self {
            Reason::Unknown => "Unknown reason",
            Reason::None => "No reason given",
            Reason::UserDisconnected => "Disconnected by user",
            Reason::DeviceDisconnected => "The base network connection was interrupted",
            Reason::ServiceStopped => "The VPN service stopped unexpectedly",
            Reason::IpConfigInvalid => "The VPN service returned invalid configuration",
            Reason::ConnectTimeout => "The connection attempt timed out",
            Reason::ServiceStartTimeout => "The VPN service did not start in time",
            Reason::ServiceStartFailed => "The VPN service failed to start",
            Reason::NoSecrets => "No valid secrets",
            Reason::LoginFailed => "Invalid secrets",
            Reason::ConnectionRemoved => "The connection was removed",
            Reason::DependencyFailed => "Master connection failed",
            Reason::DeviceRealizeFailed => "Could not create a software link",
            Reason::DeviceRemoved => "The device disappeared",
        }
    }

    /// The reason for a wire value; unknown values map to `Unknown`.
    pub fn from_u32(v: u32) -> Reason {
        use Reason::*;
        [
            Unknown,
            None,
            UserDisconnected,
            DeviceDisconnected,
            ServiceStopped,
            IpConfigInvalid,
            ConnectTimeout,
            ServiceStartTimeout,
            ServiceStartFailed,
            NoSecrets,
            LoginFailed,
            ConnectionRemoved,
            DependencyFailed,
            DeviceRealizeFailed,
            DeviceRemoved,
        ]
        .get(v as usize)
        .copied()
        .unwrap_or(Unknown)
    }
}

impl VpnState {
    /// The state for a wire value; unknown values map to `Unknown`.
    pub fn from_u32(v: u32) -> VpnState {
        use VpnState::*;
        [
            Unknown,
            Prepare,
            NeedAuth,
            Connect,
            IpConfigGet,
            Activated,
            Failed,
            Disconnected,
        ]
        .get(v as usize)
        .copied()
        .unwrap_or(Unknown)
    }

    /// Name as NM's header spells it (without the prefix).
    pub fn name(self) -> &'static str {
        match self {
            VpnState::Unknown => "UNKNOWN",
            VpnState::Prepare => "PREPARE",
            VpnState::NeedAuth => "NEED_AUTH",
            VpnState::Connect => "CONNECT",
            VpnState::IpConfigGet => "IP_CONFIG_GET",
            VpnState::Activated => "ACTIVATED",
            VpnState::Failed => "FAILED",
            VpnState::Disconnected => "DISCONNECTED",
        }
    }
}

/// `NMVpnServiceState`: the plugin's `State` property and `StateChanged` signal.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ServiceState {
    Unknown = 0,
    Init = 1,
    Shutdown = 2,
    Starting = 3,
    Started = 4,
    Stopping = 5,
    Stopped = 6,
}

impl ServiceState {
    /// The state for a wire value; unknown values map to `Unknown`.
    pub fn from_u32(v: u32) -> ServiceState {
        use ServiceState::*;
        [
            Unknown, Init, Shutdown, Starting, Started, Stopping, Stopped,
        ]
        .get(v as usize)
        .copied()
        .unwrap_or(Unknown)
    }
}

/// `NMVpnPluginFailure`: the plugin's `Failure` signal.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PluginFailure {
    LoginFailed = 0,
    ConnectFailed = 1,
    BadIpConfig = 2,
}

/// `NMState`: the Manager's `State` property.
pub mod nm_state {
    /// NM_STATE_CONNECTED_GLOBAL
    pub const CONNECTED_GLOBAL: u32 = 70;
    /// NM_STATE_CONNECTED_SITE
    pub const CONNECTED_SITE: u32 = 60;
    /// NM_STATE_DISCONNECTED
    pub const DISCONNECTED: u32 = 20;
}

/// The default metric of VPN routes (`NM_VPN_ROUTE_METRIC_DEFAULT`).
pub const VPN_ROUTE_METRIC_DEFAULT: u32 = 50;
/// The default `vpn.timeout` in seconds.
pub const VPN_TIMEOUT_DEFAULT_SECS: u32 = 60;
/// The version tinynmd reports as `Version` (the NM API level it speaks).
pub const NM_API_VERSION: &str = "1.42.4";
