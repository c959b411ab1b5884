//! What each directive of an `.ovpn` file becomes: nm-openvpn 1.10's import, directive by
//! directive (its keys, its values, its refusals), and tinynm's additions.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::{
    Import, OvpnError, OvpnWarning, PROTOCOLS, err, ignored, int, key_direction, nargs,
    netmask_prefix,
};
use crate::profile::StaticRoute;

impl Import<'_> {
    pub(super) fn set(&mut self, k: &str, v: impl Into<String>) {
        self.d.insert(k.to_string(), v.into());
    }

    /// A file argument: relative to the `.ovpn`'s directory, as nmcli.
    pub(super) fn path(&self, f: &str) -> String {
        match self.src.base_dir {
            Some(b) if !Path::new(f).is_absolute() => b.join(f).display().to_string(),
            _ => f.to_string(),
        }
    }

    fn warn(&mut self, line: usize, dir: &str, why: impl Into<String>) {
        self.warnings.push(OvpnWarning {
            line,
            directive: dir.to_string(),
            why: why.into(),
        });
    }

    pub(super) fn directive(&mut self, n: usize, dir: &str, a: &[&str]) -> Result<(), OvpnError> {
        let one = |what: &str| -> Result<String, OvpnError> {
            match a {
                [x] => Ok(x.to_string()),
                _ => Err(err(n, format!("'{dir}' expects one argument ({what})"))),
            }
        };
        let flag = |me: &mut Self, key: &str| -> Result<(), OvpnError> {
            nargs(n, dir, a, 0, 0)?;
            me.set(key, "yes");
            Ok(())
        };
        match dir {
            "client" | "tls-client" => {
                nargs(n, dir, a, 0, 0)?;
                self.have_client = true;
            }
            "key-direction" => {
                let k = key_direction(n, dir, &one("0 or 1")?)?;
                self.ta_direction = Some(k.clone());
                self.secret_direction = Some(k);
            }
            "dev" => {
                let v = one("device")?;
                if v.is_empty() {
                    return Err(err(n, "'dev' expects a non-empty device"));
                }
                self.set("dev", v);
            }
            "dev-type" => match one("tun or tap")?.as_str() {
                t @ ("tun" | "tap") => self.set("dev-type", t),
                t => return Err(err(n, format!("invalid 1th argument to 'dev-type': '{t}'"))),
            },
            "proto" => {
                let p = one("protocol")?;
                if !PROTOCOLS.contains(&p.as_str()) {
                    return Err(err(n, "proto expects protocol type like 'udp' or 'tcp'"));
                }
                if !p.starts_with("udp") {
                    self.set("proto-tcp", "yes");
                }
            }
            "mssfix" => {
                nargs(n, dir, a, 0, 1)?;
                match a.first() {
                    Some(v) => {
                        let v = int(n, dir, 1, v, 0, i32::MAX.into())?;
                        self.set("mssfix", v.to_string());
                    }
                    None => self.set("mssfix", "yes"),
                }
            }
            "mtu-disc" => match one("no, maybe or yes")?.as_str() {
                v @ ("no" | "maybe" | "yes") => self.set("mtu-disc", v),
                _ => return Err(err(n, "unsupported mtu-disc argument")),
            },
            "crl-verify" => {
                nargs(n, dir, a, 1, 2)?;
                let f = self.path(a[0]);
                match a.get(1) {
                    None => self.set("crl-verify-file", f),
                    Some(&"dir") => self.set("crl-verify-dir", f),
                    Some(_) => return Err(err(n, "unsupported crl-verify argument")),
                }
            }
            "ns-cert-type" => match one("client or server")?.as_str() {
                v @ ("client" | "server") => self.set("ns-cert-type", v),
                _ => return Err(err(n, "invalid option to 'ns-cert-type'")),
            },
            "tun-mtu" => {
                let v = int(n, dir, 1, &one("number")?, 0, 0xffff)?;
                self.set("tunnel-mtu", v.to_string());
            }
            "connect-timeout" | "server-poll-timeout" => {
                let v = int(n, dir, 1, &one("seconds")?, 0, i32::MAX.into())?;
                self.set("connect-timeout", v.to_string());
            }
            "fragment" => {
                let v = int(n, dir, 1, &one("number")?, 0, 0xffff)?;
                self.set("fragment-size", v.to_string());
            }
            "allow-compression" => match one("yes, no or asym")?.as_str() {
                v @ ("yes" | "no" | "asym") => self.set("allow-compression", v),
                _ => return Err(err(n, "allow-compression: invalid argument")),
            },
            "comp-lzo" => {
                nargs(n, dir, a, 0, 1)?;
                let v = match a.first().copied().unwrap_or("adaptive") {
                    // nm-openvpn's workaround for old plasma-nm (bgo#769177).
                    "no" => "no-by-default",
                    v @ ("yes" | "adaptive") => v,
                    _ => return Err(err(n, "unsupported comp-lzo argument")),
                };
                self.set("comp-lzo", v);
            }
            "compress" => {
                nargs(n, dir, a, 0, 1)?;
                match a.first() {
                    Some(v @ (&"lzo" | &"lz4" | &"lz4-v2")) => self.set("compress", *v),
                    Some(_) => return Err(err(n, "unsupported compress argument")),
                    None => self.set("compress", "yes"),
                }
            }
            "float" => flag(self, "float")?,
            "remote-random" => flag(self, "remote-random")?,
            "remote-random-hostname" => flag(self, "remote-random-hostname")?,
            "allow-pull-fqdn" => flag(self, "allow-pull-fqdn")?,
            "tun-ipv6" => flag(self, "tun-ipv6")?,
            "push-peer-info" => flag(self, "push-peer-info")?,
            "http-proxy-retry" | "socks-proxy-retry" => flag(self, "proxy-retry")?,
            "reneg-sec" => {
                let v = int(n, dir, 1, &one("seconds")?, 0, i32::MAX.into())?;
                self.set("reneg-seconds", v.to_string());
            }
            "max-routes" => {
                let v = int(n, dir, 1, &one("number")?, 0, 100_000_000)?;
                self.set("max-routes", v.to_string());
            }
            "http-proxy" | "socks-proxy" => self.proxy(n, dir, a)?,
            "remote" => self.remote(n, a)?,
            "port" | "rport" => {
                let v = int(n, dir, 1, &one("port")?, 1, 65535)?;
                self.set("port", v.to_string());
            }
            "ping" | "ping-exit" | "ping-restart" => {
                let v = int(n, dir, 1, &one("seconds")?, 0, i32::MAX.into())?;
                self.set(dir, v.to_string());
            }
            "keepalive" => {
                nargs(n, dir, a, 2, 2)?;
                let ping = int(n, dir, 1, a[0], 0, i32::MAX.into())?;
                let restart = int(n, dir, 2, a[1], 0, i32::MAX.into())?;
                self.set("ping", ping.to_string());
                self.set("ping-restart", restart.to_string());
            }
            "tls-version-min" => {
                nargs(n, dir, a, 1, 2)?;
                self.set("tls-version-min", a[0]);
                match a.get(1) {
                    None => {}
                    Some(&"or-highest") => self.set("tls-version-min-or-highest", "yes"),
                    Some(k) => {
                        return Err(err(n, format!("invalid keyword '{k}' in tls-version-min")));
                    }
                }
            }
            "tls-version-max" => {
                let v = one("version")?;
                self.set("tls-version-max", v);
            }
            "ca" | "cert" | "extra-certs" | "key" | "pkcs12" | "secret" | "tls-auth"
            | "tls-crypt" | "tls-crypt-v2" => self.file(n, dir, a)?,
            "cipher" | "data-ciphers" | "tls-cipher" | "auth" | "tls-remote" => {
                let v = one("name")?;
                self.set(dir, v);
            }
            "keysize" => {
                let v = int(n, dir, 1, &one("bits")?, 1, 65535)?;
                self.set("keysize", v.to_string());
            }
            "verify-x509-name" => {
                nargs(n, dir, a, 1, 2)?;
                let kind = match a.get(1) {
                    None => "subject",
                    Some(k @ (&"subject" | &"name" | &"name-prefix")) => k,
                    Some(_) => return Err(err(n, "invalid verify-x509-name type")),
                };
                self.set("verify-x509-name", format!("{kind}:{}", a[0]));
            }
            "remote-cert-tls" => match one("client or server")?.as_str() {
                v @ ("client" | "server") => self.set("remote-cert-tls", v),
                _ => return Err(err(n, "invalid option to 'remote-cert-tls'")),
            },
            "ifconfig" => {
                nargs(n, dir, a, 2, 2)?;
                self.set("local-ip", a[0]);
                self.set("remote-ip", a[1]);
            }
            "auth-user-pass" => {
                nargs(n, dir, a, 0, 1)?;
                self.have_pass = true;
                if !a.is_empty() {
                    self.warn(
                        n,
                        dir,
                        "the credentials file is not read: the password is asked for (or stored) as a secret",
                    );
                }
            }
            "mode" => {
                if a.first() == Some(&"server") {
                    return Err(err(
                        n,
                        "'mode server' makes this a server's configuration: only client configurations are imported",
                    ));
                }
            }
            "route" => self.route(n, a)?,
            "dhcp-option" => self.dhcp_option(n, a)?,
            other => {
                if let Some(why) = ignored::refused(other) {
                    return Err(err(n, format!("'{other}' {why}")));
                }
                if let Some(why) = ignored::why(other) {
                    if !why.is_empty() {
                        self.warn(n, other, why);
                    }
                } else {
                    self.warn(
                        n,
                        other,
                        "not an option NM's OpenVPN plugin has (nmcli drops it too)",
                    );
                }
            }
        }
        Ok(())
    }

    fn remote(&mut self, n: usize, a: &[&str]) -> Result<(), OvpnError> {
        nargs(n, "remote", a, 1, 3)?;
        let host = a[0];
        if host.contains(' ') {
            return Err(err(n, "remote cannot contain space"));
        }
        if host.contains(',') {
            return Err(err(n, "remote cannot contain comma"));
        }
        let port = match a.get(1) {
            Some(p) => Some(int(n, "remote", 2, p, 1, 65535)?),
            None => None,
        };
        if let Some(proto) = a.get(2)
            && !PROTOCOLS.contains(proto)
        {
            return Err(err(n, "remote expects protocol type like 'udp' or 'tcp'"));
        }
        let colon = host.contains(':');
        let mut r = if colon && host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        match (port, a.get(2)) {
            (Some(p), Some(proto)) => r += &format!(":{p}:{proto}"),
            (Some(p), None) => {
                r += &format!(":{p}");
                if colon {
                    r.push(':');
                }
            }
            (None, _) if colon => r += "::",
            (None, _) => {}
        }
        let v = match self.d.get("remote") {
            Some(prev) => format!("{prev}, {r}"),
            None => r,
        };
        self.set("remote", v);
        self.have_remote = true;
        Ok(())
    }

    fn file(&mut self, n: usize, dir: &str, a: &[&str]) -> Result<(), OvpnError> {
        let can_direction = matches!(dir, "secret" | "tls-auth");
        nargs(n, dir, a, 1, if can_direction { 2 } else { 1 })?;
        if a[0].is_empty() {
            return Err(err(n, format!("'{dir}' expects a non-empty file")));
        }
        let direction = match a.get(1) {
            Some(d) => Some(key_direction(n, dir, d)?),
            None => None,
        };
        let f = self.path(a[0]);
        match dir {
            "pkcs12" => {
                // openvpn allows --pkcs12 with a PEM --ca: that one is kept.
                if !self.have_ca {
                    self.set("ca", f.clone());
                }
                self.set("cert", f.clone());
                self.set("key", f);
                self.have_pkcs12 = true;
            }
            "ca" => {
                self.set("ca", f);
                self.have_ca = true;
            }
            "cert" => {
                self.set("cert", f);
                self.have_cert = true;
            }
            "key" => {
                self.set("key", f);
                self.have_key = true;
            }
            "secret" => {
                self.set("static-key", f);
                if direction.is_some() {
                    self.secret_direction = direction;
                }
                self.allow_secret_direction = true;
                self.have_sk = true;
            }
            "tls-auth" => {
                self.set("ta", f);
                if direction.is_some() {
                    self.ta_direction = direction;
                }
                self.allow_ta_direction = true;
            }
            other => self.set(other, f),
        }
        Ok(())
    }

    pub(super) fn blob(&mut self, n: usize, tag: &str, body: String) -> Result<(), OvpnError> {
        let key = match tag {
            "ca" => {
                self.have_ca = true;
                Some("ca")
            }
            "cert" => {
                self.have_cert = true;
                Some("cert")
            }
            "key" => {
                self.have_key = true;
                Some("key")
            }
            "pkcs12" => {
                self.have_pkcs12 = true;
                None
            }
            "extra-certs" => Some("extra-certs"),
            "crl-verify" => Some("crl-verify-file"),
            "tls-crypt" => Some("tls-crypt"),
            "tls-crypt-v2" => Some("tls-crypt-v2"),
            "tls-auth" => {
                self.allow_ta_direction = true;
                Some("ta")
            }
            "secret" => {
                self.allow_secret_direction = true;
                self.have_sk = true;
                Some("static-key")
            }
            _ => return Err(err(n, format!("unsupported blob/xml element <{tag}>"))),
        };
        let path = self
            .src
            .cert_dir
            .join(format!("{}-{tag}.pem", self.src.name));
        let bytes = if tag == "pkcs12" {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| err(n, format!("<pkcs12> is not base64: {e}")))?
        } else {
            body.into_bytes()
        };
        // The latest block of a kind wins.
        self.files.retain(|(p, _)| *p != path);
        let shown = path.display().to_string();
        match key {
            Some(k) => self.set(k, shown),
            None => {
                for k in ["ca", "cert", "key"] {
                    self.set(k, shown.clone());
                }
            }
        }
        self.files.push((path, bytes));
        Ok(())
    }

    fn proxy(&mut self, n: usize, dir: &str, a: &[&str]) -> Result<(), OvpnError> {
        let http = dir == "http-proxy";
        if http {
            nargs(n, dir, a, 2, 4)?;
        } else {
            nargs(n, dir, a, 1, 3)?;
        }
        let port = match a.get(1) {
            Some(p) => Some(int(n, dir, 2, p, 1, 65535)?),
            None => None,
        };
        if let Some(auth) = a.get(2) {
            let (user, pass) = self.proxy_auth(n, auth)?;
            self.set("http-proxy-username", user);
            self.secrets.insert("http-proxy-password".into(), pass);
            self.set("http-proxy-password-flags", "1");
        }
        self.set("proxy-type", if http { "http" } else { "socks" });
        self.set("proxy-server", a[0]);
        if let Some(p) = port {
            self.set("proxy-port", p.to_string());
        }
        Ok(())
    }

    /// The proxy's credentials file: user on its first line, password on its second.
    fn proxy_auth(&self, n: usize, f: &str) -> Result<(String, String), OvpnError> {
        let Some(_) = self.src.base_dir else {
            return Err(err(n, "the proxy's credentials file cannot be read here"));
        };
        let path = self.path(f);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            err(
                n,
                format!("cannot read the proxy's credentials {path}: {e}"),
            )
        })?;
        let mut l = text.lines();
        match (l.next(), l.next()) {
            (Some(u), Some(p)) if !u.is_empty() => Ok((u.to_string(), p.to_string())),
            _ => Err(err(
                n,
                format!("{path}: a user name and a password line expected"),
            )),
        }
    }

    fn route(&mut self, n: usize, a: &[&str]) -> Result<(), OvpnError> {
        nargs(n, "route", a, 1, 4)?;
        let special = |v: &str, i: usize| -> Result<(), OvpnError> {
            if matches!(v, "net_gateway" | "remote_host") {
                return Err(err(
                    n,
                    format!("unsupported {i}th argument {v} to 'route' (around the tunnel)"),
                ));
            }
            Ok(())
        };
        special(a[0], 1)?;
        let dest: Ipv4Addr = a[0].parse().map_err(|_| {
            err(
                n,
                format!(
                    "invalid 1th argument to 'route' where IPv4 address expected: '{}'",
                    a[0]
                ),
            )
        })?;
        let prefix = match a.get(1) {
            Some(m) => netmask_prefix(n, m)?,
            None => 32,
        };
        let next_hop = match a.get(2).copied() {
            // Through the VPN: what a route without a gateway is (nmcli refuses the word).
            None | Some("vpn_gateway") | Some("default") => None,
            Some(g) => {
                special(g, 3)?;
                Some(IpAddr::V4(g.parse().map_err(|_| {
                    err(
                        n,
                        format!(
                            "invalid 3th argument to 'route' where IPv4 address expected: '{g}'"
                        ),
                    )
                })?))
            }
        };
        let metric = match a.get(3).copied() {
            None | Some("default") => None,
            Some(m) => Some(int(n, "route", 4, m, 0, u32::MAX.into())? as u32),
        };
        if prefix == 0 && dest.is_unspecified() {
            // The default route is no route of a profile: never-default stays false.
            self.p.ipv4.never_default = false;
            return Ok(());
        }
        self.p.ipv4.routes.push(StaticRoute {
            dest: IpAddr::V4(dest),
            prefix,
            next_hop,
            metric,
        });
        Ok(())
    }

    /// `dhcp-option DNS|DNS6|DOMAIN|DOMAIN-SEARCH …` into the profile's DNS (nmcli drops them).
    fn dhcp_option(&mut self, n: usize, a: &[&str]) -> Result<(), OvpnError> {
        nargs(n, "dhcp-option", a, 1, 2)?;
        match (a[0], a.get(1)) {
            ("DNS" | "DNS6", Some(addr)) => {
                let ip: IpAddr = addr.parse().map_err(|_| {
                    err(
                        n,
                        format!("dhcp-option {}: '{addr}' is not an IP address", a[0]),
                    )
                })?;
                let s = if ip.is_ipv4() {
                    &mut self.p.ipv4
                } else {
                    &mut self.p.ipv6
                };
                if !s.dns.contains(&ip) {
                    s.dns.push(ip);
                }
            }
            ("DOMAIN" | "DOMAIN-SEARCH" | "ADAPTER_DOMAIN_SUFFIX", Some(d)) => {
                if d.is_empty() || d.contains(char::is_whitespace) {
                    return Err(err(
                        n,
                        format!("dhcp-option {}: '{d}' is not a domain", a[0]),
                    ));
                }
                if !self.p.ipv4.dns_search.iter().any(|x| x == d) {
                    self.p.ipv4.dns_search.push(d.to_string());
                }
            }
            (kind, _) => self.warn(
                n,
                "dhcp-option",
                format!("{kind}: only DNS and DOMAIN are imported (into the profile's DNS)"),
            ),
        }
        Ok(())
    }
}
