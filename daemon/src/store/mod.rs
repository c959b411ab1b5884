//! Profiles on disk: TOML files in one directory, written atomically, mode 0600.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tinynm_config::{Profile, ProfileError};

/// A profile read from disk, or why a file could not be.
pub struct Loaded {
    /// The good profiles with their files, in file-name order.
    pub profiles: Vec<(Profile, PathBuf)>,
    /// One error per bad file, naming the file, section and key.
    pub errors: Vec<ProfileError>,
}

/// Reads every `*.toml` profile of a directory. A bad file never stops the others; a second
/// file with a UUID already seen is reported and skipped.
pub fn load_dir(dir: &Path) -> Loaded {
    let mut out = Loaded {
        profiles: Vec::new(),
        errors: Vec::new(),
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(source) => {
            out.errors.push(ProfileError::Read {
                path: dir.to_path_buf(),
                source,
            });
            return out;
        }
    };
    files.sort();
    for f in files {
        if let Err(e) = secure(&f, 0o022) {
            out.errors.push(e);
            continue;
        }
        match tinynm_config::toml_profile::load_file(&f) {
            Ok(p) => {
                if let Some((_, other)) = out
                    .profiles
                    .iter()
                    .find(|(q, _)| q.connection.uuid == p.connection.uuid)
                {
                    out.errors.push(
                        ProfileError::key(
                            "connection",
                            "uuid",
                            format!(
                                "{} is already used by {}; this file is ignored",
                                p.connection.uuid,
                                other.display()
                            ),
                        )
                        .in_file(&f),
                    );
                    continue;
                }
                out.profiles.push((p, f));
            }
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// Reads the VPN profiles among NetworkManager's keyfiles (`*.nmconnection`) in `dirs`; other
/// connection types are skipped, bad files reported by file, group and key.
pub fn load_keyfiles(dirs: &[PathBuf]) -> Loaded {
    let mut out = Loaded {
        profiles: Vec::new(),
        errors: Vec::new(),
    };
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "nmconnection"))
            .collect();
        files.sort();
        for f in files {
            // NetworkManager's own rule for keyfiles: no permission at all for others.
            if let Err(e) = secure(&f, 0o077) {
                out.errors.push(e);
                continue;
            }
            match tinynm_config::keyfile::load_keyfile(&f) {
                Ok(Some(p)) => {
                    if out
                        .profiles
                        .iter()
                        .any(|(q, _)| q.connection.uuid == p.connection.uuid)
                    {
                        out.errors.push(
                            ProfileError::key(
                                "connection",
                                "uuid",
                                format!(
                                    "{} is used by another keyfile; this one is ignored",
                                    p.connection.uuid
                                ),
                            )
                            .in_file(&f),
                        );
                    } else {
                        out.profiles.push((p, f));
                    }
                }
                Ok(None) => tracing::debug!("{}: not a VPN profile, left alone", f.display()),
                Err(e) => out.errors.push(e),
            }
        }
    }
    out
}

/// Whether a profile file may be trusted, as NetworkManager decides for its keyfiles: a regular
/// file (a symlink is judged by what it points to) owned by the daemon's user (root), with none
/// of the `forbidden` permission bits for group and others.
fn secure(f: &Path, forbidden: u32) -> Result<(), ProfileError> {
    let insecure = |why: String| ProfileError::Insecure {
        path: f.to_path_buf(),
        why,
    };
    let m = std::fs::metadata(f).map_err(|source| ProfileError::Read {
        path: f.to_path_buf(),
        source,
    })?;
    if !m.is_file() {
        return Err(insecure("not a regular file".into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me {
        return Err(insecure(format!(
            "owned by uid {}, not by uid {me} (tinynmd's): chown it",
            m.uid()
        )));
    }
    let mode = m.permissions().mode() & 0o777;
    if mode & forbidden != 0 {
        return Err(insecure(format!(
            "mode {mode:03o} lets others {}: chmod {:03o}",
            if forbidden == 0o022 {
                "change it"
            } else {
                "read or change it"
            },
            mode & !forbidden
        )));
    }
    Ok(())
}

/// A file name for a new profile: its UUID, which is unique.
pub fn file_for(dir: &Path, p: &Profile) -> PathBuf {
    dir.join(format!("{}.toml", p.connection.uuid))
}

/// Writes a profile atomically: a temporary file in the same directory, fsync, rename, fsync
/// of the directory. Mode 0600: profiles hold secrets.
pub fn write(path: &Path, p: &Profile) -> std::io::Result<()> {
    let text = tinynm_config::toml_profile::to_toml_string(p);
    write_atomic(path, text.as_bytes(), 0o600)
}

/// Writes a file atomically: an unpredictable temporary file beside it, created exclusively
/// and never through a symlink (mode `mode` from the start), fsync, rename, fsync of the
/// directory.
pub fn write_atomic(path: &Path, text: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(text)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Writes new files (mode 0600) into `dir` (made 0700 if missing): `name` must be a plain file
/// name. A file already there with the same contents is taken as it is; one with other contents
/// is an error, and so is any other failure, after the files written so far are removed.
/// Returns the files it wrote.
pub fn write_new_files(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<PathBuf>> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mut written = Vec::new();
    let r = (|| {
        if files.is_empty() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        for (name, body) in files {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("'{name}' is not a plain file name"),
                ));
            }
            let path = dir.join(name);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(mut f) => {
                    written.push(path.clone());
                    f.write_all(body)?;
                    f.sync_all()?;
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if std::fs::read(&path).ok().as_deref() != Some(body.as_slice()) {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            format!(
                                "{} already exists with other contents (another profile's?): import under another name",
                                path.display()
                            ),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(written),
        Err(e) => {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_0600_and_reads_back_and_reports_bad_files() {
        let d = tempfile::tempdir().unwrap();
        let p = Profile::new_vpn("a", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "org.x");
        let f = file_for(d.path(), &p);
        write(&f, &p).unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(d.path().join("bad.toml"), "[connection]\nid = 3\n").unwrap();
        let l = load_dir(d.path());
        assert_eq!(l.profiles.len(), 1);
        assert_eq!(l.profiles[0].0, p);
        assert_eq!(l.errors.len(), 1);
        assert_eq!(
            l.errors[0].to_string(),
            format!(
                "{}: [connection] id: expected a string, found an integer",
                d.path().join("bad.toml").display()
            )
        );
        let leftovers: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
