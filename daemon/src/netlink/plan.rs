//! What NM applies for a VPN config (spec §5.5), computed without touching the kernel.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::route::RouteProtocol;

use super::route::Route;
use tinynm_config::Profile;
use tinynm_config::nm::VPN_ROUTE_METRIC_DEFAULT;
use tinynm_config::profile::{Family, IpMethod, IpSection};
use tinynm_vpn_plugin::wire::{GenericConfig, IpConfig};

use super::{Applied, Lookup};

/// A link to bring up, with the MTU to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSetup {
    /// ifindex
    pub index: u32,
    /// MTU to set, if any.
    pub mtu: Option<u32>,
}

/// Everything one activation will put in the kernel.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Links to bring up first.
    pub links: Vec<LinkSetup>,
    /// Addresses, added after the links.
    pub addresses: Vec<Applied>,
    /// Routes, added last.
    pub routes: Vec<Applied>,
    /// Policy routing rules.
    pub rules: Vec<Applied>,
}

/// The facts a plan is computed from.
pub struct Inputs<'a> {
    /// The activated profile.
    pub profile: &'a Profile,
    /// The plugin's `Config`.
    pub generic: &'a GenericConfig,
    /// The plugin's IPv4 config, if the family is enabled.
    pub ip4: Option<&'a IpConfig>,
    /// The plugin's IPv6 config, if the family is enabled.
    pub ip6: Option<&'a IpConfig>,
    /// The interface the config goes on (`tundev`, else the parent).
    pub ifindex: u32,
    /// Whether that interface is the VPN's own (not the parent).
    pub own_interface: bool,
    /// How the kernel reaches the external gateway now.
    pub gateway_route: Option<Lookup>,
}

/// The metric of every route of a VPN: `ipvX.route-metric` when set, else 50.
pub fn vpn_metric(s: &IpSection) -> u32 {
    if s.route_metric >= 0 {
        s.route_metric as u32
    } else {
        VPN_ROUTE_METRIC_DEFAULT
    }
}

fn is_private(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_private() || v.is_loopback() || v.is_link_local(),
        IpAddr::V6(v) => (v.segments()[0] & 0xfe00) == 0xfc00 || v.is_loopback(),
    }
}

pub(super) struct RouteSpec {
    pub(super) shared: bool,
    /// Routing table (0: main).
    pub(super) table: u32,
    /// An `unreachable` route (no interface) rather than a unicast one.
    pub(super) unreachable: bool,
    pub(super) dest: IpAddr,
    pub(super) prefix: u8,
    pub(super) gateway: Option<IpAddr>,
    pub(super) oif: u32,
    pub(super) metric: u32,
    pub(super) protocol: RouteProtocol,
    pub(super) pref_src: Option<IpAddr>,
}

pub(super) fn route(r: RouteSpec) -> Route {
    Route {
        dest: r.dest,
        prefix: r.prefix,
        gateway: r.gateway,
        pref_src: r.pref_src,
        oif: if r.unreachable { 0 } else { r.oif },
        metric: r.metric,
        table: if r.table == 254 { 0 } else { r.table },
        protocol: r.protocol,
        unreachable: r.unreachable,
    }
}

fn rule(
    fam: Family,
    r: &tinynm_config::profile::RoutingRule,
) -> netlink_packet_route::rule::RuleMessage {
    use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
    let mut m = RuleMessage::default();
    m.header.family = match fam {
        Family::V4 => netlink_packet_route::AddressFamily::Inet,
        Family::V6 => netlink_packet_route::AddressFamily::Inet6,
    };
    m.header.action = RuleAction::ToTable;
    m.header.table = u8::try_from(r.table).unwrap_or(0);
    m.attributes.push(RuleAttribute::Priority(r.priority));
    m.attributes.push(RuleAttribute::Table(r.table));
    if let Some((a, l)) = r.from {
        m.header.src_len = l;
        m.attributes.push(RuleAttribute::Source(a));
    }
    if let Some((a, l)) = r.to {
        m.header.dst_len = l;
        m.attributes.push(RuleAttribute::Destination(a));
    }
    m
}

fn address(c: &IpConfig, ifindex: u32) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = match c.family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    };
    m.header.index = ifindex;
    m.header.scope = AddressScope::Universe;
    let mut flags = AddressFlags::Noprefixroute;
    match (c.family, c.ptp) {
        (_, Some(peer)) => {
            m.header.prefix_len = c.family.max_prefix();
            m.attributes.push(AddressAttribute::Local(c.address));
            m.attributes.push(AddressAttribute::Address(peer));
        }
        (Family::V4, None) => {
            m.header.prefix_len = c.prefix;
            m.attributes.push(AddressAttribute::Local(c.address));
            m.attributes.push(AddressAttribute::Address(c.address));
        }
        (Family::V6, None) => {
            m.header.prefix_len = c.prefix;
            m.attributes.push(AddressAttribute::Address(c.address));
        }
    }
    if c.family == Family::V6 {
        // A tunnel address is not shared with anyone: no duplicate detection to wait for.
        flags |= AddressFlags::Nodad;
    }
    m.attributes.push(AddressAttribute::Flags(flags));
    m
}

pub(super) fn network(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & mask))
        }
        IpAddr::V6(v) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix as u32)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & mask))
        }
    }
}

/// Computes what to put in the kernel, as NM does (spec §5.5).
pub fn build(i: &Inputs<'_>) -> Plan {
    let mut plan = Plan {
        links: vec![LinkSetup {
            index: i.ifindex,
            mtu: if i.own_interface { i.generic.mtu } else { None },
        }],
        ..Default::default()
    };
    let mut routes: Vec<RouteSpec> = Vec::new();
    for (fam, cfg) in [(Family::V4, i.ip4), (Family::V6, i.ip6)] {
        let sect = match fam {
            Family::V4 => &i.profile.ipv4,
            Family::V6 => &i.profile.ipv6,
        };
        let Some(c) = cfg.filter(|_| sect.method == IpMethod::Auto) else {
            continue;
        };
        let metric = vpn_metric(sect);
        let oif = i.ifindex;
        plan.addresses.push(Applied::Address(address(c, oif)));
        let table = sect.route_table;
        let kernel_route = |dest, prefix| RouteSpec {
            table,
            shared: false,
            unreachable: false,
            dest,
            prefix,
            gateway: None,
            oif,
            metric,
            protocol: RouteProtocol::Kernel,
            pref_src: Some(c.address),
        };
        match c.ptp {
            Some(peer) => routes.push(kernel_route(peer, fam.max_prefix())),
            None if c.prefix < fam.max_prefix() => {
                routes.push(kernel_route(network(c.address, c.prefix), c.prefix))
            }
            None => {}
        }
        let static_route = |dest, prefix, gateway, metric| RouteSpec {
            table,
            shared: false,
            unreachable: false,
            dest,
            prefix,
            gateway,
            oif,
            metric,
            protocol: RouteProtocol::Static,
            pref_src: None,
        };
        if !sect.ignore_auto_routes {
            for r in &c.routes {
                routes.push(static_route(r.dest, r.prefix, r.next_hop, metric));
            }
        }
        for r in &sect.routes {
            routes.push(static_route(
                r.dest,
                r.prefix,
                r.next_hop,
                r.metric.unwrap_or(metric),
            ));
        }
        if !c.never_default && !sect.never_default {
            let any = match fam {
                Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            routes.push(static_route(any, 0, c.internal_gateway, metric));
        }
        // The host route to the external gateway, through the way the kernel reaches it today,
        // so the tunnel's own packets never enter the tunnel.
        if let (Some(gw), Some(lk)) = (i.generic.gateway, i.gateway_route)
            && fam.holds(&gw)
            && !(i.own_interface && lk.oif == i.ifindex)
        {
            match lk.gateway {
                Some(next) => {
                    routes.push(static_route(gw, fam.max_prefix(), Some(next), metric).on(lk.oif));
                    routes.push(static_route(next, fam.max_prefix(), None, metric).on(lk.oif));
                }
                None if is_private(gw) => {
                    routes.push(static_route(gw, fam.max_prefix(), None, metric).on(lk.oif));
                }
                None => {}
            }
        }
    }
    // The profile's routing rules, while the VPN is up.
    for (fam, sect, cfg) in [
        (Family::V4, &i.profile.ipv4, i.ip4),
        (Family::V6, &i.profile.ipv6, i.ip6),
    ] {
        if cfg.is_none() {
            continue;
        }
        for r in &sect.routing_rules {
            plan.rules.push(Applied::Rule(rule(fam, r)));
        }
    }
    // IPv6 made unreachable while the VPN takes the IPv4 default route and brings no IPv6
    // (ipv6 block-leaks): nothing goes around the tunnel.
    let v4_default = i.ip4.is_some_and(|c| {
        i.profile.ipv4.method == IpMethod::Auto && !c.never_default && !i.profile.ipv4.never_default
    });
    let v6_up = i.ip6.is_some() && i.profile.ipv6.method == IpMethod::Auto;
    if i.profile.ipv6.block_leaks && v4_default && !v6_up {
        routes.push(RouteSpec {
            table: i.profile.ipv6.route_table,
            shared: false,
            unreachable: true,
            dest: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            prefix: 0,
            gateway: None,
            oif: 0,
            metric: vpn_metric(&i.profile.ipv6),
            protocol: RouteProtocol::Static,
            pref_src: None,
        });
    }
    // Identical routes (a plugin route equal to a profile route…) are merged, as NM does;
    // the kernel would refuse the second one (same destination, prefix and metric).
    let mut seen = std::collections::HashSet::with_capacity(routes.len());
    plan.routes = routes
        .into_iter()
        .filter(|r| seen.insert((r.dest, r.prefix, r.metric)))
        .map(|r| {
            if r.shared {
                Applied::SharedRoute(route(r))
            } else {
                Applied::Route(route(r))
            }
        })
        .collect();
    plan
}

impl RouteSpec {
    /// The same route on the parent, where other VPNs may need it too.
    fn on(mut self, oif: u32) -> Self {
        self.oif = oif;
        self.shared = true;
        // The way to the VPN server is the parent's: the main table.
        self.table = 0;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinynm_vpn_plugin::PluginRoute;

    fn cfg() -> IpConfig {
        IpConfig {
            family: Family::V4,
            address: "10.8.0.2".parse().unwrap(),
            prefix: 32,
            ptp: Some("10.8.0.1".parse().unwrap()),
            internal_gateway: None,
            dns: vec![],
            domains: vec![],
            routes: vec![PluginRoute {
                dest: "10.60.0.0".parse().unwrap(),
                prefix: 16,
                next_hop: None,
                pref_src: None,
            }],
            never_default: false,
            preserve_routes: false,
            mss: None,
        }
    }

    fn profile() -> Profile {
        Profile::new_vpn("t", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "x")
    }

    /// The plan for an IPv4 config on the VPN's own interface, #5.
    fn plan_on_tun(
        p: &Profile,
        g: &GenericConfig,
        c: &IpConfig,
        gateway_route: Option<Lookup>,
    ) -> Plan {
        build(&Inputs {
            profile: p,
            generic: g,
            ip4: Some(c),
            ip6: None,
            ifindex: 5,
            own_interface: true,
            gateway_route,
        })
    }

    fn describe(p: &Plan) -> Vec<String> {
        p.routes
            .iter()
            .map(|r| match r {
                Applied::Route(r) => r.to_string(),
                Applied::SharedRoute(r) => format!("shared {r}"),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn nm_routes_for_a_ptp_tunnel() {
        let c = cfg();
        let g = GenericConfig {
            tundev: Some("tun0".into()),
            gateway: Some("192.0.2.1".parse().unwrap()),
            mtu: Some(1400),
            ..Default::default()
        };
        let p = profile();
        let lookup = Lookup {
            gateway: Some("10.99.0.1".parse().unwrap()),
            oif: 2,
        };
        let plan = plan_on_tun(&p, &g, &c, Some(lookup));
        assert_eq!(
            plan.links,
            vec![LinkSetup {
                index: 5,
                mtu: Some(1400)
            }]
        );
        assert_eq!(
            describe(&plan),
            vec![
                "10.8.0.1/32 dev #5 metric 50",
                "10.60.0.0/16 dev #5 metric 50",
                "default dev #5 metric 50",
                "shared 192.0.2.1/32 via 10.99.0.1 dev #2 metric 50",
                "shared 10.99.0.1/32 dev #2 metric 50",
            ]
        );
    }

    #[test]
    fn never_default_metric_and_ignore_auto_routes() {
        let mut c = cfg();
        c.never_default = true;
        let g = GenericConfig {
            tundev: Some("tun0".into()),
            ..Default::default()
        };
        let mut p = profile();
        p.ipv4.route_metric = 7;
        p.ipv4.ignore_auto_routes = true;
        let plan = plan_on_tun(&p, &g, &c, None);
        assert_eq!(describe(&plan), vec!["10.8.0.1/32 dev #5 metric 7"]);
        p.ipv4.method = IpMethod::Other("ignore");
        let plan = plan_on_tun(&p, &g, &c, None);
        assert!(plan.routes.is_empty() && plan.addresses.is_empty());
    }

    #[test]
    fn a_journal_reads_back_as_written() {
        let c = cfg();
        let g = GenericConfig {
            tundev: Some("tun0".into()),
            ..Default::default()
        };
        let p = profile();
        let plan = plan_on_tun(&p, &g, &c, None);
        let j = crate::netlink::Journal::from(
            plan.addresses
                .iter()
                .chain(&plan.routes)
                .cloned()
                .collect::<Vec<_>>(),
        );
        let mut bytes = j.to_bytes();
        assert_eq!(
            crate::netlink::Journal::from_bytes(&bytes),
            (j.clone(), vec![])
        );
        // A torn write loses only the tail, and says so.
        let whole = bytes.len();
        bytes.truncate(whole - 3);
        let (read, damage) = crate::netlink::Journal::from_bytes(&bytes);
        assert_eq!(read.len(), j.len() - 1);
        assert_eq!(damage.len(), 1);
        assert!(
            damage[0].ends_with("are not a whole record (a torn write?)"),
            "{damage:?}"
        );
        // Garbage in the middle is named and skipped.
        let mut bytes = j.to_bytes();
        let first = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        bytes[4..first].fill(0xff);
        let (read, damage) = crate::netlink::Journal::from_bytes(&bytes);
        assert_eq!(read.len(), j.len() - 1);
        assert_eq!(damage.len(), 1, "{damage:?}");
    }
}
