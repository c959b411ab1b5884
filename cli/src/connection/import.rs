//! `tinynm connection import openvpn FILE.ovpn`: as wide as nmcli's import (the same vpn.data),
//! the directives left out named with their lines, the file's certificates written where the
//! daemon keeps its files.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tinynm_client::{SettingsProxy, TinynmSettingsProxy};
use tinynm_config::Profile;
use tinynm_config::ovpn::{Imported, Source};
use zbus::OwnedObjectPath;

use super::json_of;
use crate::out::{Exit, Out, because, fail};

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
    /// Write the file's inline certificates and keys into DIR (mode 0600) on this machine
    /// instead of sending them to the daemon, which keeps them in its profile directory's
    /// `certs/` (NetworkManager, which cannot take them, gets ~/.cert/nm-openvpn as with
    /// nmcli).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Keep the profile in memory only.
    #[arg(long)]
    pub unsaved: bool,
}

/// `tinynm connection import`.
pub async fn run_import(conn: &zbus::Connection, a: ImportArgs, out: Out) -> anyhow::Result<()> {
    let ImportArgs {
        file,
        name,
        cert_dir,
        unsaved,
        ..
    } = a;
    let (path, p, imported) = import_openvpn(conn, &file, name, cert_dir, !unsaved).await?;
    let files: Vec<String> = imported
        .files
        .iter()
        .map(|(f, _)| f.display().to_string())
        .collect();
    if out.json {
        let mut j = json_of(&path, &p);
        j["files"] = serde_json::json!(files);
        j["warnings"] = imported
            .warnings
            .iter()
            .map(|w| serde_json::json!({"line": w.line, "directive": w.directive, "why": w.why}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    for w in &imported.warnings {
        eprintln!("Warning: {}: {w}", file.display());
    }
    println!(
        "Connection '{}' ({}) successfully added.",
        p.connection.id, p.connection.uuid
    );
    for f in files {
        println!("  wrote {f}");
    }
    Ok(())
}

/// Where the inline files go.
enum Sink {
    /// Sent to tinynmd with the profile (`org.tinynm.Settings.AddConnectionWithFiles`).
    Daemon(TinynmSettingsProxy<'static>),
    /// Written here, on this machine.
    Local,
}

/// Imports an `.ovpn` file: the profile is added with its inline material written (0600) where
/// the daemon keeps it; if anything fails, nothing is left behind.
async fn import_openvpn(
    conn: &zbus::Connection,
    file: &std::path::Path,
    name: Option<String>,
    cert_dir: Option<PathBuf>,
    save: bool,
) -> anyhow::Result<(OwnedObjectPath, Profile, Imported)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = match name {
        Some(n) => n,
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                fail(
                    Exit::Usage,
                    format!(
                        "{}: no name in the file's name; give --name",
                        file.display()
                    ),
                )
            })?
            .to_string(),
    };
    let (sink, cert_dir) = match cert_dir {
        Some(d) => (Sink::Local, d),
        None => match daemon_cert_dir(conn).await {
            Some((proxy, d)) => (Sink::Daemon(proxy), d),
            None => {
                let home = std::env::var_os("HOME").context("no HOME: give --cert-dir")?;
                (Sink::Local, PathBuf::from(home).join(".cert/nm-openvpn"))
            }
        },
    };
    let uuid = uuid::Uuid::new_v4().to_string();
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let imported = tinynm_config::ovpn::import_from(
        &text,
        Source {
            name: &name,
            uuid: &uuid,
            cert_dir: &cert_dir,
            base_dir: abs.parent(),
        },
    )
    .map_err(|e| {
        anyhow::Error::new(e).context(because(
            Exit::Usage,
            format!("cannot import {}", file.display()),
        ))
    })?;
    imported
        .profile
        .validate()
        .map_err(|e| anyhow::Error::new(e).context(because(Exit::Usage, "the imported profile")))?;
    let dict = tinynm_config::dbus::to_dict(&imported.profile, true);
    let path = match sink {
        Sink::Daemon(proxy) => {
            let files: HashMap<String, Vec<u8>> = imported
                .files
                .iter()
                .map(|(p, b)| {
                    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    (n.to_string(), b.clone())
                })
                .collect();
            proxy
                .add_connection_with_files(dict, files, save)
                .await
                .with_context(|| format!("cannot add '{name}'"))?
        }
        Sink::Local => add_writing_locally(conn, &imported, dict, &cert_dir, save)
            .await
            .with_context(|| format!("cannot add '{name}'"))?,
    };
    let profile = imported.profile.clone();
    Ok((path, profile, imported))
}

/// tinynmd's `org.tinynm.Settings` and its `CertDir`; `None` from another daemon (NM).
async fn daemon_cert_dir(
    conn: &zbus::Connection,
) -> Option<(TinynmSettingsProxy<'static>, PathBuf)> {
    let proxy = TinynmSettingsProxy::new(conn).await.ok()?;
    let dir = proxy.cert_dir().await.ok()?;
    Some((proxy, PathBuf::from(dir)))
}

/// `--cert-dir` (or NetworkManager): the files written here first, removed if the profile is
/// refused.
async fn add_writing_locally(
    conn: &zbus::Connection,
    imported: &Imported,
    dict: tinynm_client::SettingsDict,
    cert_dir: &std::path::Path,
    save: bool,
) -> anyhow::Result<OwnedObjectPath> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mut written: Vec<PathBuf> = Vec::new();
    let result = async {
        if !imported.files.is_empty() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(cert_dir)
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
            f.write_all(body)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let settings = SettingsProxy::new(conn).await?;
        let path = if save {
            settings.add_connection(dict).await
        } else {
            settings.add_connection_unsaved(dict).await
        }?;
        anyhow::Ok(path)
    }
    .await;
    if result.is_err() {
        for f in &written {
            let _ = std::fs::remove_file(f);
        }
    }
    result
}
