//! Boot to VPN, beside NetworkManager 1.42 in the same run: the same topology (an unconfigured
//! `veth0`, a router namespace with Debian's dnsmasq), the same NM keyfiles read by both (a
//! DHCP uplink whose `connection.secondaries` is a test-bench VPN). Times from the daemon's
//! spawn, and from the carrier's return, to the VPN's `VpnStateChanged(ACTIVATED)` on the bus;
//! the daemon's RSS with both up.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tinynm_sandbox::dhcp::{DhcpOptions, Dnsmasq};
use tinynm_sandbox::reference::NetworkManager;
use tinynm_sandbox::{Bus, Daemon, DaemonOptions, Netns};
use zbus::{MatchRule, MessageStream};

const VPN_UUID: &str = "9d6b0f0e-0909-4a09-9009-b0a9c0d0e009";

fn keyfiles() -> Vec<(String, String)> {
    vec![
        (
            "uplink.nmconnection".into(),
            format!(
                "[connection]\nid=uplink\nuuid=9d6b0f0e-0909-4a09-9009-b0a9c0d0e001\n\
                 type=ethernet\ninterface-name=veth0\nsecondaries={VPN_UUID};\n\n[ethernet]\n\n\
                 [ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=eui64\nmethod=ignore\n\n[proxy]\n"
            ),
        ),
        (
            "office.nmconnection".into(),
            format!(
                "[connection]\nid=office\nuuid={VPN_UUID}\ntype=vpn\nautoconnect=false\n\n\
                 [vpn]\nservice-type=org.freedesktop.NetworkManager.testbench\ntundev=tbboot0\n\
                 never-default=true\n\n[ipv4]\nmethod=auto\nnever-default=true\n\n[ipv6]\n\
                 method=ignore\n\n[proxy]\n"
            ),
        ),
    ]
}

/// Which daemon.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Which {
    /// tinynmd (release build).
    Tinynm,
    /// NetworkManager 1.42.
    Nm,
}

/// One run's figures.
pub struct Run {
    /// Spawn → the VPN's ACTIVATED.
    pub boot: Duration,
    /// Carrier back → the VPN's ACTIVATED again.
    pub carrier: Duration,
    /// A reboot (the daemon stopped, the links' state gone, its files and the DHCP server's
    /// lease kept): start → the VPN's ACTIVATED.
    pub reboot: Duration,
    /// The daemon's RSS with the uplink and the VPN up, KiB.
    pub rss_kib: u64,
}

enum Running {
    Tinynm(Box<Daemon>),
    Nm(NetworkManager),
}

impl Running {
    fn rss(&self) -> u64 {
        match self {
            Running::Tinynm(d) => d.rss_kib().unwrap_or(0),
            Running::Nm(n) => n.rss_kib().unwrap_or(0),
        }
    }

    fn log(&self) -> String {
        match self {
            Running::Tinynm(d) => d.log_text(),
            Running::Nm(n) => n.log_text(),
        }
    }
}

/// Waits (at most 60 s) for the next `VpnStateChanged(state)`.
async fn vpn_state(s: &mut MessageStream, state: u32, d: &Running) -> anyhow::Result<Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some(Ok(m))) => m,
            _ => bail!(
                "no VpnStateChanged({state}) within 60 s; the daemon's log:\n{}",
                d.log()
            ),
        };
        let (st, _): (u32, u32) = m.body().deserialize()?;
        if st == state {
            return Ok(Instant::now());
        }
    }
}

/// One boot, one carrier loss and return, under `which`.
pub async fn run(which: Which, bin: &std::path::Path) -> anyhow::Result<Run> {
    let ns = Netns::new()?;
    let router = ns.add_uplink()?;
    let tmp = tempfile::tempdir()?;
    let mut dhcp = Dnsmasq::start(&router, tmp.path(), &DhcpOptions::default())?;
    if std::env::var_os("TINYNM_BENCH_SETTLE").is_some() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let bus = Bus::start()?;
    let conn = bus.connect().await?;
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .member("VpnStateChanged")
        .build()?;
    let mut s = MessageStream::for_match_rule(rule, &conn, None).await?;
    let t0 = Instant::now();
    let d = match which {
        Which::Tinynm => Running::Tinynm(Box::new(
            Daemon::start(
                &ns,
                &bus,
                DaemonOptions {
                    keyfiles: keyfiles(),
                    binary_dir: Some(bin.to_path_buf()),
                    log_level: std::env::var("TINYNM_BENCH_LEVEL")
                        .unwrap_or_else(|_| "info".into()),
                    ..Default::default()
                },
            )
            .await?,
        )),
        Which::Nm => {
            let name = format!(
                "[VPN Connection]\nname=testbench\nservice=org.freedesktop.NetworkManager.testbench\n\
                 program={}\nsupports-multiple-connections=true\n",
                bin.join("tinynm-testbench").display()
            );
            Running::Nm(NetworkManager::spawn(
                &ns,
                &bus,
                &keyfiles(),
                &[("nm-testbench-service.name".into(), name)],
            )?)
        }
    };
    let up = vpn_state(&mut s, 5, &d).await?;
    let boot = up - t0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_kib = d.rss();
    router.set_link("veth1", false)?;
    vpn_state(&mut s, 7, &d)
        .await
        .context("the VPN going down with the carrier")?;
    let t1 = Instant::now();
    router.set_link("veth1", true)?;
    let again = vpn_state(&mut s, 5, &d).await?;
    // A reboot: each daemon stops as a service manager stops it, the kernel forgets the links'
    // state; the daemon's files (its kept DHCP lease) and the DHCP server remember.
    let t2;
    let d = match d {
        Running::Tinynm(mut x) => {
            x.stop();
            ns.reset_uplink()?;
            t2 = Instant::now();
            x.restart(&ns, &bus).await?;
            Running::Tinynm(x)
        }
        Running::Nm(mut x) => {
            x.restart_stopped(&ns, &bus, || ns.reset_uplink())?;
            t2 = Instant::now();
            Running::Nm(x)
        }
    };
    let rebooted = vpn_state(&mut s, 5, &d).await?;
    if std::env::var_os("TINYNM_BENCH_LOG").is_some() {
        eprintln!("{}\n--- dnsmasq ---\n{}", d.log(), dhcp.log_text());
    }
    Ok(Run {
        boot,
        carrier: again - t1,
        reboot: rebooted - t2,
        rss_kib,
    })
}
