//! `daemon.toml`: tinynmd's own settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// NM's plugin directories, in priority order (spec §2.2).
pub const NM_PLUGIN_DIRS: [&str; 2] = ["/usr/lib/NetworkManager/VPN", "/etc/NetworkManager/VPN"];

/// The log levels `log-level` takes.
pub const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Where the embedded bus listens unless told otherwise: the system bus's own path, which
/// programs that know no other (nm-openvpn-service's helper) find.
pub const EMBEDDED_BUS_PATH: &str = "/run/dbus/system_bus_socket";

/// The system bus's address for tinynm's own programs (plugins, helper, CLI):
/// `DBUS_SYSTEM_BUS_ADDRESS` when set, else the socket at `/run/dbus/system_bus_socket`, which
/// exists in a container's root file system without the `/var/run` link that the D-Bus
/// specification's default path needs (zbus's default).
pub fn system_bus_address() -> String {
    system_bus_address_from(std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok())
}

/// [`system_bus_address`] given the variable's value.
pub fn system_bus_address_from(var: Option<String>) -> String {
    var.filter(|a| !a.is_empty())
        .unwrap_or_else(|| format!("unix:path={EMBEDDED_BUS_PATH}"))
}

/// The daemon's settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DaemonConfig {
    /// `system` (honours `DBUS_SYSTEM_BUS_ADDRESS`), a D-Bus address, or `embedded[:PATH]`: a
    /// bus of tinynmd's own, in its process, listening at PATH ([`EMBEDDED_BUS_PATH`] by
    /// default).
    pub bus: String,
    /// Where TOML profiles live.
    pub profile_dir: PathBuf,
    /// Directories of NetworkManager keyfiles (`*.nmconnection`) whose VPN profiles are read
    /// too; they are never written, and deleted with their profile.
    pub keyfile_dirs: Vec<PathBuf>,
    /// Extra directories of `.name` files, searched after NM's own.
    pub plugin_dirs: Vec<PathBuf>,
    /// Search NM's directories (`/usr/lib/NetworkManager/VPN`, `/etc/NetworkManager/VPN`).
    pub nm_plugin_dirs: bool,
    /// Where tinynmd journals what it put in the kernel, to undo it after a crash.
    pub state_dir: PathBuf,
    /// Where the last DHCP lease of each wired profile on each link is kept, to ask for it
    /// again after a restart or a reboot (NM keeps its in /var/lib/NetworkManager): a
    /// directory that outlives a reboot.
    pub lease_dir: PathBuf,
    /// `off`, `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: String,
    /// Timers.
    pub timeouts: Timeouts,
    /// A non-interactive source of secrets for headless systems: a TOML file of tables named
    /// by profile id or UUID, `key = "value"` each; mode 0600, owned by root.
    pub secrets_file: Option<PathBuf>,
    /// Where the VPNs' DNS goes.
    pub dns: DnsSettings,
    /// Who may do what without polkit: NM action (without its
    /// `org.freedesktop.NetworkManager.` prefix) = list of `user:NAME` / `group:NAME`. Root may
    /// always; nobody else may anything not listed.
    pub authorization: std::collections::BTreeMap<String, Vec<String>>,
    /// The kill switch: what may pass while a VPN that fails closed is up or down.
    pub firewall: FirewallSettings,
    /// Files imported as profiles at each start (a container's mounted configuration).
    pub import: ImportSettings,
}

/// `[import]`: configuration files read at each start, kept in memory as profiles (the files
/// stay the truth: changed, they are read anew at the next start; a profile saved with the
/// same UUID wins).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ImportSettings {
    /// Glob patterns of OpenVPN client files (`.ovpn`), e.g. `"/config/*.ovpn"`; the
    /// environment's `TINYNM_IMPORT_OPENVPN` (patterns separated by `:`) adds to them.
    pub openvpn: Vec<String>,
    /// Imported VPNs come up by themselves (`tinynm-autoconnect`).
    pub autoconnect: bool,
    /// Imported VPNs fail closed (`tinynm-kill-switch`).
    pub kill_switch: bool,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            openvpn: Vec::new(),
            autoconnect: true,
            kill_switch: false,
        }
    }
}

/// `[firewall]`: tinynm's kill switch (nftables table `inet tinynm`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct FirewallSettings {
    /// Fail closed always: from start-up on, only loopback, DHCP, the VPN servers, the
    /// tunnels and `allow` pass, whether a VPN is up or not, as if every VPN had
    /// `kill-switch`.
    pub lockdown: bool,
    /// Prefixes that pass beside the VPN while the switch is on (a LAN, say), both ways:
    /// `"192.168.1.0/24"`, `"fd00::/8"`.
    pub allow: Vec<String>,
}

impl FirewallSettings {
    /// `allow` as prefixes (checked when daemon.toml is read).
    pub fn allowed(&self) -> Vec<ipnetwork::IpNetwork> {
        self.allow
            .iter()
            .filter_map(|a| parse_prefix(a).ok())
            .collect()
    }
}

/// A prefix of `[firewall] allow`: an address with an optional `/LEN`, host bits clear.
pub fn parse_prefix(s: &str) -> Result<ipnetwork::IpNetwork, String> {
    let n: ipnetwork::IpNetwork = s
        .trim()
        .parse()
        .map_err(|e| format!("'{s}' is not an address or prefix ({e})"))?;
    if n.network() != n.ip() {
        return Err(format!(
            "'{s}' has host bits set (the prefix is {}/{})",
            n.network(),
            n.prefix()
        ));
    }
    Ok(n)
}

/// `[dns]`: the backend that puts the VPNs' DNS in force.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DnsSettings {
    /// `none` (tinynmd touches nothing), `file` (it writes `resolv-conf`), `resolved`
    /// (systemd-resolved's per-link DNS over D-Bus) or `auto` (resolved when
    /// `org.freedesktop.resolve1` is on the bus, else file). `auto` by default, as NM manages
    /// DNS by default: a VPN's pushed DNS never leaks to the uplink's servers silently.
    pub backend: String,
    /// The resolv.conf the `file` backend writes (atomically; the original comes back when the
    /// last VPN goes, and after a crash).
    pub resolv_conf: PathBuf,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            backend: "auto".into(),
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }
}

/// NM's timers (spec §3.4), in seconds.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Timeouts {
    /// Waiting for the plugin to claim its bus name after exec.
    pub service_start: f64,
    /// Added to the vpn timeout for the whole activation.
    pub activation_extra: f64,
    /// `vpn.timeout` when the profile says 0.
    pub vpn_default: u32,
    /// Each call to the plugin.
    pub plugin_call: f64,
    /// `GetNameOwner`.
    pub name_owner: f64,
    /// Each secret agent's answer to `GetSecrets` (NM waits 120 s).
    pub agent: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            service_start: 5.0,
            activation_extra: 180.0,
            vpn_default: crate::nm::VPN_TIMEOUT_DEFAULT_SECS,
            plugin_call: 10.0,
            name_owner: 3.0,
            agent: 60.0,
        }
    }
}

impl Timeouts {
    /// A setting as a duration.
    pub fn dur(secs: f64) -> Duration {
        Duration::from_secs_f64(secs.max(0.0))
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            bus: "system".into(),
            profile_dir: "/etc/tinynm/connections".into(),
            keyfile_dirs: vec!["/etc/NetworkManager/system-connections".into()],
            plugin_dirs: Vec::new(),
            nm_plugin_dirs: true,
            state_dir: "/run/tinynm".into(),
            lease_dir: "/var/lib/tinynm/leases".into(),
            log_level: "info".into(),
            timeouts: Timeouts::default(),
            secrets_file: None,
            dns: DnsSettings::default(),
            authorization: Default::default(),
            firewall: FirewallSettings::default(),
            import: ImportSettings::default(),
        }
    }
}

/// A `daemon.toml` that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DaemonConfigError {
    /// Unreadable file.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Bad content.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl DaemonConfig {
    /// Where profiles' certificates and keys from imported files go: `certs/` in the profile
    /// directory.
    pub fn cert_dir(&self) -> PathBuf {
        self.profile_dir.join("certs")
    }

    /// The socket of the embedded bus, when `bus` asks for one.
    pub fn embedded_bus(&self) -> Option<PathBuf> {
        match self.bus.as_str() {
            "embedded" => Some(PathBuf::from(EMBEDDED_BUS_PATH)),
            b => b.strip_prefix("embedded:").map(PathBuf::from),
        }
    }

    /// The address tinynmd and its plugins reach the bus at; `None`: the system bus.
    pub fn bus_address(&self) -> Option<String> {
        if let Some(p) = self.embedded_bus() {
            return Some(format!("unix:path={}", p.display()));
        }
        (self.bus != "system").then(|| self.bus.clone())
    }

    /// Parses `daemon.toml` text.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, DaemonConfigError> {
        let c: DaemonConfig = toml::from_str(text).map_err(|e| DaemonConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        if !LOG_LEVELS.contains(&c.log_level.to_ascii_lowercase().as_str()) {
            return Err(DaemonConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "log-level: '{}' is not one of {}",
                    c.log_level,
                    LOG_LEVELS.join(", ")
                ),
            });
        }
        if let Some(rest) = c.bus.strip_prefix("embedded:")
            && !Path::new(rest).is_absolute()
        {
            return Err(DaemonConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "bus: '{}': the embedded bus's socket must be an absolute path",
                    c.bus
                ),
            });
        }
        if !["none", "file", "resolved", "auto"].contains(&c.dns.backend.as_str()) {
            return Err(DaemonConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "[dns] backend: '{}' is not one of none, file, resolved, auto",
                    c.dns.backend
                ),
            });
        }
        for a in &c.firewall.allow {
            parse_prefix(a).map_err(|why| DaemonConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!("[firewall] allow: {why}"),
            })?;
        }
        let t = &c.timeouts;
        for (k, v) in [
            ("service-start", t.service_start),
            ("activation-extra", t.activation_extra),
            ("plugin-call", t.plugin_call),
            ("name-owner", t.name_owner),
            ("agent", t.agent),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(DaemonConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "[timeouts] {k}: expected a positive number of seconds, found {v}"
                    ),
                });
            }
        }
        Ok(c)
    }

    /// Reads `daemon.toml`.
    pub fn load(path: &Path) -> Result<Self, DaemonConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| DaemonConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// The plugin directories in search order.
    pub fn all_plugin_dirs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = if self.nm_plugin_dirs {
            NM_PLUGIN_DIRS.iter().map(PathBuf::from).collect()
        } else {
            Vec::new()
        };
        v.extend(self.plugin_dirs.iter().cloned());
        v
    }
}

/// The secrets a secrets file holds for a profile (by id or UUID; the UUID's table wins).
/// A file that others may read, or that is not root's, is refused: it holds passwords.
pub fn secrets_for(
    path: &Path,
    id: &str,
    uuid: &str,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 || meta.uid() != 0 {
        return Err(format!(
            "{}: refused: it must be root's and mode 0600 (it is uid {}, mode {:o})",
            path.display(),
            meta.uid(),
            meta.mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let all: BTreeMap<String, BTreeMap<String, String>> = toml::from_str(&text).map_err(|e| {
        format!(
            "{}: expected tables of key = \"value\": {}",
            path.display(),
            e.to_string().trim().replace('\n', " ")
        )
    })?;
    let mut out = all.get(id).cloned().unwrap_or_default();
    out.extend(all.get(uuid).cloned().unwrap_or_default());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_system_bus_is_found_without_var_run() {
        use super::system_bus_address_from as addr;
        assert_eq!(addr(None), "unix:path=/run/dbus/system_bus_socket");
        assert_eq!(
            addr(Some(String::new())),
            "unix:path=/run/dbus/system_bus_socket"
        );
        assert_eq!(addr(Some("unix:path=/x".into())), "unix:path=/x");
    }

    use super::*;

    #[test]
    fn defaults_and_errors() {
        let p = Path::new("daemon.toml");
        let c = DaemonConfig::from_toml_str("", p).unwrap();
        assert_eq!(c, DaemonConfig::default());
        let c = DaemonConfig::from_toml_str("[timeouts]\nservice-start = 1\n", p).unwrap();
        assert_eq!(c.timeouts.service_start, 1.0);
        let e = DaemonConfig::from_toml_str("colour = 1", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("daemon.toml: ") && e.contains("unknown field `colour`"),
            "{e}"
        );
        let e = DaemonConfig::from_toml_str("log-level = \"loud\"", p)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "daemon.toml: log-level: 'loud' is not one of off, error, warn, info, debug, trace"
        );
        let e = DaemonConfig::from_toml_str("[timeouts]\nplugin-call = -1", p)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "daemon.toml: [timeouts] plugin-call: expected a positive number of seconds, found -1"
        );
    }

    /// The keys of a TOML table, `section.key`, recursively (the free-form `[authorization]`
    /// only as a section).
    fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let name = format!("{prefix}{k}");
                out.push(name.clone());
                if k != "authorization" {
                    keys(v, &format!("{name}."), out);
                }
            }
        }
    }

    #[test]
    fn the_manual_documents_every_key_the_code_reads() {
        let man = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/tinynm-daemon.toml.5"),
        )
        .unwrap();
        // Every key the code reads: the full settings (the optional ones set) as TOML.
        let mut full = DaemonConfig {
            secrets_file: Some("/s".into()),
            ..DaemonConfig::default()
        };
        full.authorization
            .insert("network-control".into(), vec!["group:netdev".into()]);
        let code: toml::Value = toml::Value::try_from(&full).unwrap();
        let mut want = Vec::new();
        keys(&code, "", &mut want);
        // The manual's example holds them all, and the code takes it as it is.
        let example = man
            .split(".EX\n")
            .nth(1)
            .and_then(|e| e.split("\n.EE").next())
            .expect("an .EX … .EE example");
        DaemonConfig::from_toml_str(example, Path::new("example")).unwrap();
        let mut have = Vec::new();
        keys(&toml::from_str(example).unwrap(), "", &mut have);
        want.sort();
        have.sort();
        assert_eq!(
            have, want,
            "the manual's example and the code's keys differ"
        );
        // And each key has its own paragraph: `\fBkey\fR = …`, under its section's heading.
        for k in &want {
            let (section, key) = match k.rsplit_once('.') {
                Some((s, k)) => (Some(s), k),
                None => (None, k.as_str()),
            };
            if section.is_none() && full_is_table(&code, key) {
                assert!(man.contains(&format!(".SH [{key}]")), "no section [{key}]");
                continue;
            }
            assert!(
                man.contains(&format!("\\fB{key}\\fR = ")),
                "{k} is not documented"
            );
        }
    }

    fn full_is_table(v: &toml::Value, key: &str) -> bool {
        v.get(key).is_some_and(toml::Value::is_table)
    }

    #[test]
    fn the_shipped_daemon_tomls_parse() {
        for f in [
            "../packaging/daemon.toml",
            "../packaging/container/daemon.toml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
            DaemonConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn firewall_prefixes_are_checked() {
        let p = Path::new("daemon.toml");
        let c = DaemonConfig::from_toml_str(
            "[firewall]\nlockdown = true\nallow = [\"192.168.1.0/24\", \"fd00::/8\", \"10.0.0.9\"]\n",
            p,
        )
        .unwrap();
        assert!(c.firewall.lockdown);
        assert_eq!(c.firewall.allowed().len(), 3);
        let err = |allow: &str| {
            DaemonConfig::from_toml_str(&format!("[firewall]\nallow = [\"{allow}\"]\n"), p)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("10.0.0.1/8"),
            "daemon.toml: [firewall] allow: '10.0.0.1/8' has host bits set (the prefix is 10.0.0.0/8)"
        );
        assert!(
            err("10.0.0.0/33").starts_with(
                "daemon.toml: [firewall] allow: '10.0.0.0/33' is not an address or prefix"
            ),
            "{}",
            err("10.0.0.0/33")
        );
    }
}
