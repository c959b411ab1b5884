//! `tinynm monitor`: the daemon's changes, a line each as they happen (nmcli's `monitor`),
//! or with `--json` an object per line: {"event", "object", "state", "reason"?, …}.

use std::collections::HashMap;

use futures::StreamExt;
use tinynm_config::nm::{Reason, VpnState};
use zbus::proxy::CacheProperties;
use zbus::{MatchRule, MessageStream, OwnedVariant};

use crate::names;
use crate::out::Out;

const NM: &str = "org.freedesktop.NetworkManager";

/// Follows the daemon until stopped (Ctrl-C, SIGTERM) or the bus goes.
pub async fn run(conn: &zbus::Connection, out: Out) -> anyhow::Result<()> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path_namespace("/org/freedesktop/NetworkManager")
        .build()?;
    let mut stream = MessageStream::for_match_rule(rule, conn, None).await?;
    let mut names = Names::default();
    names.load(conn).await;
    eprintln!("tinynm monitor: following the daemon (Ctrl-C stops)");
    let follow = async {
        while let Some(m) = stream.next().await {
            let m = m?;
            let h = m.header();
            let (Some(iface), Some(member), Some(path)) = (h.interface(), h.member(), h.path())
            else {
                continue;
            };
            let path = path.to_string();
            let event = match (iface.as_str(), member.as_str()) {
                ("org.freedesktop.NetworkManager.Device", "StateChanged") => {
                    let (new, _old, reason): (u32, u32, u32) = m.body().deserialize()?;
                    let dev = names.device(conn, &path).await;
                    // As nmcli: an interface configured outside the daemon is "connecting
                    // (externally)", then "connected (externally)".
                    let state = match new {
                        40..=90 if external(conn, &path).await => "connecting (externally)",
                        100 if external(conn, &path).await => "connected (externally)",
                        s => names::device_state(s),
                    };
                    let mut e = Event::new("device", &dev, state);
                    if new == 120 {
                        e.reason = Some(names::device_reason(reason));
                    }
                    e
                }
                (NM, "DeviceAdded") | (NM, "DeviceRemoved") => {
                    let (dev,): (zbus::OwnedObjectPath,) = m.body().deserialize()?;
                    let name = names.device(conn, dev.as_str()).await;
                    if member.as_str() == "DeviceRemoved" {
                        names.devices.remove(dev.as_str());
                    }
                    let what = if member.as_str() == "DeviceAdded" {
                        "device created"
                    } else {
                        "device removed"
                    };
                    Event::new("device", &name, what)
                }
                ("org.freedesktop.NetworkManager.Connection.Active", "StateChanged") => {
                    let (state, reason): (u32, u32) = m.body().deserialize()?;
                    let id = names.active(conn, &path).await;
                    if id == path {
                        // Gone before it could be named (an external connection's end): as
                        // nmcli, nothing to say.
                        continue;
                    }
                    let mut e = Event::new("connection", &id, names::ac_state(state));
                    if state == 4 {
                        // Kept: the VPN's last VpnStateChanged may come after this.
                        e.reason = Some(Reason::from_u32(reason).nmcli_text().into());
                    }
                    e
                }
                ("org.freedesktop.NetworkManager.VPN.Connection", "VpnStateChanged") => {
                    let (state, reason): (u32, u32) = m.body().deserialize()?;
                    let id = names.active(conn, &path).await;
                    let st = VpnState::from_u32(state);
                    let mut e = Event::new("vpn", &id, st.name());
                    if matches!(st, VpnState::Failed | VpnState::Disconnected) {
                        e.reason = Some(Reason::from_u32(reason).nmcli_text().into());
                    }
                    e
                }
                ("org.freedesktop.NetworkManager.Settings", "NewConnection") => {
                    let p = path_arg(&m);
                    Event::new("profile", &names.profile(conn, &p).await, "created")
                }
                ("org.freedesktop.NetworkManager.Settings", "ConnectionRemoved") => {
                    let p = path_arg(&m);
                    let id = names.profile(conn, &p).await;
                    names.profiles.remove(&p);
                    Event::new("profile", &id, "removed")
                }
                ("org.freedesktop.NetworkManager.Settings.Connection", "Updated") => {
                    names.profiles.remove(&path);
                    Event::new("profile", &names.profile(conn, &path).await, "changed")
                }
                ("org.freedesktop.DBus.Properties", "PropertiesChanged") => {
                    let (on, changed, _): (String, HashMap<String, OwnedVariant>, Vec<String>) =
                        m.body().deserialize()?;
                    match property_event(&on, &changed) {
                        Some(e) => e,
                        None => continue,
                    }
                }
                _ => continue,
            };
            event.print(out);
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = follow => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Whether the device's active connection was configured outside the daemon.
async fn external(conn: &zbus::Connection, device: &str) -> bool {
    let flags = async {
        let d = tinynm_client::DeviceProxy::builder(conn)
            .path(device.to_string())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .ok()?;
        let ac = d.active_connection().await.ok()?;
        if ac.as_str() == "/" {
            return None;
        }
        tinynm_client::ActiveProxy::builder(conn)
            .path(ac)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .ok()?
            .state_flags()
            .await
            .ok()
    };
    flags.await.is_some_and(|f| f & 0x80 != 0)
}

fn path_arg(m: &zbus::Message) -> String {
    m.body()
        .deserialize::<(zbus::OwnedObjectPath,)>()
        .map(|(p,)| p.to_string())
        .unwrap_or_default()
}

/// The Manager's state, connectivity and primary connection; the DNS in force.
fn property_event(on: &str, changed: &HashMap<String, OwnedVariant>) -> Option<Event> {
    let get = |k: &str| changed.get(k).and_then(|v| v.try_clone().ok());
    match on {
        NM => {
            if let Some(s) = get("State").and_then(|v| u32::try_from(v).ok()) {
                return Some(Event::new("daemon", "state", names::nm_state(s)));
            }
            if let Some(c) = get("Connectivity").and_then(|v| u32::try_from(v).ok()) {
                return Some(Event::new("daemon", "connectivity", names::connectivity(c)));
            }
            None
        }
        "org.freedesktop.NetworkManager.DnsManager" => {
            type Entry = HashMap<String, OwnedVariant>;
            let config: Vec<Entry> = get("Configuration")?.try_into().ok()?;
            let servers: Vec<String> = config
                .iter()
                .map(|e| {
                    let ns: Vec<String> = e
                        .get("nameservers")
                        .and_then(|v| v.try_clone().ok())
                        .and_then(|v| Vec::<String>::try_from(v).ok())
                        .unwrap_or_default();
                    let i: String = e
                        .get("interface")
                        .and_then(|v| v.try_clone().ok())
                        .and_then(|v| String::try_from(v).ok())
                        .unwrap_or_default();
                    format!("{} ({i})", ns.join(" "))
                })
                .collect();
            let s = if servers.is_empty() {
                "none".to_string()
            } else {
                servers.join(", ")
            };
            Some(Event::new("dns", "servers", &s))
        }
        _ => None,
    }
}

/// One line of the monitor.
struct Event {
    event: &'static str,
    object: String,
    state: String,
    reason: Option<String>,
}

impl Event {
    fn new(event: &'static str, object: &str, state: &str) -> Event {
        Event {
            event,
            object: object.to_string(),
            state: state.to_string(),
            reason: None,
        }
    }

    fn print(&self, out: Out) {
        use std::io::Write;
        if out.json {
            let mut v = serde_json::json!({
                "event": self.event, "object": self.object, "state": self.state,
            });
            if let Some(r) = &self.reason {
                v["reason"] = r.as_str().into();
            }
            println!("{v}");
        } else {
            let state = if out.color {
                crate::out::paint(&self.state)
            } else {
                self.state.clone()
            };
            let reason = self
                .reason
                .as_ref()
                .map_or(String::new(), |r| format!(" ({r})"));
            match self.event {
                "device" => println!("{}: {state}{reason}", self.object),
                "connection" => println!("'{}': {state}{reason}", self.object),
                "vpn" => println!("'{}': VPN {state}{reason}", self.object),
                "profile" => println!("{}: connection profile {state}", self.object),
                "dns" => println!("DNS: {state}"),
                _ if self.object == "connectivity" => println!("Connectivity is now '{state}'"),
                _ => println!("tinynmd is now in the '{state}' state"),
            }
        }
        let _ = std::io::stdout().flush();
    }
}

/// Names for paths: interfaces of devices, ids of active connections.
#[derive(Default)]
struct Names {
    devices: HashMap<String, String>,
    actives: HashMap<String, String>,
    /// Profiles' ids, known before they go (ConnectionRemoved comes once it has).
    profiles: HashMap<String, String>,
}

impl Names {
    async fn load(&mut self, conn: &zbus::Connection) {
        if let Ok(m) = tinynm_client::ManagerProxy::new(conn).await {
            for d in m.get_devices().await.unwrap_or_default() {
                self.device(conn, d.as_str()).await;
            }
        }
        if let Ok(s) = tinynm_client::SettingsProxy::new(conn).await {
            for p in s.list_connections().await.unwrap_or_default() {
                self.profile(conn, p.as_str()).await;
            }
        }
    }

    async fn profile(&mut self, conn: &zbus::Connection, path: &str) -> String {
        cached(&mut self.profiles, path, async {
            let d = tinynm_client::SettingsConnectionProxy::builder(conn)
                .path(path.to_string())
                .build()
                .await
                .ok()?
                .get_settings()
                .await
                .ok()?;
            String::try_from(d.get("connection")?.get("id")?.try_clone().ok()?).ok()
        })
        .await
    }

    async fn device(&mut self, conn: &zbus::Connection, path: &str) -> String {
        cached(&mut self.devices, path, async {
            let p = tinynm_client::DeviceProxy::builder(conn)
                .path(path.to_string())
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .ok()?;
            p.interface().await.ok()
        })
        .await
    }

    async fn active(&mut self, conn: &zbus::Connection, path: &str) -> String {
        cached(&mut self.actives, path, async {
            let p = tinynm_client::ActiveProxy::builder(conn)
                .path(path.to_string())
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .ok()?;
            p.id().await.ok()
        })
        .await
    }
}

/// The name `map` has for `path`, else what `look` finds (the path itself when nothing),
/// kept.
async fn cached(
    map: &mut HashMap<String, String>,
    path: &str,
    look: impl std::future::Future<Output = Option<String>>,
) -> String {
    if let Some(n) = map.get(path) {
        return n.clone();
    }
    let name = look.await.unwrap_or_else(|| path.to_string());
    map.insert(path.to_string(), name.clone());
    name
}
