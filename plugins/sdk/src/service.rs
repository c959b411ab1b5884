//! The plugin's side: what libnm's `NMVpnServicePlugin` is to C plugins. A plugin implements
//! [`VpnService`]; [`run`] owns the protocol: the bus name, the `VPN.Plugin` object, the
//! service state, the helper methods (`SetConfig`…), watching the caller, and exiting.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tinynm_config::Profile;
use tinynm_config::dbus::SettingsDict;
use tinynm_config::nm::{PluginFailure, ServiceState};
use zbus::object_server::SignalEmitter;
use zbus::{OwnedVariant, Variant};

use crate::wire::{Dict, GenericConfig, IpConfig};

/// The one path every VPN plugin serves.
pub const PLUGIN_PATH: &str = "/org/freedesktop/NetworkManager/VPN/Plugin";
/// The plugin interface.
pub const PLUGIN_IFACE: &str = "org.freedesktop.NetworkManager.VPN.Plugin";
/// An idle plugin (INIT or STOPPED) quits after this long, as libnm's do.
pub const IDLE_QUIT: Duration = Duration::from_secs(180);

/// Errors a plugin returns, with NM's wire names (`NMVpnPluginError`).
#[allow(missing_docs)]
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager.VPN.Error")]
pub enum PluginError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    StartingInProgress(String),
    AlreadyStarted(String),
    StoppingInProgress(String),
    AlreadyStopped(String),
    WrongState(String),
    BadArguments(String),
    LaunchFailed(String),
    InvalidConnection(String),
    InteractiveNotSupported(String),
}

/// What a VPN plugin implements. Each method gets the applied connection, parsed.
pub trait VpnService: Send + Sync + 'static {
    /// Which setting lacks secrets (`Some("vpn")`), or `None` when there are enough.
    fn need_secrets(&self, _profile: &Profile) -> Result<Option<String>, PluginError> {
        Ok(None)
    }

    /// Start connecting. Return once started; report config through `ctl` later.
    fn connect(
        &self,
        profile: Profile,
        ctl: Control,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Start connecting, may ask for secrets with [`Control::secrets_required`].
    fn connect_interactive(
        &self,
        _profile: Profile,
        _ctl: Control,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        async {
            Err(PluginError::InteractiveNotSupported(
                "Plugin does not implement ConnectInteractive()".into(),
            ))
        }
    }

    /// The answer to `SecretsRequired`.
    fn new_secrets(
        &self,
        _profile: Profile,
        _ctl: Control,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        async {
            Err(PluginError::InteractiveNotSupported(
                "Plugin does not implement NewSecrets()".into(),
            ))
        }
    }

    /// Tear the VPN down.
    fn disconnect(&self) -> impl Future<Output = Result<(), PluginError>> + Send;
}

#[derive(Debug, Default)]
struct Core {
    state: Option<ServiceState>,
    config: Option<Dict>,
    has_ip4: bool,
    has_ip6: bool,
    got_ip4: bool,
    got_ip6: bool,
    /// The service has been asked to connect at least once.
    used: bool,
}

struct Shared {
    conn: zbus::Connection,
    // Held only for instants, never across an await: the state is read and written together
    // by the method handlers and by the plugin's own tasks.
    core: Mutex<Core>,
    exit: tokio::sync::watch::Sender<bool>,
    watch_peer: bool,
}

/// The plugin's handle on the protocol: report config, failures and state.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

async fn emit<B>(conn: &zbus::Connection, member: &str, body: &B) -> zbus::Result<()>
where
    B: serde::Serialize + zbus::Type,
{
    conn.emit_signal(None::<()>, PLUGIN_PATH, PLUGIN_IFACE, member, body)
        .await
}

impl Control {
    /// The current service state.
    pub fn state(&self) -> ServiceState {
        self.shared
            .core
            .lock()
            .expect("poisoned")
            .state
            .unwrap_or(ServiceState::Init)
    }

    /// The bus connection the plugin is served on.
    pub fn connection(&self) -> &zbus::Connection {
        &self.shared.conn
    }

    /// Moves to a new service state and announces it.
    pub async fn set_state(&self, s: ServiceState) -> zbus::Result<()> {
        let used = {
            let mut core = self.shared.core.lock().expect("poisoned");
            if core.state == Some(s) {
                return Ok(());
            }
            core.state = Some(s);
            if matches!(s, ServiceState::Starting) {
                core.used = true;
                core.config = None;
                core.got_ip4 = false;
                core.got_ip6 = false;
            }
            core.used
        };
        let announced = self.announce_state(s).await;
        // A plugin that has served its connection and stopped goes away, whether or not the
        // bus still carries the news.
        if s == ServiceState::Stopped && self.shared.watch_peer && used {
            let _ = self.shared.exit.send(true);
        }
        announced
    }

    async fn announce_state(&self, s: ServiceState) -> zbus::Result<()> {
        emit(&self.shared.conn, "StateChanged", &(s as u32)).await?;
        let e = SignalEmitter::new(&self.shared.conn, PLUGIN_PATH)?;
        let mut changed = HashMap::new();
        changed.insert("State", Variant::from(s as u32));
        zbus::fdo::Properties::properties_changed(
            &e,
            PLUGIN_IFACE.try_into().expect("valid interface name"),
            changed,
            std::borrow::Cow::Borrowed(&[]),
        )
        .await
    }

    /// Sends the generic `Config`.
    pub async fn set_config(&self, c: &GenericConfig) -> zbus::Result<()> {
        self.set_config_raw(c.to_dict()).await
    }

    /// Sends `Config` as given, valid or not (for test benches).
    pub async fn set_config_raw(&self, d: Dict) -> zbus::Result<()> {
        {
            let mut core = self.shared.core.lock().expect("poisoned");
            core.has_ip4 = d
                .get("has-ip4")
                .and_then(|v| bool::try_from(v).ok())
                .unwrap_or(false);
            core.has_ip6 = d
                .get("has-ip6")
                .and_then(|v| bool::try_from(v).ok())
                .unwrap_or(false);
            core.config = Some(clone_dict(&d));
        }
        emit(&self.shared.conn, "Config", &(d,)).await?;
        self.maybe_started().await
    }

    /// Sends `Ip4Config`.
    pub async fn set_ip4_config(&self, c: &IpConfig) -> zbus::Result<()> {
        self.set_ip_config_raw(true, c.to_dict()).await
    }

    /// Sends `Ip6Config`.
    pub async fn set_ip6_config(&self, c: &IpConfig) -> zbus::Result<()> {
        self.set_ip_config_raw(false, c.to_dict()).await
    }

    /// Sends `Ip4Config` (`v4`) or `Ip6Config` as given. Like libnm's base, `Ip4Config` gets
    /// `tundev`, `gateway`, `mtu` and `banner` from the last `Config` where it lacks them.
    pub async fn set_ip_config_raw(&self, v4: bool, mut d: Dict) -> zbus::Result<()> {
        {
            let mut core = self.shared.core.lock().expect("poisoned");
            if v4 {
                core.got_ip4 = true;
                if let Some(cfg) = &core.config {
                    for k in ["tundev", "gateway", "mtu", "banner"] {
                        if let (Some(v), false) = (cfg.get(k), d.contains_key(k)) {
                            d.insert(k.to_string(), v.try_clone()?);
                        }
                    }
                }
            } else {
                core.got_ip6 = true;
            }
        }
        let member = if v4 { "Ip4Config" } else { "Ip6Config" };
        emit(&self.shared.conn, member, &(d,)).await?;
        self.maybe_started().await
    }

    async fn maybe_started(&self) -> zbus::Result<()> {
        let complete = {
            let c = self.shared.core.lock().expect("poisoned");
            c.config.is_some()
                && (!c.has_ip4 || c.got_ip4)
                && (!c.has_ip6 || c.got_ip6)
                && c.state == Some(ServiceState::Starting)
        };
        if complete {
            self.set_state(ServiceState::Started).await?;
        }
        Ok(())
    }

    /// Emits `Failure`; the plugin then stops, as libnm's plugins do.
    pub async fn failure(&self, f: PluginFailure) -> zbus::Result<()> {
        emit(&self.shared.conn, "Failure", &(f as u32)).await?;
        self.set_state(ServiceState::Stopping).await?;
        self.set_state(ServiceState::Stopped).await
    }

    /// Emits `Failure` only, leaving the state alone.
    pub async fn failure_signal(&self, f: PluginFailure) -> zbus::Result<()> {
        emit(&self.shared.conn, "Failure", &(f as u32)).await
    }

    /// Asks the daemon for more secrets (answered by `NewSecrets`).
    pub async fn secrets_required(&self, message: &str, hints: &[&str]) -> zbus::Result<()> {
        let hints: Vec<String> = hints.iter().map(|s| s.to_string()).collect();
        emit(&self.shared.conn, "SecretsRequired", &(message, hints)).await
    }
}

fn clone_dict(d: &Dict) -> Dict {
    d.iter()
        .filter_map(|(k, v)| v.try_clone().ok().map(|v| (k.clone(), v)))
        .collect()
}

struct PluginObject<S: VpnService> {
    service: Arc<S>,
    ctl: Control,
}

fn parse_connection(d: &SettingsDict) -> Result<Profile, PluginError> {
    tinynm_config::dbus::from_dict(d).map_err(|e| PluginError::BadArguments(e.to_string()))
}

impl<S: VpnService> PluginObject<S> {
    async fn start(
        &self,
        connection: SettingsDict,
        interactive: bool,
        sender: Option<zbus::names::UniqueName<'_>>,
    ) -> Result<(), PluginError> {
        match self.ctl.state() {
            ServiceState::Init | ServiceState::Stopped | ServiceState::Unknown => {}
            ServiceState::Starting => {
                return Err(PluginError::StartingInProgress(
                    "Could not start connection: already starting".into(),
                ));
            }
            ServiceState::Started => {
                return Err(PluginError::AlreadyStarted(
                    "Could not start connection: already started".into(),
                ));
            }
            _ => {
                return Err(PluginError::WrongState(
                    "Could not start connection: wrong plugin state".into(),
                ));
            }
        }
        // One instance serves one connection: once asked, it goes away when it stops.
        self.ctl.shared.core.lock().expect("poisoned").used = true;
        if self.ctl.shared.watch_peer
            && let Some(peer) = sender
        {
            watch_peer(self.service.clone(), self.ctl.clone(), peer.into());
        }
        let profile = parse_connection(&connection)?;
        let r = if interactive {
            self.service
                .connect_interactive(profile, self.ctl.clone())
                .await
        } else {
            self.service.connect(profile, self.ctl.clone()).await
        };
        match r {
            Ok(()) => {
                self.ctl.set_state(ServiceState::Starting).await?;
                Ok(())
            }
            Err(e) => {
                if !matches!(e, PluginError::InteractiveNotSupported(_)) {
                    let ctl = self.ctl.clone();
                    tokio::spawn(async move {
                        let _ = ctl.set_state(ServiceState::Stopped).await;
                    });
                }
                Err(e)
            }
        }
    }
}

/// Disconnects when whoever called `Connect` leaves the bus (libnm's "watch peer").
fn watch_peer<S: VpnService>(service: Arc<S>, ctl: Control, peer: zbus::names::OwnedUniqueName) {
    tokio::spawn(async move {
        let Ok(dbus) = zbus::fdo::DBusProxy::new(&ctl.shared.conn).await else {
            return;
        };
        let Ok(mut changes) = dbus
            .receive_name_owner_changed_with_args(&[(0, peer.as_str())])
            .await
        else {
            return;
        };
        if dbus
            .name_has_owner(peer.as_ref().into())
            .await
            .unwrap_or(false)
        {
            while let Some(sig) = changes.next().await {
                if sig.args().map(|a| a.new_owner().is_none()).unwrap_or(false) {
                    break;
                }
            }
        }
        if matches!(ctl.state(), ServiceState::Starting | ServiceState::Started) {
            tracing::info!("the daemon ({peer}) left the bus: disconnecting");
            let _ = ctl.set_state(ServiceState::Stopping).await;
            let _ = service.disconnect().await;
        }
        let _ = ctl.set_state(ServiceState::Stopped).await;
        let _ = ctl.shared.exit.send(true);
    });
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.VPN.Plugin")]
impl<S: VpnService> PluginObject<S> {
    async fn connect(
        &self,
        connection: SettingsDict,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) -> Result<(), PluginError> {
        self.start(connection, false, hdr.sender().cloned()).await
    }

    async fn connect_interactive(
        &self,
        connection: SettingsDict,
        _details: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) -> Result<(), PluginError> {
        self.start(connection, true, hdr.sender().cloned()).await
    }

    async fn need_secrets(&self, settings: SettingsDict) -> Result<String, PluginError> {
        let profile = tinynm_config::dbus::from_dict(&settings)
            .map_err(|e| PluginError::InvalidConnection(e.to_string()))?;
        Ok(self.service.need_secrets(&profile)?.unwrap_or_default())
    }

    async fn new_secrets(&self, connection: SettingsDict) -> Result<(), PluginError> {
        if self.ctl.state() != ServiceState::Starting {
            return Err(PluginError::WrongState(
                "Could not accept new secrets: wrong plugin state".into(),
            ));
        }
        let profile = parse_connection(&connection)?;
        self.service.new_secrets(profile, self.ctl.clone()).await
    }

    async fn disconnect(&self) -> Result<(), PluginError> {
        match self.ctl.state() {
            ServiceState::Stopping => Err(PluginError::StoppingInProgress(
                "Could not process the request because the VPN connection is already being stopped.".into(),
            )),
            ServiceState::Stopped => Err(PluginError::AlreadyStopped(
                "Could not process the request because no VPN connection was active.".into(),
            )),
            ServiceState::Starting => {
                self.ctl.failure_signal(PluginFailure::ConnectFailed).await?;
                self.stop().await
            }
            ServiceState::Started => self.stop().await,
            _ => {
                self.ctl.set_state(ServiceState::Stopped).await?;
                Ok(())
            }
        }
    }

    async fn set_config(&self, config: HashMap<String, OwnedVariant>) -> Result<(), PluginError> {
        Ok(self.ctl.set_config_raw(config).await?)
    }

    async fn set_ip4_config(
        &self,
        config: HashMap<String, OwnedVariant>,
    ) -> Result<(), PluginError> {
        Ok(self.ctl.set_ip_config_raw(true, config).await?)
    }

    async fn set_ip6_config(
        &self,
        config: HashMap<String, OwnedVariant>,
    ) -> Result<(), PluginError> {
        Ok(self.ctl.set_ip_config_raw(false, config).await?)
    }

    async fn set_failure(&self, _reason: &str) -> Result<(), PluginError> {
        Ok(self.ctl.failure_signal(PluginFailure::BadIpConfig).await?)
    }

    #[zbus(property)]
    fn state(&self) -> u32 {
        self.ctl.state() as u32
    }

    #[zbus(signal, name = "StateChanged")]
    async fn emit_state_changed(e: &SignalEmitter<'_>, state: u32) -> zbus::Result<()>;

    #[zbus(signal, name = "Config")]
    async fn emit_config(e: &SignalEmitter<'_>, config: Dict) -> zbus::Result<()>;

    #[zbus(signal, name = "Ip4Config")]
    async fn emit_ip4_config(e: &SignalEmitter<'_>, ip4config: Dict) -> zbus::Result<()>;

    #[zbus(signal, name = "Ip6Config")]
    async fn emit_ip6_config(e: &SignalEmitter<'_>, ip6config: Dict) -> zbus::Result<()>;

    #[zbus(signal, name = "Failure")]
    async fn emit_failure(e: &SignalEmitter<'_>, reason: u32) -> zbus::Result<()>;

    #[zbus(signal, name = "SecretsRequired")]
    async fn emit_secrets_required(
        e: &SignalEmitter<'_>,
        message: &str,
        secrets: Vec<String>,
    ) -> zbus::Result<()>;

    #[zbus(signal, name = "LoginBanner")]
    async fn emit_login_banner(e: &SignalEmitter<'_>, banner: &str) -> zbus::Result<()>;
}

impl<S: VpnService> PluginObject<S> {
    async fn stop(&self) -> Result<(), PluginError> {
        self.ctl.set_state(ServiceState::Stopping).await?;
        let r = self.service.disconnect().await;
        self.ctl.set_state(ServiceState::Stopped).await?;
        r
    }
}

/// Command-line options every plugin takes (as NM's plugins do).
#[derive(Debug, Clone)]
pub struct PluginArgs {
    /// `--bus-name NAME`, else the service name.
    pub bus_name: String,
    /// `--persist`: don't quit when idle or when the daemon leaves.
    pub persist: bool,
}

impl PluginArgs {
    /// Parses `std::env::args()`; unknown arguments are an error naming them.
    pub fn from_env(default_service: &str) -> Result<Self, String> {
        let mut args = std::env::args().skip(1);
        let mut out = PluginArgs {
            bus_name: default_service.to_string(),
            persist: false,
        };
        while let Some(a) = args.next() {
            match a.as_str() {
                "--bus-name" => {
                    out.bus_name = args
                        .next()
                        .ok_or_else(|| "--bus-name needs a value".to_string())?;
                }
                "--persist" => out.persist = true,
                "--debug" => {}
                other => {
                    return Err(format!(
                        "unknown argument '{other}' (expected --bus-name NAME, --persist, --debug)"
                    ));
                }
            }
        }
        if !out.bus_name.starts_with(default_service) {
            return Err(format!(
                "--bus-name '{}' is not under this plugin's service '{default_service}'",
                out.bus_name
            ));
        }
        Ok(out)
    }
}

/// stderr that never fails: a plugin whose daemon died (its stderr a pipe nobody reads) must go
/// on to disconnect and quit, not die in tracing's "cannot write" fallback, which panics.
#[derive(Clone, Copy, Default)]
pub struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Sets up logging as NM asks its plugins to (`NM_VPN_LOG_LEVEL`, syslog numbering), to stderr.
pub fn init_logging() {
    let level = std::env::var("NM_VPN_LOG_LEVEL")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map(|l| match l {
            0..=3 => tracing::Level::ERROR,
            4 => tracing::Level::WARN,
            5 => tracing::Level::INFO,
            6 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        })
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| QuietStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// The start of a plugin's `main`: logging, then the arguments NM passes (`--bus-name …`);
/// wrong ones end the process with status 2 and a message naming `program`.
pub fn args_or_exit(default_service: &str, program: &str) -> PluginArgs {
    init_logging();
    match PluginArgs::from_env(default_service) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::exit(2);
        }
    }
}

/// The end of a plugin's `main`: [`run`], and status 1 with a message naming `program` when it
/// fails.
pub async fn run_or_exit<S: VpnService>(service: S, args: PluginArgs, program: &str) {
    if let Err(e) = run(service, args).await {
        eprintln!("{program}: {e}");
        std::process::exit(1);
    }
}

/// Serves `service` on the system bus (honouring `DBUS_SYSTEM_BUS_ADDRESS`) under
/// `args.bus_name` until it has stopped, its daemon left, it was idle too long, or it got
/// SIGTERM/SIGINT.
pub async fn run<S: VpnService>(service: S, args: PluginArgs) -> Result<(), zbus::Error> {
    let address = tinynm_config::daemon_config::system_bus_address();
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await?;
    let (exit_tx, mut exit_rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        conn: conn.clone(),
        core: Mutex::new(Core::default()),
        exit: exit_tx,
        watch_peer: !args.persist,
    });
    let ctl = Control { shared };
    let service = Arc::new(service);
    conn.object_server()
        .at(
            PLUGIN_PATH,
            PluginObject {
                service: service.clone(),
                ctl: ctl.clone(),
            },
        )
        .await?;
    // As libnm's base: INIT is announced before the name is owned.
    ctl.set_state(ServiceState::Init).await?;
    conn.request_name(args.bus_name.as_str()).await?;
    tracing::debug!("serving {} as {}", PLUGIN_PATH, args.bus_name);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| zbus::Error::Failure(e.to_string()))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| zbus::Error::Failure(e.to_string()))?;
    // Ends when the bus connection does: with no bus, nobody can reach this plugin.
    let mut bus_messages = zbus::MessageStream::from(&conn);
    loop {
        let idle =
            matches!(ctl.state(), ServiceState::Init | ServiceState::Stopped) && !args.persist;
        let idle_timer = async {
            if idle {
                tokio::time::sleep(IDLE_QUIT).await
            } else {
                std::future::pending::<()>().await
            }
        };
        tokio::select! {
            _ = exit_rx.changed() => break,
            m = bus_messages.next() => if m.is_none() {
                tracing::info!("the bus connection closed: quitting");
                shutdown(&service, &ctl).await;
                break;
            },
            _ = term.recv() => { shutdown(&service, &ctl).await; break }
            _ = int.recv() => { shutdown(&service, &ctl).await; break }
            _ = idle_timer => { tracing::info!("idle: quitting"); break }
            // re-evaluate idleness now and then
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    let _ = conn.release_name(args.bus_name.as_str()).await;
    // The object server holds the service (and the service may hold files, a tunnel…): let it
    // go, so that what the service owns is dropped before the process ends.
    let _ = conn
        .object_server()
        .remove::<PluginObject<S>, _>(PLUGIN_PATH)
        .await;
    drop(service);
    Ok(())
}

async fn shutdown<S: VpnService>(service: &Arc<S>, ctl: &Control) {
    if matches!(ctl.state(), ServiceState::Starting | ServiceState::Started) {
        let _ = ctl.set_state(ServiceState::Stopping).await;
        let _ = service.disconnect().await;
        let _ = ctl.set_state(ServiceState::Stopped).await;
    }
}
