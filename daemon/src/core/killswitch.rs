//! The kill switch (tinynm's own): which VPNs fail closed, and what the firewall lets through
//! for them (`firewall`).
//!
//! A VPN whose profile has `tinynm-kill-switch` (or any VPN under `[firewall] lockdown`)
//! engages the switch when it starts activating: its servers (the profile's, host names
//! resolved then, and the gateway its `Config` names) are let through, then its tunnel once
//! up. It stays engaged while it is up and after it dropped without the user asking (failed,
//! its server gone, tinynmd killed); only the user taking it down (`Deactivate`), turning the
//! switch off in the profile, deleting the profile, or `ReleaseKillSwitch` disengages it. The
//! table is in the kernel while anything is engaged, or always under lockdown.
//!
//! What is engaged is also kept in `state-dir/killswitch`, so that a tinynmd started after a
//! crash takes over the table it finds (the kernel kept it meanwhile) instead of opening it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tinynm_config::endpoints::{Transport, vpn_endpoints};
use tinynm_config::nm::AcState;
use tinynm_config::profile::TINYNM_KILL_SWITCH;

use super::Core;
use crate::firewall::{self, Ruleset, Server};

/// How long a server's host name may take to resolve when its VPN engages the switch.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The kill switch's state.
#[derive(Debug, Default)]
pub struct KillSwitch {
    /// Engaged VPNs by profile UUID, with their servers.
    engaged: BTreeMap<String, BTreeSet<Server>>,
    /// What the kernel holds (`None`: no table).
    installed: Option<Ruleset>,
    /// The last failure to install, shown until an install succeeds.
    pub error: Option<String>,
}

impl KillSwitch {
    /// UUIDs of the engaged VPNs.
    pub fn engaged(&self) -> Vec<String> {
        self.engaged.keys().cloned().collect()
    }

    fn state_file(dir: &std::path::Path) -> PathBuf {
        dir.join("killswitch")
    }
}

/// `UUID ADDR [udp|tcp PORT]` per line.
fn to_text(engaged: &BTreeMap<String, BTreeSet<Server>>) -> String {
    let mut out = String::new();
    for (uuid, servers) in engaged {
        if servers.is_empty() {
            out.push_str(&format!("{uuid}\n"));
        }
        for s in servers {
            match s.port {
                Some((Transport::Udp, p)) => out.push_str(&format!("{uuid} {} udp {p}\n", s.addr)),
                Some((Transport::Tcp, p)) => out.push_str(&format!("{uuid} {} tcp {p}\n", s.addr)),
                None => out.push_str(&format!("{uuid} {}\n", s.addr)),
            }
        }
    }
    out
}

fn from_text(text: &str) -> BTreeMap<String, BTreeSet<Server>> {
    let mut out: BTreeMap<String, BTreeSet<Server>> = BTreeMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(uuid) = w.first() else { continue };
        let set = out.entry(uuid.to_string()).or_default();
        let Some(addr) = w.get(1).and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        let port = match (w.get(2), w.get(3).and_then(|p| p.parse::<u16>().ok())) {
            (Some(&"udp"), Some(p)) => Some((Transport::Udp, p)),
            (Some(&"tcp"), Some(p)) => Some((Transport::Tcp, p)),
            _ => None,
        };
        set.insert(Server { addr, port });
    }
    out
}

/// The servers of a profile's `vpn.data`: address literals as they are, host names resolved
/// now (before the switch blocks the uplink's DNS).
async fn servers_of(profile: &tinynm_config::Profile) -> BTreeSet<Server> {
    let mut out = BTreeSet::new();
    let eps = match vpn_endpoints(&profile.vpn.service_type, &profile.vpn.data) {
        Ok(e) => e,
        Err(why) => {
            tracing::warn!("kill switch: {}: {why}", profile.connection.id);
            return out;
        }
    };
    for e in eps {
        if let Some(addr) = e.literal() {
            out.insert(Server { addr, port: e.port });
            continue;
        }
        let port = e.port.map(|(_, p)| p).unwrap_or(0);
        let lookup = tokio::net::lookup_host((e.host.as_str(), port));
        match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => out.extend(addrs.map(|a| Server {
                addr: a.ip(),
                port: e.port,
            })),
            Ok(Err(err)) => tracing::warn!(
                "kill switch: {}: cannot resolve the server '{}' ({err}); only its Config's gateway will pass",
                profile.connection.id,
                e.host
            ),
            Err(_) => tracing::warn!(
                "kill switch: {}: the server '{}' did not resolve within {RESOLVE_TIMEOUT:?}; only its Config's gateway will pass",
                profile.connection.id,
                e.host
            ),
        }
    }
    out
}

impl Core {
    fn lockdown(&self) -> bool {
        self.h.cfg.firewall.lockdown
    }

    /// At start: a table left by a previous tinynmd (crashed or stopped with VPNs engaged) is
    /// taken over with what it engaged; then the switch is brought in line with the config.
    pub(super) async fn killswitch_start(&mut self) {
        let file = KillSwitch::state_file(&self.h.cfg.state_dir);
        let left = firewall::installed().unwrap_or_else(|e| {
            tracing::warn!("kill switch: {e}");
            false
        });
        if left {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            self.killswitch.engaged = from_text(&text);
            // Unknown: replaced below by what is known (atomically, never opened meanwhile).
            self.killswitch.installed = Some(Ruleset::default());
            tracing::info!(
                "kill switch: taking over the table a previous tinynmd left, engaged for {:?}",
                self.killswitch.engaged()
            );
        }
        self.killswitch_sync().await;
    }

    /// A VPN starts activating: it engages the switch when it fails closed.
    pub(super) async fn killswitch_engage(&mut self, profile: &tinynm_config::Profile) {
        if !(self.lockdown() || profile.vpn.option(TINYNM_KILL_SWITCH)) {
            return;
        }
        let servers = servers_of(profile).await;
        self.killswitch
            .engaged
            .entry(profile.connection.uuid.clone())
            .or_default()
            .extend(servers);
        self.killswitch_sync().await;
    }

    /// The user took the VPN of profile `uuid` down, turned its switch off or deleted it.
    pub(super) async fn killswitch_release(&mut self, uuid: &str) -> bool {
        let was = self.killswitch.engaged.remove(uuid).is_some();
        if was {
            tracing::info!("kill switch: released for {uuid}");
            self.killswitch_sync().await;
        }
        was
    }

    /// Brings the kernel's table in line: the engaged VPNs' servers and tunnels, or nothing.
    pub(super) async fn killswitch_sync(&mut self) {
        // Profiles gone, or whose switch was turned off, no longer hold it (lockdown holds
        // every VPN's).
        let lockdown = self.lockdown();
        let live: BTreeMap<String, bool> = self
            .profiles
            .values()
            .map(|p| {
                let p = &p.snap.borrow().profile;
                (p.connection.uuid.clone(), p.vpn.option(TINYNM_KILL_SWITCH))
            })
            .collect();
        self.killswitch
            .engaged
            .retain(|uuid, _| live.get(uuid).is_some_and(|on| *on || lockdown));
        let mut rules = Ruleset {
            allow: self.h.cfg.firewall.allowed(),
            ..Ruleset::default()
        };
        for a in self.actives.values() {
            let s = a.snap.borrow();
            let Some(servers) = self.killswitch.engaged.get_mut(&s.uuid) else {
                continue;
            };
            // The gateway the plugin's Config names, when the profile did not (a host name
            // that did not resolve, a plugin whose data tinynm cannot read).
            if let Some(gw) = s
                .vpn_gateway
                .filter(|gw| !servers.iter().any(|x| x.addr == *gw))
            {
                servers.insert(Server {
                    addr: gw,
                    port: None,
                });
            }
            let up = s.state == AcState::Activating as u32 || s.state == AcState::Activated as u32;
            if let (true, Some(t)) = (up, &s.tunnel) {
                rules.tunnels.insert(t.clone());
            }
        }
        rules.servers = self
            .killswitch
            .engaged
            .values()
            .flatten()
            .copied()
            .collect();
        let want = (lockdown || !self.killswitch.engaged.is_empty()).then_some(rules);
        if want == self.killswitch.installed {
            return;
        }
        let file = KillSwitch::state_file(&self.h.cfg.state_dir);
        let text = to_text(&self.killswitch.engaged);
        // Written before the table changes: a crash in between leaves a file that the next
        // start reconciles with the table.
        if let Err(e) = crate::store::write_atomic(&file, text.as_bytes(), 0o600) {
            tracing::warn!("kill switch: cannot write {}: {e}", file.display());
        }
        let r = match &want {
            Some(rules) => firewall::install(rules),
            None => firewall::remove(),
        };
        match r {
            Ok(()) => {
                match &want {
                    Some(rules) => tracing::info!("kill switch on: {}", rules.describe()),
                    None => tracing::info!("kill switch off"),
                }
                self.killswitch.installed = want;
                self.killswitch.error = None;
            }
            Err(e) => {
                tracing::error!("kill switch: {e}");
                self.killswitch.error = Some(e.to_string());
            }
        }
        self.publish_keepup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trips() {
        let mut e: BTreeMap<String, BTreeSet<Server>> = BTreeMap::new();
        let s = |a: &str, port| Server {
            addr: a.parse().unwrap(),
            port,
        };
        e.entry("u1".into()).or_default().extend([
            s("10.0.0.1", Some((Transport::Udp, 1194))),
            s("fd00::1", None),
        ]);
        e.entry("u2".into())
            .or_default()
            .insert(s("192.0.2.1", Some((Transport::Tcp, 443))));
        e.insert("u3".into(), BTreeSet::new());
        assert_eq!(from_text(&to_text(&e)), e);
        assert_eq!(from_text("u4 not-an-address\n\n")["u4"].len(), 0);
    }
}
