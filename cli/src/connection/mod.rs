//! `tinynm connection`: the profiles, one file per group of subcommands.

mod edit;
mod import;
mod show;
mod up;

use anyhow::Context;
use clap::Subcommand;
use tinynm_client::{
    ActiveProxy, DeviceProxy, ManagerProxy, SettingsConnectionProxy, SettingsProxy,
};
use tinynm_config::Profile;
use zbus::OwnedObjectPath;

use crate::out::{Exit, Out, fail};

/// `tinynm connection …`
#[derive(Subcommand, Debug)]
pub enum ConnCmd {
    /// Lists the profiles: name, UUID, type, device and state when active.
    #[command(visible_alias = "show-all")]
    List(show::ListArgs),
    /// Shows one profile (secrets only with --show-secrets); without a name, lists them
    /// (`--active`: only the active ones).
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

/// Runs one `connection` subcommand; `wait` is the global `--wait`.
pub async fn run(
    conn: &zbus::Connection,
    c: ConnCmd,
    out: Out,
    wait: Option<u64>,
) -> anyhow::Result<()> {
    match c {
        ConnCmd::List(a) => show::run_list(conn, a, out).await,
        ConnCmd::Show(a) => show::run_show(conn, a, out).await,
        ConnCmd::Up(a) => up::run_up(conn, a, out, wait).await,
        ConnCmd::Down(a) => up::run_down(conn, a, out, wait).await,
        ConnCmd::Add(a) => edit::run_add(conn, a, out).await,
        ConnCmd::Modify(a) => edit::run_modify(conn, a, out).await,
        ConnCmd::Delete(a) => edit::run_delete(conn, a, out).await,
        ConnCmd::Import(a) => import::run_import(conn, a, out).await,
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

/// A profile as the daemon lists it: what any profile has, and the VPN profile tinynm edits.
pub(crate) struct Entry {
    pub path: OwnedObjectPath,
    pub id: String,
    pub uuid: String,
    /// connection.type, as on the bus (`vpn`, `802-3-ethernet`…).
    pub kind: String,
    /// connection.timestamp: when it was last up (seconds since the epoch; 0: never).
    pub timestamp: u64,
    /// The profile, for the types tinynm edits (VPN and wired); `None` for others (the
    /// generated profile of an interface configured outside the daemon…).
    pub profile: Option<Profile>,
    /// The settings as the daemon gave them.
    pub dict: tinynm_client::SettingsDict,
}

impl Entry {
    /// nmcli's short name of the type.
    pub fn type_name(&self) -> &str {
        match self.kind.as_str() {
            "802-3-ethernet" => "ethernet",
            "802-11-wireless" => "wifi",
            k => k,
        }
    }
}

/// Every profile the caller may see.
pub(crate) async fn entries(conn: &zbus::Connection) -> anyhow::Result<Vec<Entry>> {
    let settings = SettingsProxy::new(conn).await?;
    let list = settings.list_connections().await.map_err(|e| {
        anyhow::Error::new(e).context("org.freedesktop.NetworkManager is not on this bus")
    })?;
    let mut out = Vec::new();
    for p in list {
        let c = SettingsConnectionProxy::builder(conn)
            .path(p.clone())
            .build()
            .await?;
        // One that went between the listing and now is skipped.
        let d = match c.get_settings().await {
            Ok(d) => d,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("GetSettings on {p}")),
        };
        let get = |k: &str| {
            d.get("connection")
                .and_then(|c| c.get(k))
                .and_then(|v| v.try_clone().ok())
        };
        let text = |k: &str| {
            get(k)
                .and_then(|v| String::try_from(v).ok())
                .unwrap_or_default()
        };
        let kind = text("type");
        let profile = match tinynm_config::dbus::from_dict(&d) {
            Ok(prof) => Some(prof),
            Err(e) if kind == "vpn" || kind == "802-3-ethernet" => {
                eprintln!("Warning: {p} is not a profile tinynm understands: {e}");
                None
            }
            Err(_) => None,
        };
        out.push(Entry {
            id: text("id"),
            uuid: text("uuid"),
            kind,
            timestamp: get("timestamp")
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0),
            profile,
            path: p,
            dict: d,
        });
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

/// The one profile `id` names: its UUID, its D-Bus path, or its id (connection.id). Two
/// profiles with that id are an error that lists their UUIDs (exit 2); none is exit 10, with
/// the nearest id when one is close.
pub(crate) async fn find_entry(conn: &zbus::Connection, id: &str) -> anyhow::Result<Entry> {
    let all = entries(conn).await?;
    pick(all, id)
}

fn pick(all: Vec<Entry>, id: &str) -> anyhow::Result<Entry> {
    if let Some(i) = all
        .iter()
        .position(|e| e.uuid.eq_ignore_ascii_case(id) || e.path.as_str() == id)
    {
        return Ok(all.into_iter().nth(i).expect("found"));
    }
    let ids: Vec<String> = all.iter().map(|e| e.id.clone()).collect();
    let mut same: Vec<Entry> = all.into_iter().filter(|e| e.id == id).collect();
    match same.len() {
        1 => Ok(same.remove(0)),
        0 => {
            let near = ids
                .iter()
                .map(|n| (strsim::jaro_winkler(n, id), n))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let hint = match near {
                Some((_, n)) => format!("; did you mean '{n}'?"),
                None => String::new(),
            };
            Err(fail(
                Exit::NotFound,
                format!("unknown connection '{id}' (no profile has that id or UUID){hint}"),
            ))
        }
        _ => {
            same.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
            let list: Vec<String> = same
                .iter()
                .map(|e| format!("{} ({})", e.uuid, e.type_name()))
                .collect();
            Err(fail(
                Exit::Usage,
                format!(
                    "'{id}' is ambiguous: {} profiles have that id: {}; name one by its UUID",
                    same.len(),
                    list.join(", ")
                ),
            ))
        }
    }
}

/// The profile `id` names (see [`find_entry`]); one of a type tinynm does not edit is an
/// error saying so.
pub(crate) async fn find(
    conn: &zbus::Connection,
    id: &str,
) -> anyhow::Result<(OwnedObjectPath, Profile)> {
    let e = find_entry(conn, id).await?;
    match e.profile {
        Some(p) => Ok((e.path, p)),
        None => Err(fail(
            Exit::Usage,
            format!(
                "'{}' is a {} profile: tinynm edits VPN and wired profiles only",
                e.id,
                e.type_name()
            ),
        )),
    }
}

/// An active connection.
pub(crate) struct ActiveInfo {
    pub path: OwnedObjectPath,
    /// Its profile's path.
    pub profile: OwnedObjectPath,
    pub state: u32,
    pub vpn: bool,
    /// Its devices' interface names.
    pub devices: Vec<String>,
}

/// Every active connection (one that goes meanwhile is left out).
pub(crate) async fn actives(conn: &zbus::Connection) -> anyhow::Result<Vec<ActiveInfo>> {
    use zbus::proxy::CacheProperties;
    let m = ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let mut out = Vec::new();
    for path in m.active_connections().await? {
        let a = ActiveProxy::builder(conn)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let (Ok(profile), Ok(state)) = (a.connection().await, a.state().await) else {
            continue;
        };
        let mut devices = Vec::new();
        for d in a.devices().await.unwrap_or_default() {
            let dev = DeviceProxy::builder(conn)
                .path(d)
                .cache_properties(CacheProperties::No)
                .build()
                .await?;
            if let Ok(i) = dev.interface().await {
                devices.push(i);
            }
        }
        out.push(ActiveInfo {
            path,
            profile,
            state,
            vpn: a.vpn().await.unwrap_or(false),
            devices,
        });
    }
    Ok(out)
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
