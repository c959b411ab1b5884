//! A plugin's dict read straight off the message: the few small keys that NM reads kept as
//! variants, `routes` streamed element by element into their compact typed form with NM's
//! per-route rules, and every other key skipped without being built. A VPN may push tens of
//! thousands of routes; a variant tree of them (an allocation per array and per number) is
//! what set the daemon's peak memory.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tinynm_config::dbus::{bytes_to_ip6, u32_to_ip4};
use zbus::{OwnedVariant, Signature, Type};

use super::{Dict, PluginRoute};

/// The keys of `Config`, `Ip4Config` and `Ip6Config` that are read, `routes` apart.
pub const READ_KEYS: &[&str] = &[
    "gateway",
    "tundev",
    "mtu",
    "banner",
    "has-ip4",
    "has-ip6",
    "can-persist",
    "address",
    "prefix",
    "ptp",
    "internal-gateway",
    "dns",
    "domain",
    "domains",
    "never-default",
    "preserve-routes",
    "mss",
];

/// A plugin's `a{sv}` as read off the bus.
#[derive(Debug, Default)]
pub struct WireDict {
    /// The keys read (but `routes`), as they came.
    pub small: Dict,
    /// `routes`, if present.
    pub routes: Option<WireRoutes>,
    /// How many keys it had, read or not (an empty dict disables a family).
    pub entries: usize,
}

/// The `routes` value.
#[derive(Debug, PartialEq, Eq)]
pub enum WireRoutes {
    /// `aau`: the entries of 4 or 5 elements with a prefix up to 32 (NM skips the others).
    V4(Vec<PluginRoute>),
    /// `a(ayuayu)`: the entries with a 16-byte destination and a prefix up to 128.
    V6(Vec<PluginRoute>),
    /// Another type: its signature (the dict is then refused).
    Other(String),
}

impl Type for WireDict {
    const SIGNATURE: &'static Signature = <Dict as Type>::SIGNATURE;
}

impl WireDict {
    /// The same reading of a dict already in memory (its routes are encoded once, then read
    /// as a message's are), so that both take one path.
    pub fn from_dict(d: &Dict) -> Result<Self, String> {
        let ctx = zbus::wire::serialized::Context::new(zbus::wire::Endian::Little, 0);
        let bytes = zbus::wire::to_bytes(ctx, d).map_err(|e| e.to_string())?;
        bytes
            .deserialize::<WireDict>()
            .map(|(w, _)| w)
            .map_err(|e| e.to_string())
    }
}

impl<'de> Deserialize<'de> for WireDict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(DictVisitor)
    }
}

struct DictVisitor;

impl<'de> Visitor<'de> for DictVisitor {
    type Value = WireDict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a{sv}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<WireDict, A::Error> {
        let mut w = WireDict::default();
        while let Some(k) = m.next_key::<String>()? {
            w.entries += 1;
            if k == "routes" {
                w.routes = Some(m.next_value_seed(RoutesSeed)?);
            } else if READ_KEYS.contains(&k.as_str()) {
                let v = m.next_value::<OwnedVariant>()?;
                w.small.insert(k, v);
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(w)
    }
}

/// The variant under `routes`: its signature, then the array in the form it names.
struct RoutesSeed;

impl<'de> DeserializeSeed<'de> for RoutesSeed {
    type Value = WireRoutes;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<WireRoutes, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RoutesSeed {
    type Value = WireRoutes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a variant")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<WireRoutes, A::Error> {
        let sig: Signature = s
            .next_element()?
            .ok_or_else(|| de::Error::custom("a variant without a signature"))?;
        let sig = sig.to_string();
        let routes = match sig.as_str() {
            "aau" => WireRoutes::V4(s.next_element_seed(List(Entry4))?.unwrap_or_default()),
            "a(ayuayu)" => WireRoutes::V6(s.next_element_seed(List(Entry6))?.unwrap_or_default()),
            _ => {
                s.next_element::<IgnoredAny>()?;
                WireRoutes::Other(sig)
            }
        };
        Ok(routes)
    }
}

/// An array whose entries `E` reads one at a time, keeping those it returns.
struct List<E>(E);

impl<'de, E: DeserializeSeed<'de, Value = Option<PluginRoute>> + Copy> DeserializeSeed<'de>
    for List<E>
{
    type Value = Vec<PluginRoute>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, E: DeserializeSeed<'de, Value = Option<PluginRoute>> + Copy> Visitor<'de> for List<E> {
    type Value = Vec<PluginRoute>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of routes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(s.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(r) = s.next_element_seed(self.0)? {
            out.extend(r);
        }
        out.shrink_to_fit();
        Ok(out)
    }
}

/// One `au` route: `[dest, prefix, next_hop, metric]` with an optional `pref_src`.
#[derive(Clone, Copy)]
struct Entry4;

impl<'de> DeserializeSeed<'de> for Entry4 {
    type Value = Option<PluginRoute>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entry4 {
    type Value = Option<PluginRoute>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("au")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        let mut f = [0u32; 5];
        let mut n = 0usize;
        while let Some(x) = s.next_element::<u32>()? {
            if let Some(slot) = f.get_mut(n) {
                *slot = x;
            }
            n += 1;
        }
        if !(n == 4 || n == 5) || f[1] > 32 {
            return Ok(None);
        }
        let ip = |v: u32| IpAddr::V4(u32_to_ip4(v));
        Ok(Some(PluginRoute {
            dest: ip(f[0]),
            prefix: f[1] as u8,
            next_hop: (f[2] != 0).then(|| ip(f[2])),
            pref_src: (n == 5 && f[4] != 0).then(|| ip(f[4])),
        }))
    }
}

/// One `(ayuayu)` route: `(dest, prefix, next_hop, metric)`.
#[derive(Clone, Copy)]
struct Entry6;

impl<'de> DeserializeSeed<'de> for Entry6 {
    type Value = Option<PluginRoute>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let (dst, p, nh, _metric) = <(Vec<u8>, u32, Vec<u8>, u32)>::deserialize(d)?;
        let Some(dst) = bytes_to_ip6(&dst) else {
            return Ok(None);
        };
        if p > 128 {
            return Ok(None);
        }
        Ok(Some(PluginRoute {
            dest: IpAddr::V6(dst),
            prefix: p as u8,
            next_hop: bytes_to_ip6(&nh)
                .filter(|a: &Ipv6Addr| !a.is_unspecified())
                .map(IpAddr::V6),
            pref_src: None,
        }))
    }
}
