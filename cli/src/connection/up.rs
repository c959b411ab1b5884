//! `tinynm connection up` (following each state) and `down` (waiting until it is gone).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use tinynm_client::ManagerProxy;
use tinynm_config::nm::{Reason, VpnState};
use zbus::{MatchRule, MessageStream};

use super::{actives, find_entry};
use crate::agent;
use crate::names;
use crate::out::{Exit, Out, fail};

/// nmcli's default wait for `up`.
const UP_WAIT: u64 = 90;
/// nmcli's default wait for `down`.
const DOWN_WAIT: u64 = 10;

/// `tinynm connection up`
#[derive(Args, Debug)]
pub struct UpArgs {
    /// id, UUID or D-Bus path.
    pub id: String,
    /// Ask on the terminal (no echo) for the secrets the VPN needs.
    #[arg(long, conflicts_with = "secrets_file")]
    pub ask: bool,
    /// Give the secrets the VPN needs from this file (`vpn.secrets.KEY:VALUE` lines).
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
}

/// `tinynm connection up`.
pub async fn run_up(
    conn: &zbus::Connection,
    a: UpArgs,
    out: Out,
    wait: Option<u64>,
) -> anyhow::Result<()> {
    let UpArgs {
        id,
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
    follow_up(conn, &id, Duration::from_secs(wait.unwrap_or(UP_WAIT)), out).await
}

/// `tinynm connection down`
#[derive(Args, Debug)]
pub struct DownArgs {
    /// id, UUID or D-Bus path.
    pub id: String,
}

/// `tinynm connection down`: deactivates, then waits (`--wait`, 10 s) until it is gone.
pub async fn run_down(
    conn: &zbus::Connection,
    a: DownArgs,
    out: Out,
    wait: Option<u64>,
) -> anyhow::Result<()> {
    let e = find_entry(conn, &a.id).await?;
    let manager = ManagerProxy::new(conn).await?;
    let Some(ac) = actives(conn)
        .await?
        .into_iter()
        .find(|x| x.profile == e.path)
    else {
        return Err(fail(
            Exit::Deactivation,
            format!("'{}' is not an active connection", e.id),
        ));
    };
    // Subscribe first: the end cannot be missed.
    let mut removed = ac_signals(conn, "StateChanged").await?;
    manager
        .deactivate_connection(&ac.path)
        .await
        .map_err(|err| {
            crate::out::call_failed(
                err,
                Exit::Deactivation,
                format!("cannot deactivate '{}'", e.id),
            )
        })?;
    let limit = Duration::from_secs(wait.unwrap_or(DOWN_WAIT));
    if !limit.is_zero() {
        let gone = async {
            while let Some(Ok(m)) = removed.next().await {
                if m.header().path().map(|x| x.as_str()) == Some(ac.path.as_str()) {
                    let (state, _): (u32, u32) = m.body().deserialize()?;
                    if state == 4 {
                        return Ok(());
                    }
                }
            }
            anyhow::bail!("the bus connection closed")
        };
        tokio::time::timeout(limit, gone).await.map_err(|_| {
            fail(
                Exit::Timeout,
                format!(
                    "'{}' is still deactivating after {} s (--wait)",
                    e.id,
                    limit.as_secs()
                ),
            )
        })??;
    }
    if out.json {
        let v = serde_json::json!({"id": e.id, "uuid": e.uuid, "active-path": ac.path.as_str(), "state": "deactivated"});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "Connection '{}' successfully deactivated (D-Bus active path: {})",
            e.id, ac.path
        );
    }
    Ok(())
}

/// The stream of one signal of `Connection.Active` (`StateChanged`) or of
/// `VPN.Connection` (`VpnStateChanged`).
async fn ac_signals(conn: &zbus::Connection, member: &str) -> anyhow::Result<MessageStream> {
    let iface = if member == "VpnStateChanged" {
        "org.freedesktop.NetworkManager.VPN.Connection"
    } else {
        "org.freedesktop.NetworkManager.Connection.Active"
    };
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(iface)
        .member(member)
        .build()?;
    Ok(MessageStream::for_match_rule(rule, conn, None).await?)
}

/// The last line the plugin of the profile's failed VPN wrote (tinynmd's
/// `org.tinynm.Settings.PluginLog`; `None` from NetworkManager, or when it wrote nothing).
async fn plugin_said(conn: &zbus::Connection, uuid: &str) -> Option<String> {
    let p = tinynm_client::TinynmSettingsProxy::new(conn).await.ok()?;
    p.plugin_log(uuid).await.ok()?.last().cloned()
}

/// Prints the states as they come: on a terminal one line, rewritten, with the time taken;
/// otherwise a plain line per state (`VPN state: NAME`, as before).
struct Progress {
    tty: bool,
    json: bool,
    started: Instant,
    states: Vec<String>,
}

impl Progress {
    fn state(&mut self, id: &str, s: &str) {
        self.states.push(s.to_string());
        if self.json {
            return;
        }
        if self.tty {
            use std::io::Write;
            print!(
                "\r\x1b[K{id}: {s} ({:.1} s)",
                self.started.elapsed().as_secs_f32()
            );
            let _ = std::io::stdout().flush();
        } else {
            println!("{s}");
        }
    }

    fn end(&self) {
        if self.tty && !self.json {
            println!();
        }
    }
}

/// Activates and prints every state until the end; the exit code says how it ended (4: the
/// activation failed, 3: `--wait` ran out).
pub async fn follow_up(
    conn: &zbus::Connection,
    id: &str,
    wait: Duration,
    out: Out,
) -> anyhow::Result<()> {
    let e = find_entry(conn, id).await?;
    let vpn = e.kind == "vpn";
    // Subscribe before activating: no state change can be missed.
    let mut stream = ac_signals(
        conn,
        if vpn {
            "VpnStateChanged"
        } else {
            "StateChanged"
        },
    )
    .await?;
    let root = zbus::ObjectPath::try_from("/")?;
    let ac = ManagerProxy::new(conn)
        .await?
        .activate_connection(&e.path, &root, &root)
        .await
        .map_err(|err| {
            crate::out::call_failed(err, Exit::Activation, format!("cannot activate '{}'", e.id))
        })?;
    if wait.is_zero() {
        if out.json {
            let v = serde_json::json!({"id": e.id, "uuid": e.uuid, "active-path": ac.as_str(), "state": "activating"});
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!("Connection activation started (D-Bus active path: {ac})");
        }
        return Ok(());
    }
    let mut progress = Progress {
        tty: std::io::stdout().is_terminal(),
        json: out.json,
        started: Instant::now(),
        states: Vec::new(),
    };
    let follow = async {
        while let Some(Ok(m)) = stream.next().await {
            if m.header().path().map(|x| x.as_str()) != Some(ac.as_str()) {
                continue;
            }
            let (state, reason): (u32, u32) = m.body().deserialize()?;
            let (up, down, text) = if vpn {
                let st = VpnState::from_u32(state);
                (
                    st == VpnState::Activated,
                    matches!(st, VpnState::Failed | VpnState::Disconnected),
                    format!("VPN state: {}", st.name()),
                )
            } else {
                (
                    state == 2,
                    state == 4,
                    format!("state: {}", names::ac_state(state)),
                )
            };
            progress.state(&e.id, &text);
            if up {
                return Ok(());
            }
            if down {
                let said = match plugin_said(conn, &e.uuid).await {
                    Some(l) => format!("\nThe plugin's last line: {l}"),
                    None => String::new(),
                };
                return Err(fail(
                    Exit::Activation,
                    format!(
                        "Connection activation failed: {}{said}",
                        Reason::from_u32(reason).nmcli_text()
                    ),
                ));
            }
        }
        anyhow::bail!("the bus connection closed")
    };
    let r = tokio::time::timeout(wait, follow)
        .await
        .unwrap_or_else(|_| {
            Err(fail(
                Exit::Timeout,
                format!(
                    "timed out after {} s waiting for '{}' (--wait)",
                    wait.as_secs(),
                    e.id
                ),
            ))
        });
    progress.end();
    r?;
    if out.json {
        let v = serde_json::json!({
            "id": e.id, "uuid": e.uuid, "active-path": ac.as_str(),
            "state": "activated", "states": progress.states,
            "seconds": progress.started.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("Connection successfully activated (D-Bus active path: {ac})");
    }
    Ok(())
}
