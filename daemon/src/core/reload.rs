//! Profiles re-read from disk (`LoadConnections`, `ReloadConnections`) and secrets cleared
//! (`ClearSecrets`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tinynm_config::{DaemonConfig, Profile, ProfileError};

use super::Core;
use crate::bus::settings::ConnectionView;
use crate::state::{ProfileId, ProfileSnapshot, SettingsError};

/// A profile found on disk.
pub struct OnDisk {
    /// The profile.
    pub profile: Profile,
    /// Its TOML file.
    pub file: Option<PathBuf>,
    /// The NetworkManager keyfile it came from.
    pub keyfile: Option<PathBuf>,
}

impl OnDisk {
    fn has(&self, f: &Path) -> bool {
        self.file.as_deref() == Some(f) || self.keyfile.as_deref() == Some(f)
    }
}

/// Every profile of the profile directory and the keyfile directories. A TOML profile wins
/// over the keyfile it was saved from; the keyfile stays its origin, so that deleting the
/// profile deletes both.
pub fn read_disk(cfg: &DaemonConfig) -> (Vec<OnDisk>, Vec<ProfileError>) {
    let loaded = crate::store::load_dir(&cfg.profile_dir);
    let keyfiles = crate::store::load_keyfiles(&cfg.keyfile_dirs);
    let mut errors = loaded.errors;
    errors.extend(keyfiles.errors);
    let mut keyfiles = keyfiles.profiles;
    let mut out = Vec::new();
    for (p, f) in loaded.profiles {
        let origin = keyfiles
            .iter()
            .position(|(k, _)| k.connection.uuid == p.connection.uuid)
            .map(|i| keyfiles.remove(i).1);
        out.push(OnDisk {
            profile: p,
            file: Some(f),
            keyfile: origin,
        });
    }
    for (p, k) in keyfiles {
        out.push(OnDisk {
            profile: p,
            file: None,
            keyfile: Some(k),
        });
    }
    (out, errors)
}

impl Core {
    /// A reloaded daemon.toml: the timers, plugin and profile directories, secrets file and
    /// authorization rules take effect for what comes next; the bus, the state directory, the
    /// DNS backend and the log level stay as they were until a restart (said in the log).
    pub(super) fn reload_config(&mut self, mut new: DaemonConfig) {
        let old = &self.h.cfg;
        for (what, changed) in [
            ("bus", new.bus != old.bus),
            ("state-dir", new.state_dir != old.state_dir),
            ("lease-dir", new.lease_dir != old.lease_dir),
            ("[dns]", new.dns != old.dns),
            ("log-level", new.log_level != old.log_level),
        ] {
            if changed {
                tracing::warn!("daemon.toml: {what} changed: it takes effect at the next start");
            }
        }
        new.bus = old.bus.clone();
        new.state_dir = old.state_dir.clone();
        new.lease_dir = old.lease_dir.clone();
        new.dns = old.dns.clone();
        new.log_level = old.log_level.clone();
        self.auth.set_rules(new.authorization.clone());
        self.h.cfg = Arc::new(new);
        tracing::info!("daemon.toml reloaded");
    }

    /// Re-reads the profiles on disk (only `files`, when given): new ones are added, changed
    /// ones updated, those whose file is gone removed. Returns the files that failed.
    pub(super) async fn reload(
        &mut self,
        _uid: u32,
        files: Option<Vec<String>>,
    ) -> Result<Vec<String>, SettingsError> {
        let (found, errors) = read_disk(&self.h.cfg);
        let only: Option<Vec<PathBuf>> = files.map(|f| f.into_iter().map(PathBuf::from).collect());
        let in_scope = |f: &Path| only.as_ref().is_none_or(|o| o.iter().any(|x| x == f));
        let mut failures = Vec::new();
        for e in &errors {
            if let Some(f) = e.file()
                && in_scope(f)
            {
                tracing::error!("profile not loaded: {e}");
                failures.push(f.display().to_string());
            }
        }
        if let Some(o) = &only {
            for f in o {
                let known = self.profiles.values().any(|e| {
                    let s = e.snap.borrow();
                    s.file.as_deref() == Some(f) || s.keyfile.as_deref() == Some(f)
                });
                let failed = failures.iter().any(|x| Path::new(x) == f);
                if !failed && !known && !found.iter().any(|d| d.has(f)) {
                    failures.push(f.display().to_string());
                }
            }
        }
        // Profiles whose file is gone (or no longer a good profile) go.
        let gone: Vec<ProfileId> = self
            .profiles
            .iter()
            .filter(|(_, e)| {
                let s = e.snap.borrow();
                let files: Vec<&Path> = s
                    .file
                    .iter()
                    .chain(s.keyfile.iter())
                    .map(|p| p.as_path())
                    .collect();
                s.generated.is_none()
                    && !files.is_empty()
                    && files.iter().any(|f| in_scope(f))
                    && !found
                        .iter()
                        .any(|d| d.profile.connection.uuid == s.profile.connection.uuid)
                    && files.iter().all(|f| !f.exists())
            })
            .map(|(n, _)| *n)
            .collect();
        for n in gone {
            tracing::info!("profile {} removed: its file is gone", n.path());
            self.drop_profile(n).await?;
        }
        for d in found {
            if !(d.file.as_deref().is_some_and(in_scope)
                || d.keyfile.as_deref().is_some_and(in_scope))
            {
                continue;
            }
            let existing = self.profiles.iter().find(|(_, e)| {
                let s = e.snap.borrow();
                s.generated.is_none() && s.profile.connection.uuid == d.profile.connection.uuid
            });
            match existing {
                Some((n, e)) => {
                    let n = *n;
                    let old = e.snap.borrow().clone();
                    if *old.profile == d.profile && old.file == d.file && old.keyfile == d.keyfile {
                        continue;
                    }
                    e.snap.send_replace(ProfileSnapshot {
                        profile: Arc::new(d.profile),
                        file: d.file,
                        keyfile: d.keyfile,
                        unsaved: false,
                        generated: None,
                    });
                    let path = n.path();
                    let em = self.h.bus.emitter(path.as_str())?;
                    ConnectionView::emit_updated(&em).await?;
                }
                None => {
                    self.insert_profile(d.profile, d.file, d.keyfile, None, true)
                        .await?;
                }
            }
        }
        Ok(failures)
    }

    /// Forgets the profile's stored secrets (and writes it back, when it has a file).
    pub(super) async fn clear_secrets(
        &mut self,
        uid: u32,
        n: ProfileId,
    ) -> Result<(), SettingsError> {
        let old = self.editable_forgetting_secrets(uid, n)?;
        let e = &self.profiles[&n];
        let mut p = (*old.profile).clone();
        p.vpn.secrets.clear();
        if let Some(f) = &old.file {
            crate::store::write(f, &p).map_err(|err| {
                SettingsError::Failed(format!("cannot write {}: {err}", f.display()))
            })?;
        }
        e.snap.send_replace(ProfileSnapshot {
            profile: Arc::new(p),
            ..old
        });
        let path = n.path();
        let em = self.h.bus.emitter(path.as_str())?;
        ConnectionView::emit_updated(&em).await?;
        Ok(())
    }
}
