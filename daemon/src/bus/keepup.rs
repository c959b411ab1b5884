//! `org.tinynm.Settings`: tinynm's own interface beside NM's Settings (NM has no such
//! properties): the VPNs tinynmd is bringing back, the self-starting VPNs it holds down, and
//! the kill switch.

use std::collections::HashMap;

use crate::state::KeepUpSnapshot;

/// tinynm's settings interface, at `/org/tinynm/Settings` (outside the tree libnm watches).
pub struct KeepUpView {
    /// The core's snapshot.
    pub snap: tokio::sync::watch::Receiver<KeepUpSnapshot>,
}

#[zbus::interface(name = "org.tinynm.Settings")]
impl KeepUpView {
    /// Profile UUID → (tries so far, when the next starts in µs since the epoch, why the last
    /// ended) of each VPN waiting to be activated again.
    #[zbus(property)]
    fn reconnects(&self) -> HashMap<String, (u32, u64, String)> {
        self.snap
            .borrow()
            .reconnects
            .iter()
            .map(|(u, p)| (u.clone(), (p.tries, p.at_usec, p.reason.clone())))
            .collect()
    }

    /// UUIDs of the `tinynm-autoconnect` VPNs that will not come up by themselves until
    /// activated by hand.
    #[zbus(property)]
    fn autoconnect_blocked(&self) -> Vec<String> {
        self.snap.borrow().blocked.clone()
    }

    /// UUIDs of the VPNs that hold the kill switch (`tinynm-kill-switch`, or any VPN under
    /// lockdown): activating, up, or down without the user asking.
    #[zbus(property)]
    fn kill_switch(&self) -> Vec<String> {
        self.snap.borrow().kill_switch.clone()
    }

    /// daemon.toml's `[firewall] lockdown`: the switch is on whatever is up.
    #[zbus(property)]
    fn lockdown(&self) -> bool {
        self.snap.borrow().lockdown
    }

    /// Why the kill switch could not be put in force (the kernel's words), or empty.
    #[zbus(property)]
    fn kill_switch_error(&self) -> String {
        self.snap.borrow().kill_switch_error.clone()
    }
}
