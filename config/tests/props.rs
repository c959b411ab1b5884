//! Property tests for every parser of untrusted input in the config crate: keyfiles, TOML
//! profiles, `.ovpn` files, daemon.toml and NM's `a{sa{sv}}` settings. Whatever the input,
//! a parser returns a profile or an error naming what is wrong: it never panics; and what
//! tinynm writes reads back as it was.

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use tinynm_config::dbus::{from_dict, ov, to_dict};
use tinynm_config::keyfile::from_keyfile_str;
use tinynm_config::toml_profile::{from_toml_str, to_toml_string};
use tinynm_config::{DaemonConfig, Profile, ovpn};

/// Text made of lines that look like the format (so parsers get past their first line) and
/// lines of anything.
fn lines(vocabulary: &'static [&'static str]) -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => (proptest::sample::select(vocabulary), "[ -~]{0,24}")
            .prop_map(|(k, v)| format!("{k}{v}")),
        1 => "\\PC{0,40}",
    ];
    proptest::collection::vec(line, 0..24).prop_map(|v| v.join("\n"))
}

const KEYFILE: &[&str] = &[
    "[connection]",
    "[vpn]",
    "[vpn-secrets]",
    "[ipv4]",
    "[ipv6]",
    "id=",
    "uuid=",
    "type=vpn",
    "type=",
    "service-type=org.freedesktop.NetworkManager.openvpn",
    "permissions=",
    "autoconnect=",
    "method=",
    "address1=",
    "route1=",
    "dns=",
    "dns-search=",
    "never-default=",
    "remote=",
    "password-flags=",
];

const TOML: &[&str] = &[
    "[connection]",
    "[vpn]",
    "[vpn.data]",
    "[vpn.secrets]",
    "[ipv4]",
    "[ipv6]",
    "id = ",
    "uuid = ",
    "type = \"vpn\"",
    "service-type = ",
    "autoconnect = ",
    "permissions = ",
    "method = ",
    "addresses = ",
    "routes = ",
    "dns = ",
    "never-default = ",
    "timeout = ",
];

const OVPN: &[&str] = &[
    "client",
    "remote ",
    "proto ",
    "port ",
    "dev ",
    "dev-type ",
    "ca ",
    "cert ",
    "key ",
    "tls-auth ",
    "tls-crypt ",
    "secret ",
    "cipher ",
    "auth ",
    "tun-mtu ",
    "route ",
    "route-nopull",
    "redirect-gateway",
    "verify-x509-name ",
    "auth-user-pass",
    "<ca>",
    "</ca>",
    "<key>",
    "</key>",
    "key-direction ",
    "reneg-sec ",
    "comp-lzo ",
    "compress ",
    "dhcp-option DNS ",
    "dhcp-option DOMAIN ",
    "http-proxy ",
    "keepalive ",
    "tls-version-min ",
    "mode ",
    "<pkcs12>",
    "</pkcs12>",
    "\"",
    "'",
    "\\",
    "--",
    "\u{feff}",
];

const DAEMON: &[&str] = &[
    "bus = ",
    "state-dir = ",
    "log-level = ",
    "[timeouts]",
    "service-start = ",
    "plugin-call = ",
    "[dns]",
    "backend = ",
    "resolv-conf = ",
    "[authorization]",
    "secrets-file = ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn keyfiles_never_panic(text in lines(KEYFILE)) {
        let _ = from_keyfile_str(&text);
    }

    #[test]
    fn toml_profiles_never_panic(text in lines(TOML)) {
        let _ = from_toml_str(&text);
    }

    #[test]
    fn ovpn_files_never_panic_and_errors_name_a_line(text in lines(OVPN)) {
        match ovpn::import(&text, "x", "6a1b0c1e-4f8d-4e53-9d0a-2f1e0a0b0c0d", Path::new("/c")) {
            Ok(i) => prop_assert!(!i.profile.vpn.data.contains_key("tun-mtu")),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn ovpn_lines_split_as_openvpn_and_plain_words_come_back(
        text in "[a-z0-9 \"'\\#;-]{0,40}",
        plain in proptest::collection::vec("[a-z0-9./-]{1,8}", 0..5),
    ) {
        // Any line: words or an error, never a panic.
        let _ = ovpn::words(&text);
        // Words without quotes or escapes come back as they were.
        prop_assert_eq!(ovpn::words(&plain.join("  ")).unwrap(), plain);
    }

    #[test]
    fn daemon_toml_never_panics(text in lines(DAEMON)) {
        let _ = DaemonConfig::from_toml_str(&text, Path::new("/etc/tinynm/daemon.toml"));
    }

    #[test]
    fn settings_dicts_never_panic(d in settings()) {
        let _ = from_dict(&d);
    }

    #[test]
    fn a_profile_survives_toml_and_dbus(p in profile()) {
        let t = to_toml_string(&p);
        let back = from_toml_str(&t).map_err(|e| TestCaseError::fail(format!("{e}\n{t}")))?;
        prop_assert_eq!(&back, &p);
        let d = to_dict(&p, true);
        let back = from_dict(&d).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &p);
    }
}

/// A valid profile with arbitrary names, data and secrets.
fn profile() -> impl Strategy<Value = Profile> {
    let kv = proptest::collection::btree_map("[a-z][a-z0-9-]{0,12}", "[ -~]{0,20}", 0..6);
    (
        "[!-~][ -~]{0,19}",
        kv.clone(),
        kv,
        any::<bool>(),
        0u32..1000,
    )
        .prop_map(|(id, data, secrets, autoconnect, timeout)| {
            let mut p = Profile::new_vpn(
                &id,
                "6a1b0c1e-4f8d-4e53-9d0a-2f1e0a0b0c0d",
                "org.freedesktop.NetworkManager.openvpn",
            );
            p.connection.autoconnect = autoconnect;
            p.vpn.data = data;
            p.vpn.secrets = secrets;
            p.vpn.timeout = timeout;
            p
        })
}

/// `a{sa{sv}}` with NM's setting and key names and values of every type.
fn settings() -> impl Strategy<Value = tinynm_config::dbus::SettingsDict> {
    let value = prop_oneof![
        "[ -~]{0,16}".prop_map(ov),
        any::<u32>().prop_map(ov),
        any::<i32>().prop_map(ov),
        any::<bool>().prop_map(ov),
        any::<u64>().prop_map(ov),
        proptest::collection::vec(any::<u32>(), 0..4).prop_map(ov),
        proptest::collection::vec("[ -~]{0,8}", 0..4).prop_map(ov),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..17), 0..3).prop_map(ov),
        proptest::collection::hash_map("[a-z-]{1,8}", "[ -~]{0,8}", 0..4).prop_map(ov),
    ];
    let key = proptest::sample::select(
        &[
            "id",
            "uuid",
            "type",
            "autoconnect",
            "permissions",
            "timestamp",
            "service-type",
            "user-name",
            "data",
            "secrets",
            "persistent",
            "timeout",
            "method",
            "addresses",
            "address-data",
            "routes",
            "route-data",
            "dns",
            "dns-data",
            "dns-search",
            "never-default",
            "route-metric",
            "dns-priority",
            "gateway",
            "ignore-auto-dns",
            "routing-rules",
            "route-table",
            "may-fail",
        ][..],
    );
    let setting = proptest::collection::hash_map(key.prop_map(String::from), value, 0..8);
    let name = proptest::sample::select(&["connection", "vpn", "ipv4", "ipv6", "proxy"][..]);
    proptest::collection::hash_map(name.prop_map(String::from), setting, 0..5)
        .prop_map(|m| m.into_iter().collect::<HashMap<_, _>>())
}
