//! `tinynm connection import openvpn` against the real `nmcli connection import` (Debian's
//! network-manager-openvpn 1.10 editor plugin) on a corpus of `.ovpn` files in the shapes
//! providers publish: the same vpn.data keys and values, the same routes; the inline files with
//! the same contents, kept where tinynmd keeps its files; what nmcli drops named by line; what
//! nmcli refuses refused.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::World;
use tinynm_config::Profile;

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBCA0=\n-----END CERTIFICATE-----\n";
const TA: &str = "-----BEGIN OpenVPN Static key V1-----\n0123456789abcdef\n-----END OpenVPN Static key V1-----\n";

/// One file of the corpus: its name, its contents, the files beside it (name, contents).
type Case = (&'static str, String, Vec<(&'static str, &'static str)>);

/// The corpus.
fn corpus() -> Vec<Case> {
    vec![
        (
            // A commercial provider's single file: inline CA and tls-auth, user and password,
            // and the Windows-only and script directives nmcli drops.
            "provider",
            format!(
                "client\ndev tun\nproto udp\nremote vpn1.provider.example 1194\n\
                 remote vpn2.provider.example 1194\nremote-random\nresolv-retry infinite\n\
                 nobind\npersist-key\npersist-tun\nremote-cert-tls server\nauth SHA512\n\
                 cipher AES-256-CBC\ndata-ciphers AES-256-GCM:AES-128-GCM\n\
                 data-ciphers-fallback AES-256-CBC\ncomp-lzo no\nverb 3\nauth-user-pass\n\
                 setenv CLIENT_CERT 0\nblock-outside-dns\npull-filter ignore \"route-ipv6\"\n\
                 route-method exe\nscript-security 2\nup /etc/openvpn/update-resolv-conf\n\
                 down /etc/openvpn/update-resolv-conf\nsndbuf 524288\nrcvbuf 524288\n\
                 dhcp-option DNS 10.8.0.1\nkey-direction 1\n<ca>\n{CA}</ca>\n<tls-auth>\n{TA}</tls-auth>\n"
            ),
            vec![],
        ),
        (
            // A company's files beside the .ovpn: relative paths, an encrypted key, tls-crypt,
            // pushed and static routes, MTU tuning.
            "company",
            "client\ndev tun0\nproto udp4\nremote 192.0.2.10 1195\nca ca.crt\ncert client.crt\n\
             key client.key\ntls-crypt ta.key\ncompress lz4-v2\ntls-version-min 1.2 or-highest\n\
             tun-mtu 1400\ntun-mtu-extra 32\nmssfix 1360\nkeepalive 10 60\nreneg-sec 0\n\
             route 10.0.0.0 255.0.0.0\nroute 192.168.5.0 255.255.255.0 10.8.0.1 100\n\
             route 0.0.0.0 0.0.0.0\nverify-x509-name vpn.company.example name\n"
                .into(),
            vec![
                ("ca.crt", CA),
                ("client.crt", CA),
                (
                    "client.key",
                    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n",
                ),
                ("ta.key", TA),
            ],
        ),
        (
            // Over TCP through a proxy, with most of nm-openvpn's other options.
            "tcp-proxy",
            format!(
                "tls-client\npull\ndev-type tun\ndev vpn\nproto tcp-client\n\
                 remote gw.example 443 tcp\nhttp-proxy proxy.example 3128\nhttp-proxy-retry\n\
                 float\nns-cert-type server\nping 10\nping-restart 60\nping-exit 120\n\
                 connect-timeout 10\nfragment 1300\nmtu-disc yes\nallow-compression no\n\
                 compress\nmax-routes 200\ntun-ipv6\npush-peer-info\n\
                 tls-cipher TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384\ntls-version-max 1.3\n\
                 keysize 256\nremote-random-hostname\nallow-pull-fqdn\nport 8443\n\
                 auth-user-pass\n<ca>\n{CA}</ca>\n<cert>\n{CA}</cert>\n<key>\nKEY\n</key>\n\
                 <extra-certs>\n{CA}</extra-certs>\n<crl-verify>\nCRL\n</crl-verify>\n"
            ),
            vec![],
        ),
        (
            // A pre-shared static key, point to point.
            "static",
            "dev tun\nremote 198.51.100.7\nifconfig 10.9.0.2 10.9.0.1\nsecret static.key 1\n\
             cipher AES-256-CBC\n"
                .into(),
            vec![("static.key", TA)],
        ),
        (
            // PKCS#12 in one inline block; IPv6 servers; tls-crypt-v2.
            "pkcs12",
            format!(
                "client\nremote fd00::1 1194 udp6\nremote 2001:db8::2\nremote 2001:db8::3 443\n\
                 remote-cert-tls server\n<pkcs12>\nAAECAwQF\nBgcICQ==\n</pkcs12>\n\
                 <tls-crypt-v2>\n{TA}</tls-crypt-v2>\n"
            ),
            vec![],
        ),
    ]
}

/// nmcli refuses these; so does tinynm, with the line.
const REFUSED: &[(&str, &str, &str)] = &[
    ("no-ca", "client\nremote a\n", "missing --ca"),
    (
        "half",
        "client\nremote a\nca /c\ncert /d\n",
        "if you use one of --cert or --key, you must use them both",
    ),
    (
        "lzo",
        "client\nremote a\nca /c\ncomp-lzo maybe\n",
        "line 4: unsupported comp-lzo argument",
    ),
    (
        "netgw",
        "client\nremote a\nca /c\nroute 10.0.0.0 255.0.0.0 net_gateway\n",
        "line 4: unsupported 3th argument net_gateway to 'route'",
    ),
    (
        "blob",
        "client\nremote a\nca /c\n<connection>\nremote b\n</connection>\n",
        "line 4: unsupported blob/xml element <connection>",
    ),
];

/// `nmcli connection import type openvpn file F` on the world's bus, HOME in `home`.
fn nmcli_import(w: &World, f: &Path, home: &Path) -> Output {
    let bin = tinynm_sandbox::require_tool("nmcli", "network-manager").expect("nmcli");
    std::process::Command::new(bin)
        .args(["connection", "import", "type", "openvpn", "file"])
        .arg(f)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
        .env("HOME", home)
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .output()
        .unwrap()
}

async fn profile_named(w: &World, id: &str) -> Profile {
    for p in w.vpn_profiles().await {
        let d = w.profile_object(&p).await.get_settings().await.unwrap();
        let prof = tinynm_config::dbus::from_dict(&d).unwrap();
        if prof.connection.id == id {
            return prof;
        }
    }
    panic!("no profile '{id}'")
}

/// The keys whose values are files.
const FILE_KEYS: &[&str] = &[
    "ca",
    "cert",
    "key",
    "ta",
    "tls-crypt",
    "tls-crypt-v2",
    "extra-certs",
    "crl-verify-file",
    "static-key",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_profile_as_nmcli_imports() {
    assert!(
        Path::new("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name").exists(),
        "needs Debian's network-manager-openvpn (apt-get install -y network-manager-openvpn)"
    );
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let cert_dir = PathBuf::from(
        zbus::Proxy::new(
            &w.conn,
            "org.tinynm",
            "/org/tinynm/Settings",
            "org.tinynm.Settings",
        )
        .await
        .unwrap()
        .get_property::<String>("CertDir")
        .await
        .unwrap(),
    );
    for (name, body, extra) in corpus() {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for (f, c) in &extra {
            std::fs::write(dir.join(f), c).unwrap();
        }
        let f = dir.join(format!("{name}.ovpn"));
        std::fs::write(&f, &body).unwrap();

        let o = nmcli_import(&w, &f, &home);
        assert!(o.status.success(), "nmcli: {name}: {}", text(&o.stderr));
        let mine = format!("{name}-tinynm");
        let o = w.tinynm(&[
            "connection",
            "import",
            "openvpn",
            f.to_str().unwrap(),
            "--name",
            &mine,
        ]);
        assert!(o.status.success(), "tinynm: {name}: {}", text(&o.stderr));
        let warnings = text(&o.stderr);

        let theirs = profile_named(&w, name).await;
        let ours = profile_named(&w, &mine).await;
        // The same keys; the same values, but for the files nmcli writes under
        // ~/.cert/nm-openvpn and tinynmd under its own directory: there, the same contents.
        let keys = |p: &Profile| p.vpn.data.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ours), keys(&theirs), "{name}");
        let mut inline = 0;
        for (k, v) in &theirs.vpn.data {
            let o = &ours.vpn.data[k];
            if FILE_KEYS.contains(&k.as_str()) && v.starts_with(home.to_str().unwrap()) {
                inline += 1;
                assert!(
                    o.starts_with(cert_dir.to_str().unwrap()),
                    "{name}: {k} = {o}, not in tinynmd's {}",
                    cert_dir.display()
                );
                assert_eq!(
                    std::fs::read(o).unwrap(),
                    std::fs::read(v).unwrap(),
                    "{name}: {k}"
                );
                assert!(o.ends_with(&v[v.rfind('-').unwrap()..]), "{name}: {o} {v}");
            } else {
                assert_eq!(o, v, "{name}: {k}");
            }
        }
        assert_eq!(ours.ipv4.routes, theirs.ipv4.routes, "{name}");
        assert_eq!(ours.ipv4.never_default, theirs.ipv4.never_default, "{name}");
        match name {
            "provider" => {
                assert_eq!(inline, 2);
                // Beyond nmcli: the DNS the file names, and every dropped directive named.
                assert_eq!(
                    ours.ipv4.dns,
                    ["10.8.0.1".parse::<std::net::IpAddr>().unwrap()]
                );
                assert!(theirs.ipv4.dns.is_empty());
                for (line, d) in [
                    (15, "data-ciphers-fallback"),
                    (19, "setenv"),
                    (20, "block-outside-dns"),
                    (21, "pull-filter"),
                    (22, "route-method"),
                    (24, "up"),
                    (25, "down"),
                    (26, "sndbuf"),
                ] {
                    assert!(
                        warnings.contains(&format!("line {line}: '{d}' ignored: ")),
                        "{d}: {warnings}"
                    );
                }
                assert!(!warnings.contains("'nobind'"), "{warnings}");
            }
            "company" => {
                assert_eq!(ours.vpn.data["cert-pass-flags"], "1");
                assert_eq!(ours.vpn.data["ca"], dir.join("ca.crt").to_str().unwrap());
                assert!(
                    warnings.contains("line 12: 'tun-mtu-extra' ignored"),
                    "{warnings}"
                );
            }
            "tcp-proxy" => assert_eq!(inline, 5),
            "pkcs12" => assert_eq!(inline, 4),
            _ => {}
        }
    }

    // Refused by both: nothing added, nothing written.
    let before = w.vpn_profiles().await.len();
    let written = std::fs::read_dir(&cert_dir).unwrap().count();
    for (name, body, want) in REFUSED {
        let f = tmp.path().join(format!("{name}.ovpn"));
        std::fs::write(&f, body).unwrap();
        let o = nmcli_import(&w, &f, &home);
        assert!(!o.status.success(), "nmcli took {name}");
        let o = w.tinynm(&["connection", "import", "openvpn", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(want),
            "{name}: {}",
            text(&o.stderr)
        );
    }
    assert_eq!(w.vpn_profiles().await.len(), before);
    assert_eq!(std::fs::read_dir(&cert_dir).unwrap().count(), written);
}

/// Inline files go where tinynmd keeps its files (mode 0600), shown with their paths; another
/// file of the same name is refused, the first one untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_files_go_to_the_daemon_and_only_with_the_profile() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("inline.ovpn");
    std::fs::write(
        &f,
        format!(
            "client\nremote 192.0.2.1\n<ca>\n{CA}</ca>\nroute 10.7.0.0 255.255.0.0 vpn_gateway\n"
        ),
    )
    .unwrap();
    let o = w.tinynm(&[
        "connection",
        "import",
        "openvpn",
        f.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files: Vec<String> = serde_json::from_value(v["files"].clone()).unwrap();
    assert_eq!(files.len(), 1);
    let ca = PathBuf::from(&files[0]);
    assert_eq!(v["data"]["ca"], files[0]);
    assert!(ca.ends_with("inline-ca.pem"), "{ca:?}");
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), CA);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ca).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Beyond nmcli, which refuses it: a route through the VPN.
    let p = profile_named(&w, "inline").await;
    assert_eq!(p.ipv4.routes.len(), 1);
    assert_eq!(p.ipv4.routes[0].next_hop, None);

    // The same name again with other contents: refused, the first file untouched.
    let g = tmp.path().join("other").join("inline.ovpn");
    std::fs::create_dir(g.parent().unwrap()).unwrap();
    std::fs::write(&g, "client\nremote 192.0.2.1\n<ca>\nOTHER\n</ca>\n").unwrap();
    let o = w.tinynm(&["connection", "import", "openvpn", g.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("already exists with other contents"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), CA);
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for p in w.vpn_profiles().await {
        let d = w.profile_object(&p).await.get_settings().await.unwrap();
        let prof = tinynm_config::dbus::from_dict(&d).unwrap();
        *by_id.entry(prof.connection.id).or_default() += 1;
    }
    assert_eq!(by_id.get("inline"), Some(&1));
}
