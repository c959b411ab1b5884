//! The embedded bus beside dbus-daemon, for a container: from nothing running to tinynmd
//! owning its name (for dbus-daemon, its start included), a test-bench VPN's activation, and
//! the memory of what runs (tinynmd with busd inside, or tinynmd and dbus-daemon).

use std::time::{Duration, Instant};

use futures::StreamExt;
use tinynm_sandbox::embedded::EmbeddedDaemon;
use tinynm_sandbox::nm::{ManagerProxy, SettingsProxy};
use tinynm_sandbox::{Bus, Daemon, DaemonOptions, Netns, rss_of};
use zbus::{MatchRule, MessageStream, OwnedObjectPath};

/// One start and one activation.
pub struct Run {
    /// Nothing running → `org.freedesktop.NetworkManager` owned.
    pub start: Duration,
    /// ActivateConnection → VpnStateChanged(ACTIVATED).
    pub vpn: Duration,
    /// RSS of tinynmd, and of dbus-daemon when there is one, KiB, 0.5 s after the VPN came up.
    pub rss_kib: (u64, u64),
    /// Nothing running → the VPN ACTIVATED, in one go.
    pub up: Duration,
}

/// The bytes of the files a container of `programs` holds: each program and each library it
/// links (`ldd`), each file once. Static programs link nothing.
pub fn image_bytes(programs: &[std::path::PathBuf]) -> anyhow::Result<u64> {
    let mut files: std::collections::BTreeSet<std::path::PathBuf> = Default::default();
    for p in programs {
        files.insert(std::fs::canonicalize(p)?);
        let out = std::process::Command::new("ldd").arg(p).output()?;
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(lib) = l.split_whitespace().find(|w| w.starts_with('/')) {
                files.insert(std::fs::canonicalize(lib)?);
            }
        }
    }
    let mut total = 0;
    for f in &files {
        total += std::fs::metadata(f)?.len();
    }
    Ok(total)
}

/// A test-bench VPN on `conn`: the time from ActivateConnection to ACTIVATED.
async fn activation(conn: &zbus::Connection) -> anyhow::Result<Duration> {
    let p = tinynm_config::Profile::new_vpn(
        "bench",
        "0b1e5ed0-5ead-4b0e-9c0d-000000000013",
        "org.freedesktop.NetworkManager.testbench",
    );
    let profile = SettingsProxy::new(conn)
        .await?
        .add_connection_unsaved(tinynm_config::dbus::to_dict(&p, true))
        .await?;
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .member("VpnStateChanged")
        .build()?;
    let mut s = MessageStream::for_match_rule(rule, conn, None).await?;
    let root = OwnedObjectPath::try_from("/")?;
    let t = Instant::now();
    ManagerProxy::new(conn)
        .await?
        .activate_connection(&profile, &root, &root)
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = tokio::time::timeout_at(deadline, s.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the bus closed"))??;
        let (state, _): (u32, u32) = m.body().deserialize()?;
        match state {
            5 => return Ok(t.elapsed()),
            6 | 7 => anyhow::bail!("the VPN failed ({state})"),
            _ => {}
        }
    }
}

/// One run on the embedded bus (`embedded`) or on a dbus-daemon, release binaries from `bin`.
pub async fn run(embedded: bool, bin: &std::path::Path) -> anyhow::Result<Run> {
    let ns = Netns::new()?;
    ns.add_parent()?;
    let tmp = tempfile::tempdir()?;
    if embedded {
        let t0 = Instant::now();
        let sock = tmp.path().join("bus");
        let d = EmbeddedDaemon::start(&ns, tmp.path(), Some(&sock), false, Some(bin)).await?;
        let conn = d.connect().await?;
        let start = t0.elapsed();
        let vpn = activation(&conn).await?;
        let up = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Run {
            start,
            vpn,
            rss_kib: (rss_of(d.pid()).unwrap_or(0), 0),
            up,
        })
    } else {
        let t0 = Instant::now();
        let bus = Bus::start()?;
        let d = Daemon::start(
            &ns,
            &bus,
            DaemonOptions {
                binary_dir: Some(bin.to_path_buf()),
                log_level: "info".into(),
                ..Default::default()
            },
        )
        .await?;
        let start = t0.elapsed();
        let conn = bus.connect().await?;
        let vpn = activation(&conn).await?;
        let up = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Run {
            start,
            vpn,
            rss_kib: (d.rss_kib().unwrap_or(0), rss_of(bus.pid()).unwrap_or(0)),
            up,
        })
    }
}
