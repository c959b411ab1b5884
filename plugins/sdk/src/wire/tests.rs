use super::*;

fn a4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn parses_nm_openvpn_capture() {
    // [live] Ip4Config from nm-openvpn-service (spec traces).
    let mut d = Dict::new();
    d.insert("address".into(), ov(33556490u32));
    d.insert("ptp".into(), ov(16779274u32));
    d.insert("prefix".into(), ov(32u32));
    d.insert("tundev".into(), ov("tun0"));
    d.insert("gateway".into(), ov(16802570u32));
    d.insert("mtu".into(), ov(1500u32));
    let c = IpConfig::parse(&d, Family::V4, None).unwrap().unwrap();
    assert_eq!(c.address, a4("10.8.0.2"));
    assert_eq!(c.ptp, Some(a4("10.8.0.1")));
    assert_eq!(c.prefix, 32);
    let g = GenericConfig::parse(&d).unwrap();
    assert_eq!(g.gateway, Some(a4("10.99.0.1")));
    assert_eq!(g.tundev.as_deref(), Some("tun0"));
}

#[test]
fn nm_rules() {
    let base = IpConfig {
        family: Family::V4,
        address: a4("10.8.0.2"),
        prefix: 24,
        ptp: None,
        internal_gateway: None,
        dns: vec![a4("10.8.0.1")],
        domains: vec![],
        routes: vec![
            PluginRoute {
                dest: a4("10.60.1.7"),
                prefix: 16,
                next_hop: None,
                pref_src: None,
            },
            PluginRoute {
                dest: a4("10.60.0.0"),
                prefix: 16,
                next_hop: None,
                pref_src: None,
            },
            PluginRoute {
                dest: a4("192.0.2.1"),
                prefix: 32,
                next_hop: None,
                pref_src: None,
            },
        ],
        never_default: false,
        preserve_routes: false,
        mss: None,
    };
    let d = base.to_dict();
    let c = IpConfig::parse(&d, Family::V4, Some(a4("192.0.2.1")))
        .unwrap()
        .unwrap();
    // host bits cleared, duplicates merged, the host route to the external gateway dropped
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].dest, a4("10.60.0.0"));
    let mut bad = d.clone();
    bad.insert("prefix".into(), ov(33u32));
    assert_eq!(
        IpConfig::parse(&bad, Family::V4, None)
            .unwrap_err()
            .to_string(),
        "Ip4Config: prefix: 33 is out of range (expected 1 to 32)"
    );
    let mut bad = d.clone();
    bad.insert("address".into(), ov(0u32));
    assert_eq!(
        IpConfig::parse(&bad, Family::V4, None)
            .unwrap_err()
            .to_string(),
        "Ip4Config: address: 0.0.0.0 is not a usable address"
    );
    let mut bad = d.clone();
    bad.insert("address".into(), ov("10.8.0.2"));
    assert_eq!(
        IpConfig::parse(&bad, Family::V4, None)
            .unwrap_err()
            .to_string(),
        "Ip4Config: address: expected D-Bus type 'u', got 's'"
    );
    let mut noprefix = d.clone();
    noprefix.remove("prefix");
    assert_eq!(
        IpConfig::parse(&noprefix, Family::V4, None)
            .unwrap()
            .unwrap()
            .prefix,
        24
    );
    assert_eq!(
        IpConfig::parse(&Dict::new(), Family::V4, None).unwrap(),
        None
    );
}

#[test]
fn ipv6_round_trip() {
    let c = IpConfig {
        family: Family::V6,
        address: "fd00:8::2".parse().unwrap(),
        prefix: 64,
        ptp: None,
        internal_gateway: Some("fd00:8::1".parse().unwrap()),
        dns: vec!["fd00:8::1".parse().unwrap()],
        domains: vec!["vpn.example".into()],
        routes: vec![PluginRoute {
            dest: "fd00:60::".parse().unwrap(),
            prefix: 48,
            next_hop: None,
            pref_src: None,
        }],
        never_default: true,
        preserve_routes: false,
        mss: None,
    };
    assert_eq!(
        IpConfig::parse(&c.to_dict(), Family::V6, None)
            .unwrap()
            .unwrap(),
        c
    );
}
