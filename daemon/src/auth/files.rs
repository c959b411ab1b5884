//! A profile that belongs to users (`connection.permissions`) may make a plugin, which runs as
//! root, read only files those users can read themselves: NM 1.42 does not check this, so a
//! user could have root's keys used for a connection of their own.

use std::path::Path;

use tinynm_config::Profile;

/// The users a profile belongs to (`user:NAME[:…]` entries); none: a system profile.
fn owners(p: &Profile) -> Vec<&str> {
    p.connection
        .permissions
        .iter()
        .filter_map(|e| e.strip_prefix("user:"))
        .filter_map(|u| u.split(':').next())
        .filter(|u| !u.is_empty())
        .collect()
}

/// Checks every `vpn.data` value that names an existing file or directory against each user
/// the profile belongs to; the error names the key, the file and the user.
pub async fn check_profile_files(p: &Profile) -> Result<(), String> {
    let users = owners(p);
    if users.is_empty() {
        return Ok(());
    }
    for (key, value) in &p.vpn.data {
        let path = Path::new(value);
        if !path.is_absolute() || std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        for user in &users {
            if !can_read(user, path).await? {
                return Err(format!(
                    "vpn.data {key}: '{value}' cannot be read by '{user}', whose profile this is (connection.permissions): its plugin, which runs as root, may not read it for them"
                ));
            }
        }
    }
    Ok(())
}

/// Whether `user` may read `path`, as the kernel decides it (modes, ACLs, every directory on
/// the way): `test -r` run as that user, with their groups.
async fn can_read(user: &str, path: &Path) -> Result<bool, String> {
    let u = nix::unistd::User::from_name(user)
        .map_err(|e| format!("cannot look up the user '{user}': {e}"))?
        .ok_or_else(|| {
            format!("connection.permissions names the user '{user}', who does not exist")
        })?;
    let name = std::ffi::CString::new(user).map_err(|_| format!("bad user name '{user}'"))?;
    let groups = nix::unistd::getgrouplist(&name, u.gid)
        .map_err(|e| format!("cannot list the groups of '{user}': {e}"))?;
    let (uid, gid) = (u.uid, u.gid);
    let mut cmd = tokio::process::Command::new("test");
    cmd.arg("-r")
        .arg(path)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only setgroups, setgid and setuid run, on values computed
    // before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setgroups(&groups)?;
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(uid)?;
            Ok(())
        });
    }
    let status = cmd
        .status()
        .await
        .map_err(|e| format!("cannot check what '{user}' may read: {e}"))?;
    Ok(status.success())
}
