//! `IP4Config` and `IP6Config`: one family's addresses, routes and DNS, of a device (from the
//! kernel) or of an active VPN (from its plugin's config and tinynmd's plan).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use tokio::sync::watch;
use zbus::OwnedVariant;

use crate::devices::LinkAddr;

/// One route as NM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// Destination network.
    pub dest: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Next hop, if any.
    pub next_hop: Option<IpAddr>,
    /// Metric.
    pub metric: u32,
    /// Routing table (254 = main).
    pub table: u32,
}

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

fn ov<'a>(v: impl Into<zbus::Variant<'a>>) -> OwnedVariant {
    v.into()
        .try_into_owned()
        .expect("plain values never carry file descriptors")
}

type Dict = HashMap<String, OwnedVariant>;

fn address_data(d: &IpData) -> Vec<Dict> {
    d.addrs
        .iter()
        .map(|a| {
            let mut m = Dict::new();
            m.insert("address".into(), ov(a.addr.to_string()));
            m.insert("prefix".into(), ov(u32::from(a.prefix)));
            if let Some(p) = a.peer {
                m.insert("peer".into(), ov(p.to_string()));
            }
            m
        })
        .collect()
}

fn route_data(d: &IpData) -> Vec<Dict> {
    d.routes
        .iter()
        .map(|r| {
            let mut m = Dict::new();
            m.insert("dest".into(), ov(r.dest.to_string()));
            m.insert("prefix".into(), ov(u32::from(r.prefix)));
            m.insert("metric".into(), ov(r.metric));
            if let Some(n) = r.next_hop {
                m.insert("next-hop".into(), ov(n.to_string()));
            }
            if r.table != 254 {
                m.insert("table".into(), ov(r.table));
            }
            m
        })
        .collect()
}

fn v4(a: &IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    }
}

fn v6(a: &IpAddr) -> Option<Ipv6Addr> {
    match a {
        IpAddr::V6(a) => Some(*a),
        IpAddr::V4(_) => None,
    }
}

/// NM's legacy u32 form: the address in network byte order, read as a native integer.
fn net_u32(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

/// `org.freedesktop.NetworkManager.IP4Config`
pub struct Ip4ConfigView {
    /// The owner's data.
    pub data: watch::Receiver<Arc<IpData>>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.IP4Config")]
impl Ip4ConfigView {
    #[zbus(property)]
    fn addresses(&self) -> Vec<Vec<u32>> {
        let d = self.data.borrow();
        let gw = d.gateway.parse::<Ipv4Addr>().map(net_u32).unwrap_or(0);
        d.addrs
            .iter()
            .filter_map(|a| v4(&a.addr).map(|x| vec![net_u32(x), u32::from(a.prefix), gw]))
            .collect()
    }
    #[zbus(property)]
    fn address_data(&self) -> Vec<Dict> {
        address_data(&self.data.borrow())
    }
    #[zbus(property)]
    fn gateway(&self) -> String {
        self.data.borrow().gateway.clone()
    }
    #[zbus(property)]
    fn routes(&self) -> Vec<Vec<u32>> {
        self.data
            .borrow()
            .routes
            .iter()
            .filter(|r| r.prefix != 0)
            .filter_map(|r| {
                let dest = v4(&r.dest)?;
                let nh = r.next_hop.as_ref().and_then(v4).map(net_u32).unwrap_or(0);
                Some(vec![net_u32(dest), u32::from(r.prefix), nh, r.metric])
            })
            .collect()
    }
    #[zbus(property)]
    fn route_data(&self) -> Vec<Dict> {
        route_data(&self.data.borrow())
    }
    #[zbus(property)]
    fn nameserver_data(&self) -> Vec<Dict> {
        self.data
            .borrow()
            .nameservers
            .iter()
            .map(|a| {
                let mut m = Dict::new();
                m.insert("address".into(), ov(a.to_string()));
                m
            })
            .collect()
    }
    #[zbus(property)]
    fn nameservers(&self) -> Vec<u32> {
        let d = self.data.borrow();
        d.nameservers.iter().filter_map(v4).map(net_u32).collect()
    }
    #[zbus(property)]
    fn domains(&self) -> Vec<String> {
        self.data.borrow().domains.clone()
    }
    #[zbus(property)]
    fn searches(&self) -> Vec<String> {
        self.data.borrow().searches.clone()
    }
    #[zbus(property)]
    fn dns_options(&self) -> Vec<String> {
        Vec::new()
    }
    #[zbus(property)]
    fn dns_priority(&self) -> i32 {
        self.data.borrow().dns_priority
    }
    #[zbus(property)]
    fn wins_server_data(&self) -> Vec<String> {
        Vec::new()
    }
    #[zbus(property)]
    fn wins_servers(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// `org.freedesktop.NetworkManager.IP6Config`
pub struct Ip6ConfigView {
    /// The owner's data.
    pub data: watch::Receiver<Arc<IpData>>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.IP6Config")]
impl Ip6ConfigView {
    #[zbus(property)]
    fn addresses(&self) -> Vec<(Vec<u8>, u32, Vec<u8>)> {
        let d = self.data.borrow();
        let gw = d
            .gateway
            .parse::<Ipv6Addr>()
            .unwrap_or(Ipv6Addr::UNSPECIFIED);
        d.addrs
            .iter()
            .filter_map(|a| {
                v6(&a.addr).map(|x| {
                    (
                        x.octets().to_vec(),
                        u32::from(a.prefix),
                        gw.octets().to_vec(),
                    )
                })
            })
            .collect()
    }
    #[zbus(property)]
    fn address_data(&self) -> Vec<Dict> {
        address_data(&self.data.borrow())
    }
    #[zbus(property)]
    fn gateway(&self) -> String {
        self.data.borrow().gateway.clone()
    }
    #[zbus(property)]
    fn routes(&self) -> Vec<(Vec<u8>, u32, Vec<u8>, u32)> {
        self.data
            .borrow()
            .routes
            .iter()
            .filter(|r| r.prefix != 0)
            .filter_map(|r| {
                let dest = v6(&r.dest)?;
                let nh = r
                    .next_hop
                    .as_ref()
                    .and_then(v6)
                    .unwrap_or(Ipv6Addr::UNSPECIFIED);
                Some((
                    dest.octets().to_vec(),
                    u32::from(r.prefix),
                    nh.octets().to_vec(),
                    r.metric,
                ))
            })
            .collect()
    }
    #[zbus(property)]
    fn route_data(&self) -> Vec<Dict> {
        route_data(&self.data.borrow())
    }
    #[zbus(property)]
    fn nameservers(&self) -> Vec<Vec<u8>> {
        let d = self.data.borrow();
        d.nameservers
            .iter()
            .filter_map(v6)
            .map(|a| a.octets().to_vec())
            .collect()
    }
    #[zbus(property)]
    fn domains(&self) -> Vec<String> {
        self.data.borrow().domains.clone()
    }
    #[zbus(property)]
    fn searches(&self) -> Vec<String> {
        self.data.borrow().searches.clone()
    }
    #[zbus(property)]
    fn dns_options(&self) -> Vec<String> {
        Vec::new()
    }
    #[zbus(property)]
    fn dns_priority(&self) -> i32 {
        self.data.borrow().dns_priority
    }
}
