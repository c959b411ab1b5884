//! `org.freedesktop.NetworkManager`: the Manager view.

use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot, watch};

use zbus::object_server::SignalEmitter;
use zbus::{OwnedObjectPath, OwnedVariant};

use crate::state::{Command, ManagerSnapshot, NmError};

/// The Manager object.
pub struct Manager {
    /// Commands to the core.
    pub cmd: mpsc::Sender<Command>,
    /// The core's snapshot.
    pub snap: watch::Receiver<ManagerSnapshot>,
    /// Who may do what.
    pub auth: std::sync::Arc<crate::auth::Authority>,
}

fn closed<T>(_: mpsc::error::SendError<T>) -> NmError {
    NmError::Failed("tinynmd is shutting down".into())
}

impl Manager {
    /// The caller's uid, when they may control networking.
    async fn controller(
        &self,
        conn: &zbus::Connection,
        hdr: &zbus::message::Header<'_>,
    ) -> Result<u32, NmError> {
        let caller = crate::auth::Caller::of(conn, hdr).await?;
        self.auth
            .require(&caller, "network-control")
            .await
            .map_err(NmError::PermissionDenied)?;
        Ok(caller.uid)
    }
}

#[zbus::interface(name = "org.freedesktop.NetworkManager")]
impl Manager {
    async fn activate_connection(
        &self,
        connection: OwnedObjectPath,
        device: OwnedObjectPath,
        specific_object: OwnedObjectPath,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<OwnedObjectPath, NmError> {
        let uid = self.controller(conn, &hdr).await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Activate {
                uid,
                connection,
                device,
                specific_object,
                reply,
            })
            .await
            .map_err(closed)?;
        rx.await?
    }

    async fn deactivate_connection(
        &self,
        active_connection: OwnedObjectPath,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), NmError> {
        let uid = self.controller(conn, &hdr).await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Deactivate {
                uid,
                active: active_connection,
                reply,
            })
            .await
            .map_err(closed)?;
        rx.await?
    }

    fn get_devices(&self) -> Vec<OwnedObjectPath> {
        self.snap.borrow().devices.clone()
    }

    fn get_all_devices(&self) -> Vec<OwnedObjectPath> {
        self.snap.borrow().devices.clone()
    }

    #[zbus(property)]
    fn version(&self) -> String {
        tinynm_config::nm::NM_API_VERSION.into()
    }

    #[zbus(property)]
    fn state(&self) -> u32 {
        self.snap.borrow().state
    }

    #[zbus(property)]
    fn startup(&self) -> bool {
        self.snap.borrow().startup
    }

    #[zbus(property)]
    fn networking_enabled(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn active_connections(&self) -> Vec<OwnedObjectPath> {
        self.snap.borrow().active.clone()
    }

    #[zbus(property)]
    fn devices(&self) -> Vec<OwnedObjectPath> {
        self.snap.borrow().devices.clone()
    }

    #[zbus(name = "state")]
    fn state_method(&self) -> u32 {
        self.snap.borrow().state
    }

    /// Every action and whether the caller may do it (`yes`, `no`, `auth`).
    async fn get_permissions(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<HashMap<String, String>, NmError> {
        let caller = crate::auth::Caller::of(conn, &hdr).await?;
        let mut out = HashMap::new();
        for a in crate::auth::ACTIONS {
            let d = self.auth.decide(&caller, a).await;
            out.insert(
                format!("{}{a}", crate::auth::PREFIX),
                d.as_str().to_string(),
            );
        }
        Ok(out)
    }

    #[zbus(property)]
    fn version_info(&self) -> Vec<u32> {
        // (major << 16 | minor << 8 | micro) of the API level tinynmd speaks
        vec![(1 << 16) | (42 << 8) | 4]
    }
    #[zbus(property)]
    fn capabilities(&self) -> Vec<u32> {
        Vec::new()
    }
    #[zbus(property)]
    fn wireless_enabled(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn wireless_hardware_enabled(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn wwan_enabled(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn wwan_hardware_enabled(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn wimax_enabled(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn wimax_hardware_enabled(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn radio_flags(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn checkpoints(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }
    #[zbus(property)]
    fn primary_connection(&self) -> OwnedObjectPath {
        self.snap.borrow().primary.clone()
    }
    #[zbus(property)]
    fn primary_connection_type(&self) -> String {
        self.snap.borrow().primary_type.clone()
    }
    #[zbus(property)]
    fn activating_connection(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from("/").expect("valid path")
    }
    #[zbus(property)]
    fn metered(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn connectivity(&self) -> u32 {
        crate::state::connectivity(self.snap.borrow().state)
    }
    #[zbus(property)]
    fn connectivity_check_available(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn connectivity_check_enabled(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn connectivity_check_uri(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn global_dns_configuration(&self) -> HashMap<String, OwnedVariant> {
        HashMap::new()
    }

    #[zbus(property)]
    fn all_devices(&self) -> Vec<OwnedObjectPath> {
        self.snap.borrow().devices.clone()
    }

    /// A device appeared.
    #[zbus(signal, name = "DeviceAdded")]
    pub async fn emit_device_added(
        e: &SignalEmitter<'_>,
        device_path: OwnedObjectPath,
    ) -> zbus::Result<()>;

    /// A device went away.
    #[zbus(signal, name = "DeviceRemoved")]
    pub async fn emit_device_removed(
        e: &SignalEmitter<'_>,
        device_path: OwnedObjectPath,
    ) -> zbus::Result<()>;

    /// `NMState` changed.
    #[zbus(signal, name = "StateChanged")]
    pub async fn emit_state_changed(e: &SignalEmitter<'_>, state: u32) -> zbus::Result<()>;
}
