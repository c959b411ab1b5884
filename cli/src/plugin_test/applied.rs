//! `applied`: the plugin run by a tinynmd of the world's own (the one beside this `tinynm`),
//! as a user's activation runs it; the kernel must then hold exactly what its configs say (the
//! address and routes on the tunnel, a default route unless `never-default`), and nothing of
//! it once the VPN is down.

use tinynm_config::dbus::to_dict;
use tinynm_sandbox::{Daemon, DaemonOptions, Kernel};
use zbus::OwnedObjectPath;

use super::world::*;
use super::*;

const NM: &str = "org.freedesktop.NetworkManager";
/// NM's VPN connection states: ACTIVATED, FAILED, DISCONNECTED.
const ACTIVATED: u32 = 5;
const FAILED: u32 = 6;
const DISCONNECTED: u32 = 7;

/// A tinynmd of the world's own (the one beside this `tinynm`, and its test bench), whose
/// plugin for the service is the plugin under test.
pub(super) async fn start_daemon(w: &World<'_>) -> anyhow::Result<Daemon> {
    let here = std::env::current_exe()?;
    let dir = here.parent().map(Path::to_path_buf).unwrap_or_default();
    if !dir.join("tinynmd").is_file() || !dir.join("tinynm-testbench").is_file() {
        bail!(
            "no tinynmd (and tinynm-testbench) beside {}",
            here.display()
        );
    }
    let opts = DaemonOptions {
        binary_dir: Some(dir),
        private_run: true,
        log_level: "info".into(),
        ..Default::default()
    };
    let daemon = Daemon::start(&w.ns, &w.bus, opts)
        .await
        .map_err(|e| anyhow::anyhow!("tinynmd did not start: {e}"))?;
    // The plugin under test, and no other for its service.
    for e in std::fs::read_dir(&daemon.plugin_dir)?.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if tinynm_config::namefile::parse(&text, &e.path())
            .is_some_and(|i| i.serves(&w.info.service))
        {
            std::fs::remove_file(e.path())?;
        }
    }
    std::fs::copy(
        &w.info.file,
        daemon.plugin_dir.join("plugin-under-test.name"),
    )?;
    Ok(daemon)
}

/// A secret agent answering from the secrets given, as a user's session would have one: for
/// plugins that ask again (SecretsRequired) through tinynmd.
async fn secret_agent(w: &World<'_>) -> anyhow::Result<zbus::Connection> {
    let agent = w.bus.connect().await?;
    crate::agent::register(
        &agent,
        crate::agent::Source::File(w.profile.vpn.secrets.clone().into_iter().collect()),
        "tinynm-plugin-test",
    )
    .await?;
    Ok(agent)
}

/// Adds the profile to tinynmd (unsaved); its object path.
pub(super) async fn add_profile(w: &World<'_>) -> anyhow::Result<OwnedObjectPath> {
    Ok(w.conn
        .call_method(
            Some(NM),
            "/org/freedesktop/NetworkManager/Settings",
            Some("org.freedesktop.NetworkManager.Settings"),
            "AddConnectionUnsaved",
            &(to_dict(&w.profile, true),),
        )
        .await?
        .body()
        .deserialize()?)
}

/// `--keep`: the world stays up, with a tinynmd holding the profile, until SIGINT or SIGTERM;
/// how to enter it is printed (to stderr).
pub(super) async fn keep(w: &mut World<'_>) -> anyhow::Result<()> {
    w.refresh_secrets()?;
    let daemon = start_daemon(w).await?;
    add_profile(w).await?;
    let agent = secret_agent(w).await?;
    let pid = daemon.pid();
    eprintln!(
        "plugin-test: the world is kept until Ctrl-C (or SIGTERM):\n  \
         bus:       DBUS_SYSTEM_BUS_ADDRESS={addr}\n  \
         nmcli:     DBUS_SYSTEM_BUS_ADDRESS={addr} nmcli connection up plugin-test\n  \
         namespace: nsenter --net=/proc/{pid}/ns/net ip address\n  \
         tinynmd's log: {log}",
        addr = w.bus.address,
        log = daemon.log.display(),
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop((agent, daemon));
    Ok(())
}

pub(super) async fn applied(c: &mut Checks, w: &mut World<'_>) -> anyhow::Result<()> {
    let daemon = match start_daemon(w).await {
        Ok(d) => d,
        Err(e) => {
            c.skip("applied", e.to_string());
            return Ok(());
        }
    };
    w.refresh_secrets()?;
    // A secret agent with the secrets given, as a user's session would have: for the
    // plugins that ask again (SecretsRequired) through tinynmd.
    let _agent = secret_agent(w).await?;
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .build()?;
    let mut stream = MessageStream::for_match_rule(rule, &w.conn, None).await?;
    let base = w.ns.snapshot()?;
    let path = add_profile(w).await?;
    let root = zbus::ObjectPath::try_from("/")?;
    let ac: OwnedObjectPath = match w
        .conn
        .call_method(
            Some(NM),
            "/org/freedesktop/NetworkManager",
            Some(NM),
            "ActivateConnection",
            &(&path, &root, &root),
        )
        .await
    {
        Ok(r) => r.body().deserialize()?,
        Err(e) => {
            c.put(
                "applied",
                false,
                format!("tinynmd refused the activation: {e}"),
            );
            return Ok(());
        }
    };
    // The configs the plugin sends tinynmd, and the VPN's state.
    let mut seen: Vec<Sig> = Vec::new();
    let end = tokio::time::Instant::now() + w.connect_timeout + w.five;
    let mut state = (0, 0);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(end, stream.next()).await {
        let h = m.header();
        if h.member().is_some_and(|x| x == "VpnStateChanged")
            && h.path().is_some_and(|p| p.as_str() == ac.as_str())
        {
            state = m.body().deserialize::<(u32, u32)>()?;
            if [ACTIVATED, FAILED, DISCONNECTED].contains(&state.0) {
                break;
            }
        } else if h
            .interface()
            .is_some_and(|i| i == "org.freedesktop.NetworkManager.VPN.Plugin")
            && let Some(s) = sig_of(&m)
        {
            seen.push(s);
        }
    }
    if state.0 != ACTIVATED {
        c.put(
            "applied",
            false,
            format!(
                "tinynmd's VPN state {} (reason {}) instead of ACTIVATED; its log: {}",
                state.0,
                state.1,
                last_lines(&daemon.log_text(), 3)
            ),
        );
        return Ok(());
    }
    let up = w.ns.snapshot()?;
    let mut problems = compare(&base, &up, &seen);
    let mut summary = expected_summary(&seen);
    // --ping: traffic crosses the tunnel.
    for addr in &w.ping {
        let mut ping = std::process::Command::new("ping");
        ping.args(["-c", "1", "-W", "3", addr])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        w.ns.prepare(&mut ping);
        match ping.status() {
            Ok(s) if s.success() => summary.push_str(&format!("; {addr} answered a ping")),
            Ok(_) => problems.push(format!("{addr} did not answer a ping through the VPN")),
            Err(e) => problems.push(format!("cannot run ping: {e}")),
        }
    }
    // Down again: nothing of it may stay.
    let _ = w
        .conn
        .call_method(
            Some(NM),
            "/org/freedesktop/NetworkManager",
            Some(NM),
            "DeactivateConnection",
            &(&ac,),
        )
        .await;
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout_at(tokio::time::Instant::now() + w.five, stream.next()).await
    {
        let h = m.header();
        if h.member().is_some_and(|x| x == "VpnStateChanged")
            && h.path().is_some_and(|p| p.as_str() == ac.as_str())
            && m.body().deserialize::<(u32, u32)>()?.0 == DISCONNECTED
        {
            break;
        }
    }
    let end = Instant::now() + w.five;
    let stayed = loop {
        let stayed = leftovers(&base, &w.ns.snapshot()?);
        if stayed.is_empty() || Instant::now() >= end {
            break stayed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(daemon);
    if problems.is_empty() {
        c.put(
            "applied",
            stayed.is_empty(),
            if stayed.is_empty() {
                format!("tinynmd applied {summary}; the kernel held exactly the configs, and none of it once down")
            } else {
                format!("applied as configured, but after the VPN went down: {}", stayed.join(", "))
            },
        );
    } else {
        c.put("applied", false, problems.join("; "));
    }
    Ok(())
}

fn last_lines(text: &str, n: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(n)..].join(" | ")
}

/// The configs as parsed: the tunnel, and each family's config.
fn configs(seen: &[Sig]) -> (Option<String>, Vec<IpConfig>) {
    let generic = seen.iter().rev().find_map(|s| match s {
        Sig::Config(d) => GenericConfig::parse(d).ok(),
        _ => None,
    });
    let gw = generic.as_ref().and_then(|g| g.gateway);
    let tundev = generic.and_then(|g| g.tundev);
    let mut out = Vec::new();
    for (fam, want) in [(Family::V4, true), (Family::V6, false)] {
        if let Some(cfg) = seen.iter().rev().find_map(|s| match (s, want) {
            (Sig::Ip4(d), true) | (Sig::Ip6(d), false) => {
                IpConfig::parse(d, fam, gw).ok().flatten()
            }
            _ => None,
        }) {
            out.push(cfg);
        }
    }
    (tundev, out)
}

fn expected_summary(seen: &[Sig]) -> String {
    let (tundev, cfgs) = configs(seen);
    let dev = tundev.unwrap_or_else(|| "the parent interface".into());
    cfgs.iter()
        .map(|c| {
            format!(
                "{}/{} on {dev} with {} route(s){}",
                c.address,
                c.prefix,
                c.routes.len(),
                if c.never_default {
                    ""
                } else {
                    " and the default route"
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the kernel lacks of the configs, and what it holds on the tunnel that they do not say.
fn compare(base: &Kernel, up: &Kernel, seen: &[Sig]) -> Vec<String> {
    let (tundev, cfgs) = configs(seen);
    // Without a tundev (a route-based VPN) the config goes on the parent interface.
    let own = tundev.is_some();
    let dev = tundev.unwrap_or_else(|| "the parent interface".into());
    let on_dev = if own {
        format!(" dev {dev}")
    } else {
        " dev ".to_string()
    };
    let mut problems = Vec::new();
    let mut expected_routes: Vec<String> = Vec::new();
    for cfg in &cfgs {
        let a = cfg.address.to_string();
        if !up.addresses.iter().any(|x| {
            x.starts_with(&a)
                && x.contains(&format!("/{}", cfg.prefix))
                && (!own || x.ends_with(&on_dev))
        }) {
            problems.push(format!("address {a}/{} is not on {dev}", cfg.prefix));
        }
        for r in &cfg.routes {
            let mut s = format!("{}/{}", r.dest, r.prefix);
            if let Some(n) = r.next_hop {
                s.push_str(&format!(" via {n}"));
            }
            expected_routes.push(s);
        }
        if !cfg.never_default {
            expected_routes.push(match cfg.internal_gateway {
                Some(g) => format!("default via {g}"),
                None => "default".into(),
            });
        }
    }
    for want in &expected_routes {
        if !up
            .routes
            .iter()
            .any(|r| r.starts_with(&format!("{want} ")) && r.contains(&on_dev))
        {
            problems.push(format!("route {want} is not on {dev}"));
        }
    }
    for r in up.routes.iter().filter(|r| !base.routes.contains(r)) {
        if own
            && r.contains(&on_dev)
            && !r.contains(" proto kernel")
            && !expected_routes
                .iter()
                .any(|w| r.starts_with(&format!("{w} ")))
        {
            problems.push(format!("route {r}, which no config asked for"));
        }
    }
    problems
}
