//! `tinynm connection import openvpn FILE.ovpn`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tinynm_client::SettingsProxy;
use tinynm_config::Profile;
use zbus::OwnedObjectPath;

use super::json_of;
use crate::out::Out;

/// `tinynm connection import`
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The format (only `openvpn`).
    #[arg(value_parser = ["openvpn"])]
    pub kind: String,
    /// The file.
    pub file: PathBuf,
    /// The profile's name (default: the file's name without extension).
    #[arg(long)]
    pub name: Option<String>,
    /// Where the file's inline certificates and keys go, mode 0600 (default: beside
    /// tinynmd's default profile directory, in `certs/`).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

/// `tinynm connection import`.
pub async fn run_import(conn: &zbus::Connection, a: ImportArgs, out: Out) -> anyhow::Result<()> {
    let ImportArgs {
        file,
        name,
        cert_dir,
        ..
    } = a;
    let (path, p) = import_openvpn(conn, &file, name, cert_dir).await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&json_of(&path, &p))?);
    } else {
        println!(
            "Connection '{}' ({}) successfully added.",
            p.connection.id, p.connection.uuid
        );
    }
    Ok(())
}

/// Imports an `.ovpn` file: its inline material is written (0600) to `cert_dir`, then the
/// profile is added; if anything fails, nothing is left behind.
async fn import_openvpn(
    conn: &zbus::Connection,
    file: &std::path::Path,
    name: Option<String>,
    cert_dir: Option<PathBuf>,
) -> anyhow::Result<(OwnedObjectPath, Profile)> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = match name {
        Some(n) => n,
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .with_context(|| {
                format!(
                    "{}: no name in the file's name; give --name",
                    file.display()
                )
            })?
            .to_string(),
    };
    let cert_dir = cert_dir.unwrap_or_else(|| {
        tinynm_config::DaemonConfig::default()
            .profile_dir
            .join("certs")
    });
    let uuid = uuid::Uuid::new_v4().to_string();
    let imported = tinynm_config::ovpn::import(&text, &name, &uuid, &cert_dir)
        .with_context(|| format!("cannot import {}", file.display()))?;
    imported.profile.validate()?;
    let mut written: Vec<PathBuf> = Vec::new();
    let result = async {
        if !imported.files.is_empty() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&cert_dir)
                .with_context(|| format!("cannot create {}", cert_dir.display()))?;
        }
        for (path, body) in &imported.files {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path.clone());
            f.write_all(body.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let settings = SettingsProxy::new(conn).await?;
        settings
            .add_connection(tinynm_config::dbus::to_dict(&imported.profile, true))
            .await
            .with_context(|| format!("cannot add '{name}'"))
    }
    .await;
    match result {
        Ok(path) => Ok((path, imported.profile)),
        Err(e) => {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
            Err(e)
        }
    }
}
