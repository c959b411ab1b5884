//! The scenario NM's part plays: start, NeedSecrets, Connect, the configs, Disconnect,
//! SIGTERM, the leftovers, then `peer-watch`.

use super::world::*;
use super::*;
use super::{applied, faults};

/// The scenarios: the main one (start, NeedSecrets, Connect, configs, Disconnect, SIGTERM),
/// then the faults the bench injects, then what they all left.
pub(super) async fn exercise<'a>(
    info: &'a PluginInfo,
    profile: Profile,
    o: &Opts,
) -> anyhow::Result<(Vec<Check>, World<'a>)> {
    let mut c = Checks::default();
    let mut w = World::new(info, profile, o).await?;
    let _trace = match &o.trace {
        Some(f) => Some(trace::start(&w.bus, f).await?),
        None => None,
    };
    let connected = main(&mut c, &mut w).await?;
    if connected {
        faults::peer_watch(&mut c, &mut w).await?;
        faults::aborts(&mut c, &mut w).await?;
    } else {
        c.skip("peer-watch", "the plugin does not connect");
    }
    if connected {
        faults::interactive(&mut c, &mut w).await?;
    } else {
        c.skip("interactive", "the plugin does not connect");
    }
    // tinynmd refuses what these found, as NM does: the fault is theirs to report.
    let invalid = c.0.iter().find(|x| {
        (x.id.ends_with("config-valid") || x.id == "config-order")
            && x.status == "fail"
            && !x.detail.ends_with("--ipv6 asks for one")
    });
    if let Some(bad) = invalid {
        let why = format!("tinynmd refuses such configs (see {})", bad.id);
        c.skip("applied", why);
    } else if connected {
        applied::applied(&mut c, &mut w).await?;
    } else {
        c.skip("applied", "the plugin does not connect");
    }
    // no-leftovers, over every scenario
    c.put(
        "no-leftovers",
        w.left.is_empty(),
        if w.left.is_empty() {
            "no process, link, address or route of the plugin's left after any scenario".to_string()
        } else {
            format!("left behind {}", w.left.join("; "))
        },
    );
    Ok((c.0, w))
}

/// The main scenario; whether the plugin connected.
async fn main(c: &mut Checks, w: &mut World<'_>) -> anyhow::Result<bool> {
    let (five, connect_timeout, profile) = (w.five, w.connect_timeout, w.profile.clone());
    // name-claim
    let mut inst = match w.launch().await? {
        Ok(i) => i,
        Err(why) => {
            c.put("name-claim", false, why);
            return Ok(false);
        }
    };
    c.put(
        "name-claim",
        true,
        format!(
            "{} owned by {} after {} ms",
            inst.bus_name,
            inst.owner,
            inst.claimed.as_millis()
        ),
    );
    // need-secrets: with what was given, then (if secrets were given) without them
    let full = w.dict();
    let (mut ok, mut detail) = match inst.plugin.need_secrets(full.clone()).await {
        Ok(s) if s.is_empty() => (true, "with the secrets given: none asked for".to_string()),
        Ok(s) if profile.vpn.secrets.is_empty() && s == "vpn" => (
            true,
            "asks for setting 'vpn' (no --secret given)".to_string(),
        ),
        Ok(s) if profile.vpn.secrets.is_empty() => (
            false,
            format!("asks for setting '{s}': a VPN plugin's secrets are in 'vpn'"),
        ),
        Ok(s) => (
            false,
            format!("asks for setting '{s}' although every secret was given"),
        ),
        Err(e) => (false, format!("NeedSecrets failed: {e}")),
    };
    if ok && !profile.vpn.secrets.is_empty() {
        let mut bare = profile.clone();
        bare.vpn.secrets.clear();
        match inst
            .plugin
            .need_secrets(tinynm_config::dbus::to_plugin_dict(&bare))
            .await
        {
            Ok(s) if s == "vpn" => detail.push_str("; without them: asks for 'vpn'"),
            Ok(s) if s.is_empty() => detail.push_str("; without them: none needed either"),
            Ok(s) => {
                ok = false;
                detail = format!(
                    "without the secrets it asks for '{s}': a VPN plugin's secrets are in 'vpn'"
                );
            }
            Err(e) => {
                ok = false;
                detail = format!("NeedSecrets without the secrets failed: {e}");
            }
        }
    }
    c.put("need-secrets", ok, detail);
    // connect, and every signal until STARTED
    let t = Instant::now();
    let mut seen: Vec<Sig> = Vec::new();
    let mut connected = false;
    let mut stayed = true;
    let left_early = inst.released(&w.dbus, Duration::ZERO).await?;
    let called = if left_early {
        c.skip(
            "connect",
            format!(
                "the plugin left the bus before Connect{}",
                last_words(&inst)
            ),
        );
        Ok(())
    } else {
        inst.plugin.connect(full).await
    };
    if left_early {
    } else if let Err(e) = &called {
        c.put(
            "connect",
            false,
            format!("Connect failed: {e}{}", last_words(&inst)),
        );
    } else {
        let done = |s: &Sig| {
            matches!(
                s,
                Sig::State(STARTED) | Sig::State(STOPPED) | Sig::Failure(_)
            )
        };
        let started_at = inst
            .signals_until(&mut seen, connect_timeout, done)
            .await
            .then(|| t.elapsed());
        // The configs a STARTED plugin announced but has not sent yet: a moment more.
        let late = Instant::now() + five.min(Duration::from_secs(2));
        while !announced_came(&seen) {
            let left = late.saturating_duration_since(Instant::now());
            if left.is_zero() || !inst.signals_until(&mut seen, left, |_| true).await {
                break;
            }
        }
        let states: Vec<u32> = seen
            .iter()
            .filter_map(|s| {
                if let Sig::State(x) = s {
                    Some(*x)
                } else {
                    None
                }
            })
            .collect();
        connected = states.contains(&STARTING) && states.contains(&STARTED);
        // A moment to see it stay up once STARTED (the window ends early if it leaves).
        if connected {
            inst.signals_until(&mut seen, five / 5, |_| false).await;
        }
        stayed = !connected || !(inst.gone || inst.released(&w.dbus, Duration::ZERO).await?);
        c.put(
            "connect",
            connected && stayed,
            match started_at {
                Some(_) if connected && !stayed => format!(
                    "STARTED, then the plugin left the bus before Disconnect (NM: the VPN fails, SERVICE_STOPPED){}",
                    last_words(&inst)
                ),
                Some(d) if connected => format!("STARTING → STARTED in {} ms", d.as_millis()),
                _ => {
                    format!(
                        "states {states:?} {} (expected {STARTING} then {STARTED}){}",
                        if inst.gone {
                            "before the plugin left the bus".to_string()
                        } else {
                            format!("within {} s", connect_timeout.as_secs())
                        },
                        seen.iter()
                            .find_map(|s| if let Sig::Failure(f) = s {
                                Some(*f)
                            } else {
                                None
                            })
                            .map(|f| format!("; Failure({f})"))
                            .unwrap_or_default()
                    ) + &last_words(&inst)
                }
            },
        );
    }
    let alive = !(inst.gone || inst.released(&w.dbus, Duration::ZERO).await?);
    check_configs(c, &seen, &w.ns, w.ipv6, connected, alive)?;
    // failure-reason
    match seen.iter().find_map(|s| match s {
        Sig::Failure(f) => Some(*f),
        _ => None,
    }) {
        // NMVpnPluginFailure: LOGIN_FAILED, CONNECT_FAILED, BAD_IP_CONFIG.
        Some(f) if f <= 2 => c.put("failure-reason", true, format!("Failure({f}), one of NM's")),
        Some(f) => c.put(
            "failure-reason",
            false,
            format!("Failure({f}): NM knows 0 (login), 1 (connect) and 2 (IP config)"),
        ),
        None => c.skip(
            "failure-reason",
            "no Failure sent (a wrong --secret exercises it)",
        ),
    }
    // disconnect (moot when the plugin has stopped and gone by itself, as after a Failure)
    let t = Instant::now();
    let left_already = inst.released(&w.dbus, Duration::ZERO).await?;
    match disconnect_answer(inst.plugin.disconnect().await) {
        Err(_) if left_already => c.skip(
            "disconnect",
            "the plugin had left the bus by itself before Disconnect",
        ),
        // Gone while the call was on its way (a plugin that stops and quits after a failed
        // Connect): as moot as before.
        Err(_) if inst.released(&w.dbus, Duration::ZERO).await? => c.skip(
            "disconnect",
            "the plugin left the bus by itself while Disconnect was on its way",
        ),
        Err(e) => c.put("disconnect", false, format!("Disconnect failed: {e}")),
        Ok(unreplied) => {
            let (stopped, released) = inst.stop_seen(&w.dbus, five).await?;
            let (ok, how) = stop_verdict(stopped, released, unreplied, five);
            let took = if ok {
                format!(" ({} ms)", t.elapsed().as_millis())
            } else {
                String::new()
            };
            c.put("disconnect", ok, format!("{how}{took}"));
        }
    }
    // sigterm (what tinynmd and NM send a plugin that stays)
    match w.finish(inst, "the main scenario").await? {
        None => c.put("sigterm", true, "exited by itself after Disconnect"),
        Some(true) => c.put("sigterm", true, "SIGTERM ended it"),
        Some(false) => c.put(
            "sigterm",
            false,
            format!("still running {} s after SIGTERM (killed)", five.as_secs()),
        ),
    }
    // What needs a plugin that connects and stays (the faults, applied) is judged only then.
    Ok(connected && stayed)
}

/// `; the plugin's last lines: …`, when it wrote any.
fn last_words(inst: &Instance) -> String {
    let t = tail(&inst.log, 3);
    if t.is_empty() {
        t
    } else {
        format!("; the plugin's last lines: {t}")
    }
}

/// Whether a Config came and every IP config it announced came too.
fn announced_came(seen: &[Sig]) -> bool {
    let Some(g) = seen.iter().find_map(|s| match s {
        Sig::Config(d) => GenericConfig::parse(d).ok(),
        _ => None,
    }) else {
        return false;
    };
    (!g.has_ip4 || seen.iter().any(|s| matches!(s, Sig::Ip4(_))))
        && (!g.has_ip6 || seen.iter().any(|s| matches!(s, Sig::Ip6(_))))
}

/// `config-order`, `config-valid`, `ip4config-valid`, `ip6config-valid` from the signals seen.
pub(super) fn check_configs(
    c: &mut Checks,
    seen: &[Sig],
    ns: &Netns,
    ipv6: bool,
    connected: bool,
    alive: bool,
) -> anyhow::Result<()> {
    let pos = |f: &dyn Fn(&Sig) -> bool| seen.iter().position(f);
    let config_at = pos(&|s| matches!(s, Sig::Config(_)));
    let ip4_at = pos(&|s| matches!(s, Sig::Ip4(_)));
    let ip6_at = pos(&|s| matches!(s, Sig::Ip6(_)));
    let Some(ci) = config_at else {
        if !connected {
            c.skip("config-order", "no Config: the plugin did not connect");
        } else {
            c.put("config-order", false, "no Config signal");
        }
        c.skip("config-valid", "no Config");
        c.skip("ip4config-valid", "no Config");
        c.skip("ip6config-valid", "no Config");
        return Ok(());
    };
    let Sig::Config(d) = &seen[ci] else {
        unreachable!()
    };
    let generic = GenericConfig::parse(d);
    let (has4, has6) = generic
        .as_ref()
        .map(|g| (g.has_ip4, g.has_ip6))
        .unwrap_or((false, false));
    let mut order = Vec::new();
    for (name, at, announced) in [("Ip4Config", ip4_at, has4), ("Ip6Config", ip6_at, has6)] {
        match at {
            Some(i) if i < ci => order.push(format!("{name} came before Config")),
            None if announced && connected => {
                order.push(format!("{name} announced (has-…) but never came"))
            }
            _ => {}
        }
    }
    c.put(
        "config-order",
        order.is_empty(),
        if order.is_empty() {
            format!(
                "Config first, then {}",
                [(has4, "Ip4Config"), (has6, "Ip6Config")]
                    .iter()
                    .filter(|(h, _)| *h)
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        } else {
            order.join("; ")
        },
    );
    let gw = match &generic {
        Ok(g) if g.gateway.is_none() => {
            c.put(
                "config-valid",
                false,
                "gateway: missing (NM fails the VPN: IP_CONFIG_INVALID)",
            );
            None
        }
        Ok(g) => {
            let k = ns.snapshot()?;
            match &g.tundev {
                Some(t) if k.link(t).is_none() && !alive => c.put(
                    "config-valid",
                    true,
                    format!("tundev {t} (gone with the plugin, which has exited: not checked)"),
                ),
                Some(t) if k.link(t).is_none() => {
                    c.put(
                        "config-valid",
                        false,
                        format!("tundev: '{t}' is not a link in the namespace"),
                    );
                }
                t => c.put(
                    "config-valid",
                    true,
                    format!(
                        "tundev {}, gateway {}",
                        t.as_deref().unwrap_or("(none)"),
                        g.gateway
                            .map(|a| a.to_string())
                            .unwrap_or_else(|| "(none)".into())
                    ),
                ),
            }
            g.gateway
        }
        Err(e) => {
            c.put("config-valid", false, e.to_string());
            None
        }
    };
    for (id, at, fam) in [
        ("ip4config-valid", ip4_at, Family::V4),
        ("ip6config-valid", ip6_at, Family::V6),
    ] {
        let Some(i) = at else {
            if ipv6 && fam == Family::V6 {
                c.put(id, false, "no Ip6Config, and --ipv6 asks for one");
            } else {
                c.skip(id, "not sent (nor announced)");
            }
            continue;
        };
        let (Sig::Ip4(d) | Sig::Ip6(d)) = &seen[i] else {
            unreachable!()
        };
        match IpConfig::parse(d, fam, gw) {
            Ok(Some(cfg)) => c.put(
                id,
                true,
                format!(
                    "address {}/{}, {} route(s), {} name server(s)",
                    cfg.address,
                    cfg.prefix,
                    cfg.routes.len(),
                    cfg.dns.len()
                ),
            ),
            Ok(None) => c.put(id, true, "an empty config (the family is off)"),
            Err(e) => c.put(id, false, e.to_string()),
        }
    }
    Ok(())
}
