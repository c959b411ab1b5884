//! One family's IP configuration, as IP4Config/IP6Config show it.

use std::net::IpAddr;

use crate::netlink::RouteEntry;
use crate::netlink::links::LinkAddr;

/// One family's IP configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpData {
    /// Addresses.
    pub addrs: Vec<LinkAddr>,
    /// Gateway of the default route: `""` none, `"0.0.0.0"`/`"::"` a default route without one.
    pub gateway: String,
    /// Routes.
    pub routes: Vec<RouteEntry>,
    /// Name servers.
    pub nameservers: Vec<IpAddr>,
    /// DNS domains.
    pub domains: Vec<String>,
    /// DNS search list.
    pub searches: Vec<String>,
    /// DNS priority (50 for a VPN, 100 for other devices with DNS, else 0).
    pub dns_priority: i32,
}
