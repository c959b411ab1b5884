//! Throwaway network namespaces. A namespace lives as long as its fd and the processes in it:
//! nothing is bind-mounted, so nothing is left behind after a crash.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use nix::sched::{CloneFlags, setns, unshare};

use crate::SandboxError;

/// A network namespace of our own.
pub struct Netns {
    pub(crate) fd: OwnedFd,
}

/// Fails with a message saying so when not root.
pub fn require_root(what: &str) -> Result<(), SandboxError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(SandboxError::NotRoot(what.to_string()))
    }
}

impl Netns {
    /// Creates a namespace with `lo` up.
    pub fn new() -> Result<Netns, SandboxError> {
        require_root("creating a network namespace")?;
        let fd = std::thread::spawn(|| -> Result<OwnedFd, SandboxError> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| SandboxError::Sys("unshare(CLONE_NEWNET)", e.into()))?;
            let f = std::fs::File::open("/proc/thread-self/ns/net")
                .map_err(|e| SandboxError::Sys("open /proc/thread-self/ns/net", e))?;
            Ok(f.into())
        })
        .join()
        .expect("namespace thread panicked")?;
        let ns = Netns { fd };
        ns.run(|| async {
            let (c, h, _) = rtnetlink::new_connection()?;
            tokio::spawn(c);
            let lo = h
                .link()
                .get()
                .match_name("lo")
                .execute()
                .try_next()
                .await?
                .ok_or_else(|| std::io::Error::other("no lo"))?;
            h.link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(lo.header.index)
                        .up()
                        .build(),
                )
                .execute()
                .await?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .map_err(|e| SandboxError::Setup(format!("bring lo up: {e}")))?;
        Ok(ns)
    }

    /// Makes `cmd` start inside this namespace.
    pub fn prepare(&self, cmd: &mut std::process::Command) {
        let fd = self.fd.try_clone().expect("dup of a namespace fd");
        // SAFETY: only async-signal-safe calls (setns) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
            });
        }
    }

    /// Same as [`Netns::prepare`], for tokio's Command.
    pub fn prepare_tokio(&self, cmd: &mut tokio::process::Command) {
        let fd = self.fd.try_clone().expect("dup of a namespace fd");
        // SAFETY: only async-signal-safe calls (setns) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
            });
        }
    }

    /// Runs an async closure on a thread inside the namespace, with a runtime of its own.
    pub fn run<F, Fut, R>(&self, f: F) -> R
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = R>,
        R: Send,
    {
        let fd = self.fd.as_fd();
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(fd, CloneFlags::CLONE_NEWNET).expect("setns into our own namespace");
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(f())
            })
            .join()
            .expect("namespace thread panicked")
        })
    }

    /// Adds a veth pair `veth0`/`veth1` with `10.99.0.2/24` on `veth0` and a default route
    /// via `10.99.0.1`: a parent network for VPNs to sit on.
    pub fn add_parent(&self) -> Result<(), SandboxError> {
        self.run(|| async {
            let (c, h, _) = rtnetlink::new_connection()?;
            tokio::spawn(c);
            h.link()
                .add(rtnetlink::LinkVeth::new("veth0", "veth1").up().build())
                .execute()
                .await?;
            let mut idx = Vec::new();
            for n in ["veth0", "veth1"] {
                let l = h
                    .link()
                    .get()
                    .match_name(n)
                    .execute()
                    .try_next()
                    .await?
                    .ok_or_else(|| std::io::Error::other(n))?;
                h.link()
                    .set(
                        rtnetlink::LinkUnspec::new_with_index(l.header.index)
                            .up()
                            .build(),
                    )
                    .execute()
                    .await?;
                idx.push(l.header.index);
            }
            h.address()
                .add(idx[0], IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2)), 24)
                .execute()
                .await?;
            let r = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(Ipv4Addr::new(10, 99, 0, 1))
                .output_interface(idx[0])
                .priority(100)
                .build();
            h.route().add(r).execute().await?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .map_err(|e| SandboxError::Setup(format!("parent network: {e}")))
    }

    /// Two hosts: this namespace (the client) and a new one (the server), joined by a veth
    /// pair: `veth0` 10.99.0.2/24 here, the server's `veth1` 10.99.0.1/24, a default route
    /// here via 10.99.0.254 (no such host: only the tunnel reaches the server's other
    /// networks), and behind the server a network 10.200.0.0/24 (`behind0`, 10.200.0.1, one
    /// end of a veth pair in the server's namespace).
    pub fn add_server(&self) -> Result<Netns, SandboxError> {
        use std::os::fd::AsRawFd;
        let server = Netns::new()?;
        let server_fd = server.fd.as_raw_fd();
        self.run(|| async move {
            let (c, h, _) = rtnetlink::new_connection()?;
            tokio::spawn(c);
            h.link()
                .add(rtnetlink::LinkVeth::new("veth0", "veth1").up().build())
                .execute()
                .await?;
            let index = |h: rtnetlink::Handle, n: &'static str| async move {
                let l = h
                    .link()
                    .get()
                    .match_name(n.to_string())
                    .execute()
                    .try_next()
                    .await?
                    .ok_or_else(|| std::io::Error::other(n))?;
                Ok::<u32, Box<dyn std::error::Error + Send + Sync>>(l.header.index)
            };
            let v1 = index(h.clone(), "veth1").await?;
            h.link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(v1)
                        .setns_by_fd(server_fd)
                        .build(),
                )
                .execute()
                .await?;
            let v0 = index(h.clone(), "veth0").await?;
            h.link()
                .set(rtnetlink::LinkUnspec::new_with_index(v0).up().build())
                .execute()
                .await?;
            h.address()
                .add(v0, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2)), 24)
                .execute()
                .await?;
            // The way out goes to a router that is not there: the server's networks are
            // reachable only through the tunnel, so a ping that comes back crossed it.
            let r = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(Ipv4Addr::new(10, 99, 0, 254))
                .output_interface(v0)
                .priority(100)
                .build();
            h.route().add(r).execute().await?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .map_err(|e| SandboxError::Setup(format!("client side: {e}")))?;
        server
            .run(|| async {
                let (c, h, _) = rtnetlink::new_connection()?;
                tokio::spawn(c);
                // The network behind the server: one end of a veth pair of its own.
                h.link()
                    .add(rtnetlink::LinkVeth::new("behind0", "behind1").up().build())
                    .execute()
                    .await?;
                for (name, addr) in [
                    ("veth1", Some(Ipv4Addr::new(10, 99, 0, 1))),
                    ("behind0", Some(Ipv4Addr::new(10, 200, 0, 1))),
                    ("behind1", None),
                ] {
                    let l = h
                        .link()
                        .get()
                        .match_name(name.to_string())
                        .execute()
                        .try_next()
                        .await?
                        .ok_or_else(|| std::io::Error::other(name))?;
                    let i = l.header.index;
                    h.link()
                        .set(rtnetlink::LinkUnspec::new_with_index(i).up().build())
                        .execute()
                        .await?;
                    if let Some(addr) = addr {
                        h.address().add(i, IpAddr::V4(addr), 24).execute().await?;
                    }
                }
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            })
            .map_err(|e| SandboxError::Setup(format!("server side: {e}")))?;
        Ok(server)
    }

    /// The kernel's view: links, addresses and routes (main and other tables, not `local`).
    pub fn snapshot(&self) -> Result<Kernel, SandboxError> {
        self.run(|| async {
            let (c, h, _) = rtnetlink::new_connection()?;
            tokio::spawn(c);
            let links: Vec<LinkMessage> = h.link().get().execute().try_collect().await?;
            let addrs: Vec<AddressMessage> = h.address().get().execute().try_collect().await?;
            let mut routes: Vec<RouteMessage> = Vec::new();
            for v in [rtnetlink::IpVersion::V4, rtnetlink::IpVersion::V6] {
                let msg = match v {
                    rtnetlink::IpVersion::V4 => {
                        rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new().build()
                    }
                    rtnetlink::IpVersion::V6 => {
                        rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
                    }
                };
                let mut rs: Vec<RouteMessage> = h.route().get(msg).execute().try_collect().await?;
                routes.append(&mut rs);
            }
            let mut rules = Vec::new();
            for v in [rtnetlink::IpVersion::V4, rtnetlink::IpVersion::V6] {
                let rs: Vec<netlink_packet_route::rule::RuleMessage> =
                    h.rule().get(v).execute().try_collect().await?;
                for r in rs {
                    use netlink_packet_route::rule::RuleAttribute as A;
                    let mut prio = 0;
                    let (mut from, mut to, mut table) = (None, None, r.header.table as u32);
                    for a in &r.attributes {
                        match a {
                            A::Priority(p) => prio = *p,
                            A::Source(x) => from = Some(format!("{x}/{}", r.header.src_len)),
                            A::Destination(x) => to = Some(format!("{x}/{}", r.header.dst_len)),
                            A::Table(t) => table = *t,
                            _ => {}
                        }
                    }
                    // The kernel's own: local, main, default.
                    if [0, 32766, 32767].contains(&prio) && from.is_none() && to.is_none() {
                        continue;
                    }
                    let mut s = format!("priority {prio}");
                    if let Some(f) = from {
                        s.push_str(&format!(" from {f}"));
                    }
                    if let Some(t) = to {
                        s.push_str(&format!(" to {t}"));
                    }
                    s.push_str(&format!(" table {table}"));
                    rules.push(s);
                }
            }
            rules.sort();
            let mut k = Kernel::from_messages(links, addrs, routes);
            k.rules = rules;
            Ok::<Kernel, Box<dyn std::error::Error + Send + Sync>>(k)
        })
        .map_err(|e| SandboxError::Setup(format!("netlink dump: {e}")))
    }
}

/// A link, as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// ifindex
    pub index: u32,
    /// Name.
    pub name: String,
    /// Administratively up.
    pub up: bool,
    /// MTU.
    pub mtu: u32,
}

/// One dump of the kernel's state in a namespace, rendered like `ip` does.
#[derive(Debug, Clone, Default)]
pub struct Kernel {
    /// Links.
    pub links: Vec<Link>,
    /// `ADDR[ peer PEER]/PLEN dev NAME`, global scope only.
    pub addresses: Vec<String>,
    /// `DEST/PLEN [via GW] dev NAME [proto P] metric M [table T]`; no local/multicast/link-local.
    pub routes: Vec<String>,
    /// Policy rules other than the kernel's defaults: `priority P [from A/L] [to A/L] table T`.
    pub rules: Vec<String>,
}

impl Kernel {
    fn from_messages(
        links: Vec<LinkMessage>,
        addrs: Vec<AddressMessage>,
        routes: Vec<RouteMessage>,
    ) -> Kernel {
        let links: Vec<Link> = links
            .iter()
            .map(|l| Link {
                index: l.header.index,
                name: l
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })
                    .unwrap_or_default(),
                up: l.header.flags.contains(LinkFlags::Up),
                mtu: l
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::Mtu(m) => Some(*m),
                        _ => None,
                    })
                    .unwrap_or(0),
            })
            .collect();
        let name = |i: u32| {
            links
                .iter()
                .find(|l| l.index == i)
                .map(|l| l.name.clone())
                .unwrap_or_else(|| format!("#{i}"))
        };
        let mut addresses = Vec::new();
        for a in &addrs {
            if a.header.scope != netlink_packet_route::address::AddressScope::Universe {
                continue;
            }
            let local = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Local(l) => Some(*l),
                _ => None,
            });
            let addr = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(l) => Some(*l),
                _ => None,
            });
            let s = match (local, addr) {
                (Some(l), Some(p)) if l != p => format!("{l} peer {p}/{}", a.header.prefix_len),
                (Some(l), _) | (None, Some(l)) => format!("{l}/{}", a.header.prefix_len),
                _ => continue,
            };
            addresses.push(format!("{s} dev {}", name(a.header.index)));
        }
        let mut out_routes = Vec::new();
        for r in &routes {
            let table = r
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(r.header.table as u32);
            let unreachable = r.header.kind == netlink_packet_route::route::RouteType::Unreachable;
            if table == 255
                || (r.header.kind != netlink_packet_route::route::RouteType::Unicast
                    && !unreachable)
            {
                continue;
            }
            let mut dst = None;
            let mut gw = None;
            let mut oif = None;
            let mut metric = 0;
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(d) => dst = Some(addr_str(d)),
                    RouteAttribute::Gateway(g) => gw = Some(addr_str(g)),
                    RouteAttribute::Oif(o) => oif = Some(*o),
                    RouteAttribute::Priority(p) => metric = *p,
                    _ => {}
                }
            }
            let dst = match dst {
                Some(d) => format!("{d}/{}", r.header.destination_prefix_length),
                None => "default".into(),
            };
            if dst.starts_with("fe80:") || dst.starts_with("ff00:") {
                continue;
            }
            let mut s = if unreachable {
                format!("unreachable {dst}")
            } else {
                dst
            };
            if let Some(g) = gw {
                s.push_str(&format!(" via {g}"));
            }
            if let Some(o) = oif {
                s.push_str(&format!(" dev {}", name(o)));
            }
            match r.header.protocol {
                RouteProtocol::Kernel => s.push_str(" proto kernel"),
                RouteProtocol::Static => s.push_str(" proto static"),
                RouteProtocol::Boot => {}
                other => s.push_str(&format!(" proto {other:?}")),
            }
            s.push_str(&format!(" metric {metric}"));
            if table != 254 {
                s.push_str(&format!(" table {table}"));
            }
            out_routes.push(s);
        }
        out_routes.sort();
        addresses.sort();
        Kernel {
            links,
            addresses,
            routes: out_routes,
            rules: Vec::new(),
        }
    }

    /// The link with this name.
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Routes through a device.
    pub fn routes_on(&self, dev: &str) -> Vec<&str> {
        let needle = format!(" dev {dev} ");
        self.routes
            .iter()
            .filter(|r| format!("{r} ").contains(&needle))
            .map(|s| s.as_str())
            .collect()
    }
}

fn addr_str(a: &RouteAddress) -> String {
    match a {
        RouteAddress::Inet(v) => v.to_string(),
        RouteAddress::Inet6(v) => v.to_string(),
        other => format!("{other:?}"),
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.links {
            writeln!(
                f,
                "link {} {} mtu {}",
                l.name,
                if l.up { "UP" } else { "DOWN" },
                l.mtu
            )?;
        }
        for a in &self.addresses {
            writeln!(f, "addr {a}")?;
        }
        for r in &self.routes {
            writeln!(f, "route {r}")?;
        }
        for r in &self.rules {
            writeln!(f, "rule {r}")?;
        }
        Ok(())
    }
}
