//! The world each scenario runs in: its own namespace (with a parent network), its own bus,
//! its own tinynmd; and a recorder of the signals that matter.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tinynm_config::Profile;
use tinynm_sandbox::nm::{ManagerProxy, SettingsProxy};
use tinynm_sandbox::{Bus, Daemon, DaemonOptions, Kernel, Netns};
use tokio::sync::mpsc;
use zbus::{MatchRule, MessageStream, OwnedObjectPath};

pub const TESTBENCH: &str = "org.freedesktop.NetworkManager.testbench";
pub const LIMIT: Duration = Duration::from_secs(30);

/// Fields drop in order: tinynmd first (it takes its VPNs down over the bus), then the bus,
/// then the namespace.
pub struct World {
    pub daemon: Daemon,
    pub conn: zbus::Connection,
    pub bus: Bus,
    pub ns: Netns,
    /// The server's namespace, in a two-host world.
    pub server: Option<Netns>,
    events: mpsc::UnboundedReceiver<Signal>,
    pub seen: Vec<Signal>,
}

/// A signal from tinynmd about an active connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Connection.Active.StateChanged(state, reason)
    Ac(String, u32, u32),
    /// VPN.Connection.VpnStateChanged(state, reason)
    Vpn(String, u32, u32),
    /// ObjectManager.InterfacesRemoved for a path
    Removed(String),
    /// ObjectManager.InterfacesAdded: the path and its interfaces, sorted
    Added(String, Vec<String>),
    /// Device.StateChanged(new, old, reason)
    Dev(String, u32, u32, u32),
}

/// The network tinynmd's namespace starts with.
enum Topology<'a> {
    /// `veth0` 10.99.0.2/24 with a default route ([`Netns::add_parent`]).
    Parent,
    /// A server namespace behind `veth0` ([`Netns::add_server`]).
    Server,
    /// An unconfigured `veth0` to a router namespace ([`Netns::add_uplink`]).
    Uplink(Box<dyn FnOnce(&Netns) + 'a>),
}

impl World {
    pub async fn new() -> World {
        Self::with(DaemonOptions::default()).await
    }

    pub async fn with(opts: DaemonOptions) -> World {
        Self::build(opts, Topology::Parent).await
    }

    /// tinynmd's namespace with an unconfigured uplink `veth0` whose far end is a router's
    /// (`server`, 10.99.0.1): [`Netns::add_uplink`]. `before` runs between the two namespaces'
    /// making and tinynmd's start (a DHCP server to start first).
    pub async fn with_uplink(opts: DaemonOptions, before: impl FnOnce(&Netns)) -> World {
        Self::build(opts, Topology::Uplink(Box::new(before))).await
    }

    /// A client namespace (tinynmd's) and a server namespace joined by a veth pair
    /// ([`Netns::add_server`]).
    pub async fn with_server(opts: DaemonOptions) -> World {
        Self::build(opts, Topology::Server).await
    }

    async fn build(opts: DaemonOptions, topo: Topology<'_>) -> World {
        let ns = Netns::new().expect("namespace (tests must run as root)");
        let server = match topo {
            Topology::Server => Some(ns.add_server().expect("server network")),
            Topology::Parent => {
                ns.add_parent().expect("parent network");
                None
            }
            Topology::Uplink(before) => {
                let router = ns.add_uplink().expect("uplink");
                before(&router);
                Some(router)
            }
        };
        let bus = Bus::start().expect("private bus");
        // Listening before tinynmd starts: what it does at start (autoconnects) is seen too.
        let conn = bus.connect().await.expect("client connection");
        let (tx, events) = mpsc::unbounded_channel();
        // One stream for everything tinynmd signals, so the order is the order on the wire.
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .path_namespace("/org/freedesktop")
            .build()
            .unwrap();
        let mut stream = MessageStream::for_match_rule(rule, &conn, None)
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let h = m.header();
                let path = h.path().map(|p| p.to_string()).unwrap_or_default();
                let sig = match (
                    h.interface().map(|i| i.as_str()),
                    h.member().map(|m| m.as_str()),
                ) {
                    (
                        Some("org.freedesktop.NetworkManager.Connection.Active"),
                        Some("StateChanged"),
                    ) => {
                        let (s, r): (u32, u32) = m.body().deserialize().unwrap();
                        Signal::Ac(path, s, r)
                    }
                    (Some("org.freedesktop.NetworkManager.Device"), Some("StateChanged")) => {
                        let (n, o, r): (u32, u32, u32) = m.body().deserialize().unwrap();
                        Signal::Dev(path, n, o, r)
                    }
                    (_, Some("VpnStateChanged")) => {
                        let (s, r): (u32, u32) = m.body().deserialize().unwrap();
                        Signal::Vpn(path, s, r)
                    }
                    (_, Some("InterfacesAdded")) => {
                        type Ifaces = std::collections::HashMap<
                            String,
                            std::collections::HashMap<String, zbus::OwnedVariant>,
                        >;
                        let (p, i): (OwnedObjectPath, Ifaces) = m.body().deserialize().unwrap();
                        let mut names: Vec<String> = i.into_keys().collect();
                        names.sort();
                        Signal::Added(p.to_string(), names)
                    }
                    (_, Some("InterfacesRemoved")) => {
                        let (p, _): (OwnedObjectPath, Vec<String>) =
                            m.body().deserialize().unwrap();
                        Signal::Removed(p.to_string())
                    }
                    _ => continue,
                };
                if tx.send(sig).is_err() {
                    break;
                }
            }
        });
        let daemon = Daemon::start(&ns, &bus, opts).await.expect("tinynmd");
        World {
            ns,
            server,
            bus,
            daemon,
            conn,
            events,
            seen: Vec::new(),
        }
    }

    pub async fn manager(&self) -> ManagerProxy<'static> {
        ManagerProxy::new(&self.conn).await.unwrap()
    }

    pub async fn settings(&self) -> SettingsProxy<'static> {
        SettingsProxy::new(&self.conn).await.unwrap()
    }

    /// Waits (at most [`LIMIT`]) until `check` gives a value, checking again after every
    /// signal tinynmd emits.
    pub async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender("org.freedesktop.NetworkManager")
            .build()
            .unwrap();
        let mut stream = MessageStream::for_match_rule(rule, &self.conn, None)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(_)) => {}
                _ => panic!(
                    "{what}: not within {LIMIT:?}\n--- tinynmd log ---\n{}",
                    self.daemon.log_text()
                ),
            }
        }
    }

    /// The devices' paths by interface name, once `names` are all there.
    pub async fn devices(&self, names: &[&str]) -> HashMap<String, OwnedObjectPath> {
        self.until(&format!("devices {names:?}"), || async {
            let mut out = HashMap::new();
            for d in self.manager().await.devices().await.ok()? {
                let p = tinynm_sandbox::nm::DeviceProxy::builder(&self.conn)
                    .path(d.clone())
                    .build()
                    .await
                    .ok()?;
                out.insert(p.interface().await.ok()?, d);
            }
            names.iter().all(|n| out.contains_key(*n)).then_some(out)
        })
        .await
    }

    /// The IP4Config of an active connection, once it has one.
    pub async fn ip4_config(&self, ac: &OwnedObjectPath) -> OwnedObjectPath {
        self.until("the IP4Config", || async {
            let a = tinynm_sandbox::nm::ActiveProxy::builder(&self.conn)
                .path(ac.clone())
                .build()
                .await
                .ok()?;
            a.ip4_config().await.ok().filter(|p| p.as_str() != "/")
        })
        .await
    }

    /// The profiles, less those tinynmd generates for the interfaces it finds configured.
    pub async fn vpn_profiles(&self) -> Vec<OwnedObjectPath> {
        let mut out = Vec::new();
        for p in self.settings().await.list_connections().await.unwrap() {
            if self.profile_object(&p).await.flags().await.unwrap() & 0x2 == 0 {
                out.push(p);
            }
        }
        out
    }

    /// The active VPN connections (not the external ones of configured interfaces).
    pub async fn vpn_actives(&self) -> Vec<OwnedObjectPath> {
        let mut out = Vec::new();
        for a in self.manager().await.active_connections().await.unwrap() {
            let ac = tinynm_sandbox::nm::ActiveProxy::builder(&self.conn)
                .path(a.clone())
                .build()
                .await
                .unwrap();
            // One that ended meanwhile is not listed.
            if ac.vpn().await.unwrap_or(false) {
                out.push(a);
            }
        }
        out
    }

    /// The profile files tinynmd has written.
    pub fn saved_profiles(&self) -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&self.daemon.profile_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    /// The Settings.Connection object of a profile.
    pub async fn profile_object(
        &self,
        path: &OwnedObjectPath,
    ) -> tinynm_sandbox::nm::SettingsConnectionProxy<'static> {
        tinynm_sandbox::nm::SettingsConnectionProxy::builder(&self.conn)
            .path(path.clone())
            .build()
            .await
            .unwrap()
    }

    /// Adds a test-bench profile with this vpn.data; returns its path.
    pub async fn add(&self, id: &str, data: &[(&str, &str)]) -> OwnedObjectPath {
        self.add_profile(profile(id, TESTBENCH, data)).await
    }

    pub async fn add_profile(&self, p: Profile) -> OwnedObjectPath {
        let d = tinynm_config::dbus::to_dict(&p, true);
        self.settings()
            .await
            .add_connection_unsaved(d)
            .await
            .unwrap()
    }

    pub async fn activate(&self, profile: &OwnedObjectPath) -> zbus::Result<OwnedObjectPath> {
        let root = zbus::ObjectPath::try_from("/").unwrap();
        self.manager()
            .await
            .activate_connection(profile, &root, &root)
            .await
    }

    /// Waits (bounded) for the VPN state of `ac` to reach one of `states`; returns (state, reason).
    pub async fn wait_vpn(&mut self, ac: &str, states: &[u32]) -> (u32, u32) {
        let ac = ac.to_string();
        self.wait(|s| match s {
            Signal::Vpn(p, st, r) if *p == ac && states.contains(st) => Some((*st, *r)),
            _ => None,
        })
        .await
    }

    /// Waits (bounded) for a VPN state change of an active connection not in `except`;
    /// returns that active connection.
    pub async fn wait_vpn_other(&mut self, except: &[&str]) -> String {
        self.wait(|s| match s {
            Signal::Vpn(p, _, _) if !except.contains(&p.as_str()) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Waits (bounded) for the active connection object to be removed.
    pub async fn wait_removed(&mut self, ac: &str) {
        let ac = ac.to_string();
        self.wait(|s| match s {
            Signal::Removed(p) if *p == ac => Some(()),
            _ => None,
        })
        .await
    }

    /// `tinynm ARGS` on this world's bus.
    pub fn tinynm(&self, args: &[&str]) -> std::process::Output {
        let bin = tinynm_sandbox::binary("tinynm").expect("tinynm binary");
        std::process::Command::new(bin)
            .arg("--bus-address")
            .arg(&self.bus.address)
            .args(args)
            .output()
            .expect("run tinynm")
    }

    /// Forgets the signals seen so far (a restarted tinynmd numbers its connections anew).
    pub fn forget_signals(&mut self) {
        while self.events.try_recv().is_ok() {}
        self.seen.clear();
    }

    async fn wait<T>(&mut self, f: impl Fn(&Signal) -> Option<T>) -> T {
        self.wait_within(LIMIT, f).await
    }

    async fn wait_within<T>(&mut self, limit: Duration, f: impl Fn(&Signal) -> Option<T>) -> T {
        if let Some(t) = self.seen.iter().find_map(&f) {
            return t;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(s)) => {
                    let hit = f(&s);
                    self.seen.push(s);
                    if let Some(t) = hit {
                        return t;
                    }
                }
                _ => panic!(
                    "no such signal within {limit:?}; seen: {:?}\n--- tinynmd log ---\n{}",
                    self.seen,
                    self.daemon.log_text()
                ),
            }
        }
    }

    /// Waits (bounded by `limit`) until tinynmd has logged `what`: for what shows on no bus (a
    /// DHCP renewal); returns the log.
    pub async fn wait_log(&self, what: &str, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let log = self.daemon.log_text();
            if log.contains(what) {
                return log;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("tinynmd never logged {what:?} within {limit:?}:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) for device `dev` (its path) to reach `state`; returns the reason.
    pub async fn wait_device(&mut self, dev: &str, state: u32) -> u32 {
        self.wait_device_within(dev, state, LIMIT).await
    }

    /// The same, for states that come after a server's timer (a lease's end): bounded by
    /// `limit`.
    pub async fn wait_device_within(&mut self, dev: &str, state: u32, limit: Duration) -> u32 {
        let dev = dev.to_string();
        self.wait_within(limit, |s| match s {
            Signal::Dev(p, n, _, r) if *p == dev && *n == state => Some(*r),
            _ => None,
        })
        .await
    }

    /// The states device `dev` went through, in order: (new, reason).
    pub fn device_states(&self, dev: &str) -> Vec<(u32, u32)> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Signal::Dev(p, n, _, r) if p == dev => Some((*n, *r)),
                _ => None,
            })
            .collect()
    }

    /// Waits (bounded) for any AC state signal matching `f`; returns the AC's path.
    pub async fn wait_ac(&mut self, f: impl Fn(&str, u32, u32) -> bool) -> String {
        self.wait(|s| match s {
            Signal::Ac(p, st, r) if f(p, *st, *r) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// The VPN states `ac` went through, in order.
    pub fn vpn_states(&self, ac: &str) -> Vec<(u32, u32)> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Signal::Vpn(p, st, r) if p == ac => Some((*st, *r)),
                _ => None,
            })
            .collect()
    }

    /// The AC states `ac` went through, in order.
    pub fn ac_states(&self, ac: &str) -> Vec<(u32, u32)> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Signal::Ac(p, st, r) if p == ac => Some((*st, *r)),
                _ => None,
            })
            .collect()
    }

    pub fn kernel(&self) -> Kernel {
        self.ns.snapshot().expect("netlink dump")
    }

    /// The kernel as it is with only the parent network: what every test must come back to.
    pub fn assert_clean(&self, baseline: &Kernel) {
        let now = self.kernel();
        assert_eq!(now.routes, baseline.routes, "routes left behind\n{now}");
        assert_eq!(
            now.addresses, baseline.addresses,
            "addresses left behind\n{now}"
        );
        assert_eq!(now.rules, baseline.rules, "rules left behind\n{now}");
        let links = |k: &Kernel| -> Vec<(String, bool, u32)> {
            k.links
                .iter()
                .map(|l| (l.name.clone(), l.up, l.mtu))
                .collect()
        };
        // A plugin's tun goes when the plugin has quit, which may come just after the
        // connection is gone: wait for that (bounded), not for anything else.
        let deadline = std::time::Instant::now() + LIMIT;
        let mut now = now;
        while links(&now) != links(baseline) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            now = self.kernel();
        }
        assert_eq!(
            links(&now),
            links(baseline),
            "links left behind or changed (name, up, MTU)\n{now}"
        );
    }
}

pub fn profile(id: &str, service: &str, data: &[(&str, &str)]) -> Profile {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let uuid = format!(
        "{:08x}-0000-4000-8000-{n:012x}",
        fxhash(id) ^ fxhash(service)
    );
    let mut p = Profile::new_vpn(id, &uuid, service);
    p.connection.autoconnect = false;
    p.vpn.data = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    p
}

fn fxhash(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x01000193)
    })
}

pub fn data(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Starts `tinynm agent …` as `cmd` says and waits until it has registered (its first line).
pub fn spawn_tinynm_agent(cmd: &mut std::process::Command) -> std::process::Child {
    let mut agent = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(agent.stderr.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("tinynm agent: answering"), "{first}");
    agent
}

/// What a [`TestAgent`] was asked: (flags, hints).
pub type AgentRequests = std::sync::Arc<std::sync::Mutex<Vec<(u32, Vec<String>)>>>;

/// How a [`TestAgent`] behaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AgentMode {
    /// Gives its secrets to every request.
    Answer,
    /// Gives them only when it may interact (as nmcli's agent).
    Interactive,
    /// Leaves the bus in the middle of the request.
    Vanish,
    /// Never answers.
    Silent,
}

struct AgentIface {
    secrets: HashMap<String, String>,
    mode: AgentMode,
    conn: Option<zbus::Connection>,
    seen: AgentRequests,
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    changed: std::sync::Arc<tokio::sync::Notify>,
}

impl AgentIface {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
        self.changed.notify_waiters();
    }
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.SecretAgent")]
impl AgentIface {
    async fn get_secrets(
        &self,
        _connection: tinynm_sandbox::nm::SettingsDict,
        _connection_path: OwnedObjectPath,
        _setting_name: String,
        hints: Vec<String>,
        flags: u32,
    ) -> zbus::fdo::Result<tinynm_sandbox::nm::SettingsDict> {
        self.seen.lock().unwrap().push((flags, hints));
        if self.mode == AgentMode::Silent {
            std::future::pending::<()>().await;
        }
        if self.mode == AgentMode::Vanish {
            // Leave the bus in the middle of the request, never answering it.
            if let Some(c) = self.conn.clone() {
                tokio::spawn(async move {
                    let _ = c.close().await;
                });
            }
            std::future::pending::<()>().await;
        }
        if self.mode == AgentMode::Interactive && flags & 0x1 == 0 {
            return Err(zbus::fdo::Error::Failed("no stored secrets".into()));
        }
        let secrets = zbus::Variant::from(self.secrets.clone())
            .try_into_owned()
            .unwrap();
        Ok(HashMap::from([(
            "vpn".to_string(),
            HashMap::from([("secrets".to_string(), secrets)]),
        )]))
    }

    fn cancel_get_secrets(&self, _connection_path: OwnedObjectPath, _setting_name: String) {
        self.record("cancel".into());
    }

    fn save_secrets(
        &self,
        connection: tinynm_sandbox::nm::SettingsDict,
        _connection_path: OwnedObjectPath,
    ) {
        let p = tinynm_config::dbus::from_dict(&connection).unwrap();
        let keys: Vec<String> = p.vpn.secrets.keys().cloned().collect();
        self.record(format!("save {}", keys.join(",")));
    }

    fn delete_secrets(
        &self,
        _connection: tinynm_sandbox::nm::SettingsDict,
        _connection_path: OwnedObjectPath,
    ) {
        self.record("delete".into());
    }
}

/// A secret agent of the test's own, behaving as `mode` says; it records the requests it got
/// (`seen`) and its SaveSecrets/DeleteSecrets/CancelGetSecrets calls (`calls`).
pub struct TestAgent {
    pub conn: zbus::Connection,
    pub seen: AgentRequests,
    pub calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    changed: std::sync::Arc<tokio::sync::Notify>,
}

impl TestAgent {
    /// Waits (at most [`LIMIT`]) until the agent has had `n` calls `what`.
    pub async fn wait_calls(&self, what: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self
                .calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| *c == what)
                .count();
            if got >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "the agent never had {n} {what:?} calls: {:?}",
                    self.calls.lock().unwrap()
                );
            }
        }
    }

    pub async fn register(w: &World, secrets: &[(&str, &str)], mode: AgentMode) -> TestAgent {
        let seen = AgentRequests::default();
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let changed = std::sync::Arc::new(tokio::sync::Notify::new());
        let conn = w.bus.connect().await.unwrap();
        let iface = AgentIface {
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            mode,
            conn: Some(conn.clone()),
            seen: seen.clone(),
            calls: calls.clone(),
            changed: changed.clone(),
        };
        conn.object_server()
            .at("/org/freedesktop/NetworkManager/SecretAgent", iface)
            .await
            .unwrap();
        conn.call_method(
            Some("org.freedesktop.NetworkManager"),
            "/org/freedesktop/NetworkManager/AgentManager",
            Some("org.freedesktop.NetworkManager.AgentManager"),
            "RegisterWithCapabilities",
            &("tinynm-test-agent", 1u32),
        )
        .await
        .unwrap();
        TestAgent {
            conn,
            seen,
            calls,
            changed,
        }
    }
}

/// The processes below `pid` (its children, theirs…) named `comm`: ours, since we started
/// their ancestor.
pub fn descendants_named(pid: u32, comm: &str) -> Vec<u32> {
    tinynm_sandbox::descendants(pid)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim_end() == comm)
        })
        .collect()
}

/// One echo request from `ns`; whether it was answered within `wait` seconds.
pub fn ping(ns: &tinynm_sandbox::Netns, addr: &str, wait: u32) -> bool {
    let bin = tinynm_sandbox::require_tool("ping", "iputils-ping").unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["-c", "1", "-W", &wait.to_string(), addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    ns.prepare(&mut cmd);
    cmd.status().expect("ping").success()
}

/// Makes tinynm-openvpn the OpenVPN plugin of `w`'s tinynmd.
pub fn use_tinynm_openvpn(w: &World) {
    let program = tinynm_sandbox::binary("tinynm-openvpn").unwrap();
    std::fs::write(
        w.daemon.plugin_dir.join("nm-openvpn-service.name"),
        tinynm_sandbox::openvpn::name_file(&program),
    )
    .unwrap();
}

/// tinynmd's children named `comm` (ours: we started tinynmd).
pub fn children_named(parent: u32, comm: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid …
            let Some((name, rest)) = stat.split_once(") ") else {
                return false;
            };
            let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            name.split_once(" (").is_some_and(|(_, n)| n == comm) && ppid == Some(parent)
        })
        .collect()
}

/// Debian's `nmcli` on the bus at `address`, in the C locale, with libnm's protocol checks
/// fatal (`LIBNM_CLIENT_DEBUG=warning,error G_DEBUG=fatal-warnings`).
pub fn nmcli_on(address: &str, args: &[&str]) -> std::process::Output {
    let bin = tinynm_sandbox::require_tool("nmcli", "network-manager").expect("nmcli");
    std::process::Command::new(bin)
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", address)
        .env("LIBNM_CLIENT_DEBUG", "warning,error")
        .env("G_DEBUG", "fatal-warnings")
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .output()
        .expect("run nmcli")
}

/// nmcli's arguments adding a test-bench VPN profile `name` with `vpn.data` `data`.
pub fn nmcli_add_vpn_args<'a>(name: &'a str, data: &'a str) -> [&'a str; 10] {
    [
        "connection",
        "add",
        "type",
        "vpn",
        "vpn-type",
        TESTBENCH,
        "con-name",
        name,
        "vpn.data",
        data,
    ]
}
