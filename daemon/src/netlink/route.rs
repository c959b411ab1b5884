//! A route as tinynmd adds it: the few fields it sets, held inline. A VPN may hold tens of
//! thousands of routes for as long as it is up; as netlink messages (a vector of attributes
//! each) they were most of the daemon's memory. The request is built when it is sent. Pure, as
//! `journal.rs`, which the fuzz targets read with this very code.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};

/// Main table, as the kernel numbers it.
const MAIN: u32 = 254;

/// `RTM_NEWROUTE`.
pub const NEW_ROUTE: u16 = 24;
/// `RTM_DELROUTE`.
pub const DEL_ROUTE: u16 = 25;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination (the family's unspecified address for a default route).
    pub dest: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Preferred source (IPv4 only).
    pub pref_src: Option<IpAddr>,
    /// Outgoing interface; 0 for an `unreachable` route.
    pub oif: u32,
    /// Metric.
    pub metric: u32,
    /// Routing table; 0 is main.
    pub table: u32,
    /// `proto`.
    pub protocol: RouteProtocol,
    /// An `unreachable` route (no interface) rather than a unicast one.
    pub unreachable: bool,
}

impl Route {
    /// The table, 0 for main (so that 254 and 0 are one route).
    fn table(&self) -> u32 {
        if self.table == MAIN { 0 } else { self.table }
    }

    /// The kernel's table number (254 for main), as route dumps give it.
    pub fn kernel_table(&self) -> u32 {
        match self.table() {
            0 => MAIN,
            t => t,
        }
    }

    /// The add (and delete) request's body.
    pub fn message(&self) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = match self.dest {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        m.header.table = MAIN as u8;
        m.header.protocol = self.protocol;
        m.header.scope = if self.gateway.is_none() && self.dest.is_ipv4() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        m.header.kind = if self.unreachable {
            RouteType::Unreachable
        } else {
            RouteType::Unicast
        };
        m.header.destination_prefix_length = self.prefix;
        let a = &mut m.attributes;
        let addr = |ip: IpAddr| match ip {
            IpAddr::V4(v) => RouteAddress::Inet(v),
            IpAddr::V6(v) => RouteAddress::Inet6(v),
        };
        if self.prefix > 0 {
            a.push(RouteAttribute::Destination(addr(self.dest)));
        }
        if let Some(g) = self.gateway.filter(|g| g.is_ipv4() == self.dest.is_ipv4()) {
            a.push(RouteAttribute::Gateway(addr(g)));
        }
        if let Some(s) = self.pref_src.filter(|s| s.is_ipv4() && self.dest.is_ipv4()) {
            a.push(RouteAttribute::PrefSource(addr(s)));
        }
        if !self.unreachable {
            a.push(RouteAttribute::Oif(self.oif));
        }
        a.push(RouteAttribute::Priority(self.metric));
        let t = self.table();
        if t != 0 {
            m.header.table = u8::try_from(t).unwrap_or(0);
            a.push(RouteAttribute::Table(t));
        }
        m
    }

    /// Appends the whole netlink request (header, `rtmsg`, attributes) of type `kind`
    /// (`RTM_NEWROUTE` or `RTM_DELROUTE`) to `out`: the bytes [`Route::message`] serializes
    /// to, written straight, with no message built in between. Batches and the journal's
    /// records use it for every route.
    pub fn encode(&self, out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32) {
        fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
            out.extend_from_slice(&(4 + payload.len() as u16).to_ne_bytes());
            out.extend_from_slice(&kind.to_ne_bytes());
            out.extend_from_slice(payload);
            out.extend_from_slice(&[0; 3][..payload.len().next_multiple_of(4) - payload.len()]);
        }
        fn ip(out: &mut Vec<u8>, kind: u16, a: IpAddr) {
            match a {
                IpAddr::V4(v) => attr(out, kind, &v.octets()),
                IpAddr::V6(v) => attr(out, kind, &v.octets()),
            }
        }
        let v4 = self.dest.is_ipv4();
        let start = out.len();
        out.extend_from_slice(&0u32.to_ne_bytes()); // the length, set below
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        let t = self.table();
        let family = if v4 { libc::AF_INET } else { libc::AF_INET6 } as u8;
        let scope = if self.gateway.is_none() && v4 {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        let rtype = if self.unreachable {
            RouteType::Unreachable
        } else {
            RouteType::Unicast
        };
        let header_table = if t == 0 {
            MAIN as u8
        } else {
            u8::try_from(t).unwrap_or(0)
        };
        out.extend_from_slice(&[
            family,
            self.prefix,
            0,
            0,
            header_table,
            u8::from(self.protocol),
            u8::from(scope),
            u8::from(rtype),
        ]);
        out.extend_from_slice(&0u32.to_ne_bytes());
        if self.prefix > 0 {
            ip(out, RTA_DST, self.dest);
        }
        if let Some(g) = self.gateway.filter(|g| g.is_ipv4() == v4) {
            ip(out, RTA_GATEWAY, g);
        }
        if let Some(s) = self.pref_src.filter(|s| s.is_ipv4() && v4) {
            ip(out, RTA_PREFSRC, s);
        }
        if !self.unreachable {
            attr(out, RTA_OIF, &self.oif.to_ne_bytes());
        }
        attr(out, RTA_PRIORITY, &self.metric.to_ne_bytes());
        if t != 0 {
            attr(out, RTA_TABLE, &t.to_ne_bytes());
        }
        let len = (out.len() - start) as u32;
        out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// A route read back from a request this module built (a journal on disk); `None` for a
    /// message of another family.
    pub fn from_message(m: &RouteMessage) -> Option<Route> {
        let v6 = match m.header.address_family {
            AddressFamily::Inet => false,
            AddressFamily::Inet6 => true,
            _ => return None,
        };
        let ip = |a: &RouteAddress| match a {
            RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
            RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
            _ => None,
        };
        let mut r = Route {
            dest: if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            },
            prefix: m.header.destination_prefix_length,
            gateway: None,
            pref_src: None,
            oif: 0,
            metric: 0,
            table: 0,
            protocol: m.header.protocol,
            unreachable: m.header.kind == RouteType::Unreachable,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(d) => r.dest = ip(d).unwrap_or(r.dest),
                RouteAttribute::Gateway(g) => r.gateway = ip(g),
                RouteAttribute::PrefSource(s) => r.pref_src = ip(s),
                RouteAttribute::Oif(i) => r.oif = *i,
                RouteAttribute::Priority(p) => r.metric = *p,
                RouteAttribute::Table(t) => r.table = *t,
                _ => {}
            }
        }
        r.table = r.table();
        Some(r)
    }
}

/// As `ip route` shows it: `10.0.0.0/8 via 10.8.0.1 dev #5 metric 50`.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.prefix > 0 {
            write!(f, "{}/{}", self.dest, self.prefix)?;
        } else {
            f.write_str("default")?;
        }
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if !self.unreachable {
            write!(f, " dev #{}", self.oif)?;
        }
        write!(f, " metric {}", self.metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A route's request reads back as the same route, whatever its fields.
        #[test]
        fn a_route_reads_back_from_its_request(
            d in proptest::prelude::any::<u32>(),
            prefix in 0u8..=32,
            gw in proptest::option::of(proptest::prelude::any::<u32>()),
            src in proptest::option::of(proptest::prelude::any::<u32>()),
            oif in 1u32..100,
            metric in proptest::prelude::any::<u32>(),
            table in proptest::prelude::prop_oneof![proptest::prelude::Just(0u32), 1u32..100_000],
            unreachable in proptest::prelude::any::<bool>(),
            v6 in proptest::prelude::any::<bool>(),
        ) {
            let a = |x: u32| if v6 {
                IpAddr::V6(Ipv6Addr::from(u128::from(x) << 64))
            } else {
                IpAddr::V4(Ipv4Addr::from(x))
            };
            let r = Route {
                dest: a(d),
                prefix,
                gateway: gw.map(a),
                pref_src: src.map(a).filter(|s| s.is_ipv4()),
                oif: if unreachable { 0 } else { oif },
                metric,
                table,
                protocol: RouteProtocol::Static,
                unreachable,
            };
            let mut back = Route::from_message(&r.message()).unwrap();
            if prefix == 0 {
                back.dest = r.dest;
            }
            proptest::prop_assert_eq!(back, r);
        }

        /// The request written straight is byte for byte what netlink-packet-route serializes
        /// for the route's message, with any header.
        #[test]
        fn a_routes_request_is_written_as_the_library_serializes_it(
            d in proptest::prelude::any::<u128>(),
            prefix in 0u8..=128,
            gw in proptest::option::of(proptest::prelude::any::<u128>()),
            src in proptest::option::of(proptest::prelude::any::<u32>()),
            oif in proptest::prelude::any::<u32>(),
            metric in proptest::prelude::any::<u32>(),
            table in proptest::prelude::prop_oneof![proptest::prelude::Just(0u32), proptest::prelude::Just(254u32), proptest::prelude::any::<u32>()],
            unreachable in proptest::prelude::any::<bool>(),
            v6 in proptest::prelude::any::<bool>(),
            gw_other_family in proptest::prelude::any::<bool>(),
            protocol in proptest::prelude::any::<u8>(),
            del in proptest::prelude::any::<bool>(),
            flags in proptest::prelude::any::<u16>(),
            seq in proptest::prelude::any::<u32>(),
        ) {
            use netlink_packet_route::RouteNetlinkMessage;
            use rtnetlink::packet_core::NetlinkMessage;
            let a = |x: u128, v6: bool| if v6 {
                IpAddr::V6(Ipv6Addr::from(x))
            } else {
                IpAddr::V4(Ipv4Addr::from(x as u32))
            };
            let r = Route {
                dest: a(d, v6),
                prefix: if v6 { prefix } else { prefix.min(32) },
                gateway: gw.map(|g| a(g, v6 != gw_other_family)),
                pref_src: src.map(|s| a(u128::from(s), false)),
                oif,
                metric,
                table,
                protocol: RouteProtocol::from(protocol),
                unreachable,
            };
            let (kind, m) = if del {
                (DEL_ROUTE, RouteNetlinkMessage::DelRoute(r.message()))
            } else {
                (NEW_ROUTE, RouteNetlinkMessage::NewRoute(r.message()))
            };
            let mut nl = NetlinkMessage::from(m);
            nl.header.flags = flags;
            nl.header.sequence_number = seq;
            nl.finalize();
            let mut want = vec![0; nl.buffer_len()];
            nl.serialize(&mut want);
            proptest::prop_assert_eq!(nl.header.message_type, kind);
            let mut got = vec![0xAA; 3];
            r.encode(&mut got, kind, flags, seq);
            proptest::prop_assert_eq!(&got[3..], &want[..]);
        }
    }
}
