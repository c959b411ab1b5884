//! `vpn.data` (nm-openvpn-service's keys) to an `openvpn` command line. Every key is checked;
//! an unknown one, or a value of the wrong form, is an error naming it.

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

/// The keys this plugin understands (nm-openvpn-service's, less the proxy and exotic ones).
const KNOWN: &[&str] = &[
    "connection-type",
    "remote",
    "port",
    "proto-tcp",
    "dev",
    "dev-type",
    "ca",
    "cert",
    "key",
    "ta",
    "ta-dir",
    "tls-crypt",
    "cipher",
    "data-ciphers",
    "auth",
    "tun-mtu",
    "mssfix",
    "reneg-seconds",
    "ping",
    "ping-exit",
    "ping-restart",
    "connect-timeout",
    "username",
    "static-key",
    "static-key-direction",
    "local-ip",
    "remote-ip",
    "remote-cert-tls",
    "verify-x509-name",
    "comp-lzo",
    "compress",
    "password-flags",
    "cert-pass-flags",
    "challenge-response-flags",
];

fn number(data: &BTreeMap<String, String>, key: &str, max: u64) -> Result<Option<String>, String> {
    match data.get(key) {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= max => Ok(Some(n.to_string())),
            _ => Err(format!(
                "vpn.data {key}: '{v}' is not a number from 0 to {max}"
            )),
        },
    }
}

fn file(data: &BTreeMap<String, String>, key: &str) -> Result<Option<String>, String> {
    match data.get(key) {
        None => Ok(None),
        Some(f) if Path::new(f).is_absolute() => Ok(Some(f.clone())),
        Some(f) => Err(format!("vpn.data {key}: '{f}' is not an absolute path")),
    }
}

/// One `remote` entry: `host`, `host:port` or `host:port:proto`, as nm-openvpn-service reads
/// them (comma or space separated).
fn remotes(data: &BTreeMap<String, String>) -> Result<Vec<(String, String, String)>, String> {
    let Some(list) = data.get("remote").filter(|r| !r.trim().is_empty()) else {
        return Err("vpn.data remote: missing (the server to connect to)".into());
    };
    let port = number(data, "port", 65535)?.unwrap_or_else(|| "1194".into());
    let tcp = data.get("proto-tcp").is_some_and(|v| v == "yes");
    let mut out = Vec::new();
    for r in list.split([',', ' ']).filter(|r| !r.is_empty()) {
        let mut parts = r.split(':');
        let host = parts.next().unwrap_or_default().to_string();
        let p = parts.next().map(str::to_string).unwrap_or(port.clone());
        let proto = parts.next().map(str::to_string).unwrap_or_else(|| {
            if tcp {
                "tcp-client".into()
            } else {
                "udp".into()
            }
        });
        if host.is_empty() || p.parse::<u16>().is_err() || parts.next().is_some() {
            return Err(format!(
                "vpn.data remote: '{r}' is not HOST, HOST:PORT or HOST:PORT:PROTO"
            ));
        }
        if !matches!(
            proto.as_str(),
            "udp" | "udp4" | "udp6" | "tcp" | "tcp4" | "tcp6" | "tcp-client"
        ) {
            return Err(format!(
                "vpn.data remote: '{r}': unknown protocol '{proto}'"
            ));
        }
        let proto = if proto == "tcp" {
            "tcp-client".into()
        } else {
            proto
        };
        out.push((host, p, proto));
    }
    Ok(out)
}

/// The `openvpn` arguments for a profile's `vpn.data`. `up` is the `--up` command (the helper
/// with its own arguments); `mgmt` the management socket openvpn connects to.
pub fn build(
    data: &BTreeMap<String, String>,
    up: &str,
    mgmt: &Path,
) -> Result<Vec<String>, String> {
    if let Some(k) = data
        .keys()
        .find(|k| !KNOWN.contains(&k.as_str()) && !k.ends_with("-flags"))
    {
        return Err(format!("vpn.data {k}: property invalid or not supported"));
    }
    let kind = Kind::of(data)?;
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    for (host, port, proto) in remotes(data)? {
        push(&["--remote", &host, &port, &proto]);
    }
    push(&["--nobind"]);
    let dev_type = match data.get("dev-type").map(String::as_str) {
        None => None,
        Some(t @ ("tun" | "tap")) => Some(t),
        Some(t) => return Err(format!("vpn.data dev-type: '{t}' is not tun or tap")),
    };
    let dev = data.get("dev").cloned().unwrap_or_else(|| "tun".into());
    push(&["--dev", &dev]);
    if let Some(t) = dev_type {
        push(&["--dev-type", t]);
    }
    for (key, opt, max) in [
        ("tun-mtu", "--tun-mtu", 65535),
        ("mssfix", "--mssfix", 65535),
        ("reneg-seconds", "--reneg-sec", 604_800),
        ("ping", "--ping", 86_400),
        ("ping-exit", "--ping-exit", 86_400),
        ("ping-restart", "--ping-restart", 86_400),
        ("connect-timeout", "--connect-timeout", 86_400),
    ] {
        if let Some(n) = number(data, key, max)? {
            push(&[opt, &n]);
        }
    }
    for (key, opt) in [
        ("cipher", "--cipher"),
        ("data-ciphers", "--data-ciphers"),
        ("auth", "--auth"),
        ("remote-cert-tls", "--remote-cert-tls"),
    ] {
        if let Some(v) = data.get(key) {
            push(&[opt, v]);
        }
    }
    if let Some(v) = data.get("verify-x509-name") {
        // nm-openvpn-service's form: TYPE:NAME.
        let (t, n) = v
            .split_once(':')
            .ok_or_else(|| format!("vpn.data verify-x509-name: '{v}' is not TYPE:NAME"))?;
        push(&["--verify-x509-name", n, t]);
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
            let ca = file(data, "ca")?.ok_or("vpn.data ca: missing (the CA certificate)")?;
            push(&["--ca", &ca]);
            if kind.certs() {
                let cert = file(data, "cert")?.ok_or("vpn.data cert: missing")?;
                let key = file(data, "key")?.ok_or("vpn.data key: missing")?;
                push(&["--cert", &cert, "--key", &key]);
            }
            if let Some(ta) = file(data, "ta")? {
                push(&["--tls-auth", &ta]);
                if let Some(d) = data.get("ta-dir") {
                    if d != "0" && d != "1" {
                        return Err(format!("vpn.data ta-dir: '{d}' is not 0 or 1"));
                    }
                    push(&[d]);
                }
            }
            if let Some(tc) = file(data, "tls-crypt")? {
                push(&["--tls-crypt", &tc]);
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
    let mgmt = mgmt.to_str().ok_or("management socket path is not UTF-8")?;
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
            ("tun-mtu", "1400"),
        ]);
        let a = build(&d, "/h --bus-name x", Path::new("/run/m")).unwrap();
        let s = a.join(" ");
        assert!(s.starts_with("--remote vpn.example 1195 tcp-client --remote 10.0.0.1 1194 udp --nobind --dev tun --tun-mtu 1400"), "{s}");
        assert!(s.contains("--client --ca /etc/ca.crt --cert /etc/c.crt --key /etc/c.key --tls-auth /etc/ta.key 1"), "{s}");
        assert!(s.contains("--route-noexec --ifconfig-noexec"), "{s}");
        assert!(
            a.contains(&"/h --bus-name x".to_string()),
            "the --up command is one argument"
        );
    }

    #[test]
    fn bad_data_is_named() {
        let m = Path::new("/m");
        let e = |pairs: &[(&str, &str)]| build(&data(pairs), "/h", m).unwrap_err();
        assert_eq!(
            e(&[
                ("remote", "a"),
                ("ca", "/c"),
                ("cert", "/c"),
                ("key", "/k"),
                ("colour", "red")
            ]),
            "vpn.data colour: property invalid or not supported"
        );
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
        assert_eq!(
            e(&[
                ("remote", "a"),
                ("ca", "/c"),
                ("cert", "/c"),
                ("key", "/k"),
                ("ping", "-1")
            ]),
            "vpn.data ping: '-1' is not a number from 0 to 86400"
        );
    }
}
