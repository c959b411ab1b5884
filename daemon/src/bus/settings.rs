//! `Settings` and `Settings.Connection`: views onto the core's profiles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tinynm_config::Profile;
use tinynm_config::dbus::SettingsDict;
use tokio::sync::{mpsc, oneshot, watch};
use zbus::object_server::SignalEmitter;
use zbus::{OwnedObjectPath, OwnedVariant};

use super::{SettingsError, caller_uid};
use crate::core::{Command, Storage};

/// One profile as the core publishes it.
#[derive(Debug, Clone)]
pub struct ProfileSnapshot {
    /// The profile.
    pub profile: Arc<Profile>,
    /// Its file, when saved.
    pub file: Option<PathBuf>,
    /// The NetworkManager keyfile it was read from, if any (never written; deleted with it).
    pub keyfile: Option<PathBuf>,
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

    async fn add_connection2(
        &self,
        settings: SettingsDict,
        flags: u32,
        _args: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(OwnedObjectPath, HashMap<String, OwnedVariant>), SettingsError> {
        const TO_DISK: u32 = 0x1;
        const IN_MEMORY: u32 = 0x2;
        const BLOCK_AUTOCONNECT: u32 = 0x20;
        if flags & !(TO_DISK | IN_MEMORY | BLOCK_AUTOCONNECT) != 0 {
            return Err(SettingsError::InvalidArguments(format!(
                "unknown flags 0x{:x}",
                flags & !(TO_DISK | IN_MEMORY | BLOCK_AUTOCONNECT)
            )));
        }
        let save = match (flags & TO_DISK != 0, flags & IN_MEMORY != 0) {
            (true, false) => true,
            (false, true) => false,
            _ => {
                return Err(SettingsError::InvalidArguments(
                    "Need either to-disk or in-memory flag".into(),
                ));
            }
        };
        let path = self.add(settings, save, &hdr, conn).await?;
        Ok((path, HashMap::new()))
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

impl ConnectionView {
    async fn send_update(
        &self,
        settings: Option<SettingsDict>,
        storage: Storage,
        hdr: &zbus::message::Header<'_>,
        conn: &zbus::Connection,
    ) -> Result<(), SettingsError> {
        let uid = caller_uid(conn, hdr).await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Update {
                uid,
                n: self.n,
                settings,
                storage,
                reply,
            })
            .await
            .map_err(closed)?;
        rx.await?
    }
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
        self.send_update(Some(properties), Storage::ToDisk, &hdr, conn)
            .await
    }

    async fn update_unsaved(
        &self,
        properties: SettingsDict,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), SettingsError> {
        self.send_update(Some(properties), Storage::InMemory, &hdr, conn)
            .await
    }

    async fn save(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), SettingsError> {
        self.send_update(None, Storage::ToDisk, &hdr, conn).await
    }

    async fn update2(
        &self,
        settings: SettingsDict,
        flags: u32,
        _args: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<HashMap<String, OwnedVariant>, SettingsError> {
        const TO_DISK: u32 = 0x1;
        const IN_MEMORY_ANY: u32 = 0x2 | 0x4 | 0x8;
        const KNOWN: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40;
        if flags & !KNOWN != 0 {
            return Err(SettingsError::InvalidArguments(format!(
                "unknown flags 0x{:x}",
                flags & !KNOWN
            )));
        }
        let storage = match (flags & TO_DISK != 0, flags & IN_MEMORY_ANY != 0) {
            (true, true) => {
                return Err(SettingsError::InvalidArguments(
                    "flags to-disk and in-memory are exclusive".into(),
                ));
            }
            (true, false) => Storage::ToDisk,
            (false, true) => Storage::InMemory,
            (false, false) => Storage::Keep,
        };
        // An empty settings dict changes only where the profile is kept.
        let settings = (!settings.is_empty()).then_some(settings);
        self.send_update(settings, storage, &hdr, conn).await?;
        Ok(HashMap::new())
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
        let s = self.snap.borrow();
        s.file
            .as_ref()
            .or(s.keyfile.as_ref())
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
