//! Connection profiles (VPNs, and the wired base connections they sit on): typed sections and
//! their validation.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::ProfileError;

/// `connection.type` of a VPN profile.
pub const VPN: &str = "vpn";
/// `connection.type` of a wired profile (keyfiles and nmcli also say `ethernet`).
pub const ETHERNET: &str = "802-3-ethernet";

/// A connection profile: a VPN, or a wired base connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `[connection]`
    pub connection: ConnectionSection,
    /// `[vpn]` (empty for a wired profile)
    pub vpn: VpnSection,
    /// `[ethernet]` (`802-3-ethernet`): present exactly for wired profiles.
    pub ethernet: Option<EthernetSection>,
    /// `[ipv4]`
    pub ipv4: IpSection,
    /// `[ipv6]`
    pub ipv6: IpSection,
    /// Properties tinynm does not use (`connection.zone`, `proxy.method`…), kept as NM's
    /// clients gave them and given back, so that nothing set is lost: `setting.property` → the
    /// D-Bus variant (signature and value), hex-encoded.
    pub extra: BTreeMap<String, String>,
}

/// The `connection` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSection {
    /// Human name, unique among profiles.
    pub id: String,
    /// RFC 4122 text.
    pub uuid: String,
    /// `vpn` or `802-3-ethernet`.
    pub kind: String,
    /// Activate on start-up (and, for a wired profile, whenever its link can take it).
    pub autoconnect: bool,
    /// Among profiles that could autoconnect on one device, the highest goes first (−999 to
    /// 999, default 0).
    pub autoconnect_priority: i32,
    /// How many failed autoconnects in a row before giving up (−1: the default, 4; 0: for
    /// ever).
    pub autoconnect_retries: i32,
    /// The link a wired profile is for (`connection.interface-name`); none: any wired link
    /// (matched by `ethernet.mac-address` when that is set).
    pub interface_name: Option<String>,
    /// UUIDs of the VPN profiles activated with this one (NM's `connection.secondaries`).
    pub secondaries: Vec<String>,
    /// `user:NAME:` entries; empty means everyone.
    pub permissions: Vec<String>,
    /// Last activation, seconds since the epoch (0 = never).
    pub timestamp: u64,
}

/// The `vpn` setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VpnSection {
    /// D-Bus service of the plugin, e.g. `org.freedesktop.NetworkManager.openvpn`.
    pub service_type: String,
    /// User name handed to the plugin.
    pub user_name: Option<String>,
    /// Plugin-specific data (`*-flags` keys hold secret flags).
    pub data: BTreeMap<String, String>,
    /// Plugin secrets.
    pub secrets: BTreeMap<String, String>,
    /// Survive base-device changes when the plugin can.
    pub persistent: bool,
    /// Activation timeout in seconds, 0 = default (60).
    pub timeout: u32,
}

/// `vpn.data` keys starting with this are tinynm's own options, never handed to the plugin
/// (NM's plugins refuse keys they do not know).
pub const TINYNM_PREFIX: &str = "tinynm-";

/// `vpn.data tinynm-autoconnect=yes`: the VPN comes up by itself once there is a primary
/// connection (and again whenever there is one after it went down without the user asking).
pub const TINYNM_AUTOCONNECT: &str = "tinynm-autoconnect";

/// `vpn.data tinynm-kill-switch=yes`: the VPN fails closed. From its activation until the user
/// takes it down, nothing but loopback, the tunnel, the VPN server, DHCP and `[firewall]
/// allow` passes, also while it is down without the user asking (`[vpn] kill-switch = true`
/// in a TOML profile).
pub const TINYNM_KILL_SWITCH: &str = "tinynm-kill-switch";

/// The tinynm options `vpn.data` may hold, each `yes` or `no`.
pub const TINYNM_OPTIONS: &[&str] = &[TINYNM_AUTOCONNECT, TINYNM_KILL_SWITCH];

impl VpnSection {
    /// Whether tinynm's option `key` (one of [`TINYNM_OPTIONS`]) is `yes`.
    pub fn option(&self, key: &str) -> bool {
        self.data.get(key).is_some_and(|v| v == "yes")
    }

    /// `data` without tinynm's own options: what the plugin is given.
    pub fn plugin_data(&self) -> BTreeMap<String, String> {
        self.data
            .iter()
            .filter(|(k, _)| !k.starts_with(TINYNM_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The `802-3-ethernet` setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EthernetSection {
    /// The link's permanent address this profile is for, `AA:BB:CC:DD:EE:FF`.
    pub mac_address: Option<String>,
    /// MTU to set (0: leave the link's).
    pub mtu: u32,
}

/// `ipv4.method` / `ipv6.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpMethod {
    /// Accept the plugin's config for this family (a wired link: DHCPv4, or SLAAC for IPv6).
    #[default]
    Auto,
    /// Ignore the plugin's config for this family (`disabled`, `ignore`, …).
    Other(&'static str),
}

impl IpMethod {
    /// The methods NM accepts for a VPN profile.
    pub const NAMES: &'static [&'static str] = &[
        "auto",
        "disabled",
        "ignore",
        "manual",
        "link-local",
        "shared",
    ];

    /// Parses NM's method name.
    pub fn parse(s: &str) -> Option<IpMethod> {
        if s == "auto" {
            return Some(IpMethod::Auto);
        }
        Self::NAMES
            .iter()
            .find(|n| **n == s)
            .map(|n| IpMethod::Other(n))
    }

    /// NM's name for the method.
    pub fn as_str(self) -> &'static str {
        match self {
            IpMethod::Auto => "auto",
            IpMethod::Other(s) => s,
        }
    }

    /// Whether this is the method named `name`.
    pub fn is(self, name: &str) -> bool {
        self.as_str() == name
    }
}

/// A static route of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// Destination network.
    pub dest: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Next hop, if any.
    pub next_hop: Option<IpAddr>,
    /// Metric, if set (otherwise the VPN metric).
    pub metric: Option<u32>,
}

/// `ipv4` or `ipv6`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpSection {
    /// What to do with the plugin's config of this family; for a wired link, how it is
    /// configured.
    pub method: IpMethod,
    /// Static addresses (a wired profile's `manual` method, or added to DHCP's).
    pub addresses: Vec<(IpAddr, u8)>,
    /// The default gateway of a wired profile's static addresses.
    pub gateway: Option<IpAddr>,
    /// The connection may come up without this family (NM's default: yes).
    pub may_fail: bool,
    /// No default route through the VPN.
    pub never_default: bool,
    /// −1 = default (50 for VPNs).
    pub route_metric: i64,
    /// Static routes put on the VPN interface.
    pub routes: Vec<StaticRoute>,
    /// Static name servers.
    pub dns: Vec<IpAddr>,
    /// DNS search domains.
    pub dns_search: Vec<String>,
    /// 0 = default (50 for VPNs); lower wins, negative is exclusive.
    pub dns_priority: i32,
    /// Drop the plugin's routes.
    pub ignore_auto_routes: bool,
    /// Drop the plugin's DNS servers and domains.
    pub ignore_auto_dns: bool,
    /// The routing table of the VPN's routes (0: main, as NM's `route-table`).
    pub route_table: u32,
    /// Policy routing rules added while the VPN is up (NM's `routing-rules`).
    pub routing_rules: Vec<RoutingRule>,
    /// (IPv6, tinynm's own) While the VPN takes the IPv4 default route and brings no IPv6,
    /// make IPv6 unreachable, so that nothing goes around the tunnel.
    pub block_leaks: bool,
}

impl IpSection {
    /// A section with NM's defaults.
    pub fn new() -> Self {
        IpSection {
            route_metric: -1,
            may_fail: true,
            ..Default::default()
        }
    }
}

/// A policy routing rule, in NM's string form: `priority N [from ADDR/LEN] [to ADDR/LEN]
/// table T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    /// Its priority (required, as in NM).
    pub priority: u32,
    /// Source prefix.
    pub from: Option<(IpAddr, u8)>,
    /// Destination prefix.
    pub to: Option<(IpAddr, u8)>,
    /// The table it looks up.
    pub table: u32,
}

impl RoutingRule {
    /// Parses NM's string form; the error names the word that is wrong.
    pub fn parse(s: &str) -> Result<RoutingRule, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let (mut priority, mut from, mut to, mut table) = (None, None, None, None);
        let prefix = |w: &str| parse_prefix(w).ok_or_else(|| format!("'{w}' is not ADDRESS/LEN"));
        let mut i = 0;
        while i < words.len() {
            let v = words
                .get(i + 1)
                .ok_or_else(|| format!("'{}' needs a value", words[i]))?;
            match words[i] {
                "priority" => {
                    priority = Some(
                        v.parse::<u32>()
                            .map_err(|_| format!("priority '{v}' is not a number"))?,
                    )
                }
                "from" => from = Some(prefix(v)?),
                "to" => to = Some(prefix(v)?),
                "table" => {
                    table = Some(
                        v.parse::<u32>()
                            .map_err(|_| format!("table '{v}' is not a number"))?,
                    )
                }
                other => {
                    return Err(format!(
                        "'{other}' is not supported (priority, from, to, table)"
                    ));
                }
            }
            i += 2;
        }
        let priority = priority.ok_or("a rule needs a priority")?;
        let table = table.ok_or("a rule needs a table")?;
        if let (Some(f), Some(t)) = (from, to)
            && f.0.is_ipv4() != t.0.is_ipv4()
        {
            return Err("from and to are of different families".into());
        }
        Ok(RoutingRule {
            priority,
            from,
            to,
            table,
        })
    }
}

impl std::fmt::Display for RoutingRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "priority {}", self.priority)?;
        if let Some((a, l)) = self.from {
            write!(f, " from {a}/{l}")?;
        }
        if let Some((a, l)) = self.to {
            write!(f, " to {a}/{l}")?;
        }
        write!(f, " table {}", self.table)
    }
}

/// Which address family a section is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4
    V4,
    /// IPv6
    V6,
}

impl Family {
    /// The section name.
    pub fn section(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// The largest prefix length.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// Whether an address belongs to this family.
    pub fn holds(self, a: &IpAddr) -> bool {
        matches!(
            (self, a),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        )
    }
}

/// Secret flags (`NMSettingSecretFlags`) of a VPN secret.
pub mod secret_flags {
    /// Stored by the daemon.
    pub const NONE: u32 = 0;
    /// Owned by a secret agent.
    pub const AGENT_OWNED: u32 = 1;
    /// Asked for each time.
    pub const NOT_SAVED: u32 = 2;
    /// Not needed to activate.
    pub const NOT_REQUIRED: u32 = 4;
}

impl Profile {
    /// A new VPN profile with NM's defaults.
    pub fn new_vpn(id: &str, uuid: &str, service_type: &str) -> Profile {
        Profile {
            connection: ConnectionSection {
                id: id.to_string(),
                uuid: uuid.to_string(),
                kind: VPN.to_string(),
                autoconnect: true,
                autoconnect_priority: 0,
                autoconnect_retries: -1,
                interface_name: None,
                secondaries: Vec::new(),
                permissions: Vec::new(),
                timestamp: 0,
            },
            ethernet: None,
            extra: BTreeMap::new(),
            vpn: VpnSection {
                service_type: service_type.to_string(),
                ..Default::default()
            },
            ipv4: IpSection::new(),
            ipv6: IpSection::new(),
        }
    }

    /// A new wired profile with NM's defaults (DHCPv4, SLAAC), for `iface` or any link.
    pub fn new_ethernet(id: &str, uuid: &str, iface: Option<&str>) -> Profile {
        let mut p = Profile::new_vpn(id, uuid, "");
        p.connection.kind = ETHERNET.to_string();
        p.connection.interface_name = iface.map(str::to_string);
        p.ethernet = Some(EthernetSection::default());
        p
    }

    /// Whether this is a VPN profile.
    pub fn is_vpn(&self) -> bool {
        self.connection.kind == VPN
    }

    /// Whether this is a wired profile.
    pub fn is_ethernet(&self) -> bool {
        self.connection.kind == ETHERNET
    }

    /// `connection.type` as written in a profile (`ethernet` is NM's keyfile alias).
    pub fn normalize_kind(kind: &str) -> String {
        match kind.trim() {
            "ethernet" => ETHERNET.to_string(),
            k => k.to_string(),
        }
    }

    /// The flags of a VPN secret, from `vpn.data["<key>-flags"]`; a value that does not parse
    /// or is not a valid combination counts as 0, as in NM.
    pub fn secret_flags(&self, key: &str) -> u32 {
        self.vpn
            .data
            .get(&format!("{key}-flags"))
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v <= 7)
            .unwrap_or(0)
    }

    /// The timeout of the whole connect phase in seconds (`vpn.timeout`, else 60).
    pub fn vpn_timeout_secs(&self, default: u32) -> u32 {
        if self.vpn.timeout != 0 {
            self.vpn.timeout
        } else {
            default
        }
    }

    /// Checks what the types alone cannot: required values, formats and ranges.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let c = &self.connection;
        if c.id.trim().is_empty() {
            return Err(ProfileError::key("connection", "id", "must not be empty"));
        }
        if !is_uuid(&c.uuid) {
            return Err(ProfileError::key(
                "connection",
                "uuid",
                format!(
                    "'{}' is not a UUID (expected RFC 4122 text, like 1b4e28ba-2fa1-11d2-883f-0016d3cca427)",
                    c.uuid
                ),
            ));
        }
        if c.kind != VPN && c.kind != ETHERNET {
            return Err(ProfileError::key(
                "connection",
                "type",
                format!(
                    "'{}' is not supported (expected 'vpn' or 'ethernet')",
                    c.kind
                ),
            ));
        }
        if !(-999..=999).contains(&c.autoconnect_priority) {
            return Err(ProfileError::key(
                "connection",
                "autoconnect-priority",
                format!(
                    "{} is out of range (expected -999 to 999)",
                    c.autoconnect_priority
                ),
            ));
        }
        if c.autoconnect_retries < -1 {
            return Err(ProfileError::key(
                "connection",
                "autoconnect-retries",
                format!(
                    "{} is out of range (expected -1 or more)",
                    c.autoconnect_retries
                ),
            ));
        }
        if let Some(i) = &c.interface_name
            && !crate::ethernet::is_ifname(i)
        {
            return Err(ProfileError::key(
                "connection",
                "interface-name",
                format!(
                    "'{i}' is not an interface name (1 to 15 characters, no '/', ':' or space)"
                ),
            ));
        }
        if let Some(u) = c.secondaries.iter().find(|u| !is_uuid(u)) {
            return Err(ProfileError::key(
                "connection",
                "secondaries",
                format!("'{u}' is not the UUID of a VPN profile"),
            ));
        }
        for p in &c.permissions {
            let mut parts = p.split(':');
            let ok = parts.next() == Some("user")
                && parts.next().is_some_and(|u| !u.is_empty())
                && parts.next().is_none_or(|r| r.is_empty())
                && parts.next().is_none();
            if !ok {
                return Err(ProfileError::key(
                    "connection",
                    "permissions",
                    format!("'{p}' is not of the form 'user:NAME:'"),
                ));
            }
        }
        if c.kind == ETHERNET {
            return self.validate_ethernet();
        }
        if self.ethernet.is_some() {
            return Err(ProfileError::section(
                "ethernet",
                "is only for 'ethernet' profiles",
            ));
        }
        if self.vpn.service_type.trim().is_empty() {
            return Err(ProfileError::key(
                "vpn",
                "service-type",
                "must not be empty",
            ));
        }
        for k in self.vpn.data.keys().chain(self.vpn.secrets.keys()) {
            if k.is_empty() {
                return Err(ProfileError::key("vpn", "data", "keys must not be empty"));
            }
        }
        for (k, v) in self
            .vpn
            .data
            .iter()
            .filter(|(k, _)| k.starts_with(TINYNM_PREFIX))
        {
            if !TINYNM_OPTIONS.contains(&k.as_str()) {
                return Err(ProfileError::key(
                    "vpn",
                    "data",
                    format!(
                        "'{k}' is not a tinynm option (known: {})",
                        TINYNM_OPTIONS.join(", ")
                    ),
                ));
            }
            if v != "yes" && v != "no" {
                return Err(ProfileError::key(
                    "vpn",
                    "data",
                    format!("'{k}={v}': expected 'yes' or 'no'"),
                ));
            }
        }
        for (fam, s) in [(Family::V4, &self.ipv4), (Family::V6, &self.ipv6)] {
            s.validate(fam)?;
        }
        Ok(())
    }
}

impl IpSection {
    pub(crate) fn validate(&self, fam: Family) -> Result<(), ProfileError> {
        let sec = fam.section();
        for (a, l) in &self.addresses {
            if !fam.holds(a) || *l > fam.max_prefix() || (*l == 0) {
                return Err(ProfileError::key(
                    sec,
                    "addresses",
                    format!(
                        "'{a}/{l}' is not an {sec} address with a prefix of 1 to {}",
                        fam.max_prefix()
                    ),
                ));
            }
        }
        if let Some(g) = self.gateway
            && !fam.holds(&g)
        {
            return Err(ProfileError::key(
                sec,
                "gateway",
                format!("{g} is not an {sec} address"),
            ));
        }
        if self.route_metric < -1 || self.route_metric > u32::MAX as i64 {
            return Err(ProfileError::key(
                sec,
                "route-metric",
                format!(
                    "{} is out of range (expected -1 to 4294967295)",
                    self.route_metric
                ),
            ));
        }
        for r in &self.routes {
            if !fam.holds(&r.dest) || r.next_hop.is_some_and(|n| !fam.holds(&n)) {
                return Err(ProfileError::key(
                    sec,
                    "routes",
                    format!("route to {}/{} is not an {sec} route", r.dest, r.prefix),
                ));
            }
            if r.prefix > fam.max_prefix() {
                return Err(ProfileError::key(
                    sec,
                    "routes",
                    format!(
                        "prefix {} of {} is out of range (expected 0 to {})",
                        r.prefix,
                        r.dest,
                        fam.max_prefix()
                    ),
                ));
            }
        }
        if let Some(a) = self.dns.iter().find(|a| !fam.holds(a)) {
            return Err(ProfileError::key(
                sec,
                "dns",
                format!("{a} is not an {sec} address"),
            ));
        }
        Ok(())
    }
}

/// Whether `s` is RFC 4122 text (8-4-4-4-12 hex digits).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Parses `ADDR/PREFIX` (or a bare address, taken as a host route), by `ipnetwork` (the crate
/// rustables takes prefixes in); the address is kept as written (host bits and all).
pub fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    // `ipnetwork` also takes a netmask after the slash; NM's forms have a length.
    if s.split_once('/')
        .is_some_and(|(_, p)| !p.trim().bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n: ipnetwork::IpNetwork = s.trim().parse().ok()?;
    Some((n.ip(), n.prefix()))
}

#[cfg(test)]
mod rule_tests {
    use super::RoutingRule;

    #[test]
    fn routing_rules_read_and_write_nms_form() {
        let r = RoutingRule::parse("priority 5 from 10.0.0.0/8 to 192.0.2.1 table 100").unwrap();
        assert_eq!(
            r.to_string(),
            "priority 5 from 10.0.0.0/8 to 192.0.2.1/32 table 100"
        );
        assert_eq!(
            RoutingRule::parse("from 10.0.0.0/8 table 100").unwrap_err(),
            "a rule needs a priority"
        );
        assert_eq!(
            RoutingRule::parse("priority 5 iif eth0 table 1").unwrap_err(),
            "'iif' is not supported (priority, from, to, table)"
        );
        assert_eq!(
            RoutingRule::parse("priority 5 from 10.0.0.0/33 table 1").unwrap_err(),
            "'10.0.0.0/33' is not ADDRESS/LEN"
        );
    }
}

#[cfg(test)]
mod option_tests {
    use super::*;

    fn vpn(data: &[(&str, &str)]) -> Profile {
        let mut p = Profile::new_vpn(
            "v",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "org.freedesktop.NetworkManager.openvpn",
        );
        for (k, v) in data {
            p.vpn.data.insert(k.to_string(), v.to_string());
        }
        p
    }

    #[test]
    fn tinynm_options_are_checked_and_never_reach_the_plugin() {
        let p = vpn(&[("remote", "vpn.example"), (TINYNM_AUTOCONNECT, "yes")]);
        p.validate().unwrap();
        assert!(p.vpn.option(TINYNM_AUTOCONNECT));
        assert_eq!(
            p.vpn.plugin_data().keys().collect::<Vec<_>>(),
            ["remote"],
            "the plugin gets its own keys only"
        );
        let d = crate::dbus::to_plugin_dict(&p);
        let data = d["vpn"]["data"].to_string();
        assert!(!data.contains("tinynm"), "{data}");
        assert!(
            !vpn(&[(TINYNM_AUTOCONNECT, "no")])
                .vpn
                .option(TINYNM_AUTOCONNECT)
        );
        assert_eq!(
            vpn(&[(TINYNM_AUTOCONNECT, "true")])
                .validate()
                .unwrap_err()
                .to_string(),
            "[vpn] data: 'tinynm-autoconnect=true': expected 'yes' or 'no'"
        );
        assert_eq!(
            vpn(&[("tinynm-autoconnct", "yes")])
                .validate()
                .unwrap_err()
                .to_string(),
            "[vpn] data: 'tinynm-autoconnct' is not a tinynm option (known: tinynm-autoconnect, tinynm-kill-switch)"
        );
    }
}
