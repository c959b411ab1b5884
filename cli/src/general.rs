//! `tinynm general [status|permissions]`: the daemon as nmcli's `general` shows it.

use clap::Subcommand;
use tinynm_client::ManagerProxy;
use zbus::proxy::CacheProperties;

use crate::names;
use crate::out::{Out, Table};

/// `tinynm general …`
#[derive(Subcommand, Debug, Default)]
pub enum GeneralCmd {
    /// The overall state (the default): STATE, CONNECTIVITY, STARTUP, NETWORKING, VERSION,
    /// and how many connections and VPNs are up.
    #[default]
    Status,
    /// What you may do: each of NM's permissions and yes, no or auth.
    Permissions,
}

/// Runs one `general` subcommand.
pub async fn run(conn: &zbus::Connection, c: GeneralCmd, out: Out) -> anyhow::Result<()> {
    let m = ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    match c {
        GeneralCmd::Status => {
            let state = m.state().await?;
            let acts = crate::connection::actives(conn).await?;
            let up = acts.iter().filter(|a| a.state == 2).count();
            let vpns = acts.iter().filter(|a| a.vpn && a.state == 2).count();
            let mut t = Table::new(&[
                "STATE",
                "CONNECTIVITY",
                "STARTUP",
                "NETWORKING",
                "ACTIVE",
                "VPNS",
                "VERSION",
            ]);
            t.state_column = Some(0);
            t.row(vec![
                names::nm_state(state).into(),
                names::connectivity(m.connectivity().await.unwrap_or(0)).into(),
                if m.startup().await.unwrap_or(false) {
                    "starting".into()
                } else {
                    "started".into()
                },
                if m.networking_enabled().await.unwrap_or(true) {
                    "enabled".into()
                } else {
                    "disabled".into()
                },
                up.to_string(),
                vpns.to_string(),
                m.version().await.unwrap_or_default(),
            ]);
            if out.json {
                // One object, not a list of one.
                let v = t.json();
                println!("{}", serde_json::to_string_pretty(&v[0])?);
            } else {
                t.print(out);
            }
        }
        GeneralCmd::Permissions => {
            let mut p: Vec<(String, String)> = m.get_permissions().await?.into_iter().collect();
            p.sort();
            if out.json {
                let v: serde_json::Map<_, _> = p.into_iter().map(|(k, v)| (k, v.into())).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let mut t = Table::new(&["PERMISSION", "VALUE"]);
                for (k, v) in p {
                    t.row(vec![k, v]);
                }
                t.print(out);
            }
        }
    }
    Ok(())
}
