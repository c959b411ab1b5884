//! `[import]`: OpenVPN client files read at each start and kept in memory as profiles (a
//! container's mounted configuration). Each file's profile has a UUID of its own derived from
//! its path (the same at every start, so a profile saved under it takes precedence), the file's
//! name as its id, its inline certificates and keys written under `state-dir/import` (mode
//! 0600), and `tinynm-autoconnect`/`tinynm-kill-switch` as `[import]` says. A file that cannot
//! be imported is logged with its line and skipped; the others still come.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tinynm_config::profile::{TINYNM_AUTOCONNECT, TINYNM_KILL_SWITCH};

use super::Core;

/// The environment variable that adds patterns to `[import] openvpn` (separated by `:`).
pub const ENV_OPENVPN: &str = "TINYNM_IMPORT_OPENVPN";

/// The files `patterns` match, in order, each once.
fn matching(patterns: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for pat in patterns {
        match glob::glob(pat) {
            Ok(paths) => {
                for p in paths.flatten() {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
            Err(e) => tracing::error!("[import] openvpn: '{pat}' is not a pattern: {e}"),
        }
    }
    out
}

fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(body)
}

impl Core {
    /// Imports the `[import]` files (and `TINYNM_IMPORT_OPENVPN`'s); how many came in.
    pub async fn import_files(&mut self) -> usize {
        let mut patterns = self.h.cfg.import.openvpn.clone();
        if let Ok(v) = std::env::var(ENV_OPENVPN) {
            patterns.extend(v.split(':').filter(|p| !p.is_empty()).map(String::from));
        }
        let mut n = 0;
        for file in matching(&patterns) {
            match self.import_openvpn(&file).await {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(why) => tracing::error!("cannot import {}: {why}", file.display()),
            }
        }
        n
    }

    async fn import_openvpn(&mut self, file: &Path) -> Result<bool, String> {
        let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or("the file's name gives no profile name")?
            .to_string();
        let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let uuid = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("file://{}", path.display()).as_bytes(),
        )
        .to_string();
        if self
            .profiles
            .values()
            .any(|p| p.snap.borrow().profile.connection.uuid == uuid)
        {
            tracing::info!(
                "{}: a saved profile has its UUID {uuid}: that one is used",
                file.display()
            );
            return Ok(false);
        }
        let certs = self.h.cfg.state_dir.join("import");
        let source = tinynm_config::ovpn::Source {
            name: &name,
            uuid: &uuid,
            cert_dir: &certs,
            base_dir: path.parent(),
        };
        let mut imported =
            tinynm_config::ovpn::import_from(&text, source).map_err(|e| e.to_string())?;
        for w in &imported.warnings {
            tracing::warn!("{}: {w}", file.display());
        }
        let data = &mut imported.profile.vpn.data;
        let import = self.h.cfg.import.clone();
        for (key, on) in [
            (TINYNM_AUTOCONNECT, import.autoconnect),
            (TINYNM_KILL_SWITCH, import.kill_switch),
        ] {
            if on {
                data.insert(key.to_string(), "yes".into());
            }
        }
        imported.profile.validate().map_err(|e| e.to_string())?;
        if !imported.files.is_empty() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&certs)
                .map_err(|e| format!("cannot create {}: {e}", certs.display()))?;
        }
        for (p, body) in &imported.files {
            write_private(p, body).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
        let dict = tinynm_config::dbus::to_dict(&imported.profile, true);
        self.add(0, dict, false)
            .await
            .map_err(|e| format!("{e:?}"))?;
        tracing::info!(
            "imported {} as '{name}' ({uuid}){}",
            file.display(),
            if import.autoconnect {
                ", autoconnect"
            } else {
                ""
            }
        );
        Ok(true)
    }
}
