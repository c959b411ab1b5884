//! `tinynm device [status|show [DEV]]`: the interfaces as the daemon sees them (nmcli's
//! `device` and `device show`).

use std::collections::HashMap;

use clap::Subcommand;
use tinynm_client::{ActiveProxy, DeviceProxy, IpConfigProxy, ManagerProxy};
use zbus::OwnedVariant;
use zbus::proxy::CacheProperties;

use crate::names;
use crate::out::{Exit, Fields, Out, Table, fail};

/// `tinynm device …`
#[derive(Subcommand, Debug, Default)]
pub enum DeviceCmd {
    /// A line per device: DEVICE, TYPE, STATE, CONNECTION (the default).
    #[default]
    Status,
    /// Everything about one device (or all): its state and why, its addresses, routes and
    /// DNS.
    Show {
        /// The interface name (none: every device).
        dev: Option<String>,
    },
    /// Takes the device's connection down and keeps it from autoconnecting until a
    /// connection is brought up on it.
    Disconnect {
        /// The interface name.
        dev: String,
    },
}

/// One device as read from the bus.
struct Dev {
    proxy: DeviceProxy<'static>,
    iface: String,
    kind: u32,
    state: u32,
    connection: Option<(String, String)>,
    /// Its connection was configured outside the daemon (nmcli's "(externally)").
    external: bool,
}

impl Dev {
    /// The state as nmcli words it.
    fn state_text(&self) -> String {
        let s = names::device_state(self.state);
        if self.external && matches!(self.state, 40..=100) {
            format!("{s} (externally)")
        } else {
            s.to_string()
        }
    }
}

async fn devices(conn: &zbus::Connection) -> anyhow::Result<Vec<Dev>> {
    let m = ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let mut out = Vec::new();
    for path in m.get_devices().await? {
        let proxy = DeviceProxy::builder(conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        // One removed meanwhile is left out.
        let (Ok(iface), Ok(state)) = (proxy.interface().await, proxy.state().await) else {
            continue;
        };
        let kind = proxy.device_type().await.unwrap_or(0);
        let mut connection = None;
        let mut external = false;
        if let Ok(ac) = proxy.active_connection().await
            && ac.as_str() != "/"
        {
            {
                let a = ActiveProxy::builder(conn)
                    .path(ac.clone())
                    .cache_properties(CacheProperties::No)
                    .build()
                    .await?;
                if let Ok(id) = a.id().await {
                    connection = Some((id, ac.to_string()));
                }
                external = a.state_flags().await.unwrap_or(0) & 0x80 != 0;
            }
        }
        out.push(Dev {
            proxy,
            iface,
            kind,
            state,
            connection,
            external,
        });
    }
    out.sort_by(|a, b| a.iface.cmp(&b.iface));
    Ok(out)
}

/// Runs one `device` subcommand.
pub async fn run(conn: &zbus::Connection, c: DeviceCmd, out: Out) -> anyhow::Result<()> {
    let all = devices(conn).await?;
    match c {
        DeviceCmd::Status => {
            let mut t = Table::new(&["DEVICE", "TYPE", "STATE", "CONNECTION"]);
            t.state_column = Some(2);
            for d in &all {
                t.row(vec![
                    d.iface.clone(),
                    names::device_type(d.kind).into(),
                    d.state_text(),
                    d.connection
                        .as_ref()
                        .map_or("--".into(), |(id, _)| id.clone()),
                ]);
            }
            t.print(out);
        }
        DeviceCmd::Disconnect { dev } => {
            let d = all
                .iter()
                .find(|d| d.iface == dev)
                .ok_or_else(|| fail(Exit::NotFound, format!("Device '{dev}' not found")))?;
            d.proxy.disconnect().await.map_err(|err| {
                crate::out::call_failed(
                    err,
                    Exit::DeviceDisconnect,
                    format!("cannot disconnect '{dev}'"),
                )
            })?;
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"device": dev, "disconnected": true})
                );
            } else {
                println!("Device '{dev}' successfully disconnected.");
            }
        }
        DeviceCmd::Show { dev } => {
            let chosen: Vec<&Dev> = match &dev {
                Some(n) => {
                    let d = all
                        .iter()
                        .find(|d| &d.iface == n)
                        .ok_or_else(|| fail(Exit::NotFound, format!("Device '{n}' not found")))?;
                    vec![d]
                }
                None => all.iter().collect(),
            };
            let mut shown = Vec::new();
            for d in chosen {
                shown.push(fields(conn, d).await?);
            }
            if out.json {
                let v: Vec<_> = shown.iter().map(Fields::json).collect();
                let v = match (dev.is_some(), v.len()) {
                    (true, 1) => v.into_iter().next().expect("one"),
                    _ => serde_json::Value::Array(v),
                };
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let text: Vec<String> = shown.iter().map(|f| f.render(out)).collect();
                print!("{}", text.join("\n"));
            }
        }
    }
    Ok(())
}

/// nmcli's `device show` fields for one device.
async fn fields(conn: &zbus::Connection, d: &Dev) -> anyhow::Result<Fields> {
    let p = &d.proxy;
    let (_, reason) = p.state_reason().await.unwrap_or((d.state, 0));
    let mut f = vec![
        ("GENERAL.DEVICE".to_string(), d.iface.clone()),
        ("GENERAL.TYPE".into(), names::device_type(d.kind).into()),
        (
            "GENERAL.HWADDR".into(),
            p.hw_address().await.unwrap_or_default(),
        ),
        ("GENERAL.MTU".into(), p.mtu().await.unwrap_or(0).to_string()),
        (
            "GENERAL.STATE".into(),
            format!("{} ({})", d.state, d.state_text()),
        ),
        ("GENERAL.REASON".into(), names::device_reason(reason)),
        (
            "GENERAL.CONNECTION".into(),
            d.connection.as_ref().map_or(String::new(), |c| c.0.clone()),
        ),
        (
            "GENERAL.CON-PATH".into(),
            d.connection.as_ref().map_or(String::new(), |c| c.1.clone()),
        ),
        (
            "GENERAL.MANAGED".into(),
            if p.managed().await.unwrap_or(false) {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
    ];
    for (family, path) in [
        ("IP4", p.ip4_config().await.ok()),
        ("IP6", p.ip6_config().await.ok()),
    ] {
        let Some(path) = path.filter(|p| p.as_str() != "/") else {
            continue;
        };
        let iface = format!("org.freedesktop.NetworkManager.{family}Config");
        let ip = IpConfigProxy::builder(conn)
            .path(path)
            .interface(iface)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        f.extend(ip_fields(family, &ip).await);
    }
    Ok(Fields(f))
}

type Dict = HashMap<String, OwnedVariant>;

fn text(d: &Dict, k: &str) -> Option<String> {
    d.get(k)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| String::try_from(v).ok())
}

fn number(d: &Dict, k: &str) -> Option<u32> {
    d.get(k)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| u32::try_from(v).ok())
}

/// `IP4.ADDRESS[1]`, `IP4.GATEWAY`, `IP4.ROUTE[1]`, `IP4.DNS[1]`, `IP4.DOMAIN[1]`, as nmcli.
async fn ip_fields(family: &str, ip: &IpConfigProxy<'_>) -> Vec<(String, String)> {
    let mut f = Vec::new();
    for (i, a) in ip
        .address_data()
        .await
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let (Some(addr), Some(prefix)) = (text(a, "address"), number(a, "prefix")) {
            f.push((
                format!("{family}.ADDRESS[{}]", i + 1),
                format!("{addr}/{prefix}"),
            ));
        }
    }
    f.push((
        format!("{family}.GATEWAY"),
        ip.gateway().await.unwrap_or_default(),
    ));
    for (i, r) in ip.route_data().await.unwrap_or_default().iter().enumerate() {
        let (Some(dest), Some(prefix)) = (text(r, "dest"), number(r, "prefix")) else {
            continue;
        };
        let nh = text(r, "next-hop")
            .unwrap_or_else(|| if family == "IP4" { "0.0.0.0" } else { "::" }.into());
        let mut v = format!("dst = {dest}/{prefix}, nh = {nh}");
        if let Some(m) = number(r, "metric") {
            v += &format!(", mt = {m}");
        }
        f.push((format!("{family}.ROUTE[{}]", i + 1), v));
    }
    // IP6Config has no NameserverData in NM's API: only IPv4's DNS is listed.
    for (i, n) in ip
        .nameserver_data()
        .await
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Some(a) = text(n, "address") {
            f.push((format!("{family}.DNS[{}]", i + 1), a));
        }
    }
    for (i, d) in ip
        .domains()
        .await
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        f.push((format!("{family}.DOMAIN[{}]", i + 1), d));
    }
    f
}
