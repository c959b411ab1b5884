//! Profiles on disk: TOML files in one directory, written atomically, mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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

/// Writes a file atomically: a temporary file beside it (mode `mode`), fsync, rename, fsync of
/// the directory.
pub fn write_atomic(path: &Path, text: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
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
