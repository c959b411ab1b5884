//! What one connection put in the kernel, in order (`Journal`), how each object is described
//! and undone, and the journal on disk: written before ACTIVATED, read at the next start to
//! remove exactly what a crashed tinynmd left.

use std::io;

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};

use super::Netlink;

/// One object added to the kernel, as it must be undone.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// An address we added.
    Address(AddressMessage),
    /// A route we added.
    Route(RouteMessage),
    /// A route on the parent that several VPNs may need (the host route to a shared VPN
    /// server): counted, and deleted when the last VPN that needs it goes.
    SharedRoute(RouteMessage),
    /// The MTU we changed: (ifindex, old MTU).
    Mtu(u32, u32),
    /// A policy routing rule we added.
    Rule(netlink_packet_route::rule::RuleMessage),
}

/// Everything one connection put in the kernel, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journal {
    /// In the order applied.
    pub items: Vec<Applied>,
}

impl Journal {
    /// Number of routes in the journal.
    pub fn routes(&self) -> usize {
        self.items
            .iter()
            .filter(|a| matches!(a, Applied::Route(_) | Applied::SharedRoute(_)))
            .count()
    }
}

/// On disk, a journal is the add requests of what it holds, as netlink messages back to back:
/// enough for a later tinynmd to delete exactly those objects after a crash.
impl Journal {
    /// The journal's objects as netlink messages. MTU changes are not kept: they die with the
    /// VPN's own interface, which is the only one tinynmd changes the MTU of.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for a in &self.items {
            let Some(m) = a.add_message() else { continue };
            let mut nl = NetlinkMessage::from(m);
            nl.finalize();
            let start = out.len();
            out.resize(start + nl.buffer_len(), 0);
            nl.serialize(&mut out[start..]);
        }
        out
    }

    /// Reads what [`Journal::to_bytes`] wrote: the objects it can read, and what was damaged
    /// (a torn tail, a record that is not one of ours), if anything.
    pub fn from_bytes(all: &[u8]) -> (Journal, Vec<String>) {
        let mut items = Vec::new();
        let mut damage = Vec::new();
        let mut b = all;
        while !b.is_empty() {
            let at = all.len() - b.len();
            let len = if b.len() >= 16 {
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize
            } else {
                0
            };
            if len < 16 || len > b.len() {
                damage.push(format!(
                    "bytes {at} to {} of {} are not a whole record (a torn write?)",
                    all.len(),
                    all.len()
                ));
                break;
            }
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b[..len]);
            if let Ok(m) = m {
                match m.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                        items.push(Applied::Route(r))
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => {
                        items.push(Applied::Address(a))
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRule(r)) => {
                        items.push(Applied::Rule(r))
                    }
                    _ => damage.push(format!(
                        "the record at byte {at} is not an address, route or rule"
                    )),
                }
            } else {
                damage.push(format!("the record at byte {at} is not a netlink message"));
            }
            b = &b[len..];
        }
        (Journal { items }, damage)
    }
}

pub(super) fn describe_route(r: &RouteMessage) -> String {
    let mut dst = None;
    let mut gw = None;
    let mut oif = None;
    let mut metric = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = Some(addr_of(d)),
            RouteAttribute::Gateway(g) => gw = Some(addr_of(g)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = Some(*p),
            _ => {}
        }
    }
    let mut s = match dst {
        Some(d) => format!("{d}/{}", r.header.destination_prefix_length),
        None => "default".to_string(),
    };
    if let Some(g) = gw {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(o) = oif {
        s.push_str(&format!(" dev #{o}"));
    }
    if let Some(m) = metric {
        s.push_str(&format!(" metric {m}"));
    }
    s
}

pub(super) fn addr_of(a: &RouteAddress) -> String {
    match a {
        RouteAddress::Inet(v) => v.to_string(),
        RouteAddress::Inet6(v) => v.to_string(),
        other => format!("{other:?}"),
    }
}

pub(super) fn describe_address(a: &AddressMessage) -> String {
    use netlink_packet_route::address::AddressAttribute as A;
    let local = a.attributes.iter().find_map(|x| match x {
        A::Local(l) => Some(*l),
        _ => None,
    });
    let addr = a.attributes.iter().find_map(|x| match x {
        A::Address(l) => Some(*l),
        _ => None,
    });
    match (local, addr) {
        (Some(l), Some(p)) if l != p => {
            format!(
                "{l} peer {p}/{} on #{}",
                a.header.prefix_len, a.header.index
            )
        }
        (Some(l), _) | (None, Some(l)) => {
            format!("{l}/{} on #{}", a.header.prefix_len, a.header.index)
        }
        _ => format!("address on #{}", a.header.index),
    }
}

impl Applied {
    pub(super) fn describe(&self) -> String {
        match self {
            Applied::Address(a) => format!("address {}", describe_address(a)),
            Applied::Route(r) | Applied::SharedRoute(r) => format!("route {}", describe_route(r)),
            Applied::Mtu(i, m) => format!("MTU of #{i} (was {m})"),
            Applied::Rule(r) => format!("rule {}", describe_rule(r)),
        }
    }

    pub(super) fn shared_key(&self) -> Option<String> {
        match self {
            Applied::SharedRoute(r) => {
                Some(format!("{} table {}", describe_route(r), r.header.table))
            }
            _ => None,
        }
    }

    pub(super) fn add_message(&self) -> Option<RouteNetlinkMessage> {
        match self {
            Applied::Address(a) => Some(RouteNetlinkMessage::NewAddress(a.clone())),
            Applied::Route(r) | Applied::SharedRoute(r) => {
                Some(RouteNetlinkMessage::NewRoute(r.clone()))
            }
            Applied::Mtu(..) => None,
            Applied::Rule(r) => Some(RouteNetlinkMessage::NewRule(r.clone())),
        }
    }

    pub(super) fn del_message(&self) -> Option<RouteNetlinkMessage> {
        match self {
            Applied::Address(a) => Some(RouteNetlinkMessage::DelAddress(a.clone())),
            Applied::Route(r) | Applied::SharedRoute(r) => {
                Some(RouteNetlinkMessage::DelRoute(r.clone()))
            }
            Applied::Mtu(..) => None,
            Applied::Rule(r) => Some(RouteNetlinkMessage::DelRule(r.clone())),
        }
    }
}

pub(super) fn describe_rule(r: &netlink_packet_route::rule::RuleMessage) -> String {
    use netlink_packet_route::rule::RuleAttribute as A;
    let mut s = String::new();
    for a in &r.attributes {
        match a {
            A::Priority(p) => s.push_str(&format!("priority {p} ")),
            A::Source(x) => s.push_str(&format!("from {x}/{} ", r.header.src_len)),
            A::Destination(x) => s.push_str(&format!("to {x}/{} ", r.header.dst_len)),
            A::Table(t) => s.push_str(&format!("table {t} ")),
            _ => {}
        }
    }
    s.trim_end().to_string()
}

/// Writes a connection's journal atomically (temporary file, rename).
pub fn save_journal(path: &std::path::Path, j: &Journal) -> io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, j.to_bytes())?;
    std::fs::rename(&tmp, path)
}

/// After a crash: removes what the journals in `dir` say an earlier tinynmd put in the kernel,
/// then the journals.
pub async fn recover(nl: &Netlink, dir: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if !p.extension().is_some_and(|x| x == "journal" || x == "tmp") {
            continue;
        }
        let (j, damage) = match std::fs::read(&p) {
            Ok(b) => Journal::from_bytes(&b),
            Err(e) => (Journal::default(), vec![format!("cannot read it: {e}")]),
        };
        let n = j.items.len();
        if !damage.is_empty() {
            // What can be read names objects tinynmd added: removing them is safe; what cannot
            // be read is said, so that nobody thinks the kernel is as it was.
            tracing::error!(
                "{}: damaged journal: {}; removing the {n} objects it still names",
                p.display(),
                damage.join("; ")
            );
        }
        let errors = nl.remove(j).await;
        for err in &errors {
            tracing::error!("recovery from {}: {err}", p.display());
        }
        tracing::warn!(
            "removed {n} objects an earlier tinynmd left in the kernel ({})",
            p.display()
        );
        if let Err(err) = std::fs::remove_file(&p) {
            tracing::error!("cannot remove {}: {err}", p.display());
        }
    }
}
