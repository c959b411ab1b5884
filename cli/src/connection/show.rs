//! `tinynm connection list` and `show`.

use anyhow::Context;
use clap::Args;
use tinynm_client::SettingsConnectionProxy;

use super::{find, json_of, profiles};

/// `tinynm connection list`
#[derive(Args, Debug)]
pub struct ListArgs {
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `tinynm connection list`.
pub async fn run_list(conn: &zbus::Connection, a: ListArgs) -> anyhow::Result<()> {
    let ListArgs { json } = a;
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

/// `tinynm connection show`
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// id or UUID.
    pub id: String,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Include the stored secrets (asks tinynmd's GetSecrets: needs the right to).
    #[arg(long)]
    pub show_secrets: bool,
}

/// `tinynm connection show`.
pub async fn run_show(conn: &zbus::Connection, a: ShowArgs) -> anyhow::Result<()> {
    let ShowArgs {
        id,
        json,
        show_secrets,
    } = a;
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
