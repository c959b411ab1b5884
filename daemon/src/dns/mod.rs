//! The VPNs' DNS, put in force by one backend chosen in daemon.toml's `[dns] backend`: `none`
//! (nothing is touched), `file` (a resolv.conf, `file.rs`), `resolved` (systemd-resolved over
//! D-Bus, `resolved.rs`) or `auto` (resolved when `org.freedesktop.resolve1` is on the bus when
//! there is something to put in force, else the file).
//!
//! Servers are ordered as NM orders them: by `dns-priority`, lower first; a negative priority is
//! exclusive (only the configurations with the lowest value are used). The original file's
//! servers count as the base connection's, at NM's default priority for other devices (100).

mod file;
mod resolv;
mod resolved;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tinynm_config::daemon_config::DnsSettings;

/// One connection's DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    /// The interface it belongs to.
    pub iface: String,
    /// Its ifindex.
    pub ifindex: u32,
    /// The connection has the default route (resolved's default-route flag).
    pub default_route: bool,
    /// Name servers, in the connection's order.
    pub servers: Vec<IpAddr>,
    /// Search domains.
    pub domains: Vec<String>,
    /// `dns-priority`.
    pub priority: i32,
    /// A VPN's.
    pub vpn: bool,
}

/// NM's default priority of a VPN's DNS.
pub const VPN_PRIORITY: i32 = 50;
/// NM's default priority of other connections' DNS.
const BASE_PRIORITY: i32 = 100;

/// The entries in force, in order: by priority; with a negative one, only the lowest.
pub fn in_force(entries: &[DnsEntry]) -> Vec<DnsEntry> {
    let mut v: Vec<DnsEntry> = entries.to_vec();
    v.sort_by_key(|e| e.priority);
    if let Some(min) = v.first().map(|e| e.priority).filter(|p| *p < 0) {
        v.retain(|e| e.priority == min);
    }
    v
}

/// Why the DNS could not be put in force.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A file of the `file` backend.
    #[error("cannot {what} {}: {source}", file.display())]
    File {
        /// What was being done.
        what: &'static str,
        /// To which file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kept original of resolv.conf cannot be read back.
    #[error("{}: damaged backup of resolv.conf: {why}", file.display())]
    Backup {
        /// The backup.
        file: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A call to systemd-resolved.
    #[error("systemd-resolved {call} for {iface}: {source}")]
    Resolved {
        /// The method.
        call: &'static str,
        /// The link.
        iface: String,
        /// The cause.
        #[source]
        source: zbus::Error,
    },
}

/// The backend in use.
enum Backend {
    None,
    File(file::FileBackend),
    Resolved,
    /// `auto`: the file, or resolved (`true`) as decided at the last change.
    Auto(file::FileBackend, bool),
}

/// The DNS backend and what it holds.
pub struct Dns {
    backend: Backend,
}

impl Dns {
    /// The backend of `settings`, keeping a backup in `state_dir`.
    pub fn new(settings: DnsSettings, state_dir: &Path) -> Dns {
        let file = || file::FileBackend::new(settings.resolv_conf.clone(), state_dir);
        let backend = match settings.backend.as_str() {
            "file" => Backend::File(file()),
            "resolved" => Backend::Resolved,
            "auto" => Backend::Auto(file(), false),
            _ => Backend::None,
        };
        Dns { backend }
    }

    /// `default` (file), `systemd-resolved` or `none`, as NM's DnsManager says.
    pub fn mode(&self) -> &'static str {
        match self.backend {
            Backend::File(_) | Backend::Auto(_, false) => "default",
            Backend::Resolved | Backend::Auto(_, true) => "systemd-resolved",
            Backend::None => "none",
        }
    }

    /// How resolv.conf is managed: `file` or `unmanaged`.
    pub fn rc_manager(&self) -> &'static str {
        if self.mode() == "default" {
            "file"
        } else {
            "unmanaged"
        }
    }

    /// For `auto`: decides (resolved when `org.freedesktop.resolve1` is on the bus).
    pub async fn detect(&mut self, conn: &zbus::Connection) {
        let Backend::Auto(_, resolved) = &mut self.backend else {
            return;
        };
        let present = match zbus::fdo::DBusProxy::new(conn).await {
            Ok(d) => match "org.freedesktop.resolve1".try_into() {
                Ok(n) => d.name_has_owner(n).await.unwrap_or(false),
                Err(_) => false,
            },
            Err(_) => false,
        };
        *resolved = present;
    }

    /// After a crash: puts back the resolv.conf an earlier tinynmd kept.
    pub fn recover(&self) {
        if let Backend::File(f) | Backend::Auto(f, _) = &self.backend {
            f.recover();
        }
    }

    /// Puts `entries` in force (none: what was there before comes back); `before` is what was
    /// in force until now.
    pub async fn apply(
        &mut self,
        conn: &zbus::Connection,
        entries: &[DnsEntry],
        before: &[DnsEntry],
    ) -> Result<(), DnsError> {
        match &mut self.backend {
            Backend::None => Ok(()),
            Backend::File(f) | Backend::Auto(f, false) => f.apply(entries),
            Backend::Resolved | Backend::Auto(_, true) => {
                resolved::apply(conn, entries, before).await
            }
        }
    }
}
