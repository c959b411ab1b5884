//! `tinynm demo`: the whole job in a throwaway world — its own network namespace (with a
//! parent network), its own bus, its own tinynmd and the test-bench plugin.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tinynm_client::{ManagerProxy, SettingsProxy};
use tinynm_config::Profile;
use tinynm_config::nm::{Reason, VpnState};
use tinynm_sandbox::{Bus, Daemon, DaemonOptions, Kernel, Netns};
use zbus::{MatchRule, MessageStream};

fn diff(base: &Kernel, now: &Kernel) -> (Vec<String>, Vec<String>) {
    let addrs = now
        .addresses
        .iter()
        .filter(|a| !base.addresses.contains(a))
        .cloned()
        .collect();
    let routes = now
        .routes
        .iter()
        .filter(|r| !base.routes.contains(r))
        .cloned()
        .collect();
    (addrs, routes)
}

fn print_kernel(title: &str, base: &Kernel, now: &Kernel) {
    let (addrs, routes) = diff(base, now);
    println!("{title}");
    if addrs.is_empty() && routes.is_empty() {
        println!("  (nothing: the kernel is as it was before the VPN)");
    }
    for a in addrs {
        println!("  address {a}");
    }
    // The VPN's own routes first, then what it put on the parent; at most 20 lines of each.
    const SHOWN: usize = 20;
    for r in routes.iter().take(SHOWN) {
        println!("  route   {r}");
    }
    if routes.len() > SHOWN {
        println!("  … and {} more routes", routes.len() - SHOWN);
    }
}

/// Runs the demo; Ctrl-C (or SIGTERM) at any point still cleans everything up.
pub async fn run(routes: u32, hold: u64) -> anyhow::Result<()> {
    tinynm_sandbox::require_root("tinynm demo")?;
    use tokio::signal::unix::{SignalKind, signal};
    // Installed first, so that an interrupt during set-up is ours to handle too.
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let r = tokio::select! {
        r = world(routes, hold) => r,
        _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
    };
    // Whatever happened, the world future has been dropped by now: tinynmd stopped (taking
    // its VPNs down), the bus stopped, the namespace gone.
    println!("Cleaned up: tinynmd stopped, bus stopped, namespace gone.");
    r
}

async fn world(routes: u32, hold: u64) -> anyhow::Result<()> {
    println!(
        "Setting up: a network namespace with a parent network (veth0 10.99.0.2/24, default via 10.99.0.1)"
    );
    let ns = Netns::new()?;
    ns.add_parent()?;
    let bus = Bus::start()?;
    println!("Private bus: {}", bus.address);
    let daemon = Daemon::start(
        &ns,
        &bus,
        DaemonOptions {
            log_level: "info".into(),
            ..Default::default()
        },
    )
    .await?;
    println!(
        "tinynmd running (pid {}) in the namespace, owning org.freedesktop.NetworkManager",
        daemon.pid()
    );
    let r = job(&ns, &bus, routes, hold).await;
    if r.is_err() {
        eprintln!("--- tinynmd's log ---\n{}", daemon.log_text());
    }
    // In this order: tinynmd (takes its VPNs down over the bus), the bus, the namespace.
    drop(daemon);
    drop(bus);
    drop(ns);
    r
}

async fn job(ns: &Netns, bus: &Bus, routes: u32, hold: u64) -> anyhow::Result<()> {
    let conn = bus.connect().await?;
    let base = ns.snapshot()?;
    let mut p = Profile::new_vpn(
        "demo-vpn",
        "9f1c2a60-6d0e-4b0a-9d1e-5e2f0c7d4a11",
        "org.freedesktop.NetworkManager.testbench",
    );
    p.connection.autoconnect = false;
    for (k, v) in [
        ("tundev", "demo0".to_string()),
        ("address", "10.8.0.2".into()),
        ("peer", "10.8.0.1".into()),
        ("gateway", "192.0.2.1".into()),
        ("mtu", "1400".into()),
        ("routes", "10.50.0.0/16,10.60.0.0/16 via 10.8.0.1".into()),
        ("route-count", routes.to_string()),
    ] {
        p.vpn.data.insert(k.into(), v);
    }
    let path = SettingsProxy::new(&conn)
        .await?
        .add_connection_unsaved(tinynm_config::dbus::to_dict(&p, true))
        .await
        .context("AddConnectionUnsaved")?;
    println!("Profile 'demo-vpn' added at {path}");

    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path_namespace("/org/freedesktop/NetworkManager/ActiveConnection")
        .build()?;
    let mut signals = MessageStream::for_match_rule(rule, &conn, None).await?;
    let root = zbus::ObjectPath::try_from("/")?;
    let manager = ManagerProxy::new(&conn).await?;
    let ac = manager.activate_connection(&path, &root, &root).await?;
    println!("Activating: {ac}");
    let end = tokio::time::timeout(
        Duration::from_secs(60),
        wait_end(
            &mut signals,
            ac.as_str(),
            &[
                VpnState::Activated,
                VpnState::Failed,
                VpnState::Disconnected,
            ],
        ),
    )
    .await
    .context("the VPN did not finish activating within 60 s")??;
    if end != VpnState::Activated {
        anyhow::bail!("the VPN did not come up");
    }
    print_kernel(
        "In the kernel now (compared with before):",
        &base,
        &ns.snapshot()?,
    );
    if let Some(l) = ns.snapshot()?.link("demo0") {
        println!(
            "  link    demo0 {} mtu {}",
            if l.up { "UP" } else { "DOWN" },
            l.mtu
        );
    }
    if hold > 0 {
        println!("Holding the VPN up for {hold} s (Ctrl-C cleans up at any time)");
        tokio::time::sleep(Duration::from_secs(hold)).await;
    }
    println!("Deactivating");
    manager.deactivate_connection(&ac).await?;
    tokio::time::timeout(
        Duration::from_secs(30),
        wait_end(
            &mut signals,
            ac.as_str(),
            &[VpnState::Failed, VpnState::Disconnected],
        ),
    )
    .await
    .context("the VPN did not go down within 30 s")??;
    print_kernel("In the kernel after deactivation:", &base, &ns.snapshot()?);
    let (a, r) = diff(&base, &ns.snapshot()?);
    if !a.is_empty() || !r.is_empty() {
        anyhow::bail!(
            "tinynmd left {} addresses and {} routes behind",
            a.len(),
            r.len()
        );
    }
    Ok(())
}

/// Prints the connection's signals until its VPN state is one of `want`.
async fn wait_end(
    signals: &mut MessageStream,
    ac: &str,
    want: &[VpnState],
) -> anyhow::Result<VpnState> {
    while let Some(Ok(m)) = signals.next().await {
        let h = m.header();
        if h.path().map(|p| p.as_str()) != Some(ac) {
            continue;
        }
        match h.member().map(|m| m.to_string()).as_deref() {
            Some("VpnStateChanged") => {
                let (s, r): (u32, u32) = m.body().deserialize()?;
                let st = VpnState::from_u32(s);
                println!(
                    "  VPN state {:<13} reason {} ({})",
                    st.name(),
                    r,
                    Reason::from_u32(r).nmcli_text()
                );
                if want.contains(&st) {
                    return Ok(st);
                }
            }
            Some("StateChanged") => {
                let (s, r): (u32, u32) = m.body().deserialize()?;
                let name = [
                    "UNKNOWN",
                    "ACTIVATING",
                    "ACTIVATED",
                    "DEACTIVATING",
                    "DEACTIVATED",
                ]
                .get(s as usize)
                .copied()
                .unwrap_or("?");
                println!("  active connection {name:<12} reason {r}");
            }
            _ => {}
        }
    }
    anyhow::bail!("the bus closed")
}
