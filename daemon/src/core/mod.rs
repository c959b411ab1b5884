//! The daemon's core actor: owns the profiles and the list of active connections, and answers
//! the commands the D-Bus views send. Each active connection is a task of its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tinynm_config::dbus::SettingsDict;
use tinynm_config::nm::{AcState, Reason, nm_state};
use tinynm_config::{DaemonConfig, Profile};
use tokio::sync::{mpsc, oneshot, watch};
use zbus::{OwnedObjectPath, OwnedVariant, Variant};

mod devices;
mod reload;

use crate::bus::active::{AcSnapshot, ActiveView, VpnView};
use crate::bus::ipconfig::{Ip4ConfigView, Ip6ConfigView, IpData};
use crate::bus::objects::{Iface, Objects, announce_added, announce_removed, interfaces_of};
use crate::bus::settings::{ConnectionView, ProfileSnapshot};
use crate::bus::{
    AC_PREFIX, IP4_PREFIX, IP6_PREFIX, NM_PATH, NmError, SETTINGS_PATH, SettingsError,
    properties_changed,
};
use crate::netlink::Netlink;
use crate::vpn::connection::{AcCommand, AcParams};
use crate::vpn::registry;

/// What the views ask of the core.
pub enum Command {
    /// `ActivateConnection`
    Activate {
        /// Caller's uid.
        uid: u32,
        /// Settings.Connection path.
        connection: OwnedObjectPath,
        /// Device or `/`.
        device: OwnedObjectPath,
        /// Base active connection or `/`.
        specific_object: OwnedObjectPath,
        /// Reply.
        reply: oneshot::Sender<Result<OwnedObjectPath, NmError>>,
    },
    /// `DeactivateConnection`
    Deactivate {
        /// Caller's uid.
        uid: u32,
        /// Active connection path.
        active: OwnedObjectPath,
        /// Reply.
        reply: oneshot::Sender<Result<(), NmError>>,
    },
    /// `AddConnection` / `AddConnectionUnsaved`
    Add {
        /// Caller's uid.
        uid: u32,
        /// The settings.
        settings: SettingsDict,
        /// Write it to disk.
        save: bool,
        /// Reply.
        reply: oneshot::Sender<Result<OwnedObjectPath, SettingsError>>,
    },
    /// `Settings.Connection.Update`
    Update {
        /// Caller's uid.
        uid: u32,
        /// Profile number.
        n: u64,
        /// The new settings; `None` changes only where the profile is kept (Update2).
        settings: Option<SettingsDict>,
        /// Where to keep it.
        storage: Storage,
        /// Reply.
        reply: oneshot::Sender<Result<(), SettingsError>>,
    },
    /// `Settings.Connection.Delete`
    Delete {
        /// Caller's uid.
        uid: u32,
        /// Profile number.
        n: u64,
        /// Reply.
        reply: oneshot::Sender<Result<(), SettingsError>>,
    },
    /// An active connection's task has ended (sent by the task itself).
    Ended {
        /// Active connection number.
        n: u64,
    },
    /// An active connection reached or left ACTIVATED.
    Changed,
    /// The kernel's links now.
    Links(Vec<crate::devices::Link>),
    /// `LoadConnections` (these files) / `ReloadConnections` (`None`: every file).
    Reload {
        /// Caller's uid.
        uid: u32,
        /// The files to (re)load.
        files: Option<Vec<String>>,
        /// The files that could not be loaded.
        reply: oneshot::Sender<Result<Vec<String>, SettingsError>>,
    },
    /// `Settings.Connection.ClearSecrets`
    ClearSecrets {
        /// Caller's uid.
        uid: u32,
        /// Profile number.
        n: u64,
        /// Reply.
        reply: oneshot::Sender<Result<(), SettingsError>>,
    },
    /// Deactivate everything and stop.
    Shutdown {
        /// Answered when every VPN is down.
        reply: oneshot::Sender<()>,
    },
}

/// Where an updated profile is kept (`Update`, `UpdateUnsaved`, `Update2`'s flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Where it is now.
    Keep,
    /// In its file (a new one if it had none).
    ToDisk,
    /// In memory only; its file, if any, is left as it was.
    InMemory,
}

/// What the Manager view shows.
#[derive(Debug, Clone)]
pub struct ManagerSnapshot {
    /// Active connection paths, newest first (as NM orders them).
    pub active: Vec<OwnedObjectPath>,
    /// `NMState`
    pub state: u32,
    /// The active connection with the default route (the newest VPN that took it, else the
    /// connection of the device the kernel routes the default through), or `/`.
    pub primary: OwnedObjectPath,
    /// The primary connection's type, or `""`.
    pub primary_type: String,
    /// Device paths, by ifindex.
    pub devices: Vec<OwnedObjectPath>,
}

impl ManagerSnapshot {
    /// The state of a daemon with nothing active.
    pub fn new() -> Self {
        ManagerSnapshot {
            active: Vec::new(),
            state: nm_state::DISCONNECTED,
            primary: OwnedObjectPath::try_from("/").expect("valid path"),
            primary_type: String::new(),
            devices: Vec::new(),
        }
    }
}

impl Default for ManagerSnapshot {
    fn default() -> Self {
        Self::new()
    }
}

struct ProfileEntry {
    snap: watch::Sender<ProfileSnapshot>,
}

struct ActiveEntry {
    profile: u64,
    /// Who activated it.
    uid: u32,
    cmd: mpsc::Sender<AcCommand>,
    snap: watch::Receiver<AcSnapshot>,
}

/// Shared context of the daemon.
#[derive(Clone)]
pub struct Ctx {
    /// The bus connection.
    pub conn: zbus::Connection,
    /// Netlink sockets.
    pub netlink: Netlink,
    /// daemon.toml
    pub cfg: Arc<DaemonConfig>,
    /// Every exported object (what GetManagedObjects lists).
    pub objects: Arc<watch::Sender<Objects>>,
    /// The next IP4Config and IP6Config numbers (never reused).
    pub ip_numbers: Arc<[std::sync::atomic::AtomicU64; 2]>,
    /// The registered secret agents.
    pub agents: crate::bus::agent::Agents,
    /// Who may do what.
    pub auth: Arc<crate::auth::Authority>,
}

/// An exported IP4Config or IP6Config object; dropped by [`Ctx::unexport_ip`].
pub struct IpObject {
    /// Its path.
    pub path: OwnedObjectPath,
    /// Its data.
    pub data: watch::Sender<Arc<IpData>>,
    v6: bool,
}

impl Ctx {
    /// Exports and announces an IP4Config (or IP6Config) object with `data`.
    pub async fn export_ip(&self, v6: bool, data: IpData) -> zbus::Result<IpObject> {
        let n = self.ip_numbers[usize::from(v6)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (prefix, iface) = if v6 {
            (IP6_PREFIX, Iface::Ip6)
        } else {
            (IP4_PREFIX, Iface::Ip4)
        };
        let path = OwnedObjectPath::try_from(format!("{prefix}/{n}"))?;
        let (tx, rx) = watch::channel(Arc::new(data));
        let server = self.conn.object_server();
        if v6 {
            server.at(path.as_str(), Ip6ConfigView { data: rx }).await?;
        } else {
            server.at(path.as_str(), Ip4ConfigView { data: rx }).await?;
        }
        self.objects
            .send_modify(|o| drop(o.insert(path.to_string(), vec![iface])));
        announce_added(&self.conn, path.as_str(), &[iface]).await?;
        Ok(IpObject { path, data: tx, v6 })
    }

    /// Replaces an IP config's data, announcing what changed.
    pub async fn update_ip(&self, o: &IpObject, data: IpData) -> zbus::Result<()> {
        if **o.data.borrow() == data {
            return Ok(());
        }
        o.data.send_replace(Arc::new(data));
        let iface = if o.v6 { Iface::Ip6 } else { Iface::Ip4 };
        let server = self.conn.object_server();
        let all = interfaces_of(server, &self.conn, o.path.as_str(), &[iface]).await?;
        for (name, props) in all {
            let mut props: Vec<(String, OwnedVariant)> = props
                .into_iter()
                .map(|(k, v)| Ok((k, v.to_variant()?)))
                .collect::<zbus::Result<_>>()?;
            props.sort_by(|a, b| a.0.cmp(&b.0));
            let props: Vec<(&str, Variant<'_>)> = props
                .iter()
                .map(|(k, v)| (k.as_str(), (**v).clone()))
                .collect();
            properties_changed(&self.conn, o.path.as_str(), &name, props).await?;
        }
        Ok(())
    }

    /// Unexports an IP config object.
    pub async fn unexport_ip(&self, o: IpObject) {
        let iface = if o.v6 { Iface::Ip6 } else { Iface::Ip4 };
        self.objects
            .send_modify(|m| drop(m.remove(o.path.as_str())));
        if let Err(e) = announce_removed(&self.conn, o.path.as_str(), &[iface]).await {
            tracing::warn!("cannot announce the removal of {}: {e}", o.path);
        }
        let server = self.conn.object_server();
        if o.v6 {
            let _ = server.remove::<Ip6ConfigView, _>(o.path.as_str()).await;
        } else {
            let _ = server.remove::<Ip4ConfigView, _>(o.path.as_str()).await;
        }
    }
}

/// The core actor's state.
pub struct Core {
    ctx: Ctx,
    tx: mpsc::Sender<Command>,
    profiles: BTreeMap<u64, ProfileEntry>,
    next_profile: u64,
    actives: BTreeMap<u64, ActiveEntry>,
    next_ac: u64,
    manager: watch::Sender<ManagerSnapshot>,
    settings: watch::Sender<Vec<OwnedObjectPath>>,
    shutdown: Option<oneshot::Sender<()>>,
    devices: BTreeMap<u32, devices::DeviceEntry>,
    next_device: u64,
    externals: BTreeMap<u64, devices::ExternalAc>,
    dns: crate::dns::Dns,
    dns_snap: watch::Sender<crate::bus::dns::DnsSnapshot>,
    /// Connections to take down once the VPNs over them have gone: number → reason.
    pending_down: BTreeMap<u64, Reason>,
}

fn profile_path(n: u64) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{SETTINGS_PATH}/{n}")).expect("valid path")
}

fn ac_path(n: u64) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{AC_PREFIX}/{n}")).expect("valid path")
}

fn number_in(path: &str, prefix: &str) -> Option<u64> {
    path.strip_prefix(prefix)?.strip_prefix('/')?.parse().ok()
}

/// `NMConnectivityState` for an `NMState`: FULL when connected (tinynmd runs no checks).
pub fn connectivity(state: u32) -> u32 {
    if state == nm_state::CONNECTED_GLOBAL {
        4
    } else {
        1
    }
}

/// Whether `uid` may see and use a profile: root always; anyone when the profile's
/// `connection.permissions` is empty; else the users it lists (`user:NAME`).
pub fn visible(p: &Profile, uid: u32) -> bool {
    uid == 0
        || p.connection.permissions.is_empty()
        || p.connection.permissions.iter().any(|e| names_user(e, uid))
}

/// Whether a `connection.permissions` entry (`user:NAME[:…]`) names the user of `uid`.
pub fn names_user(entry: &str, uid: u32) -> bool {
    let Some(name) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
    else {
        return false;
    };
    entry
        .strip_prefix("user:")
        .is_some_and(|u| u.split(':').next() == Some(name.as_str()))
}

impl Core {
    /// A core with no profiles yet.
    pub fn new(
        ctx: Ctx,
        tx: mpsc::Sender<Command>,
        manager: watch::Sender<ManagerSnapshot>,
        settings: watch::Sender<Vec<OwnedObjectPath>>,
        dns: crate::dns::Dns,
        dns_snap: watch::Sender<crate::bus::dns::DnsSnapshot>,
    ) -> Self {
        Core {
            ctx,
            tx,
            profiles: BTreeMap::new(),
            next_profile: 1,
            actives: BTreeMap::new(),
            next_ac: 1,
            manager,
            settings,
            shutdown: None,
            devices: BTreeMap::new(),
            next_device: 1,
            externals: BTreeMap::new(),
            dns,
            dns_snap,
            pending_down: BTreeMap::new(),
        }
    }

    /// Loads the profile directory; bad files are logged by file and key and skipped.
    pub async fn load_profiles(&mut self) -> zbus::Result<()> {
        let (found, errors) = reload::read_disk(&self.ctx.cfg);
        for e in &errors {
            tracing::error!("profile not loaded: {e}");
        }
        for d in found {
            self.insert_profile(d.profile, d.file, d.keyfile, None, false)
                .await?;
        }
        Ok(())
    }

    async fn insert_profile(
        &mut self,
        p: Profile,
        file: Option<PathBuf>,
        keyfile: Option<PathBuf>,
        generated: Option<crate::bus::settings::Generated>,
        announce: bool,
    ) -> zbus::Result<OwnedObjectPath> {
        let n = self.next_profile;
        self.next_profile += 1;
        let path = profile_path(n);
        let (snap, rx) = watch::channel(ProfileSnapshot {
            unsaved: file.is_none() && keyfile.is_none(),
            profile: Arc::new(p),
            file,
            keyfile,
            generated,
        });
        self.ctx
            .conn
            .object_server()
            .at(
                path.as_str(),
                ConnectionView {
                    n,
                    snap: rx,
                    cmd: self.tx.clone(),
                    auth: self.ctx.auth.clone(),
                },
            )
            .await?;
        self.profiles.insert(n, ProfileEntry { snap });
        self.ctx
            .objects
            .send_modify(|o| drop(o.insert(path.to_string(), vec![Iface::Connection])));
        if announce {
            announce_added(&self.ctx.conn, path.as_str(), &[Iface::Connection]).await?;
        }
        self.publish_settings(announce.then_some(&path)).await?;
        Ok(path)
    }

    async fn publish_settings(&self, added: Option<&OwnedObjectPath>) -> zbus::Result<()> {
        let list: Vec<OwnedObjectPath> = self.profiles.keys().map(|n| profile_path(*n)).collect();
        self.settings.send_replace(list.clone());
        if let Some(p) = added {
            crate::bus::settings::SettingsView::emit_new_connection(
                &zbus::object_server::SignalEmitter::new(&self.ctx.conn, SETTINGS_PATH)?,
                p.clone(),
            )
            .await?;
        }
        properties_changed(
            &self.ctx.conn,
            SETTINGS_PATH,
            "org.freedesktop.NetworkManager.Settings",
            vec![("Connections", Variant::from(list))],
        )
        .await
    }

    /// Publishes the Manager's list and state (and their PropertiesChanged when they changed).
    pub async fn publish_manager(&self) -> zbus::Result<()> {
        let change = self.update_manager().await;
        self.announce_manager(change).await
    }

    /// Recomputes the Manager's snapshot; returns the old one, for [`Core::announce_manager`].
    async fn update_manager(&self) -> ManagerSnapshot {
        let mut numbers: Vec<u64> = self
            .actives
            .keys()
            .chain(self.externals.keys())
            .copied()
            .collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        let active: Vec<OwnedObjectPath> = numbers.into_iter().map(ac_path).collect();
        let any_up = self
            .actives
            .values()
            .any(|a| a.snap.borrow().state == AcState::Activated as u32);
        // Connected when a VPN is up or the kernel has a way out (a FIB lookup of a TEST-NET-2
        // address: nothing is sent anywhere).
        let way_out = self.default_route().await.map(|l| l.oif);
        tracing::debug!("manager: any VPN up {any_up}, a way out via {way_out:?}");
        let state = if any_up || way_out.is_some() {
            nm_state::CONNECTED_GLOBAL
        } else {
            nm_state::DISCONNECTED
        };
        let vpn = self.actives.iter().rev().find(|(_, a)| {
            let s = a.snap.borrow();
            s.state == AcState::Activated as u32 && (s.default4 || s.default6)
        });
        let external = || {
            let oif = way_out?;
            self.externals
                .iter()
                .find(|(_, e)| e.device == oif)
                .map(|(n, e)| (*n, e.snap.borrow().kind.clone()))
        };
        let (primary, primary_type) = match vpn {
            Some((n, _)) => (ac_path(*n), "vpn".to_string()),
            None => match external() {
                Some((n, kind)) => (ac_path(n), kind),
                None => (crate::bus::active::root(), String::new()),
            },
        };
        let devices = self.devices.values().map(|d| d.path.clone()).collect();
        self.manager.send_replace(ManagerSnapshot {
            active,
            state,
            primary,
            primary_type,
            devices,
        })
    }

    /// Puts the active VPNs' DNS in force and shows it on the DnsManager.
    async fn update_dns(&mut self) {
        let entries: Vec<crate::dns::DnsEntry> = self
            .actives
            .values()
            .filter(|a| a.snap.borrow().state == AcState::Activated as u32)
            .flat_map(|a| a.snap.borrow().dns.clone())
            .collect();
        if self.dns_snap.borrow().entries == entries {
            return;
        }
        // auto decides when there is something to put in force.
        if !entries.is_empty() {
            self.dns.detect(&self.ctx.conn).await;
        }
        let (mode, rc) = (
            self.dns.mode().to_string(),
            self.dns.rc_manager().to_string(),
        );
        self.dns_snap.send_modify(|s| {
            s.mode = mode;
            s.rc_manager = rc;
        });
        if self.dns.resolved() {
            let before = self.dns_snap.borrow().entries.clone();
            if let Err(e) = crate::dns::apply_resolved(&self.ctx.conn, &entries, &before).await {
                tracing::error!("DNS: {e}");
            }
        } else if let Err(e) = self.dns.apply(&entries) {
            tracing::error!("DNS: {e}");
        }
        self.dns_snap.send_modify(|s| s.entries = entries.clone());
        let config = crate::dns::configuration(&entries);
        if let Err(e) = properties_changed(
            &self.ctx.conn,
            crate::bus::DNS_PATH,
            "org.freedesktop.NetworkManager.DnsManager",
            vec![("Configuration", Variant::from(config))],
        )
        .await
        {
            tracing::warn!("cannot announce the DNS configuration: {e}");
        }
    }

    /// The interface the kernel sends the default route through (a FIB lookup of a TEST-NET-2
    /// address: nothing is sent anywhere).
    async fn default_route(&self) -> Option<crate::netlink::Lookup> {
        self.ctx
            .netlink
            .route_get(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                198, 51, 100, 255,
            )))
            .await
            .ok()
            .flatten()
    }

    /// Emits what changed since `old`.
    async fn announce_manager(&self, old: ManagerSnapshot) -> zbus::Result<()> {
        let ManagerSnapshot {
            active,
            state,
            primary,
            primary_type,
            devices,
        } = self.manager.borrow().clone();
        let mut props = Vec::new();
        if old.primary != primary {
            props.push(("PrimaryConnectionType", Variant::from(primary_type)));
            props.push(("PrimaryConnection", Variant::from(primary)));
        }
        if old.devices != devices {
            props.push(("Devices", Variant::from(devices.clone())));
            props.push(("AllDevices", Variant::from(devices)));
        }
        if old.active != active {
            props.push(("ActiveConnections", Variant::from(active)));
        }
        if old.state != state {
            props.push(("State", Variant::from(state)));
            props.push(("Connectivity", Variant::from(connectivity(state))));
        }
        if !props.is_empty() {
            properties_changed(
                &self.ctx.conn,
                NM_PATH,
                "org.freedesktop.NetworkManager",
                props,
            )
            .await?;
        }
        if old.state != state {
            crate::bus::manager::Manager::emit_state_changed(
                &zbus::object_server::SignalEmitter::new(&self.ctx.conn, NM_PATH)?,
                state,
            )
            .await?;
        }
        Ok(())
    }

    /// Serves commands until shut down.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(cmd) = rx.recv().await {
            let stop = self.handle(cmd).await;
            if stop {
                break;
            }
        }
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
                let r = self
                    .activate(uid, connection, device, specific_object)
                    .await;
                let _ = reply.send(r);
            }
            Command::Deactivate { uid, active, reply } => {
                let _ = reply.send(self.deactivate(uid, &active).await);
            }
            Command::Add {
                uid,
                settings,
                save,
                reply,
            } => {
                let _ = reply.send(self.add(uid, settings, save).await);
            }
            Command::Update {
                uid,
                n,
                settings,
                storage,
                reply,
            } => {
                let _ = reply.send(self.update(uid, n, settings, storage).await);
            }
            Command::Delete { uid, n, reply } => {
                let _ = reply.send(self.delete(uid, n).await);
            }
            Command::Ended { n } => {
                if self.actives.remove(&n).is_some() {
                    let server = self.ctx.conn.object_server();
                    let path = ac_path(n);
                    // The Manager stops listing the object before the object goes (as Settings
                    // does for profiles): no client, and no GetManagedObjects answer, ever sees
                    // ActiveConnections name an object that is not there.
                    if let Err(e) = self.publish_manager().await {
                        tracing::warn!("cannot announce the end of {path}: {e}");
                    }
                    self.ctx
                        .objects
                        .send_modify(|o| drop(o.remove(path.as_str())));
                    let ifaces = [Iface::Vpn, Iface::Active];
                    if let Err(e) = announce_removed(&self.ctx.conn, path.as_str(), &ifaces).await {
                        tracing::warn!("cannot announce the removal of {path}: {e}");
                    }
                    let _ = server.remove::<VpnView, _>(path.as_str()).await;
                    let _ = server.remove::<ActiveView, _>(path.as_str()).await;
                }
                self.update_dns().await;
                self.after_end(n).await;
                release_memory();
                if self.actives.is_empty()
                    && let Some(s) = self.shutdown.take()
                {
                    let _ = s.send(());
                    return true;
                }
            }
            Command::Reload { uid, files, reply } => {
                let _ = reply.send(self.reload(uid, files).await);
            }
            Command::ClearSecrets { uid, n, reply } => {
                let _ = reply.send(self.clear_secrets(uid, n).await);
            }
            Command::Links(links) => {
                if let Err(e) = self.sync_links(links).await {
                    tracing::warn!("cannot publish the devices: {e}");
                }
            }
            Command::Changed => {
                if let Err(e) = self.publish_manager().await {
                    tracing::warn!("cannot publish the manager's state: {e}");
                }
                self.update_dns().await;
            }
            Command::Shutdown { reply } => {
                if self.actives.is_empty() {
                    let _ = reply.send(());
                    return true;
                }
                for a in self.actives.values() {
                    let _ = a
                        .cmd
                        .send(AcCommand::Deactivate(Reason::UserDisconnected))
                        .await;
                }
                self.shutdown = Some(reply);
            }
        }
        false
    }

    /// The interface a generated profile stands for, if `n` is one.
    fn generated_iface(&self, n: u64) -> Option<String> {
        let e = self.profiles.get(&n)?;
        let s = e.snap.borrow();
        s.generated.as_ref().map(|g| g.iface.clone())
    }

    /// The profile `n` as it is, when `uid` may change it and it is not generated.
    fn editable(&self, uid: u32, n: u64) -> Result<ProfileSnapshot, SettingsError> {
        self.not_generated(n)?;
        match self.profiles.get(&n) {
            Some(e) => {
                let s = e.snap.borrow().clone();
                if !visible(&s.profile, uid) {
                    return Err(SettingsError::PermissionDenied(
                        "the connection is not visible to this user (connection.permissions)"
                            .into(),
                    ));
                }
                Ok(s)
            }
            None => Err(SettingsError::Failed("the connection is gone".into())),
        }
    }

    /// [`Core::editable`], and the agents told to forget the profile's secrets (NM's
    /// DeleteSecrets, for Delete and ClearSecrets).
    fn editable_forgetting_secrets(
        &self,
        uid: u32,
        n: u64,
    ) -> Result<ProfileSnapshot, SettingsError> {
        let old = self.editable(uid, n)?;
        crate::vpn::secrets::delete_secrets(
            &self.ctx.conn,
            &self.ctx.agents,
            &old.profile,
            &profile_path(n),
        );
        Ok(old)
    }

    fn not_generated(&self, n: u64) -> Result<(), SettingsError> {
        match self.generated_iface(n) {
            Some(iface) => Err(SettingsError::Failed(format!(
                "the profile is generated for the interface '{iface}', which tinynmd does not manage: it follows the kernel"
            ))),
            None => Ok(()),
        }
    }

    fn profile_by_path(&self, path: &str) -> Option<(u64, Arc<Profile>)> {
        let n = number_in(path, SETTINGS_PATH)?;
        self.profiles
            .get(&n)
            .map(|e| (n, e.snap.borrow().profile.clone()))
    }

    async fn activate(
        &mut self,
        uid: u32,
        connection: OwnedObjectPath,
        device: OwnedObjectPath,
        specific_object: OwnedObjectPath,
    ) -> Result<OwnedObjectPath, NmError> {
        let Some((pn, profile)) = self.profile_by_path(connection.as_str()) else {
            return Err(NmError::UnknownConnection(
                "Connection could not be found.".into(),
            ));
        };
        if let Some(iface) = self.generated_iface(pn) {
            return Err(NmError::ConnectionNotAvailable(format!(
                "Connection '{}' is generated for the interface '{iface}', which tinynmd does not manage",
                profile.connection.id
            )));
        }
        if !visible(&profile, uid) {
            return Err(NmError::PermissionDenied(format!(
                "Connection '{}' is not visible to this user (connection.permissions)",
                profile.connection.id
            )));
        }
        if let Some(a) = self.actives.values().find(|a| a.profile == pn) {
            let st = a.snap.borrow().state;
            if st == AcState::Activating as u32 || st == AcState::Activated as u32 {
                return Err(NmError::ConnectionAlreadyActive(format!(
                    "Connection '{}' is already active",
                    profile.connection.id
                )));
            }
        }
        let (specific_object, parent) = self.base_for(&device, specific_object)?;
        let plugins = registry::load(&self.ctx.cfg.all_plugin_dirs());
        let Some(plugin) = plugins
            .into_iter()
            .find(|p| p.serves(&profile.vpn.service_type))
        else {
            return Err(NmError::ConnectionNotAvailable(format!(
                "The VPN service '{}' was not installed.",
                profile.vpn.service_type
            )));
        };
        if !plugin.multiple
            && self.actives.values().any(|a| {
                self.profiles
                    .get(&a.profile)
                    .is_some_and(|p| plugin.serves(&p.snap.borrow().profile.vpn.service_type))
            })
        {
            return Err(NmError::ConnectionNotAvailable(format!(
                "The '{}' plugin only supports a single active connection.",
                plugin.name
            )));
        }
        let n = self.next_ac;
        self.next_ac += 1;
        let path = ac_path(n);
        let (snap_tx, snap_rx) = watch::channel(AcSnapshot::vpn(
            connection.clone(),
            specific_object,
            profile.connection.id.clone(),
            profile.connection.uuid.clone(),
            parent,
        ));
        let server = self.ctx.conn.object_server();
        server
            .at(
                path.as_str(),
                ActiveView {
                    snap: snap_rx.clone(),
                },
            )
            .await
            .map_err(NmError::ZBus)?;
        server
            .at(
                path.as_str(),
                VpnView {
                    snap: snap_rx.clone(),
                },
            )
            .await
            .map_err(NmError::ZBus)?;
        // Both interfaces in one InterfacesAdded: libnm types the object from the first one.
        let ifaces = [Iface::Active, Iface::Vpn];
        self.ctx
            .objects
            .send_modify(|o| drop(o.insert(path.to_string(), ifaces.to_vec())));
        announce_added(&self.ctx.conn, path.as_str(), &ifaces)
            .await
            .map_err(NmError::ZBus)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        self.actives.insert(
            n,
            ActiveEntry {
                profile: pn,
                uid,
                cmd: cmd_tx,
                snap: snap_rx,
            },
        );
        // As NM: StateChanged(ACTIVATING), then the Manager's list, then the reply.
        let e = zbus::object_server::SignalEmitter::new(&self.ctx.conn, path.as_str())?;
        ActiveView::emit_state_changed(&e, AcState::Activating as u32, Reason::None as u32).await?;
        properties_changed(
            &self.ctx.conn,
            path.as_str(),
            "org.freedesktop.NetworkManager.Connection.Active",
            vec![("State", Variant::from(AcState::Activating as u32))],
        )
        .await?;
        self.publish_manager().await?;
        let params = AcParams {
            uid,
            settings_path: connection.clone(),
            n,
            path: path.clone(),
            profile: (*profile).clone(),
            plugin,
            ctx: self.ctx.clone(),
            core: self.tx.clone(),
            cmd: cmd_rx,
            snap: snap_tx,
        };
        tokio::spawn(crate::vpn::connection::run(params));
        Ok(path)
    }

    async fn deactivate(&mut self, uid: u32, active: &OwnedObjectPath) -> Result<(), NmError> {
        let entry = number_in(active.as_str(), AC_PREFIX).and_then(|n| self.actives.get(&n));
        let Some(entry) = entry else {
            return Err(NmError::ConnectionNotActive(
                "The connection was not active.".into(),
            ));
        };
        if uid != 0 && entry.uid != uid {
            return Err(NmError::PermissionDenied(format!(
                "{active} was activated by another user (uid {})",
                entry.uid
            )));
        }
        let n = number_in(active.as_str(), AC_PREFIX).expect("an active connection's path");
        self.take_down(n, Reason::UserDisconnected).await;
        Ok(())
    }

    /// The VPNs activated over active connection `n`.
    fn dependents(&self, n: u64) -> Vec<u64> {
        let path = ac_path(n);
        self.actives
            .iter()
            .filter(|(_, a)| a.snap.borrow().specific_object == path)
            .map(|(m, _)| *m)
            .collect()
    }

    /// Takes connection `n` down for `reason`; the VPNs over it go first (DEPENDENCY_FAILED),
    /// and `n` follows once they have ended.
    async fn take_down(&mut self, n: u64, reason: Reason) {
        let mut stack = vec![(n, reason)];
        while let Some((m, r)) = stack.pop() {
            let deps = self.dependents(m);
            if deps.is_empty() {
                if let Some(a) = self.actives.get(&m) {
                    let _ = a.cmd.send(AcCommand::Deactivate(r)).await;
                }
            } else {
                tracing::info!(
                    "{}: the {} VPN(s) over it go down first",
                    ac_path(m),
                    deps.len()
                );
                // External connections follow their link, not this: they are not waited on.
                if self.actives.contains_key(&m) {
                    self.pending_down.insert(m, r);
                }
                stack.extend(deps.into_iter().map(|d| (d, Reason::DependencyFailed)));
            }
        }
    }

    /// After `ended` went: what waited for it follows; what sat on it goes.
    async fn after_end(&mut self, ended: u64) {
        self.pending_down.remove(&ended);
        for d in self.dependents(ended) {
            self.take_down(d, Reason::DependencyFailed).await;
        }
        let ready: Vec<(u64, Reason)> = self
            .pending_down
            .iter()
            .filter(|(m, _)| self.dependents(**m).is_empty())
            .map(|(m, r)| (*m, *r))
            .collect();
        for (m, r) in ready {
            self.pending_down.remove(&m);
            if let Some(a) = self.actives.get(&m) {
                let _ = a.cmd.send(AcCommand::Deactivate(r)).await;
            }
        }
    }

    async fn add(
        &mut self,
        uid: u32,
        mut d: SettingsDict,
        save: bool,
    ) -> Result<OwnedObjectPath, SettingsError> {
        // As NM normalizes a new profile: one without a UUID gets a fresh one, one without a
        // type gets its base setting's (nmcli's `connection import` sends neither).
        let has_vpn = d.contains_key("vpn");
        if let Some(c) = d.get_mut("connection") {
            if !c.contains_key("uuid") {
                let uuid = uuid::Uuid::new_v4().to_string();
                c.insert("uuid".into(), Variant::from(uuid).try_into_owned()?);
            }
            if !c.contains_key("type") && has_vpn {
                c.insert("type".into(), Variant::from("vpn").try_into_owned()?);
            }
        }
        let mut p = tinynm_config::dbus::from_dict(&d)
            .map_err(|e| SettingsError::InvalidConnection(e.to_string()))?;
        // Agent-owned secrets go to the caller's agents, not-saved ones nowhere.
        let agent_owned = crate::vpn::secrets::take_unstorable(&mut p);
        if self
            .profiles
            .values()
            .any(|e| e.snap.borrow().profile.connection.uuid == p.connection.uuid)
        {
            return Err(SettingsError::UuidExists(format!(
                "A connection with UUID '{}' already exists",
                p.connection.uuid
            )));
        }
        let file = if save {
            let f = crate::store::file_for(&self.ctx.cfg.profile_dir, &p);
            crate::store::write(&f, &p)
                .map_err(|e| SettingsError::Failed(format!("cannot write {}: {e}", f.display())))?;
            Some(f)
        } else {
            None
        };
        let keep = p.clone();
        let path = self
            .insert_profile(p, file, None, None, true)
            .await
            .map_err(SettingsError::ZBus)?;
        crate::vpn::secrets::save_secrets(
            &self.ctx.conn,
            &self.ctx.agents,
            uid,
            &keep,
            agent_owned,
            &path,
        );
        Ok(path)
    }

    async fn update(
        &mut self,
        uid: u32,
        n: u64,
        d: Option<SettingsDict>,
        storage: Storage,
    ) -> Result<(), SettingsError> {
        let old = self.editable(uid, n)?;
        let entry = &self.profiles[&n];
        let p = match &d {
            None => (*old.profile).clone(),
            Some(d) => {
                let mut p = tinynm_config::dbus::from_dict(d)
                    .map_err(|e| SettingsError::InvalidConnection(e.to_string()))?;
                if p.connection.uuid != old.profile.connection.uuid {
                    return Err(SettingsError::InvalidConnection(
                        "[connection] uuid: cannot be changed by Update".into(),
                    ));
                }
                // An update without secrets keeps the stored ones, as NM does.
                if !d.get("vpn").is_some_and(|v| v.contains_key("secrets")) {
                    p.vpn.secrets = old.profile.vpn.secrets.clone();
                }
                p
            }
        };
        let mut p = p;
        let agent_owned = crate::vpn::secrets::take_unstorable(&mut p);
        crate::vpn::secrets::save_secrets(
            &self.ctx.conn,
            &self.ctx.agents,
            uid,
            &p,
            agent_owned,
            &profile_path(n),
        );
        let unsaved = match storage {
            Storage::Keep => old.unsaved,
            Storage::ToDisk => false,
            Storage::InMemory => true,
        };
        let mut file = old.file.clone();
        if !unsaved {
            let f = file
                .get_or_insert_with(|| crate::store::file_for(&self.ctx.cfg.profile_dir, &p))
                .clone();
            crate::store::write(&f, &p)
                .map_err(|e| SettingsError::Failed(format!("cannot write {}: {e}", f.display())))?;
        }
        let filename = file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        entry.snap.send_replace(ProfileSnapshot {
            profile: Arc::new(p),
            file,
            keyfile: old.keyfile.clone(),
            unsaved,
            generated: None,
        });
        let path = profile_path(n);
        if unsaved != old.unsaved {
            properties_changed(
                &self.ctx.conn,
                path.as_str(),
                "org.freedesktop.NetworkManager.Settings.Connection",
                vec![
                    ("Unsaved", Variant::from(unsaved)),
                    ("Flags", Variant::from(u32::from(unsaved))),
                    ("Filename", Variant::from(filename)),
                ],
            )
            .await?;
        }
        let e = zbus::object_server::SignalEmitter::new(&self.ctx.conn, path.as_str())?;
        ConnectionView::emit_updated(&e).await?;
        Ok(())
    }

    async fn delete(&mut self, uid: u32, n: u64) -> Result<(), SettingsError> {
        self.editable_forgetting_secrets(uid, n)?;
        let Some(entry) = self.profiles.get(&n) else {
            return Err(SettingsError::Failed("the connection is gone".into()));
        };
        let files: Vec<PathBuf> = {
            let s = entry.snap.borrow();
            s.file.iter().chain(s.keyfile.iter()).cloned().collect()
        };
        for f in &files {
            if let Err(e) = std::fs::remove_file(f)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(SettingsError::Failed(format!(
                    "cannot delete {}: {e}",
                    f.display()
                )));
            }
        }
        self.drop_profile(n).await?;
        Ok(())
    }

    /// Unexports a profile, in NM's order: Connections, Removed, ConnectionRemoved,
    /// InterfacesRemoved (then the caller's reply).
    async fn drop_profile(&mut self, n: u64) -> zbus::Result<()> {
        // Its VPNs go down (CONNECTION_REMOVED) on their own time.
        for a in self.actives.values().filter(|a| a.profile == n) {
            let _ = a
                .cmd
                .send(AcCommand::Deactivate(Reason::ConnectionRemoved))
                .await;
        }
        self.profiles.remove(&n);
        let path = profile_path(n);
        self.publish_settings(None).await?;
        let e = zbus::object_server::SignalEmitter::new(&self.ctx.conn, path.as_str())?;
        ConnectionView::emit_removed(&e).await?;
        crate::bus::settings::SettingsView::emit_connection_removed(
            &zbus::object_server::SignalEmitter::new(&self.ctx.conn, SETTINGS_PATH)?,
            path.clone(),
        )
        .await?;
        announce_removed(&self.ctx.conn, path.as_str(), &[Iface::Connection]).await?;
        self.ctx
            .objects
            .send_modify(|o| drop(o.remove(path.as_str())));
        let _ = self
            .ctx
            .conn
            .object_server()
            .remove::<ConnectionView, _>(path.as_str())
            .await;
        Ok(())
    }
}

/// Gives freed memory back to the kernel: after a large config is gone, glibc would keep it.
pub fn release_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
