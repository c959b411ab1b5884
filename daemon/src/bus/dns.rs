//! `org.freedesktop.NetworkManager.DnsManager`: what DNS configuration is in force.

use std::collections::HashMap;

use zbus::OwnedVariant;

/// What the core publishes.
#[derive(Debug, Clone, Default)]
pub struct DnsSnapshot {
    /// `default` (tinynmd writes resolv.conf) or `none`.
    pub mode: String,
    /// `file` or `unmanaged`.
    pub rc_manager: String,
    /// The entries in force.
    pub entries: Vec<crate::dns::DnsEntry>,
}

/// The DnsManager object: what is in force.
pub struct DnsManagerView {
    /// The core's snapshot.
    pub snap: tokio::sync::watch::Receiver<DnsSnapshot>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.DnsManager")]
impl DnsManagerView {
    #[zbus(property)]
    fn mode(&self) -> String {
        self.snap.borrow().mode.clone()
    }

    #[zbus(property)]
    fn rc_manager(&self) -> String {
        self.snap.borrow().rc_manager.clone()
    }

    #[zbus(property)]
    fn configuration(&self) -> Vec<HashMap<String, OwnedVariant>> {
        crate::dns::configuration(&self.snap.borrow().entries)
    }
}
