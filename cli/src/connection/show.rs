//! `tinynm connection list` and `show`.

use anyhow::Context;
use clap::Args;
use tinynm_client::SettingsConnectionProxy;

use super::{ActiveInfo, Entry, actives, entries, find_entry, json_of};
use crate::names;
use crate::out::{Fields, Out, Table};

/// `tinynm connection list`
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only the active ones.
    #[arg(long)]
    pub active: bool,
}

/// `tinynm connection list`: a row per profile, the active ones first (nmcli's order).
pub async fn run_list(conn: &zbus::Connection, a: ListArgs, out: Out) -> anyhow::Result<()> {
    let only_active = a.active;
    let all = entries(conn).await?;
    let act = actives(conn).await?;
    let active_of = |e: &Entry| act.iter().find(|a| a.profile == e.path);
    let mut rows: Vec<(&Entry, Option<&ActiveInfo>)> = all
        .iter()
        .map(|e| (e, active_of(e)))
        .filter(|(_, a)| !only_active || a.is_some())
        .collect();
    rows.sort_by_key(|(_, a)| a.is_none());
    if out.json {
        let v: Vec<_> = rows.iter().map(|(e, a)| entry_json(e, *a)).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut t = Table::new(&["NAME", "UUID", "TYPE", "DEVICE", "STATE"]);
    t.state_column = Some(4);
    for (e, a) in rows {
        t.row(vec![
            e.id.clone(),
            e.uuid.clone(),
            e.type_name().to_string(),
            device_of(a),
            a.map_or("--", |a| names::ac_state(a.state)).to_string(),
        ]);
    }
    t.print(out);
    Ok(())
}

fn device_of(a: Option<&ActiveInfo>) -> String {
    match a {
        Some(a) if !a.devices.is_empty() => a.devices.join(","),
        _ => "--".into(),
    }
}

/// A profile in `--json`: [`json_of`]'s fields (or only path, id, uuid and type for a profile
/// tinynm does not edit), and `active`: null, or {path, state, devices}.
fn entry_json(e: &Entry, a: Option<&ActiveInfo>) -> serde_json::Value {
    let mut j = match &e.profile {
        Some(p) => json_of(&e.path, p),
        None => serde_json::json!({
            "path": e.path.as_str(), "id": e.id, "uuid": e.uuid, "type": e.kind,
        }),
    };
    j["active"] = match a {
        Some(a) => serde_json::json!({
            "path": a.path.as_str(),
            "state": names::ac_state(a.state),
            "devices": a.devices,
        }),
        None => serde_json::Value::Null,
    };
    j
}

/// `tinynm connection show`
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// id, UUID or D-Bus path (none: list the profiles, as `list`).
    pub id: Option<String>,
    /// Without a name: only the active ones.
    #[arg(long, conflicts_with = "id")]
    pub active: bool,
    /// Include the stored secrets (asks tinynmd's GetSecrets: needs the right to).
    #[arg(long, requires = "id")]
    pub show_secrets: bool,
}

/// `tinynm connection show`: the profile as TOML (`-t`: NM's `setting.property:value` lines;
/// `--json`: the object `list --json` gives), then its active state when active.
pub async fn run_show(conn: &zbus::Connection, a: ShowArgs, out: Out) -> anyhow::Result<()> {
    let ShowArgs {
        id,
        active,
        show_secrets,
    } = a;
    let Some(id) = id else {
        return run_list(conn, ListArgs { active }, out).await;
    };
    let mut e = find_entry(conn, &id).await?;
    let act = actives(conn).await?;
    let a = act.iter().find(|a| a.profile == e.path);
    let mut secrets = std::collections::BTreeMap::new();
    if show_secrets {
        let c = SettingsConnectionProxy::builder(conn)
            .path(e.path.clone())
            .build()
            .await?;
        let setting = if e.kind == "vpn" { "vpn" } else { &e.kind };
        let d = c
            .get_secrets(setting)
            .await
            .with_context(|| format!("cannot read the secrets of '{id}'"))?;
        if let Some(v) = d.get("vpn").and_then(|v| v.get("secrets")) {
            let m: std::collections::HashMap<String, String> = v.try_clone()?.try_into()?;
            secrets.extend(m);
        }
    }
    if let Some(p) = &mut e.profile {
        p.vpn.secrets.clear();
        p.vpn.secrets.extend(secrets.clone());
    }
    if out.json {
        let mut j = entry_json(&e, a);
        if show_secrets {
            j["secrets"] = serde_json::json!(secrets);
        }
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    let mut f = dict_fields(&e.dict);
    if show_secrets {
        f.extend(
            secrets
                .iter()
                .map(|(k, v)| (format!("vpn.secrets.{k}"), v.clone())),
        );
    }
    if let Some(a) = a {
        f.push(("GENERAL.STATE".into(), names::ac_state(a.state).into()));
        f.push(("GENERAL.DEVICES".into(), device_of(Some(a))));
        f.push(("GENERAL.DBUS-PATH".into(), a.path.to_string()));
    }
    match (&e.profile, out.terse) {
        (Some(p), false) => {
            print!("{}", tinynm_config::toml_profile::to_toml_string(p));
            if let Some(a) = a {
                println!(
                    "# active: {} on {} ({})",
                    names::ac_state(a.state),
                    device_of(Some(a)),
                    a.path
                );
            }
        }
        _ => print!("{}", Fields(f).render(out)),
    }
    Ok(())
}

/// A settings dict as `setting.property` and its value, sorted.
fn dict_fields(d: &tinynm_client::SettingsDict) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = d
        .iter()
        .flat_map(|(s, props)| {
            props
                .iter()
                .flat_map(move |(k, v)| {
                    // vpn.data and vpn.secrets: a line per item, as nmcli's `vpn.data: k = v, …`
                    // is hard to read back.
                    if let Ok(m) =
                        std::collections::HashMap::<String, String>::try_from(v.try_clone().ok()?)
                    {
                        let mut m: Vec<_> = m.into_iter().collect();
                        m.sort();
                        return Some(
                            m.into_iter()
                                .map(|(dk, dv)| (format!("{s}.{k}.{dk}"), dv))
                                .collect::<Vec<_>>(),
                        );
                    }
                    Some(vec![(format!("{s}.{k}"), value_text(v))])
                })
                .flatten()
        })
        .collect();
    f.sort();
    f
}

/// A value as text: strings bare, booleans yes/no, string lists comma-separated, the rest in
/// GVariant's text form.
fn value_text(v: &zbus::OwnedVariant) -> String {
    let c = || v.try_clone().ok();
    if let Some(s) = c().and_then(|v| String::try_from(v).ok()) {
        return s;
    }
    if let Some(b) = c().and_then(|v| bool::try_from(v).ok()) {
        return if b { "yes" } else { "no" }.into();
    }
    if let Some(l) = c().and_then(|v| Vec::<String>::try_from(v).ok()) {
        return l.join(",");
    }
    format!("{}", **v)
}
