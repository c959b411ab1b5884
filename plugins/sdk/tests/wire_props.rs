//! Property tests for what a plugin sends: `Config`, `Ip4Config` and `Ip6Config` dicts of any
//! keys NM knows with values of any type parse to a config or to an error naming the dict and
//! the key; they never panic. What the SDK builds parses back as it was.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use tinynm_config::dbus::ov;
use tinynm_config::profile::Family;
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
    let key = proptest::sample::select(
        &[
            "gateway",
            "tundev",
            "mtu",
            "banner",
            "has-ip4",
            "has-ip6",
            "address",
            "prefix",
            "ptp",
            "dns",
            "domain",
            "domains",
            "nbns",
            "routes",
            "route-data",
            "never-default",
            "preserve-routes",
            "int-gateway",
            "mss",
        ][..],
    );
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
}
