//! One active VPN connection: a task that owns its state machine, its plugin, its timers and
//! its netlink journal (spec §3–§7). D-Bus objects are views onto the snapshot it publishes.

use std::time::Duration;

use futures::StreamExt;
use tinynm_config::Profile;
use tinynm_config::daemon_config::Timeouts;
use tinynm_config::nm::{Reason, ServiceState};
use tinynm_config::profile::{Family, IpMethod};
use tinynm_vpn_plugin::proxy::VpnPluginProxy;
use tinynm_vpn_plugin::wire::{Dict, GenericConfig, IpConfig};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;
use zbus::{OwnedObjectPath, Variant};

use super::machine::{End, Phase, failure_reason, on_name_vanished, on_service_state};
use super::plugin;
use super::registry::PluginInfo;
use super::secrets;
use crate::bus::active::{AcSnapshot, ActiveView, VpnView};
use crate::bus::ipconfig::{IpData, RouteEntry};
use crate::bus::properties_changed;
use crate::core::{Command, Ctx, IpObject};
use crate::devices::LinkAddr;
use crate::netlink::{Applied, Journal, plan};

/// Commands to a connection's task.
#[derive(Debug)]
pub enum AcCommand {
    /// Take the VPN down with this reason.
    Deactivate(Reason),
}

/// What the core hands to a new connection's task.
pub struct AcParams {
    /// Who activated it (whose agents are asked for secrets).
    pub uid: u32,
    /// The profile's Settings.Connection path (what agents are told).
    pub settings_path: OwnedObjectPath,
    /// Active connection number (also `Connection_<n>`).
    pub n: u64,
    /// Its object path.
    pub path: OwnedObjectPath,
    /// The applied profile (a snapshot taken at activation).
    pub profile: Profile,
    /// The plugin.
    pub plugin: PluginInfo,
    /// Daemon context.
    pub ctx: Ctx,
    /// To tell the core about changes and the end.
    pub core: mpsc::Sender<Command>,
    /// Commands from the core.
    pub cmd: mpsc::Receiver<AcCommand>,
    /// The published snapshot.
    pub snap: watch::Sender<AcSnapshot>,
}

/// Events from the bus and the plugin process, merged.
#[derive(Debug)]
enum Ev {
    Owner(Option<String>),
    State(u32),
    Failure(u32),
    Config(Dict),
    Ip4(Instant, Dict),
    Ip6(Dict),
    SecretsRequired(String, Vec<String>),
    Exited(String),
}

struct Ac {
    p: AcParams,
    bus_name: String,
    phase: Phase,
    events_tx: mpsc::UnboundedSender<Ev>,
    events: mpsc::UnboundedReceiver<Ev>,
    forwarders: Vec<tokio::task::JoinHandle<()>>,
    owner: Option<String>,
    proxy: Option<VpnPluginProxy<'static>>,
    last_failure: Option<Reason>,
    service_state: ServiceState,
    generic: Option<GenericConfig>,
    ip4: Option<Option<IpConfig>>,
    ip6: Option<Option<IpConfig>>,
    journal: Option<Journal>,
    /// When the last Ip4Config arrived, for the daemon-work figure.
    ip4_at: Option<Instant>,
    /// What the IP4Config/IP6Config objects show, until they are exported after ACTIVATED.
    ip_data: [Option<IpData>; 2],
    /// The exported IP4Config/IP6Config objects.
    ip_objects: Vec<IpObject>,
    /// The watch on the plugin's bus name until its owner is known.
    owner_watch: Option<tokio::task::JoinHandle<()>>,
}

/// Runs the connection to its end, then tells the core.
pub async fn run(p: AcParams) {
    let span = tracing::info_span!("vpn", n = p.n, id = %p.profile.connection.id);
    let (events_tx, events) = mpsc::unbounded_channel();
    let bus_name = p.plugin.bus_name(p.n);
    let mut ac = Ac {
        p,
        bus_name,
        phase: Phase::Waiting,
        events_tx,
        events,
        forwarders: Vec::new(),
        owner: None,
        proxy: None,
        last_failure: None,
        service_state: ServiceState::Unknown,
        generic: None,
        ip4: None,
        ip6: None,
        journal: None,
        ip4_at: None,
        ip_data: [None, None],
        ip_objects: Vec::new(),
        owner_watch: None,
    };
    async move {
        let end = match ac.activate().await {
            Ok(()) => ac.active().await,
            Err(end) => end,
        };
        ac.teardown(end).await;
    }
    .instrument(span)
    .await
}

fn secs(s: f64) -> Duration {
    Timeouts::dur(s)
}

impl Ac {
    fn t(&self) -> &Timeouts {
        &self.p.ctx.cfg.timeouts
    }

    /// Moves to a phase and announces it as NM does: the AC's StateChanged and State first,
    /// then, if the VPN state changed, VpnStateChanged and VpnState.
    async fn set_phase(&mut self, phase: Phase, reason: Reason) {
        let (old_ac, old_vpn) = self.phase.external();
        self.phase = phase;
        let (ac, vpn) = phase.external();
        self.p.snap.send_modify(|s| {
            s.state = ac as u32;
            s.vpn_state = vpn as u32;
        });
        if let Err(e) = self.announce(old_ac != ac, old_vpn != vpn, reason).await {
            tracing::warn!("cannot announce state {phase:?}: {e}");
        }
        if ac != old_ac {
            let _ = self.p.core.send(Command::Changed).await;
        }
    }

    async fn announce(
        &self,
        ac_changed: bool,
        vpn_changed: bool,
        reason: Reason,
    ) -> zbus::Result<()> {
        let conn = &self.p.ctx.conn;
        let path = self.p.path.as_str();
        let (ac, vpn) = self.phase.external();
        let e = zbus::object_server::SignalEmitter::new(conn, path)?;
        if ac_changed {
            tracing::info!("state {:?} ({})", ac, reason.nmcli_text());
            ActiveView::emit_state_changed(&e, ac as u32, reason as u32).await?;
            let snap = self.p.snap.borrow().clone();
            properties_changed(
                conn,
                path,
                "org.freedesktop.NetworkManager.Connection.Active",
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
            properties_changed(
                conn,
                path,
                "org.freedesktop.NetworkManager.VPN.Connection",
                vec![
                    ("VpnState", Variant::from(vpn as u32)),
                    ("Banner", Variant::from(banner)),
                ],
            )
            .await?;
        }
        Ok(())
    }

    fn forward<S, F>(&mut self, stream: S, f: F)
    where
        S: futures::Stream + Send + Unpin + 'static,
        F: Fn(S::Item) -> Option<Ev> + Send + 'static,
    {
        let tx = self.events_tx.clone();
        self.forwarders.push(tokio::spawn(async move {
            let mut stream = stream;
            while let Some(item) = stream.next().await {
                if let Some(ev) = f(item)
                    && tx.send(ev).is_err()
                {
                    break;
                }
            }
        }));
    }

    /// Waits for the next event, a command, or a deadline.
    async fn next(&mut self, deadlines: &[(Option<Instant>, End)]) -> Result<Ev, End> {
        let sleep = |d: Option<Instant>| async move {
            match d {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let d0 = deadlines
            .first()
            .copied()
            .unwrap_or((None, End::failed(Reason::Unknown)));
        let d1 = deadlines
            .get(1)
            .copied()
            .unwrap_or((None, End::failed(Reason::Unknown)));
        tokio::select! {
            ev = self.events.recv() => Ok(ev.expect("the task holds a sender")),
            cmd = self.p.cmd.recv() => match cmd {
                Some(AcCommand::Deactivate(r)) => Err(End::disconnected(r)),
                None => Err(End::disconnected(Reason::UserDisconnected)),
            },
            _ = sleep(d0.0) => Err(d0.1),
            _ = sleep(d1.0) => Err(d1.1),
        }
    }

    async fn activate(&mut self) -> Result<(), End> {
        let conn = self.p.ctx.conn.clone();
        let dbus = zbus::fdo::DBusProxy::new(&conn)
            .await
            .map_err(|e| self.start_failed(format!("no D-Bus: {e}")))?;
        // Subscribe first, then ask: the name's appearance cannot be missed.
        let owners = dbus
            .receive_name_owner_changed_with_args(&[(0, self.bus_name.as_str())])
            .await
            .map_err(|e| self.start_failed(format!("cannot watch {}: {e}", self.bus_name)))?;
        self.forward(owners, |sig| {
            let a = sig.args().ok()?;
            Some(Ev::Owner(a.new_owner().as_ref().map(|o| o.to_string())))
        });
        self.owner_watch = self.forwarders.pop();
        let name: zbus::names::BusName<'_> = self
            .bus_name
            .as_str()
            .try_into()
            .map_err(|e| self.start_failed(format!("bad bus name {}: {e}", self.bus_name)))?;
        let owner = tokio::time::timeout(secs(self.t().name_owner), dbus.get_name_owner(name))
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|o| o.to_string());
        self.set_phase(Phase::Prepare, Reason::None).await;
        let owner = match owner {
            Some(o) => o,
            None => self.start_plugin().await?,
        };
        self.owner = Some(owner.clone());
        let activation_deadline = Instant::now()
            + Duration::from_secs(self.vpn_timeout_secs())
            + secs(self.t().activation_extra);
        let proxy = VpnPluginProxy::builder(&conn)
            .destination(owner.clone())
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(|e| self.start_failed(format!("no proxy to {owner}: {e}")))?;
        self.subscribe(&owner).await?;
        self.proxy = Some(proxy.clone());

        self.set_phase(Phase::NeedAuth, Reason::None).await;
        let timeout_end = End::disconnected(Reason::ServiceStartTimeout);
        self.get_secrets(&proxy).await?;
        let dict = tinynm_config::dbus::to_dict(&self.p.profile, true);

        // NM's state goes to CONNECT when the call is sent, not when it returns.
        self.set_phase(Phase::Connect, Reason::None).await;
        let call = secs(self.t().plugin_call);
        // Interactive unless one of the requester's agents cannot take the plugin's hints (NM's
        // rule: every agent of the uid has VPN_HINTS, which holds when there is none).
        let interactive = secrets::candidates(&self.p.ctx.agents, self.p.uid)
            .iter()
            .all(|a| a.capabilities & secrets::VPN_HINTS != 0);
        let first = async {
            if interactive {
                proxy
                    .connect_interactive(dict.clone(), Default::default())
                    .await
            } else {
                proxy.connect(dict.clone()).await
            }
        };
        let r = match tokio::time::timeout(call, first).await {
            Ok(Err(zbus::Error::MethodError(name, _, _)))
                if name.as_str()
                    == "org.freedesktop.NetworkManager.VPN.Error.InteractiveNotSupported" =>
            {
                tokio::time::timeout(call, proxy.connect(dict)).await
            }
            other => other,
        };
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!("Connect failed: {e}");
                if died_meanwhile(&e) && !self.plugin_alive().await {
                    return Err(on_name_vanished());
                }
                return Err(End::failed(Reason::ServiceStartFailed));
            }
            Err(_) => {
                tracing::error!("Connect: no reply within {call:?}");
                return Err(End::failed(Reason::ServiceStartFailed));
            }
        }
        let connect_deadline = Instant::now() + Duration::from_secs(self.vpn_timeout_secs());

        loop {
            let ev = self
                .next(&[
                    (Some(connect_deadline), End::failed(Reason::ConnectTimeout)),
                    (Some(activation_deadline), timeout_end),
                ])
                .await
                .inspect_err(|e| {
                    if e.reason == Reason::ConnectTimeout {
                        tracing::error!(
                            "no complete config from the plugin within {}s",
                            self.vpn_timeout_secs()
                        );
                    }
                })?;
            self.on_event(ev).await?;
            if self.config_complete() {
                break;
            }
        }
        self.set_phase(Phase::PreUp, Reason::None).await;
        self.apply().await?;
        self.set_phase(Phase::Activated, Reason::None).await;
        if let Some(at) = self.ip4_at.take() {
            tracing::info!(
                "{} µs of daemon work from Ip4Config to ACTIVATED",
                at.elapsed().as_micros()
            );
        }
        self.export_ip_configs().await;
        Ok(())
    }

    /// The VPN's IP4Config/IP6Config objects, exported once it is up (a large route list is
    /// never serialized on the way to ACTIVATED).
    async fn export_ip_configs(&mut self) {
        for (i, prop) in [(0, "Ip4Config"), (1, "Ip6Config")] {
            let Some(data) = self.ip_data[i].take() else {
                continue;
            };
            match self.p.ctx.export_ip(i == 1, data).await {
                Ok(o) => {
                    let path = o.path.clone();
                    self.p.snap.send_modify(|s| {
                        if i == 0 {
                            s.ip4_config = path.clone();
                        } else {
                            s.ip6_config = path.clone();
                        }
                    });
                    self.ip_objects.push(o);
                    if let Err(e) = properties_changed(
                        &self.p.ctx.conn,
                        self.p.path.as_str(),
                        "org.freedesktop.NetworkManager.Connection.Active",
                        vec![(prop, Variant::from(path))],
                    )
                    .await
                    {
                        tracing::warn!("cannot announce the {prop}: {e}");
                    }
                }
                Err(e) => tracing::warn!("cannot export the {prop}: {e}"),
            }
        }
        crate::core::release_memory();
    }

    /// NM's secrets passes (spec §6.3): the stored secrets, then the agents without
    /// interaction, then with it; `NeedSecrets` after each. Fails at once with NO_SECRETS,
    /// naming the missing keys, when no agent can answer.
    async fn get_secrets(&mut self, proxy: &VpnPluginProxy<'static>) -> Result<(), End> {
        // Pass 1 takes the daemon's secrets file too (a headless system's source), for keys
        // the profile does not store.
        if let Some(f) = self.p.ctx.cfg.secrets_file.clone() {
            let (id, uuid) = (
                self.p.profile.connection.id.clone(),
                self.p.profile.connection.uuid.clone(),
            );
            match tinynm_config::daemon_config::secrets_for(&f, &id, &uuid) {
                Ok(found) => {
                    for (k, v) in found {
                        self.p.profile.vpn.secrets.entry(k).or_insert(v);
                    }
                }
                Err(e) => tracing::error!("secrets file: {e}"),
            }
        }
        let mut pass = 1;
        loop {
            let dict = tinynm_config::dbus::to_dict(&self.p.profile, true);
            let need =
                tokio::time::timeout(secs(self.t().plugin_call), proxy.need_secrets(dict)).await;
            let setting = match need {
                Ok(Ok(s)) if s.is_empty() => return Ok(()),
                Ok(Ok(setting)) => setting,
                Ok(Err(e)) => {
                    tracing::error!("NeedSecrets failed: {e}");
                    if died_meanwhile(&e) && !self.plugin_alive().await {
                        return Err(on_name_vanished());
                    }
                    return Err(End::failed(Reason::NoSecrets));
                }
                Err(_) => {
                    tracing::error!("NeedSecrets: no reply within {}s", self.t().plugin_call);
                    return Err(End::failed(Reason::NoSecrets));
                }
            };
            if pass == 3 {
                tracing::error!(
                    "the plugin still needs secrets for '{setting}' ({}) after the agents' answers",
                    self.missing()
                );
                return Err(End::failed(Reason::NoSecrets));
            }
            let flags = secrets::flags::USER_REQUESTED
                | if pass == 2 {
                    secrets::flags::ALLOW_INTERACTION
                } else {
                    0
                };
            match self.ask_agents(&[], flags).await? {
                Ok(()) => {}
                Err(secrets::AgentsFailed::NoAgents) => {
                    tracing::error!(
                        "the plugin needs secrets for '{setting}' ({}): the profile does not store them and no secret agent of uid {} is registered",
                        self.missing(),
                        self.p.uid
                    );
                    return Err(End::failed(Reason::NoSecrets));
                }
                Err(e @ secrets::AgentsFailed::UserCanceled(_)) => {
                    tracing::error!("secrets for '{setting}' ({}): {e}", self.missing());
                    return Err(End::failed(Reason::NoSecrets));
                }
                Err(e) if pass == 2 => {
                    tracing::error!("secrets for '{setting}' ({}): {e}", self.missing());
                    return Err(End::failed(Reason::NoSecrets));
                }
                Err(e) => tracing::info!("secrets without interaction: {e}"),
            }
            pass += 1;
        }
    }

    /// The keys the profile lacks, for messages.
    fn missing(&self) -> String {
        let keys = secrets::missing_keys(&self.p.profile);
        if keys.is_empty() {
            "vpn.secrets".into()
        } else {
            keys.join(", ")
        }
    }

    /// Asks the agents (bounded; a deactivation meanwhile ends the activation) and merges what
    /// they give into the applied profile, in memory only.
    async fn ask_agents(
        &mut self,
        hints: &[String],
        flags: u32,
    ) -> Result<Result<(), secrets::AgentsFailed>, End> {
        let limit = secs(self.t().agent);
        let ctx = self.p.ctx.clone();
        let (profile, path, uid) = (
            self.p.profile.clone(),
            self.p.settings_path.clone(),
            self.p.uid,
        );
        let ask = secrets::request(
            &ctx.conn,
            &ctx.agents,
            secrets::Request {
                profile: &profile,
                path: &path,
                hints,
                flags,
                uid,
            },
            limit,
        );
        let got = tokio::select! {
            r = ask => r,
            cmd = self.p.cmd.recv() => return Err(match cmd {
                Some(AcCommand::Deactivate(r)) => End::disconnected(r),
                None => End::disconnected(Reason::UserDisconnected),
            }),
        };
        match got {
            Ok((s, agent)) => {
                tracing::info!(
                    "secret agent '{}' gave {} secret(s)",
                    agent.identifier,
                    s.len()
                );
                self.p.profile.vpn.secrets.extend(s);
                if let Some(name) = secrets::user_name(agent.uid) {
                    self.p.profile.vpn.user_name = Some(name);
                }
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Whether the plugin still owns its name: a call that failed because the plugin died is
    /// the name vanishing, as NM sees it, not a refused call.
    async fn plugin_alive(&self) -> bool {
        let Ok(dbus) = zbus::fdo::DBusProxy::new(&self.p.ctx.conn).await else {
            return false;
        };
        let Ok(name) = zbus::names::BusName::try_from(self.bus_name.as_str()) else {
            return false;
        };
        match dbus.get_name_owner(name).await {
            Ok(o) => Some(o.to_string()) == self.owner,
            Err(_) => false,
        }
    }

    /// Where this connection's kernel objects are journaled while it is up.
    fn journal_path(&self) -> std::path::PathBuf {
        self.p
            .ctx
            .cfg
            .state_dir
            .join(format!("ac-{}.journal", self.p.n))
    }

    fn vpn_timeout_secs(&self) -> u64 {
        self.p.profile.vpn_timeout_secs(self.t().vpn_default) as u64
    }

    fn start_failed(&self, why: String) -> End {
        tracing::error!("{why}");
        End::disconnected(Reason::ServiceStartFailed)
    }

    async fn start_plugin(&mut self) -> Result<String, End> {
        let tx = self.events_tx.clone();
        let pid = plugin::spawn(&self.p.plugin, &self.bus_name, move |how| {
            let _ = tx.send(Ev::Exited(how));
        })
        .map_err(|e| self.start_failed(e.to_string()))?;
        tracing::info!(
            "started {} (pid {pid}) for {}",
            self.p.plugin.program.display(),
            self.bus_name
        );
        let deadline = Instant::now() + secs(self.t().service_start);
        loop {
            match self
                .next(&[(
                    Some(deadline),
                    End::disconnected(Reason::ServiceStartTimeout),
                )])
                .await
            {
                Ok(Ev::Owner(Some(o))) => return Ok(o),
                Ok(Ev::Exited(how)) => {
                    return Err(self.start_failed(format!(
                        "the plugin {how} before claiming {}",
                        self.bus_name
                    )));
                }
                Ok(_) => {}
                Err(end) => {
                    if end.reason == Reason::ServiceStartTimeout {
                        tracing::error!(
                            "the plugin did not claim {} within {}s: ending it (pid {pid})",
                            self.bus_name,
                            self.t().service_start
                        );
                    }
                    // A plugin that never came up has nobody to tell it to stop but us.
                    plugin::terminate(pid);
                    return Err(end);
                }
            }
        }
    }

    /// One stream for every signal of the plugin's current owner, so that they arrive in the
    /// order the plugin sent them (a `Failure` before the `StateChanged` it explains).
    async fn subscribe(&mut self, owner: &str) -> Result<(), End> {
        let err = |e: zbus::Error| {
            tracing::error!("cannot subscribe to the plugin's signals: {e}");
            End::failed(Reason::ServiceStartFailed)
        };
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(owner)
            .path(tinynm_vpn_plugin::service::PLUGIN_PATH)
            .interface(tinynm_vpn_plugin::service::PLUGIN_IFACE)
            .build()
            .map_err(err)?;
        let stream = zbus::MessageStream::for_match_rule(rule, &self.p.ctx.conn, None)
            .await
            .map_err(err)?;
        // The name's owner changes come through the same forwarder, after whatever the plugin
        // sent before it left: the bus delivers the plugin's last signals (Failure, STOPPED)
        // before the NameOwnerChanged of its exit, and NM reads them in that order.
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender("org.freedesktop.DBus")
            .interface("org.freedesktop.DBus")
            .member("NameOwnerChanged")
            .arg(0, self.bus_name.as_str())
            .build()
            .map_err(err)?;
        let owners = zbus::MessageStream::for_match_rule(rule, &self.p.ctx.conn, None)
            .await
            .map_err(err)?;
        let both = futures::stream::select_with_strategy(
            stream.map(futures::future::Either::Left),
            owners.map(futures::future::Either::Right),
            |_: &mut ()| futures::stream::PollNext::Left,
        );
        // The first watch, from before the owner was known, is no longer needed.
        if let Some(w) = self.owner_watch.take() {
            w.abort();
        }
        if !self.plugin_alive().await {
            let _ = self.events_tx.send(Ev::Owner(None));
        }
        self.forward(both, |m| {
            let m = match m {
                futures::future::Either::Left(m) => m.ok()?,
                futures::future::Either::Right(m) => {
                    let m = m.ok()?;
                    let (_, _, new): (String, String, String) = m.body().deserialize().ok()?;
                    return Some(Ev::Owner((!new.is_empty()).then_some(new)));
                }
            };
            let member = m.header().member()?.to_string();
            let body = m.body();
            let ev = match member.as_str() {
                "StateChanged" => Ev::State(body.deserialize().ok()?),
                "Failure" => Ev::Failure(body.deserialize().ok()?),
                "Config" => Ev::Config(body.deserialize().ok()?),
                "Ip4Config" => Ev::Ip4(Instant::now(), body.deserialize().ok()?),
                "Ip6Config" => Ev::Ip6(body.deserialize().ok()?),
                "SecretsRequired" => {
                    let (msg, hints): (String, Vec<String>) = body.deserialize().ok()?;
                    Ev::SecretsRequired(msg, hints)
                }
                // LoginBanner is not handled by NM 1.42; a wrong signature is ignored, as NM does.
                _ => return None,
            };
            Some(ev)
        });
        Ok(())
    }

    /// Handles one event while connecting or connected.
    async fn on_event(&mut self, ev: Ev) -> Result<(), End> {
        match ev {
            Ev::Owner(new) => {
                if new != self.owner {
                    tracing::error!("the plugin's bus name {} lost its owner", self.bus_name);
                    self.owner = None;
                    return Err(on_name_vanished());
                }
            }
            Ev::Exited(how) => tracing::info!("the plugin {how}"),
            Ev::Failure(f) => {
                let r = failure_reason(f);
                tracing::warn!("the plugin reported failure {f} ({})", r.nmcli_text());
                self.last_failure = Some(r);
            }
            Ev::State(s) => {
                let prev = self.service_state;
                self.service_state = ServiceState::from_u32(s);
                if let Some(end) = on_service_state(self.phase, s, self.last_failure) {
                    tracing::error!("the plugin stopped");
                    return Err(end);
                }
                if prev == ServiceState::Started && self.service_state == ServiceState::Starting {
                    tracing::warn!("the plugin is reconnecting");
                }
            }
            Ev::SecretsRequired(msg, mut hints) if self.phase <= Phase::Connect => {
                // NM's pass 4: the plugin's hints and message to the agents, then NewSecrets.
                self.set_phase(Phase::NeedAuth, Reason::None).await;
                hints.push(format!("x-vpn-message:{msg}"));
                let flags = secrets::flags::ALLOW_INTERACTION | secrets::flags::USER_REQUESTED;
                if let Err(e) = self.ask_agents(&hints, flags).await? {
                    tracing::error!(
                        "the plugin asks for more secrets ({msg:?}, hints {hints:?}): {e}"
                    );
                    return Err(End::failed(Reason::NoSecrets));
                }
                let Some(proxy) = self.proxy.clone() else {
                    return Err(End::failed(Reason::NoSecrets));
                };
                let dict = tinynm_config::dbus::to_dict(&self.p.profile, true);
                match tokio::time::timeout(secs(self.t().plugin_call), proxy.new_secrets(dict))
                    .await
                {
                    Ok(Ok(())) => self.set_phase(Phase::Connect, Reason::None).await,
                    Ok(Err(e)) => {
                        tracing::error!("NewSecrets failed: {e}");
                        return Err(End::failed(Reason::NoSecrets));
                    }
                    Err(_) => {
                        tracing::error!("NewSecrets: no reply");
                        return Err(End::failed(Reason::NoSecrets));
                    }
                }
            }
            Ev::SecretsRequired(..) => {}
            Ev::Config(d) if self.phase >= Phase::NeedAuth && self.phase <= Phase::Activated => {
                // While up, a new config (a restarted tunnel's) is taken without a state change.
                if self.phase < Phase::Activated {
                    self.set_phase(Phase::IpConfigGet, Reason::None).await;
                }
                let g = GenericConfig::parse(&d).map_err(|e| self.invalid(e.to_string()))?;
                g.require_gateway()
                    .map_err(|e| self.invalid(e.to_string()))?;
                self.p.snap.send_modify(|s| s.banner = g.banner.clone());
                if !g.has_ip4 || self.p.profile.ipv4.method != IpMethod::Auto {
                    self.ip4 = Some(None);
                }
                if !g.has_ip6 || self.p.profile.ipv6.method != IpMethod::Auto {
                    self.ip6 = Some(None);
                }
                self.generic = Some(g);
            }
            Ev::Ip4(at, d) if self.phase >= Phase::NeedAuth && self.phase <= Phase::Activated => {
                self.ip4_at = Some(at);
                if self.generic.is_none() {
                    // Old-style plugin: the Ip4Config carries the generic config too.
                    if self.phase < Phase::Activated {
                        self.set_phase(Phase::IpConfigGet, Reason::None).await;
                    }
                    let g = GenericConfig::parse(&d).map_err(|e| self.invalid(e.to_string()))?;
                    g.require_gateway()
                        .map_err(|e| self.invalid(e.to_string()))?;
                    self.ip6 = Some(None);
                    self.generic = Some(g);
                }
                if self.p.profile.ipv4.method != IpMethod::Auto {
                    self.ip4 = Some(None);
                } else {
                    let gw = self.generic.as_ref().and_then(|g| g.gateway);
                    let c = IpConfig::parse(&d, Family::V4, gw)
                        .map_err(|e| self.invalid(e.to_string()))?;
                    self.ip4 = Some(c);
                }
            }
            Ev::Ip6(d) if self.phase >= Phase::NeedAuth && self.phase <= Phase::Activated => {
                if self.p.profile.ipv6.method != IpMethod::Auto {
                    self.ip6 = Some(None);
                } else {
                    let gw = self.generic.as_ref().and_then(|g| g.gateway);
                    let c = IpConfig::parse(&d, Family::V6, gw)
                        .map_err(|e| self.invalid(e.to_string()))?;
                    self.ip6 = Some(c);
                }
            }
            Ev::Config(_) | Ev::Ip4(..) | Ev::Ip6(_) => {
                tracing::debug!("config ignored in phase {:?}", self.phase);
            }
        }
        Ok(())
    }

    fn invalid(&self, why: String) -> End {
        tracing::error!("invalid config from the plugin: {why}");
        End::failed(Reason::IpConfigInvalid)
    }

    fn config_complete(&self) -> bool {
        self.generic.is_some() && self.ip4.is_some() && self.ip6.is_some()
    }

    /// Puts the config in the kernel as one transaction.
    async fn apply(&mut self) -> Result<(), End> {
        let nl = self.p.ctx.netlink.clone();
        let g = self.generic.take().expect("complete");
        let ip4 = self.ip4.take().flatten();
        let ip6 = self.ip6.take().flatten();
        if ip4.is_none() && ip6.is_none() {
            return Err(
                self.invalid("neither IPv4 nor IPv6 config (both families disabled)".into())
            );
        }
        let gateway_route = match g.gateway {
            Some(gw) => nl.route_get(gw).await.map_err(|e| {
                self.invalid(format!("cannot look up the route to the gateway {gw}: {e}"))
            })?,
            None => None,
        };
        let (ifindex, own) = match &g.tundev {
            Some(name) => match nl.link_by_name(name).await {
                Ok(Some(l)) => (l.index, true),
                Ok(None) => {
                    return Err(
                        self.invalid(format!("Config: tundev: interface '{name}' does not exist"))
                    );
                }
                Err(e) => return Err(self.invalid(e.to_string())),
            },
            None => match gateway_route {
                // No interface of its own: the config goes on the parent (NM's route-based VPNs).
                Some(l) => (l.oif, false),
                None => {
                    return Err(self.invalid(format!(
                        "Config has no tundev and the gateway {} is unreachable, so there is no parent interface",
                        g.gateway.map(|a| a.to_string()).unwrap_or_default()
                    )));
                }
            },
        };
        let plan = plan::build(&plan::Inputs {
            profile: &self.p.profile,
            generic: &g,
            ip4: ip4.as_ref(),
            ip6: ip6.as_ref(),
            ifindex,
            own_interface: own,
            gateway_route,
        });
        let default4 = has_default(&self.p.profile, ip4.as_ref());
        let default6 = has_default(&self.p.profile, ip6.as_ref());
        self.ip_data = [
            ip4.as_ref()
                .map(|c| ip_data(&self.p.profile, c, &plan, ifindex)),
            ip6.as_ref()
                .map(|c| ip_data(&self.p.profile, c, &plan, ifindex)),
        ];
        drop((ip4, ip6));
        let started = Instant::now();
        match nl.apply(&plan).await {
            Ok(j) => {
                tracing::info!(
                    "applied {} addresses and {} routes on #{ifindex} in {:?}",
                    plan.addresses.len(),
                    j.routes(),
                    started.elapsed()
                );
                // Journaled before anyone hears of ACTIVATED: a crash from then on leaves
                // nothing the next start does not remove.
                if let Err(e) = crate::netlink::save_journal(&self.journal_path(), &j) {
                    tracing::warn!(
                        "cannot journal the VPN's kernel objects in {}: {e} (a crash would leave them)",
                        self.journal_path().display()
                    );
                }
                self.journal = Some(j);
                let dns = self.dns_entry(
                    g.tundev.clone().unwrap_or_default(),
                    ifindex,
                    default4 || default6,
                );
                self.p.snap.send_modify(|s| {
                    s.default4 = default4;
                    s.default6 = default6;
                    s.dns = dns;
                });
                Ok(())
            }
            Err(e) => {
                tracing::error!("cannot apply the VPN's config, rolled back: {e}");
                Err(End::failed(Reason::IpConfigInvalid))
            }
        }
    }

    /// The VPN's DNS (both families), for the DNS backend.
    fn dns_entry(
        &self,
        iface: String,
        ifindex: u32,
        default_route: bool,
    ) -> Vec<crate::dns::DnsEntry> {
        let data: Vec<&IpData> = self.ip_data.iter().flatten().collect();
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

    /// Waits while activated.
    async fn active(&mut self) -> End {
        loop {
            match self.next(&[]).await {
                Ok(ev) => {
                    if let Err(end) = self.on_event(ev).await {
                        return end;
                    }
                    if self.config_complete()
                        && let Err(end) = self.reapply().await
                    {
                        return end;
                    }
                }
                Err(end) => return end,
            }
        }
    }

    /// A new config while up (the plugin's tunnel restarted): the old one comes out of the
    /// kernel, except the routes of a family whose new config says preserve-routes, and the
    /// new one goes in, as NM re-applies.
    async fn reapply(&mut self) -> Result<(), End> {
        let keep4 = matches!(&self.ip4, Some(Some(c)) if c.preserve_routes);
        let keep6 = matches!(&self.ip6, Some(Some(c)) if c.preserve_routes);
        tracing::info!(
            "new config from the plugin while up: re-applying{}",
            if keep4 || keep6 {
                " (keeping the old routes)"
            } else {
                ""
            }
        );
        let mut kept = Vec::new();
        if let Some(j) = self.journal.take() {
            let (keep, drop): (Vec<Applied>, Vec<Applied>) =
                j.items.into_iter().partition(|a| match a {
                    Applied::Route(r) => {
                        let v6 =
                            r.header.address_family == netlink_packet_route::AddressFamily::Inet6;
                        (keep4 && !v6) || (keep6 && v6)
                    }
                    _ => false,
                });
            kept = keep;
            for e in self.p.ctx.netlink.remove(Journal { items: drop }).await {
                tracing::error!("re-apply: {e}");
            }
        }
        let root = crate::bus::active::root();
        if !self.ip_objects.is_empty() {
            self.p.snap.send_modify(|s| {
                s.ip4_config = root.clone();
                s.ip6_config = root.clone();
            });
            let _ = properties_changed(
                &self.p.ctx.conn,
                self.p.path.as_str(),
                "org.freedesktop.NetworkManager.Connection.Active",
                vec![
                    ("Ip4Config", Variant::from(root.clone())),
                    ("Ip6Config", Variant::from(root)),
                ],
            )
            .await;
            for o in std::mem::take(&mut self.ip_objects) {
                self.p.ctx.unexport_ip(o).await;
            }
        }
        self.apply().await?;
        // Taking the last address off the interface took the kernel's routes through it with
        // it: the kept ones go back in (those still there stay), and stay ours.
        if !kept.is_empty() {
            let again = crate::netlink::Plan {
                routes: kept.clone(),
                ..Default::default()
            };
            if let Err(e) = self.p.ctx.netlink.apply(&again).await {
                tracing::warn!("re-apply: the kept routes: {e}");
            }
        }
        let path = self.journal_path();
        if let Some(j) = &mut self.journal {
            j.items.extend(kept);
            if let Err(e) = crate::netlink::save_journal(&path, j) {
                tracing::warn!("cannot journal the re-applied config: {e}");
            }
        }
        self.export_ip_configs().await;
        let _ = self.p.core.send(Command::Changed).await;
        Ok(())
    }

    async fn teardown(&mut self, end: End) {
        let user = end.phase == Phase::Disconnected
            && matches!(
                end.reason,
                Reason::UserDisconnected | Reason::ConnectionRemoved
            );
        if user && self.phase == Phase::Activated {
            self.set_phase(Phase::Deactivating, end.reason).await;
        }
        if let Some(j) = self.journal.take() {
            let n = j.routes();
            for e in self.p.ctx.netlink.remove(j).await {
                tracing::error!("teardown: {e}");
            }
            tracing::info!("removed the VPN's config ({n} routes)");
            let _ = std::fs::remove_file(self.journal_path());
        }
        let root = crate::bus::active::root();
        self.p.snap.send_modify(|s| {
            s.default4 = false;
            s.default6 = false;
            s.ip4_config = root.clone();
            s.ip6_config = root.clone();
            s.dns.clear();
        });
        // The connection stops naming its IP configs before they go.
        if !self.ip_objects.is_empty()
            && let Err(e) = properties_changed(
                &self.p.ctx.conn,
                self.p.path.as_str(),
                "org.freedesktop.NetworkManager.Connection.Active",
                vec![
                    ("Ip4Config", Variant::from(root.clone())),
                    ("Ip6Config", Variant::from(root.clone())),
                ],
            )
            .await
        {
            tracing::warn!("cannot announce the end of the IP configs: {e}");
        }
        for o in std::mem::take(&mut self.ip_objects) {
            self.p.ctx.unexport_ip(o).await;
        }
        self.set_phase(end.phase, end.reason).await;
        for f in self.forwarders.drain(..).chain(self.owner_watch.take()) {
            f.abort();
        }
        // NM sends Disconnect once on FAILED/DISCONNECTED, and never waits for it.
        if let Some(proxy) = self.proxy.take() {
            let call = secs(self.t().plugin_call);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(call, proxy.disconnect()).await;
            });
        }
        let _ = self.p.core.send(Command::Ended { n: self.p.n }).await;
    }
}

/// Whether a failed call failed because the plugin left the bus, not because it answered an
/// error (which NM handles first, as it comes before the name vanishes).
fn died_meanwhile(e: &zbus::Error) -> bool {
    let name = match e {
        zbus::Error::MethodError(name, _, _) => name.as_str().to_string(),
        zbus::Error::FDO(f) => zbus::DBusError::name(f.as_ref()).to_string(),
        zbus::Error::InputOutput(_) => return true,
        _ => return false,
    };
    matches!(
        name.as_str(),
        "org.freedesktop.DBus.Error.NoReply"
            | "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner"
            | "org.freedesktop.DBus.Error.Disconnected"
    )
}

/// What the VPN's IP4Config/IP6Config show: its address, the routes on its interface, its
/// DNS (the plugin's, then the profile's), DNS priority 50 unless the profile sets one.
fn ip_data(p: &Profile, c: &IpConfig, plan: &crate::netlink::Plan, ifindex: u32) -> IpData {
    let sect = match c.family {
        Family::V4 => &p.ipv4,
        Family::V6 => &p.ipv6,
    };
    let routes: Vec<RouteEntry> = plan
        .routes
        .iter()
        .filter_map(|a| match a {
            Applied::Route(r) => Some(crate::netlink::route_entry(r)),
            _ => None,
        })
        .filter(|(oif, e)| *oif == ifindex && e.dest.is_ipv6() == c.address.is_ipv6())
        .map(|(_, e)| e)
        .collect();
    let gateway = match routes.iter().find(|r| r.prefix == 0) {
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
