//! Profiles as TOML files: one profile a file, sections named as NM's settings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use toml::{Table, Value};

use crate::error::ProfileError;
use crate::profile::{
    ConnectionSection, EthernetSection, Family, IpMethod, IpSection, Profile, StaticRoute,
    VpnSection, parse_prefix,
};

/// A section being read: every key taken is remembered so that unknown keys are reported.
struct Sect<'a> {
    name: &'a str,
    table: Option<&'a Table>,
    seen: BTreeSet<&'a str>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

impl<'a> Sect<'a> {
    fn new(root: &'a Table, name: &'a str) -> Result<Self, ProfileError> {
        let table = match root.get(name) {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(v) => {
                return Err(ProfileError::section(
                    name,
                    format!("expected a table, found {}", type_name(v)),
                ));
            }
        };
        Ok(Sect {
            name,
            table,
            seen: BTreeSet::new(),
        })
    }

    fn get(&mut self, key: &'a str) -> Option<&'a Value> {
        self.seen.insert(key);
        self.table.and_then(|t| t.get(key))
    }

    fn wrong(&self, key: &str, expected: &str, v: &Value) -> ProfileError {
        ProfileError::key(
            self.name,
            key,
            format!("expected {expected}, found {}", type_name(v)),
        )
    }

    fn string(&mut self, key: &'a str) -> Result<Option<String>, ProfileError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    fn required(&mut self, key: &'a str) -> Result<String, ProfileError> {
        self.string(key)?
            .ok_or_else(|| ProfileError::key(self.name, key, "is required"))
    }

    fn boolean(&mut self, key: &'a str, default: bool) -> Result<bool, ProfileError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.wrong(key, "true or false", v)),
        }
    }

    fn int(&mut self, key: &'a str, min: i64, max: i64, default: i64) -> Result<i64, ProfileError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) if (min..=max).contains(i) => Ok(*i),
            Some(Value::Integer(i)) => Err(ProfileError::key(
                self.name,
                key,
                format!("{i} is out of range (expected {min} to {max})"),
            )),
            Some(v) => Err(self.wrong(key, "an integer", v)),
        }
    }

    fn strings(&mut self, key: &'a str) -> Result<Vec<String>, ProfileError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(self.wrong(key, "an array of strings", v)),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "an array of strings", v)),
        }
    }

    fn string_map(&mut self, key: &'a str) -> Result<BTreeMap<String, String>, ProfileError> {
        match self.get(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Table(t)) => t
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    v => Err(ProfileError::key(
                        self.name,
                        &format!("{key}.{k}"),
                        format!("expected a string, found {}", type_name(v)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "a table of strings", v)),
        }
    }

    fn finish(self) -> Result<(), ProfileError> {
        if let Some(t) = self.table
            && let Some(k) = t.keys().find(|k| !self.seen.contains(k.as_str()))
        {
            let mut known: Vec<&str> = self.seen.into_iter().collect();
            known.sort_unstable();
            return Err(ProfileError::key(
                self.name,
                k,
                format!("unknown key (known keys: {})", known.join(", ")),
            ));
        }
        Ok(())
    }
}

fn read_ip(root: &Table, fam: Family) -> Result<IpSection, ProfileError> {
    let name = fam.section();
    let mut s = Sect::new(root, name)?;
    let mut out = IpSection::new();
    if let Some(m) = s.string("method")? {
        out.method = IpMethod::parse(&m).ok_or_else(|| {
            ProfileError::key(
                name,
                "method",
                format!(
                    "'{m}' is not a method (expected one of: {})",
                    IpMethod::NAMES.join(", ")
                ),
            )
        })?;
    }
    out.never_default = s.boolean("never-default", false)?;
    out.route_metric = s.int("route-metric", -1, u32::MAX as i64, -1)?;
    out.dns_priority = s.int("dns-priority", i32::MIN as i64, i32::MAX as i64, 0)? as i32;
    out.ignore_auto_routes = s.boolean("ignore-auto-routes", false)?;
    out.ignore_auto_dns = s.boolean("ignore-auto-dns", false)?;
    out.block_leaks = s.boolean("block-leaks", false)?;
    out.route_table = s.int("route-table", 0, u32::MAX as i64, 0)? as u32;
    for r in s.strings("routing-rules")? {
        out.routing_rules.push(
            crate::profile::RoutingRule::parse(&r)
                .map_err(|m| ProfileError::key(name, "routing-rules", format!("'{r}': {m}")))?,
        );
    }
    out.dns_search = s.strings("dns-search")?;
    out.may_fail = s.boolean("may-fail", true)?;
    for a in s.strings("addresses")? {
        let (addr, prefix) = parse_prefix(&a).ok_or_else(|| {
            ProfileError::key(name, "addresses", format!("'{a}' is not ADDRESS/PREFIX"))
        })?;
        // A bare address is /32 (/128), as nmcli takes it.
        out.addresses.push((addr, prefix));
    }
    if let Some(g) = s.string("gateway")? {
        out.gateway = Some(g.parse().map_err(|_| {
            ProfileError::key(name, "gateway", format!("'{g}' is not an IP address"))
        })?);
    }
    for d in s.strings("dns")? {
        out.dns.push(
            d.parse().map_err(|_| {
                ProfileError::key(name, "dns", format!("'{d}' is not an IP address"))
            })?,
        );
    }
    match s.get("routes") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                out.routes.push(read_route(name, i, item)?);
            }
        }
        Some(v) => return Err(s.wrong("routes", "an array of route tables", v)),
    }
    s.finish()?;
    Ok(out)
}

fn read_route(sec: &str, i: usize, item: &Value) -> Result<StaticRoute, ProfileError> {
    let key = format!("routes[{i}]");
    let err = |m: String| ProfileError::key(sec, &key, m);
    let Value::Table(t) = item else {
        return Err(err(format!(
            "expected a table like {{ dest = \"10.0.0.0/8\", next-hop = \"10.8.0.1\" }}, found {}",
            type_name(item)
        )));
    };
    if let Some(k) = t
        .keys()
        .find(|k| !["dest", "next-hop", "metric"].contains(&k.as_str()))
    {
        return Err(err(format!(
            "unknown key '{k}' (known keys: dest, next-hop, metric)"
        )));
    }
    let dest = match t.get("dest") {
        Some(Value::String(s)) => s,
        Some(v) => {
            return Err(err(format!(
                "dest: expected a string, found {}",
                type_name(v)
            )));
        }
        None => return Err(err("dest is required".into())),
    };
    let (dest, prefix) =
        parse_prefix(dest).ok_or_else(|| err(format!("dest '{dest}' is not ADDRESS/PREFIX")))?;
    let next_hop = match t.get("next-hop") {
        None => None,
        Some(Value::String(s)) => Some(
            s.parse()
                .map_err(|_| err(format!("next-hop '{s}' is not an IP address")))?,
        ),
        Some(v) => {
            return Err(err(format!(
                "next-hop: expected a string, found {}",
                type_name(v)
            )));
        }
    };
    let metric = match t.get("metric") {
        None => None,
        Some(Value::Integer(m)) if (0..=u32::MAX as i64).contains(m) => Some(*m as u32),
        Some(v) => return Err(err(format!("metric: expected 0 to 4294967295, found {v}"))),
    };
    Ok(StaticRoute {
        dest,
        prefix,
        next_hop,
        metric,
    })
}

/// `[vpn]` keys that stand for tinynm's `vpn.data` options.
const TOML_OPTIONS: [(&str, &str); 1] = [("kill-switch", crate::profile::TINYNM_KILL_SWITCH)];

/// Parses and validates a profile from TOML text.
pub fn from_toml_str(text: &str) -> Result<Profile, ProfileError> {
    let root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ProfileError::Syntax {
            path: "<text>".into(),
            message: e.message().to_string(),
        })?;
    from_table(&root)
}

fn from_table(root: &Table) -> Result<Profile, ProfileError> {
    if let Some(k) = root.keys().find(|k| {
        ![
            "connection",
            "vpn",
            "ethernet",
            "ipv4",
            "ipv6",
            "proxy",
            "extra",
        ]
        .contains(&k.as_str())
    }) {
        return Err(ProfileError::section(
            k,
            "unknown section (known: connection, vpn, ethernet, ipv4, ipv6, proxy, extra)",
        ));
    }
    if !root.contains_key("connection") {
        return Err(ProfileError::section("connection", "is required"));
    }
    let mut c = Sect::new(root, "connection")?;
    let connection = ConnectionSection {
        id: c.required("id")?,
        uuid: c.required("uuid")?,
        kind: Profile::normalize_kind(&c.string("type")?.unwrap_or_else(|| "vpn".into())),
        autoconnect: c.boolean("autoconnect", true)?,
        autoconnect_priority: c.int("autoconnect-priority", -999, 999, 0)? as i32,
        autoconnect_retries: c.int("autoconnect-retries", -1, i32::MAX as i64, -1)? as i32,
        interface_name: c.string("interface-name")?.filter(|s| !s.is_empty()),
        secondaries: c.strings("secondaries")?,
        permissions: c.strings("permissions")?,
        timestamp: c.int("timestamp", 0, i64::MAX, 0)? as u64,
    };
    c.finish()?;
    let wired = connection.kind == crate::profile::ETHERNET;
    let vpn = if wired && !root.contains_key("vpn") {
        VpnSection::default()
    } else {
        if !root.contains_key("vpn") {
            return Err(ProfileError::section("vpn", "is required"));
        }
        let mut v = Sect::new(root, "vpn")?;
        let mut vpn = VpnSection {
            service_type: v.required("service-type")?,
            user_name: v.string("user-name")?.filter(|s| !s.is_empty()),
            data: v.string_map("data")?,
            secrets: v.string_map("secrets")?,
            persistent: v.boolean("persistent", false)?,
            timeout: v.int("timeout", 0, u32::MAX as i64, 0)? as u32,
        };
        // tinynm's options as keys of their own; the same as `data`'s `tinynm-*` entries.
        for (key, option) in TOML_OPTIONS {
            if v.get(key).is_none() {
                continue;
            }
            let on = if v.boolean(key, false)? { "yes" } else { "no" };
            if vpn.data.get(option).is_some_and(|d| d != on) {
                return Err(ProfileError::key(
                    "vpn",
                    key,
                    format!("contradicts data's '{option}'"),
                ));
            }
            vpn.data.insert(option.to_string(), on.to_string());
        }
        v.finish()?;
        vpn
    };
    let ethernet = if wired || root.contains_key("ethernet") {
        let mut e = Sect::new(root, "ethernet")?;
        let eth = EthernetSection {
            mac_address: e.string("mac-address")?.filter(|s| !s.is_empty()),
            mtu: e.int("mtu", 0, 65535, 0)? as u32,
        };
        e.finish()?;
        Some(eth)
    } else {
        None
    };
    let mut extra = BTreeMap::new();
    if let Some(x) = root.get("extra") {
        let t = x
            .as_table()
            .ok_or_else(|| ProfileError::section("extra", "expected a table"))?;
        for (k, v) in t {
            let hex = v
                .as_str()
                .ok_or_else(|| ProfileError::key("extra", k, "expected a string"))?;
            crate::dbus::decode_extra(hex).map_err(|why| ProfileError::key("extra", k, why))?;
            extra.insert(k.clone(), hex.to_string());
        }
    }
    let p = Profile {
        connection,
        vpn,
        ethernet,
        ipv4: read_ip(root, Family::V4)?,
        ipv6: read_ip(root, Family::V6)?,
        extra,
    };
    p.validate()?;
    Ok(p)
}

/// Reads, parses and validates a profile file; every error names the file.
pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let root: Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        ProfileError::Syntax {
            path: path.to_path_buf(),
            message: match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            },
        }
    })?;
    from_table(&root).map_err(|e| e.in_file(path))
}

fn ip_to_toml(s: &IpSection) -> Table {
    let mut t = Table::new();
    t.insert("method".into(), s.method.as_str().into());
    if s.never_default {
        t.insert("never-default".into(), true.into());
    }
    if s.route_metric != -1 {
        t.insert("route-metric".into(), s.route_metric.into());
    }
    if s.dns_priority != 0 {
        t.insert("dns-priority".into(), (s.dns_priority as i64).into());
    }
    if s.ignore_auto_routes {
        t.insert("ignore-auto-routes".into(), true.into());
    }
    if s.ignore_auto_dns {
        t.insert("ignore-auto-dns".into(), true.into());
    }
    if s.block_leaks {
        t.insert("block-leaks".into(), true.into());
    }
    if s.route_table != 0 {
        t.insert("route-table".into(), (s.route_table as i64).into());
    }
    if !s.routing_rules.is_empty() {
        let v: Vec<Value> = s
            .routing_rules
            .iter()
            .map(|r| r.to_string().into())
            .collect();
        t.insert("routing-rules".into(), v.into());
    }
    if !s.dns.is_empty() {
        let v: Vec<Value> = s.dns.iter().map(|a| a.to_string().into()).collect();
        t.insert("dns".into(), v.into());
    }
    if !s.dns_search.is_empty() {
        t.insert("dns-search".into(), s.dns_search.clone().into());
    }
    if !s.addresses.is_empty() {
        let v: Vec<Value> = s
            .addresses
            .iter()
            .map(|(a, l)| format!("{a}/{l}").into())
            .collect();
        t.insert("addresses".into(), v.into());
    }
    if let Some(g) = s.gateway {
        t.insert("gateway".into(), g.to_string().into());
    }
    if !s.may_fail {
        t.insert("may-fail".into(), false.into());
    }
    if !s.routes.is_empty() {
        let v: Vec<Value> = s
            .routes
            .iter()
            .map(|r| {
                let mut rt = Table::new();
                rt.insert("dest".into(), format!("{}/{}", r.dest, r.prefix).into());
                if let Some(n) = r.next_hop {
                    rt.insert("next-hop".into(), n.to_string().into());
                }
                if let Some(m) = r.metric {
                    rt.insert("metric".into(), (m as i64).into());
                }
                Value::Table(rt)
            })
            .collect();
        t.insert("routes".into(), v.into());
    }
    t
}

/// The profile as TOML text, secrets included (profile files are written mode 0600).
pub fn to_toml_string(p: &Profile) -> String {
    let mut root = Table::new();
    let mut c = Table::new();
    c.insert("id".into(), p.connection.id.clone().into());
    c.insert("uuid".into(), p.connection.uuid.clone().into());
    c.insert("type".into(), p.connection.kind.clone().into());
    c.insert("autoconnect".into(), p.connection.autoconnect.into());
    if !p.connection.permissions.is_empty() {
        c.insert(
            "permissions".into(),
            p.connection.permissions.clone().into(),
        );
    }
    if p.connection.timestamp != 0 {
        c.insert("timestamp".into(), (p.connection.timestamp as i64).into());
    }
    if p.connection.autoconnect_priority != 0 {
        c.insert(
            "autoconnect-priority".into(),
            (p.connection.autoconnect_priority as i64).into(),
        );
    }
    if p.connection.autoconnect_retries != -1 {
        c.insert(
            "autoconnect-retries".into(),
            (p.connection.autoconnect_retries as i64).into(),
        );
    }
    if let Some(i) = &p.connection.interface_name {
        c.insert("interface-name".into(), i.clone().into());
    }
    if !p.connection.secondaries.is_empty() {
        c.insert(
            "secondaries".into(),
            p.connection.secondaries.clone().into(),
        );
    }
    root.insert("connection".into(), c.into());
    if let Some(e) = &p.ethernet {
        let mut t = Table::new();
        if let Some(m) = &e.mac_address {
            t.insert("mac-address".into(), m.clone().into());
        }
        if e.mtu != 0 {
            t.insert("mtu".into(), (e.mtu as i64).into());
        }
        root.insert("ethernet".into(), t.into());
    }
    let mut v = Table::new();
    v.insert("service-type".into(), p.vpn.service_type.clone().into());
    if let Some(u) = &p.vpn.user_name {
        v.insert("user-name".into(), u.clone().into());
    }
    if p.vpn.persistent {
        v.insert("persistent".into(), true.into());
    }
    if p.vpn.timeout != 0 {
        v.insert("timeout".into(), (p.vpn.timeout as i64).into());
    }
    let map = |m: &BTreeMap<String, String>| -> Table {
        m.iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect()
    };
    let mut data = p.vpn.data.clone();
    for (key, option) in TOML_OPTIONS {
        if let Some(on) = data.remove(option) {
            v.insert(key.into(), (on == "yes").into());
        }
    }
    v.insert("data".into(), map(&data).into());
    if !p.vpn.secrets.is_empty() {
        v.insert("secrets".into(), map(&p.vpn.secrets).into());
    }
    if p.is_vpn() {
        root.insert("vpn".into(), v.into());
    }
    root.insert("ipv4".into(), ip_to_toml(&p.ipv4).into());
    root.insert("ipv6".into(), ip_to_toml(&p.ipv6).into());
    if !p.extra.is_empty() {
        root.insert("extra".into(), map(&p.extra).into());
    }
    toml::to_string(&root).expect("a TOML table always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[connection]
id = "work"
uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
autoconnect = false

[vpn]
service-type = "org.freedesktop.NetworkManager.tinynm-testbench"
data = { address = "10.8.0.2", routes = "3" }
secrets = { password = "s3cret" }

[ipv4]
route-metric = 70
routes = [{ dest = "10.50.0.0/16", next-hop = "10.8.0.1" }]
dns = ["10.8.0.1"]

[ipv6]
method = "ignore"
"#;

    #[test]
    fn round_trips() {
        let p = from_toml_str(GOOD).unwrap();
        assert_eq!(p.connection.id, "work");
        assert!(!p.connection.autoconnect);
        assert_eq!(p.ipv4.route_metric, 70);
        assert_eq!(p.ipv4.routes[0].prefix, 16);
        assert_eq!(p.ipv6.method, IpMethod::Other("ignore"));
        assert_eq!(p.vpn.secrets["password"], "s3cret");
        let again = from_toml_str(&to_toml_string(&p)).unwrap();
        assert_eq!(p, again);
    }

    #[test]
    fn kill_switch_is_a_key_of_its_own() {
        let text = GOOD.replace("[vpn]\n", "[vpn]\nkill-switch = true\n");
        let p = from_toml_str(&text).unwrap();
        assert!(p.vpn.option(crate::profile::TINYNM_KILL_SWITCH));
        assert!(!p.vpn.plugin_data().contains_key("tinynm-kill-switch"));
        let out = to_toml_string(&p);
        assert!(out.contains("kill-switch = true"), "{out}");
        assert_eq!(from_toml_str(&out).unwrap(), p);
        let both = text.replace(
            "routes = \"3\"",
            "routes = \"3\", tinynm-kill-switch = \"no\"",
        );
        assert_eq!(
            from_toml_str(&both).unwrap_err().to_string(),
            "[vpn] kill-switch: contradicts data's 'tinynm-kill-switch'"
        );
        let bad = GOOD.replace("[vpn]\n", "[vpn]\nkill-switch = \"yes\"\n");
        assert_eq!(
            from_toml_str(&bad).unwrap_err().to_string(),
            "[vpn] kill-switch: expected true or false, found a string"
        );
    }

    #[test]
    fn errors_name_section_and_key() {
        let bad = GOOD.replace("route-metric = 70", "route-metric = \"high\"");
        let e = from_toml_str(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "[ipv4] route-metric: expected an integer, found a string"
        );
        let bad = GOOD.replace("autoconnect = false", "autoconnect = false\ncolour = 1");
        let e = from_toml_str(&bad).unwrap_err().to_string();
        assert!(e.starts_with("[connection] colour: unknown key"), "{e}");
        let bad = GOOD.replace("1b4e28ba-2fa1", "nope");
        let e = from_toml_str(&bad).unwrap_err().to_string();
        assert!(e.starts_with("[connection] uuid: 'nope-11d2"), "{e}");
        let bad = GOOD.replace("10.50.0.0/16", "10.50.0.0/33");
        let e = from_toml_str(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "[ipv4] routes[0]: dest '10.50.0.0/33' is not ADDRESS/PREFIX"
        );
        let bad = GOOD.replace("service-type = ", "service = ");
        let e = from_toml_str(&bad).unwrap_err().to_string();
        assert_eq!(e, "[vpn] service-type: is required");
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.toml");
        std::fs::write(
            &f,
            GOOD.replace("method = \"ignore\"", "method = \"magic\""),
        )
        .unwrap();
        let e = load_file(&f).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: [ipv6] method: 'magic' is not a method (expected one of: auto, disabled, ignore, manual, link-local, shared)",
                f.display()
            )
        );
        std::fs::write(&f, "[connection\nid=1").unwrap();
        let e = load_file(&f).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: not valid TOML: line 1", f.display())),
            "{e}"
        );
    }
}
