//! tinynm-testbench: a VPN plugin scripted by its profile's `vpn.data`.
//!
//! It creates a real tun device and answers with the config its data describes, or with the
//! fault it is asked for. Faults that happen before `Connect` cannot be read from the profile;
//! they are chosen by the service name instead (`…testbench-silent` never claims its bus name,
//! `…testbench-crash` exits before claiming it). See README.md for every key.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tinynm_config::dbus::ov;

use tinynm_config::Profile;
use tinynm_config::nm::PluginFailure;
use tinynm_config::profile::{Family, parse_prefix};
use tinynm_vpn_plugin::wire::{Dict, GenericConfig, IpConfig, PluginRoute};
use tinynm_vpn_plugin::{Control, PluginError, VpnService};

const SERVICE: &str = "org.freedesktop.NetworkManager.testbench";

/// The script, read from `vpn.data`.
#[derive(Debug, Clone)]
struct Script {
    data: BTreeMap<String, String>,
}

impl Script {
    fn get(&self, k: &str) -> Option<&str> {
        self.data
            .get(k)
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }

    fn ms(&self, k: &str) -> Result<Option<Duration>, PluginError> {
        self.get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| bad(k, v, "milliseconds"))
            })
            .transpose()
    }

    fn addr(&self, k: &str) -> Result<Option<IpAddr>, PluginError> {
        self.get(k)
            .map(|v| v.parse().map_err(|_| bad(k, v, "an IP address")))
            .transpose()
    }

    fn list(&self, k: &str) -> Vec<String> {
        self.get(k)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is(&self, k: &str, v: &str) -> bool {
        self.get(k) == Some(v)
    }
}

fn bad(k: &str, v: &str, expected: &str) -> PluginError {
    PluginError::BadArguments(format!("vpn.data {k}='{v}': expected {expected}"))
}

fn routes(s: &Script, fam: Family) -> Result<Vec<PluginRoute>, PluginError> {
    let (list_key, count_key, base_key, base_default) = match fam {
        Family::V4 => ("routes", "route-count", "route-base", "100.64.0.0"),
        Family::V6 => ("routes6", "route6-count", "route6-base", "fd00:64::"),
    };
    let mut out = Vec::new();
    for r in s.list(list_key) {
        let (dst, via) = match r.split_once(" via ") {
            Some((d, v)) => (d, Some(v.trim())),
            None => (r.as_str(), None),
        };
        let (dest, prefix) =
            parse_prefix(dst).ok_or_else(|| bad(list_key, &r, "ADDR/PREFIX [via ADDR]"))?;
        let next_hop = via
            .map(|v| {
                v.parse()
                    .map_err(|_| bad(list_key, &r, "ADDR/PREFIX [via ADDR]"))
            })
            .transpose()?;
        out.push(PluginRoute {
            dest,
            prefix,
            next_hop,
            pref_src: None,
        });
    }
    if let Some(n) = s.get(count_key) {
        let n: u32 = n.parse().map_err(|_| bad(count_key, n, "a count"))?;
        let base = s.get(base_key).unwrap_or(base_default);
        let base: IpAddr = base
            .parse()
            .map_err(|_| bad(base_key, base, "an IP address"))?;
        for i in 1..=n {
            let (dest, prefix) = match base {
                IpAddr::V4(b) => (IpAddr::V4(Ipv4Addr::from(u32::from(b).wrapping_add(i))), 32),
                IpAddr::V6(b) => (
                    IpAddr::V6((u128::from(b).wrapping_add(i as u128)).into()),
                    128,
                ),
            };
            out.push(PluginRoute {
                dest,
                prefix,
                next_hop: None,
                pref_src: None,
            });
        }
    }
    Ok(out)
}

/// Opens a tun device (`IFF_TUN | IFF_NO_PI`); it lives as long as the returned fd.
fn create_tun(name: &str, persist: bool) -> std::io::Result<(OwnedFd, String)> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut req = [0u8; 40]; // struct ifreq: name[16], flags (short)
    let n = name.as_bytes();
    if n.len() >= 16 {
        return Err(std::io::Error::other(format!(
            "interface name '{name}' is too long"
        )));
    }
    req[..n.len()].copy_from_slice(n);
    let flags: libc::c_short = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    req[16..18].copy_from_slice(&flags.to_ne_bytes());
    const TUNSETIFF: libc::c_ulong = 0x400454ca;
    // SAFETY: `req` is a buffer as large as `struct ifreq`, valid for the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, req.as_mut_ptr()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if persist {
        // It outlives the fd (and the plugin), as Debian's nm-openconnect-service makes its.
        const TUNSETPERSIST: libc::c_ulong = 0x400454cb;
        // SAFETY: an int argument by value on our own fd.
        if unsafe { libc::ioctl(f.as_raw_fd(), TUNSETPERSIST, 1 as libc::c_ulong) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let end = req[..16].iter().position(|b| *b == 0).unwrap_or(16);
    let got = String::from_utf8_lossy(&req[..end]).into_owned();
    Ok((f.into(), got))
}

#[derive(Default, Clone)]
struct Testbench {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    // The tun device's fd; dropping it removes the device. Touched only by the connect task
    // and disconnect, never across an await.
    tun: Mutex<Option<OwnedFd>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    // The connection's script, for what Disconnect does (`exit-at=disconnect`,
    // `delay-disconnect`).
    script: Mutex<Option<Script>>,
}

fn exit_now(stage: &str) -> ! {
    tracing::warn!("exit-at={stage}: exiting as scripted");
    std::process::exit(3)
}

impl Testbench {
    async fn bring_up(&self, s: Script, ctl: Control) -> Result<(), String> {
        if let Some(d) = s.ms("delay-config").map_err(|e| format!("{e:?}"))? {
            tokio::time::sleep(d).await;
        }
        if s.is("exit-at", "config") {
            exit_now("config");
        }
        if s.is("failure-at", "config") {
            let f = match s.get("failure") {
                Some("login") => PluginFailure::LoginFailed,
                Some("bad-ip") => PluginFailure::BadIpConfig,
                _ => PluginFailure::ConnectFailed,
            };
            ctl.failure(f).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        let malformed = s.get("malformed").unwrap_or("");
        let tundev = match malformed {
            "no-tundev" => None,
            "bad-tundev" => Some("tbnosuch0".to_string()),
            // A misbehaving plugin: names an interface that is not its own.
            _ if s.get("claim-tundev").is_some() => s.get("claim-tundev").map(str::to_string),
            _ => {
                let want = s.get("tundev").unwrap_or("tbtun%d");
                let (fd, name) = create_tun(want, s.is("persist-tun", "yes"))
                    .map_err(|e| format!("cannot create tun '{want}': {e}"))?;
                *self.inner.tun.lock().expect("poisoned") = Some(fd);
                Some(name)
            }
        };
        let e = |e: PluginError| format!("{e:?}");
        let v4 = !s.is("address", "none");
        let v6 = s.get("address6").is_some();
        let gateway = if malformed == "no-gateway" {
            None
        } else {
            Some(
                s.addr("gateway")
                    .map_err(e)?
                    .unwrap_or(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            )
        };
        let generic = GenericConfig {
            tundev,
            gateway,
            mtu: s.get("mtu").and_then(|m| m.parse().ok()),
            banner: s.get("banner").unwrap_or_default().to_string(),
            has_ip4: v4,
            has_ip6: v6,
            can_persist: false,
        };
        ctl.set_config(&generic).await.map_err(|e| e.to_string())?;
        if let Some(d) = s.ms("delay-ip4").map_err(e)? {
            tokio::time::sleep(d).await;
        }
        if s.is("exit-at", "ip4") {
            exit_now("ip4");
        }
        if v4 {
            let mut routes = routes(&s, Family::V4).map_err(e)?;
            if malformed == "dup-routes" {
                routes.extend(routes.clone());
            }
            let c = IpConfig {
                family: Family::V4,
                address: s
                    .addr("address")
                    .map_err(e)?
                    .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 8, 0, 2))),
                prefix: s.get("prefix").and_then(|p| p.parse().ok()).unwrap_or(32),
                ptp: s.addr("peer").map_err(e)?,
                internal_gateway: s.addr("internal-gateway").map_err(e)?,
                dns: s
                    .list("dns")
                    .iter()
                    .filter_map(|a| a.parse().ok())
                    .collect(),
                domains: s.list("domains"),
                routes,
                never_default: s.is("never-default", "true"),
                preserve_routes: false,
                mss: None,
            };
            let mut d: Dict = c.to_dict();
            match malformed {
                "wrong-type" => {
                    d.insert("address".into(), ov("10.8.0.2"));
                }
                "prefix33" => {
                    d.insert("prefix".into(), ov(33u32));
                }
                "zero-address" => {
                    d.insert("address".into(), ov(0u32));
                }
                _ => {}
            }
            ctl.set_ip_config_raw(true, d)
                .await
                .map_err(|e| e.to_string())?;
        }
        if v6 {
            let c = IpConfig {
                family: Family::V6,
                address: s.addr("address6").map_err(e)?.expect("checked above"),
                prefix: s.get("prefix6").and_then(|p| p.parse().ok()).unwrap_or(64),
                ptp: None,
                internal_gateway: s.addr("internal-gateway6").map_err(e)?,
                dns: s
                    .list("dns6")
                    .iter()
                    .filter_map(|a| a.parse().ok())
                    .collect(),
                domains: Vec::new(),
                routes: routes(&s, Family::V6).map_err(e)?,
                never_default: s.is("never-default6", "true"),
                preserve_routes: false,
                mss: None,
            };
            ctl.set_ip6_config(&c).await.map_err(|e| e.to_string())?;
        }
        // Later, a new config, as a plugin whose tunnel restarted sends (reconfig-ms):
        // address-2, routes-2, and the plugin's preserve-routes.
        if let Some(d) = s.ms("reconfig-ms").map_err(e)? {
            let (ctl, generic, mut s2) = (ctl.clone(), generic.clone(), s.clone());
            match s.data.get("routes-2") {
                Some(r) => s2.data.insert("routes".into(), r.clone()),
                None => s2.data.remove("routes"),
            };
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                let c = IpConfig {
                    family: Family::V4,
                    address: s2
                        .addr("address-2")
                        .ok()
                        .flatten()
                        .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 8, 0, 3))),
                    prefix: 32,
                    ptp: None,
                    internal_gateway: None,
                    dns: Vec::new(),
                    domains: Vec::new(),
                    routes: routes(&s2, Family::V4).unwrap_or_default(),
                    never_default: s2.is("never-default", "true"),
                    preserve_routes: s2.is("preserve-routes", "true"),
                    mss: None,
                };
                let _ = ctl.set_config(&generic).await;
                let _ = ctl.set_ip4_config(&c).await;
            });
        }
        if s.is("exit-at", "activated") {
            // Give the daemon the time to see the config, then die as a crashed plugin would.
            if let Some(d) = s.ms("exit-delay").map_err(e)? {
                tokio::time::sleep(d).await;
            }
            exit_now("activated");
        }
        Ok(())
    }
}

impl VpnService for Testbench {
    fn need_secrets(&self, p: &Profile) -> Result<Option<String>, PluginError> {
        let s = Script {
            data: p.vpn.data.clone(),
        };
        if s.is("exit-at", "need-secrets") {
            exit_now("need-secrets");
        }
        // A secret flagged NOT_REQUIRED (4) never blocks.
        Ok(s.get("require-secret")
            .filter(|k| !p.vpn.secrets.contains_key(*k) && p.secret_flags(k) & 4 == 0)
            .map(|_| "vpn".to_string()))
    }

    async fn connect_interactive(&self, p: Profile, ctl: Control) -> Result<(), PluginError> {
        if p.vpn.data.contains_key("second-factor") {
            // A second factor, asked after the password: SecretsRequired, answered by
            // NewSecrets.
            if let Some(k) = p.vpn.data.get("require-secret")
                && !p.vpn.secrets.contains_key(k)
            {
                return Err(PluginError::InvalidConnection(format!(
                    "secret '{k}' is missing"
                )));
            }
            tokio::spawn(async move {
                let _ = ctl
                    .secrets_required("Enter the one-time code", &["otp"])
                    .await;
            });
            return Ok(());
        }
        self.connect(p, ctl).await
    }

    async fn new_secrets(&self, p: Profile, ctl: Control) -> Result<(), PluginError> {
        let want = p.vpn.data.get("second-factor").cloned().unwrap_or_default();
        if p.vpn.secrets.get("otp") != Some(&want) {
            tracing::warn!("second factor: wrong one-time code");
            tokio::spawn(async move {
                let _ = ctl.failure(PluginFailure::LoginFailed).await;
            });
            return Ok(());
        }
        let mut p = p;
        p.vpn.data.remove("second-factor");
        self.connect(p, ctl).await
    }

    async fn connect(&self, p: Profile, ctl: Control) -> Result<(), PluginError> {
        let s = Script {
            data: p.vpn.data.clone(),
        };
        *self.inner.script.lock().expect("poisoned") = Some(Script {
            data: p.vpn.data.clone(),
        });
        if let Some(k) = s.get("require-secret")
            && !p.vpn.secrets.contains_key(k)
            && p.secret_flags(k) & 4 == 0
        {
            return Err(PluginError::InvalidConnection(format!(
                "secret '{k}' is missing"
            )));
        }
        if let Some(d) = s.ms("delay-connect")? {
            tokio::time::sleep(d).await;
        }
        if s.is("exit-at", "connect") {
            exit_now("connect");
        }
        if s.is("failure-at", "connect") {
            return Err(PluginError::LaunchFailed(
                "scripted failure at connect".into(),
            ));
        }
        let me = self.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = me.bring_up(s, ctl.clone()).await {
                tracing::error!("{e}");
                let _ = ctl.failure(PluginFailure::ConnectFailed).await;
            }
        });
        *self.inner.task.lock().expect("poisoned") = Some(task);
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), PluginError> {
        let script = self.inner.script.lock().expect("poisoned").take();
        if let Some(s) = script {
            if s.is("exit-at", "disconnect") {
                exit_now("disconnect");
            }
            if let Some(d) = s.ms("delay-disconnect")? {
                tokio::time::sleep(d).await;
            }
        }
        if let Some(t) = self.inner.task.lock().expect("poisoned").take() {
            t.abort();
        }
        self.inner.tun.lock().expect("poisoned").take();
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = tinynm_vpn_plugin::service::args_or_exit(SERVICE, "tinynm-testbench");
    if args.bus_name.starts_with(&format!("{SERVICE}-crash")) {
        exit_now("start");
    }
    if args.bus_name.starts_with(&format!("{SERVICE}-silent")) {
        tracing::warn!("silent: never claiming {}", args.bus_name);
        // Nobody would ever end a plugin that never appeared: go when the daemon goes.
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
        return;
    }
    tinynm_vpn_plugin::service::run_or_exit(Testbench::default(), args, "tinynm-testbench").await;
}
