//! Keeping VPNs up (tinynm's own; NM leaves a failed VPN down, and never starts a VPN by
//! itself but as a secondary):
//! - a VPN with `vpn.data tinynm-autoconnect=yes` is activated over the primary connection as
//!   soon as there is one (at start-up, when a profile is added, when the uplink comes back);
//!   taken down by the user, or failed for a reason another try cannot change (refused
//!   credentials, a bad config), it is held down until activated by hand;
//! - such a VPN, one with `vpn.persistent`, or one started as a base connection's secondary
//!   while that base stays up, is activated again after it fails for a reason that another try
//!   can change (its plugin stopped or could not start, the connection timed out), after 1 s,
//!   then 2, 4… up to 64 s; reaching ACTIVATED resets the delay. A base that went is not
//!   retried: its return brings its secondaries back.
//!
//! Both show on `org.tinynm.Settings` (`Reconnects`, `AutoconnectBlocked`) and in the log.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use tinynm_config::nm::{AcState, Reason};
use tinynm_config::profile::TINYNM_AUTOCONNECT;
use zbus::Variant;

use super::Core;
use crate::bus::objects::Iface;
use crate::state::paths::TINYNM_SETTINGS_PATH;
use crate::state::{AcId, Command, KeepUpSnapshot, PendingTry, ProfileId, root};

/// The longest wait between two tries.
pub const MAX_DELAY: Duration = Duration::from_secs(64);

/// One VPN being brought back.
#[derive(Debug)]
struct Pending {
    /// Tries so far (the next waits 2^tries s, up to [`MAX_DELAY`]).
    tries: u32,
    /// The base to put it on again (a secondary's), or none: the primary connection.
    base: Option<AcId>,
    /// Who activated it.
    uid: u32,
    /// When the next try starts.
    at: SystemTime,
    /// Why the last activation ended (`NMActiveConnectionStateReason`).
    reason: u32,
    /// The timer of the next try.
    timer: Option<tokio::task::JoinHandle<()>>,
}

/// The VPNs waiting to come back, by profile.
#[derive(Debug, Default)]
pub struct Reconnects {
    pending: BTreeMap<ProfileId, Pending>,
    /// `tinynm-autoconnect` VPNs held down until activated by hand.
    blocked: BTreeSet<ProfileId>,
}

/// The wait before try number `tries` (0: the first): 1 s, doubling, at most [`MAX_DELAY`].
pub fn delay(tries: u32) -> Duration {
    Duration::from_secs(1u64 << tries.min(6)).min(MAX_DELAY)
}

/// Whether another try can change an end for this reason.
fn worth_retrying(r: u32) -> bool {
    [
        Reason::ServiceStopped,
        Reason::ConnectTimeout,
        Reason::ServiceStartTimeout,
        Reason::ServiceStartFailed,
    ]
    .iter()
    .any(|x| *x as u32 == r)
}

impl Core {
    /// VPN `n` has ended: schedule its next try when it should be kept up.
    pub(super) fn maybe_reconnect(&mut self, n: AcId) {
        let base = self.secondary_of.remove(&n);
        let Some(a) = self.actives.get(&n) else {
            return;
        };
        let (vpn, reason) = {
            let s = a.snap.borrow();
            (s.vpn, s.reason)
        };
        let Some(p) = self.profiles.get(&a.profile) else {
            return;
        };
        let (persistent, auto, id) = {
            let s = p.snap.borrow();
            let v = &s.profile.vpn;
            (
                v.persistent,
                v.option(TINYNM_AUTOCONNECT),
                s.profile.connection.id.clone(),
            )
        };
        let base_up = base.is_some_and(|b| {
            self.actives
                .get(&b)
                .is_some_and(|x| x.snap.borrow().state <= AcState::Activated as u32)
        });
        if vpn && auto && !worth_retrying(reason) && reason != Reason::DeviceDisconnected as u32 {
            tracing::warn!(
                "VPN '{id}' ended ({}): it does not come up by itself again until activated",
                Reason::from_u32(reason).nmcli_text()
            );
            self.reconnects.blocked.insert(a.profile);
        }
        if !vpn || !(persistent || auto || base_up) || !worth_retrying(reason) {
            self.reconnects.pending.remove(&a.profile);
            return;
        }
        let pn = a.profile;
        let uid = a.uid;
        let e = self.reconnects.pending.entry(pn).or_insert(Pending {
            tries: 0,
            base: None,
            uid,
            at: SystemTime::now(),
            reason,
            timer: None,
        });
        e.base = base.filter(|_| base_up);
        let wait = delay(e.tries);
        e.tries += 1;
        e.at = SystemTime::now() + wait;
        e.reason = reason;
        tracing::warn!(
            "VPN '{id}' ended ({}): trying again in {} s (try {})",
            Reason::from_u32(reason).nmcli_text(),
            wait.as_secs(),
            e.tries
        );
        let tx = self.tx.clone();
        if let Some(t) = e.timer.take() {
            t.abort();
        }
        e.timer = Some(tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = tx.send(Command::Reconnect { profile: pn }).await;
        }));
    }

    /// The delay ran out: activate it again (over its base, if that is still there).
    pub(super) async fn reconnect(&mut self, pn: ProfileId) {
        let Some(e) = self.reconnects.pending.get_mut(&pn) else {
            return;
        };
        e.timer = None;
        let (base, uid) = (e.base, e.uid);
        if self.actives.values().any(|a| a.profile == pn) {
            return;
        }
        let specific = match base {
            Some(b) if self.actives.contains_key(&b) => b.path(),
            Some(_) => {
                // The base went meanwhile: its return brings the VPN back.
                self.reconnects.pending.remove(&pn);
                return;
            }
            None => crate::state::root(),
        };
        match Box::pin(self.activate(uid, pn.path(), crate::state::root(), specific)).await {
            Ok(p) => {
                if let (Some(b), Some(m)) = (base, AcId::of_path(p.as_str())) {
                    self.secondary_of.insert(m, b);
                }
            }
            Err(e) => {
                // No primary connection now, say: its return brings a self-starting VPN back.
                tracing::warn!("trying the VPN again: {e}");
                self.reconnects.pending.remove(&pn);
            }
        }
        self.publish_keepup().await;
    }

    /// Starts each `tinynm-autoconnect` VPN that is not up, not held down and not waiting
    /// for its next try, over the primary connection, once there is one (not a VPN).
    pub(super) async fn autoconnect_vpns(&mut self) {
        if self.startup_deadline.is_none() || self.shutdown.is_some() {
            return;
        }
        let primary = self.out.manager.borrow().primary.clone();
        let Some(pa) = AcId::of_path(primary.as_str()) else {
            return;
        };
        if self.actives.get(&pa).is_some_and(|a| a.snap.borrow().vpn) {
            return;
        }
        let todo: Vec<(ProfileId, String)> = self
            .profiles
            .iter()
            .filter(|(pn, p)| {
                let s = p.snap.borrow();
                s.profile.is_vpn()
                    && s.profile.vpn.option(TINYNM_AUTOCONNECT)
                    && !self.reconnects.blocked.contains(pn)
                    && !self.reconnects.pending.contains_key(pn)
                    && !self.actives.values().any(|a| a.profile == **pn)
            })
            .map(|(pn, p)| (*pn, p.snap.borrow().profile.connection.id.clone()))
            .collect();
        for (pn, id) in todo {
            tracing::info!("VPN '{id}': autoconnect over {primary}");
            if let Err(e) = Box::pin(self.activate(0, pn.path(), root(), root())).await {
                tracing::warn!("autoconnect VPN '{id}': {e}; held down until activated");
                self.reconnects.blocked.insert(pn);
            }
        }
        self.publish_keepup().await;
    }

    /// The user took VPN profile `pn` down: a self-starting one stays down.
    pub(super) fn user_took_down(&mut self, pn: ProfileId) {
        let auto = self
            .profiles
            .get(&pn)
            .is_some_and(|p| p.snap.borrow().profile.vpn.option(TINYNM_AUTOCONNECT));
        if auto {
            self.reconnects.blocked.insert(pn);
        }
    }

    /// The user activated profile `pn`: it may start by itself again.
    pub(super) fn user_brought_up(&mut self, pn: ProfileId) {
        self.reconnects.blocked.remove(&pn);
    }

    /// Publishes `org.tinynm.Settings` when what it shows changed.
    pub(super) async fn publish_keepup(&self) {
        let uuid = |pn: &ProfileId| {
            self.profiles
                .get(pn)
                .map(|p| p.snap.borrow().profile.connection.uuid.clone())
        };
        let usec = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0)
        };
        let new = KeepUpSnapshot {
            reconnects: self
                .reconnects
                .pending
                .iter()
                .filter_map(|(pn, p)| {
                    Some((
                        uuid(pn)?,
                        PendingTry {
                            tries: p.tries,
                            at_usec: usec(p.at),
                            reason: Reason::from_u32(p.reason).nmcli_text().to_string(),
                        },
                    ))
                })
                .collect(),
            blocked: self.reconnects.blocked.iter().filter_map(uuid).collect(),
            kill_switch: self.killswitch.engaged(),
            lockdown: self.h.cfg.firewall.lockdown,
            kill_switch_error: self.killswitch.error.clone().unwrap_or_default(),
        };
        if *self.out.keepup.borrow() == new {
            return;
        }
        self.out.keepup.send_replace(new.clone());
        let reconnects: std::collections::HashMap<String, (u32, u64, String)> = new
            .reconnects
            .into_iter()
            .map(|(u, p)| (u, (p.tries, p.at_usec, p.reason)))
            .collect();
        self.h
            .bus
            .changed_or_log(
                TINYNM_SETTINGS_PATH,
                Iface::KeepUp,
                vec![
                    ("Reconnects", Variant::from(reconnects)),
                    ("AutoconnectBlocked", Variant::from(new.blocked)),
                    ("KillSwitch", Variant::from(new.kill_switch)),
                    ("Lockdown", Variant::from(new.lockdown)),
                    ("KillSwitchError", Variant::from(new.kill_switch_error)),
                ],
            )
            .await;
    }

    /// A kept-up VPN that reached ACTIVATED starts its backoff from the beginning.
    pub(super) fn reconnected(&mut self) {
        if self.reconnects.pending.is_empty() {
            return;
        }
        let up: Vec<ProfileId> = self
            .actives
            .values()
            .filter(|a| a.snap.borrow().state == AcState::Activated as u32)
            .map(|a| a.profile)
            .collect();
        for pn in up {
            if self.reconnects.pending.remove(&pn).is_some() {
                tracing::info!("VPN back up: its reconnect delay starts again from 1 s");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_one_second_up_to_64() {
        let d: Vec<u64> = (0..9).map(|t| delay(t).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
        assert!(worth_retrying(Reason::ServiceStopped as u32));
        assert!(!worth_retrying(Reason::LoginFailed as u32));
        assert!(!worth_retrying(Reason::UserDisconnected as u32));
    }
}
