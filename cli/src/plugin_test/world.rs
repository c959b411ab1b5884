//! The plugin's world (a namespace, a private bus, the bench's connection) and the plugin's
//! instances in it: each exec'd as NM does, watched by its signals, ended and checked for what
//! it leaves.

pub(super) use super::instance::Instance;
use super::*;

/// A signal from the plugin: its member and its body's dict, or its `u`.
#[derive(Debug)]
pub(super) enum Sig {
    State(u32),
    Config(Dict),
    Ip4(Dict),
    Ip6(Dict),
    Failure(u32),
    /// `SecretsRequired(message, secrets)`.
    SecretsRequired(String, Vec<String>),
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
        "SecretsRequired" => {
            let (m, s): (String, Vec<String>) = b.deserialize().ok()?;
            Sig::SecretsRequired(m, s)
        }
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
    // The plugin's own words, not its bus library's tracing (NM_VPN_LOG_LEVEL asks for debug).
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(" TRACE ") && !l.contains(" DEBUG "))
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
        .env("NM_VPN_LOG_LEVEL", "6")
        .env("NM_VPN_LOG_SYSLOG", "0")
        .stdin(std::process::Stdio::null())
        .stdout(log.reopen()?)
        .stderr(log.reopen()?)
        .process_group(0);
    ns.prepare(&mut cmd);
    // For helpers that know only the default socket (nm-openvpn-service's): a /run of its own
    // where /run/dbus/system_bus_socket is the world's bus.
    tinynm_sandbox::private_run_for(&mut cmd, &bus.socket())?;
    cmd.spawn()
        .with_context(|| format!("cannot execute {}", info.program.display()))
}

/// The throwaway world the plugin runs in.
pub(super) struct World<'a> {
    /// `--server`'s process, if any (first: it ends before the namespaces go).
    _server: Option<super::server::Server>,
    pub info: &'a PluginInfo,
    /// The profile, with what `--secrets-command` printed among its secrets.
    pub profile: Profile,
    pub ns: Netns,
    pub bus: Bus,
    pub conn: zbus::Connection,
    pub dbus: zbus::fdo::DBusProxy<'static>,
    /// NM's 5 s (or the fast second), and the time `Connect` gets.
    pub five: Duration,
    pub connect_timeout: Duration,
    /// What each scenario left behind, labelled with the scenario.
    pub left: Vec<String>,
    /// `--ipv6`: the plugin must send an Ip6Config.
    pub ipv6: bool,
    /// `--ping`: addresses that must answer through the VPN in `applied`.
    pub ping: Vec<String>,
    /// The next `Connection_N`.
    next: u64,
    /// `--secrets-command`, run again before each further instance: a login's cookie is
    /// good for one session.
    secrets_command: Option<String>,
}

impl<'a> World<'a> {
    pub async fn new(info: &'a PluginInfo, mut profile: Profile, o: &Opts) -> anyhow::Result<Self> {
        let ns = Netns::new().context("a network namespace")?;
        let server = match &o.server {
            Some(cmd) => Some(super::server::start(
                &ns,
                cmd,
                o.server_ready.as_deref(),
                o.connect_limit(),
            )?),
            None => {
                ns.add_parent().context("the namespace's parent network")?;
                None
            }
        };
        if let Some(cmd) = &o.secrets_command {
            profile
                .vpn
                .secrets
                .extend(secrets_from(&ns, cmd, o.connect_limit())?);
        }
        let bus = Bus::start().context("a private bus")?;
        let conn = bus.connect().await.context("the private bus")?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        Ok(World {
            info,
            profile,
            ns,
            bus,
            conn,
            dbus,
            five: o.limit(),
            connect_timeout: o.connect_limit(),
            left: Vec::new(),
            ipv6: o.ipv6,
            ping: o.ping.clone(),
            next: 1,
            secrets_command: o.secrets_command.clone(),
            _server: server,
        })
    }

    /// Runs `--secrets-command` again (a fresh login), if there is one.
    pub fn refresh_secrets(&mut self) -> anyhow::Result<()> {
        if let Some(cmd) = &self.secrets_command {
            let fresh = secrets_from(&self.ns, cmd, self.connect_timeout)?;
            self.profile.vpn.secrets.extend(fresh);
        }
        Ok(())
    }

    /// The profile as the plugin gets it in `Connect`.
    pub fn dict(&self) -> tinynm_config::dbus::SettingsDict {
        tinynm_config::dbus::to_plugin_dict(&self.profile)
    }

    /// Execs the next instance and waits for its name: the instance, or why it has none
    /// (with the plugin's last words if it exited).
    pub async fn launch(&mut self) -> anyhow::Result<Result<Instance, String>> {
        if self.next > 1 {
            self.refresh_secrets()?;
        }
        let n = self.next;
        self.next += 1;
        let bus_name = self.info.bus_name(n);
        let mut owners = self
            .dbus
            .receive_name_owner_changed_with_args(&[(0, bus_name.as_str())])
            .await?;
        let base = self.ns.snapshot()?;
        let log = tempfile::NamedTempFile::new()?;
        let started = Instant::now();
        let mut child = spawn(self.info, &bus_name, &self.ns, &self.bus, &log)?;
        let Some(owner) = owner_change(&mut owners, false, self.five).await else {
            let why = format!(
                "{bus_name} not claimed within {} s{}",
                self.five.as_secs(),
                if gone(&mut child) {
                    format!(" (the plugin exited; its last words: {})", tail(&log, 3))
                } else {
                    String::new()
                }
            );
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Err(why));
        };
        let claimed = started.elapsed();
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(owner.as_str())
            .interface("org.freedesktop.NetworkManager.VPN.Plugin")
            .build()?;
        let signals = MessageStream::for_match_rule(rule, &self.conn, None).await?;
        let plugin = VpnPluginProxy::builder(&self.conn)
            .destination(bus_name.clone())
            .build()
            .await?;
        Ok(Ok(Instance {
            pid: child.id(),
            child,
            bus_name,
            owner,
            claimed,
            log,
            base,
            owners,
            signals,
            plugin,
            below: Default::default(),
            gone: false,
        }))
    }

    /// Ends `inst` (SIGTERM if it is still there, SIGKILL 5 s later) and notes, under
    /// `label`, every process and kernel object it leaves; `Some(true)` when SIGTERM ended
    /// it, `Some(false)` when it had to be killed, `None` when it had gone by itself.
    pub async fn finish(
        &mut self,
        mut inst: Instance,
        label: &str,
    ) -> anyhow::Result<Option<bool>> {
        inst.note_processes();
        // A plugin that gave its name up is on its way out: NM's time to go, before SIGTERM.
        if self
            .dbus
            .get_name_owner(inst.bus_name.as_str().try_into()?)
            .await
            .is_err()
        {
            let end = Instant::now() + self.five;
            while !gone(&mut inst.child) && Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let termed = if gone(&mut inst.child) {
            None
        } else {
            signal(inst.pid, nix::sys::signal::Signal::SIGTERM);
            let end = Instant::now() + self.five;
            while !gone(&mut inst.child) && Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let ended = gone(&mut inst.child);
            if !ended {
                let _ = inst.child.kill();
                let _ = inst.child.wait();
            }
            Some(ended)
        };
        let end = Instant::now() + self.five;
        let mut left: Vec<String>;
        loop {
            inst.note_processes();
            left = inst
                .below
                .iter()
                .filter(|p| Path::new(&format!("/proc/{p}")).exists())
                .map(|p| {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                    format!("process {p} ({})", comm.trim())
                })
                .collect();
            left.extend(leftovers(&inst.base, &self.ns.snapshot()?));
            if left.is_empty() || Instant::now() >= end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for p in &inst.below {
            signal(*p, nix::sys::signal::Signal::SIGKILL);
        }
        if !left.is_empty() {
            let how = match termed {
                None => "",
                Some(true) => ", ended by SIGTERM",
                Some(false) => ", killed",
            };
            self.left
                .push(format!("after {label}{how}: {}", left.join(", ")));
        }
        Ok(termed)
    }
}

/// `Disconnect`'s answer, as NM takes it: a plugin may leave the bus before its reply goes
/// out (Debian's plugins do, at times); NM is past needing it. `Ok(true)` for that case.
pub(super) fn disconnect_answer(r: zbus::Result<()>) -> zbus::Result<bool> {
    match r {
        Ok(()) => Ok(false),
        Err(zbus::Error::FDO(e)) if matches!(*e, zbus::fdo::Error::NoReply(_)) => Ok(true),
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.DBus.Error.NoReply" =>
        {
            Ok(true)
        }
        // libnm's answer when it had already stopped (a Connect that failed): as good.
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.NetworkManager.VPN.Error.AlreadyStopped" =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// How a plugin went after `Disconnect`, in words; and whether as NM expects (its name
/// released: NM reads that as stopped, with or without STOPPED).
pub(super) fn stop_verdict(
    stopped: bool,
    released: bool,
    unreplied: bool,
    five: Duration,
) -> (bool, String) {
    let secs = five.as_secs();
    let note = if unreplied {
        " (it left the bus before its reply went out, which NM tolerates)"
    } else {
        ""
    };
    match (stopped, released) {
        (true, true) => (
            true,
            format!("STOPPED and the name released within {secs} s{note}"),
        ),
        (false, true) => (
            true,
            format!("the name released within {secs} s, without STOPPED{note}"),
        ),
        (true, false) => (
            false,
            format!("STOPPED, but the name still owned {secs} s later"),
        ),
        (false, false) => (
            false,
            format!("neither STOPPED nor the name released {secs} s later"),
        ),
    }
}

/// `--secrets-command`: runs `cmd` (by `sh -c`) in the plugin's namespace, once `--server` is
/// up; each `KEY=VALUE` line it prints is a secret (a cookie a headless login step makes).
fn secrets_from(
    ns: &Netns,
    cmd: &str,
    limit: Duration,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    ns.prepare(&mut c);
    let child = c
        .spawn()
        .with_context(|| format!("--secrets-command: cannot run {cmd:?}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(o) => o?,
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            bail!(
                "--secrets-command did not finish within {} s",
                limit.as_secs()
            );
        }
    };
    if !out.status.success() {
        bail!(
            "--secrets-command failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut secrets = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let Some((k, v)) = line.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            bail!("--secrets-command printed '{line}': expected KEY=VALUE lines");
        };
        secrets.insert(k.to_string(), v.to_string());
    }
    Ok(secrets)
}

/// Sends `sig` to `pid`.
pub(super) fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}
