//! Where a VPN connects to, read from its profile's `vpn.data`: the kill switch lets exactly
//! that through the uplink, and tinynm's OpenVPN plugin hands it to `openvpn --remote`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

/// A transport protocol an endpoint is reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// One server a VPN may connect to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// A host name or an address literal.
    pub host: String,
    /// The port and protocol, when the plugin's data says; `None`: any.
    pub port: Option<(Transport, u16)>,
}

impl Endpoint {
    /// The host as an address, when it is a literal (`[v6]` brackets allowed).
    pub fn literal(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }
}

/// One `remote` entry of an OpenVPN profile, as nm-openvpn-service reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenvpnRemote {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// openvpn's `--proto` word (`udp`, `udp6`, `tcp-client`, `tcp4-client`…).
    pub proto: String,
}

/// openvpn's protocol words, as nm-openvpn knows them (`NMOVPN_PROTCOL_TYPES`).
pub(crate) const OPENVPN_PROTOS: [&str; 9] = [
    "udp",
    "udp4",
    "udp6",
    "tcp",
    "tcp4",
    "tcp6",
    "tcp-client",
    "tcp4-client",
    "tcp6-client",
];

/// An OpenVPN profile's `remote` list: entries separated by commas or spaces, each `HOST`,
/// `HOST:PORT` or `HOST:PORT:PROTO` (an IPv6 address bare or as `[ADDR]:PORT:PROTO`), with
/// `port` (default 1194) and `proto-tcp` as the defaults.
pub fn openvpn_remotes(data: &BTreeMap<String, String>) -> Result<Vec<OpenvpnRemote>, String> {
    let Some(list) = data.get("remote").filter(|r| !r.trim().is_empty()) else {
        return Err("vpn.data remote: missing (the server to connect to)".into());
    };
    let port = match data.get("port") {
        None => 1194,
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("vpn.data port: '{p}' is not a port number"))?,
    };
    let tcp = data.get("proto-tcp").is_some_and(|v| v == "yes");
    let mut out = Vec::new();
    for r in list.split([',', ' ']).filter(|r| !r.is_empty()) {
        let bad = || format!("vpn.data remote: '{r}' is not HOST, HOST:PORT or HOST:PORT:PROTO");
        let (host, rest) = if let Some(v6) = r.strip_prefix('[') {
            let (h, rest) = v6.split_once(']').ok_or_else(bad)?;
            h.parse::<Ipv6Addr>().map_err(|_| bad())?;
            (h.to_string(), rest.strip_prefix(':').unwrap_or(rest))
        } else if r.parse::<Ipv6Addr>().is_ok() {
            (r.to_string(), "")
        } else {
            let (h, rest) = r.split_once(':').unwrap_or((r, ""));
            (h.to_string(), rest)
        };
        let mut parts = rest.split(':').filter(|p| !p.is_empty());
        let p = match parts.next() {
            None => port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        };
        let proto = parts
            .next()
            .map(str::to_string)
            .unwrap_or_else(|| if tcp { "tcp-client" } else { "udp" }.to_string());
        if host.is_empty() || parts.next().is_some() {
            return Err(bad());
        }
        if !OPENVPN_PROTOS.contains(&proto.as_str()) {
            return Err(format!(
                "vpn.data remote: '{r}': unknown protocol '{proto}'"
            ));
        }
        let proto = match proto.as_str() {
            "tcp" | "tcp4" | "tcp6" => format!("{proto}-client"),
            _ => proto,
        };
        out.push(OpenvpnRemote {
            host,
            port: p,
            proto,
        });
    }
    Ok(out)
}

/// The servers a VPN of plugin `service_type` connects to, from its `vpn.data`: OpenVPN's
/// `remote` list with ports and protocols; OpenConnect's `gateway` (HTTPS and DTLS on its
/// port, 443 by default); for other plugins, `remote` and `gateway` as hosts on any port.
/// Nothing found is an empty list, not an error: the plugin's `Config` names the gateway later.
pub fn vpn_endpoints(
    service_type: &str,
    data: &BTreeMap<String, String>,
) -> Result<Vec<Endpoint>, String> {
    let plugin = service_type.rsplit('.').next().unwrap_or(service_type);
    match plugin {
        "openvpn" => Ok(openvpn_remotes(data)?
            .into_iter()
            .map(|r| Endpoint {
                host: r.host,
                port: Some((
                    if r.proto.starts_with("tcp") {
                        Transport::Tcp
                    } else {
                        Transport::Udp
                    },
                    r.port,
                )),
            })
            .collect()),
        "openconnect" => {
            let Some(g) = data
                .get("gateway")
                .map(|g| g.trim())
                .filter(|g| !g.is_empty())
            else {
                return Ok(Vec::new());
            };
            let g = g.strip_prefix("https://").unwrap_or(g);
            let hostport = g.split('/').next().unwrap_or(g);
            let (host, port) = split_host_port(hostport)
                .ok_or_else(|| format!("vpn.data gateway: '{g}' is not HOST[:PORT][/PATH]"))?;
            let port = port.unwrap_or(443);
            Ok([Transport::Tcp, Transport::Udp]
                .into_iter()
                .map(|t| Endpoint {
                    host: host.clone(),
                    port: Some((t, port)),
                })
                .collect())
        }
        _ => Ok(["remote", "gateway"]
            .iter()
            .filter_map(|k| data.get(*k))
            .flat_map(|v| v.split([',', ' ']))
            .filter(|h| !h.is_empty())
            .map(|h| Endpoint {
                host: h.to_string(),
                port: None,
            })
            .collect()),
    }
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').filter(|(h, _)| !h.is_empty())?;
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if rest.is_empty() => None,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Some((s.to_string(), None));
    }
    match s.split_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), Some(p.parse().ok()?))),
        None if !s.is_empty() => Some((s.to_string(), None)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn openvpn_remotes_take_the_defaults() {
        let d = data(&[
            (
                "remote",
                "vpn.example:1195:tcp, 10.0.0.1 [fd00::1]:443:udp6 fd00::2",
            ),
            ("port", "1200"),
        ]);
        let e = vpn_endpoints("org.freedesktop.NetworkManager.openvpn", &d).unwrap();
        let got: Vec<(String, Option<(Transport, u16)>)> =
            e.into_iter().map(|e| (e.host, e.port)).collect();
        assert_eq!(
            got,
            vec![
                ("vpn.example".into(), Some((Transport::Tcp, 1195))),
                ("10.0.0.1".into(), Some((Transport::Udp, 1200))),
                ("fd00::1".into(), Some((Transport::Udp, 443))),
                ("fd00::2".into(), Some((Transport::Udp, 1200))),
            ]
        );
        let d = data(&[("remote", "a"), ("proto-tcp", "yes")]);
        assert_eq!(openvpn_remotes(&d).unwrap()[0].proto, "tcp-client");
    }

    #[test]
    fn bad_remotes_are_named() {
        for (remote, why) in [
            (
                "a:99999",
                "vpn.data remote: 'a:99999' is not HOST, HOST:PORT or HOST:PORT:PROTO",
            ),
            (
                "a:1:sctp",
                "vpn.data remote: 'a:1:sctp': unknown protocol 'sctp'",
            ),
            (
                "[zz]:1",
                "vpn.data remote: '[zz]:1' is not HOST, HOST:PORT or HOST:PORT:PROTO",
            ),
        ] {
            assert_eq!(
                openvpn_remotes(&data(&[("remote", remote)])).unwrap_err(),
                why
            );
        }
    }

    #[test]
    fn openconnect_and_others() {
        let d = data(&[("gateway", "https://vpn.example:8443/group")]);
        let e = vpn_endpoints("org.freedesktop.NetworkManager.openconnect", &d).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].port, Some((Transport::Tcp, 8443)));
        // Brackets with nothing inside name no host.
        let d = data(&[("gateway", "[]:443")]);
        assert_eq!(
            vpn_endpoints("org.freedesktop.NetworkManager.openconnect", &d).unwrap_err(),
            "vpn.data gateway: '[]:443' is not HOST[:PORT][/PATH]"
        );
        let d = data(&[("gateway", "192.0.2.1")]);
        let e = vpn_endpoints("org.example.other", &d).unwrap();
        assert_eq!(e[0].literal(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(e[0].port, None);
    }

    proptest! {
        /// Any `vpn.data` gives endpoints or an error, never a panic; each endpoint has a host.
        #[test]
        fn any_data_is_read_without_panic(
            remote in "[a-z0-9:\\[\\]., -]{0,40}",
            port in "[0-9a-z]{0,6}",
            service in prop::sample::select(vec!["x.openvpn", "x.openconnect", "x.other"]),
        ) {
            let d = data(&[("remote", &remote), ("gateway", &remote), ("port", &port)]);
            if let Ok(e) = vpn_endpoints(service, &d) {
                prop_assert!(e.iter().all(|e| !e.host.is_empty()));
            }
        }
    }
}
