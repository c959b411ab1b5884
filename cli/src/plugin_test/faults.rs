//! The faults the bench injects from NM's side, each in an instance of its own: the caller
//! vanishing (`peer-watch`), `Disconnect` at each state, and the interactive path with its
//! `NewSecrets` sent late.

use super::world::*;
use super::*;

/// NM's error for a plugin without `ConnectInteractive`.
const NOT_INTERACTIVE: &str = "org.freedesktop.NetworkManager.VPN.Error.InteractiveNotSupported";

/// `peer-watch`: an instance whose caller leaves the bus once it is STARTED, and one whose
/// caller leaves mid-connect (right after `Connect` returns), must each disconnect and give
/// the name up (libnm's watch-peer).
pub(super) async fn peer_watch(c: &mut Checks, w: &mut World<'_>) -> anyhow::Result<()> {
    let mut found = Vec::new();
    let mut ok = true;
    for (label, wait_started) in [("once STARTED", true), ("mid-connect", false)] {
        let mut inst = match w.launch().await? {
            Ok(i) => i,
            Err(why) => {
                c.skip("peer-watch", format!("a further instance: {why}"));
                return Ok(());
            }
        };
        // The caller: a connection of its own, gone when the scenario says.
        let caller = w.bus.connect().await?;
        let plugin = VpnPluginProxy::builder(&caller)
            .destination(inst.bus_name.clone())
            .build()
            .await?;
        plugin.connect(w.dict()).await?;
        if wait_started
            && !inst
                .signals_until(&mut Vec::new(), w.connect_timeout, |s| {
                    matches!(s, Sig::State(STARTED))
                })
                .await
        {
            c.skip("peer-watch", "a further instance did not reach STARTED");
            w.finish(inst, "peer-watch").await?;
            return Ok(());
        }
        inst.note_processes();
        drop(plugin);
        caller.close().await?;
        let t = Instant::now();
        let released = inst.gone || owner_change(&mut inst.owners, true, w.five).await.is_some();
        ok &= released;
        found.push(if released {
            format!(
                "caller gone {label}: name given up after {} ms",
                t.elapsed().as_millis()
            )
        } else {
            format!(
                "the caller of Connect left the bus {label}; the plugin kept its name for {} s",
                w.five.as_secs()
            )
        });
        w.finish(inst, &format!("peer-watch ({label})")).await?;
    }
    let failed: Vec<String> = found
        .iter()
        .filter(|f| f.starts_with("the caller"))
        .cloned()
        .collect();
    c.put(
        "peer-watch",
        ok,
        if ok {
            found.join("; ")
        } else {
            failed.join("; ")
        },
    );
    Ok(())
}

/// `disconnect-starting` and `disconnect-configured`: `Disconnect` right after `Connect`
/// returns, and right after the `Config` signal, must each still lead to STOPPED and the
/// name released.
pub(super) async fn aborts(c: &mut Checks, w: &mut World<'_>) -> anyhow::Result<()> {
    for (id, after_config) in [
        ("disconnect-starting", false),
        ("disconnect-configured", true),
    ] {
        let mut inst = match w.launch().await? {
            Ok(i) => i,
            Err(why) => {
                c.skip(id, format!("a further instance: {why}"));
                continue;
            }
        };
        if let Err(e) = inst.plugin.connect(w.dict()).await {
            c.skip(id, format!("Connect failed: {e}"));
            w.finish(inst, id).await?;
            continue;
        }
        let mut seen = Vec::new();
        if after_config
            && !inst
                .signals_until(&mut seen, w.connect_timeout, |s| {
                    matches!(s, Sig::Config(_) | Sig::State(STOPPED) | Sig::Failure(_))
                })
                .await
        {
            c.skip(id, "no Config came");
            w.finish(inst, id).await?;
            continue;
        }
        let when = if after_config {
            "after Config"
        } else {
            "right after Connect returned"
        };
        let t = Instant::now();
        let called = match disconnect_answer(inst.plugin.disconnect().await) {
            // Gone while the call was on its way: its name released is what NM goes by.
            Err(_) if inst.released(&w.dbus, Duration::ZERO).await? => Ok(true),
            other => other,
        };
        let (stopped, released) = inst.stop_seen(&w.dbus, w.five).await?;
        match called {
            Err(e) => c.put(id, false, format!("Disconnect {when} failed: {e}")),
            Ok(unreplied) => {
                let (ok, how) = stop_verdict(stopped, released, unreplied, w.five);
                let took = if ok {
                    format!(" ({} ms)", t.elapsed().as_millis())
                } else {
                    String::new()
                };
                c.put(id, ok, format!("Disconnect {when}: {how}{took}"));
            }
        }
        w.finish(inst, id).await?;
    }
    Ok(())
}

/// `interactive`: `ConnectInteractive`, and when the plugin asks with `SecretsRequired`, the
/// secrets by `NewSecrets`, sent late (a user typing), must bring it to STARTED. Skipped for
/// a plugin that answers `InteractiveNotSupported` (NM then uses `Connect`).
pub(super) async fn interactive(c: &mut Checks, w: &mut World<'_>) -> anyhow::Result<()> {
    let mut inst = match w.launch().await? {
        Ok(i) => i,
        Err(why) => {
            c.skip("interactive", format!("a further instance: {why}"));
            return Ok(());
        }
    };
    let t = Instant::now();
    let details: HashMap<String, zbus::OwnedVariant> = HashMap::new();
    match inst.plugin.connect_interactive(w.dict(), details).await {
        Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == NOT_INTERACTIVE => {
            c.skip(
                "interactive",
                "ConnectInteractive answered InteractiveNotSupported (NM falls back to Connect)",
            );
            w.finish(inst, "interactive").await?;
            return Ok(());
        }
        Err(e) => {
            c.put(
                "interactive",
                false,
                format!("ConnectInteractive failed: {e}"),
            );
            w.finish(inst, "interactive").await?;
            return Ok(());
        }
        Ok(()) => {}
    }
    let mut seen = Vec::new();
    let end_state = |s: &Sig| {
        matches!(
            s,
            Sig::State(STARTED) | Sig::State(STOPPED) | Sig::Failure(_)
        )
    };
    inst.signals_until(&mut seen, w.connect_timeout, |s| {
        end_state(s) || matches!(s, Sig::SecretsRequired(..))
    })
    .await;
    let last = seen.pop();
    let verdict = match &last {
        Some(Sig::State(STARTED)) => Some((
            true,
            format!(
                "ConnectInteractive: STARTED in {} ms, no secrets asked",
                t.elapsed().as_millis()
            ),
        )),
        Some(Sig::SecretsRequired(msg, keys)) => {
            let missing: Vec<&String> = keys
                .iter()
                .filter(|k| !w.profile.vpn.secrets.contains_key(k.as_str()))
                .collect();
            if !missing.is_empty() {
                c.skip(
                    "interactive",
                    format!(
                        "SecretsRequired('{msg}', {keys:?}): give --secret {}=… to answer it",
                        missing[0]
                    ),
                );
                None
            } else {
                // NewSecrets late: as a user typing a code would.
                let late = w.five / 5;
                tokio::time::sleep(late).await;
                let t = Instant::now();
                match inst.plugin.new_secrets(w.dict()).await {
                    Err(e) => Some((false, format!("NewSecrets failed: {e}"))),
                    Ok(()) => {
                        inst.signals_until(&mut seen, w.connect_timeout, end_state)
                            .await;
                        match seen.last() {
                            Some(Sig::SecretsRequired(again, keys)) => {
                                c.skip(
                                    "interactive",
                                    format!(
                                        "asked again after NewSecrets ('{again}', {keys:?}): the secrets given were refused"
                                    ),
                                );
                                None
                            }
                            Some(Sig::State(STARTED)) => Some((
                                true,
                                format!(
                                    "SecretsRequired('{msg}', {keys:?}) answered by NewSecrets {} ms later: STARTED in {} ms",
                                    late.as_millis(),
                                    t.elapsed().as_millis()
                                ),
                            )),
                            other => Some((
                                false,
                                format!("after NewSecrets: {} instead of STARTED", describe(other)),
                            )),
                        }
                    }
                }
            }
        }
        other => Some((
            false,
            format!(
                "after ConnectInteractive: {} instead of STARTED",
                describe(other.as_ref())
            ),
        )),
    };
    if let Some((ok, detail)) = verdict {
        c.put("interactive", ok, detail);
    }
    let _ = inst.plugin.disconnect().await;
    inst.signals_until(&mut seen, w.five, |s| matches!(s, Sig::State(STOPPED)))
        .await;
    w.finish(inst, "interactive").await?;
    Ok(())
}

/// The last signal, in words.
fn describe(s: Option<&Sig>) -> String {
    match s {
        None => "nothing".into(),
        Some(Sig::State(x)) => format!("state {x}"),
        Some(Sig::Failure(f)) => format!("Failure({f})"),
        Some(other) => format!("{other:?}"),
    }
}
