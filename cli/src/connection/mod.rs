//! `tinynm connection`: the profiles, one file per group of subcommands.

mod edit;
mod import;
mod show;
mod up;

use anyhow::Context;
use clap::Subcommand;
use tinynm_client::{SettingsConnectionProxy, SettingsProxy};
use tinynm_config::Profile;
use zbus::OwnedObjectPath;

/// `tinynm connection …`
#[derive(Subcommand, Debug)]
pub enum ConnCmd {
    /// Lists the profiles.
    #[command(visible_alias = "show-all")]
    List(show::ListArgs),
    /// Shows one profile (secrets only with --show-secrets).
    Show(show::ShowArgs),
    /// Activates a profile and follows it until it is up or has failed.
    Up(up::UpArgs),
    /// Deactivates a profile's active connection.
    Down(up::DownArgs),
    /// Adds a VPN profile.
    Add(edit::AddArgs),
    /// Changes a profile.
    Modify(edit::ModifyArgs),
    /// Deletes a profile.
    Delete(edit::DeleteArgs),
    /// Imports a profile from another format: `openvpn FILE.ovpn`.
    Import(import::ImportArgs),
}

/// Runs one `connection` subcommand.
pub async fn run(conn: &zbus::Connection, c: ConnCmd) -> anyhow::Result<()> {
    match c {
        ConnCmd::List(a) => show::run_list(conn, a).await,
        ConnCmd::Show(a) => show::run_show(conn, a).await,
        ConnCmd::Up(a) => up::run_up(conn, a).await,
        ConnCmd::Down(a) => up::run_down(conn, a).await,
        ConnCmd::Add(a) => edit::run_add(conn, a).await,
        ConnCmd::Modify(a) => edit::run_modify(conn, a).await,
        ConnCmd::Delete(a) => edit::run_delete(conn, a).await,
        ConnCmd::Import(a) => import::run_import(conn, a).await,
    }
}

pub(crate) fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

pub(crate) fn yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("'{s}' is not yes or no")),
    }
}

/// Every profile: (path, settings).
pub(crate) async fn profiles(
    conn: &zbus::Connection,
) -> anyhow::Result<Vec<(OwnedObjectPath, Profile)>> {
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

pub(crate) async fn find(
    conn: &zbus::Connection,
    id: &str,
) -> anyhow::Result<(OwnedObjectPath, Profile)> {
    let all = profiles(conn).await?;
    all.into_iter()
        .find(|(_, p)| p.connection.id == id || p.connection.uuid == id)
        .ok_or_else(|| {
            anyhow::anyhow!("unknown connection '{id}' (no profile has that id or UUID)")
        })
}

pub(crate) fn json_of(path: &OwnedObjectPath, p: &Profile) -> serde_json::Value {
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
