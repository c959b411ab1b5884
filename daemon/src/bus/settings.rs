//! `Settings` and `Settings.Connection`: views onto the core's profiles.

use std::collections::HashMap;
use std::sync::Arc;
use tinynm_config::dbus::ov;

use tinynm_config::Profile;
use tinynm_config::dbus::SettingsDict;
use tokio::sync::{mpsc, oneshot, watch};
use zbus::object_server::SignalEmitter;
use zbus::{OwnedObjectPath, OwnedVariant};

use crate::auth::caller_uid;
use crate::state::{Command, Generated, ProfileId, ProfileSnapshot, SettingsError, Storage};

/// The settings NM shows for a generated profile: connection, its type's setting, the
/// addresses found on the interface.
fn generated_dict(p: &Profile, g: &Generated) -> SettingsDict {
    let mut out = SettingsDict::new();
    let mut c = HashMap::new();
    c.insert("id".to_string(), ov(p.connection.id.as_str()));
    c.insert("uuid".to_string(), ov(p.connection.uuid.as_str()));
    c.insert("type".to_string(), ov(p.connection.kind.as_str()));
    c.insert("interface-name".to_string(), ov(g.iface.as_str()));
    c.insert("autoconnect".to_string(), ov(false));
    out.insert("connection".into(), c);
    out.insert(p.connection.kind.clone(), HashMap::new());
    for (family, name, none) in [(4, "ipv4", "disabled"), (6, "ipv6", "ignore")] {
        let addrs: Vec<HashMap<String, OwnedVariant>> = g
            .addrs
            .iter()
            .filter(|a| {
                if family == 4 {
                    a.addr.is_ipv4()
                } else {
                    a.addr.is_ipv6()
                }
            })
            .map(|a| {
                HashMap::from([
                    ("address".to_string(), ov(a.addr.to_string())),
                    ("prefix".to_string(), ov(u32::from(a.prefix))),
                ])
            })
            .collect();
        let mut ip = HashMap::new();
        let method = if addrs.is_empty() { none } else { "manual" };
        ip.insert("method".to_string(), ov(method));
        ip.insert("address-data".to_string(), ov(addrs));
        out.insert(name.into(), ip);
    }
    out
}

/// `GetSecrets` answers settings errors and NM's connection error for an unknown setting.
#[allow(missing_docs)]
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager")]
pub enum SecretsError {
    #[zbus(error)]
    ZBus(zbus::Error),
    #[zbus(name = "Settings.Connection.SettingNotFound")]
    SettingNotFound(String),
    #[zbus(name = "Settings.PermissionDenied")]
    PermissionDenied(String),
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
    /// Who may do what.
    pub auth: Arc<crate::auth::Authority>,
}

/// The caller, when they may do `action`.
async fn authorized(
    auth: &crate::auth::Authority,
    conn: &zbus::Connection,
    hdr: &zbus::message::Header<'_>,
    action: &str,
) -> Result<u32, SettingsError> {
    let caller = crate::auth::Caller::of(conn, hdr).await?;
    auth.require(&caller, action)
        .await
        .map_err(SettingsError::PermissionDenied)?;
    Ok(caller.uid)
}

/// The caller, when they may change a profile with these `connection.permissions`:
/// `settings.modify.own` when they name the caller alone, as NM asks, else
/// `settings.modify.system`.
async fn may_modify(
    auth: &crate::auth::Authority,
    conn: &zbus::Connection,
    hdr: &zbus::message::Header<'_>,
    permissions: &[String],
) -> Result<u32, SettingsError> {
    let caller = crate::auth::Caller::of(conn, hdr).await?;
    let action = match permissions {
        [only] if crate::auth::names_user(only, caller.uid) => "settings.modify.own",
        _ => "settings.modify.system",
    };
    auth.require(&caller, action)
        .await
        .map_err(SettingsError::PermissionDenied)?;
    Ok(caller.uid)
}

/// `connection.permissions` of a settings dict, if it has any.
fn dict_permissions(d: &SettingsDict) -> Vec<String> {
    d.get("connection")
        .and_then(|c| c.get("permissions"))
        .and_then(|v| Vec::<String>::try_from(v.try_clone().ok()?).ok())
        .unwrap_or_default()
}

/// AddConnection, with the files the profile names (`org.tinynm.Settings`'s
/// `AddConnectionWithFiles`; none for NM's calls). Authorized before anything is written.
pub(crate) async fn add_profile(
    cmd: &mpsc::Sender<Command>,
    auth: &crate::auth::Authority,
    settings: SettingsDict,
    save: bool,
    files: Vec<(String, Vec<u8>)>,
    hdr: &zbus::message::Header<'_>,
    conn: &zbus::Connection,
) -> Result<OwnedObjectPath, SettingsError> {
    let uid = may_modify(auth, conn, hdr, &dict_permissions(&settings)).await?;
    let (reply, rx) = oneshot::channel();
    cmd.send(Command::Add {
        uid,
        settings,
        save,
        files,
        reply,
    })
    .await
    .map_err(closed)?;
    rx.await?
}

impl SettingsView {
    async fn add(
        &self,
        settings: SettingsDict,
        save: bool,
        hdr: &zbus::message::Header<'_>,
        conn: &zbus::Connection,
    ) -> Result<OwnedObjectPath, SettingsError> {
        add_profile(&self.cmd, &self.auth, settings, save, Vec::new(), hdr, conn).await
    }
}

impl SettingsView {
    async fn reload(
        &self,
        files: Option<Vec<String>>,
        hdr: &zbus::message::Header<'_>,
        conn: &zbus::Connection,
    ) -> Result<Vec<String>, SettingsError> {
        let uid = authorized(&self.auth, conn, hdr, "reload").await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Reload { uid, files, reply })
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

    /// Loads or reloads these profile files; answers the ones that failed.
    async fn load_connections(
        &self,
        filenames: Vec<String>,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(bool, Vec<String>), SettingsError> {
        let failures = self.reload(Some(filenames), &hdr, conn).await?;
        Ok((true, failures))
    }

    /// Re-reads every profile file.
    async fn reload_connections(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<bool, SettingsError> {
        self.reload(None, &hdr, conn).await?;
        Ok(true)
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
    pub n: ProfileId,
    /// The core's snapshot of this profile.
    pub snap: watch::Receiver<ProfileSnapshot>,
    /// Commands to the core.
    pub cmd: mpsc::Sender<Command>,
    /// Who may do what.
    pub auth: Arc<crate::auth::Authority>,
}

impl ConnectionView {
    /// Sends the core a command about this profile, with the caller's uid; awaits its answer.
    async fn ask(
        &self,
        hdr: &zbus::message::Header<'_>,
        conn: &zbus::Connection,
        make: impl FnOnce(u32, ProfileId, oneshot::Sender<Result<(), SettingsError>>) -> Command,
    ) -> Result<(), SettingsError> {
        let perms = self.snap.borrow().profile.connection.permissions.clone();
        let uid = may_modify(&self.auth, conn, hdr, &perms).await?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(make(uid, self.n, reply))
            .await
            .map_err(closed)?;
        rx.await?
    }

    async fn send_update(
        &self,
        settings: Option<SettingsDict>,
        storage: Storage,
        hdr: &zbus::message::Header<'_>,
        conn: &zbus::Connection,
    ) -> Result<(), SettingsError> {
        // Both the profile as it is and as it would be must be the caller's own.
        let mut perms = self.snap.borrow().profile.connection.permissions.clone();
        if let Some(d) = &settings
            && dict_permissions(d) != perms
        {
            perms.clear();
        }
        let uid = may_modify(&self.auth, conn, hdr, &perms).await?;
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
    /// The profile without secrets; a profile whose `connection.permissions` leave the caller
    /// out is not visible to them.
    async fn get_settings(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<SettingsDict, SettingsError> {
        let uid = caller_uid(conn, &hdr).await?;
        let s = self.snap.borrow().clone();
        if let Some(g) = &s.generated {
            g.fetched.notify_one();
        }
        if !crate::auth::visible(&s.profile, uid) {
            return Err(SettingsError::PermissionDenied(
                "the connection is not visible to this user (connection.permissions)".into(),
            ));
        }
        Ok(match &s.generated {
            Some(g) => generated_dict(&s.profile, g),
            None => tinynm_config::dbus::to_dict(&s.profile, false),
        })
    }

    /// The profile's secrets (root only), as NM answers: the settings that hold secrets, with
    /// only their secret properties.
    async fn get_secrets(
        &self,
        setting_name: String,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<SettingsDict, SecretsError> {
        let caller = crate::auth::Caller::of(conn, &hdr).await?;
        self.auth
            .require(&caller, "settings.modify.system")
            .await
            .map_err(SecretsError::PermissionDenied)?;
        let s = self.snap.borrow().clone();
        if !crate::auth::visible(&s.profile, caller.uid) {
            return Err(SecretsError::PermissionDenied(
                "the connection is not visible to this user (connection.permissions)".into(),
            ));
        }
        let settings: &[&str] = if s.generated.is_some() {
            &["connection", "ipv4", "ipv6"]
        } else {
            &["connection", "vpn", "ipv4", "ipv6", "proxy"]
        };
        if !settings.contains(&setting_name.as_str()) {
            return Err(SecretsError::SettingNotFound(format!(
                "Connection didn't have requested setting '{setting_name}'."
            )));
        }
        let mut out = SettingsDict::new();
        if s.generated.is_none() && !s.profile.vpn.secrets.is_empty() {
            let secrets: HashMap<String, String> =
                s.profile.vpn.secrets.clone().into_iter().collect();
            out.insert(
                "vpn".into(),
                HashMap::from([("secrets".to_string(), ov(secrets))]),
            );
        }
        Ok(out)
    }

    /// Forgets the stored secrets.
    async fn clear_secrets(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), SettingsError> {
        self.ask(&hdr, conn, |uid, n, reply| Command::ClearSecrets {
            uid,
            n,
            reply,
        })
        .await
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
        self.ask(&hdr, conn, |uid, n, reply| Command::Delete {
            uid,
            n,
            reply,
        })
        .await
    }

    #[zbus(property)]
    fn unsaved(&self) -> bool {
        self.snap.borrow().unsaved
    }

    #[zbus(property)]
    fn flags(&self) -> u32 {
        let s = self.snap.borrow();
        if s.generated.is_some() {
            // UNSAVED | NM_GENERATED | VOLATILE | EXTERNAL, as NM flags its external profiles.
            0xf
        } else {
            // NM_SETTINGS_CONNECTION_FLAG_UNSAVED = 0x1
            u32::from(s.unsaved)
        }
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
