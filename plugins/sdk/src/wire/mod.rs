//! The plugin's `Config`, `Ip4Config` and `Ip6Config` dictionaries (spec VPN-PROTOCOL.md §5):
//! typed values, parsing with NM's rules, and builders.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tinynm_config::dbus::ov;

use tinynm_config::dbus::{
    bytes_to_ip6, dns4_legacy, dns6_legacy, ip4_to_u32, route4_legacy, route6_legacy, u32_to_ip4,
};
use tinynm_config::profile::Family;
use zbus::OwnedVariant;

mod de;
pub use de::{READ_KEYS, WireDict, WireRoutes};

/// An `a{sv}` dictionary as it travels on the bus.
pub type Dict = HashMap<String, OwnedVariant>;

/// A dictionary that NM would refuse (the connection then fails with IP_CONFIG_INVALID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{dict}: {key}: {message}")]
pub struct ConfigError {
    /// `Config`, `Ip4Config` or `Ip6Config`.
    pub dict: &'static str,
    /// The key at fault.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// The generic `Config` signal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenericConfig {
    /// The VPN interface; `None` for route-based VPNs (config goes on the parent).
    pub tundev: Option<String>,
    /// The external VPN gateway.
    pub gateway: Option<IpAddr>,
    /// MTU for `tundev`.
    pub mtu: Option<u32>,
    /// Login banner.
    pub banner: String,
    /// An `Ip4Config` follows.
    pub has_ip4: bool,
    /// An `Ip6Config` follows.
    pub has_ip6: bool,
    /// The plugin can survive base-device changes.
    pub can_persist: bool,
}

/// A route pushed by the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginRoute {
    /// Destination (host bits cleared).
    pub dest: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Next hop, if any.
    pub next_hop: Option<IpAddr>,
    /// Preferred source, if any.
    pub pref_src: Option<IpAddr>,
}

/// `Ip4Config` or `Ip6Config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// Which family.
    pub family: Family,
    /// Our address on the tunnel.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// Point-to-point peer.
    pub ptp: Option<IpAddr>,
    /// Next hop of the default route.
    pub internal_gateway: Option<IpAddr>,
    /// Name servers.
    pub dns: Vec<IpAddr>,
    /// DNS domains (`domain` then `domains`).
    pub domains: Vec<String>,
    /// Routes, deduplicated in order.
    pub routes: Vec<PluginRoute>,
    /// No default route through the tunnel.
    pub never_default: bool,
    /// Keep the routes of the previous config.
    pub preserve_routes: bool,
    /// TCP advmss on the default route.
    pub mss: Option<u32>,
}

struct Get<'a> {
    dict: &'static str,
    d: &'a Dict,
}

impl Get<'_> {
    fn typed<T: TryFrom<OwnedVariant>>(
        &self,
        key: &str,
        sig: &str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(v) = self.d.get(key) else {
            return Ok(None);
        };
        let got = v.value_signature().to_string();
        let err = || ConfigError {
            dict: self.dict,
            key: key.to_string(),
            message: format!("expected D-Bus type '{sig}', got '{got}'"),
        };
        if got != sig {
            return Err(err());
        }
        T::try_from(v.try_clone().map_err(|_| err())?)
            .map(Some)
            .map_err(|_| err())
    }

    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            dict: self.dict,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// An address in the family's wire form (`u` or `ay`).
    fn addr(&self, key: &str, fam: Family) -> Result<Option<IpAddr>, ConfigError> {
        match fam {
            Family::V4 => Ok(self
                .typed::<u32>(key, "u")?
                .map(|v| IpAddr::V4(u32_to_ip4(v)))),
            Family::V6 => match self.typed::<Vec<u8>>(key, "ay")? {
                None => Ok(None),
                Some(b) => bytes_to_ip6(&b)
                    .map(|a| Some(IpAddr::V6(a)))
                    .ok_or_else(|| self.err(key, format!("expected 16 bytes, got {}", b.len()))),
            },
        }
    }
}

fn family_dict(family: Family) -> &'static str {
    match family {
        Family::V4 => "Ip4Config",
        Family::V6 => "Ip6Config",
    }
}

fn clear_host_bits(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let bits = u32::from(v);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v) => {
            let bits = u128::from(v);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix as u32)
            };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

impl GenericConfig {
    /// Parses a `Config` dict (also used on an `Ip4Config` that came without `Config`).
    pub fn parse(d: &Dict) -> Result<Self, ConfigError> {
        let g = Get { dict: "Config", d };
        let gateway = match g.d.get("gateway").map(|v| v.value_signature().to_string()) {
            None => None,
            Some(s) if s == "u" => g.addr("gateway", Family::V4)?,
            Some(s) if s == "ay" => g.addr("gateway", Family::V6)?,
            Some(s) => {
                return Err(g.err(
                    "gateway",
                    format!("expected D-Bus type 'u' or 'ay', got '{s}'"),
                ));
            }
        };
        let gateway = gateway.filter(|a| !a.is_unspecified());
        let tundev = g
            .typed::<String>("tundev", "s")?
            .filter(|t| !t.is_empty() && t != "_none_");
        if let Some(t) = &tundev
            && (t.len() > 15 || t.contains('/') || t.contains(char::is_whitespace))
        {
            return Err(g.err("tundev", format!("'{t}' is not a valid interface name")));
        }
        Ok(GenericConfig {
            tundev,
            gateway,
            mtu: g.typed::<u32>("mtu", "u")?.filter(|m| *m != 0),
            banner: g.typed::<String>("banner", "s")?.unwrap_or_default(),
            has_ip4: g.typed::<bool>("has-ip4", "b")?.unwrap_or(false),
            has_ip6: g.typed::<bool>("has-ip6", "b")?.unwrap_or(false),
            can_persist: g.typed::<bool>("can-persist", "b")?.unwrap_or(false),
        })
    }

    /// NM's rule: a config must name the external gateway.
    pub fn require_gateway(&self) -> Result<IpAddr, ConfigError> {
        self.gateway.ok_or_else(|| ConfigError {
            dict: "Config",
            key: "gateway".into(),
            message: "missing or zero: the external VPN gateway is required".into(),
        })
    }

    /// The dict form.
    pub fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        if let Some(t) = &self.tundev {
            d.insert("tundev".into(), ov(t.as_str()));
        }
        match self.gateway {
            Some(IpAddr::V4(a)) => {
                d.insert("gateway".into(), ov(ip4_to_u32(a)));
            }
            Some(IpAddr::V6(a)) => {
                d.insert("gateway".into(), ov(a.octets().to_vec()));
            }
            None => {}
        }
        if let Some(m) = self.mtu {
            d.insert("mtu".into(), ov(m));
        }
        if !self.banner.is_empty() {
            d.insert("banner".into(), ov(self.banner.as_str()));
        }
        d.insert("has-ip4".into(), ov(self.has_ip4));
        d.insert("has-ip6".into(), ov(self.has_ip6));
        if self.can_persist {
            d.insert("can-persist".into(), ov(true));
        }
        d
    }
}

impl IpConfig {
    /// Parses `Ip4Config`/`Ip6Config`. `Ok(None)` is an empty dict: the family is disabled.
    /// `external_gw` is the `Config` gateway: a host route to it is dropped, as NM does.
    pub fn parse(
        d: &Dict,
        family: Family,
        external_gw: Option<IpAddr>,
    ) -> Result<Option<Self>, ConfigError> {
        if d.is_empty() {
            return Ok(None);
        }
        let w = WireDict::from_dict(d).map_err(|message| ConfigError {
            dict: family_dict(family),
            key: String::new(),
            message,
        })?;
        Self::from_wire(w, family, external_gw)
    }

    /// As [`IpConfig::parse`], from a dict read off the message (see [`WireDict`]).
    pub fn from_wire(
        w: WireDict,
        family: Family,
        external_gw: Option<IpAddr>,
    ) -> Result<Option<Self>, ConfigError> {
        if w.entries == 0 {
            return Ok(None);
        }
        let d = &w.small;
        let g = Get {
            dict: family_dict(family),
            d,
        };
        let max = family.max_prefix();
        let address = g
            .addr("address", family)?
            .ok_or_else(|| g.err("address", "is required"))?;
        if address.is_unspecified() {
            return Err(g.err("address", format!("{address} is not a usable address")));
        }
        // NM's defaults when absent: 24 for IPv4, 128 for IPv6 (spec §5.2, §5.3).
        let default_prefix = match family {
            Family::V4 => 24,
            Family::V6 => 128,
        };
        let prefix = match g.typed::<u32>("prefix", "u")? {
            None => default_prefix,
            Some(p) if (1..=max as u32).contains(&p) => p as u8,
            Some(p) => {
                return Err(g.err(
                    "prefix",
                    format!("{p} is out of range (expected 1 to {max})"),
                ));
            }
        };
        let ptp = g
            .addr("ptp", family)?
            .filter(|a| !a.is_unspecified() && *a != address);
        let internal_gateway = g
            .addr("internal-gateway", family)?
            .filter(|a| !a.is_unspecified());
        let dns: Vec<IpAddr> = match family {
            Family::V4 => g
                .typed::<Vec<u32>>("dns", "au")?
                .unwrap_or_default()
                .into_iter()
                .map(|v| IpAddr::V4(u32_to_ip4(v)))
                .collect(),
            Family::V6 => g
                .typed::<Vec<Vec<u8>>>("dns", "aay")?
                .unwrap_or_default()
                .iter()
                .map(|b| {
                    bytes_to_ip6(b)
                        .map(IpAddr::V6)
                        .ok_or_else(|| g.err("dns", format!("expected 16 bytes, got {}", b.len())))
                })
                .collect::<Result<_, _>>()?,
        };
        let mut domains: Vec<String> = g.typed::<String>("domain", "s")?.into_iter().collect();
        domains.extend(g.typed::<Vec<String>>("domains", "as")?.unwrap_or_default());
        let mut routes = match (family, w.routes) {
            (_, None) => Vec::new(),
            (Family::V4, Some(WireRoutes::V4(r))) | (Family::V6, Some(WireRoutes::V6(r))) => r,
            (_, Some(other)) => {
                let want = match family {
                    Family::V4 => "aau",
                    Family::V6 => "a(ayuayu)",
                };
                let got = match other {
                    WireRoutes::V4(_) => "aau".to_string(),
                    WireRoutes::V6(_) => "a(ayuayu)".to_string(),
                    WireRoutes::Other(s) => s,
                };
                return Err(g.err(
                    "routes",
                    format!("expected D-Bus type '{want}', got '{got}'"),
                ));
            }
        };
        // In place: NM merges identical routes rather than failing on them.
        let mut seen = std::collections::HashSet::with_capacity(routes.len());
        routes.retain_mut(|r| {
            r.dest = clear_host_bits(r.dest, r.prefix);
            !(r.prefix == max && Some(r.dest) == external_gw) && seen.insert((r.dest, r.prefix))
        });
        drop(seen);
        routes.shrink_to_fit();
        Ok(Some(IpConfig {
            family,
            address,
            prefix,
            ptp,
            internal_gateway,
            dns,
            domains,
            routes,
            never_default: g.typed::<bool>("never-default", "b")?.unwrap_or(false),
            preserve_routes: g.typed::<bool>("preserve-routes", "b")?.unwrap_or(false),
            mss: g.typed::<u32>("mss", "u")?.filter(|m| *m != 0),
        }))
    }

    /// The dict form.
    pub fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        let put = |d: &mut Dict, k: &str, a: IpAddr| {
            let v = match a {
                IpAddr::V4(a) => ov(ip4_to_u32(a)),
                IpAddr::V6(a) => ov(a.octets().to_vec()),
            };
            d.insert(k.to_string(), v);
        };
        put(&mut d, "address", self.address);
        d.insert("prefix".into(), ov(self.prefix as u32));
        if let Some(p) = self.ptp {
            put(&mut d, "ptp", p);
        }
        if let Some(p) = self.internal_gateway {
            put(&mut d, "internal-gateway", p);
        }
        let (dns, routes) = match self.family {
            Family::V4 => (
                ov(dns4_legacy(&self.dns)),
                ov(self
                    .routes
                    .iter()
                    .filter_map(|r| route4_legacy(r.dest, r.prefix, r.next_hop, 0))
                    .collect::<Vec<_>>()),
            ),
            Family::V6 => (
                ov(dns6_legacy(&self.dns)),
                ov(self
                    .routes
                    .iter()
                    .filter_map(|r| route6_legacy(r.dest, r.prefix, r.next_hop, 0))
                    .collect::<Vec<_>>()),
            ),
        };
        if !self.dns.is_empty() {
            d.insert("dns".into(), dns);
        }
        if !self.routes.is_empty() {
            d.insert("routes".into(), routes);
        }
        if !self.domains.is_empty() {
            d.insert("domains".into(), ov(self.domains.clone()));
        }
        if self.never_default {
            d.insert("never-default".into(), ov(true));
        }
        if self.preserve_routes {
            d.insert("preserve-routes".into(), ov(true));
        }
        if let Some(m) = self.mss {
            d.insert("mss".into(), ov(m));
        }
        d
    }
}

#[cfg(test)]
mod tests;
