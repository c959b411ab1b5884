//! The scenario NM's part plays: start, NeedSecrets, Connect, the configs, Disconnect,
//! SIGTERM, the leftovers, then `peer-watch`.

use super::world::*;
use super::*;

/// The scenario: start, NeedSecrets, Connect, configs, Disconnect, SIGTERM, leftovers.
pub(super) async fn exercise(
    info: &PluginInfo,
    profile: &Profile,
    o: &Opts,
) -> anyhow::Result<Vec<Check>> {
    let (five, connect_timeout) = (o.limit(), o.connect_limit());
    let mut c = Checks::default();
    let ns = Netns::new().context("a network namespace")?;
    ns.add_parent().context("the namespace's parent network")?;
    let bus = Bus::start().context("a private bus")?;
    let _trace = match &o.trace {
        Some(f) => Some(trace::start(&bus, f).await?),
        None => None,
    };
    let conn = bus.connect().await.context("the private bus")?;
    let base = ns.snapshot()?;
    let bus_name = info.bus_name(1);
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let mut owners = dbus
        .receive_name_owner_changed_with_args(&[(0, bus_name.as_str())])
        .await?;
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.NetworkManager.VPN.Plugin")
        .build()?;
    let mut stream = MessageStream::for_match_rule(rule, &conn, None).await?;
    let log = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let mut child = spawn(info, &bus_name, &ns, &bus, &log)?;
    let pid = child.id();
    // name-claim
    let owner = owner_change(&mut owners, false, five).await;
    let Some(owner) = owner else {
        c.put(
            "name-claim",
            false,
            format!(
                "{bus_name} not claimed within {} s{}",
                five.as_secs(),
                if gone(&mut child) {
                    format!(" (the plugin exited; its last words: {})", tail(&log, 3))
                } else {
                    String::new()
                }
            ),
        );
        let _ = child.kill();
        let _ = child.wait();
        return Ok(c.0);
    };
    c.put(
        "name-claim",
        true,
        format!(
            "{bus_name} owned by {owner} after {} ms",
            started.elapsed().as_millis()
        ),
    );
    let plugin = VpnPluginProxy::builder(&conn)
        .destination(bus_name.clone())
        .build()
        .await?;
    // need-secrets
    let full = tinynm_config::dbus::to_plugin_dict(profile);
    match plugin.need_secrets(full.clone()).await {
        Ok(s) if s.is_empty() => c.put(
            "need-secrets",
            true,
            "with every secret given: no setting asked for",
        ),
        Ok(s) if profile.vpn.secrets.is_empty() => c.put(
            "need-secrets",
            true,
            format!("asks for setting '{s}' (no --secret given)"),
        ),
        Ok(s) => c.put(
            "need-secrets",
            false,
            format!("asks for setting '{s}' although every secret was given"),
        ),
        Err(e) => c.put("need-secrets", false, format!("NeedSecrets failed: {e}")),
    }
    if !profile.vpn.secrets.is_empty() {
        let mut bare = profile.clone();
        bare.vpn.secrets.clear();
        match plugin
            .need_secrets(tinynm_config::dbus::to_plugin_dict(&bare))
            .await
        {
            Ok(s) if s == "vpn" => {}
            Ok(s) => c.put(
                "need-secrets",
                false,
                format!("without the secrets it asks for '{s}', not 'vpn'"),
            ),
            Err(e) => c.put(
                "need-secrets",
                false,
                format!("NeedSecrets without secrets failed: {e}"),
            ),
        }
    }
    // connect, and every signal until STARTED
    let t = Instant::now();
    let called = plugin.connect(full).await;
    let mut seen: Vec<Sig> = Vec::new();
    let deadline = tokio::time::Instant::now() + connect_timeout;
    let mut started_at = None;
    if let Err(e) = &called {
        c.put("connect", false, format!("Connect failed: {e}"));
    } else {
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, stream.next()).await {
            let Some(s) = sig_of(&m) else { continue };
            let done = matches!(
                s,
                Sig::State(STARTED) | Sig::State(STOPPED) | Sig::Failure(_)
            );
            seen.push(s);
            if done {
                started_at = Some(t.elapsed());
                break;
            }
        }
        // The configs a STARTED plugin announced but has not sent yet: a moment more.
        let late = tokio::time::Instant::now() + five.min(Duration::from_secs(2));
        while !announced_came(&seen)
            && let Ok(Some(Ok(m))) = tokio::time::timeout_at(late, stream.next()).await
        {
            if let Some(s) = sig_of(&m) {
                seen.push(s);
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
        let ok = states.contains(&STARTING) && states.contains(&STARTED);
        c.put(
            "connect",
            ok,
            match started_at {
                Some(d) if ok => format!("STARTING → STARTED in {} ms", d.as_millis()),
                _ => format!(
                    "states {states:?} within {} s (expected {STARTING} then {STARTED}){}",
                    connect_timeout.as_secs(),
                    seen.iter()
                        .find_map(|s| if let Sig::Failure(f) = s {
                            Some(*f)
                        } else {
                            None
                        })
                        .map(|f| format!("; Failure({f})"))
                        .unwrap_or_default()
                ),
            },
        );
    }
    check_configs(&mut c, &seen, &ns)?;
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
    // disconnect
    let t = Instant::now();
    match plugin.disconnect().await {
        Err(e) => c.put("disconnect", false, format!("Disconnect failed: {e}")),
        Ok(()) => {
            let end = tokio::time::Instant::now() + five;
            let mut stopped = false;
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(end, stream.next()).await {
                if let Some(Sig::State(STOPPED)) = sig_of(&m) {
                    stopped = true;
                    break;
                }
            }
            let released = loop {
                let n: zbus::names::BusName<'_> = bus_name.as_str().try_into()?;
                if !dbus.name_has_owner(n).await.unwrap_or(true) {
                    break true;
                }
                if tokio::time::Instant::now() >= end {
                    break false;
                }
                if tokio::time::timeout_at(end, owners.next()).await.is_err() {
                    continue;
                }
            };
            c.put(
                "disconnect",
                stopped && released,
                match (stopped, released) {
                    (true, true) => format!(
                        "STOPPED and the name released within {} s ({} ms)",
                        five.as_secs(),
                        t.elapsed().as_millis()
                    ),
                    (true, false) => {
                        format!(
                            "STOPPED, but the name still owned {} s after Disconnect",
                            five.as_secs()
                        )
                    }
                    (false, true) => "the name released without STOPPED".to_string(),
                    (false, false) => {
                        format!(
                            "neither STOPPED nor the name released {} s after Disconnect",
                            five.as_secs()
                        )
                    }
                },
            );
        }
    }
    // sigterm (what tinynmd and NM send a plugin that stays)
    let below = tinynm_sandbox::descendants(pid);
    if gone(&mut child) {
        c.put("sigterm", true, "exited by itself after Disconnect");
    } else {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let end = Instant::now() + five;
        while !gone(&mut child) && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if gone(&mut child) {
            c.put("sigterm", true, "SIGTERM ended it");
        } else {
            c.put(
                "sigterm",
                false,
                format!("still running {} s after SIGTERM (killed)", five.as_secs()),
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    // no-leftovers
    let end = Instant::now() + five;
    let mut left: Vec<String>;
    loop {
        left = below
            .iter()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .map(|p| {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                format!("process {p} ({})", comm.trim())
            })
            .collect();
        left.extend(leftovers(&base, &ns.snapshot()?));
        if left.is_empty() || Instant::now() >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.put(
        "no-leftovers",
        left.is_empty(),
        if left.is_empty() {
            "no process, link, address or route of the plugin's left".to_string()
        } else {
            format!("left behind: {}", left.join(", "))
        },
    );
    for p in below {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if c.0.iter().any(|x| x.id == "connect" && x.status == "pass") {
        peer_watch(&mut c, info, profile, &ns, &bus, &conn, o).await?;
    } else {
        c.skip("peer-watch", "the plugin does not connect");
    }
    Ok(c.0)
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
pub(super) fn check_configs(c: &mut Checks, seen: &[Sig], ns: &Netns) -> anyhow::Result<()> {
    let pos = |f: &dyn Fn(&Sig) -> bool| seen.iter().position(f);
    let config_at = pos(&|s| matches!(s, Sig::Config(_)));
    let ip4_at = pos(&|s| matches!(s, Sig::Ip4(_)));
    let ip6_at = pos(&|s| matches!(s, Sig::Ip6(_)));
    let Some(ci) = config_at else {
        c.put("config-order", false, "no Config signal");
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
            None if announced => order.push(format!("{name} announced (has-…) but never came")),
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
        Ok(g) => {
            let k = ns.snapshot()?;
            match &g.tundev {
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
            c.skip(id, "not sent (nor announced)");
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
