//! `tinynm connection up` (following each VPN state) and `down`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use tinynm_client::{ActiveProxy, ManagerProxy};
use tinynm_config::nm::{Reason, VpnState};
use zbus::{MatchRule, MessageStream};

use super::find;
use crate::agent;

/// `tinynm connection up`
#[derive(Args, Debug)]
pub struct UpArgs {
    /// id or UUID.
    pub id: String,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub wait: u64,
    /// Ask on the terminal (no echo) for the secrets the VPN needs.
    #[arg(long, conflicts_with = "secrets_file")]
    pub ask: bool,
    /// Give the secrets the VPN needs from this file (`vpn.secrets.KEY:VALUE` lines).
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
}

/// `tinynm connection up`.
pub async fn run_up(conn: &zbus::Connection, a: UpArgs) -> anyhow::Result<()> {
    let UpArgs {
        id,
        wait,
        ask,
        secrets_file,
    } = a;
    // The agent answers for this activation only: it goes with this process.
    if let Some(f) = &secrets_file {
        let map = agent::read_secrets_file(f)?;
        agent::register(conn, agent::Source::File(map), "tinynm-connect").await?;
    } else if ask {
        agent::register(conn, agent::Source::Terminal, "tinynm-connect").await?;
    }
    follow_up(conn, &id, Duration::from_secs(wait)).await
}

/// `tinynm connection down`
#[derive(Args, Debug)]
pub struct DownArgs {
    /// id or UUID.
    pub id: String,
}

/// `tinynm connection down`.
pub async fn run_down(conn: &zbus::Connection, a: DownArgs) -> anyhow::Result<()> {
    let id = a.id.as_str();
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

/// Activates and prints every VPN state until the end; the exit code says how it ended.
pub async fn follow_up(conn: &zbus::Connection, id: &str, wait: Duration) -> anyhow::Result<()> {
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
