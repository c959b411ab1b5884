//! `Settings` and `Settings.Connection`: views onto the core's profiles.

use std::path::PathBuf;
use std::sync::Arc;

use tinynm_config::Profile;
use tinynm_config::dbus::SettingsDict;
use tokio::sync::{mpsc, oneshot, watch};
use zbus::OwnedObjectPath;
use zbus::object_server::SignalEmitter;

use super::{SettingsError, caller_uid};
use crate::core::Command;

/// One profile as the core publishes it.
#[derive(Debug, Clone)]
pub struct ProfileSnapshot {
    /// The profile.
    pub profile: Arc<Profile>,
    /// Its file, when saved.
    pub file: Option<PathBuf>,
    /// Only in memory.
    pub unsaved: bool,
}

fn closed<T>(_: mpsc::error::SendError<T>) -> SettingsError {
    SettingsError::Failed("tinynmd is shutting down".into())
}

/// `org.freedesktop.NetworkManager.Settings`
pub struct SettingsView {
    /// Commands to the core.
    pub cmd: mpsc::Sender<Command>,
    /// Profile paths.
    pub list: watch::Receiver<Vec<OwnedObjectPath>>,
}

impl SettingsView {
    async fn add(
        &self,
        settings: SettingsDict,
        save: bool,
        hdr: &zbus::message::Header<'_>,
        conn: &zbus::Connection,
    ) -> Result<OwnedObjectPath, SettingsError> {
        let uid = caller_uid(conn, hdr).await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Add {
                uid,
                settings,
                save,
                reply,
            })
            .await
            .map_err(closed)?;
        rx.await?
    }
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Settings")]
impl SettingsView {
    fn list_connections(&self) -> Vec<OwnedObjectPath> {
        self.list.borrow().clone()
    }

    async fn get_connection_by_uuid(
        &self,
        uuid: &str,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> Result<OwnedObjectPath, SettingsError> {
        let paths = self.list.borrow().clone();
        for p in paths {
            if let Ok(iface) = server.interface::<_, ConnectionView>(p.as_str()).await
                && iface.get().await.snap.borrow().profile.connection.uuid == uuid
            {
                return Ok(p);
            }
        }
        Err(SettingsError::InvalidConnection(format!(
            "No connection with the UUID '{uuid}' was found."
        )))
    }

    async fn add_connection(
        &self,
        connection: SettingsDict,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<OwnedObjectPath, SettingsError> {
        self.add(connection, true, &hdr, conn).await
    }

    async fn add_connection_unsaved(
        &self,
        connection: SettingsDict,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<OwnedObjectPath, SettingsError> {
        self.add(connection, false, &hdr, conn).await
    }

    #[zbus(property)]
    fn connections(&self) -> Vec<OwnedObjectPath> {
        self.list.borrow().clone()
    }

    #[zbus(property)]
    fn hostname(&self) -> String {
        String::new()
    }

    #[zbus(property)]
    fn can_modify(&self) -> bool {
        true
    }

    /// A profile was added.
    #[zbus(signal, name = "NewConnection")]
    pub async fn emit_new_connection(
        e: &SignalEmitter<'_>,
        connection: OwnedObjectPath,
    ) -> zbus::Result<()>;

    /// A profile was removed.
    #[zbus(signal, name = "ConnectionRemoved")]
    pub async fn emit_connection_removed(
        e: &SignalEmitter<'_>,
        connection: OwnedObjectPath,
    ) -> zbus::Result<()>;
}

/// `org.freedesktop.NetworkManager.Settings.Connection`
pub struct ConnectionView {
    /// Profile number.
    pub n: u64,
    /// The core's snapshot of this profile.
    pub snap: watch::Receiver<ProfileSnapshot>,
    /// Commands to the core.
    pub cmd: mpsc::Sender<Command>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Settings.Connection")]
impl ConnectionView {
    fn get_settings(&self) -> SettingsDict {
        tinynm_config::dbus::to_dict(&self.snap.borrow().profile, false)
    }

    async fn update(
        &self,
        properties: SettingsDict,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), SettingsError> {
        let uid = caller_uid(conn, &hdr).await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Update {
                uid,
                n: self.n,
                settings: properties,
                reply,
            })
            .await
            .map_err(closed)?;
        rx.await?
    }

    async fn delete(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), SettingsError> {
        let uid = caller_uid(conn, &hdr).await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Delete {
                uid,
                n: self.n,
                reply,
            })
            .await
            .map_err(closed)?;
        rx.await?
    }

    #[zbus(property)]
    fn unsaved(&self) -> bool {
        self.snap.borrow().unsaved
    }

    #[zbus(property)]
    fn flags(&self) -> u32 {
        // NM_SETTINGS_CONNECTION_FLAG_UNSAVED = 0x1
        u32::from(self.snap.borrow().unsaved)
    }

    #[zbus(property)]
    fn filename(&self) -> String {
        self.snap
            .borrow()
            .file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default()
    }

    /// The profile changed.
    #[zbus(signal, name = "Updated")]
    pub async fn emit_updated(e: &SignalEmitter<'_>) -> zbus::Result<()>;

    /// The profile was deleted.
    #[zbus(signal, name = "Removed")]
    pub async fn emit_removed(e: &SignalEmitter<'_>) -> zbus::Result<()>;
}
