//! `tinynm wait-online`: NetworkManager's `nm-online` for tinynmd: waits until the daemon is
//! connected (NM's `State` CONNECTED_LOCAL or better; with `--vpn`, a VPN ACTIVATED as well),
//! for container health checks and for a dependent container's start. Exit 0 once it is,
//! 1 when the time ran out (nm-online's codes), 2 on any other error.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tinynm_client::{ActiveProxy, ManagerProxy};
use tokio::time::Instant;
use zbus::proxy::CacheProperties;

/// `NM_STATE_CONNECTED_LOCAL`: the lowest of the connected states.
const CONNECTED_LOCAL: u32 = 50;
/// `NM_ACTIVE_CONNECTION_STATE_ACTIVATED`.
const ACTIVATED: u32 = 2;

/// Whether the wait is over: connected, and with `vpn`, a VPN up.
async fn online(conn: &zbus::Connection, vpn: bool) -> zbus::Result<bool> {
    let m = ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    if m.state().await? < CONNECTED_LOCAL {
        return Ok(false);
    }
    if !vpn {
        return Ok(true);
    }
    for path in m.active_connections().await? {
        let a = ActiveProxy::builder(conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        // One that went meanwhile is simply not up.
        if a.vpn().await.unwrap_or(false) && a.state().await.unwrap_or(0) == ACTIVATED {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Waits up to `limit`; whether it is online. The bus is tried again until it is there (the
/// daemon may start after the caller, as a dependent container may).
pub async fn wait(
    address: Option<&str>,
    vpn: bool,
    limit: Duration,
    call_timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + limit;
    let conn = loop {
        match crate::connect(address, call_timeout).await {
            Ok(c) => break c,
            Err(_) if Instant::now() + Duration::from_millis(200) < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    };
    // Listening before looking: a change between the look and the wait is not missed.
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path_namespace("/org/freedesktop/NetworkManager")
        .build()?;
    let mut signals = zbus::MessageStream::for_match_rule(rule, &conn, None)
        .await
        .context("cannot watch NetworkManager's signals")?;
    // The daemon's arrival on the bus comes from the bus, not from it.
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let mut arrivals = dbus
        .receive_name_owner_changed_with_args(&[(0, "org.freedesktop.NetworkManager")])
        .await?;
    loop {
        // NetworkManager not on the bus yet is not online yet.
        if online(&conn, vpn).await.unwrap_or(false) {
            return Ok(true);
        }
        // Each signal from the daemon, or its arrival, is a reason to look again.
        let woke = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                _ = signals.next() => {},
                _ = arrivals.next() => {},
            }
        });
        if woke.await.is_err() {
            return Ok(false);
        }
    }
}
