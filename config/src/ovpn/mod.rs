//! `.ovpn` client configuration files to OpenVPN profiles, as nmcli 1.42 imports them with
//! network-manager-openvpn 1.10: the same `vpn.data` keys and values for every directive it
//! imports, the same refusals. Beyond nmcli:
//! - `dhcp-option DNS`/`DOMAIN` go into the profile's DNS servers and search domains (nmcli drops
//!   them, so the VPN's DNS is lost);
//! - `route … vpn_gateway` is a route through the VPN (nmcli refuses it);
//! - every directive nmcli drops without a word is named in a warning with its line.
//!
//! Inline material (`<ca>…</ca>` and the like) becomes files to write (mode 0600) where the
//! caller keeps profile files.

mod directives;
mod ignored;
mod words;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::profile::Profile;

pub use words::words;

/// The OpenVPN plugins' service name.
pub const OPENVPN: &str = "org.freedesktop.NetworkManager.openvpn";

/// What an import gives.
#[derive(Debug)]
pub struct Imported {
    /// The profile.
    pub profile: Profile,
    /// (path, contents) of each inline block the profile refers to.
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// The directives that were left out, each with its line and why.
    pub warnings: Vec<OvpnWarning>,
}

/// Why a file could not be imported: its line and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct OvpnError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A directive left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvpnWarning {
    /// 1-based line number.
    pub line: usize,
    /// The directive.
    pub directive: String,
    /// Why it is left out.
    pub why: String,
}

impl std::fmt::Display for OvpnWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: '{}' ignored: {}",
            self.line, self.directive, self.why
        )
    }
}

fn err(line: usize, message: impl Into<String>) -> OvpnError {
    OvpnError {
        line,
        message: message.into(),
    }
}

/// Where an import reads from and writes to.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The profile's name (connection.id).
    pub name: &'a str,
    /// Its UUID.
    pub uuid: &'a str,
    /// Where inline blocks go: `<cert_dir>/<name>-<tag>.pem`.
    pub cert_dir: &'a Path,
    /// The `.ovpn` file's directory: relative paths are taken from there (as nmcli), and an
    /// encrypted key or a proxy's credentials read from there. `None`: nothing is read.
    pub base_dir: Option<&'a Path>,
}

/// Imports `text` as a profile called `name`; inline blocks go to `cert_dir/<name>-<tag>.pem`;
/// no file is read (relative paths stay as they are).
pub fn import(text: &str, name: &str, uuid: &str, cert_dir: &Path) -> Result<Imported, OvpnError> {
    import_from(
        text,
        Source {
            name,
            uuid,
            cert_dir,
            base_dir: None,
        },
    )
}

/// The state of one import.
struct Import<'a> {
    src: Source<'a>,
    p: Profile,
    d: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    files: Vec<(PathBuf, Vec<u8>)>,
    warnings: Vec<OvpnWarning>,
    have_client: bool,
    have_remote: bool,
    have_pass: bool,
    have_sk: bool,
    have_ca: bool,
    have_cert: bool,
    have_key: bool,
    have_pkcs12: bool,
    ta_direction: Option<String>,
    secret_direction: Option<String>,
    allow_ta_direction: bool,
    allow_secret_direction: bool,
    /// The file's last line: where an error about the whole file points.
    lines: usize,
}

/// Imports `text`: see [`Source`].
pub fn import_from(text: &str, src: Source<'_>) -> Result<Imported, OvpnError> {
    let mut im = Import {
        src,
        p: Profile::new_vpn(src.name, src.uuid, OPENVPN),
        d: BTreeMap::new(),
        secrets: BTreeMap::new(),
        files: Vec::new(),
        warnings: Vec::new(),
        have_client: false,
        have_remote: false,
        have_pass: false,
        have_sk: false,
        have_ca: false,
        have_cert: false,
        have_key: false,
        have_pkcs12: false,
        ta_direction: None,
        secret_direction: None,
        allow_ta_direction: false,
        allow_secret_direction: false,
        lines: text.lines().count().max(1),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    while let Some((n, raw)) = lines.next() {
        let w = words(raw).map_err(|e| err(n, e))?;
        let Some(first) = w.first() else {
            continue;
        };
        if let Some(tag) = first.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            let tag = tag.to_string();
            let close = format!("</{tag}>");
            let mut body = String::new();
            let mut closed = false;
            for (_, b) in lines.by_ref() {
                let b = b.trim_start();
                if b.starts_with(&close) {
                    closed = true;
                    break;
                }
                body.push_str(b.strip_suffix('\r').unwrap_or(b));
                body.push('\n');
            }
            if !closed {
                return Err(err(n, format!("unterminated blob element <{tag}>")));
            }
            im.blob(n, &tag, body)?;
            continue;
        }
        let dir = first.strip_prefix("--").unwrap_or(first).to_string();
        let args: Vec<&str> = w[1..].iter().map(String::as_str).collect();
        im.directive(n, &dir, &args)?;
    }
    im.finish()
}

/// NM's `args_params_parse_int64`.
fn int(n: usize, dir: &str, i: usize, v: &str, min: i64, max: i64) -> Result<i64, OvpnError> {
    match v.parse::<i64>() {
        Ok(x) if (min..=max).contains(&x) => Ok(x),
        _ => Err(err(
            n,
            format!("invalid {i}th argument to '{dir}': '{v}' is not a number from {min} to {max}"),
        )),
    }
}

fn nargs(n: usize, dir: &str, args: &[&str], min: usize, max: usize) -> Result<(), OvpnError> {
    if (min..=max).contains(&args.len()) {
        return Ok(());
    }
    let want = if min == max {
        format!("{min}")
    } else {
        format!("{min} to {max}")
    };
    Err(err(
        n,
        format!("'{dir}' expects {want} arguments, not {}", args.len()),
    ))
}

fn key_direction(n: usize, dir: &str, v: &str) -> Result<String, OvpnError> {
    match v {
        "0" | "1" => Ok(v.to_string()),
        _ => Err(err(
            n,
            format!("invalid key-direction argument to '{dir}': '{v}' (0 or 1)"),
        )),
    }
}

fn netmask_prefix(n: usize, m: &str) -> Result<u8, OvpnError> {
    let mask: Ipv4Addr = m
        .parse()
        .map_err(|_| err(n, format!("route: '{m}' is not a netmask")))?;
    let bits = u32::from(mask);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err(err(n, format!("route: '{m}' is not a netmask")));
    }
    Ok(bits.leading_ones() as u8)
}

/// NM's protocols (`NMOVPN_PROTCOL_TYPES`).
const PROTOCOLS: &[&str] = &crate::endpoints::OPENVPN_PROTOS;

impl Import<'_> {
    fn finish(mut self) -> Result<Imported, OvpnError> {
        if self.allow_secret_direction
            && let Some(d) = self.secret_direction.take()
        {
            self.set("static-key-direction", d);
        }
        if self.allow_ta_direction
            && let Some(d) = self.ta_direction.take()
        {
            self.set("ta-dir", d);
        }
        let whole = |message: &str| err(self.lines, message);
        if !self.have_client && !self.have_sk {
            return Err(whole(
                "not an OpenVPN client configuration (no client, tls-client or secret)",
            ));
        }
        if !self.have_remote {
            return Err(whole("not a valid OpenVPN configuration (no remote)"));
        }
        if self.have_client && self.have_pkcs12 {
            if self.have_cert || self.have_key {
                return Err(whole("--pkcs12 can not be used with --cert or --key"));
            }
        } else if self.have_client {
            if !self.have_ca {
                return Err(whole("not a valid OpenVPN configuration (missing --ca)"));
            }
            if self.have_cert != self.have_key {
                return Err(whole(
                    "if you use one of --cert or --key, you must use them both",
                ));
            }
        }
        let kind = if self.have_pass {
            if self.have_cert || self.have_pkcs12 {
                "password-tls"
            } else if self.have_ca {
                "password"
            } else {
                "tls"
            }
        } else if self.have_cert || self.have_pkcs12 {
            "tls"
        } else if self.have_sk {
            "static-key"
        } else {
            "tls"
        };
        self.set("connection-type", kind);
        if self.have_pass {
            // Agent-owned: asked for (or stored by the agent) at connect time.
            self.set("password-flags", "1");
        }
        if (self.have_key || self.have_pkcs12) && self.key_encrypted() {
            self.set("cert-pass-flags", "1");
        }
        // Inline blocks a later directive replaced are not written.
        let used: Vec<String> = self.d.values().cloned().collect();
        self.files
            .retain(|(p, _)| used.contains(&p.display().to_string()));
        self.p.vpn.data = self.d;
        self.p.vpn.secrets = self.secrets;
        Ok(Imported {
            profile: self.p,
            files: self.files,
            warnings: self.warnings,
        })
    }

    /// Whether the private key is encrypted (then its password is an agent-owned secret).
    fn key_encrypted(&self) -> bool {
        let Some(key) = self.d.get("key") else {
            return false;
        };
        let body = match self
            .files
            .iter()
            .find(|(p, _)| p.display().to_string() == *key)
        {
            Some((_, b)) => b.clone(),
            None if self.src.base_dir.is_some() => std::fs::read(key).unwrap_or_default(),
            None => return false,
        };
        let text = String::from_utf8_lossy(&body);
        text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || text.contains("Proc-Type: 4,ENCRYPTED")
    }
}

#[cfg(test)]
mod tests;
