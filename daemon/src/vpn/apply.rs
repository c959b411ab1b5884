//! A connection's config: taken from the plugin's signals with NM's rules, put in the kernel as
//! one journaled transaction, re-applied when a new one comes while up, removed at the end;
//! and what the IP4Config/IP6Config objects and the DNS manager are told of it.

use tinynm_config::Profile;
use tinynm_config::profile::{Family, IpMethod};
use tinynm_vpn_plugin::wire::{Dict, GenericConfig, IpConfig, WireDict};
use tokio::time::Instant;
use zbus::Variant;

use super::machine::Event;
use super::task::Task;
use crate::bus::export::IpObject;
use crate::bus::objects::Iface;
use crate::netlink::links::LinkAddr;
use crate::netlink::{Applied, Journal, Plan, plan};
use crate::state::{IpData, Routes, root};

/// Routes from which a config is large enough for its memory to be handed back at once.
const LARGE: usize = 1000;

/// The config as it comes, and what of it is in force.
#[derive(Default)]
pub struct Applier {
    generic: Option<GenericConfig>,
    /// `Some(None)`: the family has no config (not announced, or the profile's method).
    ip4: Option<Option<IpConfig>>,
    ip6: Option<Option<IpConfig>>,
    /// When the last Ip4Config arrived, for the daemon-work figure.
    ip4_at: Option<Instant>,
    /// What the IP4Config/IP6Config objects show, until they are exported after ACTIVATED.
    ip_data: [Option<IpData>; 2],
    /// The exported IP4Config/IP6Config objects.
    ip_objects: Vec<IpObject>,
    /// What is in the kernel.
    journal: Option<Journal>,
    /// Links with an index above this were made after the plugin was started.
    pub newer_than: Option<u32>,
    /// The tun device the plugin made for this VPN (name, index): removed, if the plugin
    /// leaves it behind, once the plugin has gone.
    pub made_tun: Option<(String, u32)>,
}

impl Applier {
    fn complete(&self) -> bool {
        self.generic.is_some() && self.ip4.is_some() && self.ip6.is_some()
    }

    fn received(&self, generic: bool) -> Event {
        Event::ConfigReceived {
            generic,
            complete: self.complete(),
        }
    }

    /// Logs the daemon's work from the last Ip4Config to ACTIVATED.
    pub fn report_daemon_work(&mut self) {
        if let Some(at) = self.ip4_at.take() {
            tracing::info!(
                "{} µs of daemon work from Ip4Config to ACTIVATED",
                at.elapsed().as_micros()
            );
        }
    }
}

/// A config that breaks NM's rules; `generic`: it was (or carried) the generic config.
fn invalid(generic: bool) -> impl Fn(String) -> Event {
    move |why| {
        tracing::error!("invalid config from the plugin: {why}");
        Event::ConfigInvalid { generic }
    }
}

impl Task {
    fn generic_from(&mut self, d: &Dict) -> Result<GenericConfig, Event> {
        let bad = invalid(true);
        let g = GenericConfig::parse(d).map_err(|e| bad(e.to_string()))?;
        g.require_gateway().map_err(|e| bad(e.to_string()))?;
        self.p.snap.send_modify(|s| s.banner = g.banner.clone());
        Ok(g)
    }

    /// The plugin's `Config`.
    pub(super) fn take_generic(&mut self, d: WireDict) -> Event {
        let g = match self.generic_from(&d.small) {
            Ok(g) => g,
            Err(e) => return e,
        };
        let (v4, v6) = (&self.p.profile.ipv4, &self.p.profile.ipv6);
        let a = &mut self.applier;
        if !g.has_ip4 || v4.method != IpMethod::Auto {
            a.ip4 = Some(None);
        }
        if !g.has_ip6 || v6.method != IpMethod::Auto {
            a.ip6 = Some(None);
        }
        a.generic = Some(g);
        a.received(true)
    }

    /// The plugin's `Ip4Config` (an old-style plugin's carries the generic config too).
    pub(super) fn take_ip4(&mut self, at: Instant, d: WireDict) -> Event {
        self.applier.ip4_at = Some(at);
        let old_style = self.applier.generic.is_none();
        if old_style {
            match self.generic_from(&d.small) {
                Ok(g) => {
                    self.applier.ip6 = Some(None);
                    self.applier.generic = Some(g);
                }
                Err(e) => return e,
            }
        }
        match self.family_config(d, Family::V4) {
            Ok(c) => self.applier.ip4 = Some(c),
            Err(_) if old_style => return Event::ConfigInvalid { generic: true },
            Err(e) => return e,
        }
        self.applier.received(old_style)
    }

    /// The plugin's `Ip6Config`.
    pub(super) fn take_ip6(&mut self, d: WireDict) -> Event {
        match self.family_config(d, Family::V6) {
            Ok(c) => self.applier.ip6 = Some(c),
            Err(e) => return e,
        }
        self.applier.received(false)
    }

    fn family_config(&self, d: WireDict, f: Family) -> Result<Option<IpConfig>, Event> {
        let sect = match f {
            Family::V4 => &self.p.profile.ipv4,
            Family::V6 => &self.p.profile.ipv6,
        };
        if sect.method != IpMethod::Auto {
            return Ok(None);
        }
        let gw = self.applier.generic.as_ref().and_then(|g| g.gateway);
        IpConfig::from_wire(d, f, gw).map_err(|e| invalid(false)(e.to_string()))
    }

    fn journal_path(&self) -> std::path::PathBuf {
        self.p
            .h
            .cfg
            .state_dir
            .join(format!("ac-{}.journal", self.p.n))
    }

    /// Puts the complete config in the kernel as one transaction; whether it went in.
    pub(super) async fn apply(&mut self) -> bool {
        let ok = match self.try_apply().await {
            Ok(()) => true,
            Err(why) => {
                tracing::error!("{why}");
                false
            }
        };
        // A large config and its plan are gone: what they took from the heap goes back now,
        // not at the next trim, so that RSS while the VPN is up is what it holds. (A small one
        // leaves too little to be worth the walk over the heap.)
        if self
            .applier
            .journal
            .as_ref()
            .is_some_and(|j| j.routes() >= LARGE)
        {
            crate::memory::release();
        }
        ok
    }

    async fn try_apply(&mut self) -> Result<(), String> {
        let nl = self.p.h.netlink.clone();
        let g = self.applier.generic.take().expect("complete");
        let ip4 = self.applier.ip4.take().flatten();
        let ip6 = self.applier.ip6.take().flatten();
        let bad = |why: String| format!("invalid config from the plugin: {why}");
        if ip4.is_none() && ip6.is_none() {
            return Err(bad(
                "neither IPv4 nor IPv6 config (both families disabled)".into()
            ));
        }
        let gateway_route = match g.gateway {
            Some(gw) => nl
                .route_get(gw)
                .await
                .map_err(|e| bad(format!("cannot look up the route to the gateway {gw}: {e}")))?,
            None => None,
        };
        let (ifindex, own) = match &g.tundev {
            Some(name) => match nl.link_by_name(name).await {
                // A plugin may only have tinynmd configure its own tunnel: never the uplink,
                // loopback or another link that carries other traffic.
                Ok(Some(l)) if !l.tunnel || gateway_route.is_some_and(|r| r.oif == l.index) => {
                    return Err(bad(format!(
                        "Config: tundev: '{name}' is not a tunnel device (tun, tap, ppp or an IP tunnel): tinynmd does not configure it"
                    )));
                }
                Ok(Some(l)) => {
                    if l.tun && self.applier.newer_than.is_some_and(|n| l.index > n) {
                        self.applier.made_tun = Some((name.clone(), l.index));
                    }
                    (l.index, true)
                }
                Ok(None) => {
                    return Err(bad(format!(
                        "Config: tundev: interface '{name}' does not exist"
                    )));
                }
                Err(e) => return Err(bad(e.to_string())),
            },
            None => match gateway_route {
                // No interface of its own: the config goes on the parent (NM's route-based VPNs).
                Some(l) => (l.oif, false),
                None => {
                    return Err(bad(format!(
                        "Config has no tundev and the gateway {} is unreachable, so there is no parent interface",
                        g.gateway.map(|a| a.to_string()).unwrap_or_default()
                    )));
                }
            },
        };
        let profile = &self.p.profile;
        let plan = plan::build(&plan::Inputs {
            profile,
            generic: &g,
            ip4: ip4.as_ref(),
            ip6: ip6.as_ref(),
            ifindex,
            own_interface: own,
            gateway_route,
        });
        let default4 = has_default(profile, ip4.as_ref());
        let default6 = has_default(profile, ip6.as_ref());
        let addresses = plan.addresses.len();
        let started = Instant::now();
        // Each change is journaled (fsync'd) before the kernel is asked for it: a crash at any
        // point leaves nothing the next start does not remove.
        let j = nl
            .apply(plan, Some(&self.journal_path()))
            .await
            .map_err(|e| format!("cannot apply the VPN's config, rolled back: {e}"))?;
        tracing::info!(
            "applied {addresses} addresses and {} routes on #{ifindex} in {:?}",
            j.routes(),
            started.elapsed()
        );
        // The IP configs list the routes the journal holds: the same ones, not a copy.
        self.applier.ip_data = [
            ip4.as_ref().map(|c| ip_data(profile, c, &j, ifindex)),
            ip6.as_ref().map(|c| ip_data(profile, c, &j, ifindex)),
        ];
        drop((ip4, ip6));
        self.applier.journal = Some(j);
        let iface = g.tundev.clone().unwrap_or_default();
        let dns = self.dns_entry(iface, ifindex, default4 || default6);
        let tunnel = g.tundev.clone().filter(|_| own);
        self.p.snap.send_modify(|s| {
            s.default4 = default4;
            s.default6 = default6;
            s.dns = dns;
            s.tunnel = tunnel;
            s.vpn_gateway = g.gateway;
        });
        Ok(())
    }

    /// The VPN's DNS (both families), for the DNS backend.
    fn dns_entry(
        &self,
        iface: String,
        ifindex: u32,
        default_route: bool,
    ) -> Vec<crate::dns::DnsEntry> {
        let data: Vec<&IpData> = self.applier.ip_data.iter().flatten().collect();
        let mut servers = Vec::new();
        let mut domains: Vec<String> = Vec::new();
        for d in &data {
            servers.extend(d.nameservers.iter().copied());
            for x in d.domains.iter().chain(&d.searches) {
                if !domains.contains(x) {
                    domains.push(x.clone());
                }
            }
        }
        if servers.is_empty() && domains.is_empty() {
            return Vec::new();
        }
        let priority = data
            .first()
            .map(|d| d.dns_priority)
            .unwrap_or(crate::dns::VPN_PRIORITY);
        vec![crate::dns::DnsEntry {
            iface,
            ifindex,
            default_route,
            servers,
            domains,
            priority,
            vpn: true,
        }]
    }

    /// The VPN's IP4Config/IP6Config objects, exported once it is up (a large route list is
    /// never serialized on the way to ACTIVATED).
    pub(super) async fn export_ip_configs(&mut self) {
        for (i, prop) in [(0, "Ip4Config"), (1, "Ip6Config")] {
            let Some(data) = self.applier.ip_data[i].take() else {
                continue;
            };
            match self.p.h.bus.export_ip(i == 1, data).await {
                Ok(o) => {
                    let path = o.path.clone();
                    self.p.snap.send_modify(|s| {
                        if i == 0 {
                            s.ip4_config = path.clone();
                        } else {
                            s.ip6_config = path.clone();
                        }
                    });
                    self.applier.ip_objects.push(o);
                    let props = vec![(prop, Variant::from(path))];
                    self.p
                        .h
                        .bus
                        .changed_or_log(self.path.as_str(), Iface::Active, props)
                        .await;
                }
                Err(e) => tracing::warn!("cannot export the {prop}: {e}"),
            }
        }
        crate::memory::release();
    }

    /// The connection stops naming its IP configs, then they go.
    async fn unexport_ip_configs(&mut self) {
        if self.applier.ip_objects.is_empty() {
            return;
        }
        let root = root();
        self.p.snap.send_modify(|s| {
            s.ip4_config = root.clone();
            s.ip6_config = root.clone();
        });
        let props = vec![
            ("Ip4Config", Variant::from(root.clone())),
            ("Ip6Config", Variant::from(root)),
        ];
        let bus = self.p.h.bus.clone();
        bus.changed_or_log(self.path.as_str(), Iface::Active, props)
            .await;
        for o in std::mem::take(&mut self.applier.ip_objects) {
            bus.unexport_ip(o).await;
        }
    }

    /// A new config while up (the plugin's tunnel restarted): the old one comes out of the
    /// kernel, except the routes of a family whose new config says preserve-routes, and the
    /// new one goes in, as NM re-applies. Whether it went in.
    pub(super) async fn reapply(&mut self) -> bool {
        let a = &self.applier;
        let keep4 = matches!(&a.ip4, Some(Some(c)) if c.preserve_routes);
        let keep6 = matches!(&a.ip6, Some(Some(c)) if c.preserve_routes);
        tracing::info!(
            "new config from the plugin while up: re-applying{}",
            if keep4 || keep6 {
                " (keeping the old routes)"
            } else {
                ""
            }
        );
        let mut kept = Vec::new();
        if let Some(j) = self.applier.journal.take() {
            let keep = |a: &&Applied| match a {
                Applied::Route(r) => {
                    let v6 = r.dest.is_ipv6();
                    (keep4 && !v6) || (keep6 && v6)
                }
                _ => false,
            };
            kept = j.iter().filter(keep).cloned().collect();
            let gone = j.iter().rev().filter(|a| !keep(a));
            for e in self.p.h.netlink.remove_items(gone).await {
                tracing::error!("re-apply: {e}");
            }
        }
        self.unexport_ip_configs().await;
        if !self.apply().await {
            // The kept routes are still ours: the teardown that follows removes them.
            self.applier.journal = Some(Journal::from(kept));
            return false;
        }
        // Taking the last address off the interface took the kernel's routes through it with
        // it: the kept ones go back in (those still there stay), and stay ours.
        if !kept.is_empty() {
            let again = Plan {
                routes: kept.clone(),
                ..Default::default()
            };
            if let Err(e) = self
                .p
                .h
                .netlink
                .apply(again, Some(&self.journal_path()))
                .await
            {
                tracing::warn!("re-apply: the kept routes: {e}");
            }
        }
        let path = self.journal_path();
        if let Some(j) = &mut self.applier.journal {
            j.append(kept);
            if let Err(e) = crate::netlink::save_journal(&path, j) {
                tracing::warn!("cannot journal the re-applied config: {e}");
            }
        }
        true
    }

    /// Takes out of the kernel exactly what the journal holds, and the IP configs off the bus.
    pub(super) async fn remove_config(&mut self) {
        if let Some(j) = self.applier.journal.take() {
            let n = j.routes();
            for e in self.p.h.netlink.remove(&j).await {
                tracing::error!("teardown: {e}");
            }
            tracing::info!("removed the VPN's config ({n} routes)");
        }
        // Also after a failed apply: its rollback removed what the journal names.
        let _ = std::fs::remove_file(self.journal_path());
        self.p.snap.send_modify(|s| {
            s.default4 = false;
            s.default6 = false;
            s.dns.clear();
        });
        self.unexport_ip_configs().await;
        let root = root();
        self.p.snap.send_modify(|s| {
            s.ip4_config = root.clone();
            s.ip6_config = root;
        });
    }
}

/// What the VPN's IP4Config/IP6Config show: its address, the routes on its interface, its
/// DNS (the plugin's, then the profile's), DNS priority 50 unless the profile sets one.
fn ip_data(p: &Profile, c: &IpConfig, journal: &Journal, ifindex: u32) -> IpData {
    let sect = match c.family {
        Family::V4 => &p.ipv4,
        Family::V6 => &p.ipv6,
    };
    let routes = Routes::Journal {
        journal: journal.clone(),
        oif: ifindex,
        v6: c.address.is_ipv6(),
    };
    let default = routes.iter().find(|r| r.prefix == 0);
    let gateway = match default {
        Some(r) => r.next_hop.map(|g| g.to_string()).unwrap_or_else(|| {
            match c.family {
                Family::V4 => "0.0.0.0",
                Family::V6 => "::",
            }
            .to_string()
        }),
        None => String::new(),
    };
    let mut nameservers = if sect.ignore_auto_dns {
        Vec::new()
    } else {
        c.dns.clone()
    };
    nameservers.extend(sect.dns.iter().copied());
    IpData {
        addrs: vec![LinkAddr {
            addr: c.address,
            prefix: c.prefix,
            peer: c.ptp,
        }],
        gateway,
        routes,
        nameservers,
        domains: if sect.ignore_auto_dns {
            Vec::new()
        } else {
            c.domains.clone()
        },
        searches: sect.dns_search.clone(),
        dns_priority: if sect.dns_priority != 0 {
            sect.dns_priority
        } else {
            crate::dns::VPN_PRIORITY
        },
    }
}

fn has_default(p: &Profile, c: Option<&IpConfig>) -> bool {
    let Some(c) = c else { return false };
    let sect = match c.family {
        Family::V4 => &p.ipv4,
        Family::V6 => &p.ipv6,
    };
    !c.never_default && !sect.never_default
}
