//! The VPN connection's states and NM's rules for them, as pure functions.

use tinynm_config::nm::{AcState, PluginFailure, Reason, ServiceState, VpnState};

/// NM's internal VPN states (spec §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The object exists; nothing started.
    Waiting,
    /// Looking for / starting the plugin.
    Prepare,
    /// Secrets.
    NeedAuth,
    /// `Connect` sent.
    Connect,
    /// Config being received.
    IpConfigGet,
    /// Config being applied.
    PreUp,
    /// Up.
    Activated,
    /// Going down at the user's request.
    Deactivating,
    /// Down, cleanly.
    Disconnected,
    /// Down, on an error.
    Failed,
}

impl Phase {
    /// How the phase shows on D-Bus: (Connection.Active.State, VPN.Connection.VpnState).
    pub fn external(self) -> (AcState, VpnState) {
        match self {
            Phase::Waiting | Phase::Prepare => (AcState::Activating, VpnState::Prepare),
            Phase::NeedAuth => (AcState::Activating, VpnState::NeedAuth),
            Phase::Connect => (AcState::Activating, VpnState::Connect),
            Phase::IpConfigGet | Phase::PreUp => (AcState::Activating, VpnState::IpConfigGet),
            Phase::Activated => (AcState::Activated, VpnState::Activated),
            // The API has no deactivating VPN state.
            Phase::Deactivating => (AcState::Deactivating, VpnState::Activated),
            Phase::Disconnected => (AcState::Deactivated, VpnState::Disconnected),
            Phase::Failed => (AcState::Deactivated, VpnState::Failed),
        }
    }
}

/// How a connection ends: its final phase and NM's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// `Failed` or `Disconnected`.
    pub phase: Phase,
    /// The reason sent with the final state.
    pub reason: Reason,
}

impl End {
    /// Ends in FAILED.
    pub fn failed(reason: Reason) -> End {
        End {
            phase: Phase::Failed,
            reason,
        }
    }

    /// Ends in DISCONNECTED.
    pub fn disconnected(reason: Reason) -> End {
        End {
            phase: Phase::Disconnected,
            reason,
        }
    }
}

/// What NM records from a plugin's `Failure` signal, for a later STOPPED (spec §4.3).
pub fn failure_reason(failure: u32) -> Reason {
    match failure {
        x if x == PluginFailure::LoginFailed as u32 => Reason::LoginFailed,
        x if x == PluginFailure::BadIpConfig as u32 => Reason::IpConfigInvalid,
        _ => Reason::Unknown,
    }
}

/// What a plugin's `StateChanged` means while the connection is in `phase`.
pub fn on_service_state(phase: Phase, state: u32, last_failure: Option<Reason>) -> Option<End> {
    let running = phase >= Phase::Prepare && phase <= Phase::Activated;
    if running && ServiceState::from_u32(state) == ServiceState::Stopped {
        return Some(End::failed(last_failure.unwrap_or(Reason::Unknown)));
    }
    None
}

/// A plugin's bus name lost its owner (or changed it): NM ends with SERVICE_STOPPED.
pub fn on_name_vanished() -> End {
    End::disconnected(Reason::ServiceStopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nm_cheat_sheet() {
        // spec §7
        let f = Some(failure_reason(PluginFailure::LoginFailed as u32));
        assert_eq!(
            on_service_state(Phase::Connect, 6, f),
            Some(End::failed(Reason::LoginFailed))
        );
        let f = Some(failure_reason(PluginFailure::ConnectFailed as u32));
        assert_eq!(
            on_service_state(Phase::Connect, 6, f),
            Some(End::failed(Reason::Unknown))
        );
        let f = Some(failure_reason(PluginFailure::BadIpConfig as u32));
        assert_eq!(
            on_service_state(Phase::Activated, 6, f),
            Some(End::failed(Reason::IpConfigInvalid))
        );
        assert_eq!(
            on_service_state(Phase::Connect, 6, None),
            Some(End::failed(Reason::Unknown))
        );
        assert_eq!(on_service_state(Phase::Connect, 4, None), None);
        assert_eq!(on_service_state(Phase::Disconnected, 6, None), None);
        assert_eq!(
            on_name_vanished(),
            End::disconnected(Reason::ServiceStopped)
        );
    }

    #[test]
    fn external_states() {
        assert_eq!(
            Phase::PreUp.external(),
            (AcState::Activating, VpnState::IpConfigGet)
        );
        assert_eq!(
            Phase::Deactivating.external(),
            (AcState::Deactivating, VpnState::Activated)
        );
        assert_eq!(
            Phase::Failed.external(),
            (AcState::Deactivated, VpnState::Failed)
        );
    }
}
