//! Profiles: the Settings side of the core (add, update, delete, what each user may see and
//! change), in NM's order of signals.

use std::path::PathBuf;
use std::sync::Arc;

use tinynm_config::Profile;
use tinynm_config::dbus::SettingsDict;
use tinynm_config::nm::Reason;
use tokio::sync::watch;
use zbus::{OwnedObjectPath, Variant};

use super::{Core, ProfileEntry, reload};
use crate::auth::visible;
use crate::bus::objects::Iface;
use crate::bus::settings::{ConnectionView, SettingsView};
use crate::state::paths::SETTINGS_PATH;
use crate::state::{Generated, ProfileId, ProfileSnapshot, SettingsError, Storage};
use crate::vpn::AcCommand;

impl Core {
    /// Loads the profile directory; bad files are logged by file and key and skipped.
    pub async fn load_profiles(&mut self) -> zbus::Result<()> {
        let (found, errors) = reload::read_disk(&self.h.cfg);
        for e in &errors {
            tracing::error!("profile not loaded: {e}");
        }
        for d in found {
            self.insert_profile(d.profile, d.file, d.keyfile, None, false)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn insert_profile(
        &mut self,
        p: Profile,
        file: Option<PathBuf>,
        keyfile: Option<PathBuf>,
        generated: Option<Generated>,
        announce: bool,
    ) -> zbus::Result<OwnedObjectPath> {
        let n = self.next_profile;
        self.next_profile = n.next();
        let path = n.path();
        let (snap, rx) = watch::channel(ProfileSnapshot {
            unsaved: file.is_none() && keyfile.is_none(),
            profile: Arc::new(p),
            file,
            keyfile,
            generated,
        });
        self.h
            .bus
            .serve(
                path.as_str(),
                ConnectionView {
                    n,
                    snap: rx,
                    cmd: self.tx.clone(),
                    auth: self.auth.clone(),
                },
            )
            .await?;
        self.profiles.insert(n, ProfileEntry { snap });
        if announce {
            self.h
                .bus
                .announce(path.as_str(), &[Iface::Connection])
                .await?;
        } else {
            self.h.bus.list(path.as_str(), &[Iface::Connection]);
        }
        self.publish_settings(announce.then_some(&path)).await?;
        Ok(path)
    }

    pub(super) async fn publish_settings(
        &self,
        added: Option<&OwnedObjectPath>,
    ) -> zbus::Result<()> {
        let list: Vec<OwnedObjectPath> = self.profiles.keys().map(|n| n.path()).collect();
        self.out.settings.send_replace(list.clone());
        if let Some(p) = added
            && self.h.bus.is_live()
        {
            SettingsView::emit_new_connection(&self.h.bus.emitter(SETTINGS_PATH)?, p.clone())
                .await?;
        }
        self.h
            .bus
            .changed(
                SETTINGS_PATH,
                Iface::Settings,
                vec![("Connections", Variant::from(list))],
            )
            .await
    }

    /// Writes `files` into the certificate directory, then adds the profile; if the profile is
    /// refused, the files written are removed again.
    pub(super) async fn add_with_files(
        &mut self,
        uid: u32,
        d: SettingsDict,
        save: bool,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<OwnedObjectPath, SettingsError> {
        let dir = self.h.cfg.cert_dir();
        let written = crate::store::write_new_files(&dir, &files)
            .map_err(|e| SettingsError::Failed(format!("{}: {e}", dir.display())))?;
        let r = self.add(uid, d, save).await;
        if r.is_err() {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
        }
        r
    }

    pub(super) async fn add(
        &mut self,
        uid: u32,
        mut d: SettingsDict,
        save: bool,
    ) -> Result<OwnedObjectPath, SettingsError> {
        // As NM normalizes a new profile: one without a UUID gets a fresh one, one without a
        // type gets its base setting's (nmcli's `connection import` sends neither).
        let has_vpn = d.contains_key("vpn");
        if let Some(c) = d.get_mut("connection") {
            if !c.contains_key("uuid") {
                let uuid = uuid::Uuid::new_v4().to_string();
                c.insert("uuid".into(), Variant::from(uuid).try_into_owned()?);
            }
            if !c.contains_key("type") && has_vpn {
                c.insert("type".into(), Variant::from("vpn").try_into_owned()?);
            }
        }
        let mut p = tinynm_config::dbus::from_dict(&d)
            .map_err(|e| SettingsError::InvalidConnection(e.to_string()))?;
        // Agent-owned secrets go to the caller's agents, not-saved ones nowhere.
        let agent_owned = crate::secrets::take_unstorable(&mut p);
        if self
            .profiles
            .values()
            .any(|e| e.snap.borrow().profile.connection.uuid == p.connection.uuid)
        {
            return Err(SettingsError::UuidExists(format!(
                "A connection with UUID '{}' already exists",
                p.connection.uuid
            )));
        }
        let file = if save {
            let f = crate::store::file_for(&self.h.cfg.profile_dir, &p);
            crate::store::write(&f, &p)
                .map_err(|e| SettingsError::Failed(format!("cannot write {}: {e}", f.display())))?;
            Some(f)
        } else {
            None
        };
        let keep = p.clone();
        let path = self
            .insert_profile(p, file, None, None, true)
            .await
            .map_err(SettingsError::ZBus)?;
        crate::secrets::save_secrets(
            self.h.bus.conn(),
            &self.h.agents,
            uid,
            &keep,
            agent_owned,
            &path,
        );
        Ok(path)
    }

    pub(super) async fn update(
        &mut self,
        uid: u32,
        n: ProfileId,
        d: Option<SettingsDict>,
        storage: Storage,
    ) -> Result<(), SettingsError> {
        let old = self.editable(uid, n)?;
        let entry = &self.profiles[&n];
        let p = match &d {
            None => (*old.profile).clone(),
            Some(d) => {
                let mut p = tinynm_config::dbus::from_dict(d)
                    .map_err(|e| SettingsError::InvalidConnection(e.to_string()))?;
                if p.connection.uuid != old.profile.connection.uuid {
                    return Err(SettingsError::InvalidConnection(
                        "[connection] uuid: cannot be changed by Update".into(),
                    ));
                }
                // An update without secrets keeps the stored ones, as NM does.
                if !d.get("vpn").is_some_and(|v| v.contains_key("secrets")) {
                    p.vpn.secrets = old.profile.vpn.secrets.clone();
                }
                p
            }
        };
        let mut p = p;
        let agent_owned = crate::secrets::take_unstorable(&mut p);
        crate::secrets::save_secrets(
            self.h.bus.conn(),
            &self.h.agents,
            uid,
            &p,
            agent_owned,
            &n.path(),
        );
        let unsaved = match storage {
            Storage::Keep => old.unsaved,
            Storage::ToDisk => false,
            Storage::InMemory => true,
        };
        let mut file = old.file.clone();
        if !unsaved {
            let f = file
                .get_or_insert_with(|| crate::store::file_for(&self.h.cfg.profile_dir, &p))
                .clone();
            crate::store::write(&f, &p)
                .map_err(|e| SettingsError::Failed(format!("cannot write {}: {e}", f.display())))?;
        }
        let filename = file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        entry.snap.send_replace(ProfileSnapshot {
            profile: Arc::new(p),
            file,
            keyfile: old.keyfile.clone(),
            unsaved,
            generated: None,
        });
        let path = n.path();
        if unsaved != old.unsaved {
            self.h
                .bus
                .changed(
                    path.as_str(),
                    Iface::Connection,
                    vec![
                        ("Unsaved", Variant::from(unsaved)),
                        ("Flags", Variant::from(u32::from(unsaved))),
                        ("Filename", Variant::from(filename)),
                    ],
                )
                .await?;
        }
        let e = self.h.bus.emitter(path.as_str())?;
        ConnectionView::emit_updated(&e).await?;
        Ok(())
    }

    pub(super) async fn delete(&mut self, uid: u32, n: ProfileId) -> Result<(), SettingsError> {
        self.editable_forgetting_secrets(uid, n)?;
        let Some(entry) = self.profiles.get(&n) else {
            return Err(SettingsError::Failed("the connection is gone".into()));
        };
        let files: Vec<PathBuf> = {
            let s = entry.snap.borrow();
            s.file.iter().chain(s.keyfile.iter()).cloned().collect()
        };
        for f in &files {
            if let Err(e) = std::fs::remove_file(f)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(SettingsError::Failed(format!(
                    "cannot delete {}: {e}",
                    f.display()
                )));
            }
        }
        self.drop_profile(n).await?;
        Ok(())
    }

    /// Unexports a profile, in NM's order: Connections, Removed, ConnectionRemoved,
    /// InterfacesRemoved (then the caller's reply).
    pub(super) async fn drop_profile(&mut self, n: ProfileId) -> zbus::Result<()> {
        // Its VPNs go down (CONNECTION_REMOVED) on their own time.
        for a in self.actives.values().filter(|a| a.profile == n) {
            let _ = a
                .cmd
                .send(AcCommand::Deactivate(Reason::ConnectionRemoved))
                .await;
        }
        self.profiles.remove(&n);
        let path = n.path();
        self.publish_settings(None).await?;
        let e = self.h.bus.emitter(path.as_str())?;
        ConnectionView::emit_removed(&e).await?;
        SettingsView::emit_connection_removed(&self.h.bus.emitter(SETTINGS_PATH)?, path.clone())
            .await?;
        self.h
            .bus
            .withdraw(path.as_str(), &[Iface::Connection])
            .await;
        self.h.bus.unserve::<ConnectionView>(path.as_str()).await;
        Ok(())
    }

    /// The interface a generated profile stands for, if `n` is one.
    pub(super) fn generated_iface(&self, n: ProfileId) -> Option<String> {
        let e = self.profiles.get(&n)?;
        let s = e.snap.borrow();
        s.generated.as_ref().map(|g| g.iface.clone())
    }

    /// The profile `n` as it is, when `uid` may change it and it is not generated.
    pub(super) fn editable(
        &self,
        uid: u32,
        n: ProfileId,
    ) -> Result<ProfileSnapshot, SettingsError> {
        self.not_generated(n)?;
        match self.profiles.get(&n) {
            Some(e) => {
                let s = e.snap.borrow().clone();
                if !visible(&s.profile, uid) {
                    return Err(SettingsError::PermissionDenied(
                        "the connection is not visible to this user (connection.permissions)"
                            .into(),
                    ));
                }
                Ok(s)
            }
            None => Err(SettingsError::Failed("the connection is gone".into())),
        }
    }

    /// [`Core::editable`], and the agents told to forget the profile's secrets (NM's
    /// DeleteSecrets, for Delete and ClearSecrets).
    pub(super) fn editable_forgetting_secrets(
        &self,
        uid: u32,
        n: ProfileId,
    ) -> Result<ProfileSnapshot, SettingsError> {
        let old = self.editable(uid, n)?;
        crate::secrets::delete_secrets(self.h.bus.conn(), &self.h.agents, &old.profile, &n.path());
        Ok(old)
    }

    pub(super) fn not_generated(&self, n: ProfileId) -> Result<(), SettingsError> {
        match self.generated_iface(n) {
            Some(iface) => Err(SettingsError::Failed(format!(
                "the profile is generated for the interface '{iface}', which tinynmd does not manage: it follows the kernel"
            ))),
            None => Ok(()),
        }
    }

    pub(super) fn profile_by_path(&self, path: &str) -> Option<(ProfileId, Arc<Profile>)> {
        let n = ProfileId::of_path(path)?;
        self.profiles
            .get(&n)
            .map(|e| (n, e.snap.borrow().profile.clone()))
    }
}
