//! Wired base connections, the core's side: which profile goes on which link, activation and
//! its secondaries, the devices' NM states, autoconnect (with its retries), and the carrier
//! (NM's 6 s wait before a lost carrier takes the connection down).

use std::sync::Arc;
use std::time::Duration;

use tinynm_config::Profile;
use tinynm_config::nm::{AcState, Reason};
use tokio::sync::watch;
use zbus::{OwnedObjectPath, Variant};

use super::Core;
use crate::bus::active::ActiveView;
use crate::bus::objects::Iface;
use crate::netlink::links::{Link, LinkKind};
use crate::state::{
    AcId, AcSnapshot, Command, NmError, ProfileId, STATE_UNMANAGED, dev_reason, dev_state, root,
};
use crate::vpn::AcCommand;
use crate::wired::WiredParams;

/// NM waits this long after a carrier loss before taking the connection down.
pub const CARRIER_WAIT: Duration = Duration::from_secs(6);
/// NM's default `connection.autoconnect-retries`.
const DEFAULT_RETRIES: i32 = 4;

/// Whether wired profile `p` can go on `link`.
pub fn fits(p: &Profile, link: &Link) -> bool {
    if !p.is_ethernet() || !matches!(link.kind, LinkKind::Ethernet | LinkKind::Veth) {
        return false;
    }
    if let Some(i) = &p.connection.interface_name
        && *i != link.name
    {
        return false;
    }
    if let Some(m) = p.ethernet.as_ref().and_then(|e| e.mac_address.as_ref())
        && !m.eq_ignore_ascii_case(&link.hw_address)
    {
        return false;
    }
    true
}

impl Core {
    fn wired_profiles(&self) -> Vec<(ProfileId, Arc<Profile>)> {
        // Not the profiles generated for links configured by others: those are theirs.
        self.profiles
            .iter()
            .filter(|(_, e)| e.snap.borrow().generated.is_none())
            .map(|(n, e)| (*n, e.snap.borrow().profile.clone()))
            .filter(|(_, p)| p.is_ethernet())
            .collect()
    }

    /// Activates wired profile `pn` on `device` (`/`: the first free link it fits).
    pub(super) async fn activate_wired(
        &mut self,
        uid: u32,
        pn: ProfileId,
        profile: Arc<Profile>,
        connection: OwnedObjectPath,
        device: &OwnedObjectPath,
    ) -> Result<OwnedObjectPath, NmError> {
        let id = &profile.connection.id;
        let index = if device.as_str() != "/" {
            let Some((i, d)) = self.devices.iter().find(|(_, d)| &d.path == device) else {
                return Err(NmError::UnknownDevice(format!(
                    "Device '{}' not found",
                    device.as_str()
                )));
            };
            let link = d.snap.borrow().link.clone();
            if !fits(&profile, &link) {
                return Err(NmError::ConnectionNotAvailable(format!(
                    "Connection '{id}' is not available on device {} (connection.interface-name or ethernet.mac-address)",
                    link.name
                )));
            }
            *i
        } else {
            self.devices
                .iter()
                .find(|(_, d)| d.managed.is_none() && fits(&profile, &d.snap.borrow().link))
                .map(|(i, _)| *i)
                .ok_or_else(|| {
                    NmError::ConnectionNotAvailable(format!(
                        "No suitable device found for this connection (device lo not available because profile '{id}' is not compatible with device)"
                    ))
                })?
        };
        let entry = &self.devices[&index];
        let link = entry.snap.borrow().link.clone();
        if !link.lower_up {
            return Err(NmError::ConnectionNotAvailable(format!(
                "Connection '{id}' is not available on device {} because the device has no carrier",
                link.name
            )));
        }
        if let Some(busy) = entry.managed {
            return Err(NmError::ConnectionAlreadyActive(format!(
                "Device {} is busy with {} (deactivate it first)",
                link.name,
                busy.path()
            )));
        }
        // A link someone else configured is taken over, as NM takes over an external one.
        self.remove_external(index).await.map_err(NmError::from)?;
        let n = self.next_ac;
        self.next_ac = n.next();
        let path = n.path();
        let (dev_path, ip4, ip6) = {
            let s = self.devices[&index].snap.borrow();
            (
                self.devices[&index].path.clone(),
                s.ip4.clone(),
                s.ip6.clone(),
            )
        };
        let (snap_tx, snap_rx) = watch::channel(AcSnapshot::device(
            connection,
            id.clone(),
            profile.connection.uuid.clone(),
            profile.connection.kind.clone(),
            dev_path,
            ip4,
            ip6,
        ));
        let bus = &self.h.bus;
        bus.serve(
            path.as_str(),
            ActiveView {
                snap: snap_rx.clone(),
            },
        )
        .await?;
        bus.announce(path.as_str(), &[Iface::Active]).await?;
        let cmd_rx = self.track(n, pn, uid, snap_rx);
        if let Some(e) = self.devices.get_mut(&index) {
            e.managed = Some(n);
            e.snap.send_modify(|s| s.active = path.clone());
        }
        self.h
            .bus
            .changed(
                self.devices[&index].path.as_str(),
                Iface::Device,
                vec![("ActiveConnection", Variant::from(path.clone()))],
            )
            .await?;
        ActiveView::emit_state_changed(
            &self.h.bus.emitter(path.as_str())?,
            AcState::Activating as u32,
            Reason::Unknown as u32,
        )
        .await?;
        self.publish_manager().await?;
        tracing::info!("activating '{id}' on {}", link.name);
        tokio::spawn(crate::wired::run(WiredParams {
            n,
            uid,
            profile: (*profile).clone(),
            link,
            h: self.h.clone(),
            core: self.tx.clone(),
            cmd: cmd_rx,
            snap: snap_tx,
            leases: self.leases.clone(),
        }));
        Ok(path)
    }

    /// A wired task's device state.
    pub(super) async fn device_state(&mut self, index: u32, state: u32, reason: u32) {
        let Some(e) = self.devices.get(&index) else {
            return;
        };
        let old = e.snap.borrow().state;
        if old == state {
            return;
        }
        // Autoconnect's count of failures in a row: a failure adds one, success starts again.
        if let Some(pn) = e
            .managed
            .and_then(|n| self.actives.get(&n))
            .map(|a| a.profile)
        {
            if state == dev_state::FAILED {
                let r = self.retries.entry(pn).or_insert(0);
                *r = r.saturating_add(1);
            } else if state == dev_state::ACTIVATED {
                self.retries.remove(&pn);
            }
        }
        e.snap.send_modify(|s| {
            s.state = state;
            s.reason = reason;
        });
        if let Err(err) = self.announce_device_state(index, old).await {
            tracing::warn!("cannot announce a device state: {err}");
        }
    }

    /// A wired activation ended: its link is free again.
    pub(super) async fn wired_ended(&mut self, n: AcId) {
        let Some((&index, _)) = self.devices.iter().find(|(_, d)| d.managed == Some(n)) else {
            return;
        };
        if let Some(e) = self.devices.get_mut(&index) {
            e.managed = None;
            e.snap.send_modify(|s| s.active = root());
        }
        let p = self.devices[&index].path.clone();
        self.h
            .bus
            .changed_or_log(
                p.as_str(),
                Iface::Device,
                vec![("ActiveConnection", Variant::from(root()))],
            )
            .await;
    }

    /// `connection.secondaries` of base connection `base`, activated over it.
    pub(super) async fn start_secondaries(
        &mut self,
        base: AcId,
        uid: u32,
        uuids: Vec<String>,
    ) -> Vec<Result<watch::Receiver<AcSnapshot>, String>> {
        let mut out = Vec::new();
        for u in uuids {
            let found = self
                .profiles
                .iter()
                .find(|(_, e)| e.snap.borrow().profile.connection.uuid == u)
                .map(|(n, e)| (*n, e.snap.borrow().profile.is_vpn()));
            let r = match found {
                None => Err(format!("no profile has UUID {u}")),
                Some((_, false)) => Err(format!("profile {u} is not a VPN")),
                Some((pn, true)) => {
                    match Box::pin(self.activate(uid, pn.path(), root(), base.path())).await {
                        Ok(p) => {
                            let m = AcId::of_path(p.as_str());
                            if let Some(m) = m {
                                self.secondary_of.insert(m, base);
                            }
                            m.and_then(|m| self.actives.get(&m))
                                .map(|a| a.snap.clone())
                                .ok_or_else(|| format!("{u} ended at once"))
                        }
                        Err(e) => Err(format!("{u}: {e}")),
                    }
                }
            };
            out.push(r);
        }
        out
    }

    /// Each link's NM state when no activation holds it: UNMANAGED unless a wired profile fits
    /// it, then DISCONNECTED, or UNAVAILABLE without a carrier; a carrier lost under an
    /// activation takes it down after [`CARRIER_WAIT`].
    pub async fn wired_links(&mut self) {
        if self.startup_deadline.is_none() {
            // Not before the name is owned (`Command::StartUp`).
            return;
        }
        let profiles = self.wired_profiles();
        // (link, state, reason) to show; (link, activation) whose carrier just went.
        let (mut states, mut lost, mut to_up) = (Vec::new(), Vec::new(), Vec::new());
        for (i, d) in &self.devices {
            let s = d.snap.borrow();
            if let Some(n) = d.managed {
                if !s.link.lower_up && !self.carrier_wait.contains_key(i) {
                    lost.push((*i, n));
                }
                continue;
            }
            if d.external.is_some() {
                continue;
            }
            let fits_any = profiles.iter().any(|(_, p)| fits(p, &s.link));
            let want = match (fits_any, s.link.lower_up) {
                (false, _) => STATE_UNMANAGED,
                (true, true) => dev_state::DISCONNECTED,
                (true, false) => dev_state::UNAVAILABLE,
            };
            if want != STATE_UNMANAGED && !s.link.up {
                // As NM: a link it manages is set up at once, so that its carrier shows.
                to_up.push(*i);
            }
            if s.state != want && (s.state == STATE_UNMANAGED || s.state <= dev_state::DISCONNECTED)
            {
                let reason = if s.state == STATE_UNMANAGED {
                    dev_reason::NOW_MANAGED
                } else {
                    dev_reason::CARRIER
                };
                states.push((*i, want, reason));
            }
        }
        for i in to_up {
            if let Err(e) = self.h.netlink.link_up(i, None).await {
                tracing::warn!("{e}");
            }
        }
        for (i, want, reason) in states {
            self.device_state(i, want, reason).await;
        }
        for (i, n) in lost {
            tracing::info!(
                "{}: carrier lost; the connection goes down in {} s unless it returns",
                self.devices[&i].snap.borrow().link.name,
                CARRIER_WAIT.as_secs()
            );
            let tx = self.tx.clone();
            let h = tokio::spawn(async move {
                tokio::time::sleep(CARRIER_WAIT).await;
                let _ = tx.send(Command::CarrierWait { index: i, n }).await;
            });
            self.carrier_wait.insert(i, h);
        }
        // A carrier that came back in time cancels the wait.
        let back: Vec<u32> = self
            .carrier_wait
            .keys()
            .filter(|i| {
                self.devices
                    .get(i)
                    .is_none_or(|d| d.snap.borrow().link.lower_up)
            })
            .copied()
            .collect();
        for i in back {
            if let Some(h) = self.carrier_wait.remove(&i) {
                h.abort();
                tracing::info!(
                    "carrier back within {} s: nothing changes",
                    CARRIER_WAIT.as_secs()
                );
            }
        }
        self.autoconnect().await;
        self.autoconnect_vpns().await;
    }

    /// The device's `Dhcp4Config` (NM points it at the activation's object at IP_CONFIG).
    pub(super) async fn device_dhcp4(&mut self, index: u32, path: OwnedObjectPath) {
        let Some(d) = self.devices.get(&index) else {
            return;
        };
        d.snap.send_modify(|s| s.dhcp4 = path.clone());
        self.h
            .bus
            .changed_or_log(
                d.path.as_str(),
                Iface::Device,
                vec![("Dhcp4Config", zbus::Variant::from(path))],
            )
            .await;
    }

    /// The carrier wait ran out: the activation on link `index` goes down.
    pub(super) async fn carrier_gone(&mut self, index: u32, n: AcId) {
        self.carrier_wait.remove(&index);
        let still = self
            .devices
            .get(&index)
            .is_some_and(|d| d.managed == Some(n) && !d.snap.borrow().link.lower_up);
        if !still {
            return;
        }
        for d in self.dependents(n) {
            self.take_down(d, Reason::DeviceDisconnected).await;
        }
        if let Some(a) = self.actives.get(&n) {
            let _ = a.cmd.send(AcCommand::CarrierLost).await;
        }
    }

    /// Starts the best wired profile on each free link that has a carrier: the highest
    /// `autoconnect-priority`, then the most recently used, as NM; a profile that failed
    /// `autoconnect-retries` times in a row is left alone.
    pub(super) async fn autoconnect(&mut self) {
        let profiles = self.wired_profiles();
        let active: Vec<ProfileId> = self.actives.values().map(|a| a.profile).collect();
        let mut todo = Vec::new();
        for (i, d) in &self.devices {
            let s = d.snap.borrow();
            if d.managed.is_some() || d.external.is_some() || !s.link.lower_up || !s.autoconnect {
                continue;
            }
            let best = profiles
                .iter()
                .filter(|(pn, p)| {
                    let retries = match p.connection.autoconnect_retries {
                        -1 => DEFAULT_RETRIES,
                        r => r,
                    };
                    p.connection.autoconnect
                        && !active.contains(pn)
                        && fits(p, &s.link)
                        && (retries == 0 || self.retries.get(pn).copied().unwrap_or(0) < retries)
                })
                .max_by_key(|(_, p)| (p.connection.autoconnect_priority, p.connection.timestamp));
            if let Some((pn, p)) = best {
                todo.push((*i, *pn, p.clone()));
            }
        }
        for (i, pn, p) in todo {
            let dev = self.devices[&i].path.clone();
            if let Err(e) = Box::pin(self.activate_wired(0, pn, p.clone(), pn.path(), &dev)).await {
                tracing::warn!("autoconnect '{}': {e}", p.connection.id);
            }
        }
    }
}

impl Core {
    /// The profile `nmcli device connect` gets: the best wired profile that fits the device.
    pub(super) fn best_for_device(
        &self,
        device: &OwnedObjectPath,
    ) -> Result<OwnedObjectPath, NmError> {
        let Some(d) = self.devices.values().find(|d| &d.path == device) else {
            return Err(NmError::UnknownDevice(format!(
                "Device '{}' not found",
                device.as_str()
            )));
        };
        let link = d.snap.borrow().link.clone();
        self.wired_profiles()
            .into_iter()
            .filter(|(_, p)| fits(p, &link))
            .max_by_key(|(_, p)| (p.connection.autoconnect_priority, p.connection.timestamp))
            .map(|(n, _)| n.path())
            .ok_or_else(|| {
                NmError::UnknownConnection(format!(
                    "no profile of tinynmd's can be activated on {} (add an ethernet profile for it)",
                    link.name
                ))
            })
    }
}

impl Core {
    /// `nmcli device disconnect`: the connection on the link goes down (USER_REQUESTED) and the
    /// device's `Autoconnect` turns false until it is activated again, as NM.
    pub(super) async fn disconnect_device(
        &mut self,
        index: u32,
    ) -> Result<(), crate::state::DeviceError> {
        let Some(d) = self.devices.get(&index) else {
            return Err(crate::state::DeviceError::Failed(
                "the device is gone".into(),
            ));
        };
        let Some(n) = d.managed else {
            return Err(crate::state::DeviceError::NotActive(
                "This device is not active".into(),
            ));
        };
        let p = d.path.clone();
        self.set_autoconnect(&p, false).await;
        self.take_down(n, Reason::UserDisconnected).await;
        Ok(())
    }

    /// An explicit activation on `device` lets it autoconnect again.
    pub(super) async fn allow_autoconnect(&mut self, device: &OwnedObjectPath) {
        self.set_autoconnect(device, true).await;
    }

    /// A device's `Autoconnect`, shown when it changes.
    async fn set_autoconnect(&self, device: &OwnedObjectPath, on: bool) {
        let Some(d) = self.devices.values().find(|d| &d.path == device) else {
            return;
        };
        if d.snap.borrow().autoconnect == on {
            return;
        }
        d.snap.send_modify(|s| s.autoconnect = on);
        self.h
            .bus
            .changed_or_log(
                device.as_str(),
                Iface::Device,
                vec![("Autoconnect", Variant::from(on))],
            )
            .await;
    }
}

impl Core {
    /// A link that an autoconnect profile fits is still without a carrier (NM waits for it at
    /// start-up before saying start-up is over).
    pub(super) fn waiting_for_carrier(&self) -> bool {
        let profiles = self.wired_profiles();
        self.devices.values().any(|d| {
            let s = d.snap.borrow();
            d.managed.is_none()
                && d.external.is_none()
                && !s.link.lower_up
                && profiles
                    .iter()
                    .any(|(_, p)| p.connection.autoconnect && fits(p, &s.link))
        })
    }
}
