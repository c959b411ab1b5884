//! `org.freedesktop.NetworkManager.DnsManager`: what DNS configuration is in force.

use std::collections::HashMap;

use zbus::OwnedVariant;

use crate::state::DnsSnapshot;

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
        configuration(&self.snap.borrow().entries)
    }
}

/// tinynm's own interface beside the DnsManager (NM has no such property): why the DNS of the
/// last change is not in force, e.g. a read-only resolv.conf.
pub struct DnsStatusView {
    /// The core's snapshot.
    pub snap: tokio::sync::watch::Receiver<DnsSnapshot>,
}

#[zbus::interface(name = "org.tinynm.DnsManager")]
impl DnsStatusView {
    /// Empty when the DNS in `Configuration` is in force; else what failed.
    #[zbus(property)]
    fn error(&self) -> String {
        self.snap.borrow().error.clone()
    }
}

/// DnsManager's `Configuration`: one dict per entry in force.
pub fn configuration(entries: &[crate::dns::DnsEntry]) -> Vec<HashMap<String, OwnedVariant>> {
    let ov = |v: zbus::Variant<'_>| v.try_into_owned().expect("no fds");
    crate::dns::in_force(entries)
        .iter()
        .map(|e| {
            HashMap::from([
                (
                    "nameservers".to_string(),
                    ov(zbus::Variant::from(
                        e.servers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    )),
                ),
                (
                    "domains".to_string(),
                    ov(zbus::Variant::from(e.domains.clone())),
                ),
                (
                    "interface".to_string(),
                    ov(zbus::Variant::from(e.iface.clone())),
                ),
                ("priority".to_string(), ov(zbus::Variant::from(e.priority))),
                ("vpn".to_string(), ov(zbus::Variant::from(e.vpn))),
            ])
        })
        .collect()
}
