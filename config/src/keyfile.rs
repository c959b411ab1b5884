//! NetworkManager's keyfiles (`*.nmconnection`, spec VPN-PROTOCOL.md §8.3): the VPN and wired
//! profiles of a system that ran NetworkManager, read as tinynm profiles.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::ProfileError;
use crate::profile::{
    ConnectionSection, ETHERNET, EthernetSection, Family, IpMethod, IpSection, Profile,
    StaticRoute, VpnSection, parse_prefix,
};

/// One group of a keyfile, with where each value came from.
struct Group<'a> {
    name: &'a str,
    keys: &'a BTreeMap<String, String>,
}

impl Group<'_> {
    fn get(&self, k: &str) -> Option<&str> {
        self.keys.get(k).map(|s| s.as_str())
    }

    fn bool(&self, k: &str, default: bool) -> Result<bool, ProfileError> {
        match self.get(k).map(str::trim) {
            None => Ok(default),
            Some("true" | "yes" | "1") => Ok(true),
            Some("false" | "no" | "0") => Ok(false),
            Some(v) => Err(ProfileError::key(
                self.name,
                k,
                format!("'{v}' is not true or false"),
            )),
        }
    }

    fn int(&self, k: &str, min: i64, max: i64, default: i64) -> Result<i64, ProfileError> {
        match self.get(k).map(str::trim) {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(i) if (min..=max).contains(&i) => Ok(i),
                _ => Err(ProfileError::key(
                    self.name,
                    k,
                    format!("'{v}' is not an integer from {min} to {max}"),
                )),
            },
        }
    }

    /// A GLib list: `a;b;c;` (the last `;` optional).
    fn list(&self, k: &str) -> Vec<String> {
        self.get(k)
            .map(|v| {
                v.split(';')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether a keyfile's text is a VPN profile.
pub fn is_vpn(groups: &BTreeMap<String, BTreeMap<String, String>>) -> bool {
    kind(groups).as_deref() == Some("vpn")
}

/// The keyfile's `connection.type`, with `ethernet` as `802-3-ethernet`.
fn kind(groups: &BTreeMap<String, BTreeMap<String, String>>) -> Option<String> {
    groups
        .get("connection")
        .and_then(|c| c.get("type"))
        .map(|t| Profile::normalize_kind(t))
}

/// Splits keyfile text into groups. Escapes are GLib's (`\s`, `\n`, `\t`, `\\`).
pub fn parse_groups(
    text: &str,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, ProfileError> {
    let ini = ini::Ini::load_from_str_opt(
        text,
        ini::ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            ..Default::default()
        },
    )
    .map_err(|e| ProfileError::section("keyfile", format!("not a keyfile: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, props) in ini.iter() {
        let Some(name) = name else { continue };
        let g: BTreeMap<String, String> = props
            .iter()
            .map(|(k, v)| (k.to_string(), unescape(v)))
            .collect();
        out.insert(name.to_string(), g);
    }
    Ok(out)
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The keys `<prefix>N` (N a number) of a group, in numeric order, for the first prefix that
/// matches each key.
fn numbered<'a>(keys: &'a BTreeMap<String, String>, prefixes: &[&str]) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(u32, &str, &str)> = keys
        .iter()
        .filter_map(|(k, v)| {
            let n = prefixes.iter().find_map(|p| k.strip_prefix(p))?;
            n.parse::<u32>().ok().map(|n| (n, k.as_str(), v.as_str()))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, k, v)| (k, v)).collect()
}

fn ip_section(
    g: Option<&BTreeMap<String, String>>,
    fam: Family,
) -> Result<IpSection, ProfileError> {
    let mut s = IpSection::new();
    let Some(keys) = g else { return Ok(s) };
    let g = Group {
        name: fam.section(),
        keys,
    };
    if let Some(m) = g.get("method") {
        s.method = IpMethod::parse(m.trim()).ok_or_else(|| {
            ProfileError::key(
                g.name,
                "method",
                format!(
                    "'{m}' is not a method (expected one of: {})",
                    IpMethod::NAMES.join(", ")
                ),
            )
        })?;
    }
    s.never_default = g.bool("never-default", false)?;
    s.ignore_auto_routes = g.bool("ignore-auto-routes", false)?;
    s.ignore_auto_dns = g.bool("ignore-auto-dns", false)?;
    s.route_metric = g.int("route-metric", -1, u32::MAX as i64, -1)?;
    s.dns_priority = g.int("dns-priority", i32::MIN as i64, i32::MAX as i64, 0)? as i32;
    s.dns_search = g.list("dns-search");
    s.may_fail = g.bool("may-fail", true)?;
    if let Some(gw) = g.get("gateway").map(str::trim).filter(|v| !v.is_empty()) {
        s.gateway = Some(gw.parse().map_err(|_| {
            ProfileError::key(g.name, "gateway", format!("'{gw}' is not an IP address"))
        })?);
    }
    // address1=ADDR/PREFIX[,GATEWAY] (also addresses1=), in numeric order; NM wrote the
    // gateway after the first address before it had a key of its own.
    for (k, v) in numbered(keys, &["addresses", "address"]) {
        let mut parts = v.split(',').map(str::trim);
        let a = parts.next().unwrap_or_default();
        let (addr, prefix) = parse_prefix(a)
            .ok_or_else(|| ProfileError::key(g.name, k, format!("'{a}' is not ADDRESS/PREFIX")))?;
        s.addresses.push((addr, prefix));
        if let Some(gw) = parts.next().filter(|v| !v.is_empty())
            && s.gateway.is_none()
        {
            s.gateway = Some(gw.parse().map_err(|_| {
                ProfileError::key(g.name, k, format!("gateway '{gw}' is not an IP address"))
            })?);
        }
    }
    for d in g.list("dns") {
        s.dns.push(d.parse().map_err(|_| {
            ProfileError::key(g.name, "dns", format!("'{d}' is not an IP address"))
        })?);
    }
    // routes: route1=DEST/PREFIX[,NEXT_HOP[,METRIC]] (also routes1=), in numeric order.
    for (k, v) in numbered(keys, &["routes", "route"]) {
        let mut parts = v.split(',').map(str::trim);
        let err = |m: String| ProfileError::key(g.name, k, m);
        let dest = parts.next().unwrap_or_default();
        let (dest, prefix) =
            parse_prefix(dest).ok_or_else(|| err(format!("'{dest}' is not ADDRESS/PREFIX")))?;
        let next_hop = match parts.next().filter(|s| !s.is_empty()) {
            None => None,
            Some(n) => Some(
                n.parse()
                    .map_err(|_| err(format!("next hop '{n}' is not an address")))?,
            ),
        };
        let metric = match parts.next().filter(|s| !s.is_empty()) {
            None => None,
            Some(m) => Some(
                m.parse()
                    .map_err(|_| err(format!("metric '{m}' is not a number")))?,
            ),
        };
        s.routes.push(StaticRoute {
            dest,
            prefix,
            next_hop,
            metric,
        });
    }
    Ok(s)
}

/// Reads a VPN or wired profile from keyfile text. `Ok(None)`: a valid keyfile of another
/// type (Wi-Fi, bridges…), left to other tools.
pub fn from_keyfile_str(text: &str) -> Result<Option<Profile>, ProfileError> {
    let groups = parse_groups(text)?;
    let Some(c) = groups.get("connection") else {
        return Err(ProfileError::section("connection", "is required"));
    };
    let Some(kind) = kind(&groups).filter(|k| k == "vpn" || k == ETHERNET) else {
        return Ok(None);
    };
    let cg = Group {
        name: "connection",
        keys: c,
    };
    let connection = ConnectionSection {
        id: cg
            .get("id")
            .map(str::to_string)
            .ok_or_else(|| ProfileError::key("connection", "id", "is required"))?,
        uuid: cg
            .get("uuid")
            .map(|u| u.trim().to_string())
            .ok_or_else(|| ProfileError::key("connection", "uuid", "is required"))?,
        autoconnect: cg.bool("autoconnect", true)?,
        autoconnect_priority: cg.int("autoconnect-priority", -999, 999, 0)? as i32,
        autoconnect_retries: cg.int("autoconnect-retries", -1, i32::MAX as i64, -1)? as i32,
        interface_name: cg
            .get("interface-name")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        secondaries: cg.list("secondaries"),
        permissions: cg.list("permissions"),
        timestamp: cg.int("timestamp", 0, i64::MAX, 0)? as u64,
        kind,
    };
    let ipv4 = ip_section(groups.get("ipv4"), Family::V4)?;
    let ipv6 = ip_section(groups.get("ipv6"), Family::V6)?;
    if connection.kind == ETHERNET {
        let empty = BTreeMap::new();
        let eg = Group {
            name: "ethernet",
            keys: groups
                .get("ethernet")
                .or_else(|| groups.get("802-3-ethernet"))
                .unwrap_or(&empty),
        };
        let mut p = Profile::new_ethernet(&connection.id, &connection.uuid, None);
        p.connection = connection;
        p.ethernet = Some(EthernetSection {
            mac_address: eg
                .get("mac-address")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            mtu: eg.int("mtu", 0, 65535, 0)? as u32,
        });
        p.ipv4 = ipv4;
        p.ipv6 = ipv6;
        p.validate()?;
        return Ok(Some(p));
    }
    let empty = BTreeMap::new();
    let v = groups
        .get("vpn")
        .ok_or_else(|| ProfileError::section("vpn", "is required"))?;
    let vg = Group {
        name: "vpn",
        keys: v,
    };
    let reserved = ["service-type", "user-name", "persistent", "timeout"];
    let vpn = VpnSection {
        service_type: vg
            .get("service-type")
            .map(|s| s.trim().to_string())
            .ok_or_else(|| ProfileError::key("vpn", "service-type", "is required"))?,
        user_name: vg
            .get("user-name")
            .map(str::to_string)
            .filter(|s| !s.is_empty()),
        data: v
            .iter()
            .filter(|(k, _)| !reserved.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        secrets: groups.get("vpn-secrets").unwrap_or(&empty).clone(),
        persistent: vg.bool("persistent", false)?,
        timeout: vg.int("timeout", 0, u32::MAX as i64, 0)? as u32,
    };
    let p = Profile {
        connection,
        vpn,
        ethernet: None,
        ipv4,
        ipv6,
        extra: BTreeMap::new(),
    };
    p.validate()?;
    Ok(Some(p))
}

/// Reads a keyfile; errors name the file, the group and the key.
pub fn load_keyfile(path: &Path) -> Result<Option<Profile>, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_keyfile_str(&text).map_err(|e| e.in_file(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVPN: &str = "[connection]\nid=office vpn\nuuid=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\ntype=vpn\nautoconnect=false\npermissions=user:alice;\n\n[vpn]\nservice-type=org.freedesktop.NetworkManager.openvpn\nconnection-type=password\nusername=alice\npassword-flags=2\nremote=10.99.0.1\nca=/etc/openvpn/ca.pem\n\n[vpn-secrets]\npassword=s\\se\\\\cret\n\n[ipv4]\nmethod=auto\nnever-default=true\nroute1=10.50.0.0/16,10.8.0.1\nroute2=10.60.0.0/16,,7\ndns=10.8.0.1;\n\n[ipv6]\naddr-gen-mode=stable-privacy\nmethod=ignore\n\n[proxy]\n";

    #[test]
    fn reads_an_openvpn_keyfile() {
        let p = from_keyfile_str(OVPN).unwrap().unwrap();
        assert_eq!(p.connection.id, "office vpn");
        assert!(!p.connection.autoconnect);
        assert_eq!(p.connection.permissions, vec!["user:alice".to_string()]);
        assert_eq!(p.vpn.service_type, "org.freedesktop.NetworkManager.openvpn");
        assert_eq!(p.vpn.data["remote"], "10.99.0.1");
        assert_eq!(p.secret_flags("password"), 2);
        assert_eq!(p.vpn.secrets["password"], "s e\\cret");
        assert!(p.ipv4.never_default);
        assert_eq!(p.ipv4.routes.len(), 2);
        assert_eq!(p.ipv4.routes[1].metric, Some(7));
        assert_eq!(p.ipv6.method, IpMethod::Other("ignore"));
    }

    #[test]
    fn other_types_are_skipped_and_errors_are_named() {
        let wifi = "[connection]\nid=wifi\nuuid=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\ntype=wifi\n";
        assert_eq!(from_keyfile_str(wifi).unwrap(), None);
        let bad = OVPN.replace("never-default=true", "never-default=maybe");
        assert_eq!(
            from_keyfile_str(&bad).unwrap_err().to_string(),
            "[ipv4] never-default: 'maybe' is not true or false"
        );
        let bad = OVPN.replace("route1=10.50.0.0/16", "route1=10.50.0.0/40");
        assert_eq!(
            from_keyfile_str(&bad).unwrap_err().to_string(),
            "[ipv4] route1: '10.50.0.0/40' is not ADDRESS/PREFIX"
        );
    }
}
