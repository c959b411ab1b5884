//! tinynmd: a small NetworkManager for VPNs. It owns `org.freedesktop.NetworkManager` on the
//! bus it is given and speaks NM's D-Bus API, so NM's VPN plugins and clients work with it.

mod auth;
mod broker;
mod bus;
mod core;
mod dns;
mod firewall;
mod logging;
mod memory;
mod netlink;
mod secrets;
mod state;
mod store;
mod vpn;
mod wired;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tinynm_config::DaemonConfig;
use tokio::sync::{mpsc, watch};
use tracing_subscriber::filter::LevelFilter;

/// tinynmd: a small, fast NetworkManager for VPN connections.
#[derive(Parser, Debug)]
#[command(
    name = "tinynmd",
    version,
    about,
    after_long_help = "Settings: /etc/tinynm/daemon.toml (--config), every key described in tinynm-daemon.toml(5).\nEnvironment: TINYNM_LOG (else RUST_LOG), a log filter over log-level; JOURNAL_STREAM (set by systemd): log to the journal."
)]
struct Args {
    /// daemon.toml (default: /etc/tinynm/daemon.toml when it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// `system` (honours DBUS_SYSTEM_BUS_ADDRESS), a D-Bus address, or `embedded[:PATH]`: a bus
    /// of tinynmd's own at PATH (default /run/dbus/system_bus_socket), no dbus-daemon needed.
    #[arg(long, value_name = "system|ADDRESS|embedded[:PATH]")]
    bus: Option<String>,
    /// A D-Bus address to serve on (same as --bus ADDRESS).
    #[arg(long, value_name = "ADDRESS", conflicts_with = "bus")]
    bus_address: Option<String>,
    /// Directory of TOML profiles.
    #[arg(long, value_name = "DIR")]
    profile_dir: Option<PathBuf>,
    /// Extra directory of VPN plugin `.name` files (repeatable).
    #[arg(long, value_name = "DIR")]
    plugin_dir: Vec<PathBuf>,
    /// Do not search NM's plugin directories.
    #[arg(long)]
    no_nm_plugin_dirs: bool,
    /// Log level: off, error, warn, info, debug, trace.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Print the manual page tinynmd(8) (roff), generated from these options, and exit.
    #[arg(long)]
    manual: bool,
}

fn load_config(a: &Args) -> anyhow::Result<DaemonConfig> {
    let mut cfg = match &a.config {
        Some(f) => DaemonConfig::load(f)?,
        None => {
            let f = PathBuf::from("/etc/tinynm/daemon.toml");
            if f.exists() {
                DaemonConfig::load(&f)?
            } else {
                DaemonConfig::default()
            }
        }
    };
    if let Some(b) = a.bus.clone().or_else(|| a.bus_address.clone()) {
        cfg.bus = b;
    }
    if let Some(d) = &a.profile_dir {
        cfg.profile_dir = d.clone();
    }
    cfg.plugin_dirs.extend(a.plugin_dir.iter().cloned());
    if a.no_nm_plugin_dirs {
        cfg.nm_plugin_dirs = false;
    }
    if let Some(l) = &a.log_level {
        cfg.log_level = l.clone();
    }
    Ok(cfg)
}

fn main() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let args = Args::parse();
    if args.manual {
        use clap::CommandFactory;
        clap_mangen::Man::new(Args::command())
            .section("8")
            .render(&mut std::io::stdout())?;
        return Ok(());
    }
    memory::init();
    let cfg = load_config(&args)?;
    let level: LevelFilter = cfg.log_level.parse().map_err(|_| {
        anyhow::anyhow!(
            "log-level '{}' is not one of off, error, warn, info, debug, trace",
            cfg.log_level
        )
    })?;
    logging::init(level)?;
    tracing::debug!("starting with {cfg:?}");
    // The embedded bus first: it runs on a thread of its own, tinynmd connects to it below.
    if let Some(path) = cfg.embedded_bus() {
        broker::start(&path)?;
    }
    // One thread: the daemon's work is I/O-bound, and a small footprint is the point.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(serve(cfg, args, started))
}

async fn connect_bus(cfg: &DaemonConfig) -> anyhow::Result<zbus::connection::Builder<'static>> {
    let b = match cfg.bus_address() {
        None => zbus::connection::Builder::address(
            tinynm_config::daemon_config::system_bus_address().as_str(),
        ),
        Some(a) => zbus::connection::Builder::address(a.as_str()),
    };
    // No call of tinynmd's waits for ever (polkit, the bus, resolved…): the calls with a timer
    // of their own (plugins, agents) get theirs first.
    let t = &cfg.timeouts;
    let longest = t.agent.max(t.plugin_call).max(25.0) + 5.0;
    Ok(b.method_timeout(tinynm_config::daemon_config::Timeouts::dur(longest)))
}

/// Owns `name` on the bus with one `RequestName`, as NM does: not queued, not replaceable, and
/// an error when another process has it. (zbus's own `request_name` adds two match rules
/// first, a round trip each, and lets another process take the name over.)
async fn own_name(conn: &zbus::Connection, name: &str, bus: &str) -> anyhow::Result<()> {
    use zbus::fdo::{RequestNameFlags, RequestNameReply};
    let reply: RequestNameReply = conn
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "RequestName",
            &(name, RequestNameFlags::DO_NOT_QUEUE),
        )
        .await
        .and_then(|m| m.body().deserialize())
        .with_context(|| format!("cannot own {name} on '{bus}'"))?;
    match reply {
        RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner => Ok(()),
        RequestNameReply::Exists => anyhow::bail!(
            "cannot own {name} on '{bus}': another process owns it (another tinynmd, or NetworkManager?)"
        ),
        r => anyhow::bail!("cannot own {name} on '{bus}': the bus answered {r}"),
    }
}

async fn serve(cfg: DaemonConfig, args: Args, started: std::time::Instant) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let netlink = netlink::Netlink::new().context("netlink")?;
    let run = state::paths::runtime_dir(&cfg.state_dir);
    if run.exists() {
        match std::fs::remove_dir_all(&run) {
            Ok(()) => tracing::info!(
                "removed what plugins of an earlier run left in {}",
                run.display()
            ),
            Err(e) => tracing::warn!("cannot empty {}: {e}", run.display()),
        }
    }
    let dns = dns::Dns::new(cfg.dns.clone(), &cfg.state_dir);
    dns.recover();
    let (dns_tx, dns_rx) = watch::channel(state::DnsSnapshot {
        mode: dns.mode().to_string(),
        rc_manager: dns.rc_manager().to_string(),
        entries: Vec::new(),
        error: String::new(),
    });
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (manager_tx, manager_rx) = watch::channel(state::ManagerSnapshot::new());
    let (settings_tx, settings_rx) = watch::channel(Vec::new());
    let (keepup_tx, keepup_rx) = watch::channel(state::KeepUpSnapshot::default());
    let (objects_tx, objects_rx) = watch::channel(bus::objects::Objects::from([
        (
            state::paths::NM_PATH.to_string(),
            vec![bus::objects::Iface::Manager],
        ),
        (
            state::paths::SETTINGS_PATH.to_string(),
            vec![bus::objects::Iface::Settings],
        ),
        (
            state::paths::DNS_PATH.to_string(),
            vec![bus::objects::Iface::Dns],
        ),
        (
            state::paths::AGENT_PATH.to_string(),
            vec![bus::objects::Iface::Agent],
        ),
    ]));
    let agents = secrets::Agents::default();
    let authority = Arc::new(auth::Authority::new(cfg.authorization.clone()));
    // The two bus connections and the link dump at once: each is a round trip or more, and
    // start-up to the name owned is mostly waiting on them.
    let conn = connect_bus(&cfg)
        .await?
        .serve_at(
            bus::objects::ROOT,
            bus::objects::ObjectManagerView {
                objects: objects_rx,
            },
        )
        .serve_at(
            state::paths::NM_PATH,
            bus::manager::Manager {
                cmd: cmd_tx.clone(),
                snap: manager_rx,
                auth: authority.clone(),
            },
        )
        .serve_at(
            state::paths::DNS_PATH,
            bus::dns::DnsManagerView {
                snap: dns_rx.clone(),
            },
        )
        .serve_at(
            state::paths::AGENT_PATH,
            bus::agent::AgentManagerView {
                agents: agents.clone(),
            },
        )
        .serve_at(
            state::paths::SETTINGS_PATH,
            bus::settings::SettingsView {
                cmd: cmd_tx.clone(),
                list: settings_rx,
                auth: authority.clone(),
            },
        );
    // tinynm's own interfaces on a connection of their own, named `org.tinynm`: libnm takes
    // every PropertiesChanged from NetworkManager's name for one of its objects, and one of an
    // interface it does not know for an error (nmcli aborts with G_DEBUG=fatal-warnings).
    let own = connect_bus(&cfg)
        .await?
        .serve_at(
            state::paths::TINYNM_DNS_PATH,
            bus::dns::DnsStatusView { snap: dns_rx },
        )
        .serve_at(
            state::paths::TINYNM_SETTINGS_PATH,
            bus::keepup::KeepUpView {
                snap: keepup_rx,
                cmd: cmd_tx.clone(),
                auth: authority.clone(),
                cert_dir: cfg.cert_dir(),
            },
        );
    let bus_err = || format!("cannot connect to the bus '{}'", cfg.bus);
    // What a crashed tinynmd left is removed before the links are read; `org.tinynm` is
    // owned as soon as its connection is up (its calls wait in the core's queue), so that
    // its round trip overlaps the rest of the start.
    let (conn, own, links) = tokio::try_join!(
        async { conn.build().await.with_context(bus_err) },
        async {
            let own = own.build().await.with_context(bus_err)?;
            own_name(&own, state::paths::TINYNM_NAME, &cfg.bus).await?;
            Ok(own)
        },
        async {
            netlink::recover(&netlink, &cfg.state_dir).await;
            netlink.links().await.context("cannot read the links")
        },
    )?;
    let bus = bus::export::Exporter::new(conn.clone(), own.clone(), objects_tx);
    let exporter = bus.clone();
    let handles = vpn::Handles {
        bus,
        netlink,
        cfg: cfg.clone(),
        agents,
    };
    let published = core::Published {
        manager: manager_tx,
        settings: settings_tx,
        dns: dns_tx,
        keepup: keepup_tx,
    };
    let mut core = core::Core::new(handles, authority, cmd_tx.clone(), published, dns);
    core.load_profiles()
        .await
        .context("cannot export the profiles")?;
    core.import_files().await;
    core.sync_links(links)
        .await
        .context("cannot export the devices")?;
    core.prepare_manager().await;
    let core_task = tokio::spawn(core.run(cmd_rx));
    // Handled from before the name is owned: whoever sees tinynmd ready may signal it.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // Nothing runs between here and the request going out (this task does not yield), so
    // every signal from now on is sent, and none before was needed.
    exporter.go_live();
    own_name(&conn, state::paths::NM_NAME, &cfg.bus).await?;
    tracing::info!(
        "tinynmd {} serving {} on {} ({} µs after start)",
        env!("CARGO_PKG_VERSION"),
        state::paths::NM_NAME,
        cfg.bus,
        started.elapsed().as_micros()
    );
    // The links are watched from now: the watcher reads them once subscribed, so a change
    // since the dump above is not missed, and its reads do not delay the name's reply.
    let (links_tx, mut links_rx) = mpsc::channel(4);
    netlink::links::watch(links_tx).context("cannot watch the links")?;
    let to_core = cmd_tx.clone();
    tokio::spawn(async move {
        while let Some(l) = links_rx.recv().await {
            if to_core.send(state::Command::Links(l)).await.is_err() {
                return;
            }
        }
    });
    // As NM: the links profiles fit are managed, and autoconnected, once the name is owned
    // (so that whoever waits for the name sees it all).
    let (reply, started) = tokio::sync::oneshot::channel();
    let _ = cmd_tx.send(state::Command::StartUp { reply }).await;
    let _ = started.await;
    // Type=notify: ready once the name is owned and the start-up autoconnects are started.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!("cannot tell the service manager tinynmd is ready: {e}");
    }

    // Ends when the bus connection does: with no bus, nobody can see or control the VPNs, so
    // they are taken down as at SIGTERM.
    let mut bus_messages = zbus::MessageStream::from(&conn);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            m = futures::StreamExt::next(&mut bus_messages) => if m.is_none() {
                tracing::error!("the bus connection closed: taking every VPN down");
                break;
            },
            _ = hup.recv() => {
                // As NM: SIGHUP reloads the configuration and the profiles.
                tracing::info!("SIGHUP: reloading daemon.toml and the profiles");
                let cmd = match load_config(&args) {
                    Ok(c) => state::Command::ReloadConfig(Box::new(c)),
                    Err(e) => {
                        tracing::error!("daemon.toml not reloaded, the old one stays: {e:#}");
                        let (reply, _) = tokio::sync::oneshot::channel();
                        state::Command::Reload { uid: 0, files: None, reply }
                    }
                };
                let _ = cmd_tx.send(cmd).await;
            }
        }
    }
    tracing::info!("shutting down: deactivating every VPN");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let (reply, done) = tokio::sync::oneshot::channel();
    if cmd_tx
        .send(state::Command::Shutdown { reply })
        .await
        .is_ok()
    {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), done).await;
    }
    vpn::plugin::wait_all(std::time::Duration::from_secs(3)).await;
    let _ = conn.release_name(state::paths::NM_NAME).await;
    core_task.abort();
    Ok(())
}
