//! `org.freedesktop.NetworkManager`: the Manager view.

use tokio::sync::{mpsc, oneshot, watch};
use zbus::OwnedObjectPath;
use zbus::object_server::SignalEmitter;

use super::{NmError, caller_uid};
use crate::core::{Command, ManagerSnapshot};

/// The Manager object.
pub struct Manager {
    /// Commands to the core.
    pub cmd: mpsc::Sender<Command>,
    /// The core's snapshot.
    pub snap: watch::Receiver<ManagerSnapshot>,
}

fn closed<T>(_: mpsc::error::SendError<T>) -> NmError {
    NmError::Failed("tinynmd is shutting down".into())
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
        if device.as_str() != "/" {
            // tinynmd does not model devices yet: only "/" (bind to the primary connection).
            return Err(NmError::UnknownDevice("Device not found".into()));
        }
        let uid = caller_uid(conn, &hdr).await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Activate {
                uid,
                connection,
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
        let uid = caller_uid(conn, &hdr).await?;
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
        Vec::new()
    }

    fn get_all_devices(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
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
        false
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
        Vec::new()
    }

    #[zbus(property)]
    fn all_devices(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }

    /// `NMState` changed.
    #[zbus(signal, name = "StateChanged")]
    pub async fn emit_state_changed(e: &SignalEmitter<'_>, state: u32) -> zbus::Result<()>;
}
