//! Who may do what. Root may always. Others: polkit decides when `org.freedesktop.PolicyKit1`
//! is on the bus (with NM's action ids); without it, the rules of daemon.toml's
//! `[authorization]` (`user:NAME`, `group:NAME`, `uid:N`, `gid:N` per action), and nothing that
//! is not listed.

mod files;
mod polkit;
mod rules;

pub use files::check_profile_files;

use std::collections::BTreeMap;

/// NM's action ids are this prefix and a name.
pub const PREFIX: &str = "org.freedesktop.NetworkManager.";

/// NM 1.42's actions (without the prefix).
pub const ACTIONS: [&str; 17] = [
    "checkpoint-rollback",
    "enable-disable-connectivity-check",
    "enable-disable-network",
    "enable-disable-statistics",
    "enable-disable-wifi",
    "enable-disable-wimax",
    "enable-disable-wwan",
    "network-control",
    "reload",
    "settings.modify.global-dns",
    "settings.modify.hostname",
    "settings.modify.own",
    "settings.modify.system",
    "sleep-wake",
    "wifi.scan",
    "wifi.share.open",
    "wifi.share.protected",
];

/// An answer, as GetPermissions spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Yes,
    /// Refused.
    No,
    /// Allowed after authentication (polkit's challenge).
    Auth,
}

impl Decision {
    /// `yes`, `no` or `auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Yes => "yes",
            Decision::No => "no",
            Decision::Auth => "auth",
        }
    }
}

/// The message of a refusal, naming the action (NM's words, with the action's id).
pub fn denied(action: &str) -> String {
    let what = match action {
        "network-control" => "Not authorized to control networking.",
        "reload" => "Not authorized to reload the settings.",
        a if a.starts_with("settings.modify") => "Insufficient privileges.",
        _ => "Not authorized.",
    };
    format!("{what} (needs {PREFIX}{action})")
}

/// The authority.
pub struct Authority {
    /// daemon.toml's rules; replaced when daemon.toml is reloaded (SIGHUP).
    rules: std::sync::RwLock<BTreeMap<String, Vec<String>>>,
}

/// Who calls.
pub struct Caller<'a> {
    /// The bus (for polkit).
    pub conn: &'a zbus::Connection,
    /// Their uid.
    pub uid: u32,
    /// Their unique bus name.
    pub sender: Option<&'a str>,
}

impl<'a> Caller<'a> {
    /// The caller of a method, from its header.
    pub async fn of(
        conn: &'a zbus::Connection,
        hdr: &'a zbus::message::Header<'_>,
    ) -> zbus::Result<Caller<'a>> {
        Ok(Caller {
            conn,
            uid: caller_uid(conn, hdr).await?,
            sender: hdr.sender().map(|s| s.as_str()),
        })
    }
}

impl Authority {
    /// Puts a reloaded daemon.toml's rules in force.
    pub fn set_rules(&self, rules: BTreeMap<String, Vec<String>>) {
        *self.rules.write().expect("rules lock") = rules;
    }

    /// An authority with these daemon.toml rules.
    pub fn new(rules: BTreeMap<String, Vec<String>>) -> Self {
        Authority {
            rules: std::sync::RwLock::new(rules),
        }
    }

    /// May the caller do `action`?
    pub async fn decide(&self, c: &Caller<'_>, action: &str) -> Decision {
        if c.uid == 0 {
            return Decision::Yes;
        }
        if let Some(d) = polkit::decide(c.conn, c.sender, action).await {
            return d;
        }
        let allowed = rules::allow(&self.rules.read().expect("rules lock"), c.uid, action);
        if allowed { Decision::Yes } else { Decision::No }
    }

    /// `Ok` when allowed, else the refusal's message.
    pub async fn require(&self, c: &Caller<'_>, action: &str) -> Result<(), String> {
        match self.decide(c, action).await {
            Decision::Yes => Ok(()),
            Decision::No | Decision::Auth => {
                tracing::info!("uid {} refused {PREFIX}{action}", c.uid);
                Err(denied(action))
            }
        }
    }
}

/// The caller's uid, from the bus.
pub async fn caller_uid(
    conn: &zbus::Connection,
    hdr: &zbus::message::Header<'_>,
) -> Result<u32, zbus::Error> {
    let Some(sender) = hdr.sender() else {
        // A peer-to-peer connection has no bus to ask: it is our own process.
        return Ok(nix::unistd::getuid().as_raw());
    };
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    Ok(dbus.get_connection_unix_user(sender.clone().into()).await?)
}

/// The login name of `uid`.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// Whether `uid` may see and use a profile: root always; anyone when the profile's
/// `connection.permissions` is empty; else the users it lists (`user:NAME`).
pub fn visible(p: &tinynm_config::Profile, uid: u32) -> bool {
    uid == 0
        || p.connection.permissions.is_empty()
        || p.connection.permissions.iter().any(|e| names_user(e, uid))
}

/// Whether a `connection.permissions` entry (`user:NAME[:…]`) names the user of `uid`.
pub fn names_user(entry: &str, uid: u32) -> bool {
    let Some(name) = user_name(uid) else {
        return false;
    };
    entry
        .strip_prefix("user:")
        .is_some_and(|u| u.split(':').next() == Some(name.as_str()))
}
