//! The plugin's world: its process as NM execs it, its signals, what it leaves, and the
//! `peer-watch` instance.

use super::*;

/// A signal from the plugin: its member and its body's dict, or its `u`.
#[derive(Debug)]
pub(super) enum Sig {
    State(u32),
    Config(Dict),
    Ip4(Dict),
    Ip6(Dict),
    Failure(u32),
    Other,
}

pub(super) fn sig_of(m: &zbus::Message) -> Option<Sig> {
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
pub(super) fn leftovers(base: &Kernel, now: &Kernel) -> Vec<String> {
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

/// The last lines the plugin wrote (its traceback, its last words), on one line.
pub(super) fn tail(log: &tempfile::NamedTempFile, lines: usize) -> String {
    let text = std::fs::read_to_string(log.path()).unwrap_or_default();
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// Whether process `pid` (a child of ours) is gone; reaped if it is.
pub(super) fn gone(child: &mut std::process::Child) -> bool {
    matches!(child.try_wait(), Ok(Some(_)))
}

/// Waits up to `limit` for the watched name to be claimed (`Some(owner)`) or, with
/// `released`, given up (`Some("")`); `None` when nothing of the kind came.
pub(super) async fn owner_change(
    owners: &mut zbus::fdo::NameOwnerChangedStream,
    released: bool,
    limit: Duration,
) -> Option<String> {
    tokio::time::timeout(limit, async {
        while let Some(s) = owners.next().await {
            let Ok(a) = s.args() else { continue };
            match a.new_owner().as_ref() {
                Some(o) if !released => return Some(o.to_string()),
                None if released => return Some(String::new()),
                _ => {}
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Execs the plugin as NM does: `--bus-name`, NM's log variables, the bus in
/// `DBUS_SYSTEM_BUS_ADDRESS`, in the namespace, its output to `log`.
pub(super) fn spawn(
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
pub(super) async fn peer_watch(
    c: &mut Checks,
    info: &PluginInfo,
    profile: &Profile,
    ns: &Netns,
    bus: &Bus,
    conn: &zbus::Connection,
    o: &Opts,
) -> anyhow::Result<()> {
    let (five, connect_timeout) = (o.limit(), o.connect_limit());
    let bus_name = info.bus_name(2);
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut owners = dbus
        .receive_name_owner_changed_with_args(&[(0, bus_name.as_str())])
        .await?;
    let log = tempfile::NamedTempFile::new()?;
    let mut child = spawn(info, &bus_name, ns, bus, &log)?;
    if owner_change(&mut owners, false, five).await.is_none() {
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
    let released = owner_change(&mut owners, true, five).await.is_some();
    c.put(
        "peer-watch",
        released,
        if released {
            format!(
                "the caller left: the name was given up after {} ms",
                t.elapsed().as_millis()
            )
        } else {
            format!(
                "the caller of Connect left the bus; the plugin kept its name for {} s",
                five.as_secs()
            )
        },
    );
    let below = tinynm_sandbox::descendants(child.id());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let end = Instant::now() + five;
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
