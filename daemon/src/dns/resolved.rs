//! The `resolved` backend: systemd-resolved's per-link DNS over D-Bus.

use std::net::IpAddr;

use super::{DnsEntry, DnsError};

/// systemd-resolved's calls for `entries`: per link its servers, its domains (search domains,
/// and routing-only `~` domains for a VPN without the default route, so that only its own
/// names go to it) and the default-route flag; links that no longer have an entry are reverted.
pub async fn apply(
    conn: &zbus::Connection,
    entries: &[DnsEntry],
    before: &[DnsEntry],
) -> Result<(), DnsError> {
    const DEST: &str = "org.freedesktop.resolve1";
    const PATH: &str = "/org/freedesktop/resolve1";
    const IFACE: &str = "org.freedesktop.resolve1.Manager";
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
        for (member, r) in [
            (
                "SetLinkDNS",
                conn.call_method(
                    Some(DEST),
                    PATH,
                    Some(IFACE),
                    "SetLinkDNS",
                    &(index, &servers),
                )
                .await,
            ),
            (
                "SetLinkDomains",
                conn.call_method(
                    Some(DEST),
                    PATH,
                    Some(IFACE),
                    "SetLinkDomains",
                    &(index, &domains),
                )
                .await,
            ),
            (
                "SetLinkDefaultRoute",
                conn.call_method(
                    Some(DEST),
                    PATH,
                    Some(IFACE),
                    "SetLinkDefaultRoute",
                    &(index, e.default_route),
                )
                .await,
            ),
        ] {
            r.map_err(|source| DnsError::Resolved {
                call: member,
                iface: e.iface.clone(),
                source,
            })?;
        }
    }
    for gone in before
        .iter()
        .filter(|b| b.ifindex != 0 && !entries.iter().any(|e| e.ifindex == b.ifindex))
    {
        // The link may be gone already, and resolved with it: not an error worth more.
        if let Err(err) = conn
            .call_method(
                Some(DEST),
                PATH,
                Some(IFACE),
                "RevertLink",
                &(gone.ifindex as i32),
            )
            .await
        {
            tracing::debug!("systemd-resolved RevertLink for {}: {err}", gone.iface);
        }
    }
    Ok(())
}

fn libc_af(v6: bool) -> i32 {
    if v6 { 10 } else { 2 }
}
