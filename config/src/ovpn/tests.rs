use super::*;
use std::net::IpAddr;

const FILE: &str = "client\ndev tun\nproto udp\nremote vpn.example 1195\nremote 10.0.0.1\n\
    nobind\npersist-key\nca /etc/ca.crt\n<cert>\n-----BEGIN CERTIFICATE-----\nMIIB\n\
    -----END CERTIFICATE-----\n</cert>\n<key>\nK\n</key>\n<tls-auth>\nT\n</tls-auth>\n\
    key-direction 1\ncipher AES-256-GCM\nauth-user-pass\nroute 10.60.0.0 255.255.0.0 vpn_gateway\n\
    redirect-gateway def1\n";

fn imp(text: &str) -> Result<Imported, OvpnError> {
    import(text, "x", "u", Path::new("/c"))
}

#[test]
fn a_client_file_becomes_a_profile_and_its_inline_files() {
    let i = import(FILE, "office", "u-1", Path::new("/etc/tinynm/certs")).unwrap();
    let d = &i.profile.vpn.data;
    assert_eq!(d["remote"], "vpn.example:1195, 10.0.0.1");
    assert_eq!(d["connection-type"], "password-tls");
    assert_eq!(d["ca"], "/etc/ca.crt");
    assert_eq!(d["cert"], "/etc/tinynm/certs/office-cert.pem");
    assert_eq!(d["ta"], "/etc/tinynm/certs/office-tls-auth.pem");
    assert_eq!(d["ta-dir"], "1");
    assert_eq!(d["cipher"], "AES-256-GCM");
    assert_eq!(d["password-flags"], "1");
    assert_eq!(d["dev"], "tun");
    assert!(!d.contains_key("proto-tcp"));
    assert_eq!(i.profile.ipv4.routes.len(), 1);
    assert_eq!(i.profile.ipv4.routes[0].prefix, 16);
    assert!(!i.profile.ipv4.never_default, "as nmcli: through the VPN");
    assert_eq!(i.files.len(), 3);
    assert!(i.files[0].1.starts_with(b"-----BEGIN CERTIFICATE-----\n"));
    assert_eq!(
        i.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        [
            "line 24: 'redirect-gateway' ignored: the default route follows the profile's ipv4.never-default (false: all traffic through the VPN, as nmcli imports it)"
        ]
    );
}

#[test]
fn nm_openvpns_keys_and_values() {
    let i = imp(
        "client\nremote a\nca ca.crt\ntun-mtu 1400\ncomp-lzo\ncompress lz4-v2\nfloat\n\
         remote-random\nmssfix\nkeepalive 10 60\nconnect-timeout 5\nfragment 1300\n\
         tls-version-min 1.2 or-highest\nproto tcp-client\nifconfig 10.1.0.2 10.1.0.1\n\
         verify-x509-name srv name\nallow-compression asym\nport 443\n\
         tls-crypt-v2 /k.pem\nreneg-sec 0\n",
    )
    .unwrap();
    let d = &i.profile.vpn.data;
    for (k, v) in [
        ("tunnel-mtu", "1400"),
        ("comp-lzo", "adaptive"),
        ("compress", "lz4-v2"),
        ("float", "yes"),
        ("remote-random", "yes"),
        ("mssfix", "yes"),
        ("ping", "10"),
        ("ping-restart", "60"),
        ("connect-timeout", "5"),
        ("fragment-size", "1300"),
        ("tls-version-min", "1.2"),
        ("tls-version-min-or-highest", "yes"),
        ("proto-tcp", "yes"),
        ("local-ip", "10.1.0.2"),
        ("remote-ip", "10.1.0.1"),
        ("verify-x509-name", "name:srv"),
        ("allow-compression", "asym"),
        ("port", "443"),
        ("tls-crypt-v2", "/k.pem"),
        ("reneg-seconds", "0"),
        ("connection-type", "tls"),
    ] {
        assert_eq!(d.get(k).map(String::as_str), Some(v), "{k}: {d:?}");
    }
    assert!(!d.contains_key("tun-mtu"));
    // comp-lzo no is nm-openvpn's no-by-default.
    let i = imp("client\nremote a\nca c\ncomp-lzo no\n").unwrap();
    assert_eq!(i.profile.vpn.data["comp-lzo"], "no-by-default");
}

#[test]
fn relative_paths_are_taken_from_the_files_directory() {
    let i = import_from(
        "client\nremote a\nca ca.crt\ncert /abs/c.crt\nkey k.key\n",
        Source {
            name: "x",
            uuid: "u",
            cert_dir: Path::new("/c"),
            base_dir: Some(Path::new("/nonexistent/dir")),
        },
    )
    .unwrap();
    let d = &i.profile.vpn.data;
    assert_eq!(d["ca"], "/nonexistent/dir/ca.crt");
    assert_eq!(d["cert"], "/abs/c.crt");
    assert_eq!(d["key"], "/nonexistent/dir/k.key");
}

#[test]
fn dns_and_search_domains_go_into_the_profile() {
    let i = imp(
        "client\nremote a\nca c\ndhcp-option DNS 10.8.0.1\ndhcp-option DNS fd00::1\n\
         dhcp-option DOMAIN corp.example\ndhcp-option WINS 10.8.0.2\n",
    )
    .unwrap();
    assert_eq!(i.profile.ipv4.dns, ["10.8.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(i.profile.ipv6.dns, ["fd00::1".parse::<IpAddr>().unwrap()]);
    assert_eq!(i.profile.ipv4.dns_search, ["corp.example"]);
    assert_eq!(i.warnings.len(), 1);
    assert_eq!(i.warnings[0].line, 7);
}

#[test]
fn what_nmcli_drops_is_named_by_line() {
    let i = imp(
        "client\nremote a\nca c\nblock-outside-dns\npull-filter ignore \"dhcp-option\"\n\
         setenv CLIENT_CERT 0\nroute-method exe\nup /etc/up.sh\nsndbuf 0\ntun-mtu-extra 32\n\
         data-ciphers-fallback AES-128-CBC\nverb 3\nfrobnicate\n",
    )
    .unwrap();
    let lines: Vec<(usize, &str)> = i
        .warnings
        .iter()
        .map(|w| (w.line, w.directive.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (4, "block-outside-dns"),
            (5, "pull-filter"),
            (6, "setenv"),
            (7, "route-method"),
            (8, "up"),
            (9, "sndbuf"),
            (10, "tun-mtu-extra"),
            (11, "data-ciphers-fallback"),
            (13, "frobnicate"),
        ]
    );
}

#[test]
fn pkcs12_inline_is_decoded_and_names_ca_cert_and_key() {
    let i = imp("client\nremote a\n<pkcs12>\nAAEC\nAw==\n</pkcs12>\n").unwrap();
    let d = &i.profile.vpn.data;
    assert_eq!(d["cert"], "/c/x-pkcs12.pem");
    assert_eq!(d["ca"], d["cert"]);
    assert_eq!(d["key"], d["cert"]);
    assert_eq!(
        i.files,
        [(PathBuf::from("/c/x-pkcs12.pem"), vec![0, 1, 2, 3])]
    );
}

#[test]
fn what_nmcli_refuses_is_refused_by_line() {
    for (text, want) in [
        (
            "client\nremote a\nca c\nfragment x\n",
            "line 4: invalid 1th argument to 'fragment': 'x' is not a number from 0 to 65535",
        ),
        (
            "client\nremote a\n<ca>\nX\n",
            "line 3: unterminated blob element <ca>",
        ),
        (
            "client\nremote a\nca c\nroute 10.0.0.0 255.0.255.0\n",
            "line 4: route: '255.0.255.0' is not a netmask",
        ),
        (
            "client\nca c\n",
            "line 2: not a valid OpenVPN configuration (no remote)",
        ),
        (
            "remote a\nca c\n",
            "line 2: not an OpenVPN client configuration (no client, tls-client or secret)",
        ),
        (
            "client\nremote a\n",
            "line 2: not a valid OpenVPN configuration (missing --ca)",
        ),
        (
            "client\nremote a\nca c\ncert d\n",
            "line 4: if you use one of --cert or --key, you must use them both",
        ),
        (
            "client\nremote a\n<connection>\nremote b\n</connection>\n",
            "line 3: unsupported blob/xml element <connection>",
        ),
        (
            "client\nremote a\nca c\ncomp-lzo maybe\n",
            "line 4: unsupported comp-lzo argument",
        ),
        (
            "client\nremote a\nca c\nroute 10.0.0.0 255.0.0.0 net_gateway\n",
            "line 4: unsupported 3th argument net_gateway to 'route' (around the tunnel)",
        ),
        (
            "client\nremote a,b\nca c\n",
            "line 2: remote cannot contain comma",
        ),
        (
            "client\nremote a\nca c\nserver 10.8.0.0 255.255.255.0\n",
            "line 4: 'server' makes this a server's configuration: only client configurations are imported",
        ),
        ("client\nremote \"a\n", "line 2: unterminated double quote"),
    ] {
        assert_eq!(imp(text).unwrap_err().to_string(), want, "{text}");
    }
}

#[test]
fn ipv6_remotes_are_bracketed_as_nm_does() {
    let i = imp("client\nca c\nremote fd00::1 1194 udp6\nremote fd00::2\nremote fd00::3 443\n")
        .unwrap();
    assert_eq!(
        i.profile.vpn.data["remote"],
        "[fd00::1]:1194:udp6, [fd00::2]::, [fd00::3]:443:"
    );
}
