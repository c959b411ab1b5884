//! The DNS configuration in force, as the core publishes it.

/// What the core publishes.
#[derive(Debug, Clone, Default)]
pub struct DnsSnapshot {
    /// `default` (tinynmd writes resolv.conf) or `none`.
    pub mode: String,
    /// `file` or `unmanaged`.
    pub rc_manager: String,
    /// The entries in force.
    pub entries: Vec<crate::dns::DnsEntry>,
    /// Why the last change could not be put in force (empty: it was).
    pub error: String,
}
