//! A plan applied as one transaction, written ahead to the connection's journal (`Wal`) before
//! each window of requests reaches the kernel; a kernel error rolls back everything already
//! added; teardown deletes exactly the journal.

use std::io;
use std::path::Path;

use rtnetlink::LinkUnspec;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};

use super::journal::Wal;
use super::{Applied, BATCH, Journal, Netlink, NetlinkError, Plan, already_gone, rt_err};

/// Requests written ahead in one fsync: many datagrams, so that 50,000 routes cost a dozen
/// fsyncs, not two hundred. Writing ahead of what is sent is harmless (deleting what is not
/// there is not an error); the window bounds how far ahead.
const WINDOW: usize = 16 * BATCH;

fn journal_err(wal: &Wal, e: io::Error) -> NetlinkError {
    NetlinkError::Journal(wal.path().display().to_string(), e)
}

/// Where a test makes tinynmd die as a crash would: `TINYNMD_CRASH_AT=POINT:N` kills the
/// daemon with SIGKILL at the N-th time it reaches POINT: `apply-window` (before a window of
/// adds is sent), `remove-batch` (after a datagram of deletes), `phase-STATE` (a VPN state just
/// announced), `dns-applied` (resolv.conf just written).
pub fn crash_point(point: &str) {
    static AT: PointAt = PointAt::new("TINYNMD_CRASH_AT");
    if AT.reached(point) {
        tracing::warn!("TINYNMD_CRASH_AT: dying at {point}");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Where a test makes an operation fail as the kernel or the socket could make it fail:
/// `TINYNMD_FAIL_AT=POINT:N` is true the N-th time POINT is reached: `batch-answers` (a datagram
/// of adds sent and taken by the kernel, its answers lost, as at a socket error or the timeout).
pub fn fail_point(point: &str) -> bool {
    static AT: PointAt = PointAt::new("TINYNMD_FAIL_AT");
    let hit = AT.reached(point);
    if hit {
        tracing::warn!("TINYNMD_FAIL_AT: failing at {point}");
    }
    hit
}

/// `POINT:N` from an environment variable, and how often POINT has been reached.
struct PointAt {
    var: &'static str,
    at: std::sync::OnceLock<Option<(String, usize)>>,
    hits: std::sync::atomic::AtomicUsize,
}

impl PointAt {
    const fn new(var: &'static str) -> PointAt {
        PointAt {
            var,
            at: std::sync::OnceLock::new(),
            hits: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Whether this is the N-th time `point` is reached.
    fn reached(&self, point: &str) -> bool {
        let at = self.at.get_or_init(|| {
            let v = std::env::var(self.var).ok()?;
            let (p, n) = v.split_once(':')?;
            Some((p.to_string(), n.parse().ok()?))
        });
        match at {
            Some((p, n)) if p == point => {
                self.hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == *n
            }
            _ => false,
        }
    }
}

/// What became of one object of a plan's group.
#[derive(Clone, Copy, PartialEq)]
enum Fate {
    /// Not sent (yet).
    Unsent,
    /// A shared route another connection of ours already has: counted, not sent.
    Counted,
    /// Added: ours.
    In,
    /// Refused by the kernel: not ours.
    Refused,
}

impl Netlink {
    /// Applies a plan as one transaction. On any error everything already added is removed
    /// again and the error names the object the kernel refused. With a journal path, each
    /// change is written there and fsync'd before the kernel is asked for it. The plan's
    /// objects are moved into the journal, not copied.
    pub async fn apply(&self, plan: Plan, journal: Option<&Path>) -> Result<Journal, NetlinkError> {
        let mut wal = match journal {
            Some(p) => {
                Some(Wal::open(p).map_err(|e| NetlinkError::Journal(p.display().to_string(), e))?)
            }
            None => None,
        };
        let mut done = Journal::default();
        let r = self.apply_into(plan, &mut done, wal.as_mut()).await;
        match r {
            Ok(()) => Ok(done),
            Err(e) => {
                for re in self.remove(&done).await {
                    tracing::error!("rollback: {re}");
                }
                Err(e)
            }
        }
    }

    async fn apply_into(
        &self,
        plan: Plan,
        journal: &mut Journal,
        mut wal: Option<&mut Wal>,
    ) -> Result<(), NetlinkError> {
        let Plan {
            links,
            addresses,
            routes,
            rules,
        } = plan;
        for l in &links {
            let now = self
                .link_by_index(l.index)
                .await?
                .ok_or_else(|| NetlinkError::Kernel {
                    op: format!("bring up link #{}", l.index),
                    source: io::Error::from_raw_os_error(libc::ENODEV),
                })?;
            let mtu = l.mtu.filter(|m| *m != now.mtu);
            let mut changes = Vec::new();
            if !now.up {
                changes.push(Applied::Up(l.index));
            }
            if mtu.is_some() {
                changes.push(Applied::Mtu(l.index, now.mtu));
            }
            if let Some(w) = wal.as_deref_mut() {
                w.intend(&changes);
                w.sync().map_err(|e| journal_err(w, e))?;
            }
            journal.append(changes);
            if !now.up || mtu.is_some() {
                self.link_up(l.index, mtu).await?;
            }
        }
        // Routes without EXCL: the kernel still refuses an identical route, but lets two VPNs
        // each have, say, a default route of the same metric through their own interface.
        let address_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let route_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
        for (mut group, flags) in [
            (addresses, address_flags),
            (routes, route_flags),
            (rules, address_flags),
        ] {
            let mut fate = vec![Fate::Unsent; group.len()];
            // A shared route some other connection of ours already has: count it, send nothing.
            let mut send: Vec<usize> = Vec::with_capacity(group.len());
            {
                let mut shared = self.shared.lock().expect("poisoned");
                for (i, a) in group.iter().enumerate() {
                    match a.shared_key() {
                        Some(k) => match shared.get_mut(&k) {
                            Some(n) => {
                                *n += 1;
                                if let Some(w) = wal.as_deref_mut() {
                                    w.intend([a]);
                                }
                                fate[i] = Fate::Counted;
                            }
                            None => {
                                // Reserved before it is sent, so that a connection applying
                                // at the same moment counts it rather than racing to add it.
                                shared.insert(k, 1);
                                send.push(i);
                            }
                        },
                        None if a.is_link_change() => fate[i] = Fate::Counted,
                        None => send.push(i),
                    }
                }
            }
            let mut result = Ok(());
            for window in send.chunks(WINDOW) {
                result = self
                    .apply_window(&group, window, flags, &mut fate, wal.as_deref_mut())
                    .await;
                if result.is_err() {
                    break;
                }
            }
            drop(send);
            // What was never sent gives its reservation back; what went in, or was counted,
            // is ours and moves into the journal.
            {
                let mut shared = self.shared.lock().expect("poisoned");
                for (a, f) in group.iter().zip(&fate) {
                    if *f == Fate::Unsent {
                        unshare(&mut shared, a);
                    }
                }
            }
            let mut i = 0;
            group.retain(|_| {
                i += 1;
                matches!(fate[i - 1], Fate::In | Fate::Counted)
            });
            journal.append(group);
            result?;
        }
        if let Some(w) = wal {
            w.sync().map_err(|e| journal_err(w, e))?;
        }
        Ok(())
    }

    /// Sends one window of add requests (indices into `group`), written ahead first; records
    /// each one's fate, retracts what the kernel refused, and fails on the first refusal that
    /// is not "already there".
    async fn apply_window(
        &self,
        group: &[Applied],
        window: &[usize],
        flags: u16,
        fate: &mut [Fate],
        mut wal: Option<&mut Wal>,
    ) -> Result<(), NetlinkError> {
        if let Some(w) = wal.as_deref_mut() {
            w.intend(window.iter().map(|i| &group[*i]));
            w.sync().map_err(|e| journal_err(w, e))?;
        }
        crate::netlink::crash_point("apply-window");
        let items: Vec<&Applied> = window.iter().map(|i| &group[*i]).collect();
        // A batch that failed part-way leaves its unanswered requests with no refusal known:
        // they are taken as ours below, so that the rollback removes whatever of them the
        // kernel took (deleting what is not there is harmless).
        let (failed, broken) = match self.batch_applied(&items, flags, true).await {
            Ok(failed) => (failed, None),
            Err(b) => (b.refused, Some(b.error)),
        };
        drop(items);
        let mut outcome: Vec<Option<&io::Error>> = vec![None; window.len()];
        let mut unknown = None;
        for (i, e) in &failed {
            match outcome.get_mut(*i) {
                Some(o) => *o = Some(e),
                None => unknown = Some(e),
            }
        }
        if let Some(e) = unknown {
            // The kernel named no request we sent: take all as ours (deleting what is not
            // there is harmless) and fail.
            for i in window {
                fate[*i] = Fate::In;
            }
            return Err(NetlinkError::Kernel {
                op: "apply a batch of changes".into(),
                source: io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)),
            });
        }
        let mut first_error = None;
        let mut refused = Vec::new();
        {
            let mut shared = self.shared.lock().expect("poisoned");
            for (i, o) in window.iter().zip(&outcome) {
                let a = &group[*i];
                let Some(e) = o else {
                    fate[*i] = Fate::In;
                    continue;
                };
                fate[*i] = Fate::Refused;
                unshare(&mut shared, a);
                refused.push(a);
                if e.raw_os_error() == Some(libc::EEXIST) {
                    // Someone else's identical object: it stays, and stays theirs.
                    tracing::warn!("{} is already in the kernel: left as it is", a.describe());
                } else if first_error.is_none() {
                    first_error = Some((
                        a.describe(),
                        io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)),
                    ));
                }
            }
        }
        if let Some(w) = wal {
            // Written with the next window's intents, or at the end.
            w.retract(refused);
        }
        if let Some((what, source)) = first_error {
            return Err(NetlinkError::Kernel {
                op: format!("add {what}"),
                source,
            });
        }
        broken.map_or(Ok(()), Err)
    }

    /// Removes exactly what a journal recorded, newest first; returns the errors (an object
    /// already gone is not one).
    pub async fn remove(&self, journal: &Journal) -> Vec<NetlinkError> {
        self.remove_items(journal.iter().rev()).await
    }

    /// Removes these objects, in this order; returns the errors (an object already gone is
    /// not one). A shared route still used by another connection of ours is only uncounted.
    pub async fn remove_items<'a>(
        &self,
        items: impl Iterator<Item = &'a Applied>,
    ) -> Vec<NetlinkError> {
        let mut errors = Vec::new();
        let items: Vec<&Applied> = {
            let mut shared = self.shared.lock().expect("poisoned");
            items.filter(|a| unshare(&mut shared, a)).collect()
        };
        let dels: Vec<&Applied> = items
            .iter()
            .copied()
            .filter(|a| !a.is_link_change())
            .collect();
        let mut refusals = |failed: Vec<(usize, io::Error)>| {
            for (i, e) in failed {
                if already_gone(&e) {
                    continue;
                }
                let what = dels
                    .get(i)
                    .map(|a| a.describe())
                    .unwrap_or_else(|| "a change".into());
                errors.push(NetlinkError::Kernel {
                    op: format!("remove {what}"),
                    source: e,
                });
            }
        };
        let broken = match self
            .batch_applied(&dels, NLM_F_REQUEST | NLM_F_ACK, false)
            .await
        {
            Ok(failed) => {
                refusals(failed);
                None
            }
            Err(b) => {
                refusals(b.refused);
                Some(b.error)
            }
        };
        errors.extend(broken);
        for a in &items {
            let (msg, what) = match a {
                Applied::Mtu(index, old) => (
                    LinkUnspec::new_with_index(*index).mtu(*old).build(),
                    format!("restore MTU {old} on #{index}"),
                ),
                Applied::Up(index) => (
                    LinkUnspec::new_with_index(*index).down().build(),
                    format!("set #{index} down again"),
                ),
                _ => continue,
            };
            match self.handle.link().set(msg).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {}
                Err(e) => errors.push(rt_err(what, e)),
            }
        }
        errors
    }
}

/// Gives back one use of a shared route; whether no use is left, so that it is to be deleted
/// (always, for anything but a shared route).
fn unshare(shared: &mut std::collections::HashMap<String, usize>, a: &Applied) -> bool {
    let Some(k) = a.shared_key() else {
        return true;
    };
    match shared.get_mut(&k) {
        Some(n) if *n > 1 => {
            *n -= 1;
            false
        }
        _ => {
            shared.remove(&k);
            true
        }
    }
}
