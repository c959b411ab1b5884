//! Applies a validated IP config through rtnetlink as one transaction: every object added is
//! journaled; a kernel error rolls back everything already added; teardown deletes exactly
//! the journal. Addresses and routes go in batches (`request_batch`, ≤256 a datagram).

mod journal;
pub mod links;
pub mod plan;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::{LinkUnspec, RouteMessageBuilder};

pub use journal::{Applied, Journal, recover, save_journal};
pub use plan::Plan;

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

struct BatchSocket {
    handle: rtnetlink::proto::ConnectionHandle<RouteNetlinkMessage>,
    unsolicited: futures::channel::mpsc::UnboundedReceiver<(
        NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
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
    /// A request could not be sent.
    #[error("netlink request failed: {0}")]
    Proto(String),
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
    batch: Arc<tokio::sync::Mutex<BatchSocket>>,
    // How many of our connections use each shared route. Locked only for instants, never
    // across an await.
    shared: Arc<Mutex<HashMap<String, usize>>>,
}

/// A route as NM's `RouteData` lists it, with its outgoing interface.
pub fn route_entry(r: &RouteMessage) -> (u32, RouteEntry) {
    let ip = |a: &RouteAddress| match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    };
    let v6 = r.header.address_family == netlink_packet_route::AddressFamily::Inet6;
    let mut e = RouteEntry {
        dest: if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        },
        prefix: r.header.destination_prefix_length,
        next_hop: None,
        metric: 0,
        table: u32::from(r.header.table),
    };
    let mut oif = 0;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => {
                if let Some(d) = ip(d) {
                    e.dest = d;
                }
            }
            RouteAttribute::Gateway(g) => e.next_hop = ip(g),
            RouteAttribute::Oif(i) => oif = *i,
            RouteAttribute::Priority(p) => e.metric = *p,
            RouteAttribute::Table(t) => e.table = *t,
            _ => {}
        }
    }
    (oif, e)
}

/// errnos that mean "already gone" when deleting.
fn already_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ESRCH) | Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV) | Some(libc::ENOENT)
    )
}

fn same_request(a: &RouteNetlinkMessage, b: &RouteNetlinkMessage) -> bool {
    match (a, b) {
        (RouteNetlinkMessage::NewRoute(x), RouteNetlinkMessage::NewRoute(y))
        | (RouteNetlinkMessage::DelRoute(x), RouteNetlinkMessage::DelRoute(y)) => x == y,
        (RouteNetlinkMessage::NewAddress(x), RouteNetlinkMessage::NewAddress(y))
        | (RouteNetlinkMessage::DelAddress(x), RouteNetlinkMessage::DelAddress(y)) => x == y,
        _ => false,
    }
}

impl Netlink {
    /// Opens the sockets in the calling thread's network namespace.
    pub fn new() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        tokio::spawn(conn);
        let (mut conn, batch, unsolicited) =
            rtnetlink::proto::new_connection::<RouteNetlinkMessage>(
                rtnetlink::sys::protocols::NETLINK_ROUTE,
            )
            .map_err(NetlinkError::Socket)?;
        {
            use rtnetlink::sys::AsyncSocket;
            // ACKs of a whole batch must fit, or the kernel drops them and the batch never ends.
            conn.socket_mut()
                .socket_mut()
                .set_rx_buf_sz(4 << 20)
                .map_err(NetlinkError::Socket)?;
        }
        tokio::spawn(conn);
        Ok(Netlink {
            handle,
            batch: Arc::new(tokio::sync::Mutex::new(BatchSocket {
                handle: batch,
                unsolicited,
            })),
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

    /// Sends requests in batches of at most [`BATCH`] and returns the failed ones, by index.
    ///
    /// Only the last request of a datagram asks for an ACK: the kernel handles a datagram's
    /// requests in order, within the send, so that ACK means all of them are done, and each
    /// failure still comes back as an error carrying the request it refused. Not having the
    /// kernel build and send ten thousand ACKs is most of what makes this faster than `ip`.
    pub async fn batch(
        &self,
        msgs: &[RouteNetlinkMessage],
        flags: u16,
    ) -> Result<Vec<(usize, io::Error)>, NetlinkError> {
        use rtnetlink::proto::ReplyExpectation;
        let mut sock = self.batch.lock().await;
        let mut failed = Vec::new();
        for (c, chunk) in msgs.chunks(BATCH).enumerate() {
            let base = c * BATCH;
            let last = chunk.len() - 1;
            let reqs = chunk.iter().cloned().enumerate().map(|(i, m)| {
                let mut nl = NetlinkMessage::from(m);
                if i == last {
                    nl.header.flags = flags | NLM_F_ACK;
                    (nl, ReplyExpectation::Expected)
                } else {
                    nl.header.flags = flags & !NLM_F_ACK;
                    (nl, ReplyExpectation::NotExpected)
                }
            });
            let mut replies = sock
                .handle
                .request_batch_with_expectation(reqs, rtnetlink::sys::SocketAddr::new(0, 0))
                .map_err(|e| NetlinkError::Proto(e.to_string()))?;
            let mut errors: Vec<NetlinkMessage<RouteNetlinkMessage>> = Vec::new();
            let drain = async {
                while let Some(reply) = replies.next().await {
                    errors.push(reply);
                }
            };
            tokio::time::timeout(REPLY_TIMEOUT, drain)
                .await
                .map_err(|_| {
                    NetlinkError::Timeout(REPLY_TIMEOUT, format!("apply {} changes", chunk.len()))
                })?;
            // The ACK has come, so every error of this datagram is already queued.
            while let Ok((m, _)) = sock.unsolicited.try_recv() {
                errors.push(m);
            }
            for reply in errors {
                match reply.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        let err = e.to_io();
                        let echoed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&e.header)
                            .ok()
                            .and_then(|m| match m.payload {
                                NetlinkPayload::InnerMessage(i) => Some(i),
                                _ => None,
                            });
                        let at = echoed
                            .and_then(|m| chunk.iter().position(|c| same_request(c, &m)))
                            .map(|i| base + i);
                        match at {
                            Some(i) => failed.push((i, err)),
                            None => {
                                tracing::warn!("kernel error on an unidentified request: {err}");
                                failed.push((usize::MAX, err));
                            }
                        }
                    }
                    NetlinkPayload::Error(_) | NetlinkPayload::Done(_) | NetlinkPayload::Noop => {}
                    other => tracing::debug!("unexpected netlink reply: {other:?}"),
                }
            }
        }
        Ok(failed)
    }

    /// Applies a plan as one transaction. On any error everything already added is removed
    /// again and the error names the object the kernel refused.
    pub async fn apply(&self, plan: &Plan) -> Result<Journal, NetlinkError> {
        let mut journal = Journal::default();
        let r = self.apply_into(plan, &mut journal).await;
        match r {
            Ok(()) => Ok(journal),
            Err(e) => {
                for re in self.remove(journal).await {
                    tracing::error!("rollback: {re}");
                }
                Err(e)
            }
        }
    }

    async fn apply_into(&self, plan: &Plan, journal: &mut Journal) -> Result<(), NetlinkError> {
        for l in &plan.links {
            let now = self
                .link_by_index(l.index)
                .await?
                .ok_or_else(|| NetlinkError::Kernel {
                    op: format!("bring up link #{}", l.index),
                    source: io::Error::from_raw_os_error(libc::ENODEV),
                })?;
            let mtu = l.mtu.filter(|m| *m != now.mtu);
            if !now.up || mtu.is_some() {
                self.link_up(l.index, mtu).await?;
            }
            if mtu.is_some() {
                journal.items.push(Applied::Mtu(l.index, now.mtu));
            }
        }
        // Routes without EXCL: the kernel still refuses an identical route, but lets two VPNs
        // each have, say, a default route of the same metric through their own interface.
        let address_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let route_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
        for (group, flags) in [
            (&plan.addresses, address_flags),
            (&plan.routes, route_flags),
            (&plan.rules, address_flags),
        ] {
            // A shared route some other connection of ours already has: count it, send nothing.
            let mut send: Vec<&Applied> = Vec::with_capacity(group.len());
            {
                let mut shared = self.shared.lock().expect("poisoned");
                for a in group {
                    match a.shared_key() {
                        Some(k) => match shared.get_mut(&k) {
                            Some(n) => {
                                *n += 1;
                                journal.items.push(a.clone());
                            }
                            None => {
                                // Reserved before it is sent, so that a connection applying
                                // at the same moment counts it rather than racing to add it.
                                shared.insert(k, 1);
                                send.push(a);
                            }
                        },
                        None => send.push(a),
                    }
                }
            }
            let msgs: Vec<RouteNetlinkMessage> =
                send.iter().filter_map(|a| a.add_message()).collect();
            let failed = self.batch(&msgs, flags).await?;
            let mut outcome: Vec<Option<&io::Error>> = vec![None; send.len()];
            let mut unknown = None;
            for (i, e) in &failed {
                match outcome.get_mut(*i) {
                    Some(o) => *o = Some(e),
                    None => unknown = Some(e),
                }
            }
            let mut first_error = None;
            {
                let mut shared = self.shared.lock().expect("poisoned");
                for (a, o) in send.iter().zip(&outcome) {
                    if o.is_some()
                        && let Some(k) = a.shared_key()
                        && let Some(n) = shared.get_mut(&k)
                    {
                        *n -= 1;
                        if *n == 0 {
                            shared.remove(&k);
                        }
                    }
                    match o {
                        None => journal.items.push((*a).clone()),
                        Some(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                            // Someone else's identical object: it stays, and stays theirs.
                            tracing::warn!(
                                "{} is already in the kernel: left as it is",
                                a.describe()
                            );
                        }
                        Some(e) => {
                            if first_error.is_none() {
                                first_error = Some((
                                    a.describe(),
                                    io::Error::from_raw_os_error(
                                        e.raw_os_error().unwrap_or(libc::EIO),
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            if let Some(e) = unknown {
                // The kernel named no request we sent: journal all (deleting what is not
                // there is harmless) and fail.
                journal.items.extend(send.iter().map(|a| (*a).clone()));
                return Err(NetlinkError::Kernel {
                    op: "apply a batch of changes".into(),
                    source: io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)),
                });
            }
            if let Some((what, source)) = first_error {
                return Err(NetlinkError::Kernel {
                    op: format!("add {what}"),
                    source,
                });
            }
        }
        Ok(())
    }

    /// Removes exactly what a journal recorded, newest first; returns the errors (an object
    /// already gone is not one).
    pub async fn remove(&self, journal: Journal) -> Vec<NetlinkError> {
        let mut errors = Vec::new();
        let items: Vec<Applied> = {
            let mut shared = self.shared.lock().expect("poisoned");
            journal
                .items
                .into_iter()
                .rev()
                .filter(|a| match a.shared_key() {
                    None => true,
                    Some(k) => match shared.get_mut(&k) {
                        Some(n) if *n > 1 => {
                            *n -= 1;
                            false
                        }
                        _ => {
                            shared.remove(&k);
                            true
                        }
                    },
                })
                .collect()
        };
        let dels: Vec<(usize, RouteNetlinkMessage)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.del_message().map(|m| (i, m)))
            .collect();
        let msgs: Vec<RouteNetlinkMessage> = dels.iter().map(|(_, m)| m.clone()).collect();
        match self.batch(&msgs, NLM_F_REQUEST | NLM_F_ACK).await {
            Ok(failed) => {
                for (i, e) in failed {
                    if already_gone(&e) {
                        continue;
                    }
                    let what = dels
                        .get(i)
                        .map(|(j, _)| items[*j].describe())
                        .unwrap_or_else(|| "a change".into());
                    errors.push(NetlinkError::Kernel {
                        op: format!("remove {what}"),
                        source: e,
                    });
                }
            }
            Err(e) => errors.push(e),
        }
        for a in &items {
            if let Applied::Mtu(index, old) = a {
                match self
                    .handle
                    .link()
                    .set(LinkUnspec::new_with_index(*index).mtu(*old).build())
                    .execute()
                    .await
                {
                    Ok(()) => {}
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {}
                    Err(e) => errors.push(rt_err(format!("restore MTU {old} on #{index}"), e)),
                }
            }
        }
        errors
    }
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
    }
}

fn rt_err(op: String, e: rtnetlink::Error) -> NetlinkError {
    match e {
        rtnetlink::Error::NetlinkError(m) => NetlinkError::Kernel {
            op,
            source: m.to_io(),
        },
        other => NetlinkError::Proto(format!("{op}: {other}")),
    }
}
