//! What tinynmd does to keep VPNs up, as the core publishes it (tinynm's own
//! `org.tinynm.Settings`, beside NM's Settings).

use std::collections::BTreeMap;

/// One VPN waiting for its next try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTry {
    /// Tries made so far.
    pub tries: u32,
    /// When the next try starts: microseconds since the epoch (CLOCK_REALTIME).
    pub at_usec: u64,
    /// Why the last activation ended, as nmcli words it.
    pub reason: String,
}

/// The VPNs being brought back, and those that will not come up by themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepUpSnapshot {
    /// By profile UUID.
    pub reconnects: BTreeMap<String, PendingTry>,
    /// UUIDs of `tinynm-autoconnect` VPNs held down: the user took them down, or they failed
    /// for a reason another try cannot change. Activating one by hand lifts it.
    pub blocked: Vec<String>,
    /// UUIDs of the VPNs holding the kill switch.
    pub kill_switch: Vec<String>,
    /// `[firewall] lockdown`: the kill switch is on whatever is up.
    pub lockdown: bool,
    /// Why the kill switch could not be put in force, or empty.
    pub kill_switch_error: String,
}
