//! Active connections: activation (the checks NM makes, then a task of its own), deactivation,
//! and the order in which VPNs over other connections go down.

use tinynm_config::nm::{AcState, Reason};
use tokio::sync::watch;
use zbus::{OwnedObjectPath, Variant};

use super::Core;
use crate::auth::visible;
use crate::bus::active::{ActiveView, VpnView};
use crate::bus::objects::Iface;
use crate::state::{AcId, AcSnapshot, NmError};
use crate::vpn::{AcCommand, AcParams, registry};

impl Core {
    pub(super) async fn activate(
        &mut self,
        uid: u32,
        connection: OwnedObjectPath,
        device: OwnedObjectPath,
        specific_object: OwnedObjectPath,
    ) -> Result<OwnedObjectPath, NmError> {
        // `nmcli device connect`: no connection, a device: the best profile for it.
        let connection = if connection.as_str() == "/" && device.as_str() != "/" {
            self.best_for_device(&device)?
        } else {
            connection
        };
        let Some((pn, profile)) = self.profile_by_path(connection.as_str()) else {
            return Err(NmError::UnknownConnection(
                "Connection could not be found.".into(),
            ));
        };
        if let Some(iface) = self.generated_iface(pn) {
            return Err(NmError::ConnectionNotAvailable(format!(
                "Connection '{}' is generated for the interface '{iface}', which tinynmd does not manage",
                profile.connection.id
            )));
        }
        if !visible(&profile, uid) {
            return Err(NmError::PermissionDenied(format!(
                "Connection '{}' is not visible to this user (connection.permissions)",
                profile.connection.id
            )));
        }
        crate::auth::check_profile_files(&profile)
            .await
            .map_err(NmError::PermissionDenied)?;
        if let Some(a) = self.actives.values().find(|a| a.profile == pn) {
            let st = a.snap.borrow().state;
            if st == AcState::Activating as u32 || st == AcState::Activated as u32 {
                return Err(NmError::ConnectionAlreadyActive(format!(
                    "Connection '{}' is already active",
                    profile.connection.id
                )));
            }
        }
        if profile.is_ethernet() {
            // Asked for by name: whatever blocked its autoconnect is forgotten.
            self.retries.remove(&pn);
            self.allow_autoconnect(&device).await;
            return self
                .activate_wired(uid, pn, profile, connection, &device)
                .await;
        }
        let (specific_object, parent) = self.base_for(&device, specific_object)?;
        let plugins = registry::load(&self.h.cfg.all_plugin_dirs());
        let Some(plugin) = plugins
            .into_iter()
            .find(|p| p.serves(&profile.vpn.service_type))
        else {
            return Err(NmError::ConnectionNotAvailable(format!(
                "The VPN service '{}' was not installed.",
                profile.vpn.service_type
            )));
        };
        if !plugin.multiple
            && self.actives.values().any(|a| {
                self.profiles
                    .get(&a.profile)
                    .is_some_and(|p| plugin.serves(&p.snap.borrow().profile.vpn.service_type))
            })
        {
            return Err(NmError::ConnectionNotAvailable(format!(
                "The '{}' plugin only supports a single active connection.",
                plugin.name
            )));
        }
        let n = self.next_ac;
        self.next_ac = n.next();
        let path = n.path();
        let (snap_tx, snap_rx) = watch::channel(AcSnapshot::vpn(
            connection.clone(),
            specific_object,
            profile.connection.id.clone(),
            profile.connection.uuid.clone(),
            parent,
        ));
        let bus = &self.h.bus;
        let active = ActiveView {
            snap: snap_rx.clone(),
        };
        bus.serve(path.as_str(), active).await?;
        let vpn = VpnView {
            snap: snap_rx.clone(),
        };
        bus.serve(path.as_str(), vpn).await?;
        // Both interfaces in one InterfacesAdded: libnm types the object from the first one.
        let ifaces = [Iface::Active, Iface::Vpn];
        bus.announce(path.as_str(), &ifaces).await?;
        let cmd_rx = self.track(n, pn, uid, snap_rx);
        // As NM: StateChanged(ACTIVATING), then the Manager's list, then the reply.
        let e = self.h.bus.emitter(path.as_str())?;
        ActiveView::emit_state_changed(&e, AcState::Activating as u32, Reason::None as u32).await?;
        self.h
            .bus
            .changed(
                path.as_str(),
                Iface::Active,
                vec![("State", Variant::from(AcState::Activating as u32))],
            )
            .await?;
        self.publish_manager().await?;
        let params = AcParams {
            uid,
            settings_path: connection.clone(),
            n,
            profile: (*profile).clone(),
            plugin,
            h: self.h.clone(),
            core: self.tx.clone(),
            cmd: cmd_rx,
            snap: snap_tx,
        };
        // The switch is on before the plugin starts: not a packet leaves beside it.
        self.killswitch_engage(&profile).await;
        tokio::spawn(crate::vpn::run(params));
        Ok(path)
    }

    pub(super) async fn deactivate(
        &mut self,
        uid: u32,
        active: &OwnedObjectPath,
    ) -> Result<(), NmError> {
        let entry = AcId::of_path(active.as_str()).and_then(|n| self.actives.get(&n));
        let Some(entry) = entry else {
            return Err(NmError::ConnectionNotActive(
                "The connection was not active.".into(),
            ));
        };
        if uid != 0 && entry.uid != uid {
            return Err(NmError::PermissionDenied(format!(
                "{active} was activated by another user (uid {})",
                entry.uid
            )));
        }
        let n = AcId::of_path(active.as_str()).expect("an active connection's path");
        // As NM: a wired profile taken down by the user does not come back by itself.
        let pn = entry.profile;
        if self.devices.values().any(|d| d.managed == Some(n)) {
            self.retries.insert(pn, i32::MAX);
        }
        self.user_took_down(pn);
        let uuid = self
            .profiles
            .get(&pn)
            .map(|p| p.snap.borrow().profile.connection.uuid.clone());
        self.take_down(n, Reason::UserDisconnected).await;
        if let Some(uuid) = uuid {
            self.killswitch_release(&uuid).await;
        }
        Ok(())
    }

    /// The VPNs activated over active connection `n`.
    pub(super) fn dependents(&self, n: AcId) -> Vec<AcId> {
        let path = n.path();
        self.actives
            .iter()
            .filter(|(_, a)| a.snap.borrow().specific_object == path)
            .map(|(m, _)| *m)
            .collect()
    }

    /// Takes connection `n` down for `reason`; the VPNs over it go first (DEPENDENCY_FAILED),
    /// and `n` follows once they have ended.
    pub(super) async fn take_down(&mut self, n: AcId, reason: Reason) {
        let mut stack = vec![(n, reason)];
        while let Some((m, r)) = stack.pop() {
            let deps = self.dependents(m);
            if deps.is_empty() {
                if let Some(a) = self.actives.get(&m) {
                    let _ = a.cmd.send(AcCommand::Deactivate(r)).await;
                }
            } else {
                tracing::info!(
                    "{}: the {} VPN(s) over it go down first",
                    m.path(),
                    deps.len()
                );
                // External connections follow their link, not this: they are not waited on.
                if self.actives.contains_key(&m) {
                    self.pending_down.insert(m, r);
                }
                stack.extend(deps.into_iter().map(|d| (d, Reason::DependencyFailed)));
            }
        }
    }

    /// After `ended` went: what waited for it follows; what sat on it goes.
    pub(super) async fn after_end(&mut self, ended: AcId) {
        self.pending_down.remove(&ended);
        for d in self.dependents(ended) {
            self.take_down(d, Reason::DependencyFailed).await;
        }
        let ready: Vec<(AcId, Reason)> = self
            .pending_down
            .iter()
            .filter(|(m, _)| self.dependents(**m).is_empty())
            .map(|(m, r)| (*m, *r))
            .collect();
        for (m, r) in ready {
            self.pending_down.remove(&m);
            if let Some(a) = self.actives.get(&m) {
                let _ = a.cmd.send(AcCommand::Deactivate(r)).await;
            }
        }
    }
}
