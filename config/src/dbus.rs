//! Profiles in NM's D-Bus form, `a{sa{sv}}` (spec VPN-PROTOCOL.md §8): both the legacy
//! (`addresses`, `routes`, `dns`) and the new (`address-data`, `route-data`, `dns-data`) keys.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zbus::{OwnedVariant, Variant};

use crate::error::ProfileError;
use crate::profile::{
    ConnectionSection, Family, IpMethod, IpSection, Profile, StaticRoute, VpnSection, parse_prefix,
};

/// One setting: property name → value.
pub type Setting = HashMap<String, OwnedVariant>;
/// A whole connection: setting name → setting.
pub type SettingsDict = HashMap<String, Setting>;

/// A plain value as an owned variant (plain values never carry file descriptors).
pub fn ov<'a>(v: impl Into<Variant<'a>>) -> OwnedVariant {
    v.into()
        .try_into_owned()
        .expect("plain values never carry file descriptors")
}

/// An IPv4 address as NM's `u`: the in-memory bytes are the address in network order.
pub fn ip4_to_u32(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

/// The inverse of [`ip4_to_u32`].
pub fn u32_to_ip4(v: u32) -> Ipv4Addr {
    Ipv4Addr::from(v.to_ne_bytes())
}

/// `ay` of 16 bytes → an IPv6 address.
pub fn bytes_to_ip6(b: &[u8]) -> Option<Ipv6Addr> {
    <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from)
}

/// NM's legacy IPv4 route, `[dest, prefix, next_hop, metric]` in network-order `u32`s;
/// `None` for an IPv6 route.
pub fn route4_legacy(
    dest: IpAddr,
    prefix: u8,
    next_hop: Option<IpAddr>,
    metric: u32,
) -> Option<Vec<u32>> {
    let IpAddr::V4(dst) = dest else { return None };
    let nh = match next_hop {
        Some(IpAddr::V4(n)) => ip4_to_u32(n),
        _ => 0,
    };
    Some(vec![ip4_to_u32(dst), prefix as u32, nh, metric])
}

/// NM's legacy IPv6 route, `(dest, prefix, next_hop, metric)`; `None` for an IPv4 route.
pub fn route6_legacy(
    dest: IpAddr,
    prefix: u8,
    next_hop: Option<IpAddr>,
    metric: u32,
) -> Option<(Vec<u8>, u32, Vec<u8>, u32)> {
    let IpAddr::V6(dst) = dest else { return None };
    let nh = match next_hop {
        Some(IpAddr::V6(n)) => n,
        _ => Ipv6Addr::UNSPECIFIED,
    };
    Some((
        dst.octets().to_vec(),
        prefix as u32,
        nh.octets().to_vec(),
        metric,
    ))
}

/// NM's legacy IPv4 name servers (`au`); IPv6 entries are left out.
pub fn dns4_legacy(addrs: &[IpAddr]) -> Vec<u32> {
    addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(a) => Some(ip4_to_u32(*a)),
            _ => None,
        })
        .collect()
}

/// NM's legacy IPv6 name servers (`aay`); IPv4 entries are left out.
pub fn dns6_legacy(addrs: &[IpAddr]) -> Vec<Vec<u8>> {
    addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V6(a) => Some(a.octets().to_vec()),
            _ => None,
        })
        .collect()
}

fn ip_string_dict(items: Vec<(&str, Variant<'static>)>) -> HashMap<String, OwnedVariant> {
    items
        .into_iter()
        .map(|(k, v)| (k.to_string(), ov(v)))
        .collect()
}

fn ip_to_dict(s: &IpSection, fam: Family) -> Setting {
    let mut d = Setting::new();
    d.insert("method".into(), ov(s.method.as_str()));
    let route_data: Vec<HashMap<String, OwnedVariant>> = s
        .routes
        .iter()
        .map(|r| {
            let mut items: Vec<(&str, Variant<'static>)> = vec![
                ("dest", Variant::from(r.dest.to_string())),
                ("prefix", Variant::from(r.prefix as u32)),
            ];
            if let Some(n) = r.next_hop {
                items.push(("next-hop", Variant::from(n.to_string())));
            }
            if let Some(m) = r.metric {
                items.push(("metric", Variant::from(m)));
            }
            ip_string_dict(items)
        })
        .collect();
    d.insert("route-data".into(), ov(route_data));
    crate::dbus_wired::addresses_to_dict(s, fam, &mut d);
    if !s.may_fail {
        d.insert("may-fail".into(), ov(false));
    }
    d.insert("dns-search".into(), ov(s.dns_search.clone()));
    let metric = |r: &StaticRoute| r.metric.unwrap_or(0);
    match fam {
        Family::V4 => {
            let routes: Vec<Vec<u32>> = s
                .routes
                .iter()
                .filter_map(|r| route4_legacy(r.dest, r.prefix, r.next_hop, metric(r)))
                .collect();
            d.insert("routes".into(), ov(routes));
            if !s.dns.is_empty() {
                d.insert("dns".into(), ov(dns4_legacy(&s.dns)));
            }
        }
        Family::V6 => {
            d.insert("addr-gen-mode".into(), ov(2i32));
            let routes: Vec<(Vec<u8>, u32, Vec<u8>, u32)> = s
                .routes
                .iter()
                .filter_map(|r| route6_legacy(r.dest, r.prefix, r.next_hop, metric(r)))
                .collect();
            d.insert("routes".into(), ov(routes));
            if !s.dns.is_empty() {
                d.insert("dns".into(), ov(dns6_legacy(&s.dns)));
            }
        }
    }
    if !s.dns.is_empty() {
        let dns: Vec<String> = s.dns.iter().map(|a| a.to_string()).collect();
        d.insert("dns-data".into(), ov(dns));
    }
    if s.never_default {
        d.insert("never-default".into(), ov(true));
    }
    if s.route_metric != -1 {
        d.insert("route-metric".into(), ov(s.route_metric));
    }
    if s.dns_priority != 0 {
        d.insert("dns-priority".into(), ov(s.dns_priority));
    }
    if s.ignore_auto_routes {
        d.insert("ignore-auto-routes".into(), ov(true));
    }
    if s.ignore_auto_dns {
        d.insert("ignore-auto-dns".into(), ov(true));
    }
    if s.block_leaks {
        d.insert("tinynm-block-leaks".into(), ov(true));
    }
    if s.route_table != 0 {
        d.insert("route-table".into(), ov(s.route_table));
    }
    if !s.routing_rules.is_empty() {
        let rules: Vec<HashMap<String, OwnedVariant>> = s
            .routing_rules
            .iter()
            .map(|r| {
                let mut m = HashMap::new();
                let v6 = r.from.or(r.to).is_some_and(|(a, _)| a.is_ipv6()) || fam == Family::V6;
                m.insert("family".to_string(), ov(if v6 { 10i32 } else { 2i32 }));
                m.insert("priority".to_string(), ov(r.priority));
                m.insert("table".to_string(), ov(r.table));
                if let Some((a, l)) = r.from {
                    m.insert("from".to_string(), ov(a.to_string()));
                    m.insert("from-len".to_string(), ov(u32::from(l)));
                }
                if let Some((a, l)) = r.to {
                    m.insert("to".to_string(), ov(a.to_string()));
                    m.insert("to-len".to_string(), ov(u32::from(l)));
                }
                m
            })
            .collect();
        d.insert("routing-rules".into(), ov(rules));
    }
    d
}

/// The profile as a VPN plugin is given it (`Connect`, `NeedSecrets`, `NewSecrets`): with
/// its secrets, without tinynm's own options in `vpn.data`.
pub fn to_plugin_dict(p: &Profile) -> SettingsDict {
    let mut q = p.clone();
    q.vpn.data = p.vpn.plugin_data();
    to_dict(&q, true)
}

/// The profile as NM's `a{sa{sv}}`. `with_secrets` adds `vpn.secrets` (what the plugin gets);
/// `GetSettings` never carries secrets.
pub fn to_dict(p: &Profile, with_secrets: bool) -> SettingsDict {
    let mut out = SettingsDict::new();
    let mut c = Setting::new();
    c.insert("id".into(), ov(p.connection.id.as_str()));
    c.insert("uuid".into(), ov(p.connection.uuid.as_str()));
    c.insert("type".into(), ov(p.connection.kind.as_str()));
    if !p.connection.autoconnect {
        c.insert("autoconnect".into(), ov(false));
    }
    c.insert("permissions".into(), ov(p.connection.permissions.clone()));
    if p.connection.timestamp != 0 {
        c.insert("timestamp".into(), ov(p.connection.timestamp));
    }
    crate::dbus_wired::connection_to_dict(&p.connection, &mut c);
    out.insert("connection".into(), c);
    if let Some(e) = &p.ethernet {
        out.insert(
            "802-3-ethernet".into(),
            crate::dbus_wired::ethernet_to_dict(e),
        );
    }
    let mut v = Setting::new();
    v.insert("service-type".into(), ov(p.vpn.service_type.as_str()));
    let data: HashMap<String, String> = p.vpn.data.clone().into_iter().collect();
    v.insert("data".into(), ov(data));
    if with_secrets {
        let secrets: HashMap<String, String> = p.vpn.secrets.clone().into_iter().collect();
        v.insert("secrets".into(), ov(secrets));
    }
    if let Some(u) = &p.vpn.user_name {
        v.insert("user-name".into(), ov(u.as_str()));
    }
    if p.vpn.persistent {
        v.insert("persistent".into(), ov(true));
    }
    if p.vpn.timeout != 0 {
        v.insert("timeout".into(), ov(p.vpn.timeout));
    }
    if p.is_vpn() {
        out.insert("vpn".into(), v);
    }
    out.insert("ipv4".into(), ip_to_dict(&p.ipv4, Family::V4));
    out.insert("ipv6".into(), ip_to_dict(&p.ipv6, Family::V6));
    out.insert("proxy".into(), Setting::new());
    // What tinynm keeps without using goes back as it came (where tinynm sets nothing).
    for (k, hex) in &p.extra {
        let (Some((setting, key)), Ok(v)) = (k.split_once('.'), decode_extra(hex)) else {
            continue;
        };
        out.entry(setting.to_string())
            .or_default()
            .entry(key.to_string())
            .or_insert(v);
    }
    out
}

/// Reads typed values out of one setting, naming the setting and key in every error.
pub(crate) struct Reader<'a> {
    pub(crate) name: &'a str,
    pub(crate) d: Option<&'a Setting>,
}

thread_local! {
    /// The (setting, property) pairs `from_dict` understood: the rest are kept as extras.
    static KNOWN: std::cell::RefCell<std::collections::HashSet<(String, String)>> =
        Default::default();
}

impl<'a> Reader<'a> {
    pub(crate) fn raw(&self, key: &str) -> Option<&'a OwnedVariant> {
        KNOWN.with(|k| {
            k.borrow_mut()
                .insert((self.name.to_string(), key.to_string()))
        });
        self.d.and_then(|d| d.get(key))
    }

    pub(crate) fn typed<T>(&self, key: &str, sig: &str) -> Result<Option<T>, ProfileError>
    where
        T: TryFrom<OwnedVariant>,
    {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        let got = v.value_signature().to_string();
        let wrong = || {
            ProfileError::key(
                self.name,
                key,
                format!("expected D-Bus type '{sig}', got '{got}'"),
            )
        };
        if got != sig {
            return Err(wrong());
        }
        let owned = v.try_clone().map_err(|_| wrong())?;
        T::try_from(owned).map(Some).map_err(|_| wrong())
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, ProfileError> {
        self.typed::<String>(key, "s")
    }

    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, ProfileError> {
        self.typed::<bool>(key, "b")
    }

    pub(crate) fn map(&self, key: &str) -> Result<BTreeMap<String, String>, ProfileError> {
        Ok(self
            .typed::<HashMap<String, String>>(key, "a{ss}")?
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !k.is_empty())
            .collect())
    }

    pub(crate) fn strings(&self, key: &str) -> Result<Vec<String>, ProfileError> {
        Ok(self.typed::<Vec<String>>(key, "as")?.unwrap_or_default())
    }
}

fn route_from_data(
    sec: &str,
    fam: Family,
    i: usize,
    r: HashMap<String, OwnedVariant>,
) -> Result<StaticRoute, ProfileError> {
    let rd = Reader {
        name: sec,
        d: Some(&r),
    };
    let key = format!("route-data[{i}]");
    let err = |m: String| ProfileError::key(sec, &key, m);
    let dest = rd
        .string("dest")
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("'dest' is required".into()))?;
    let prefix = rd
        .typed::<u32>("prefix", "u")
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("'prefix' is required".into()))?;
    let (dest, _) =
        parse_prefix(&dest).ok_or_else(|| err(format!("'{dest}' is not an address")))?;
    if !fam.holds(&dest) || prefix > fam.max_prefix() as u32 {
        return Err(err(format!("{dest}/{prefix} is not a valid {sec} route")));
    }
    let next_hop = match rd.string("next-hop").map_err(|e| err(e.to_string()))? {
        None => None,
        Some(n) => Some(
            n.parse()
                .map_err(|_| err(format!("next-hop '{n}' is not an address")))?,
        ),
    };
    let metric = rd
        .typed::<u32>("metric", "u")
        .map_err(|e| err(e.to_string()))?;
    Ok(StaticRoute {
        dest,
        prefix: prefix as u8,
        next_hop,
        metric,
    })
}

fn ip_from_dict(d: Option<&Setting>, fam: Family) -> Result<IpSection, ProfileError> {
    let sec = fam.section();
    let r = Reader { name: sec, d };
    // Read in one form or the other, or derived: never kept as they came.
    for k in [
        "addresses",
        "address-data",
        "gateway",
        "routes",
        "route-data",
        "dns",
        "dns-data",
    ] {
        r.raw(k);
    }
    let mut s = IpSection::new();
    if let Some(m) = r.string("method")? {
        s.method = IpMethod::parse(&m).ok_or_else(|| {
            ProfileError::key(
                sec,
                "method",
                format!(
                    "'{m}' is not a method (expected one of: {})",
                    IpMethod::NAMES.join(", ")
                ),
            )
        })?;
    }
    s.never_default = r.boolean("never-default")?.unwrap_or(false);
    s.ignore_auto_routes = r.boolean("ignore-auto-routes")?.unwrap_or(false);
    s.ignore_auto_dns = r.boolean("ignore-auto-dns")?.unwrap_or(false);
    s.block_leaks = r.boolean("tinynm-block-leaks")?.unwrap_or(false);
    s.route_table = r.typed::<u32>("route-table", "u")?.unwrap_or(0);
    s.route_metric = r.typed::<i64>("route-metric", "x")?.unwrap_or(-1);
    s.dns_priority = r.typed::<i32>("dns-priority", "i")?.unwrap_or(0);
    s.dns_search = r.strings("dns-search")?;
    crate::dbus_wired::addresses_from_dict(&r, fam, &mut s)?;
    // NM prefers the legacy property when both are present, so that old clients round-trip.
    let legacy_routes: Option<Vec<StaticRoute>> = match fam {
        Family::V4 => r.typed::<Vec<Vec<u32>>>("routes", "aau")?.map(|v| {
            v.into_iter()
                .filter(|r| r.len() >= 4)
                .map(|r| StaticRoute {
                    dest: IpAddr::V4(u32_to_ip4(r[0])),
                    prefix: r[1].min(255) as u8,
                    next_hop: (r[2] != 0).then(|| IpAddr::V4(u32_to_ip4(r[2]))),
                    metric: (r[3] != 0).then_some(r[3]),
                })
                .collect()
        }),
        Family::V6 => r
            .typed::<Vec<(Vec<u8>, u32, Vec<u8>, u32)>>("routes", "a(ayuayu)")?
            .map(|v| {
                v.into_iter()
                    .filter_map(|(d, p, n, m)| {
                        let dest = bytes_to_ip6(&d)?;
                        let nh = bytes_to_ip6(&n).filter(|n| !n.is_unspecified());
                        Some(StaticRoute {
                            dest: IpAddr::V6(dest),
                            prefix: p.min(255) as u8,
                            next_hop: nh.map(IpAddr::V6),
                            metric: (m != 0).then_some(m),
                        })
                    })
                    .collect()
            }),
    };
    for (i, rd) in r
        .typed::<Vec<HashMap<String, OwnedVariant>>>("routing-rules", "aa{sv}")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let key = format!("routing-rules[{i}]");
        let rr = Reader {
            name: sec,
            d: Some(&rd),
        };
        let err = |m: String| ProfileError::key(sec, &key, m);
        let mut text = format!(
            "priority {}",
            rr.typed::<u32>("priority", "u")
                .map_err(|e| err(e.to_string()))?
                .ok_or_else(|| err("'priority' is required".into()))?
        );
        for k in ["from", "to"] {
            if let Some(a) = rr.string(k).map_err(|e| err(e.to_string()))? {
                let l = rr
                    .typed::<u32>(&format!("{k}-len"), "u")
                    .map_err(|e| err(e.to_string()))?
                    .unwrap_or(if a.contains(':') { 128 } else { 32 });
                text.push_str(&format!(" {k} {a}/{l}"));
            }
        }
        if let Some(t) = rr
            .typed::<u32>("table", "u")
            .map_err(|e| err(e.to_string()))?
        {
            text.push_str(&format!(" table {t}"));
        }
        s.routing_rules
            .push(crate::profile::RoutingRule::parse(&text).map_err(err)?);
    }
    s.routes = match legacy_routes {
        Some(v) if !v.is_empty() => v,
        _ => r
            .typed::<Vec<HashMap<String, OwnedVariant>>>("route-data", "aa{sv}")?
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, rd)| route_from_data(sec, fam, i, rd))
            .collect::<Result<_, _>>()?,
    };
    let legacy_dns: Option<Vec<IpAddr>> = match fam {
        Family::V4 => r
            .typed::<Vec<u32>>("dns", "au")?
            .map(|v| v.into_iter().map(|a| IpAddr::V4(u32_to_ip4(a))).collect()),
        Family::V6 => r.typed::<Vec<Vec<u8>>>("dns", "aay")?.map(|v| {
            v.iter()
                .filter_map(|b| bytes_to_ip6(b).map(IpAddr::V6))
                .collect()
        }),
    };
    s.dns = match legacy_dns {
        Some(v) if !v.is_empty() => v,
        _ => r
            .strings("dns-data")?
            .into_iter()
            .map(|a| {
                a.parse().map_err(|_| {
                    ProfileError::key(sec, "dns-data", format!("'{a}' is not an IP address"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(s)
}

/// Parses and validates a profile from NM's `a{sa{sv}}`. Unknown settings and properties are
/// ignored, as NM does for non-strict calls; a known property of the wrong type is an error.
pub fn from_dict(d: &SettingsDict) -> Result<Profile, ProfileError> {
    KNOWN.with(|k| k.borrow_mut().clear());
    let mut p = from_dict_known(d)?;
    let known = KNOWN.with(|k| std::mem::take(&mut *k.borrow_mut()));
    // What tinynm writes itself (NM's fixed values, such as ipv6.addr-gen-mode) is its own too.
    let written = to_dict(&p, false);
    for (setting, props) in d {
        for (key, value) in props {
            if known.contains(&(setting.clone(), key.clone()))
                || written.get(setting).is_some_and(|s| s.contains_key(key))
            {
                continue;
            }
            // Whole words of the name: `pin` is a secret, `gateway-ping-timeout` is not.
            if key
                .split('-')
                .any(|w| ["secret", "secrets", "password", "psk", "pin"].contains(&w))
            {
                return Err(ProfileError::key(
                    setting,
                    key,
                    "tinynm does not keep this setting's secrets: not saved",
                ));
            }
            p.extra
                .insert(format!("{setting}.{key}"), encode_extra(value));
        }
    }
    Ok(p)
}

/// A property tinynm keeps without using it, as hex of its D-Bus variant encoding.
pub fn encode_extra(v: &OwnedVariant) -> String {
    use std::fmt::Write;
    let ctx = zbus::wire::serialized::Context::new(zbus::wire::Endian::Little, 0);
    let bytes = zbus::wire::to_bytes(ctx, &**v).expect("a variant always encodes");
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Reads [`encode_extra`]'s text back, or says what is wrong with it.
pub fn decode_extra(hex: &str) -> Result<OwnedVariant, String> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("not the hex of a D-Bus variant".into());
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked"))
        .collect();
    let ctx = zbus::wire::serialized::Context::new(zbus::wire::Endian::Little, 0);
    let data = zbus::wire::serialized::Data::new(bytes, ctx);
    let (v, _): (Variant<'_>, _) = data
        .deserialize()
        .map_err(|e| format!("not a D-Bus variant: {e}"))?;
    v.try_to_owned()
        .map_err(|e| format!("not a D-Bus variant: {e}"))
}

fn from_dict_known(d: &SettingsDict) -> Result<Profile, ProfileError> {
    let c = Reader {
        name: "connection",
        d: Some(
            d.get("connection")
                .ok_or_else(|| ProfileError::section("connection", "setting is missing"))?,
        ),
    };
    let mut connection = ConnectionSection {
        id: c
            .string("id")?
            .ok_or_else(|| ProfileError::key("connection", "id", "property is missing"))?,
        uuid: c
            .string("uuid")?
            .ok_or_else(|| ProfileError::key("connection", "uuid", "property is missing"))?,
        kind: c
            .string("type")?
            .map(|k| Profile::normalize_kind(&k))
            .ok_or_else(|| ProfileError::key("connection", "type", "property is missing"))?,
        autoconnect: c.boolean("autoconnect")?.unwrap_or(true),
        autoconnect_priority: 0,
        autoconnect_retries: -1,
        interface_name: None,
        secondaries: Vec::new(),
        permissions: c.strings("permissions")?,
        timestamp: c.typed::<u64>("timestamp", "t")?.unwrap_or(0),
    };
    crate::dbus_wired::connection_from_dict(&c, &mut connection)?;
    if connection.kind == crate::profile::ETHERNET {
        let e = Reader {
            name: "802-3-ethernet",
            d: d.get("802-3-ethernet"),
        };
        let mut p = Profile::new_ethernet(&connection.id, &connection.uuid, None);
        p.ethernet = Some(crate::dbus_wired::ethernet_from_dict(&e)?);
        p.connection = connection;
        p.ipv4 = ip_from_dict(d.get("ipv4"), Family::V4)?;
        p.ipv6 = ip_from_dict(d.get("ipv6"), Family::V6)?;
        p.validate()?;
        return Ok(p);
    }
    let v = Reader {
        name: "vpn",
        d: Some(
            d.get("vpn")
                .ok_or_else(|| ProfileError::section("vpn", "setting is missing"))?,
        ),
    };
    let vpn = VpnSection {
        service_type: v
            .string("service-type")?
            .ok_or_else(|| ProfileError::key("vpn", "service-type", "property is missing"))?,
        user_name: v.string("user-name")?.filter(|s| !s.is_empty()),
        data: v.map("data")?,
        secrets: v.map("secrets")?,
        persistent: v.boolean("persistent")?.unwrap_or(false),
        timeout: v.typed::<u32>("timeout", "u")?.unwrap_or(0),
    };
    let p = Profile {
        connection,
        vpn,
        ethernet: None,
        ipv4: ip_from_dict(d.get("ipv4"), Family::V4)?,
        ipv6: ip_from_dict(d.get("ipv6"), Family::V6)?,
        extra: BTreeMap::new(),
    };
    p.validate()?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_settings_are_kept_and_unknown_secrets_refused_by_name() {
        let p = Profile::new_vpn("z", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "org.x");
        let mut d = to_dict(&p, true);
        d.get_mut("connection")
            .unwrap()
            .insert("zone".into(), ov("trusted"));
        d.entry("ethtool".into())
            .or_default()
            .insert("feature-tso".into(), ov(1u32));
        let back = from_dict(&d).unwrap();
        assert_eq!(back.extra.len(), 2, "{:?}", back.extra);
        let again = to_dict(&back, true);
        assert_eq!(
            String::try_from(again["connection"]["zone"].try_clone().unwrap()).unwrap(),
            "trusted"
        );
        assert_eq!(
            u32::try_from(again["ethtool"]["feature-tso"].try_clone().unwrap()).unwrap(),
            1
        );
        let t = crate::toml_profile::to_toml_string(&back);
        assert_eq!(crate::toml_profile::from_toml_str(&t).unwrap(), back);
        d.get_mut("connection")
            .unwrap()
            .insert("gateway-ping-timeout".into(), ov(5u32));
        assert_eq!(from_dict(&d).unwrap().extra.len(), 3, "not a secret");
        d.entry("802-1x".into())
            .or_default()
            .insert("password".into(), ov("hunter2"));
        assert_eq!(
            from_dict(&d).unwrap_err().to_string(),
            "[802-1x] password: tinynm does not keep this setting's secrets: not saved"
        );
    }

    fn sample() -> Profile {
        let mut p = Profile::new_vpn(
            "work",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "org.freedesktop.NetworkManager.openvpn",
        );
        p.connection.autoconnect = false;
        p.vpn.data.insert("remote".into(), "10.99.0.1".into());
        p.vpn.secrets.insert("password".into(), "pw".into());
        p.ipv4.routes.push(StaticRoute {
            dest: "10.50.0.0".parse().unwrap(),
            prefix: 16,
            next_hop: Some("10.8.0.1".parse().unwrap()),
            metric: None,
        });
        p.ipv4.dns.push("10.8.0.1".parse().unwrap());
        p.ipv6.routes.push(StaticRoute {
            dest: "fd00:50::".parse().unwrap(),
            prefix: 64,
            next_hop: None,
            metric: Some(7),
        });
        p
    }

    #[test]
    fn round_trip_with_and_without_secrets() {
        let p = sample();
        let d = to_dict(&p, true);
        assert_eq!(from_dict(&d).unwrap(), p);
        let d = to_dict(&p, false);
        assert!(!d["vpn"].contains_key("secrets"));
        let back = from_dict(&d).unwrap();
        assert!(back.vpn.secrets.is_empty());
    }

    #[test]
    fn legacy_forms_are_network_order_and_preferred() {
        let p = sample();
        let d = to_dict(&p, false);
        let routes = Vec::<Vec<u32>>::try_from(d["ipv4"]["routes"].try_clone().unwrap()).unwrap();
        // 10.50.0.0 read natively on a little-endian host: bytes 10,50,0,0.
        assert_eq!(routes[0][0], u32::from_ne_bytes([10, 50, 0, 0]));
        assert_eq!(u32_to_ip4(routes[0][2]), Ipv4Addr::new(10, 8, 0, 1));
        // new-only form (what libnm clients send)
        let mut d2 = d.clone();
        d2.get_mut("ipv4").unwrap().remove("routes");
        d2.get_mut("ipv4").unwrap().remove("dns");
        assert_eq!(from_dict(&d2).unwrap().ipv4, p.ipv4);
        // both present and different: legacy wins
        let mut d3 = d.clone();
        let other = vec![vec![ip4_to_u32(Ipv4Addr::new(10, 60, 0, 0)), 24, 0, 0]];
        d3.get_mut("ipv4")
            .unwrap()
            .insert("routes".into(), ov(other));
        assert_eq!(
            from_dict(&d3).unwrap().ipv4.routes[0].dest,
            "10.60.0.0".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let mut d = to_dict(&sample(), false);
        d.get_mut("ipv4")
            .unwrap()
            .insert("route-metric".into(), ov("50"));
        assert_eq!(
            from_dict(&d).unwrap_err().to_string(),
            "[ipv4] route-metric: expected D-Bus type 'x', got 's'"
        );
        let mut d = to_dict(&sample(), false);
        d.remove("vpn");
        assert_eq!(
            from_dict(&d).unwrap_err().to_string(),
            "[vpn]: setting is missing"
        );
    }
}
