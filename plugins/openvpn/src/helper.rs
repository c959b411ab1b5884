//! tinynm-openvpn-helper: openvpn's `--up` script. openvpn runs it with a scrubbed environment
//! holding only its own variables (`dev`, `ifconfig_local`, `route_network_1`…), so the bus and
//! the plugin's name come as arguments: `--bus-address ADDR --bus-name NAME`, then openvpn's own
//! arguments. It hands the pushed config to the plugin (`SetConfig`, `SetIp4Config`,
//! `SetIp6Config`), or reports why it cannot (`SetFailure`), and exits non-zero on failure so
//! that openvpn stops.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;

use tinynm_config::profile::Family;
use tinynm_vpn_plugin::service::{PLUGIN_IFACE, PLUGIN_PATH};
use tinynm_vpn_plugin::{GenericConfig, IpConfig, PluginRoute};

/// openvpn's variables, as given.
struct Env(HashMap<String, String>);

impl Env {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn addr<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{k}: '{v}' is not an address")),
        }
    }
}

fn prefix_of(mask: Ipv4Addr) -> Result<u8, String> {
    let m = u32::from(mask);
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(format!("'{mask}' is not a netmask"));
    }
    Ok(m.leading_ones() as u8)
}

/// The config openvpn pushed, as the plugin protocol carries it.
fn configs(env: &Env) -> Result<(GenericConfig, Option<IpConfig>, Option<IpConfig>), String> {
    let tundev = env.get("dev").ok_or("dev: missing (no tunnel device)")?;
    let gateway: Option<IpAddr> = match env.addr::<IpAddr>("trusted_ip6")? {
        Some(g) => Some(g),
        None => env.addr::<IpAddr>("trusted_ip")?,
    };
    let mut dns4 = Vec::new();
    let mut dns6 = Vec::new();
    let mut domains = Vec::new();
    for i in 1.. {
        let Some(o) = env.get(&format!("foreign_option_{i}")) else {
            break;
        };
        let mut w = o.split_whitespace();
        if w.next() != Some("dhcp-option") {
            continue;
        }
        match (w.next(), w.next()) {
            (Some("DNS" | "DNS6"), Some(a)) => match a.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => dns4.push(IpAddr::V4(a)),
                Ok(IpAddr::V6(a)) => dns6.push(IpAddr::V6(a)),
                Err(_) => return Err(format!("foreign_option_{i}: '{a}' is not an address")),
            },
            (Some("DOMAIN" | "DOMAIN-SEARCH"), Some(d)) => domains.push(d.to_string()),
            _ => {}
        }
    }
    let ip4 = match env.addr::<Ipv4Addr>("ifconfig_local")? {
        None => None,
        Some(local) => {
            let (prefix, ptp) = match (
                env.addr::<Ipv4Addr>("ifconfig_netmask")?,
                env.addr::<Ipv4Addr>("ifconfig_remote")?,
            ) {
                (Some(mask), _) => (
                    prefix_of(mask).map_err(|e| format!("ifconfig_netmask: {e}"))?,
                    None,
                ),
                (None, Some(remote)) => (32, Some(IpAddr::V4(remote))),
                (None, None) => (32, None),
            };
            let mut routes = Vec::new();
            for i in 1.. {
                let Some(net) = env.addr::<Ipv4Addr>(&format!("route_network_{i}"))? else {
                    break;
                };
                let mask = env
                    .addr::<Ipv4Addr>(&format!("route_netmask_{i}"))?
                    .unwrap_or(Ipv4Addr::BROADCAST);
                let p = prefix_of(mask).map_err(|e| format!("route_netmask_{i}: {e}"))?;
                routes.push(PluginRoute {
                    dest: IpAddr::V4(net),
                    prefix: p,
                    next_hop: env.addr::<IpAddr>(&format!("route_gateway_{i}"))?,
                    pref_src: None,
                });
            }
            Some(IpConfig {
                family: Family::V4,
                address: IpAddr::V4(local),
                prefix,
                ptp,
                internal_gateway: env.addr::<IpAddr>("route_vpn_gateway")?,
                dns: dns4,
                domains: domains.clone(),
                routes,
                never_default: false,
                preserve_routes: false,
                mss: None,
            })
        }
    };
    let ip6 = match env.addr::<Ipv6Addr>("ifconfig_ipv6_local")? {
        None => None,
        Some(local) => {
            let prefix = match env.get("ifconfig_ipv6_netbits") {
                None => 128,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= 128)
                    .ok_or_else(|| format!("ifconfig_ipv6_netbits: '{b}' is not 0..128"))?,
            };
            let mut routes = Vec::new();
            for i in 1.. {
                let Some(net) = env.get(&format!("route_ipv6_network_{i}")) else {
                    break;
                };
                let (dest, p) = tinynm_config::profile::parse_prefix(net)
                    .filter(|(a, _)| a.is_ipv6())
                    .ok_or_else(|| {
                        format!("route_ipv6_network_{i}: '{net}' is not ADDRESS/PREFIX")
                    })?;
                routes.push(PluginRoute {
                    dest,
                    prefix: p,
                    next_hop: env.addr::<IpAddr>(&format!("route_ipv6_gateway_{i}"))?,
                    pref_src: None,
                });
            }
            Some(IpConfig {
                family: Family::V6,
                address: IpAddr::V6(local),
                prefix,
                ptp: None,
                internal_gateway: env.addr::<IpAddr>("ifconfig_ipv6_remote")?,
                dns: dns6,
                domains,
                routes,
                never_default: false,
                preserve_routes: false,
                mss: None,
            })
        }
    };
    if ip4.is_none() && ip6.is_none() {
        return Err("ifconfig_local / ifconfig_ipv6_local: the server pushed no address".into());
    }
    let mtu = match env.get("tun_mtu") {
        None => None,
        Some(m) => Some(
            m.parse::<u32>()
                .map_err(|_| format!("tun_mtu: '{m}' is not a number"))?,
        ),
    };
    let generic = GenericConfig {
        tundev: Some(tundev.to_string()),
        gateway,
        mtu,
        banner: String::new(),
        has_ip4: ip4.is_some(),
        has_ip6: ip6.is_some(),
        can_persist: true,
    };
    Ok((generic, ip4, ip6))
}

async fn send(address: &str, name: &str, env: &Env) -> Result<(), String> {
    let conn = zbus::connection::Builder::address(address)
        .build()
        .await
        .map_err(|e| format!("cannot connect to the bus at '{address}': {e}"))?;
    let call = |member: &'static str, body: tinynm_vpn_plugin::Dict| {
        let conn = conn.clone();
        async move {
            conn.call_method(
                Some(name),
                PLUGIN_PATH,
                Some(PLUGIN_IFACE),
                member,
                &(body,),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("{member} on {name}: {e}"))
        }
    };
    match configs(env) {
        Ok((generic, ip4, ip6)) => {
            call("SetConfig", generic.to_dict()).await?;
            if let Some(c) = ip4 {
                call("SetIp4Config", c.to_dict()).await?;
            }
            if let Some(c) = ip6 {
                call("SetIp6Config", c.to_dict()).await?;
            }
            Ok(())
        }
        Err(why) => {
            let _ = conn
                .call_method(
                    Some(name),
                    PLUGIN_PATH,
                    Some(PLUGIN_IFACE),
                    "SetFailure",
                    &(why.as_str(),),
                )
                .await;
            Err(why)
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut address, mut name) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bus-address" => address = args.next(),
            "--bus-name" => name = args.next(),
            // openvpn's own arguments follow (device, MTUs, addresses, "init").
            _ => break,
        }
    }
    let (Some(address), Some(name)) = (address, name) else {
        eprintln!("tinynm-openvpn-helper: needs --bus-address ADDR --bus-name NAME");
        return ExitCode::from(2);
    };
    let env = Env(std::env::vars().collect());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tinynm-openvpn-helper: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(send(&address, &name, &env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tinynm-openvpn-helper: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn subnet_topology_with_pushed_route_and_dns() {
        let (g, ip4, ip6) = configs(&env(&[
            ("dev", "tun0"),
            ("trusted_ip", "10.99.0.1"),
            ("tun_mtu", "1500"),
            ("ifconfig_local", "10.8.0.2"),
            ("ifconfig_netmask", "255.255.255.0"),
            ("route_vpn_gateway", "10.8.0.1"),
            ("route_network_1", "10.200.0.0"),
            ("route_netmask_1", "255.255.255.0"),
            ("route_gateway_1", "10.8.0.1"),
            ("foreign_option_1", "dhcp-option DNS 10.8.0.1"),
            ("foreign_option_2", "dhcp-option DOMAIN corp.example"),
        ]))
        .unwrap();
        assert_eq!(g.tundev.as_deref(), Some("tun0"));
        assert_eq!(g.gateway, Some("10.99.0.1".parse().unwrap()));
        assert!(g.has_ip4 && !g.has_ip6);
        let c = ip4.unwrap();
        assert_eq!((c.address.to_string(), c.prefix), ("10.8.0.2".into(), 24));
        assert_eq!(c.routes[0].dest.to_string(), "10.200.0.0");
        assert_eq!(c.routes[0].prefix, 24);
        assert_eq!(c.dns, vec!["10.8.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.domains, vec!["corp.example".to_string()]);
        assert!(ip6.is_none());
    }

    #[test]
    fn bad_values_are_named() {
        let e = configs(&env(&[("dev", "tun0"), ("ifconfig_local", "10.8.0.300")])).unwrap_err();
        assert_eq!(e, "ifconfig_local: '10.8.0.300' is not an address");
        let e = configs(&env(&[
            ("dev", "tun0"),
            ("ifconfig_local", "10.8.0.2"),
            ("ifconfig_netmask", "255.0.255.0"),
        ]))
        .unwrap_err();
        assert_eq!(e, "ifconfig_netmask: '255.0.255.0' is not a netmask");
        let e = configs(&env(&[("dev", "tun0")])).unwrap_err();
        assert!(e.contains("pushed no address"), "{e}");
    }
}
