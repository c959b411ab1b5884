//! The link to one connection's plugin: its bus name and owner, its process, its signals
//! (one ordered stream) and the proxy the calls go through.

use std::time::Duration;

use crate::netlink::Netlink;

use futures::StreamExt;
use tinynm_config::daemon_config::Timeouts;
use tinynm_vpn_plugin::proxy::VpnPluginProxy;
use tinynm_vpn_plugin::wire::WireDict;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::machine::Event;
use super::plugin;
use super::registry::PluginInfo;
use super::task::secs;

/// Events from the bus and the plugin process, merged.
#[derive(Debug)]
pub enum Ev {
    /// The name's owner now (`None`: it has none).
    Owner(Option<String>),
    /// `StateChanged`
    State(u32),
    /// `Failure`
    Failure(u32),
    /// `Config`
    Config(WireDict),
    /// `Ip4Config`, with when it arrived.
    Ip4(Instant, WireDict),
    /// `Ip6Config`
    Ip6(WireDict),
    /// `SecretsRequired(message, hints)`
    SecretsRequired(String, Vec<String>),
    /// The process ended, as said.
    Exited(String),
}

/// One plugin, as a connection sees it.
pub struct PluginLink {
    bus_name: String,
    conn: zbus::Connection,
    events_tx: mpsc::UnboundedSender<Ev>,
    events: mpsc::UnboundedReceiver<Ev>,
    forwarders: Vec<tokio::task::JoinHandle<()>>,
    /// The watch on the plugin's bus name until its owner is known.
    owner_watch: Option<tokio::task::JoinHandle<()>>,
    owner: Option<String>,
    proxy: Option<VpnPluginProxy<'static>>,
    pid: Option<u32>,
    exited: Option<tokio::sync::watch::Receiver<bool>>,
    /// The plugin's last lines.
    pub lines: plugin::PluginLines,
}

/// Whether a failed call failed because the plugin left the bus, not because it answered an
/// error (which NM handles first, as it comes before the name vanishes).
pub fn died_meanwhile(e: &zbus::Error) -> bool {
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

impl PluginLink {
    /// A link to the plugin that is to own `bus_name`.
    pub fn new(bus_name: String, conn: zbus::Connection) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        PluginLink {
            bus_name,
            conn,
            events_tx,
            events,
            forwarders: Vec::new(),
            owner_watch: None,
            owner: None,
            proxy: None,
            pid: None,
            exited: None,
            lines: plugin::PluginLines::default(),
        }
    }

    /// `…Connection_<n>`
    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// The name's owner, once known.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The name was claimed by `o`.
    pub fn set_owner(&mut self, o: String) {
        self.owner = Some(o);
    }

    /// The proxy, once subscribed.
    pub fn proxy(&self) -> Option<VpnPluginProxy<'static>> {
        self.proxy.clone()
    }

    /// The next signal or process event.
    pub async fn next(&mut self) -> Ev {
        self.events.recv().await.expect("the link holds a sender")
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

    fn start_failed(&self, why: String) -> Event {
        tracing::error!("{why}");
        Event::StartFailed
    }

    /// Watches the name, then asks for its owner: its appearance cannot be missed.
    pub async fn look_up(&mut self, t: &Timeouts) -> Event {
        let dbus = match zbus::fdo::DBusProxy::new(&self.conn).await {
            Ok(d) => d,
            Err(e) => return self.start_failed(format!("no D-Bus: {e}")),
        };
        let owners = match dbus
            .receive_name_owner_changed_with_args(&[(0, self.bus_name.as_str())])
            .await
        {
            Ok(o) => o,
            Err(e) => return self.start_failed(format!("cannot watch {}: {e}", self.bus_name)),
        };
        self.forward(owners, |sig| {
            let a = sig.args().ok()?;
            Some(Ev::Owner(a.new_owner().as_ref().map(|o| o.to_string())))
        });
        self.owner_watch = self.forwarders.pop();
        let name: zbus::names::BusName<'_> = match self.bus_name.as_str().try_into() {
            Ok(n) => n,
            Err(e) => return self.start_failed(format!("bad bus name {}: {e}", self.bus_name)),
        };
        let owner = tokio::time::timeout(secs(t.name_owner), dbus.get_name_owner(name))
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|o| o.to_string());
        if let Some(o) = &owner
            && let Err(why) = self.trusted(o).await
        {
            return self.start_failed(why);
        }
        let found = owner.is_some();
        self.owner = owner;
        Event::OwnerLookedUp(found)
    }

    /// Whether unique name `owner` may serve the plugin's name: only root may, as NM's D-Bus
    /// policy says (`nm-*-service.conf`). A system bus enforces that itself; the embedded bus
    /// (busd) has no policy, so tinynmd asks who the owner is.
    pub async fn trusted(&self, owner: &str) -> Result<(), String> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conn)
            .await
            .map_err(|e| format!("no D-Bus: {e}"))?;
        let name: zbus::names::BusName<'_> = owner
            .try_into()
            .map_err(|e| format!("bad unique name {owner}: {e}"))?;
        match dbus.get_connection_unix_user(name).await {
            Ok(0) => Ok(()),
            Ok(uid) => Err(format!(
                "{} is owned by {owner}, a process of uid {uid}: only root may serve a VPN plugin's name (NM's D-Bus policy), so tinynmd does not talk to it",
                self.bus_name
            )),
            Err(e) => Err(format!(
                "cannot tell who owns {} ({owner}): {e}",
                self.bus_name
            )),
        }
    }

    /// Execs the plugin, telling it `bus` (tinynmd's, when not the system bus); `None` when
    /// it runs (its name is awaited next).
    pub async fn start(
        &mut self,
        info: &PluginInfo,
        bus: Option<&str>,
        runtime: &std::path::Path,
    ) -> Option<Event> {
        let tx = self.events_tx.clone();
        match plugin::spawn(
            info,
            &self.bus_name,
            bus,
            runtime,
            self.lines.clone(),
            move |how| {
                let _ = tx.send(Ev::Exited(how));
            },
        ) {
            Ok(plugin::Spawned { pid, exited }) => {
                tracing::info!(
                    "started {} (pid {pid}) for {}",
                    info.program.display(),
                    self.bus_name
                );
                self.pid = Some(pid);
                self.exited = Some(exited);
                None
            }
            Err(e) => Some(self.start_failed(e.to_string())),
        }
    }

    /// Ends a plugin that never came up: nobody but us can tell it to stop.
    pub fn terminate(&self) {
        if let Some(pid) = self.pid {
            tracing::error!("ending the plugin (pid {pid})");
            plugin::terminate(pid);
        }
    }

    /// A proxy to the owner, and one stream for every signal of it, so that they arrive in
    /// the order the plugin sent them (a `Failure` before the `StateChanged` it explains).
    pub async fn subscribe(&mut self) -> Event {
        let Some(owner) = self.owner.clone() else {
            return self.start_failed(format!("{} has no owner", self.bus_name));
        };
        let proxy = VpnPluginProxy::builder(&self.conn)
            .destination(owner.clone())
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await;
        match proxy {
            Ok(p) => self.proxy = Some(p),
            Err(e) => return self.start_failed(format!("no proxy to {owner}: {e}")),
        }
        match self.signals(&owner).await {
            Ok(()) => Event::Subscribed,
            Err(e) => {
                tracing::error!("cannot subscribe to the plugin's signals: {e}");
                Event::SubscribeFailed
            }
        }
    }

    async fn signals(&mut self, owner: &str) -> zbus::Result<()> {
        // One rule for every plugin, the sender checked here: a rule naming the plugin's unique
        // name is dropped by the bus when the plugin leaves, so zbus's later RemoveMatch fails
        // and zbus keeps the subscription (and its channel) for ever: ~250 bytes a connection.
        //
        // That rule's queue is shared by every VPN, and zbus stops reading the connection
        // while any subscriber's queue is full: the stream is polled from the moment it exists,
        // with no await in between. (With the round trips of the name's own watch and of the
        // liveness check in that gap, a hundred plugins starting at once filled it, and the
        // daemon waited on a reply it could no longer read until the start timers fired.)
        //
        // The name's owner changes come through the same forwarder, after whatever the plugin
        // sent before it left: the bus delivers the plugin's last signals (Failure, STOPPED)
        // before the NameOwnerChanged of its exit, and NM reads them in that order.
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender("org.freedesktop.DBus")
            .interface("org.freedesktop.DBus")
            .member("NameOwnerChanged")
            .arg(0, self.bus_name.as_str())
            .build()?;
        let owners = zbus::MessageStream::for_match_rule(rule, &self.conn, None).await?;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .path(tinynm_vpn_plugin::service::PLUGIN_PATH)
            .interface(tinynm_vpn_plugin::service::PLUGIN_IFACE)
            .build()?;
        let stream = zbus::MessageStream::for_match_rule(rule, &self.conn, None).await?;
        let from = owner.to_string();
        let both = futures::stream::select_with_strategy(
            stream.map(futures::future::Either::Left),
            owners.map(futures::future::Either::Right),
            |_: &mut ()| futures::stream::PollNext::Left,
        );
        // The first watch, from before the owner was known, is no longer needed.
        if let Some(w) = self.owner_watch.take() {
            w.abort();
        }
        self.forward(both, move |m| {
            let m = match m {
                futures::future::Either::Left(m) => {
                    let m = m.ok()?;
                    if m.header().sender().map(|s| s.as_str()) != Some(from.as_str()) {
                        return None;
                    }
                    m
                }
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
        if !self.alive().await {
            let _ = self.events_tx.send(Ev::Owner(None));
        }
        Ok(())
    }

    /// Whether the plugin still owns its name: a call that failed because the plugin died is
    /// the name vanishing, as NM sees it, not a refused call.
    pub async fn alive(&self) -> bool {
        let Ok(dbus) = zbus::fdo::DBusProxy::new(&self.conn).await else {
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

    /// Stops listening and, as NM does once on FAILED/DISCONNECTED, sends `Disconnect`
    /// without waiting for it; `tun`: the tun device the plugin made, removed if it is still
    /// there once the plugin has gone.
    pub fn close(&mut self, call: Duration, tun: Option<((String, u32), Netlink)>) {
        for f in self.forwarders.drain(..).chain(self.owner_watch.take()) {
            f.abort();
        }
        if let Some(proxy) = self.proxy.take() {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(call, proxy.disconnect()).await;
            });
        }
        if let (Some(pid), Some(exited)) = (self.pid, self.exited.take()) {
            plugin::reap(pid, exited, call, tun);
        }
    }
}
