//! What a wired base connection puts in the kernel (spec BASE-CONNECTIONS.md §7): its
//! addresses (`noprefixroute`, with the lease's lifetimes when they come from DHCP), the
//! prefix routes and the default route at the connection's metric, and its static routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressScope, CacheInfo,
};
use netlink_packet_route::route::RouteProtocol;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST};
use rtnetlink::packet_route::RouteNetlinkMessage;
use tinynm_config::profile::{Family, StaticRoute};

use super::plan::{LinkSetup, Plan, RouteSpec, network, route};
use super::{Applied, Netlink, NetlinkError};

/// One family of a base connection's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseIp {
    /// Which family.
    pub family: Family,
    /// Addresses with their prefixes.
    pub addresses: Vec<(IpAddr, u8)>,
    /// The default gateway, if any (no default route without one).
    pub gateway: Option<IpAddr>,
    /// Static routes (a route's own metric, else the connection's).
    pub routes: Vec<StaticRoute>,
    /// The connection's route metric (100 for ethernet by default).
    pub metric: u32,
    /// No default route.
    pub never_default: bool,
    /// Lease lifetime in seconds (DHCP); `None`: forever.
    pub lifetime: Option<u32>,
    /// The routes came from DHCP (`proto dhcp`) rather than the profile (`proto static`).
    pub dhcp: bool,
}

impl BaseIp {
    /// Whether this family gives the link a default route.
    pub fn takes_default(&self) -> bool {
        self.gateway.is_some() && !self.never_default
    }
}

/// An address message for a base connection's address.
pub fn base_address(ifindex: u32, a: IpAddr, prefix: u8, lifetime: Option<u32>) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.index = ifindex;
    m.header.prefix_len = prefix;
    m.header.scope = AddressScope::Universe;
    if let IpAddr::V4(v4) = a {
        m.attributes.push(AddressAttribute::Local(a));
        if prefix < 31 {
            let bcast = u32::from(v4) | (u32::MAX >> prefix);
            m.attributes
                .push(AddressAttribute::Broadcast(Ipv4Addr::from(bcast)));
        }
    }
    m.attributes.push(AddressAttribute::Address(a));
    m.attributes
        .push(AddressAttribute::Flags(AddressFlags::Noprefixroute));
    if let Some(l) = lifetime {
        let mut c = CacheInfo::default();
        c.ifa_preferred = l;
        c.ifa_valid = l;
        m.attributes.push(AddressAttribute::CacheInfo(c));
    }
    m
}

/// The plan of a base connection on link `ifindex`: the link up (with the MTU), then the
/// addresses, then the routes.
pub fn base_plan(ifindex: u32, mtu: Option<u32>, fams: &[BaseIp]) -> Plan {
    let mut plan = Plan {
        links: vec![LinkSetup {
            index: ifindex,
            mtu,
        }],
        ..Default::default()
    };
    let mut routes = Vec::new();
    for b in fams {
        for (a, l) in &b.addresses {
            plan.addresses
                .push(Applied::Address(base_address(ifindex, *a, *l, b.lifetime)));
            if *l < b.family.max_prefix() {
                routes.push(RouteSpec {
                    shared: false,
                    table: 0,
                    unreachable: false,
                    dest: network(*a, *l),
                    prefix: *l,
                    gateway: None,
                    oif: ifindex,
                    metric: b.metric,
                    protocol: RouteProtocol::Kernel,
                    pref_src: a.is_ipv4().then_some(*a),
                });
            }
        }
        let protocol = if b.dhcp {
            RouteProtocol::Dhcp
        } else {
            RouteProtocol::Static
        };
        for r in &b.routes {
            routes.push(RouteSpec {
                shared: false,
                table: 0,
                unreachable: false,
                dest: r.dest,
                prefix: r.prefix,
                gateway: r.next_hop,
                oif: ifindex,
                metric: r.metric.unwrap_or(b.metric),
                protocol,
                pref_src: None,
            });
        }
        if let Some(g) = b.gateway.filter(|_| b.takes_default()) {
            let any = match b.family {
                Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            routes.push(RouteSpec {
                shared: false,
                table: 0,
                unreachable: false,
                dest: any,
                prefix: 0,
                gateway: Some(g),
                oif: ifindex,
                metric: b.metric,
                protocol,
                pref_src: b.addresses.first().map(|(a, _)| *a).filter(|a| a.is_ipv4()),
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    plan.routes = routes
        .into_iter()
        .filter(|r| seen.insert((r.dest, r.prefix, r.metric)))
        .map(|r| Applied::Route(route(r)))
        .collect();
    plan
}

impl Netlink {
    /// Gives addresses that are already ours fresh lifetimes (a renewed DHCP lease), as NM
    /// does: the same address added again with NLM_F_REPLACE.
    pub async fn refresh_addresses(&self, msgs: &[AddressMessage]) -> Result<(), NetlinkError> {
        let reqs: Vec<RouteNetlinkMessage> = msgs
            .iter()
            .cloned()
            .map(RouteNetlinkMessage::NewAddress)
            .collect();
        let failed = self
            .batch(&reqs, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE)
            .await?;
        match failed.into_iter().next() {
            None => Ok(()),
            Some((_, e)) => Err(NetlinkError::Kernel {
                op: "renew an address's lifetime".into(),
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_uplink_has_its_address_prefix_route_and_default_route_at_its_metric() {
        let b = BaseIp {
            family: Family::V4,
            addresses: vec![("10.230.0.10".parse().unwrap(), 24)],
            gateway: Some("10.230.0.1".parse().unwrap()),
            routes: vec![],
            metric: 100,
            never_default: false,
            lifetime: None,
            dhcp: false,
        };
        let p = base_plan(2, Some(1400), std::slice::from_ref(&b));
        assert_eq!(
            p.links,
            vec![LinkSetup {
                index: 2,
                mtu: Some(1400)
            }]
        );
        assert_eq!(p.addresses.len(), 1);
        assert_eq!(p.routes.len(), 2);
        let never = BaseIp {
            never_default: true,
            ..b
        };
        assert_eq!(base_plan(2, None, &[never]).routes.len(), 1);
    }
}
