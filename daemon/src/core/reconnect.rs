//! Keeping VPNs up (tinynm's own; NM leaves a failed VPN down): a VPN with `vpn.persistent`,
//! or started as a base connection's secondary while that base stays up, is activated again
//! after it fails for a reason that another try can change (its plugin stopped or could not
//! start, the connection timed out), after 1 s, then 2, 4… up to 64 s; reaching ACTIVATED
//! resets the delay. Refused credentials, a bad config, the user or a base that went are not
//! retried (the base's return brings its secondaries back).

use std::collections::BTreeMap;
use std::time::Duration;

use tinynm_config::nm::{AcState, Reason};

use super::Core;
use crate::state::{AcId, Command, ProfileId};

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
    /// The timer of the next try.
    timer: Option<tokio::task::JoinHandle<()>>,
}

/// The VPNs waiting to come back, by profile.
#[derive(Debug, Default)]
pub struct Reconnects {
    pending: BTreeMap<ProfileId, Pending>,
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
        let (persistent, id) = {
            let s = p.snap.borrow();
            (s.profile.vpn.persistent, s.profile.connection.id.clone())
        };
        let base_up = base.is_some_and(|b| {
            self.actives
                .get(&b)
                .is_some_and(|x| x.snap.borrow().state <= AcState::Activated as u32)
        });
        if !vpn || !(persistent || base_up) || !worth_retrying(reason) {
            self.reconnects.pending.remove(&a.profile);
            return;
        }
        let pn = a.profile;
        let uid = a.uid;
        let e = self.reconnects.pending.entry(pn).or_insert(Pending {
            tries: 0,
            base: None,
            uid,
            timer: None,
        });
        e.base = base.filter(|_| base_up);
        let wait = delay(e.tries);
        e.tries += 1;
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
                tracing::warn!("trying the VPN again: {e}");
            }
        }
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
