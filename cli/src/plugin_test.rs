//! `tinynm plugin-test`: runs an NM VPN plugin through NetworkManager 1.42's protocol in a
//! throwaway world (a network namespace with a parent network, a private bus) and checks it
//! against NM's contract (spec VPN-PROTOCOL.md), check by check, with the evidence.
//!
//! The bench plays NM's part itself: it execs the plugin as NM does (`--bus-name
//! <service>.Connection_1`, NM's log variables, the bus in `DBUS_SYSTEM_BUS_ADDRESS`), calls
//! `NeedSecrets`, `Connect` and `Disconnect`, reads every signal, parses each config with NM's
//! rules (the SDK's wire types, as tinynmd does), then ends the plugin with SIGTERM and compares
//! the namespace's kernel state with what it was before.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tinynm_config::Profile;
use tinynm_config::namefile::PluginInfo;
use tinynm_config::profile::Family;
use tinynm_sandbox::{Bus, Kernel, Netns};
use tinynm_vpn_plugin::proxy::VpnPluginProxy;
use tinynm_vpn_plugin::wire::{Dict, GenericConfig, IpConfig};
use zbus::{MatchRule, MessageStream};

/// NM's service states (`NMVpnServiceState`).
const STARTING: u32 = 3;
const STARTED: u32 = 4;
const STOPPED: u32 = 6;

/// How long NM gives a plugin to claim its name, and the bench gives it to go.
const FIVE: Duration = Duration::from_secs(5);

/// What to run.
pub struct Opts {
    /// A `.name` file, or a service type or plugin name found in the plugin directories.
    pub plugin: String,
    /// `vpn.data`, `KEY=VALUE` each.
    pub data: Vec<String>,
    /// `vpn.secrets`, `KEY=VALUE` each.
    pub secrets: Vec<String>,
    /// How long `Connect` may take to bring the plugin to STARTED.
    pub connect_timeout: Duration,
    /// Print JSON instead of a table.
    pub json: bool,
}

/// One check's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// Its stable id.
    pub id: &'static str,
    /// `pass`, `fail` or `skip`.
    pub status: &'static str,
    /// The evidence, in one line.
    pub detail: String,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn put(&mut self, id: &'static str, ok: bool, detail: impl Into<String>) {
        let status = if ok { "pass" } else { "fail" };
        self.0.push(Check {
            id,
            status,
            detail: detail.into(),
        });
    }

    fn skip(&mut self, id: &'static str, detail: impl Into<String>) {
        self.0.push(Check {
            id,
            status: "skip",
            detail: detail.into(),
        });
    }
}

/// The plugin `arg` names: a `.name` file, or a plugin whose service type, alias or name it is,
/// in NM's directories and tinynm's.
fn find_plugin(arg: &str) -> anyhow::Result<PluginInfo> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return tinynm_config::namefile::parse(&text, path).with_context(|| {
            format!(
                "{}: not a VPN plugin description ([VPN Connection] with name, service and an absolute program)",
                path.display()
            )
        });
    }
    let dirs: Vec<PathBuf> = tinynm_config::daemon_config::NM_PLUGIN_DIRS
        .iter()
        .chain(&["/usr/lib/tinynm/VPN"])
        .map(PathBuf::from)
        .collect();
    for dir in &dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "name") {
                continue;
            }
            let Some(info) = std::fs::read_to_string(&p)
                .ok()
                .and_then(|t| tinynm_config::namefile::parse(&t, &p))
            else {
                continue;
            };
            if info.serves(arg) || info.name == arg {
                return Ok(info);
            }
        }
    }
    bail!(
        "no VPN plugin '{arg}' in {}: give a .name file or a service type",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn pairs(what: &str, kv: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    kv.iter()
        .map(|s| {
            s.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{what} '{s}': expected KEY=VALUE"))
        })
        .collect()
}

/// A signal from the plugin: its member and its body's dict, or its `u`.
#[derive(Debug)]
enum Sig {
    State(u32),
    Config(Dict),
    Ip4(Dict),
    Ip6(Dict),
    Failure(u32),
    Other,
}

fn sig_of(m: &zbus::Message) -> Option<Sig> {
    let h = m.header();
    let member = h.member()?.to_string();
    let b = m.body();
    Some(match member.as_str() {
        "StateChanged" => Sig::State(b.deserialize().ok()?),
        "Config" => Sig::Config(b.deserialize().ok()?),
        "Ip4Config" => Sig::Ip4(b.deserialize().ok()?),
        "Ip6Config" => Sig::Ip6(b.deserialize().ok()?),
        "Failure" => Sig::Failure(b.deserialize().ok()?),
        _ => Sig::Other,
    })
}

/// What the kernel holds now that it did not before.
fn leftovers(base: &Kernel, now: &Kernel) -> Vec<String> {
    let mut out: Vec<String> = now
        .links
        .iter()
        .filter(|l| !base.links.iter().any(|b| b.name == l.name))
        .map(|l| format!("link {}", l.name))
        .collect();
    out.extend(
        now.addresses
            .iter()
            .filter(|a| !base.addresses.contains(a))
            .map(|a| format!("address {a}")),
    );
    out.extend(
        now.routes
            .iter()
            .filter(|r| !base.routes.contains(r))
            .map(|r| format!("route {r}")),
    );
    out
}

/// Whether process `pid` (a child of ours) is gone; reaped if it is.
fn gone(child: &mut std::process::Child) -> bool {
    matches!(child.try_wait(), Ok(Some(_)))
}

/// The processes below `pid`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = vec![pid];
    let mut found = Vec::new();
    let mut changed = true;
    while changed {
        changed = false;
        let Ok(rd) = std::fs::read_dir("/proc") else {
            break;
        };
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if parents.contains(&p) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            let ppid: u32 = stat[close + 2..]
                .split(' ')
                .nth(1)
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            if parents.contains(&ppid) {
                parents.push(p);
                found.push(p);
                changed = true;
            }
        }
    }
    found
}

/// Runs the checks; the report and whether nothing failed.
pub async fn run(o: Opts) -> anyhow::Result<bool> {
    let info = find_plugin(&o.plugin)?;
    let data = pairs("--data", &o.data)?;
    let secrets = pairs("--secret", &o.secrets)?;
    let mut profile = Profile::new_vpn(
        "plugin-test",
        "5e1f7e57-0000-4000-8000-00000000beef",
        &info.service,
    );
    profile.vpn.data = data;
    profile.vpn.secrets = secrets.clone();
    profile
        .validate()
        .context("the profile the options describe")?;
    let checks = exercise(&info, &profile, o.connect_timeout).await?;
    let failed = checks.iter().filter(|c| c.status == "fail").count();
    let passed = checks.iter().filter(|c| c.status == "pass").count();
    if o.json {
        let v = serde_json::json!({
            "plugin": info.file.display().to_string(),
            "service": info.service,
            "checks": checks,
            "passed": passed,
            "failed": failed,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "plugin {} ({}, {})",
            info.name,
            info.service,
            info.program.display()
        );
        for c in &checks {
            println!("{:<16} {:<4}  {}", c.id, c.status, c.detail);
        }
        println!("{passed} passed, {failed} failed");
    }
    Ok(failed == 0)
}

/// Execs the plugin as NM does: `--bus-name`, NM's log variables, the bus in
/// `DBUS_SYSTEM_BUS_ADDRESS`, in the namespace, its output to `log`.
fn spawn(
    info: &PluginInfo,
    bus_name: &str,
    ns: &Netns,
    bus: &Bus,
    log: &tempfile::NamedTempFile,
) -> anyhow::Result<std::process::Child> {
    let mut cmd = std::process::Command::new(&info.program);
    cmd.arg("--bus-name")
        .arg(bus_name)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env("NM_VPN_LOG_LEVEL", "7")
        .env("NM_VPN_LOG_SYSLOG", "0")
        .stdin(std::process::Stdio::null())
        .stdout(log.reopen()?)
        .stderr(log.reopen()?)
        .process_group(0);
    ns.prepare(&mut cmd);
    cmd.spawn()
        .with_context(|| format!("cannot execute {}", info.program.display()))
}

/// `peer-watch`: a second instance, connected by a caller that then leaves the bus, must
/// disconnect and give its name up (libnm's watch-peer).
async fn peer_watch(
    c: &mut Checks,
    info: &PluginInfo,
    profile: &Profile,
    ns: &Netns,
    bus: &Bus,
    conn: &zbus::Connection,
    connect_timeout: Duration,
) -> anyhow::Result<()> {
    let bus_name = info.bus_name(2);
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut owners = dbus
        .receive_name_owner_changed_with_args(&[(0, bus_name.as_str())])
        .await?;
    let log = tempfile::NamedTempFile::new()?;
    let mut child = spawn(info, &bus_name, ns, bus, &log)?;
    let claimed = tokio::time::timeout(FIVE, async {
        while let Some(s) = owners.next().await {
            if s.args().is_ok_and(|a| a.new_owner().is_some()) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !claimed {
        c.skip("peer-watch", "the second instance did not claim its name");
        let _ = child.kill();
        let _ = child.wait();
        return Ok(());
    }
    // The caller: a connection of its own, gone once the plugin is up.
    let caller = bus.connect().await?;
    let plugin = VpnPluginProxy::builder(&caller)
        .destination(bus_name.clone())
        .build()
        .await?;
    let up = plugin
        .receive_state_signal()
        .await?
        .filter_map(|s| async move { s.args().ok().map(|a| a.state) })
        .filter(|s| std::future::ready(*s == STARTED))
        .boxed();
    plugin
        .connect(tinynm_config::dbus::to_plugin_dict(profile))
        .await?;
    let mut up = up;
    if tokio::time::timeout(connect_timeout, up.next())
        .await
        .is_err()
    {
        c.skip("peer-watch", "the second instance did not reach STARTED");
        let _ = child.kill();
        let _ = child.wait();
        return Ok(());
    }
    drop((up, plugin));
    caller.close().await?;
    let t = Instant::now();
    let released = tokio::time::timeout(FIVE, async {
        while let Some(s) = owners.next().await {
            if s.args().is_ok_and(|a| a.new_owner().is_none()) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    c.put(
        "peer-watch",
        released,
        if released {
            format!(
                "the caller left: the name was given up after {} ms",
                t.elapsed().as_millis()
            )
        } else {
            "the caller of Connect left the bus; the plugin kept its name for 5 s".to_string()
        },
    );
    let below = descendants(child.id());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let end = Instant::now() + FIVE;
    while !gone(&mut child) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    for p in below {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    Ok(())
}

/// The scenario: start, NeedSecrets, Connect, configs, Disconnect, SIGTERM, leftovers.
async fn exercise(
    info: &PluginInfo,
    profile: &Profile,
    connect_timeout: Duration,
) -> anyhow::Result<Vec<Check>> {
    let mut c = Checks::default();
    let ns = Netns::new().context("a network namespace")?;
    ns.add_parent().context("the namespace's parent network")?;
    let bus = Bus::start().context("a private bus")?;
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
    let owner = tokio::time::timeout(FIVE, async {
        while let Some(s) = owners.next().await {
            if let Ok(a) = s.args()
                && let Some(o) = a.new_owner().as_ref()
            {
                return Some(o.to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(owner) = owner else {
        c.put(
            "name-claim",
            false,
            format!(
                "{bus_name} not claimed within 5 s{}",
                if gone(&mut child) {
                    " (the plugin exited)"
                } else {
                    ""
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
        let late = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(late, stream.next()).await {
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
            let end = tokio::time::Instant::now() + FIVE;
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
                format!(
                    "{} and {} within 5 s ({} ms)",
                    if stopped { "STOPPED" } else { "no STOPPED" },
                    if released {
                        "the name released"
                    } else {
                        "the name still owned"
                    },
                    t.elapsed().as_millis()
                ),
            );
        }
    }
    // sigterm (what tinynmd and NM send a plugin that stays)
    let below = descendants(pid);
    if gone(&mut child) {
        c.put("sigterm", true, "exited by itself after Disconnect");
    } else {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let end = Instant::now() + FIVE;
        while !gone(&mut child) && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if gone(&mut child) {
            c.put("sigterm", true, "SIGTERM ended it");
        } else {
            c.put("sigterm", false, "still running 5 s after SIGTERM (killed)");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    // no-leftovers
    let end = Instant::now() + FIVE;
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
        peer_watch(&mut c, info, profile, &ns, &bus, &conn, connect_timeout).await?;
    } else {
        c.skip("peer-watch", "the plugin does not connect");
    }
    Ok(c.0)
}

/// `config-order`, `config-valid`, `ip4config-valid`, `ip6config-valid` from the signals seen.
fn check_configs(c: &mut Checks, seen: &[Sig], ns: &Netns) -> anyhow::Result<()> {
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
