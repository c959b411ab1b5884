//! The parts of NM's `a{sa{sv}}` that wired profiles add: `802-3-ethernet`, the connection's
//! autoconnect and secondaries properties, and static addresses and gateways.

use std::collections::HashMap;
use std::net::IpAddr;

use zbus::zvariant::{OwnedVariant, Variant};

use crate::dbus::{Reader, Setting, bytes_to_ip6, ip4_to_u32, ov, u32_to_ip4};
use crate::error::ProfileError;
use crate::profile::{ConnectionSection, EthernetSection, Family, IpSection};

/// `connection`'s wired-side properties into the dict.
pub(crate) fn connection_to_dict(c: &ConnectionSection, d: &mut Setting) {
    if c.autoconnect_priority != 0 {
        d.insert("autoconnect-priority".into(), ov(c.autoconnect_priority));
    }
    if c.autoconnect_retries != -1 {
        d.insert("autoconnect-retries".into(), ov(c.autoconnect_retries));
    }
    if let Some(i) = &c.interface_name {
        d.insert("interface-name".into(), ov(i.as_str()));
    }
    if !c.secondaries.is_empty() {
        d.insert("secondaries".into(), ov(c.secondaries.clone()));
    }
}

/// Reads them back.
pub(crate) fn connection_from_dict(
    r: &Reader<'_>,
    c: &mut ConnectionSection,
) -> Result<(), ProfileError> {
    c.autoconnect_priority = r.typed::<i32>("autoconnect-priority", "i")?.unwrap_or(0);
    c.autoconnect_retries = r.typed::<i32>("autoconnect-retries", "i")?.unwrap_or(-1);
    c.interface_name = r.string("interface-name")?.filter(|s| !s.is_empty());
    c.secondaries = r.strings("secondaries")?;
    Ok(())
}

/// The `802-3-ethernet` setting.
pub(crate) fn ethernet_to_dict(e: &EthernetSection) -> Setting {
    let mut d = Setting::new();
    if let Some(m) = &e.mac_address {
        d.insert("mac-address".into(), ov(mac_bytes(m)));
    }
    if e.mtu != 0 {
        d.insert("mtu".into(), ov(e.mtu));
    }
    d
}

/// Reads `802-3-ethernet`; a MAC address that is not 6 bytes is named.
pub(crate) fn ethernet_from_dict(r: &Reader<'_>) -> Result<EthernetSection, ProfileError> {
    let mac = match r.typed::<Vec<u8>>("mac-address", "ay")? {
        None => None,
        Some(b) if b.is_empty() => None,
        Some(b) if b.len() == 6 => Some(
            b.iter()
                .map(|x| format!("{x:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        Some(b) => {
            return Err(ProfileError::key(
                "802-3-ethernet",
                "mac-address",
                format!("{} bytes is not a MAC address (expected 6)", b.len()),
            ));
        }
    };
    Ok(EthernetSection {
        mac_address: mac,
        mtu: r.typed::<u32>("mtu", "u")?.unwrap_or(0),
    })
}

fn mac_bytes(m: &str) -> Vec<u8> {
    m.split(':')
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect()
}

/// Static addresses and the gateway, in both of NM's forms.
pub(crate) fn addresses_to_dict(s: &IpSection, fam: Family, d: &mut Setting) {
    let data: Vec<HashMap<String, OwnedVariant>> = s
        .addresses
        .iter()
        .map(|(a, l)| {
            HashMap::from([
                ("address".to_string(), ov(a.to_string())),
                ("prefix".to_string(), ov(u32::from(*l))),
            ])
        })
        .collect();
    d.insert("address-data".into(), ov(data));
    if let Some(g) = s.gateway {
        d.insert("gateway".into(), ov(g.to_string()));
    }
    match fam {
        Family::V4 => {
            let gw = match s.gateway {
                Some(IpAddr::V4(g)) => ip4_to_u32(g),
                _ => 0,
            };
            let legacy: Vec<Vec<u32>> = s
                .addresses
                .iter()
                .enumerate()
                .filter_map(|(i, (a, l))| match a {
                    IpAddr::V4(a) => Some(vec![
                        ip4_to_u32(*a),
                        u32::from(*l),
                        if i == 0 { gw } else { 0 },
                    ]),
                    _ => None,
                })
                .collect();
            d.insert("addresses".into(), ov(legacy));
        }
        Family::V6 => {
            let gw = match s.gateway {
                Some(IpAddr::V6(g)) => g.octets().to_vec(),
                _ => vec![0; 16],
            };
            let legacy: Vec<(Vec<u8>, u32, Vec<u8>)> = s
                .addresses
                .iter()
                .enumerate()
                .filter_map(|(i, (a, l))| match a {
                    IpAddr::V6(a) => Some((
                        a.octets().to_vec(),
                        u32::from(*l),
                        if i == 0 { gw.clone() } else { vec![0; 16] },
                    )),
                    _ => None,
                })
                .collect();
            d.insert("addresses".into(), ov(legacy));
        }
    }
}

/// Reads them back: the legacy form when it has entries (NM's preference, as for routes), else
/// `address-data`; `gateway`, else the legacy first address's gateway.
pub(crate) fn addresses_from_dict(
    r: &Reader<'_>,
    fam: Family,
    s: &mut IpSection,
) -> Result<(), ProfileError> {
    let sec = fam.section();
    let mut legacy_gw = None;
    let legacy: Vec<(IpAddr, u8)> = match fam {
        Family::V4 => r
            .typed::<Vec<Vec<u32>>>("addresses", "aau")?
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.len() >= 2)
            .enumerate()
            .map(|(i, a)| {
                if i == 0 && a.get(2).is_some_and(|g| *g != 0) {
                    legacy_gw = Some(IpAddr::V4(u32_to_ip4(a[2])));
                }
                (IpAddr::V4(u32_to_ip4(a[0])), a[1].min(255) as u8)
            })
            .collect(),
        Family::V6 => r
            .typed::<Vec<(Vec<u8>, u32, Vec<u8>)>>("addresses", "a(ayuay)")?
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, (a, l, g))| {
                if i == 0 {
                    legacy_gw = bytes_to_ip6(&g)
                        .filter(|g| !g.is_unspecified())
                        .map(IpAddr::V6);
                }
                Some((IpAddr::V6(bytes_to_ip6(&a)?), l.min(255) as u8))
            })
            .collect(),
    };
    s.addresses = if !legacy.is_empty() {
        legacy
    } else {
        let mut out = Vec::new();
        for (i, ad) in r
            .typed::<Vec<HashMap<String, OwnedVariant>>>("address-data", "aa{sv}")?
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let key = format!("address-data[{i}]");
            let err = |m: String| ProfileError::key(sec, &key, m);
            let a = match ad.get("address").map(|v| (**v).clone()) {
                Some(Variant::Str(a)) => a.to_string(),
                _ => return Err(err("'address' (a string) is required".into())),
            };
            let addr: IpAddr = a
                .parse()
                .map_err(|_| err(format!("'{a}' is not an IP address")))?;
            let prefix = match ad.get("prefix").map(|v| (**v).clone()) {
                Some(Variant::U32(p)) => p.min(255) as u8,
                _ => return Err(err("'prefix' (a uint32) is required".into())),
            };
            out.push((addr, prefix));
        }
        out
    };
    s.gateway = match r.string("gateway")?.filter(|g| !g.is_empty()) {
        Some(g) => Some(g.parse().map_err(|_| {
            ProfileError::key(sec, "gateway", format!("'{g}' is not an IP address"))
        })?),
        None => legacy_gw,
    };
    s.may_fail = r.boolean("may-fail")?.unwrap_or(true);
    Ok(())
}
