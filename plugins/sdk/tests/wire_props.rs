//! Property tests for what a plugin sends: `Config`, `Ip4Config` and `Ip6Config` dicts of any
//! keys NM knows with values of any type parse to a config or to an error naming the dict and
//! the key; they never panic. What the SDK builds parses back as it was.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use tinynm_config::dbus::ov;
use tinynm_config::profile::Family;
use tinynm_vpn_plugin::wire::{READ_KEYS, WireDict, WireRoutes};
use tinynm_vpn_plugin::{Dict, GenericConfig, IpConfig, PluginRoute};
use zbus::OwnedVariant;

fn value() -> impl Strategy<Value = OwnedVariant> {
    prop_oneof![
        any::<u32>().prop_map(ov),
        (0u32..=40).prop_map(ov),
        any::<i32>().prop_map(ov),
        any::<bool>().prop_map(ov),
        "[ -~]{0,16}".prop_map(ov),
        proptest::collection::vec(any::<u8>(), 0..17).prop_map(ov),
        proptest::collection::vec(any::<u32>(), 0..5).prop_map(ov),
        proptest::collection::vec(proptest::collection::vec(any::<u32>(), 0..5), 0..4).prop_map(ov),
        proptest::collection::vec("[ -~]{0,8}", 0..3).prop_map(ov),
        proptest::collection::vec(
            proptest::collection::hash_map("[a-z-]{1,8}", any::<u32>().prop_map(ov), 0..4),
            0..3
        )
        .prop_map(|v| {
            ov(v.into_iter()
                .map(|m| m.into_iter().collect::<HashMap<String, OwnedVariant>>())
                .collect::<Vec<_>>())
        }),
    ]
}

fn dict() -> impl Strategy<Value = Dict> {
    // Every key NM reads, `routes`, and keys it does not read (NM 1.42 reads no `route-data`).
    let keys: Vec<&'static str> = READ_KEYS
        .iter()
        .copied()
        .chain(["routes", "route-data", "nbns", "int-gateway"])
        .collect();
    let key = proptest::sample::select(keys);
    proptest::collection::hash_map(key.prop_map(String::from), value(), 0..10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn plugin_dicts_never_panic(d in dict()) {
        let _ = GenericConfig::parse(&d);
        for fam in [Family::V4, Family::V6] {
            if let Err(e) = IpConfig::parse(&d, fam, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))) {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn an_ip4_config_the_sdk_builds_parses_back(
        a in 0x0100_0000u32..0xdfff_ffff,
        prefix in 1u8..=32,
        routes in proptest::collection::vec((any::<u32>(), 1u8..=32), 0..50),
        never_default in any::<bool>(),
    ) {
        let mut seen = std::collections::HashSet::new();
        let routes: Vec<PluginRoute> = routes
            .into_iter()
            .map(|(d, p)| (d & (u32::MAX << (32 - u32::from(p))), p))
            .filter(|r| seen.insert(*r))
            .map(|(d, p)| PluginRoute {
                dest: IpAddr::V4(Ipv4Addr::from(d)),
                prefix: p,
                next_hop: None,
                pref_src: None,
            })
            .collect();
        let c = IpConfig {
            family: Family::V4,
            address: IpAddr::V4(Ipv4Addr::from(a)),
            prefix,
            ptp: None,
            internal_gateway: None,
            dns: vec![],
            domains: vec![],
            routes,
            never_default,
            preserve_routes: false,
            mss: None,
        };
        let back = IpConfig::parse(&c.to_dict(), Family::V4, None)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, Some(c));
    }

    /// The routes streamed off the wire are the ones NM reads from the `aau` array (entries of
    /// 4 or 5 numbers, prefix up to 32), in order; keys NM does not read are skipped unread.
    #[test]
    fn routes_are_read_off_the_wire_as_nm_reads_them(
        routes in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![any::<u32>(), 0u32..=40], 0..7),
            0..60,
        ),
        extra in any::<bool>(),
    ) {
        let mut d = Dict::new();
        d.insert("address".into(), ov(0x0a08_0002u32));
        d.insert("routes".into(), ov(routes.clone()));
        if extra {
            d.insert("route-data".into(), ov(vec![HashMap::from([("dest".to_string(), ov("10.0.0.0"))])]));
        }
        let w = WireDict::from_dict(&d).map_err(TestCaseError::fail)?;
        let ip = |v: u32| IpAddr::V4(tinynm_config::dbus::u32_to_ip4(v));
        let expected: Vec<PluginRoute> = routes
            .iter()
            .filter(|r| (r.len() == 4 || r.len() == 5) && r[1] <= 32)
            .map(|r| PluginRoute {
                dest: ip(r[0]),
                prefix: r[1] as u8,
                next_hop: (r[2] != 0).then(|| ip(r[2])),
                pref_src: r.get(4).filter(|s| **s != 0).map(|s| ip(*s)),
            })
            .collect();
        prop_assert_eq!(w.routes, Some(WireRoutes::V4(expected)));
        prop_assert_eq!(w.entries, 2 + usize::from(extra));
        prop_assert!(!w.small.contains_key("route-data"));
        prop_assert!(w.small.contains_key("address"));
    }
}
