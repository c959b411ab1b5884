//! The kernel's links as NetworkManager shows them: read through rtnetlink and kept current
//! from link and address events. The core turns them into Device objects, and a link that is
//! up with an address into an external (assumed) active connection, as NM does for
//! interfaces it did not configure.

use std::net::IpAddr;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo as Info, LinkLayerType, LinkMessage,
};
use rtnetlink::packet_core::NetlinkPayload;
use tokio::sync::mpsc;

/// `NMDeviceType` values tinynmd reports.
pub mod device_type {
    /// NM_DEVICE_TYPE_ETHERNET
    pub const ETHERNET: u32 = 1;
    /// NM_DEVICE_TYPE_GENERIC
    pub const GENERIC: u32 = 14;
    /// NM_DEVICE_TYPE_TUN
    pub const TUN: u32 = 16;
    /// NM_DEVICE_TYPE_VETH
    pub const VETH: u32 = 20;
    /// NM_DEVICE_TYPE_LOOPBACK
    pub const LOOPBACK: u32 = 32;
}

/// What kind of link, as far as NM's device classes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// `lo`
    Loopback,
    /// An ethernet-like link that is not a veth.
    Ethernet,
    /// One end of a veth pair.
    Veth,
    /// A tun device.
    Tun,
    /// A tap device.
    Tap,
    /// Anything else; the kernel's kind name, if it gave one.
    Generic(String),
}

impl LinkKind {
    /// `NMDeviceType`
    pub fn device_type(&self) -> u32 {
        match self {
            LinkKind::Loopback => device_type::LOOPBACK,
            LinkKind::Ethernet => device_type::ETHERNET,
            LinkKind::Veth => device_type::VETH,
            LinkKind::Tun | LinkKind::Tap => device_type::TUN,
            LinkKind::Generic(_) => device_type::GENERIC,
        }
    }

    /// The `connection.type` of the profile NM generates for such a link.
    pub fn connection_type(&self) -> &'static str {
        match self {
            LinkKind::Loopback => "loopback",
            LinkKind::Ethernet | LinkKind::Veth => "802-3-ethernet",
            LinkKind::Tun | LinkKind::Tap => "tun",
            LinkKind::Generic(_) => "generic",
        }
    }

    /// The driver name NM shows.
    pub fn driver(&self) -> &str {
        match self {
            LinkKind::Loopback => "unknown",
            LinkKind::Ethernet => "unknown",
            LinkKind::Veth => "veth",
            LinkKind::Tun | LinkKind::Tap => "tun",
            LinkKind::Generic(k) if k.is_empty() => "unknown",
            LinkKind::Generic(k) => k,
        }
    }

    /// NM_DEVICE_CAP_*: NM_SUPPORTED (1), CARRIER_DETECT (2), IS_SOFTWARE (4).
    pub fn capabilities(&self) -> u32 {
        match self {
            LinkKind::Veth | LinkKind::Ethernet => 0x7,
            _ => 0x5,
        }
    }
}

/// One address on a link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkAddr {
    /// The local address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Point-to-point peer, when it differs from the local address.
    pub peer: Option<IpAddr>,
}

/// A link as tinynmd sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// ifindex
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Its class.
    pub kind: LinkKind,
    /// MTU.
    pub mtu: u32,
    /// Hardware address, `XX:XX:…` upper case; empty when it has none.
    pub hw_address: String,
    /// IFF_UP
    pub up: bool,
    /// IFF_LOWER_UP (carrier).
    pub lower_up: bool,
    /// The other end of a veth pair, when it is in this namespace.
    pub peer: Option<u32>,
    /// Addresses, sorted.
    pub addrs: Vec<LinkAddr>,
    /// Bytes received and sent.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

impl Link {
    /// Up with an IPv4 address or a non-link-local IPv6 address: NM assumes such a link as
    /// an external connection ("connected (externally)").
    pub fn configured(&self) -> bool {
        let carrier = self.lower_up || self.kind == LinkKind::Loopback;
        self.up
            && carrier
            && self.addrs.iter().any(|a| match a.addr {
                IpAddr::V4(_) => true,
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            })
    }

    /// NM_DEVICE_INTERFACE_FLAG_*: UP (1), LOWER_UP (2), CARRIER (0x10000).
    pub fn interface_flags(&self) -> u32 {
        let mut f = 0;
        if self.up {
            f |= 0x1;
        }
        if self.lower_up {
            f |= 0x2 | 0x10000;
        }
        f
    }
}

fn hw_string(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn link_of(m: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut mtu = 0;
    let mut hw = Vec::new();
    let mut info_kind = None;
    let mut link = None;
    let mut other_netns = false;
    let mut stats = (0, 0);
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Mtu(v) => mtu = *v,
            LinkAttribute::Address(b) => hw = b.clone(),
            LinkAttribute::Link(i) => link = Some(*i),
            LinkAttribute::LinkNetNsId(_) => other_netns = true,
            LinkAttribute::Stats64(s) => stats = (s.rx_bytes, s.tx_bytes),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let Info::Kind(k) = i {
                        info_kind = Some(k.clone());
                    }
                }
            }
            _ => {}
        }
    }
    let ll = m.header.link_layer_type;
    let kind = match (&info_kind, ll) {
        (_, LinkLayerType::Loopback) => LinkKind::Loopback,
        (Some(InfoKind::Veth), _) => LinkKind::Veth,
        (Some(InfoKind::Tun), LinkLayerType::Ether) => LinkKind::Tap,
        (Some(InfoKind::Tun), _) => LinkKind::Tun,
        (None, LinkLayerType::Ether) => LinkKind::Ethernet,
        (Some(k), _) => LinkKind::Generic(k.to_string()),
        (None, _) => LinkKind::Generic(String::new()),
    };
    let hw_address = if kind == LinkKind::Loopback || !hw.is_empty() {
        hw_string(&hw)
    } else {
        String::new()
    };
    let flags = m.header.flags;
    Some(Link {
        index: m.header.index,
        name: name?,
        peer: (kind == LinkKind::Veth && !other_netns)
            .then_some(link)
            .flatten(),
        kind,
        mtu,
        hw_address,
        up: flags.contains(LinkFlags::Up),
        lower_up: flags.contains(LinkFlags::LowerUp),
        addrs: Vec::new(),
        rx_bytes: stats.0,
        tx_bytes: stats.1,
    })
}

/// Whether a link is a tunnel device a VPN may configure: tun and tap, the kernel's IP tunnels
/// (ipip, sit, gre, ip6tnl, vti, xfrm, wireguard…) and ppp; never loopback, an ethernet link, a
/// veth, a bridge, a vlan or anything else that carries other traffic.
/// A tun or tap device (what a VPN plugin makes, and may leave behind).
pub fn is_tun(m: &LinkMessage) -> bool {
    m.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => {
            infos.iter().any(|i| matches!(i, Info::Kind(InfoKind::Tun)))
        }
        _ => false,
    })
}

pub fn is_tunnel(m: &LinkMessage) -> bool {
    let kind = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            Info::Kind(k) => Some(k.clone()),
            _ => None,
        }),
        _ => None,
    });
    match kind {
        Some(k) => matches!(
            k,
            InfoKind::Tun
                | InfoKind::Wireguard
                | InfoKind::IpIp
                | InfoKind::SitTun
                | InfoKind::GreTun
                | InfoKind::GreTun6
                | InfoKind::GreTap
                | InfoKind::GreTap6
                | InfoKind::Ip6Tnl
                | InfoKind::Vti
                | InfoKind::Vti6
                | InfoKind::Xfrm
        ),
        // ppp devices (pppd's, for PPTP and L2TP plugins) carry no kind.
        None => matches!(
            m.header.link_layer_type,
            LinkLayerType::Ppp
                | LinkLayerType::None
                | LinkLayerType::Tunnel
                | LinkLayerType::Tunnel6
                | LinkLayerType::Sit
                | LinkLayerType::Ipgre
                | LinkLayerType::Ip6gre
        ),
    }
}

fn addr_of(m: &AddressMessage) -> Option<(u32, LinkAddr)> {
    let mut local = None;
    let mut address = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(x) => local = Some(*x),
            AddressAttribute::Address(x) => address = Some(*x),
            _ => {}
        }
    }
    // IFA_LOCAL is the local end on point-to-point links, IFA_ADDRESS then the peer.
    let (addr, peer) = match (local, address) {
        (Some(l), Some(a)) if l != a => (l, Some(a)),
        (Some(l), _) => (l, None),
        (None, Some(a)) => (a, None),
        (None, None) => return None,
    };
    Some((
        m.header.index,
        LinkAddr {
            addr,
            prefix: m.header.prefix_len,
            peer,
        },
    ))
}

/// Every link of the namespace, with its addresses, sorted by ifindex.
pub async fn read_links(h: &rtnetlink::Handle) -> Result<Vec<Link>, rtnetlink::Error> {
    let msgs: Vec<LinkMessage> = h.link().get().execute().try_collect().await?;
    let mut links: Vec<Link> = msgs.iter().filter_map(link_of).collect();
    let addrs: Vec<AddressMessage> = h.address().get().execute().try_collect().await?;
    for (index, a) in addrs.iter().filter_map(addr_of) {
        if let Some(l) = links.iter_mut().find(|l| l.index == index) {
            l.addrs.push(a);
        }
    }
    for l in &mut links {
        l.addrs.sort();
    }
    links.sort_by_key(|l| l.index);
    Ok(links)
}

/// The links as two reads in a row agree on them (at most five reads). A dump the kernel
/// interrupts because links or addresses changed meanwhile (`NLM_F_DUMP_INTR`, which rtnetlink
/// does not report) can miss entries: with a hundred VPNs' tunnels coming up at once, the
/// uplink was once read without its address, seen as unconfigured, and the VPNs over it taken
/// down.
async fn read_links_settled(h: &rtnetlink::Handle) -> Result<Vec<Link>, rtnetlink::Error> {
    let mut last = read_links(h).await?;
    for _ in 0..4 {
        let again = read_links(h).await?;
        if again == last {
            break;
        }
        last = again;
    }
    Ok(last)
}

/// Reads the links now and again after every link or address event (events that come
/// together are read once), sending each new picture to `tx`.
pub fn watch(tx: mpsc::Sender<Vec<Link>>) -> std::io::Result<()> {
    use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};
    use rtnetlink::sys::{AsyncSocket, SocketAddr};
    let (mut conn, handle, mut events) = rtnetlink::new_connection()?;
    conn.socket_mut().socket_mut().bind(&SocketAddr::new(
        0,
        RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
    ))?;
    tokio::spawn(conn);
    tokio::spawn(async move {
        let mut last: Option<Vec<Link>> = None;
        loop {
            match read_links_settled(&handle).await {
                Ok(links) => {
                    if last.as_ref() != Some(&links) {
                        last = Some(links.clone());
                        if tx.send(links).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot read the links: {e}"),
            }
            // Wait for an event, then let a burst of them settle before reading again.
            match events.next().await {
                None => return,
                Some((m, _)) => {
                    if let NetlinkPayload::InnerMessage(
                        RouteNetlinkMessage::NewLink(_) | RouteNetlinkMessage::DelLink(_),
                    ) = m.payload
                    {
                        tracing::trace!("link event");
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, events.next()).await {}
        }
    });
    Ok(())
}
