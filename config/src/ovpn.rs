//! `.ovpn` client configuration files to OpenVPN profiles (nm-openvpn-service's `vpn.data`
//! keys). Inline material (`<ca>…</ca>` and the like) becomes files to write next to the
//! profile; every directive is either understood, known to need nothing, or an error naming
//! its line — nothing is dropped silently.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::profile::{Profile, StaticRoute};

/// The OpenVPN plugins' service name.
pub const OPENVPN: &str = "org.freedesktop.NetworkManager.openvpn";

/// What an import gives: the profile, and the inline files it refers to (to write, mode 0600,
/// at these paths before the profile is used).
#[derive(Debug)]
pub struct Imported {
    /// The profile.
    pub profile: Profile,
    /// (path, contents) of each inline block.
    pub files: Vec<(PathBuf, String)>,
}

/// Why a file could not be imported: its line and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct OvpnError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Directives a client needs nothing for: NM's plugins pass their own equivalents or none.
const NEUTRAL: &[&str] = &[
    "client",
    "pull",
    "tls-client",
    "nobind",
    "persist-key",
    "persist-tun",
    "verb",
    "mute",
    "mute-replay-warnings",
    "resolv-retry",
    "auth-nocache",
    "script-security",
    "explicit-exit-notify",
    "remote-random",
    "float",
    "route-delay",
    "user",
    "group",
];

fn err(line: usize, message: impl Into<String>) -> OvpnError {
    OvpnError {
        line,
        message: message.into(),
    }
}

fn netmask_prefix(line: usize, m: &str) -> Result<u8, OvpnError> {
    let mask: Ipv4Addr = m
        .parse()
        .map_err(|_| err(line, format!("route: '{m}' is not a netmask")))?;
    let bits = u32::from(mask);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err(err(line, format!("route: '{m}' is not a netmask")));
    }
    Ok(bits.leading_ones() as u8)
}

/// Imports `text` (the file's contents) as a profile called `name`; inline blocks go to
/// `cert_dir/<name>-<kind>.pem`.
pub fn import(text: &str, name: &str, uuid: &str, cert_dir: &Path) -> Result<Imported, OvpnError> {
    let mut p = Profile::new_vpn(name, uuid, OPENVPN);
    let mut d: BTreeMap<String, String> = BTreeMap::new();
    let mut files = Vec::new();
    let mut remotes: Vec<String> = Vec::new();
    let mut port: Option<String> = None;
    let mut proto: Option<(usize, String)> = None;
    let mut auth_user_pass = false;
    let mut redirect = false;
    let mut key_direction: Option<String> = None;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((n, raw)) = lines.next() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        // An inline block: <tag> … </tag>.
        if let Some(tag) = l.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            let key = match tag {
                "ca" => "ca",
                "cert" => "cert",
                "key" => "key",
                "tls-auth" => "ta",
                "tls-crypt" => "tls-crypt",
                "secret" => "static-key",
                other => return Err(err(n, format!("inline <{other}> is not supported"))),
            };
            let mut body = String::new();
            let close = format!("</{tag}>");
            let mut closed = false;
            for (_, b) in lines.by_ref() {
                if b.trim() == close {
                    closed = true;
                    break;
                }
                body.push_str(b);
                body.push('\n');
            }
            if !closed {
                return Err(err(n, format!("<{tag}> is never closed by {close}")));
            }
            let path = cert_dir.join(format!("{name}-{tag}.pem"));
            d.insert(key.into(), path.display().to_string());
            files.push((path, body));
            continue;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        let (dir, args) = (words[0], &words[1..]);
        let one = |what: &str| -> Result<String, OvpnError> {
            match args {
                [a] => Ok(a.to_string()),
                _ => Err(err(n, format!("{dir}: expected one {what}"))),
            }
        };
        match dir {
            d0 if NEUTRAL.contains(&d0) => {}
            "remote" => {
                let (host, rest) = args
                    .split_first()
                    .ok_or_else(|| err(n, "remote: expected HOST [PORT] [PROTO]"))?;
                let mut r = host.to_string();
                match rest {
                    [] => {}
                    [p] => r = format!("{r}:{p}"),
                    [p, pr] => r = format!("{r}:{p}:{pr}"),
                    _ => return Err(err(n, "remote: expected HOST [PORT] [PROTO]")),
                }
                remotes.push(r);
            }
            "port" | "rport" => port = Some(one("port")?),
            "proto" => proto = Some((n, one("protocol")?)),
            "dev" => {
                let dev = one("device")?;
                if dev.starts_with("tap") {
                    d.insert("dev-type".into(), "tap".into());
                }
                d.insert("dev".into(), dev);
            }
            "dev-type" => {
                d.insert("dev-type".into(), one("tun or tap")?);
            }
            "ca" | "cert" | "key" | "tls-crypt" => {
                let f = one("file")?;
                d.insert(dir.into(), f);
            }
            "tls-auth" => match args {
                [f] => {
                    d.insert("ta".into(), f.to_string());
                }
                [f, dirn] => {
                    d.insert("ta".into(), f.to_string());
                    d.insert("ta-dir".into(), dirn.to_string());
                }
                _ => return Err(err(n, "tls-auth: expected FILE [DIRECTION]")),
            },
            "key-direction" => key_direction = Some(one("direction")?),
            "secret" => match args {
                [f] => {
                    d.insert("static-key".into(), f.to_string());
                }
                [f, dirn] => {
                    d.insert("static-key".into(), f.to_string());
                    d.insert("static-key-direction".into(), dirn.to_string());
                }
                _ => return Err(err(n, "secret: expected FILE [DIRECTION]")),
            },
            "cipher" | "auth" => {
                d.insert(dir.into(), one("name")?);
            }
            "data-ciphers" => {
                d.insert(dir.into(), one("list")?);
            }
            "tun-mtu" | "mssfix" | "ping" | "ping-restart" | "ping-exit" | "connect-timeout" => {
                let v = one("number")?;
                if v.parse::<u32>().is_err() {
                    return Err(err(n, format!("{dir}: '{v}' is not a number")));
                }
                // NM's key for openvpn's --tun-mtu is `tunnel-mtu`.
                let key = if dir == "tun-mtu" { "tunnel-mtu" } else { dir };
                d.insert(key.into(), v);
            }
            "reneg-sec" => {
                let v = one("number")?;
                if v.parse::<u32>().is_err() {
                    return Err(err(n, format!("{dir}: '{v}' is not a number")));
                }
                d.insert("reneg-seconds".into(), v);
            }
            "remote-cert-tls" => {
                d.insert(dir.into(), one("server or client")?);
            }
            "verify-x509-name" => {
                let (name_, kind) = match args {
                    [nm] => (nm.to_string(), "subject".to_string()),
                    [nm, k] => (nm.to_string(), k.to_string()),
                    _ => return Err(err(n, "verify-x509-name: expected NAME [TYPE]")),
                };
                d.insert(dir.into(), format!("{kind}:{name_}"));
            }
            "auth-user-pass" => {
                if args.len() > 1 {
                    return Err(err(n, "auth-user-pass: expected at most one file"));
                }
                auth_user_pass = true;
            }
            "redirect-gateway" => redirect = true,
            "route" => {
                let (net, mask, gw, metric) = match args {
                    [net] => (*net, "255.255.255.255", None, None),
                    [net, mask] => (*net, *mask, None, None),
                    [net, mask, gw] => (*net, *mask, Some(*gw), None),
                    [net, mask, gw, m] => (*net, *mask, Some(*gw), Some(*m)),
                    _ => {
                        return Err(err(
                            n,
                            "route: expected NETWORK [NETMASK [GATEWAY [METRIC]]]",
                        ));
                    }
                };
                let dest: IpAddr = net
                    .parse()
                    .map_err(|_| err(n, format!("route: '{net}' is not an IPv4 address")))?;
                let prefix = netmask_prefix(n, mask)?;
                let next_hop = match gw {
                    None | Some("vpn_gateway") | Some("default") => None,
                    Some("net_gateway") => {
                        return Err(err(
                            n,
                            "route: net_gateway (around the tunnel) is not supported",
                        ));
                    }
                    Some(g) => Some(
                        g.parse::<IpAddr>()
                            .map_err(|_| err(n, format!("route: '{g}' is not a gateway")))?,
                    ),
                };
                let metric = match metric {
                    None | Some("default") => None,
                    Some(m) => Some(
                        m.parse::<u32>()
                            .map_err(|_| err(n, format!("route: '{m}' is not a metric")))?,
                    ),
                };
                p.ipv4.routes.push(StaticRoute {
                    dest,
                    prefix,
                    next_hop,
                    metric,
                });
            }
            other => return Err(err(n, format!("'{other}' is not supported"))),
        }
    }
    if remotes.is_empty() {
        return Err(err(
            text.lines().count().max(1),
            "no remote: the file names no server",
        ));
    }
    if let Some((n, proto)) = &proto
        && !proto.starts_with("udp")
        && !proto.starts_with("tcp")
    {
        return Err(err(*n, format!("proto: '{proto}' is not udp or tcp")));
    }
    if proto.as_ref().is_some_and(|(_, p)| p.starts_with("tcp")) {
        d.insert("proto-tcp".into(), "yes".into());
    }
    if let Some(port) = port {
        d.insert("port".into(), port);
    }
    d.insert("remote".into(), remotes.join(", "));
    if let Some(kd) = key_direction {
        if d.contains_key("ta") && !d.contains_key("ta-dir") {
            d.insert("ta-dir".into(), kd.clone());
        }
        if d.contains_key("static-key") && !d.contains_key("static-key-direction") {
            d.insert("static-key-direction".into(), kd);
        }
    }
    let certs = d.contains_key("cert") || d.contains_key("key");
    let kind = match (d.contains_key("static-key"), auth_user_pass, certs) {
        (true, _, _) => "static-key",
        (false, true, true) => "password-tls",
        (false, true, false) => "password",
        (false, false, _) => "tls",
    };
    d.insert("connection-type".into(), kind.into());
    if auth_user_pass {
        // The password is asked for (or stored) later; NM's import marks it agent-owned.
        d.insert("password-flags".into(), "1".into());
    }
    p.vpn.data = d;
    // Without redirect-gateway the tunnel carries only its routes, as NM imports it.
    p.ipv4.never_default = !redirect;
    Ok(Imported { profile: p, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "client\ndev tun\nproto udp\nremote vpn.example 1195\nremote 10.0.0.1\n\
        nobind\npersist-key\nca /etc/ca.crt\n<cert>\n-----BEGIN CERTIFICATE-----\nMIIB\n\
        -----END CERTIFICATE-----\n</cert>\n<key>\nK\n</key>\n<tls-auth>\nT\n</tls-auth>\n\
        key-direction 1\ncipher AES-256-GCM\nauth-user-pass\nroute 10.60.0.0 255.255.0.0 vpn_gateway\n\
        redirect-gateway def1\n";

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
        assert_eq!(i.profile.ipv4.routes.len(), 1);
        assert_eq!(i.profile.ipv4.routes[0].prefix, 16);
        assert!(!i.profile.ipv4.never_default, "redirect-gateway");
        assert_eq!(i.files.len(), 3);
        assert!(i.files[0].1.starts_with("-----BEGIN CERTIFICATE-----\n"));
    }

    #[test]
    fn tun_mtu_is_written_as_nms_tunnel_mtu() {
        let i = import(
            "client\nremote a\ntun-mtu 1400\n",
            "x",
            "u",
            Path::new("/c"),
        )
        .unwrap();
        let d = &i.profile.vpn.data;
        assert_eq!(d.get("tunnel-mtu").map(String::as_str), Some("1400"));
        assert!(!d.contains_key("tun-mtu"), "{d:?}");
    }

    #[test]
    fn what_is_not_understood_is_named_by_line() {
        let dir = Path::new("/c");
        let e = import("client\nremote a\nfragment 1300\n", "x", "u", dir).unwrap_err();
        assert_eq!(e.to_string(), "line 3: 'fragment' is not supported");
        let e = import("remote a\n<ca>\nX\n", "x", "u", dir).unwrap_err();
        assert_eq!(e.to_string(), "line 2: <ca> is never closed by </ca>");
        let e = import("remote a\nroute 10.0.0.0 255.0.255.0\n", "x", "u", dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: route: '255.0.255.0' is not a netmask"
        );
        let e = import("client\n", "x", "u", dir).unwrap_err();
        assert_eq!(e.to_string(), "line 1: no remote: the file names no server");
        let e = import("remote a\n<pkcs12>\nX\n</pkcs12>\n", "x", "u", dir).unwrap_err();
        assert_eq!(e.to_string(), "line 2: inline <pkcs12> is not supported");
    }
}
