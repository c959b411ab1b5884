//! One family's IP configuration, as IP4Config/IP6Config show it.

use std::net::IpAddr;

use crate::netlink::links::LinkAddr;
use crate::netlink::{Applied, Journal, RouteEntry, route_entry};

/// One family's IP configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpData {
    /// Addresses.
    pub addrs: Vec<LinkAddr>,
    /// Gateway of the default route: `""` none, `"0.0.0.0"`/`"::"` a default route without one.
    pub gateway: String,
    /// Routes.
    pub routes: Routes,
    /// Name servers.
    pub nameservers: Vec<IpAddr>,
    /// DNS domains.
    pub domains: Vec<String>,
    /// DNS search list.
    pub searches: Vec<String>,
    /// DNS priority (50 for a VPN, 100 for other devices with DNS, else 0).
    pub dns_priority: i32,
}

/// The routes an IP config lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Routes {
    /// Listed here.
    Listed(Vec<RouteEntry>),
    /// A VPN's: the routes its journal holds on its interface in one family, read from the
    /// journal (whose parts are shared, not copied), so that they are held once while it is up.
    Journal {
        /// What the VPN put in the kernel.
        journal: Journal,
        /// Its interface.
        oif: u32,
        /// The family.
        v6: bool,
    },
}

impl Default for Routes {
    fn default() -> Routes {
        Routes::Listed(Vec::new())
    }
}

impl Routes {
    /// The routes, in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = RouteEntry> + Send + '_> {
        match self {
            Routes::Listed(l) => Box::new(l.iter().cloned()),
            Routes::Journal { journal, oif, v6 } => {
                Box::new(journal.iter().filter_map(move |a| match a {
                    Applied::Route(r) if r.oif == *oif && r.dest.is_ipv6() == *v6 => {
                        Some(route_entry(r))
                    }
                    _ => None,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::Route;

    fn route(dest: IpAddr, oif: u32) -> Applied {
        Applied::Route(Route {
            dest,
            prefix: 24,
            gateway: None,
            pref_src: None,
            oif,
            metric: 50,
            table: 0,
            protocol: netlink_packet_route::route::RouteProtocol::Static,
            unreachable: false,
        })
    }

    #[test]
    fn a_vpns_routes_are_read_from_its_journal_without_a_copy() {
        let a: IpAddr = "10.1.0.0".parse().unwrap();
        let b: IpAddr = "fd00::".parse().unwrap();
        let c: IpAddr = "10.2.0.0".parse().unwrap();
        let j = Journal::from(vec![
            Applied::Up(7),
            route(a, 7),
            route(b, 7),
            Applied::SharedRoute(match route(c, 2) {
                Applied::Route(r) => r,
                _ => unreachable!(),
            }),
            route(c, 7),
            route(c, 9),
        ]);
        let view = Routes::Journal {
            journal: j.clone(),
            oif: 7,
            v6: false,
        };
        let listed: Vec<IpAddr> = view.iter().map(|r| r.dest).collect();
        assert_eq!(listed, vec![a, c], "IPv4 routes on #7 only, in order");
        let Routes::Journal { journal, .. } = &view else {
            unreachable!()
        };
        // The view's journal is the same objects, not a copy of them.
        assert!(std::ptr::eq(
            journal.iter().nth(1).unwrap(),
            j.iter().nth(1).unwrap()
        ));
    }
}
