//! What the kill switch lets through, and its nftables form: three base chains (input, output,
//! forward) that drop what no rule accepts.
//!
//! Accepted both ways: loopback; each tunnel; each VPN server (its address, and its port and
//! protocol when known); DHCPv4 (client port 68 to server port 67 and back); IPv6 neighbour
//! discovery (link-local by nature: without it no IPv6 server is reachable); the allowed
//! prefixes. Everything else, IPv4 and IPv6, is dropped.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rustables::error::BuilderError;
use rustables::expr::{
    Cmp, CmpOp, HighLevelPayload, ICMPv6HeaderField, Meta, MetaType, TransportHeaderField,
};
use rustables::{Batch, Chain, ChainPolicy, ChainType, Hook, HookClass, Protocol, Rule, Table};
use tinynm_config::endpoints::Transport;

/// A VPN server the uplink may reach: its address, and the port and protocol when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Server {
    /// The server's address.
    pub addr: IpAddr,
    /// Its port and protocol; `None`: any.
    pub port: Option<(Transport, u16)>,
}

/// What passes while the switch is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Tunnel interfaces (by name: a tunnel that comes back gets a new index).
    pub tunnels: BTreeSet<String>,
    /// VPN servers.
    pub servers: BTreeSet<Server>,
    /// Prefixes that pass beside the VPN (`[firewall] allow`).
    pub allow: Vec<IpNetwork>,
}

const ICMPV6_ND: [u8; 4] = [133, 134, 135, 136];

impl Ruleset {
    /// Adds the chains and rules to `batch`, in table `t`.
    pub fn build(&self, t: &Table, batch: &mut Batch) -> Result<(), BuilderError> {
        let mut chain = |name: &str, hook: HookClass| {
            Chain::new(t)
                .with_name(name)
                .with_hook(Hook::new(hook, 0))
                .with_type(ChainType::Filter)
                .with_policy(ChainPolicy::Drop)
                .add_to_batch(batch)
        };
        let output = chain("output", HookClass::Out);
        let input = chain("input", HookClass::In);
        let forward = chain("forward", HookClass::Forward);
        let mut add = |r: Rule| {
            r.accept().add_to_batch(batch);
        };
        add(Rule::new(&output)?.oiface("lo")?);
        add(Rule::new(&input)?.iiface("lo")?);
        for tun in &self.tunnels {
            add(Rule::new(&output)?.oiface(tun)?);
            add(Rule::new(&input)?.iiface(tun)?);
            add(Rule::new(&forward)?.oiface(tun)?);
            add(Rule::new(&forward)?.iiface(tun)?);
        }
        for s in &self.servers {
            let out = Rule::new(&output)?.daddr(s.addr);
            let inb = Rule::new(&input)?.saddr(s.addr);
            match s.port {
                Some((t, port)) => {
                    let p = proto(t);
                    add(out.dport(port, p));
                    add(inb.sport(port, p));
                }
                None => {
                    add(out);
                    add(inb);
                }
            }
        }
        add(Rule::new(&output)?
            .sport(68, Protocol::UDP)
            .dport(67, Protocol::UDP));
        add(Rule::new(&input)?
            .sport(67, Protocol::UDP)
            .dport(68, Protocol::UDP));
        for ty in ICMPV6_ND {
            add(icmpv6(Rule::new(&output)?, ty));
            add(icmpv6(Rule::new(&input)?, ty));
        }
        for net in &self.allow {
            add(Rule::new(&output)?.dnetwork(*net)?);
            add(Rule::new(&input)?.snetwork(*net)?);
            add(Rule::new(&forward)?.dnetwork(*net)?);
            add(Rule::new(&forward)?.snetwork(*net)?);
        }
        Ok(())
    }

    /// One line per rule kind, for the log.
    pub fn describe(&self) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| match s.port {
                Some((t, p)) => format!("{} {t:?} {p}", s.addr).to_lowercase(),
                None => s.addr.to_string(),
            })
            .collect();
        let allow: Vec<String> = self.allow.iter().map(|n| n.to_string()).collect();
        let tunnels: Vec<&str> = self.tunnels.iter().map(String::as_str).collect();
        format!(
            "tunnels [{}], servers [{}], allowed [{}]",
            tunnels.join(", "),
            servers.join(", "),
            allow.join(", ")
        )
    }
}

fn proto(t: Transport) -> Protocol {
    match t {
        Transport::Udp => Protocol::UDP,
        Transport::Tcp => Protocol::TCP,
    }
}

/// An ICMPv6 packet of type `ty`.
fn icmpv6(mut r: Rule, ty: u8) -> Rule {
    r.add_expr(Meta::new(MetaType::L4Proto));
    r.add_expr(Cmp::new(CmpOp::Eq, [libc::IPPROTO_ICMPV6 as u8]));
    r.add_expr(
        HighLevelPayload::Transport(TransportHeaderField::ICMPv6(ICMPv6HeaderField::Type)).build(),
    );
    r.add_expr(Cmp::new(CmpOp::Eq, [ty]));
    r
}
