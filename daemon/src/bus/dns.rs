//! `org.freedesktop.NetworkManager.DnsManager`: what DNS configuration is in force.

use std::collections::HashMap;

use zbus::OwnedVariant;

/// The DnsManager object. tinynmd does not manage resolvers yet, and says so: mode `none`,
/// resolv.conf `unmanaged`, no configuration in force.
pub struct DnsManagerView;

#[zbus::interface(name = "org.freedesktop.NetworkManager.DnsManager")]
impl DnsManagerView {
    #[zbus(property)]
    fn mode(&self) -> String {
        "none".into()
    }

    #[zbus(property)]
    fn rc_manager(&self) -> String {
        "unmanaged".into()
    }

    #[zbus(property)]
    fn configuration(&self) -> Vec<HashMap<String, OwnedVariant>> {
        Vec::new()
    }
}
