//! The `resolved` backend: systemd-resolved's per-link DNS over D-Bus.

use std::net::IpAddr;

use super::{DnsEntry, DnsError};

/// `org.freedesktop.resolve1.Manager`, the calls tinynmd makes.
#[zbus::proxy(
    interface = "org.freedesktop.resolve1.Manager",
    default_service = "org.freedesktop.resolve1",
    default_path = "/org/freedesktop/resolve1"
)]
trait Resolve1 {
    #[zbus(name = "SetLinkDNS")]
    fn set_link_dns(&self, ifindex: i32, addresses: &[(i32, Vec<u8>)]) -> zbus::Result<()>;
    fn set_link_domains(&self, ifindex: i32, domains: &[(String, bool)]) -> zbus::Result<()>;
    fn set_link_default_route(&self, ifindex: i32, enable: bool) -> zbus::Result<()>;
    fn revert_link(&self, ifindex: i32) -> zbus::Result<()>;
}

/// systemd-resolved's calls for `entries`: per link its servers, its domains (search domains,
/// and routing-only `~` domains for a VPN without the default route, so that only its own
/// names go to it) and the default-route flag; links that no longer have an entry are reverted.
pub async fn apply(
    conn: &zbus::Connection,
    entries: &[DnsEntry],
    before: &[DnsEntry],
) -> Result<(), DnsError> {
    let err = |call: &'static str, e: &DnsEntry| {
        let iface = e.iface.clone();
        move |source| DnsError::Resolved {
            call,
            iface,
            source,
        }
    };
    let resolved = Resolve1Proxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|source| DnsError::Resolved {
            call: "(proxy)",
            iface: String::new(),
            source,
        })?;
    for e in entries.iter().filter(|e| e.ifindex != 0) {
        let index = e.ifindex as i32;
        let servers: Vec<(i32, Vec<u8>)> = e
            .servers
            .iter()
            .map(|s| match s {
                IpAddr::V4(a) => (libc_af(false), a.octets().to_vec()),
                IpAddr::V6(a) => (libc_af(true), a.octets().to_vec()),
            })
            .collect();
        let domains: Vec<(String, bool)> = e
            .domains
            .iter()
            .map(|d| (d.clone(), !e.default_route))
            .collect();
        resolved
            .set_link_dns(index, &servers)
            .await
            .map_err(err("SetLinkDNS", e))?;
        resolved
            .set_link_domains(index, &domains)
            .await
            .map_err(err("SetLinkDomains", e))?;
        resolved
            .set_link_default_route(index, e.default_route)
            .await
            .map_err(err("SetLinkDefaultRoute", e))?;
    }
    for gone in before
        .iter()
        .filter(|b| b.ifindex != 0 && !entries.iter().any(|e| e.ifindex == b.ifindex))
    {
        // The link may be gone already, and resolved with it: not an error worth more.
        if let Err(e) = resolved.revert_link(gone.ifindex as i32).await {
            tracing::debug!("systemd-resolved RevertLink for {}: {e}", gone.iface);
        }
    }
    Ok(())
}

fn libc_af(v6: bool) -> i32 {
    if v6 { 10 } else { 2 }
}
