//! tinynm: the command-line client of tinynmd (and of NetworkManager: it speaks NM's API).

mod agent;
mod demo;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use tinynm_config::Profile;
use tinynm_config::nm::{Reason, VpnState};
use tinynm_sandbox::nm::{ActiveProxy, ManagerProxy, SettingsConnectionProxy, SettingsProxy};
use zbus::{MatchRule, MessageStream, OwnedObjectPath};

/// tinynm: drive tinynmd (or NetworkManager) from the command line.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// D-Bus address of the bus tinynmd is on (default: the system bus, honouring
    /// DBUS_SYSTEM_BUS_ADDRESS).
    #[arg(long, global = true, value_name = "ADDRESS")]
    bus_address: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Connection profiles.
    #[command(subcommand, visible_alias = "c")]
    Connection(ConnCmd),
    /// Runs tinynmd in a throwaway namespace with its own bus, activates a VPN of the
    /// test-bench plugin, shows what it put in the kernel, takes it down, cleans up.
    Demo {
        /// Number of extra /32 routes the VPN pushes.
        #[arg(long, default_value_t = 5)]
        routes: u32,
        /// Keep the VPN up this many seconds before taking it down.
        #[arg(long, default_value_t = 0)]
        hold: u64,
    },
    /// DNS as tinynmd has it in force.
    #[command(subcommand)]
    Dns(DnsCmd),
    /// A secret agent: answers tinynmd's requests for VPN secrets (by asking on the terminal,
    /// no echo, or from a secrets file) until stopped.
    Agent {
        /// Answer from this file (`vpn.secrets.KEY:VALUE` lines) instead of asking.
        #[arg(long, value_name = "FILE")]
        secrets_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum DnsCmd {
    /// Which server a name will go to, and why.
    Explain {
        /// A host name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum ConnCmd {
    /// Lists the profiles.
    #[command(visible_alias = "show-all")]
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Shows one profile (secrets only with --show-secrets).
    Show {
        /// id or UUID.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Include the stored secrets (asks tinynmd's GetSecrets: needs the right to).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Activates a profile and follows it until it is up or has failed.
    Up {
        /// id or UUID.
        id: String,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 300)]
        wait: u64,
        /// Ask on the terminal (no echo) for the secrets the VPN needs.
        #[arg(long, conflicts_with = "secrets_file")]
        ask: bool,
        /// Give the secrets the VPN needs from this file (`vpn.secrets.KEY:VALUE` lines).
        #[arg(long, value_name = "FILE")]
        secrets_file: Option<PathBuf>,
    },
    /// Deactivates a profile's active connection.
    Down {
        /// id or UUID.
        id: String,
    },
    /// Adds a VPN profile.
    Add {
        /// The profile's name (connection.id).
        #[arg(long)]
        name: String,
        /// The plugin's service, e.g. org.freedesktop.NetworkManager.openvpn.
        #[arg(long, value_name = "SERVICE")]
        vpn_type: String,
        /// A vpn.data item (repeatable).
        #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
        data: Vec<(String, String)>,
        /// A vpn.secrets item (repeatable).
        #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
        secret: Vec<(String, String)>,
        /// Activate on start-up.
        #[arg(long, value_name = "yes|no", value_parser = yes_no, default_value = "no")]
        autoconnect: bool,
        /// Keep the profile in memory only.
        #[arg(long)]
        unsaved: bool,
        /// Visible to you alone (connection.permissions user:YOU); changing it then needs
        /// settings.modify.own rather than settings.modify.system.
        #[arg(long)]
        private: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Changes a profile.
    Modify {
        /// id or UUID.
        id: String,
        /// Adds or replaces a vpn.data item (repeatable).
        #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
        data: Vec<(String, String)>,
        /// Removes a vpn.data item (repeatable).
        #[arg(long, value_name = "KEY")]
        remove_data: Vec<String>,
        /// Sets the vpn.secrets (repeatable; replaces the stored secrets, as NM's Update does).
        #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
        secret: Vec<(String, String)>,
        /// Activate on start-up.
        #[arg(long, value_name = "yes|no", value_parser = yes_no)]
        autoconnect: Option<bool>,
        /// No IPv4 default route through the VPN.
        #[arg(long, value_name = "yes|no", value_parser = yes_no)]
        never_default: Option<bool>,
    },
    /// Deletes a profile.
    Delete {
        /// id or UUID.
        id: String,
    },
    /// Imports a profile from another format: `openvpn FILE.ovpn`.
    Import {
        /// The format (only `openvpn`).
        #[arg(value_parser = ["openvpn"])]
        kind: String,
        /// The file.
        file: PathBuf,
        /// The profile's name (default: the file's name without extension).
        #[arg(long)]
        name: Option<String>,
        /// Where the file's inline certificates and keys go, mode 0600 (default: beside
        /// tinynmd's default profile directory, in `certs/`).
        #[arg(long, value_name = "DIR")]
        cert_dir: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

fn yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("'{s}' is not yes or no")),
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Demo { routes, hold } => demo::run(routes, hold).await,
        Cmd::Dns(DnsCmd::Explain { name }) => match connect(cli.bus_address.as_deref()).await {
            Ok(conn) => explain(&conn, &name).await,
            Err(e) => Err(e),
        },
        Cmd::Agent { secrets_file } => match connect(cli.bus_address.as_deref()).await {
            Ok(conn) => run_agent(&conn, secrets_file).await,
            Err(e) => Err(e),
        },
        Cmd::Connection(c) => match connect(cli.bus_address.as_deref()).await {
            Ok(conn) => connection(&conn, c).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = r {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

/// `tinynm dns explain NAME`: the DnsManager's configuration in force, read as the resolver
/// will: the first server of the first entry (by dns-priority) is asked; a search domain the
/// name is under says which connection it belongs to.
async fn explain(conn: &zbus::Connection, name: &str) -> anyhow::Result<()> {
    type Entry = std::collections::HashMap<String, zbus::OwnedVariant>;
    let dns = zbus::Proxy::new(
        conn,
        "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager/DnsManager",
        "org.freedesktop.NetworkManager.DnsManager",
    )
    .await?;
    let mode: String = dns.get_property("Mode").await?;
    let rc: String = dns.get_property("RcManager").await?;
    let config: Vec<Entry> = dns.get_property("Configuration").await?;
    if mode == "none" {
        println!(
            "{name}: tinynmd puts no DNS in force (backend none, resolv.conf {rc}): the system's own resolver decides"
        );
        return Ok(());
    }
    let get = |e: &Entry, k: &str| e.get(k).and_then(|v| v.try_clone().ok());
    let strings = |e: &Entry, k: &str| -> Vec<String> {
        get(e, k)
            .and_then(|v| Vec::<String>::try_from(v).ok())
            .unwrap_or_default()
    };
    let Some(first) = config.first() else {
        println!(
            "{name}: no VPN's DNS is in force: the servers tinynmd found in resolv.conf answer"
        );
        return Ok(());
    };
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let under = config.iter().find_map(|e| {
        strings(e, "domains")
            .into_iter()
            .find(|d| lower == *d || lower.ends_with(&format!(".{d}")))
            .map(|d| (e, d))
    });
    let describe = |e: &Entry| {
        let iface = get(e, "interface")
            .and_then(|v| String::try_from(v).ok())
            .unwrap_or_default();
        let prio = get(e, "priority")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0);
        format!("{iface} (dns-priority {prio})")
    };
    let servers = strings(first, "nameservers");
    let server = servers.first().cloned().unwrap_or_else(|| "?".into());
    println!(
        "{name} goes to {server}: the first name server in force, from {}",
        describe(first)
    );
    if config.len() > 1 {
        println!(
            "  then, if it does not answer: {}",
            config[1..]
                .iter()
                .flat_map(|e| strings(e, "nameservers"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match under {
        Some((e, d)) => println!("  {name} is under the search domain {d} of {}", describe(e)),
        None => println!("  no search domain in force covers {name}"),
    }
    if get(first, "priority")
        .and_then(|v| i32::try_from(v).ok())
        .is_some_and(|p| p < 0)
    {
        println!("  a negative priority is exclusive: the system's own servers are not used");
    }
    Ok(())
}

/// `tinynm agent`: serves until SIGINT/SIGTERM, then unregisters.
async fn run_agent(conn: &zbus::Connection, secrets_file: Option<PathBuf>) -> anyhow::Result<()> {
    let source = match &secrets_file {
        Some(f) => agent::Source::File(agent::read_secrets_file(f)?),
        None => agent::Source::Terminal,
    };
    agent::register(conn, source, "tinynm-agent").await?;
    eprintln!("tinynm agent: answering tinynmd's requests for VPN secrets (Ctrl-C to stop)");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = conn
        .call_method(
            Some("org.freedesktop.NetworkManager"),
            "/org/freedesktop/NetworkManager/AgentManager",
            Some("org.freedesktop.NetworkManager.AgentManager"),
            "Unregister",
            &(),
        )
        .await;
    Ok(())
}

async fn connect(address: Option<&str>) -> anyhow::Result<zbus::Connection> {
    let b = match address {
        Some(a) => zbus::connection::Builder::address(a),
        None => zbus::connection::Builder::system(),
    };
    b.build()
        .await
        .context("cannot connect to the bus (is tinynmd's bus up? see --bus-address)")
}

/// Every profile: (path, settings).
async fn profiles(conn: &zbus::Connection) -> anyhow::Result<Vec<(OwnedObjectPath, Profile)>> {
    let settings = SettingsProxy::new(conn)
        .await
        .context("org.freedesktop.NetworkManager is not on this bus")?;
    let mut out = Vec::new();
    for p in settings
        .list_connections()
        .await
        .context("ListConnections")?
    {
        let c = SettingsConnectionProxy::builder(conn)
            .path(p.clone())
            .build()
            .await?;
        // Profiles generated for interfaces configured outside tinynmd are not VPNs: skipped.
        // One that went between the listing and now is skipped too.
        let d = match c.get_settings().await {
            Ok(d) => d,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("GetSettings on {p}")),
        };
        if d.get("connection")
            .and_then(|c| c.get("type"))
            .and_then(|t| <&str>::try_from(&**t).ok())
            .is_some_and(|t| t != "vpn")
        {
            continue;
        }
        match tinynm_config::dbus::from_dict(&d) {
            Ok(prof) => out.push((p, prof)),
            Err(e) => eprintln!("Warning: {p} is not a VPN profile tinynm understands: {e}"),
        }
    }
    Ok(out)
}

/// Imports an `.ovpn` file: its inline material is written (0600) to `cert_dir`, then the
/// profile is added; if anything fails, nothing is left behind.
async fn import_openvpn(
    conn: &zbus::Connection,
    file: &std::path::Path,
    name: Option<String>,
    cert_dir: Option<PathBuf>,
) -> anyhow::Result<(OwnedObjectPath, Profile)> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = match name {
        Some(n) => n,
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .with_context(|| {
                format!(
                    "{}: no name in the file's name; give --name",
                    file.display()
                )
            })?
            .to_string(),
    };
    let cert_dir = cert_dir.unwrap_or_else(|| {
        tinynm_config::DaemonConfig::default()
            .profile_dir
            .join("certs")
    });
    let uuid = uuid::Uuid::new_v4().to_string();
    let imported = tinynm_config::ovpn::import(&text, &name, &uuid, &cert_dir)
        .with_context(|| format!("cannot import {}", file.display()))?;
    imported.profile.validate()?;
    let mut written: Vec<PathBuf> = Vec::new();
    let result = async {
        if !imported.files.is_empty() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&cert_dir)
                .with_context(|| format!("cannot create {}", cert_dir.display()))?;
        }
        for (path, body) in &imported.files {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path.clone());
            f.write_all(body.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let settings = SettingsProxy::new(conn).await?;
        settings
            .add_connection(tinynm_config::dbus::to_dict(&imported.profile, true))
            .await
            .with_context(|| format!("cannot add '{name}'"))
    }
    .await;
    match result {
        Ok(path) => Ok((path, imported.profile)),
        Err(e) => {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
            Err(e)
        }
    }
}

/// The object is no longer there.
fn gone(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::FDO(f) => matches!(**f, zbus::fdo::Error::UnknownObject(_)),
        // A profile another user's connection.permissions hide is not there for this one.
        zbus::Error::MethodError(name, _, _) => matches!(
            name.as_str(),
            "org.freedesktop.DBus.Error.UnknownObject"
                | "org.freedesktop.NetworkManager.Settings.PermissionDenied"
        ),
        _ => false,
    }
}

async fn find(conn: &zbus::Connection, id: &str) -> anyhow::Result<(OwnedObjectPath, Profile)> {
    let all = profiles(conn).await?;
    all.into_iter()
        .find(|(_, p)| p.connection.id == id || p.connection.uuid == id)
        .ok_or_else(|| {
            anyhow::anyhow!("unknown connection '{id}' (no profile has that id or UUID)")
        })
}

fn json_of(path: &OwnedObjectPath, p: &Profile) -> serde_json::Value {
    serde_json::json!({
        "path": path.as_str(),
        "id": p.connection.id,
        "uuid": p.connection.uuid,
        "type": p.connection.kind,
        "autoconnect": p.connection.autoconnect,
        "service-type": p.vpn.service_type,
        "data": p.vpn.data,
        "ipv4": { "method": p.ipv4.method.as_str(), "never-default": p.ipv4.never_default, "route-metric": p.ipv4.route_metric },
        "ipv6": { "method": p.ipv6.method.as_str(), "never-default": p.ipv6.never_default, "route-metric": p.ipv6.route_metric },
    })
}

async fn connection(conn: &zbus::Connection, c: ConnCmd) -> anyhow::Result<()> {
    match c {
        ConnCmd::List { json } => {
            let all = profiles(conn).await?;
            if json {
                let v: Vec<_> = all.iter().map(|(p, c)| json_of(p, c)).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{:<24} {:<36} {:<5} SERVICE", "NAME", "UUID", "TYPE");
                for (_, p) in &all {
                    println!(
                        "{:<24} {:<36} {:<5} {}",
                        p.connection.id, p.connection.uuid, p.connection.kind, p.vpn.service_type
                    );
                }
            }
            Ok(())
        }
        ConnCmd::Show {
            id,
            json,
            show_secrets,
        } => {
            let (path, mut p) = find(conn, &id).await?;
            p.vpn.secrets.clear();
            if show_secrets {
                let c = SettingsConnectionProxy::builder(conn)
                    .path(path.clone())
                    .build()
                    .await?;
                let d = c
                    .get_secrets("vpn")
                    .await
                    .with_context(|| format!("cannot read the secrets of '{id}'"))?;
                if let Some(v) = d.get("vpn").and_then(|v| v.get("secrets")) {
                    let m: std::collections::HashMap<String, String> = v.try_clone()?.try_into()?;
                    p.vpn.secrets.extend(m);
                }
            }
            if json {
                let mut j = json_of(&path, &p);
                if show_secrets {
                    j["secrets"] = serde_json::json!(p.vpn.secrets);
                }
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                print!("{}", tinynm_config::toml_profile::to_toml_string(&p));
            }
            Ok(())
        }
        ConnCmd::Up {
            id,
            wait,
            ask,
            secrets_file,
        } => {
            // The agent answers for this activation only: it goes with this process.
            if let Some(f) = &secrets_file {
                let map = agent::read_secrets_file(f)?;
                agent::register(conn, agent::Source::File(map), "tinynm-connect").await?;
            } else if ask {
                agent::register(conn, agent::Source::Terminal, "tinynm-connect").await?;
            }
            up(conn, &id, Duration::from_secs(wait)).await
        }
        ConnCmd::Down { id } => down(conn, &id).await,
        ConnCmd::Add {
            name,
            vpn_type,
            data,
            secret,
            autoconnect,
            unsaved,
            private,
            json,
        } => {
            let mut p = Profile::new_vpn(&name, &uuid::Uuid::new_v4().to_string(), &vpn_type);
            p.connection.autoconnect = autoconnect;
            if private {
                let me = nix::unistd::User::from_uid(nix::unistd::getuid())?
                    .context("who am I? (no user for this uid)")?;
                p.connection.permissions = vec![format!("user:{}", me.name)];
            }
            p.vpn.data.extend(data);
            p.vpn.secrets.extend(secret);
            p.validate()?;
            let settings = SettingsProxy::new(conn).await?;
            let d = tinynm_config::dbus::to_dict(&p, true);
            let path = if unsaved {
                settings.add_connection_unsaved(d).await
            } else {
                settings.add_connection(d).await
            }
            .with_context(|| format!("cannot add '{name}'"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&json_of(&path, &p))?);
            } else {
                println!(
                    "Connection '{name}' ({}) successfully added.",
                    p.connection.uuid
                );
            }
            Ok(())
        }
        ConnCmd::Import {
            kind: _,
            file,
            name,
            cert_dir,
            json,
        } => {
            let (path, p) = import_openvpn(conn, &file, name, cert_dir).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&json_of(&path, &p))?);
            } else {
                println!(
                    "Connection '{}' ({}) successfully added.",
                    p.connection.id, p.connection.uuid
                );
            }
            Ok(())
        }
        ConnCmd::Modify {
            id,
            data,
            remove_data,
            secret,
            autoconnect,
            never_default,
        } => {
            let (path, mut p) = find(conn, &id).await?;
            for k in &remove_data {
                if p.vpn.data.remove(k).is_none() {
                    bail!("'{}' has no vpn.data item '{k}'", p.connection.id);
                }
            }
            p.vpn.data.extend(data);
            if let Some(a) = autoconnect {
                p.connection.autoconnect = a;
            }
            if let Some(n) = never_default {
                p.ipv4.never_default = n;
            }
            p.validate()?;
            // Without secrets tinynmd keeps the stored ones; given ones replace them.
            let with_secrets = !secret.is_empty();
            p.vpn.secrets.extend(secret);
            let c = SettingsConnectionProxy::builder(conn)
                .path(path)
                .build()
                .await?;
            c.update(tinynm_config::dbus::to_dict(&p, with_secrets))
                .await
                .with_context(|| format!("cannot modify '{}'", p.connection.id))?;
            println!(
                "Connection '{}' ({}) successfully modified.",
                p.connection.id, p.connection.uuid
            );
            Ok(())
        }
        ConnCmd::Delete { id } => {
            let (path, p) = find(conn, &id).await?;
            let c = SettingsConnectionProxy::builder(conn)
                .path(path)
                .build()
                .await?;
            c.delete()
                .await
                .with_context(|| format!("cannot delete '{}'", p.connection.id))?;
            println!(
                "Connection '{}' ({}) successfully deleted.",
                p.connection.id, p.connection.uuid
            );
            Ok(())
        }
    }
}

/// Activates and prints every VPN state until the end; the exit code says how it ended.
pub async fn up(conn: &zbus::Connection, id: &str, wait: Duration) -> anyhow::Result<()> {
    let (path, p) = find(conn, id).await?;
    // Subscribe before activating: no state change can be missed.
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.NetworkManager.VPN.Connection")
        .member("VpnStateChanged")
        .build()?;
    let mut stream = MessageStream::for_match_rule(rule, conn, None).await?;
    let root = zbus::ObjectPath::try_from("/")?;
    let ac = ManagerProxy::new(conn)
        .await?
        .activate_connection(&path, &root, &root)
        .await
        .with_context(|| format!("cannot activate '{}'", p.connection.id))?;
    let follow = async {
        while let Some(Ok(m)) = stream.next().await {
            if m.header().path().map(|x| x.as_str()) != Some(ac.as_str()) {
                continue;
            }
            let (state, reason): (u32, u32) = m.body().deserialize()?;
            let st = VpnState::from_u32(state);
            println!("VPN state: {}", st.name());
            match st {
                VpnState::Activated => {
                    println!("Connection successfully activated (D-Bus active path: {ac})");
                    return Ok(());
                }
                VpnState::Failed | VpnState::Disconnected => {
                    bail!(
                        "Connection activation failed: {}",
                        Reason::from_u32(reason).nmcli_text()
                    );
                }
                _ => {}
            }
        }
        bail!("the bus connection closed")
    };
    tokio::time::timeout(wait, follow).await.map_err(|_| {
        anyhow::anyhow!("timed out after {wait:?} waiting for '{}'", p.connection.id)
    })?
}

async fn down(conn: &zbus::Connection, id: &str) -> anyhow::Result<()> {
    let (path, p) = find(conn, id).await?;
    let manager = ManagerProxy::new(conn).await?;
    for ac in manager.active_connections().await? {
        let a = ActiveProxy::builder(conn).path(ac.clone()).build().await?;
        if a.connection().await.ok().as_ref() == Some(&path) {
            manager
                .deactivate_connection(&ac)
                .await
                .with_context(|| format!("cannot deactivate '{}'", p.connection.id))?;
            println!(
                "Connection '{}' successfully deactivated (D-Bus active path: {ac})",
                p.connection.id
            );
            return Ok(());
        }
    }
    bail!("'{}' is not an active connection", p.connection.id)
}
