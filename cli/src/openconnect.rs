//! The headless login for Debian's nm-openconnect-service, as nmcli's built-in helper does it:
//! `openconnect --authenticate` turns a username and password into the three secrets the plugin
//! needs (`cookie`, `gateway`, `gwcert`; spec OPENCONNECT.md §3). Unlike nmcli's, it passes the
//! profile's CA (`cacert`) and protocol on, and never answers a certificate question: an
//! untrusted server fails the login.

use std::collections::HashMap;

use tinynm_config::Profile;
use tokio::io::AsyncWriteExt;

/// The service type of OpenConnect profiles.
pub const SERVICE: &str = "org.freedesktop.NetworkManager.openconnect";

/// The server's address as openconnect takes it: `vpn.data gateway`, `https://` added when it
/// has no scheme.
fn url(p: &Profile) -> Result<String, String> {
    let gw = p
        .vpn
        .data
        .get("gateway")
        .filter(|g| !g.is_empty())
        .ok_or("the profile has no vpn.data gateway to log in to")?;
    Ok(if gw.contains("://") {
        gw.clone()
    } else {
        format!("https://{gw}/")
    })
}

/// `NAME='value'` (shell-quoted, as `--authenticate` prints it) → (NAME, value).
fn shell_pair(line: &str) -> Option<(&str, String)> {
    let (name, quoted) = line.split_once('=')?;
    let mut out = String::new();
    let mut rest = quoted;
    // 'a'\''b' → a'b
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('\'') {
            let end = r.find('\'')?;
            out.push_str(&r[..end]);
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix("\\'") {
            out.push('\'');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('\\') {
            // A backslash before anything but a quote stands for itself.
            out.push('\\');
            rest = r;
        } else {
            let end = rest.find(['\'', '\\']).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        }
    }
    Some((name, out))
}

/// Logs `user` in with `password`; the secrets for the profile's `vpn.secrets`.
pub async fn login(
    p: &Profile,
    user: &str,
    password: &str,
) -> Result<HashMap<String, String>, String> {
    let url = url(p)?;
    let mut cmd = tokio::process::Command::new("openconnect");
    cmd.args(["--authenticate", "--non-inter", "--passwd-on-stdin"])
        .arg(format!("--user={user}"));
    match p.vpn.data.get("protocol").map(String::as_str) {
        None | Some("") | Some("anyconnect") => {}
        Some("juniper") => {
            cmd.arg("--juniper");
        }
        Some(other) => {
            cmd.arg(format!("--protocol={other}"));
        }
    }
    if let Some(ca) = p.vpn.data.get("cacert").filter(|c| !c.is_empty()) {
        cmd.arg(format!("--cafile={ca}"));
    }
    cmd.arg(&url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run openconnect (apt-get install -y openconnect): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{password}\n").as_bytes()).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("openconnect: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!(
            "the login to {url} failed (openconnect --authenticate {}): {last}",
            out.status
        ));
    }
    let mut secrets = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((name, value)) = shell_pair(line.trim()) else {
            continue;
        };
        let key = match name {
            "COOKIE" => "cookie",
            "HOST" => "gateway",
            "FINGERPRINT" => "gwcert",
            "RESOLVE" => "resolve",
            _ => continue,
        };
        secrets.insert(key.to_string(), value);
    }
    for k in ["cookie", "gateway", "gwcert"] {
        if !secrets.contains_key(k) {
            return Err(format!(
                "openconnect --authenticate logged in to {url} but printed no {}",
                k.to_uppercase()
            ));
        }
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What openconnect prints is shell-quoted; any value comes back whole.
        #[test]
        fn any_quoted_value_comes_back(v in "\\PC{0,80}") {
            let quoted = format!("'{}'", v.replace('\'', "'\\''"));
            let line = format!("COOKIE={quoted}");
            prop_assert_eq!(shell_pair(&line), Some(("COOKIE", v)));
        }

        /// Any line: a pair or nothing, never a panic.
        #[test]
        fn any_line_is_a_pair_or_nothing(line in "\\PC{0,80}") {
            let _ = shell_pair(&line);
        }
    }

    #[test]
    fn shell_quoted_values_are_unquoted() {
        assert_eq!(
            shell_pair("COOKIE='a=b; c'"),
            Some(("COOKIE", "a=b; c".to_string()))
        );
        assert_eq!(shell_pair("X='it'\\''s'"), Some(("X", "it's".to_string())));
        assert_eq!(
            shell_pair("HOST=plain"),
            Some(("HOST", "plain".to_string()))
        );
        assert_eq!(shell_pair("no equals"), None);
        assert_eq!(shell_pair("X='unclosed"), None);
        assert_eq!(shell_pair("X=a\\b"), Some(("X", "a\\b".to_string())));
    }
}
