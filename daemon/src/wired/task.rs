//! One activation of a wired profile on its link: NM's device states (prepare, config,
//! ip-config, ip-check, secondaries, activated), the static or DHCP configuration applied as one
//! journaled transaction, the secondary VPNs, renewals and losses, and the way down.

use std::net::IpAddr;
use std::time::Duration;

use tinynm_config::Profile;
use tinynm_config::nm::{AcState, Reason};
use tinynm_config::profile::{Family, IpSection};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;
use zbus::{OwnedObjectPath, Variant};

use super::dhcp::{Dhcp, DhcpEvent, Lease};
use crate::bus::active::ActiveView;
use crate::bus::dhcp4::Dhcp4Object;
use crate::bus::objects::Iface;
use crate::dns::DnsEntry;
use crate::netlink::Journal;
use crate::netlink::base::{BaseIp, base_address, base_plan};
use crate::netlink::links::Link;
use crate::state::{AcId, AcSnapshot, Command, dev_reason, dev_state};
use crate::vpn::{AcCommand, Handles};

mod lease;

/// NM's route metric of an ethernet connection.
const ETHERNET_METRIC: u32 = 100;
/// NM's default `ipv4.dhcp-timeout`, seconds.
const DHCP_TIMEOUT: u32 = 45;
/// NMActivationStateFlags.
const LAYER2_READY: u32 = 0x4;
const IP4_READY: u32 = 0x8;
const IP6_READY: u32 = 0x10;

/// What the core hands to a wired activation.
pub struct WiredParams {
    /// Its number.
    pub n: AcId,
    /// Who activated it (the secondaries are activated as them).
    pub uid: u32,
    /// The profile (a snapshot taken at activation).
    pub profile: Profile,
    /// The link, as the kernel showed it at activation.
    pub link: Link,
    /// What it works with.
    pub h: Handles,
    /// To the core: device states, secondaries, changes, the end.
    pub core: mpsc::Sender<Command>,
    /// Commands from the core.
    pub cmd: mpsc::Receiver<AcCommand>,
    /// The published snapshot.
    pub snap: watch::Sender<AcSnapshot>,
    /// The last leases, kept by the core across activations.
    pub leases: super::dhcp::Leases,
}

/// How an activation ended.
struct End {
    /// The device's state on the way down: FAILED or DEACTIVATING.
    failed: bool,
    /// The carrier went: straight to UNAVAILABLE, as NM.
    carrier: bool,
    /// The lease is kept for the next activation (no DHCPRELEASE): no carrier to send it, or
    /// tinynmd is stopping.
    keep_lease: bool,
    /// NMDeviceStateReason.
    device_reason: u32,
    /// NMActiveConnectionStateReason.
    reason: Reason,
}

impl End {
    fn of(c: Option<AcCommand>) -> End {
        match c {
            Some(AcCommand::Deactivate(r)) => End::user(r),
            Some(AcCommand::CarrierLost) => End {
                failed: false,
                carrier: true,
                keep_lease: true,
                device_reason: dev_reason::CARRIER,
                reason: Reason::DeviceDisconnected,
            },
            Some(AcCommand::Shutdown) => End {
                keep_lease: true,
                ..End::user(Reason::UserDisconnected)
            },
            None => End::user(Reason::UserDisconnected),
        }
    }

    fn user(r: Reason) -> End {
        End {
            failed: false,
            carrier: false,
            keep_lease: false,
            device_reason: dev_reason::USER_REQUESTED,
            reason: if r == Reason::UserDisconnected {
                Reason::DeviceDisconnected
            } else {
                r
            },
        }
    }

    fn failed(device_reason: u32) -> End {
        End {
            failed: true,
            carrier: false,
            keep_lease: false,
            device_reason,
            reason: Reason::DeviceDisconnected,
        }
    }
}

struct Task {
    p: WiredParams,
    path: OwnedObjectPath,
    journal: Option<Journal>,
    dhcp: Option<Dhcp>,
    lease: Option<Lease>,
    /// The DHCP4Config object of a DHCP activation.
    dhcp4: Option<Dhcp4Object>,
}

/// Runs the activation to its end, then tells the core.
pub async fn run(p: WiredParams) {
    let span =
        tracing::info_span!("wired", n = p.n.0, id = %p.profile.connection.id, dev = %p.link.name);
    let mut t = Task {
        path: p.n.path(),
        p,
        journal: None,
        dhcp: None,
        lease: None,
        dhcp4: None,
    };
    async move {
        let end = match Box::pin(t.activate()).await {
            Ok(()) => Box::pin(t.stay_up()).await,
            Err(end) => end,
        };
        Box::pin(t.teardown(end)).await;
    }
    .instrument(span)
    .await
}

fn metric(s: &IpSection) -> u32 {
    if s.route_metric >= 0 {
        s.route_metric as u32
    } else {
        ETHERNET_METRIC
    }
}

impl Task {
    fn journal_path(&self) -> std::path::PathBuf {
        self.p
            .h
            .cfg
            .state_dir
            .join(format!("ac-{}.journal", self.p.n))
    }

    async fn device(&mut self, state: u32, reason: u32) {
        let _ = self
            .p
            .core
            .send(Command::DeviceState {
                index: self.p.link.index,
                state,
                reason,
            })
            .await;
    }

    async fn ac_state(&mut self, state: AcState, reason: Reason) {
        self.p.snap.send_modify(|s| {
            s.state = state as u32;
            s.reason = reason as u32;
        });
        let bus = &self.p.h.bus;
        let path = self.path.as_str();
        tracing::info!("state {state:?} ({})", reason.nmcli_text());
        let r = async {
            ActiveView::emit_state_changed(&bus.emitter(path)?, state as u32, reason as u32)
                .await?;
            let s = self.p.snap.borrow().clone();
            bus.changed(
                path,
                Iface::Active,
                vec![
                    ("State", Variant::from(state as u32)),
                    ("Default", Variant::from(s.default4)),
                    ("Default6", Variant::from(s.default6)),
                ],
            )
            .await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!("cannot announce {state:?}: {e}");
        }
        let _ = self.p.core.send(Command::Changed).await;
    }

    async fn flags(&mut self, add: u32) {
        let flags = self.p.snap.borrow().state_flags | add;
        self.p.snap.send_modify(|s| s.state_flags = flags);
        self.p
            .h
            .bus
            .changed_or_log(
                self.path.as_str(),
                Iface::Active,
                vec![("StateFlags", Variant::from(flags))],
            )
            .await;
    }

    /// Waits for the core's command while `fut` runs; a command ends the activation.
    async fn or_cmd<T>(&mut self, fut: impl Future<Output = T>) -> Result<T, End> {
        tokio::select! {
            v = fut => Ok(v),
            c = self.p.cmd.recv() => Err(End::of(c)),
        }
    }

    async fn activate(&mut self) -> Result<(), End> {
        let prof = self.p.profile.clone();
        self.device(dev_state::PREPARE, dev_reason::NONE).await;
        self.device(dev_state::CONFIG, dev_reason::NONE).await;
        // The link up with its MTU, journaled with the rest.
        let mtu = prof.ethernet.as_ref().map(|e| e.mtu).filter(|m| *m != 0);
        self.apply(base_plan(self.p.link.index, mtu, &[])).await?;
        self.flags(LAYER2_READY).await;
        self.device(dev_state::IP_CONFIG, dev_reason::NONE).await;
        self.ipv6_sysctls();
        let mut fams = Vec::new();
        if prof.ipv4.method.is("auto") {
            self.export_dhcp4().await;
            let lease = self.first_lease().await?;
            self.show_lease(&lease).await;
            fams.push(self.ipv4_of(Some(&lease)));
            self.lease = Some(lease);
        } else if prof.ipv4.method.is("manual") {
            fams.push(self.ipv4_of(None));
        }
        if prof.ipv6.method.is("manual") {
            fams.push(static_ip(&prof.ipv6, Family::V6));
        }
        let mut plan = base_plan(self.p.link.index, None, &fams);
        // The link is up already (above).
        plan.links.clear();
        self.apply(plan).await?;
        self.publish_ip(&fams);
        let ready = fams
            .iter()
            .map(|f| match f.family {
                Family::V4 => IP4_READY,
                Family::V6 => IP6_READY,
            })
            .fold(0, |a, b| a | b);
        self.flags(ready).await;
        let _ = self.p.core.send(Command::Changed).await;
        self.device(dev_state::IP_CHECK, dev_reason::NONE).await;
        self.device(dev_state::SECONDARIES, dev_reason::NONE).await;
        self.secondaries().await?;
        self.device(dev_state::ACTIVATED, dev_reason::NONE).await;
        self.dhcp4_on_ac().await;
        self.ac_state(AcState::Activated, Reason::Unknown).await;
        Ok(())
    }

    fn ipv6_sysctls(&self) {
        let m = self.p.profile.ipv6.method;
        let name = &self.p.link.name;
        let set = |key: &str, v: &str| {
            let path = format!("/proc/sys/net/ipv6/conf/{name}/{key}");
            if let Err(e) = std::fs::write(&path, v) {
                tracing::warn!("cannot set {path} to {v}: {e}");
            }
        };
        if m.is("disabled") {
            set("disable_ipv6", "1");
        } else if m.is("auto") {
            // The kernel's SLAAC: router advertisements taken on this link.
            set("disable_ipv6", "0");
            set("accept_ra", "1");
        } else if m.is("manual") {
            set("disable_ipv6", "0");
            set("accept_ra", "0");
        }
    }

    fn ipv4_of(&self, lease: Option<&Lease>) -> BaseIp {
        let s = &self.p.profile.ipv4;
        let mut b = static_ip(s, Family::V4);
        if let Some(l) = lease {
            b.addresses.insert(0, (IpAddr::V4(l.address), l.prefix));
            if b.gateway.is_none() && !s.ignore_auto_routes {
                b.gateway = l.gateway.map(IpAddr::V4);
            }
            b.lifetime = Some(l.lease_time);
            b.dhcp = true;
        }
        b
    }

    async fn apply(&mut self, plan: crate::netlink::Plan) -> Result<(), End> {
        match self
            .p
            .h
            .netlink
            .apply(plan, Some(&self.journal_path()))
            .await
        {
            Ok(j) => {
                // The write-ahead journal on disk already has both transactions (it appends).
                let mut all = self.journal.take().unwrap_or_default();
                all.extend(j);
                self.journal = Some(all);
                Ok(())
            }
            Err(e) => {
                tracing::error!("cannot configure {}: {e}", self.p.link.name);
                Err(End::failed(dev_reason::CONFIG_FAILED))
            }
        }
    }

    /// The AC's DNS (priority 100, or the profile's) and its default-route flags.
    fn publish_ip(&mut self, fams: &[BaseIp]) {
        let mut entries = Vec::new();
        for f in fams {
            let s = match f.family {
                Family::V4 => &self.p.profile.ipv4,
                Family::V6 => &self.p.profile.ipv6,
            };
            let mut servers = s.dns.clone();
            let mut domains = s.dns_search.clone();
            if f.family == Family::V4
                && let Some(l) = &self.lease
                && !s.ignore_auto_dns
            {
                servers.extend(
                    l.dns
                        .iter()
                        .filter(|a| !servers.contains(a))
                        .copied()
                        .collect::<Vec<_>>(),
                );
                domains.extend(
                    l.domains
                        .iter()
                        .filter(|d| !domains.contains(d))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
            if servers.is_empty() && domains.is_empty() {
                continue;
            }
            entries.push(DnsEntry {
                iface: self.p.link.name.clone(),
                ifindex: self.p.link.index,
                default_route: f.takes_default(),
                servers,
                domains,
                priority: if s.dns_priority != 0 {
                    s.dns_priority
                } else {
                    100
                },
                vpn: false,
            });
        }
        let d4 = fams
            .iter()
            .any(|f| f.family == Family::V4 && f.takes_default());
        let d6 = fams
            .iter()
            .any(|f| f.family == Family::V6 && f.takes_default());
        self.p.snap.send_modify(|s| {
            s.dns = entries;
            s.default4 = d4;
            s.default6 = d6;
        });
    }

    /// Activates the profile's secondaries and waits until each is up (NM holds the device in
    /// SECONDARIES); one failing fails the connection.
    async fn secondaries(&mut self) -> Result<(), End> {
        let uuids = self.p.profile.connection.secondaries.clone();
        if uuids.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let _ = self
            .p
            .core
            .send(Command::Secondaries {
                base: self.p.n,
                uid: self.p.uid,
                uuids,
                reply: tx,
            })
            .await;
        let started = self.or_cmd(rx).await?.unwrap_or_default();
        for r in started {
            let mut snap = match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("secondary connection: {e}");
                    return Err(End::failed(dev_reason::SECONDARY_CONNECTION_FAILED));
                }
            };
            let id = snap.borrow().id.clone();
            let up = self
                .or_cmd(snap.wait_for(|s| {
                    s.state == AcState::Activated as u32 || s.state >= AcState::Deactivating as u32
                }))
                .await?
                .map(|s| s.state == AcState::Activated as u32)
                .unwrap_or(false);
            if !up {
                tracing::error!("secondary connection '{id}' failed");
                return Err(End::failed(dev_reason::SECONDARY_CONNECTION_FAILED));
            }
        }
        Ok(())
    }

    /// Up: renewals re-apply the lease, its loss ends the connection.
    async fn stay_up(&mut self) -> End {
        loop {
            let ev = match self.dhcp.as_mut() {
                Some(d) => tokio::select! {
                    ev = d.next() => ev,
                    c = self.p.cmd.recv() => return End::of(c),
                },
                None => return End::of(self.p.cmd.recv().await),
            };
            match ev {
                DhcpEvent::Lease(l)
                    if Some(&l.address) == self.lease.as_ref().map(|o| &o.address) =>
                {
                    let msg = base_address(
                        self.p.link.index,
                        IpAddr::V4(l.address),
                        l.prefix,
                        Some(l.lease_time),
                    );
                    if let Err(e) = self.p.h.netlink.refresh_addresses(&[msg]).await {
                        tracing::warn!("{e}");
                    }
                    self.show_lease(&l).await;
                    // After the DHCP4Config shows it: what follows the log sees it.
                    tracing::info!("DHCPv4: lease renewed ({} s)", l.lease_time);
                    self.lease = Some(l);
                }
                DhcpEvent::Lease(l) => {
                    tracing::warn!("DHCPv4: a new address {} replaces the lease's", l.address);
                    return End::failed(dev_reason::IP_CONFIG_EXPIRED);
                }
                DhcpEvent::Lost(why) => {
                    tracing::error!("DHCPv4: {why}");
                    return End::failed(dev_reason::IP_CONFIG_EXPIRED);
                }
                DhcpEvent::Failed(why) => {
                    tracing::error!("DHCPv4: {why}");
                    return End::failed(dev_reason::IP_CONFIG_EXPIRED);
                }
            }
        }
    }

    async fn teardown(&mut self, end: End) {
        let was = self.p.snap.borrow().state;
        if end.failed {
            self.device(dev_state::FAILED, end.device_reason).await;
        } else if !end.carrier {
            self.device(dev_state::DEACTIVATING, end.device_reason)
                .await;
            if was == AcState::Activated as u32 {
                self.ac_state(AcState::Deactivating, Reason::Unknown).await;
            }
        }
        if let Some(j) = self.journal.take() {
            for e in self.p.h.netlink.remove(&j).await {
                tracing::error!("teardown: {e}");
            }
        }
        let _ = std::fs::remove_file(self.journal_path());
        if let Some(d) = self.dhcp.take() {
            if end.keep_lease {
                // Nothing can be sent without a carrier, and a stopping tinynmd keeps the lease
                // as NM does: it is asked for again when the link or tinynmd is back.
                drop(d);
            } else {
                // Bounded: a release is one datagram, never waited on for long.
                let _ = tokio::time::timeout(Duration::from_secs(2), d.release()).await;
            }
        }
        self.drop_dhcp4().await;
        self.p.snap.send_modify(|s| {
            s.dns.clear();
            s.default4 = false;
            s.default6 = false;
        });
        let last = if end.carrier {
            dev_state::UNAVAILABLE
        } else {
            dev_state::DISCONNECTED
        };
        self.device(last, end.device_reason).await;
        self.ac_state(AcState::Deactivated, end.reason).await;
        let _ = self.p.core.send(Command::Ended { n: self.p.n }).await;
    }
}

/// A profile's static part of one family.
fn static_ip(s: &IpSection, family: Family) -> BaseIp {
    BaseIp {
        family,
        addresses: s.addresses.clone(),
        gateway: s.gateway,
        routes: s.routes.clone(),
        metric: metric(s),
        never_default: s.never_default,
        lifetime: None,
        dhcp: false,
    }
}
