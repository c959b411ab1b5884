//! Who may do what. Root may always. Others: polkit decides when `org.freedesktop.PolicyKit1`
//! is on the bus (with NM's action ids); without it, the rules of daemon.toml's
//! `[authorization]` (`user:NAME`, `group:NAME`, `uid:N`, `gid:N` per action), and nothing that
//! is not listed.

use std::collections::{BTreeMap, HashMap};

use zbus::OwnedVariant;

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
    rules: BTreeMap<String, Vec<String>>,
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
            uid: crate::bus::caller_uid(conn, hdr).await?,
            sender: hdr.sender().map(|s| s.as_str()),
        })
    }
}

impl Authority {
    /// An authority with these daemon.toml rules.
    pub fn new(rules: BTreeMap<String, Vec<String>>) -> Self {
        Authority { rules }
    }

    /// May the caller do `action`?
    pub async fn decide(&self, c: &Caller<'_>, action: &str) -> Decision {
        if c.uid == 0 {
            return Decision::Yes;
        }
        if let Some(d) = self.polkit(c.conn, c.sender, action).await {
            return d;
        }
        if self.rules_allow(c.uid, action) {
            Decision::Yes
        } else {
            Decision::No
        }
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

    fn rules_allow(&self, uid: u32, action: &str) -> bool {
        let Some(who) = self.rules.get(action) else {
            return false;
        };
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten();
        let gids: Vec<u32> = match &user {
            Some(u) => {
                let name = std::ffi::CString::new(u.name.clone()).unwrap_or_default();
                nix::unistd::getgrouplist(&name, u.gid)
                    .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                    .unwrap_or_else(|_| vec![u.gid.as_raw()])
            }
            None => Vec::new(),
        };
        who.iter().any(|w| match w.split_once(':') {
            Some(("user", n)) => user.as_ref().is_some_and(|u| u.name == n),
            Some(("uid", n)) => n.parse() == Ok(uid),
            Some(("group", n)) => nix::unistd::Group::from_name(n)
                .ok()
                .flatten()
                .is_some_and(|g| gids.contains(&g.gid.as_raw())),
            Some(("gid", n)) => n.parse().is_ok_and(|g: u32| gids.contains(&g)),
            _ => false,
        })
    }

    /// polkit's answer, when polkit is on the bus.
    async fn polkit(
        &self,
        conn: &zbus::Connection,
        sender: Option<&str>,
        action: &str,
    ) -> Option<Decision> {
        let sender = sender?;
        let dbus = zbus::fdo::DBusProxy::new(conn).await.ok()?;
        let name = "org.freedesktop.PolicyKit1".try_into().ok()?;
        if !dbus.name_has_owner(name).await.unwrap_or(false) {
            return None;
        }
        let subject: (&str, HashMap<&str, OwnedVariant>) = (
            "system-bus-name",
            HashMap::from([("name", zbus::Variant::from(sender).try_into_owned().ok()?)]),
        );
        let details: HashMap<&str, &str> = HashMap::new();
        let r = conn
            .call_method(
                Some("org.freedesktop.PolicyKit1"),
                "/org/freedesktop/PolicyKit1/Authority",
                Some("org.freedesktop.PolicyKit1.Authority"),
                "CheckAuthorization",
                &(subject, format!("{PREFIX}{action}"), details, 0u32, ""),
            )
            .await;
        match r {
            Ok(m) => {
                let (ok, challenge, _): (bool, bool, HashMap<String, String>) =
                    m.body().deserialize().ok()?;
                Some(match (ok, challenge) {
                    (true, _) => Decision::Yes,
                    (false, true) => Decision::Auth,
                    (false, false) => Decision::No,
                })
            }
            Err(e) => {
                tracing::warn!("polkit could not decide {PREFIX}{action}: {e}");
                Some(Decision::No)
            }
        }
    }
}
