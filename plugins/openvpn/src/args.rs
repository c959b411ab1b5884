//! `vpn.data` to an `openvpn` command line, with exactly the keys nm-openvpn-service 1.10.2
//! (Debian 12's) accepts (its `valid_properties` and `valid_secrets`), checked as it checks them (strings,
//! integers in a range, `yes`/`no` booleans, addresses), with the same meanings. An unknown
//! key, or a value of the wrong form, is an error naming it.

use std::collections::BTreeMap;
use std::path::Path;

/// The connection types nm-openvpn-service knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Certificates.
    Tls,
    /// Username and password.
    Password,
    /// Both.
    PasswordTls,
    /// A pre-shared static key.
    StaticKey,
}

impl Kind {
    /// From `connection-type` (default `tls`).
    pub fn of(data: &BTreeMap<String, String>) -> Result<Kind, String> {
        match data.get("connection-type").map(String::as_str) {
            None | Some("tls") => Ok(Kind::Tls),
            Some("password") => Ok(Kind::Password),
            Some("password-tls") => Ok(Kind::PasswordTls),
            Some("static-key") => Ok(Kind::StaticKey),
            Some(other) => Err(format!(
                "vpn.data connection-type: unknown type '{other}' (expected tls, password, password-tls or static-key)"
            )),
        }
    }

    /// Uses a username and password.
    pub fn password(self) -> bool {
        matches!(self, Kind::Password | Kind::PasswordTls)
    }

    /// Uses client certificates.
    pub fn certs(self) -> bool {
        matches!(self, Kind::Tls | Kind::PasswordTls)
    }
}

/// How nm-openvpn-service checks a key's value.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    /// An integer as `strtol` reads it, within the range.
    Int(i64, i64),
    /// `yes` or `no`.
    Bool,
    /// Letters, digits, `-` and `.`.
    Addr,
}

const MAX: i64 = i32::MAX as i64;

/// nm-openvpn-service 1.10.2's `valid_properties`, with their types (later releases add
/// `data-ciphers-fallback` and `challenge-response-flags`).
pub const DATA_KEYS: &[(&str, Ty)] = &[
    ("allow-compression", Ty::Str),
    ("allow-pull-fqdn", Ty::Bool),
    ("auth", Ty::Str),
    ("ca", Ty::Str),
    ("cert", Ty::Str),
    ("cipher", Ty::Str),
    ("keysize", Ty::Int(1, 65535)),
    ("compress", Ty::Str),
    ("comp-lzo", Ty::Str),
    ("connect-timeout", Ty::Int(0, MAX)),
    ("connection-type", Ty::Str),
    ("crl-verify-file", Ty::Str),
    ("crl-verify-dir", Ty::Str),
    ("data-ciphers", Ty::Str),
    ("extra-certs", Ty::Str),
    ("float", Ty::Bool),
    ("ncp-disable", Ty::Bool),
    ("fragment-size", Ty::Int(0, MAX)),
    ("key", Ty::Str),
    ("local-ip", Ty::Addr),
    ("mssfix", Ty::Str),
    ("mtu-disc", Ty::Str),
    ("ping", Ty::Int(0, MAX)),
    ("ping-exit", Ty::Int(0, MAX)),
    ("ping-restart", Ty::Int(0, MAX)),
    ("max-routes", Ty::Int(0, 100_000_000)),
    ("proto-tcp", Ty::Bool),
    ("port", Ty::Int(1, 65535)),
    ("proxy-type", Ty::Str),
    ("proxy-server", Ty::Str),
    ("proxy-port", Ty::Int(1, 65535)),
    ("proxy-retry", Ty::Bool),
    ("push-peer-info", Ty::Bool),
    ("http-proxy-username", Ty::Str),
    ("remote", Ty::Str),
    ("remote-random", Ty::Bool),
    ("remote-random-hostname", Ty::Bool),
    ("remote-ip", Ty::Addr),
    ("reneg-seconds", Ty::Int(0, MAX)),
    ("static-key", Ty::Str),
    ("static-key-direction", Ty::Int(0, 1)),
    ("ta", Ty::Str),
    ("ta-dir", Ty::Int(0, 1)),
    ("tap-dev", Ty::Bool),
    ("dev", Ty::Str),
    ("dev-type", Ty::Str),
    ("tun-ipv6", Ty::Str),
    ("tls-cipher", Ty::Str),
    ("tls-crypt", Ty::Str),
    ("tls-crypt-v2", Ty::Str),
    ("tls-remote", Ty::Str),
    ("verify-x509-name", Ty::Str),
    ("remote-cert-tls", Ty::Str),
    ("ns-cert-type", Ty::Str),
    ("tunnel-mtu", Ty::Int(0, MAX)),
    ("username", Ty::Str),
    ("password-flags", Ty::Str),
    ("cert-pass-flags", Ty::Str),
    ("no-secret", Ty::Str),
    ("http-proxy-password-flags", Ty::Str),
    ("tls-version-min", Ty::Str),
    ("tls-version-min-or-highest", Ty::Bool),
    ("tls-version-max", Ty::Str),
];

/// nm-openvpn-service 1.10.2's `valid_secrets`.
pub const SECRET_KEYS: &[&str] = &["password", "cert-pass", "no-secret", "http-proxy-password"];

/// `strtol(value, NULL, 10)`: leading blanks, a sign, digits; the rest ignored; none is 0.
fn strtol(v: &str) -> Option<i64> {
    let t = v.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return Some(0);
    }
    let n: i64 = digits[..end].parse().ok()?;
    Some(if neg { -n } else { n })
}

/// Checks `vpn.data` as nm-openvpn-service does: every key known, every value of its type.
pub fn validate(data: &BTreeMap<String, String>) -> Result<(), String> {
    if data.is_empty() {
        return Err("vpn.data: No VPN configuration options.".into());
    }
    for (k, v) in data {
        if k == "name" {
            continue;
        }
        let Some((_, ty)) = DATA_KEYS.iter().find(|(n, _)| n == k) else {
            return Err(format!("vpn.data {k}: property invalid or not supported"));
        };
        match ty {
            Ty::Str => {}
            Ty::Addr => {
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                {
                    return Err(format!("vpn.data {k}: invalid address '{v}'"));
                }
            }
            Ty::Int(lo, hi) => {
                if !strtol(v).is_some_and(|n| n >= *lo && n <= *hi) {
                    return Err(format!(
                        "vpn.data {k}: invalid integer property '{v}' or out of range [{lo} -> {hi}]"
                    ));
                }
            }
            Ty::Bool => {
                if v != "yes" && v != "no" {
                    return Err(format!(
                        "vpn.data {k}: invalid boolean property '{v}' (not yes or no)"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks `vpn.secrets` as nm-openvpn-service does: only its secret keys.
pub fn validate_secrets(secrets: &BTreeMap<String, String>) -> Result<(), String> {
    match secrets
        .keys()
        .find(|k| *k != "name" && !SECRET_KEYS.contains(&k.as_str()))
    {
        Some(k) => Err(format!(
            "vpn.secrets {k}: property invalid or not supported"
        )),
        None => Ok(()),
    }
}

fn yes(data: &BTreeMap<String, String>, key: &str) -> bool {
    data.get(key).is_some_and(|v| v == "yes")
}

/// A number argument: the whole value, as nm-openvpn-service normalises it.
fn number(data: &BTreeMap<String, String>, key: &str) -> Result<Option<String>, String> {
    match data.get(key) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) => Ok(Some(n.to_string())),
            Err(_) => Err(format!("vpn.data {key}: '{v}' is not a number")),
        },
    }
}

fn file(data: &BTreeMap<String, String>, key: &str) -> Result<Option<String>, String> {
    match data.get(key).filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some(f) if Path::new(f).is_absolute() => Ok(Some(f.clone())),
        Some(f) => Err(format!("vpn.data {key}: '{f}' is not an absolute path")),
    }
}

/// A PKCS#12 bundle (binary DER, not PEM): given to openvpn as `--pkcs12`.
fn is_pkcs12(path: &str) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head[0] == 0x30 && head[1] & 0x80 != 0)
}

/// Where the plugin's runtime files go for one connection.
pub struct Runtime<'a> {
    /// The management socket openvpn connects to.
    pub mgmt: &'a Path,
    /// The file with the HTTP proxy's username and password (written by the caller when
    /// `http-proxy-username` is set).
    pub proxy_auth: &'a Path,
}

/// The `openvpn` arguments for a profile's `vpn.data`. `up` is the `--up` command (the helper
/// with its own arguments).
pub fn build(
    data: &BTreeMap<String, String>,
    up: &str,
    rt: &Runtime<'_>,
) -> Result<Vec<String>, String> {
    validate(data)?;
    let kind = Kind::of(data)?;
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    for tinynm_config::endpoints::OpenvpnRemote { host, port, proto } in
        tinynm_config::endpoints::openvpn_remotes(data)?
    {
        push(&["--remote", &host, &port.to_string(), &proto]);
    }
    for (key, opt) in [
        ("remote-random", "--remote-random"),
        ("remote-random-hostname", "--remote-random-hostname"),
        ("allow-pull-fqdn", "--allow-pull-fqdn"),
        ("tun-ipv6", "--tun-ipv6"),
        ("float", "--float"),
        ("push-peer-info", "--push-peer-info"),
    ] {
        if yes(data, key) {
            push(&[opt]);
        }
    }
    push(&["--nobind"]);
    // The proxy, when there is one.
    match data.get("proxy-type").map(String::as_str) {
        None | Some("" | "none") => {}
        Some(t @ ("http" | "socks")) => {
            let server = data
                .get("proxy-server")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("vpn.data proxy-server: missing (proxy-type is {t})"))?;
            let port = number(data, "proxy-port")?
                .unwrap_or_else(|| if t == "http" { "8080" } else { "1080" }.into());
            if t == "http" {
                push(&["--http-proxy", server, &port]);
                if data.contains_key("http-proxy-username") {
                    let f = rt
                        .proxy_auth
                        .to_str()
                        .ok_or("proxy auth path is not UTF-8")?;
                    push(&[f, "basic"]);
                }
                if yes(data, "proxy-retry") {
                    push(&["--http-proxy-retry"]);
                }
            } else {
                push(&["--socks-proxy", server, &port]);
                if yes(data, "proxy-retry") {
                    push(&["--socks-proxy-retry"]);
                }
            }
        }
        Some(t) => return Err(format!("vpn.data proxy-type: '{t}' is not http or socks")),
    }
    // Compression, as nm-openvpn-service passes it.
    if let Some(v) = data.get("comp-lzo") {
        match v.as_str() {
            "no-by-default" => push(&["--comp-lzo", "no"]),
            "yes" | "no" | "adaptive" => push(&["--comp-lzo", v]),
            other => {
                return Err(format!(
                    "vpn.data comp-lzo: '{other}' is not yes, no, adaptive or no-by-default"
                ));
            }
        }
    }
    if let Some(v) = data.get("compress") {
        match v.as_str() {
            "" | "yes" => push(&["--compress"]),
            "lzo" | "lz4" | "lz4-v2" | "stub" | "stub-v2" => push(&["--compress", v]),
            "no" => {}
            other => {
                return Err(format!(
                    "vpn.data compress: '{other}' is not lzo, lz4, lz4-v2 or yes"
                ));
            }
        }
    }
    if let Some(v) = data.get("allow-compression") {
        match v.as_str() {
            "asym" | "no" | "yes" => push(&["--allow-compression", v]),
            other => {
                return Err(format!(
                    "vpn.data allow-compression: '{other}' is not asym, no or yes"
                ));
            }
        }
    }
    let dev_type = match data.get("dev-type").map(String::as_str) {
        None | Some("") => None,
        Some(t @ ("tun" | "tap")) => Some(t),
        Some(t) => return Err(format!("vpn.data dev-type: '{t}' is not tun or tap")),
    };
    let default_dev = if yes(data, "tap-dev") { "tap" } else { "tun" };
    let dev = data
        .get("dev")
        .filter(|d| !d.is_empty())
        .cloned()
        .unwrap_or_else(|| default_dev.into());
    push(&["--dev", &dev]);
    if let Some(t) = dev_type {
        push(&["--dev-type", t]);
    }
    match data.get("mssfix").map(String::as_str) {
        None | Some("" | "no") => {}
        Some("yes") => push(&["--mssfix"]),
        Some(_) => {
            let n = number(data, "mssfix")?.unwrap_or_default();
            push(&["--mssfix", &n]);
        }
    }
    if let Some(v) = data.get("mtu-disc") {
        match v.as_str() {
            "no" | "maybe" | "yes" => push(&["--mtu-disc", v]),
            other => {
                return Err(format!(
                    "vpn.data mtu-disc: '{other}' is not no, maybe or yes"
                ));
            }
        }
    }
    for (key, opt) in [
        ("tunnel-mtu", "--tun-mtu"),
        ("fragment-size", "--fragment"),
        ("reneg-seconds", "--reneg-sec"),
        ("ping", "--ping"),
        ("ping-exit", "--ping-exit"),
        ("ping-restart", "--ping-restart"),
        ("connect-timeout", "--connect-timeout"),
    ] {
        if let Some(n) = number(data, key)? {
            push(&[opt, &n]);
        }
    }
    for key in ["keysize", "max-routes", "ncp-disable"] {
        if data.contains_key(key) {
            // Options openvpn 2.6 no longer has (it refuses them): accepted, not passed.
            tracing::info!("vpn.data {key}: openvpn 2.6 has no such option: ignored");
        }
    }
    for (key, opt) in [
        ("cipher", "--cipher"),
        ("data-ciphers", "--data-ciphers"),
        ("auth", "--auth"),
        ("tls-cipher", "--tls-cipher"),
        ("tls-version-max", "--tls-version-max"),
        ("remote-cert-tls", "--remote-cert-tls"),
        ("ns-cert-type", "--ns-cert-type"),
        ("tls-remote", "--tls-remote"),
    ] {
        if let Some(v) = data.get(key).filter(|v| !v.is_empty()) {
            push(&[opt, v]);
        }
    }
    if let Some(v) = data.get("tls-version-min").filter(|v| !v.is_empty()) {
        push(&["--tls-version-min", v]);
        if yes(data, "tls-version-min-or-highest") {
            push(&["or-highest"]);
        }
    }
    if let Some(v) = data.get("verify-x509-name") {
        // nm-openvpn-service's form: TYPE:NAME.
        let (t, n) = v
            .split_once(':')
            .ok_or_else(|| format!("vpn.data verify-x509-name: '{v}' is not TYPE:NAME"))?;
        push(&["--verify-x509-name", n, t]);
    }
    if let Some(f) = file(data, "crl-verify-file")? {
        push(&["--crl-verify", &f]);
    } else if let Some(d) = file(data, "crl-verify-dir")? {
        push(&["--crl-verify", &d, "dir"]);
    }
    if let Some(f) = file(data, "extra-certs")? {
        push(&["--extra-certs", &f]);
    }
    match kind {
        Kind::StaticKey => {
            let key = file(data, "static-key")?
                .ok_or("vpn.data static-key: missing (the static key file)")?;
            push(&["--secret", &key]);
            if let Some(d) = data.get("static-key-direction") {
                push(&[d]);
            }
            let (Some(l), Some(r)) = (data.get("local-ip"), data.get("remote-ip")) else {
                return Err(
                    "vpn.data local-ip and remote-ip: both needed with a static key".into(),
                );
            };
            push(&["--ifconfig", l, r]);
        }
        _ => {
            push(&["--client"]);
            let ca = file(data, "ca")?;
            let cert = file(data, "cert")?;
            if let Some(ca) = ca.as_ref().filter(|c| !is_pkcs12(c)) {
                push(&["--ca", ca]);
            }
            if kind.certs() {
                let cert = cert.ok_or("vpn.data cert: missing")?;
                if is_pkcs12(&cert) {
                    push(&["--pkcs12", &cert]);
                } else {
                    let key = file(data, "key")?.ok_or("vpn.data key: missing")?;
                    push(&["--cert", &cert, "--key", &key]);
                }
            } else if ca.is_none() {
                return Err("vpn.data ca: missing (the CA certificate)".into());
            }
            if let Some(ta) = file(data, "ta")? {
                push(&["--tls-auth", &ta]);
                if let Some(d) = data.get("ta-dir") {
                    push(&[d]);
                }
            }
            if let Some(tc) = file(data, "tls-crypt")? {
                push(&["--tls-crypt", &tc]);
            }
            if let Some(tc) = file(data, "tls-crypt-v2")? {
                push(&["--tls-crypt-v2", &tc]);
            }
            if kind.password() {
                if data.get("username").is_none_or(|u| u.is_empty()) {
                    return Err("vpn.data username: missing (password authentication)".into());
                }
                // openvpn gives up on the first refusal (auth-retry none, its default).
                push(&["--auth-user-pass"]);
            }
        }
    }
    let mgmt = rt
        .mgmt
        .to_str()
        .ok_or("management socket path is not UTF-8")?;
    push(&[
        "--management",
        mgmt,
        "unix",
        "--management-client",
        "--management-hold",
        "--management-query-passwords",
        "--route-noexec",
        "--ifconfig-noexec",
        "--script-security",
        "2",
        "--up",
        up,
        "--up-restart",
        "--persist-key",
        "--persist-tun",
        "--machine-readable-output",
        "--verb",
        "3",
    ]);
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rt() -> Runtime<'static> {
        Runtime {
            mgmt: Path::new("/run/m"),
            proxy_auth: Path::new("/run/p"),
        }
    }

    #[test]
    fn tls_profile_becomes_a_client_command_line() {
        let d = data(&[
            ("connection-type", "tls"),
            ("remote", "vpn.example:1195:tcp, 10.0.0.1"),
            ("ca", "/etc/ca.crt"),
            ("cert", "/etc/c.crt"),
            ("key", "/etc/c.key"),
            ("ta", "/etc/ta.key"),
            ("ta-dir", "1"),
            ("tunnel-mtu", "1400"),
        ]);
        let a = build(&d, "/h --bus-name x", &rt()).unwrap();
        let s = a.join(" ");
        assert!(s.starts_with("--remote vpn.example 1195 tcp-client --remote 10.0.0.1 1194 udp --nobind --dev tun --tun-mtu 1400"), "{s}");
        assert!(s.contains("--client --ca /etc/ca.crt --cert /etc/c.crt --key /etc/c.key --tls-auth /etc/ta.key 1"), "{s}");
        assert!(s.contains("--route-noexec --ifconfig-noexec"), "{s}");
        assert!(
            a.contains(&"/h --bus-name x".to_string()),
            "the --up command is one argument"
        );
    }

    /// A value of the right type for each key, and the openvpn arguments it must give (empty:
    /// accepted, nothing passed, or checked elsewhere).
    fn sample(key: &str) -> (&'static str, &'static str) {
        match key {
            "allow-compression" => ("asym", "--allow-compression asym"),
            "allow-pull-fqdn" => ("yes", "--allow-pull-fqdn"),
            "auth" => ("SHA256", "--auth SHA256"),
            "ca" => ("/etc/ca.crt", "--ca /etc/ca.crt"),
            "cert" => ("/etc/c.crt", "--cert /etc/c.crt"),
            "cipher" => ("AES-256-GCM", "--cipher AES-256-GCM"),
            "keysize" => ("256", ""),
            "compress" => ("lz4-v2", "--compress lz4-v2"),
            "comp-lzo" => ("adaptive", "--comp-lzo adaptive"),
            "connect-timeout" => ("30", "--connect-timeout 30"),
            "connection-type" => ("tls", "--client"),
            "crl-verify-file" => ("/etc/crl.pem", "--crl-verify /etc/crl.pem"),
            "crl-verify-dir" => ("/etc/crl", "--crl-verify /etc/crl dir"),
            "data-ciphers" => (
                "AES-256-GCM:AES-128-GCM",
                "--data-ciphers AES-256-GCM:AES-128-GCM",
            ),
            "extra-certs" => ("/etc/extra.pem", "--extra-certs /etc/extra.pem"),
            "float" => ("yes", "--float"),
            "ncp-disable" => ("no", ""),
            "fragment-size" => ("1300", "--fragment 1300"),
            "key" => ("/etc/c.key", "--key /etc/c.key"),
            "local-ip" => ("10.8.0.2", ""),
            "mssfix" => ("1360", "--mssfix 1360"),
            "mtu-disc" => ("maybe", "--mtu-disc maybe"),
            "ping" => ("10", "--ping 10"),
            "ping-exit" => ("60", "--ping-exit 60"),
            "ping-restart" => ("120", "--ping-restart 120"),
            "max-routes" => ("500", ""),
            "proto-tcp" => ("yes", "--remote vpn.example 1194 tcp-client"),
            "port" => ("1195", "--remote vpn.example 1195 udp"),
            "proxy-type" => ("http", "--http-proxy proxy.example 8080"),
            "proxy-server" => ("proxy.example", ""),
            "proxy-port" => ("3128", "--http-proxy proxy.example 3128"),
            "proxy-retry" => ("yes", "--http-proxy-retry"),
            "push-peer-info" => ("yes", "--push-peer-info"),
            "http-proxy-username" => ("me", "--http-proxy proxy.example 8080 /run/p basic"),
            "remote" => ("vpn.example", "--remote vpn.example 1194 udp"),
            "remote-random" => ("yes", "--remote-random"),
            "remote-random-hostname" => ("yes", "--remote-random-hostname"),
            "remote-ip" => ("10.8.0.1", ""),
            "reneg-seconds" => ("3600", "--reneg-sec 3600"),
            "static-key" => ("/etc/static.key", ""),
            "static-key-direction" => ("1", ""),
            "ta" => ("/etc/ta.key", "--tls-auth /etc/ta.key"),
            "ta-dir" => ("0", ""),
            "tap-dev" => ("yes", "--dev tap"),
            "dev" => ("tun7", "--dev tun7"),
            "dev-type" => ("tun", "--dev-type tun"),
            "tun-ipv6" => ("yes", "--tun-ipv6"),
            "tls-cipher" => (
                "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
                "--tls-cipher TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
            ),
            "tls-crypt" => ("/etc/tc.key", "--tls-crypt /etc/tc.key"),
            "tls-crypt-v2" => ("/etc/tc2.key", "--tls-crypt-v2 /etc/tc2.key"),
            "tls-remote" => ("server", "--tls-remote server"),
            "verify-x509-name" => ("name:server", "--verify-x509-name server name"),
            "remote-cert-tls" => ("server", "--remote-cert-tls server"),
            "ns-cert-type" => ("server", "--ns-cert-type server"),
            "tunnel-mtu" => ("1400", "--tun-mtu 1400"),
            "username" => ("me", ""),
            "password-flags" => ("2", ""),
            "cert-pass-flags" => ("0", ""),
            "no-secret" => ("true", ""),
            "http-proxy-password-flags" => ("0", ""),
            "tls-version-min" => ("1.2", "--tls-version-min 1.2"),
            "tls-version-min-or-highest" => ("yes", ""),
            "tls-version-max" => ("1.3", "--tls-version-max 1.3"),
            other => panic!("no sample for {other}"),
        }
    }

    #[test]
    fn every_key_nm_openvpn_service_accepts_is_accepted_with_its_meaning() {
        assert_eq!(
            DATA_KEYS.len(),
            63,
            "nm-openvpn-service 1.10.2's valid_properties"
        );
        for (key, _) in DATA_KEYS {
            let (value, want) = sample(key);
            let mut d = data(&[
                ("remote", "vpn.example"),
                ("ca", "/etc/ca.crt"),
                ("cert", "/etc/c.crt"),
                ("key", "/etc/c.key"),
            ]);
            match *key {
                "proxy-port" | "proxy-retry" | "http-proxy-username" | "proxy-server" => {
                    d.insert("proxy-type".into(), "http".into());
                    d.insert("proxy-server".into(), "proxy.example".into());
                }
                "proxy-type" => {
                    d.insert("proxy-server".into(), "proxy.example".into());
                }
                "static-key" | "static-key-direction" | "local-ip" | "remote-ip" => {
                    d.insert("connection-type".into(), "static-key".into());
                    d.insert("static-key".into(), "/etc/static.key".into());
                    d.insert("local-ip".into(), "10.8.0.2".into());
                    d.insert("remote-ip".into(), "10.8.0.1".into());
                }
                "username" => {
                    d.insert("connection-type".into(), "password-tls".into());
                }
                "ta-dir" => {
                    d.insert("ta".into(), "/etc/ta.key".into());
                }
                _ => {}
            }
            d.insert(key.to_string(), value.to_string());
            let a = build(&d, "/h", &rt()).unwrap_or_else(|e| panic!("{key}={value}: {e}"));
            let s = a.join(" ");
            assert!(s.contains(want), "{key}={value}: wanted {want:?} in {s}");
        }
    }

    #[test]
    fn keys_and_values_nm_openvpn_service_refuses_are_refused_by_name() {
        let base = [("remote", "a"), ("ca", "/c"), ("cert", "/c"), ("key", "/k")];
        let e = |extra: &[(&str, &str)]| {
            let mut d = data(&base);
            d.extend(data(extra));
            build(&d, "/h", &rt()).unwrap_err()
        };
        assert_eq!(
            e(&[("tun-mtu", "1400")]),
            "vpn.data tun-mtu: property invalid or not supported"
        );
        assert_eq!(
            e(&[("colour-flags", "1")]),
            "vpn.data colour-flags: property invalid or not supported"
        );
        assert_eq!(
            e(&[("ping", "-1")]),
            "vpn.data ping: invalid integer property '-1' or out of range [0 -> 2147483647]"
        );
        assert_eq!(
            e(&[("float", "true")]),
            "vpn.data float: invalid boolean property 'true' (not yes or no)"
        );
        assert_eq!(
            e(&[("remote-ip", "10.0.0.1;rm")]),
            "vpn.data remote-ip: invalid address '10.0.0.1;rm'"
        );
        assert_eq!(
            e(&[("port", "0")]),
            "vpn.data port: invalid integer property '0' or out of range [1 -> 65535]"
        );
        assert_eq!(
            build(&BTreeMap::new(), "/h", &rt()).unwrap_err(),
            "vpn.data: No VPN configuration options."
        );
        assert_eq!(
            validate_secrets(&data(&[("password", "x"), ("pin", "1")])).unwrap_err(),
            "vpn.secrets pin: property invalid or not supported"
        );
        assert!(validate_secrets(&data(&[("password", "x"), ("cert-pass", "y")])).is_ok());
    }

    #[test]
    fn missing_and_malformed_required_data_is_named() {
        let e = |pairs: &[(&str, &str)]| build(&data(pairs), "/h", &rt()).unwrap_err();
        assert_eq!(
            e(&[("ca", "/c")]),
            "vpn.data remote: missing (the server to connect to)"
        );
        assert_eq!(
            e(&[("remote", "a:99999"), ("ca", "/c")]),
            "vpn.data remote: 'a:99999' is not HOST, HOST:PORT or HOST:PORT:PROTO"
        );
        assert_eq!(
            e(&[("remote", "a"), ("ca", "c.crt")]),
            "vpn.data ca: 'c.crt' is not an absolute path"
        );
        assert_eq!(
            e(&[
                ("connection-type", "password"),
                ("remote", "a"),
                ("ca", "/c")
            ]),
            "vpn.data username: missing (password authentication)"
        );
        assert_eq!(
            e(&[("connection-type", "magic"), ("remote", "a")]),
            "vpn.data connection-type: unknown type 'magic' (expected tls, password, password-tls or static-key)"
        );
    }

    #[test]
    fn strtol_reads_as_c_does() {
        assert_eq!(strtol(" 12abc"), Some(12));
        assert_eq!(strtol("-3"), Some(-3));
        assert_eq!(strtol("x"), Some(0));
        assert_eq!(strtol("99999999999999999999"), None);
    }
}
