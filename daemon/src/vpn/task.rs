//! One active VPN connection: a task that owns its state machine, its plugin link, its timers
//! and its netlink journal (spec §3–§7). It turns what happens into the machine's events and
//! performs the machine's actions; the D-Bus objects are views onto the snapshot it publishes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tinynm_config::daemon_config::Timeouts;
use tinynm_config::nm::{Reason, ServiceState};
use tinynm_config::{DaemonConfig, Profile};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use zbus::{OwnedObjectPath, Variant};

use super::apply::Applier;
use super::link::{Ev, PluginLink};
use super::machine::{Action, End, Event, Machine, Phase, Timer};
use super::registry::PluginInfo;
use super::timers::Timers;
use crate::bus::active::{ActiveView, VpnView};
use crate::bus::export::Exporter;
use crate::bus::objects::Iface;
use crate::netlink::Netlink;
use crate::state::{AcId, AcSnapshot, Command};

/// Commands to a connection's task.
#[derive(Debug)]
pub enum AcCommand {
    /// Take the connection down with this reason.
    Deactivate(Reason),
    /// (A wired connection) its link's carrier has been gone for NM's wait: down, the device
    /// UNAVAILABLE.
    CarrierLost,
    /// tinynmd is stopping: down as the user would take it, but a wired connection keeps its
    /// DHCP lease (no DHCPRELEASE, as NM), to ask for it again at the next start.
    Shutdown,
}

/// What the core and each connection's task work with.
#[derive(Clone)]
pub struct Handles {
    /// Where objects and signals go.
    pub bus: Exporter,
    /// Netlink sockets.
    pub netlink: Netlink,
    /// daemon.toml (timers, state directory, secrets file).
    pub cfg: Arc<DaemonConfig>,
    /// The registered secret agents.
    pub agents: crate::secrets::Agents,
}

/// What the core hands to a new connection's task.
pub struct AcParams {
    /// Who activated it (whose agents are asked for secrets).
    pub uid: u32,
    /// The profile's Settings.Connection path (what agents are told).
    pub settings_path: OwnedObjectPath,
    /// Its number (also `Connection_<n>`).
    pub n: AcId,
    /// The applied profile (a snapshot taken at activation).
    pub profile: Profile,
    /// The plugin.
    pub plugin: PluginInfo,
    /// What it works with.
    pub h: Handles,
    /// To tell the core about changes and the end.
    pub core: mpsc::Sender<Command>,
    /// Commands from the core.
    pub cmd: mpsc::Receiver<AcCommand>,
    /// The published snapshot.
    pub snap: watch::Sender<AcSnapshot>,
}

/// The task's state beside the machine.
pub(super) struct Task {
    pub(super) p: AcParams,
    pub(super) path: OwnedObjectPath,
    pub(super) machine: Machine,
    pub(super) link: PluginLink,
    pub(super) applier: Applier,
    timers: Timers,
    /// The phase last announced (the machine's runs ahead until its `Enter` is performed).
    shown: Phase,
    /// The plugin's last `SecretsRequired`, until the agents are asked.
    pub(super) pending_hints: Option<(String, Vec<String>)>,
    /// The plugin's last `StateChanged`.
    service_state: ServiceState,
}

pub(super) fn secs(s: f64) -> Duration {
    Timeouts::dur(s)
}

/// Runs the connection to its end, then tells the core.
pub async fn run(p: AcParams) {
    let span = tracing::info_span!("vpn", n = p.n.0, id = %p.profile.connection.id);
    let link = PluginLink::new(p.plugin.bus_name(p.n.0), p.h.bus.conn().clone());
    let applier = Applier::default();
    let mut t = Task {
        path: p.n.path(),
        p,
        machine: Machine::new(),
        link,
        applier,
        timers: Timers::default(),
        shown: Phase::Waiting,
        pending_hints: None,
        service_state: ServiceState::Unknown,
    };
    async move {
        let end = t.drive().await;
        Box::pin(t.teardown(end)).await;
    }
    .instrument(span)
    .await
}

impl Task {
    pub(super) fn t(&self) -> &Timeouts {
        &self.p.h.cfg.timeouts
    }

    fn vpn_timeout_secs(&self) -> u64 {
        self.p.profile.vpn_timeout_secs(self.t().vpn_default) as u64
    }

    /// Feeds the machine until it ends: the first event is the plugin's name lookup, then
    /// whatever comes (plugin, core, timers), each action's outcome before the next event.
    async fn drive(&mut self) -> End {
        let cfg = self.p.h.cfg.clone();
        let mut queue = VecDeque::from([Box::pin(self.link.look_up(&cfg.timeouts)).await]);
        loop {
            while let Some(ev) = queue.pop_front() {
                for a in self.machine.on_event(ev) {
                    if let Some(next) = self.perform(a).await {
                        queue.push_back(next);
                    }
                }
                if let Some(end) = self.machine.ended() {
                    return end;
                }
            }
            queue.push_back(self.next_event().await);
        }
    }

    /// Waits for the plugin, the core or a timer.
    async fn next_event(&mut self) -> Event {
        loop {
            let ev = tokio::select! {
                ev = self.link.next() => ev,
                cmd = self.p.cmd.recv() => return deactivation(cmd),
                t = self.timers.next() => {
                    self.log_timeout(t);
                    return Event::Timeout(t);
                }
            };
            if let Some(e) = self.on_signal(ev).await {
                return e;
            }
        }
    }

    fn log_timeout(&self, t: Timer) {
        match t {
            Timer::ServiceStart => tracing::error!(
                "the plugin did not claim {} within {}s",
                self.link.bus_name(),
                self.t().service_start
            ),
            Timer::Connect => tracing::error!(
                "no complete config from the plugin within {}s",
                self.vpn_timeout_secs()
            ),
            Timer::Activation => tracing::error!("the activation took too long"),
        }
    }

    /// One signal or process event, as the machine sees it (`None`: nothing for it).
    async fn on_signal(&mut self, ev: Ev) -> Option<Event> {
        match ev {
            Ev::Owner(Some(o)) if self.link.owner().is_none() => {
                if let Err(why) = self.link.trusted(&o).await {
                    tracing::error!("{why}");
                    return Some(Event::StartFailed);
                }
                self.link.set_owner(o);
                Some(Event::NameClaimed)
            }
            Ev::Owner(new) => {
                if new.as_deref() == self.link.owner() {
                    return None;
                }
                tracing::error!(
                    "the plugin's bus name {} lost its owner",
                    self.link.bus_name()
                );
                Some(Event::NameVanished)
            }
            Ev::Exited(how) => {
                if self.link.owner().is_none() {
                    tracing::error!("the plugin {how} before claiming {}", self.link.bus_name());
                } else {
                    tracing::info!("the plugin {how}");
                }
                Some(Event::Exited)
            }
            Ev::Failure(f) => {
                let r = super::machine::failure_reason(f);
                tracing::warn!("the plugin reported failure {f} ({})", r.nmcli_text());
                Some(Event::Failure(f))
            }
            Ev::State(s) => {
                let s = ServiceState::from_u32(s);
                let prev = std::mem::replace(&mut self.service_state, s);
                if s == ServiceState::Stopped {
                    tracing::error!("the plugin stopped");
                } else if prev == ServiceState::Started && s == ServiceState::Starting {
                    tracing::warn!("the plugin is reconnecting");
                }
                Some(Event::ServiceState(s))
            }
            Ev::SecretsRequired(msg, hints) => {
                self.pending_hints = Some((msg, hints));
                Some(Event::SecretsRequired)
            }
            Ev::Config(d) if self.machine.takes_config() => Some(self.take_generic(d)),
            Ev::Ip4(at, d) if self.machine.takes_config() => Some(self.take_ip4(at, d)),
            Ev::Ip6(d) if self.machine.takes_config() => Some(self.take_ip6(d)),
            Ev::Config(_) | Ev::Ip4(..) | Ev::Ip6(_) => {
                tracing::debug!("config ignored in phase {:?}", self.machine.phase());
                None
            }
        }
    }

    /// Performs one action; its outcome, if the machine must hear of it. Each action's future
    /// is boxed: it lives only while the action runs, and the task's own future (allocated for
    /// as long as the connection lasts) stays small.
    async fn perform(&mut self, a: Action) -> Option<Event> {
        match a {
            Action::Enter(phase, reason) => {
                Box::pin(self.set_phase(phase, reason)).await;
                None
            }
            Action::StartPlugin => {
                let cfg = self.p.h.cfg.clone();
                let bus = cfg.bus_address();
                let bus = bus.as_deref();
                let run = crate::state::paths::runtime_dir(&cfg.state_dir);
                // Which links exist before the plugin runs: a tun it makes is newer.
                self.applier.newer_than = self
                    .p
                    .h
                    .netlink
                    .links()
                    .await
                    .ok()
                    .and_then(|ls| ls.iter().map(|l| l.index).max());
                Box::pin(self.link.start(&self.p.plugin, bus, &run)).await
            }
            Action::TerminatePlugin => {
                self.link.terminate();
                None
            }
            Action::Arm(t) => {
                let after = match t {
                    Timer::ServiceStart => secs(self.t().service_start),
                    Timer::Connect => Duration::from_secs(self.vpn_timeout_secs()),
                    Timer::Activation => {
                        Duration::from_secs(self.vpn_timeout_secs())
                            + secs(self.t().activation_extra)
                    }
                };
                self.timers.arm(t, after);
                None
            }
            Action::Subscribe => Some(Box::pin(self.link.subscribe()).await),
            Action::Authenticate => Some(Box::pin(self.authenticate()).await),
            Action::Connect => Some(Box::pin(self.connect()).await),
            Action::AskMoreSecrets => Some(Box::pin(self.ask_more_secrets()).await),
            Action::Apply => {
                let ok = Box::pin(self.apply()).await;
                if ok {
                    self.applied().await;
                }
                Some(Event::Applied(ok))
            }
            Action::Reapply => {
                let ok = Box::pin(self.reapply()).await;
                if ok {
                    self.applied().await;
                }
                Some(Event::Applied(ok))
            }
            Action::Publish => {
                self.timers.clear();
                self.applier.report_daemon_work();
                Box::pin(self.export_ip_configs()).await;
                let _ = self.p.core.send(Command::Changed).await;
                None
            }
            Action::Finish(_) => None,
        }
    }

    /// The config is in the kernel: the core lets the tunnel through the kill switch before
    /// ACTIVATED is shown. Bounded: the core never waits on this task, but a stuck core must
    /// not hang it.
    async fn applied(&self) {
        let (reply, done) = tokio::sync::oneshot::channel();
        if self.p.core.send(Command::Applied { reply }).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), done).await;
        }
    }

    /// Moves to a phase and announces it as NM does: the AC's StateChanged and State first,
    /// then, if the VPN state changed, VpnStateChanged and VpnState.
    pub(super) async fn set_phase(&mut self, phase: Phase, reason: Reason) {
        let (old_ac, old_vpn) = self.shown.external();
        self.shown = phase;
        let (ac, vpn) = phase.external();
        self.p.snap.send_modify(|s| {
            s.state = ac as u32;
            s.vpn_state = vpn as u32;
            s.reason = reason as u32;
        });
        if let Err(e) = self
            .announce(phase, old_ac != ac, old_vpn != vpn, reason)
            .await
        {
            tracing::warn!("cannot announce state {phase:?}: {e}");
        }
        if ac != old_ac {
            let _ = self.p.core.send(Command::Changed).await;
        }
        if vpn != old_vpn {
            crate::netlink::crash_point(&format!("phase-{}", vpn.name()));
        }
    }

    async fn announce(
        &self,
        phase: Phase,
        ac_changed: bool,
        vpn_changed: bool,
        reason: Reason,
    ) -> zbus::Result<()> {
        let bus = &self.p.h.bus;
        let path = self.path.as_str();
        let (ac, vpn) = phase.external();
        let e = bus.emitter(path)?;
        if ac_changed {
            tracing::info!("state {:?} ({})", ac, reason.nmcli_text());
            ActiveView::emit_state_changed(&e, ac as u32, reason as u32).await?;
            let snap = self.p.snap.borrow().clone();
            bus.changed(
                path,
                Iface::Active,
                vec![
                    ("State", Variant::from(ac as u32)),
                    ("Default", Variant::from(snap.default4)),
                    ("Default6", Variant::from(snap.default6)),
                ],
            )
            .await?;
        }
        if vpn_changed {
            let banner = self.p.snap.borrow().banner.clone();
            tracing::info!("VPN state {} (reason {})", vpn.name(), reason as u32);
            VpnView::emit_vpn_state_changed(&e, vpn as u32, reason as u32).await?;
            bus.changed(
                path,
                Iface::Vpn,
                vec![
                    ("VpnState", Variant::from(vpn as u32)),
                    ("Banner", Variant::from(banner)),
                ],
            )
            .await?;
        }
        Ok(())
    }

    async fn teardown(&mut self, end: End) {
        self.timers.clear();
        self.remove_config().await;
        // A plugin that died may have written why just before: its output, until it ends.
        if end.reason == Reason::ServiceStopped {
            self.link.lines.ended(Duration::from_millis(250)).await;
        }
        // Before the end is announced: a client that sees it and asks gets them.
        let _ = self
            .p
            .core
            .send(Command::PluginLog {
                uuid: self.p.profile.connection.uuid.clone(),
                lines: self.link.lines.lines(),
            })
            .await;
        self.set_phase(end.phase, end.reason).await;
        let tun = self.applier.made_tun.take();
        let nl = self.p.h.netlink.clone();
        self.link
            .close(secs(self.t().plugin_call), tun.map(|t| (t, nl)));
        let _ = self.p.core.send(Command::Ended { n: self.p.n }).await;
    }
}

/// The core's command (or its going away) as the machine's event.
pub(super) fn deactivation(cmd: Option<AcCommand>) -> Event {
    match cmd {
        Some(AcCommand::Deactivate(r)) => Event::Deactivate(r),
        Some(AcCommand::CarrierLost) => Event::Deactivate(Reason::DeviceDisconnected),
        Some(AcCommand::Shutdown) => Event::Deactivate(Reason::UserDisconnected),
        None => Event::Deactivate(Reason::UserDisconnected),
    }
}
