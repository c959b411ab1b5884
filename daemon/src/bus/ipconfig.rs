//! `IP4Config` and `IP6Config`: one family's addresses, routes and DNS, of a device (from the
//! kernel) or of an active VPN (from its plugin's config and tinynmd's plan).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use tinynm_config::dbus::ov;

use serde::ser::{SerializeMap, SerializeSeq};
use tokio::sync::watch;
use zbus::{OwnedVariant, Signature, Type, as_variant};

use crate::netlink::RouteEntry;
use crate::state::IpData;

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

fn addresses4(d: &IpData) -> Vec<Vec<u32>> {
    let gw = d.gateway.parse::<Ipv4Addr>().map(net_u32).unwrap_or(0);
    d.addrs
        .iter()
        .filter_map(|a| v4(&a.addr).map(|x| vec![net_u32(x), u32::from(a.prefix), gw]))
        .collect()
}

fn addresses6(d: &IpData) -> Vec<(Vec<u8>, u32, Vec<u8>)> {
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

/// NM's legacy IPv4 route: (dest, prefix, next hop, metric); default routes are left out.
fn route4_legacy(r: RouteEntry) -> Option<[u32; 4]> {
    let dest = v4(&r.dest).filter(|_| r.prefix != 0)?;
    let nh = r.next_hop.as_ref().and_then(v4).map(net_u32).unwrap_or(0);
    Some([net_u32(dest), u32::from(r.prefix), nh, r.metric])
}

fn route6_legacy(r: RouteEntry) -> Option<([u8; 16], u32, [u8; 16], u32)> {
    let dest = v6(&r.dest).filter(|_| r.prefix != 0)?;
    let nh = r
        .next_hop
        .as_ref()
        .and_then(v6)
        .unwrap_or(Ipv6Addr::UNSPECIFIED);
    Some((dest.octets(), u32::from(r.prefix), nh.octets(), r.metric))
}

fn routes4(d: &IpData) -> Vec<Vec<u32>> {
    d.routes
        .iter()
        .filter_map(route4_legacy)
        .map(|r| r.to_vec())
        .collect()
}

fn routes6(d: &IpData) -> Vec<(Vec<u8>, u32, Vec<u8>, u32)> {
    d.routes
        .iter()
        .filter_map(route6_legacy)
        .map(|(a, p, n, m)| (a.to_vec(), p, n.to_vec(), m))
        .collect()
}

fn nameserver_data(d: &IpData) -> Vec<Dict> {
    d.nameservers
        .iter()
        .map(|a| {
            let mut m = Dict::new();
            m.insert("address".into(), ov(a.to_string()));
            m
        })
        .collect()
}

fn nameservers4(d: &IpData) -> Vec<u32> {
    d.nameservers.iter().filter_map(v4).map(net_u32).collect()
}

fn nameservers6(d: &IpData) -> Vec<Vec<u8>> {
    d.nameservers
        .iter()
        .filter_map(v6)
        .map(|a| a.octets().to_vec())
        .collect()
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
        addresses4(&self.data.borrow())
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
        routes4(&self.data.borrow())
    }
    #[zbus(property)]
    fn route_data(&self) -> Vec<Dict> {
        route_data(&self.data.borrow())
    }
    #[zbus(property)]
    fn nameserver_data(&self) -> Vec<Dict> {
        nameserver_data(&self.data.borrow())
    }
    #[zbus(property)]
    fn nameservers(&self) -> Vec<u32> {
        nameservers4(&self.data.borrow())
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
        addresses6(&self.data.borrow())
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
        routes6(&self.data.borrow())
    }
    #[zbus(property)]
    fn route_data(&self) -> Vec<Dict> {
        route_data(&self.data.borrow())
    }
    #[zbus(property)]
    fn nameservers(&self) -> Vec<Vec<u8>> {
        nameservers6(&self.data.borrow())
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

/// A property value as tinynmd puts it on the wire: most are ready variants; the route lists
/// of an IP config are written straight from its data, so that 50,000 routes never become a
/// tree of 50,000 dictionaries on their way to `InterfacesAdded` or `GetManagedObjects`.
#[derive(Debug)]
pub enum PropValue {
    /// A plain value.
    V(OwnedVariant),
    /// `RouteData` (`aa{sv}`).
    RouteData(Arc<IpData>),
    /// IP4Config `Routes` (`aau`).
    Routes4(Arc<IpData>),
    /// IP6Config `Routes` (`a(ayuayu)`).
    Routes6(Arc<IpData>),
}

impl Type for PropValue {
    const SIGNATURE: &'static Signature = &Signature::Variant;
}

impl PropValue {
    /// The value as a variant (built in full: for small lists only).
    pub fn to_variant(&self) -> zbus::Result<OwnedVariant> {
        Ok(match self {
            PropValue::V(v) => v.try_clone()?,
            PropValue::RouteData(d) => ov(route_data(d)),
            PropValue::Routes4(d) => ov(routes4(d)),
            PropValue::Routes6(d) => ov(routes6(d)),
        })
    }
}

struct RouteDataWire<'a>(&'a IpData);
struct Routes4Wire<'a>(&'a IpData);
struct Routes6Wire<'a>(&'a IpData);

impl Type for RouteDataWire<'_> {
    const SIGNATURE: &'static Signature = <Vec<HashMap<String, OwnedVariant>>>::SIGNATURE;
}
impl Type for Routes4Wire<'_> {
    const SIGNATURE: &'static Signature = <Vec<Vec<u32>>>::SIGNATURE;
}
impl Type for Routes6Wire<'_> {
    const SIGNATURE: &'static Signature = <Vec<(Vec<u8>, u32, Vec<u8>, u32)>>::SIGNATURE;
}

impl serde::Serialize for RouteDataWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for r in self.0.routes.iter() {
            seq.serialize_element(&RouteEntryWire(&r))?;
        }
        seq.end()
    }
}

struct RouteEntryWire<'a>(&'a RouteEntry);

impl Type for RouteEntryWire<'_> {
    const SIGNATURE: &'static Signature = <HashMap<String, OwnedVariant>>::SIGNATURE;
}

impl serde::Serialize for RouteEntryWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let n = 3 + usize::from(r.next_hop.is_some()) + usize::from(r.table != 254);
        let mut m = s.serialize_map(Some(n))?;
        m.serialize_entry("dest", &as_variant::Serialize(&r.dest.to_string()))?;
        m.serialize_entry("prefix", &as_variant::Serialize(&u32::from(r.prefix)))?;
        m.serialize_entry("metric", &as_variant::Serialize(&r.metric))?;
        if let Some(h) = r.next_hop {
            m.serialize_entry("next-hop", &as_variant::Serialize(&h.to_string()))?;
        }
        if r.table != 254 {
            m.serialize_entry("table", &as_variant::Serialize(&r.table))?;
        }
        m.end()
    }
}

impl serde::Serialize for Routes4Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let legacy = self.0.routes.iter().filter_map(route4_legacy);
        let mut seq = s.serialize_seq(None)?;
        for r in legacy {
            seq.serialize_element(&r[..])?;
        }
        seq.end()
    }
}

impl serde::Serialize for Routes6Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let legacy = self.0.routes.iter().filter_map(route6_legacy);
        let mut seq = s.serialize_seq(None)?;
        for (d, p, n, m) in legacy {
            seq.serialize_element(&(&d[..], p, &n[..], m))?;
        }
        seq.end()
    }
}

impl serde::Serialize for PropValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PropValue::V(v) => v.serialize(s),
            PropValue::RouteData(d) => as_variant::Serialize(&RouteDataWire(d)).serialize(s),
            PropValue::Routes4(d) => as_variant::Serialize(&Routes4Wire(d)).serialize(s),
            PropValue::Routes6(d) => as_variant::Serialize(&Routes6Wire(d)).serialize(s),
        }
    }
}

/// Every property of an IP4Config (`v6` false) or IP6Config, as `InterfacesAdded` and
/// `GetManagedObjects` carry them.
pub fn ip_props(d: &Arc<IpData>, v6: bool) -> HashMap<String, PropValue> {
    let mut m: HashMap<String, PropValue> = HashMap::new();
    let mut put = |k: &str, v: OwnedVariant| drop(m.insert(k.to_string(), PropValue::V(v)));
    put("AddressData", ov(address_data(d)));
    put("Gateway", ov(d.gateway.clone()));
    put("Domains", ov(d.domains.clone()));
    put("Searches", ov(d.searches.clone()));
    put("DnsOptions", ov(Vec::<String>::new()));
    put("DnsPriority", ov(d.dns_priority));
    if v6 {
        put("Addresses", ov(addresses6(d)));
        put("Nameservers", ov(nameservers6(d)));
    } else {
        put("Addresses", ov(addresses4(d)));
        put("NameserverData", ov(nameserver_data(d)));
        put("Nameservers", ov(nameservers4(d)));
        put("WinsServerData", ov(Vec::<String>::new()));
        put("WinsServers", ov(Vec::<u32>::new()));
    }
    m.insert("RouteData".into(), PropValue::RouteData(d.clone()));
    let routes = if v6 {
        PropValue::Routes6(d.clone())
    } else {
        PropValue::Routes4(d.clone())
    };
    m.insert("Routes".into(), routes);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::links::LinkAddr;
    use zbus::wire::serialized::Context;
    use zbus::wire::{LE, to_bytes};

    fn data() -> Arc<IpData> {
        let r = |d: &str, p, nh: Option<&str>, m, t| RouteEntry {
            dest: d.parse().unwrap(),
            prefix: p,
            next_hop: nh.map(|n| n.parse().unwrap()),
            metric: m,
            table: t,
        };
        Arc::new(IpData {
            addrs: vec![LinkAddr {
                addr: "10.8.0.2".parse().unwrap(),
                prefix: 32,
                peer: Some("10.8.0.1".parse().unwrap()),
            }],
            gateway: "0.0.0.0".into(),
            routes: crate::state::Routes::Listed(vec![
                r("0.0.0.0", 0, None, 50, 254),
                r("10.60.1.0", 24, Some("10.8.0.1"), 50, 254),
                r("10.61.0.0", 16, None, 20, 100),
                r("fd00::", 64, Some("fd00::1"), 50, 254),
            ]),
            nameservers: vec!["10.8.0.53".parse().unwrap()],
            domains: vec!["corp.example".into()],
            searches: Vec::new(),
            dns_priority: 50,
        })
    }

    /// The route lists written straight from the data read back exactly as the variants the
    /// interface's getters build, in both families.
    #[test]
    fn wire_route_lists_equal_the_built_variants() {
        for v6 in [false, true] {
            let props = ip_props(&data(), v6);
            let ctxt = Context::new(LE, 0);
            let bytes = to_bytes(ctxt, &props).unwrap();
            let (back, _): (HashMap<String, OwnedVariant>, _) = bytes.deserialize().unwrap();
            assert_eq!(back.len(), props.len());
            for (k, v) in &props {
                assert_eq!(&back[k], &v.to_variant().unwrap(), "{k} (v6: {v6})");
            }
        }
        let rd = route_data(&data());
        assert_eq!(rd.len(), 4);
        assert!(!rd[0].contains_key("next-hop") && !rd[0].contains_key("table"));
        assert_eq!(rd[2]["table"], ov(100u32));
        assert_eq!(
            routes4(&data()).len(),
            2,
            "legacy lists leave out default routes"
        );
    }
}
