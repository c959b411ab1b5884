//! Applies a validated IP config through rtnetlink as one transaction: every object added is
//! journaled; a kernel error rolls back everything already added; teardown deletes exactly
//! the journal. Addresses and routes go in batches (`batch.rs`, ≤256 a datagram).

pub mod base;
mod batch;
mod journal;
pub mod links;
pub mod plan;
mod recover;
mod route;
mod txn;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::packet_core::NLM_F_CREATE;
use rtnetlink::{LinkUnspec, RouteMessageBuilder};

pub use journal::{Applied, Journal, save_journal};
pub use plan::Plan;
pub use recover::recover;
pub use route::Route;
pub use txn::{crash_point, fail_point};

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

/// At most this many requests in one datagram: more overflows the socket buffers (notes/).
pub const BATCH: usize = 256;
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A netlink failure, naming the object and the kernel's error.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] io::Error),
    /// The kernel refused a change.
    #[error("kernel refused to {op}: {source}")]
    Kernel {
        /// What was being done, naming the object.
        op: String,
        /// The kernel's errno.
        #[source]
        source: io::Error,
    },
    /// The kernel did not answer in time.
    #[error("no answer from the kernel within {0:?} while trying to {1}")]
    Timeout(Duration, String),
    /// The socket failed while a batch was sent or answered.
    #[error("the netlink socket failed while trying to {0}: {1}")]
    Io(String, #[source] io::Error),
    /// A request could not be sent.
    #[error("netlink request failed: {0}")]
    Proto(String),
    /// The journal could not be written ahead of a change, so the change was not made.
    #[error("cannot write the journal {0} (nothing is changed that it cannot name): {1}")]
    Journal(String, #[source] io::Error),
}

/// What a link looks like now.
#[derive(Debug, Clone, Copy)]
pub struct LinkState {
    /// ifindex
    pub index: u32,
    /// Administratively up.
    pub up: bool,
    /// Current MTU.
    pub mtu: u32,
    /// A tunnel device ([`links::is_tunnel`]).
    pub tunnel: bool,
    /// A tun or tap device.
    pub tun: bool,
}

/// How the kernel reaches an address today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// Next hop, when not directly reachable.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface.
    pub oif: u32,
}

/// The daemon's netlink sockets: one for queries and single requests, one for batches.
#[derive(Clone)]
pub struct Netlink {
    handle: rtnetlink::Handle,
    // One batch at a time: the errors of a batch's un-acknowledged requests arrive on the
    // socket's unsolicited stream, which must not be shared by two batches.
    batch: Arc<tokio::sync::Mutex<batch::BatchSocket>>,
    // How many of our connections use each shared route. Locked only for instants, never
    // across an await.
    shared: Arc<Mutex<HashMap<String, usize>>>,
}

/// A route as NM's `RouteData` lists it.
pub fn route_entry(r: &Route) -> RouteEntry {
    RouteEntry {
        dest: r.dest,
        prefix: r.prefix,
        next_hop: r.gateway,
        metric: r.metric,
        table: r.kernel_table(),
    }
}

/// errnos that mean "already gone" when deleting.
pub(crate) fn already_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ESRCH) | Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV) | Some(libc::ENOENT)
    )
}

impl Netlink {
    /// Opens the sockets in the calling thread's network namespace.
    pub fn new() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        tokio::spawn(conn);
        let batch = batch::BatchSocket::new().map_err(NetlinkError::Socket)?;
        Ok(Netlink {
            handle,
            batch: Arc::new(tokio::sync::Mutex::new(batch)),
            shared: Arc::default(),
        })
    }

    /// Every link with its addresses.
    pub async fn links(&self) -> Result<Vec<links::Link>, NetlinkError> {
        links::read_links(&self.handle)
            .await
            .map_err(|e| rt_err("read the links".into(), e))
    }

    /// A link by name, or `None` when there is none.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<LinkState>, NetlinkError> {
        let r = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match r {
            Ok(Some(m)) => Ok(Some(link_state(&m))),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(rt_err(format!("look up link '{name}'"), e)),
        }
    }

    /// A link by index.
    pub async fn link_by_index(&self, index: u32) -> Result<Option<LinkState>, NetlinkError> {
        let r = self
            .handle
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_next()
            .await;
        match r {
            Ok(m) => Ok(m.map(|m| link_state(&m))),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(rt_err(format!("look up link #{index}"), e)),
        }
    }

    /// Deletes link `index` if it is still a tun device named `name` (not a link that has
    /// since taken its name); whether it did.
    pub async fn remove_tun(&self, index: u32, name: &str) -> Result<bool, NetlinkError> {
        match self.link_by_name(name).await? {
            Some(l) if l.index == index && l.tun => {}
            _ => return Ok(false),
        }
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(false),
            Err(e) => Err(rt_err(format!("remove link '{name}'"), e)),
        }
    }

    /// How the kernel reaches `dst` now (main table), or `None` when it cannot.
    pub async fn route_get(&self, dst: IpAddr) -> Result<Option<Lookup>, NetlinkError> {
        let msg = match dst {
            IpAddr::V4(a) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(a, 32)
                .build(),
            IpAddr::V6(a) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(a, 128)
                .build(),
        };
        let mut req = self.handle.route().get(msg);
        req.message_mut().header.table = 0;
        let r = req.execute().try_next().await;
        match r {
            Ok(Some(m)) => {
                let mut out = Lookup {
                    gateway: None,
                    oif: 0,
                };
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                            out.gateway = Some(IpAddr::V4(*g))
                        }
                        RouteAttribute::Gateway(RouteAddress::Inet6(g)) => {
                            out.gateway = Some(IpAddr::V6(*g))
                        }
                        RouteAttribute::Oif(i) => out.oif = *i,
                        _ => {}
                    }
                }
                Ok((out.oif != 0).then_some(out))
            }
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e))
                if [-libc::ENETUNREACH, -libc::EHOSTUNREACH, -libc::ESRCH]
                    .contains(&e.raw_code()) =>
            {
                Ok(None)
            }
            Err(e) => Err(rt_err(format!("look up the route to {dst}"), e)),
        }
    }

    /// Sets a link up (and its MTU); returns the old MTU when it changed it.
    pub async fn link_up(&self, index: u32, mtu: Option<u32>) -> Result<(), NetlinkError> {
        let mut b = LinkUnspec::new_with_index(index).up();
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle
            .link()
            .set(b.build())
            .execute()
            .await
            .map_err(|e| {
                rt_err(
                    match mtu {
                        Some(m) => format!("set link #{index} up with MTU {m}"),
                        None => format!("set link #{index} up"),
                    },
                    e,
                )
            })
    }

    /// Sends requests in batches of at most [`BATCH`] a datagram (`batch.rs`) and returns the
    /// failed ones, by index. Not having the kernel build and send ten thousand ACKs is most
    /// of what makes this faster than `ip`.
    pub async fn batch(
        &self,
        msgs: &[RouteNetlinkMessage],
        flags: u16,
    ) -> Result<Vec<(usize, io::Error)>, NetlinkError> {
        self.batch_with(msgs.len(), flags, |i, out, flags, seq| {
            journal::serialize_request(out, &msgs[i], flags, seq)
        })
        .await
        .map_err(|b| b.error)
    }

    /// [`Netlink::batch`] of objects' add (or delete) requests, each written straight into the
    /// datagram (a route with no message built); the objects must not be link changes.
    pub(crate) async fn batch_applied(
        &self,
        items: &[&Applied],
        flags: u16,
        add: bool,
    ) -> Result<Vec<(usize, io::Error)>, BatchFailed> {
        self.batch_with(items.len(), flags, |i, out, flags, seq| {
            let written = items[i].write_request(out, add, flags, seq);
            debug_assert!(written, "a link change has no request");
        })
        .await
    }

    async fn batch_with(
        &self,
        n: usize,
        flags: u16,
        write: impl Fn(usize, &mut Vec<u8>, u16, u32),
    ) -> Result<Vec<(usize, io::Error)>, BatchFailed> {
        let mut sock = self.batch.lock().await;
        let mut refused = Vec::new();
        for at in (0..n).step_by(BATCH) {
            let count = BATCH.min(n - at);
            let op = || format!("apply {count} changes");
            let sent = tokio::time::timeout(
                REPLY_TIMEOUT,
                sock.send(count, flags, |i, out, f, seq| write(at + i, out, f, seq)),
            )
            .await
            .map_err(|_| NetlinkError::Timeout(REPLY_TIMEOUT, op()))
            .and_then(|r| r.map_err(|e| NetlinkError::Io(op(), e)));
            let this = match sent {
                Ok(this) => this,
                Err(error) => {
                    return Err(BatchFailed { refused, error });
                }
            };
            if flags & NLM_F_CREATE == 0 {
                crash_point("remove-batch");
            }
            refused.extend(this.into_iter().map(|(i, e)| (at + i, e)));
        }
        Ok(refused)
    }
}

/// A batch that failed part-way (the socket, or no answer in time): what is known of it.
/// The kernel may have taken any of the requests it did not answer, or none.
pub(crate) struct BatchFailed {
    /// The refusals among the requests it did answer, by index, with the kernel's error.
    pub refused: Vec<(usize, io::Error)>,
    /// Why the rest has no answer.
    pub error: NetlinkError,
}

fn link_state(m: &LinkMessage) -> LinkState {
    let mtu = m
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })
        .unwrap_or(0);
    LinkState {
        index: m.header.index,
        up: m.header.flags.contains(LinkFlags::Up),
        mtu,
        tunnel: links::is_tunnel(m),
        tun: links::is_tun(m),
    }
}

pub(crate) fn rt_err(op: String, e: rtnetlink::Error) -> NetlinkError {
    match e {
        rtnetlink::Error::NetlinkError(m) => NetlinkError::Kernel {
            op,
            source: m.to_io(),
        },
        other => NetlinkError::Proto(format!("{op}: {other}")),
    }
}
