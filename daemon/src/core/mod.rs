//! The daemon's core actor: owns the profiles and the list of active connections, and answers
//! the commands the D-Bus views send (`state::Command`). Each active connection is a task of
//! its own (`vpn`); the core publishes through the bus's exporter.
//!
//! Its rooms: `profiles` (the Settings side), `active` (activation, deactivation and the order
//! VPNs over VPNs go down in), `publish` (the Manager's and the DnsManager's state), `devices`
//! (the kernel's links as Devices and external connections), `reload` (profiles from disk).

use std::collections::BTreeMap;
use std::sync::Arc;

use tinynm_config::nm::Reason;
use tokio::sync::{mpsc, oneshot, watch};
use zbus::OwnedObjectPath;

mod active;
mod devices;
mod import;
mod killswitch;
mod profiles;
mod publish;
mod reconnect;
mod reload;
mod wired;

use crate::bus::active::{ActiveView, VpnView};
use crate::bus::objects::Iface;
use crate::state::{
    AcId, AcSnapshot, Command, DeviceId, DnsSnapshot, ManagerSnapshot, ProfileId, ProfileSnapshot,
};
use crate::vpn::{AcCommand, Handles};

struct ProfileEntry {
    snap: watch::Sender<ProfileSnapshot>,
}

struct ActiveEntry {
    profile: ProfileId,
    /// Who activated it.
    uid: u32,
    cmd: mpsc::Sender<AcCommand>,
    snap: watch::Receiver<AcSnapshot>,
}

/// What the core publishes to the views.
pub struct Published {
    /// The Manager's snapshot.
    pub manager: watch::Sender<ManagerSnapshot>,
    /// Settings' list of profiles.
    pub settings: watch::Sender<Vec<OwnedObjectPath>>,
    /// The DnsManager's snapshot.
    pub dns: watch::Sender<DnsSnapshot>,
    /// `org.tinynm.Settings`' snapshot: VPNs being kept up.
    pub keepup: watch::Sender<crate::state::KeepUpSnapshot>,
}

/// The core actor's state.
pub struct Core {
    /// What the core and the connection tasks work with (each task gets a copy).
    h: Handles,
    /// Who may do what (the views ask it; the core hands it to the profiles' views).
    auth: Arc<crate::auth::Authority>,
    tx: mpsc::Sender<Command>,
    profiles: BTreeMap<ProfileId, ProfileEntry>,
    next_profile: ProfileId,
    actives: BTreeMap<AcId, ActiveEntry>,
    next_ac: AcId,
    out: Published,
    shutdown: Option<oneshot::Sender<()>>,
    devices: BTreeMap<u32, devices::DeviceEntry>,
    next_device: DeviceId,
    externals: BTreeMap<AcId, devices::ExternalAc>,
    dns: crate::dns::Dns,
    /// Connections to take down once the VPNs over them have gone, with the reason.
    pending_down: BTreeMap<AcId, Reason>,
    /// Wired profiles' failed autoconnects in a row (`i32::MAX`: blocked by the user).
    retries: BTreeMap<ProfileId, i32>,
    /// Links whose carrier is gone under an activation, until NM's wait runs out.
    carrier_wait: BTreeMap<u32, tokio::task::JoinHandle<()>>,
    /// NM's `Startup`: the connections autoconnected at start have not all settled yet.
    starting: bool,
    /// Until when start-up waits for the carrier of links a profile fits (`None`: the
    /// start-up autoconnects have not begun).
    startup_deadline: Option<tokio::time::Instant>,
    /// VPNs to bring back after they failed, with their backoff (`reconnect.rs`).
    reconnects: reconnect::Reconnects,
    /// Secondary VPNs and the base connection that started them.
    secondary_of: BTreeMap<AcId, AcId>,
    /// The last DHCP lease of each wired profile on each link.
    leases: crate::wired::Leases,
    /// The kill switch (`killswitch.rs`).
    killswitch: killswitch::KillSwitch,
    /// The last lines of the plugin of each profile's last VPN, by UUID (at most
    /// [`PLUGIN_LOGS`] profiles).
    plugin_logs: BTreeMap<String, Vec<String>>,
}

/// How many profiles' plugin lines are kept.
const PLUGIN_LOGS: usize = 64;

impl Core {
    /// A core with no profiles yet.
    pub fn new(
        h: Handles,
        auth: Arc<crate::auth::Authority>,
        tx: mpsc::Sender<Command>,
        out: Published,
        dns: crate::dns::Dns,
    ) -> Self {
        let leases = crate::wired::Leases::in_dir(&h.cfg.lease_dir);
        Core {
            h,
            auth,
            tx,
            profiles: BTreeMap::new(),
            next_profile: ProfileId(1),
            actives: BTreeMap::new(),
            next_ac: AcId(1),
            out,
            shutdown: None,
            devices: BTreeMap::new(),
            next_device: DeviceId(1),
            externals: BTreeMap::new(),
            dns,
            pending_down: BTreeMap::new(),
            retries: BTreeMap::new(),
            carrier_wait: BTreeMap::new(),
            starting: true,
            startup_deadline: None,
            reconnects: reconnect::Reconnects::default(),
            secondary_of: BTreeMap::new(),
            leases,
            killswitch: killswitch::KillSwitch::default(),
            plugin_logs: BTreeMap::new(),
        }
    }

    /// Starts tracking active connection `n` of profile `pn`, activated by `uid`; returns the
    /// end its task takes commands from.
    fn track(
        &mut self,
        n: AcId,
        pn: ProfileId,
        uid: u32,
        snap: watch::Receiver<AcSnapshot>,
    ) -> mpsc::Receiver<AcCommand> {
        let (cmd, rx) = mpsc::channel(8);
        self.actives.insert(
            n,
            ActiveEntry {
                profile: pn,
                uid,
                cmd,
                snap,
            },
        );
        rx
    }

    /// Serves commands until shut down.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        self.killswitch_start().await;
        self.settle_startup().await;
        while let Some(cmd) = rx.recv().await {
            let stop = self.handle(cmd).await;
            if stop {
                break;
            }
            self.settle_startup().await;
        }
    }

    /// Startup ends (NM's `Startup` false, what `nm-online -s` waits for) once no connection
    /// started at start-up is still activating.
    async fn settle_startup(&mut self) {
        if !self.starting {
            return;
        }
        let Some(deadline) = self.startup_deadline else {
            return;
        };
        let busy = self.actives.values().any(|a| {
            let s = a.snap.borrow();
            s.state == tinynm_config::nm::AcState::Activating as u32
        });
        if busy || (tokio::time::Instant::now() < deadline && self.waiting_for_carrier()) {
            return;
        }
        self.starting = false;
        tracing::info!("startup complete");
        if let Err(e) = self.publish_manager().await {
            tracing::warn!("cannot publish the end of startup: {e}");
        }
    }

    /// An active connection reached or left ACTIVATED.
    async fn changed(&mut self) {
        self.reconnected();
        if let Err(e) = self.publish_manager().await {
            tracing::warn!("cannot publish the manager's state: {e}");
        }
        self.update_dns().await;
        self.killswitch_sync().await;
        self.autoconnect_vpns().await;
    }

    async fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Activate {
                uid,
                connection,
                device,
                specific_object,
                reply,
            } => {
                let pn = ProfileId::of_path(connection.as_str());
                let r = self
                    .activate(uid, connection, device, specific_object)
                    .await;
                if let (Ok(_), Some(pn)) = (&r, pn) {
                    self.user_brought_up(pn);
                    self.publish_keepup().await;
                }
                let _ = reply.send(r);
            }
            Command::Deactivate { uid, active, reply } => {
                let _ = reply.send(self.deactivate(uid, &active).await);
            }
            Command::Add {
                uid,
                settings,
                save,
                files,
                reply,
            } => {
                let _ = reply.send(self.add_with_files(uid, settings, save, files).await);
                self.wired_links().await;
            }
            Command::Update {
                uid,
                n,
                settings,
                storage,
                reply,
            } => {
                let _ = reply.send(self.update(uid, n, settings, storage).await);
                self.killswitch_sync().await;
                self.wired_links().await;
            }
            Command::Delete { uid, n, reply } => {
                let _ = reply.send(self.delete(uid, n).await);
                self.killswitch_sync().await;
            }
            Command::PluginLog { uuid, lines } => {
                if self.plugin_logs.len() >= PLUGIN_LOGS && !self.plugin_logs.contains_key(&uuid) {
                    self.plugin_logs.pop_first();
                }
                self.plugin_logs.insert(uuid, lines);
            }
            Command::LastPluginLog { uuid, reply } => {
                let _ = reply.send(self.plugin_logs.get(&uuid).cloned().unwrap_or_default());
            }
            Command::Ended { n } => {
                self.wired_ended(n).await;
                self.maybe_reconnect(n);
                self.publish_keepup().await;
                if self.actives.remove(&n).is_some() {
                    let path = n.path();
                    // The Manager stops listing the object before the object goes (as Settings
                    // does for profiles): no client, and no GetManagedObjects answer, ever sees
                    // ActiveConnections name an object that is not there.
                    if let Err(e) = self.publish_manager().await {
                        tracing::warn!("cannot announce the end of {path}: {e}");
                    }
                    let bus = &self.h.bus;
                    bus.withdraw(path.as_str(), &[Iface::Vpn, Iface::Active])
                        .await;
                    bus.unserve::<VpnView>(path.as_str()).await;
                    bus.unserve::<ActiveView>(path.as_str()).await;
                }
                self.update_dns().await;
                self.after_end(n).await;
                crate::memory::release();
                if self.actives.is_empty()
                    && let Some(s) = self.shutdown.take()
                {
                    let _ = s.send(());
                    return true;
                }
                if self.shutdown.is_none() {
                    self.autoconnect().await;
                }
            }
            Command::ReloadConfig(cfg) => {
                self.reload_config(*cfg);
                self.killswitch_sync().await;
                if let Err(e) = self.reload(0, None).await {
                    tracing::error!("cannot reload the profiles: {e:?}");
                }
                self.wired_links().await;
            }
            Command::Reload { uid, files, reply } => {
                let _ = reply.send(self.reload(uid, files).await);
                self.wired_links().await;
            }
            Command::ClearSecrets { uid, n, reply } => {
                let _ = reply.send(self.clear_secrets(uid, n).await);
            }
            Command::Links(links) => {
                if let Err(e) = self.sync_links(links).await {
                    tracing::warn!("cannot publish the devices: {e}");
                }
                if self.shutdown.is_none() {
                    self.wired_links().await;
                }
            }
            Command::DeviceState {
                index,
                state,
                reason,
            } => self.device_state(index, state, reason).await,
            Command::Secondaries {
                base,
                uid,
                uuids,
                reply,
            } => {
                let r = self.start_secondaries(base, uid, uuids).await;
                let _ = reply.send(r);
            }
            Command::CarrierWait { index, n } => self.carrier_gone(index, n).await,
            Command::DeviceDhcp4 { index, path } => self.device_dhcp4(index, path).await,
            Command::Assumed { index, ac } => {
                if let Err(e) = self.assumed(index, ac).await {
                    tracing::warn!("cannot announce an external connection: {e}");
                }
            }
            Command::DisconnectDevice { index, reply } => {
                let _ = reply.send(self.disconnect_device(index).await);
            }
            Command::Reconnect { profile } => self.reconnect(profile).await,
            Command::StartUp { reply } => {
                let deadline = tokio::time::Instant::now() + wired::CARRIER_WAIT;
                self.startup_deadline = Some(deadline);
                // Looked at again when the carrier wait is over, whatever happened.
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(deadline).await;
                    let _ = tx.send(Command::Changed).await;
                });
                self.wired_links().await;
                let _ = reply.send(());
            }
            Command::Applied { reply } => {
                self.killswitch_sync().await;
                let _ = reply.send(());
            }
            Command::Changed => self.changed().await,
            Command::Shutdown { reply } => {
                if self.actives.is_empty() {
                    let _ = reply.send(());
                    return true;
                }
                for a in self.actives.values() {
                    let _ = a.cmd.send(AcCommand::Shutdown).await;
                }
                self.shutdown = Some(reply);
            }
        }
        false
    }
}
