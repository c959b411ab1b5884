//! `tinynm-bench --soak [CYCLES]`: one tinynmd, CYCLES activate/deactivate cycles of a VPN with
//! routes and DNS, a plugin fault injected every 10th cycle (in turn: the plugin dying before
//! its config, a malformed config, a refused login, the plugin dying once up). Every 1,000
//! cycles it reports tinynmd's RSS, its open fds, the kernel's objects in the namespace and the
//! journal files in the state directory: all must stay flat.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tinynm_sandbox::nm::ManagerProxy;
use zbus::OwnedObjectPath;

use super::{Bench, TESTBENCH};

const FAULTS: &[(&str, &[(&str, &str)])] = &[
    ("plugin dies before Config", &[("exit-at", "config")]),
    ("malformed Ip4Config", &[("malformed", "wrong-type")]),
    (
        "login refused",
        &[("failure-at", "config"), ("failure", "login")],
    ),
    (
        "plugin dies once up",
        &[("exit-at", "activated"), ("exit-delay", "20")],
    ),
];

struct Sample {
    cycle: usize,
    rss_kib: u64,
    fds: usize,
    routes: usize,
    addresses: usize,
    links: usize,
    journals: usize,
    elapsed: Duration,
}

impl Bench {
    fn sample(&self, cycle: usize, t0: Instant) -> anyhow::Result<Sample> {
        let k = self.ns.snapshot()?;
        let journals = std::fs::read_dir(self.daemon.dir().join("state"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
                    .count()
            })
            .unwrap_or(0);
        Ok(Sample {
            cycle,
            rss_kib: self.daemon.rss_kib().unwrap_or(0),
            fds: self.daemon.fd_count(),
            routes: k.routes.len(),
            addresses: k.addresses.len(),
            links: k.links.len(),
            journals,
            elapsed: t0.elapsed(),
        })
    }

    /// Activates `profile`; waits until it is up and takes it down, or until it ends by
    /// itself; then until its plugin has left the bus. Returns the final VPN state.
    async fn soak_cycle(&mut self, profile: &OwnedObjectPath) -> anyhow::Result<u32> {
        let root = zbus::ObjectPath::try_from("/")?;
        let manager = ManagerProxy::new(&self.conn).await?;
        let ac = manager.activate_connection(profile, &root, &root).await?;
        let n = ac
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let plugin = format!("{TESTBENCH}.Connection_{n}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let (mut end, mut gone) = (None, false);
        while end.is_none() || !gone {
            let m = tokio::time::timeout_at(deadline, self.signals.next())
                .await
                .with_context(|| format!("cycle of {ac}: no end within 60 s"))?
                .context("bus closed")??;
            let h = m.header();
            match h.member().map(|m| m.as_str()) {
                Some("VpnStateChanged") if h.path().map(|p| p.as_str()) == Some(ac.as_str()) => {
                    let (s, _): (u32, u32) = m.body().deserialize()?;
                    match s {
                        // A fault may end it first: then there is nothing to deactivate.
                        5 => {
                            let _ = manager.deactivate_connection(&ac).await;
                        }
                        6 | 7 => end = Some(s),
                        _ => {}
                    }
                }
                Some("NameOwnerChanged") => {
                    let (who, _, new): (String, String, String) = m.body().deserialize()?;
                    if who == plugin && new.is_empty() {
                        gone = true;
                    }
                }
                _ => {}
            }
        }
        Ok(end.unwrap_or(0))
    }
}

pub async fn run(cycles: usize) -> anyhow::Result<()> {
    let mut b = Bench::new().await?;
    let common = |extra: &[(&str, &str)]| -> Vec<(&'static str, String)> {
        let mut d: Vec<(&'static str, String)> = vec![
            ("tundev", "soak0".into()),
            ("route-count", "50".into()),
            ("dns", "10.8.0.53".into()),
            ("never-default", "true".into()),
        ];
        for (k, v) in extra {
            let k: &'static str = Box::leak(k.to_string().into_boxed_str());
            d.push((k, v.to_string()));
        }
        d
    };
    let good = b.add_data(&common(&[])).await?;
    let mut faulty = Vec::new();
    for (_, data) in FAULTS {
        faulty.push(b.add_data(&common(data)).await?);
    }
    println!("# tinynm-bench --soak\n");
    println!(
        "{cycles} activate/deactivate cycles on one tinynmd (release build), a VPN with 50 routes and DNS; \
         every 10th cycle a plugin fault instead, in turn: {}.\n",
        FAULTS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| cycle | tinynmd RSS | open fds | routes | addresses | links | journal files | elapsed |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let t0 = Instant::now();
    let first = b.sample(0, t0)?;
    let show = |s: &Sample| {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            s.cycle,
            super::mib(s.rss_kib),
            s.fds,
            s.routes,
            s.addresses,
            s.links,
            s.journals,
            s.elapsed.as_secs_f64()
        )
    };
    show(&first);
    let mut ends = [0usize; 8];
    let mut last = None;
    for i in 1..=cycles {
        let p = if i % 10 == 0 {
            &faulty[(i / 10) % faulty.len()]
        } else {
            &good
        };
        let end = b.soak_cycle(p).await?;
        ends[end as usize % 8] += 1;
        if i % 1000 == 0 || i == cycles {
            let s = b.sample(i, t0)?;
            show(&s);
            last = Some(s);
        }
    }
    let last = last.context("no cycle ran")?;
    println!(
        "\nEnds: {} DISCONNECTED, {} FAILED. First to last: RSS {} → {}, fds {} → {}, routes {} → {}, journals {} → {}.",
        ends[7],
        ends[6],
        super::mib(first.rss_kib),
        super::mib(last.rss_kib),
        first.fds,
        last.fds,
        first.routes,
        last.routes,
        first.journals,
        last.journals
    );
    if last.fds != first.fds
        || last.routes != first.routes
        || last.addresses != first.addresses
        || last.links != first.links
        || last.journals != first.journals
    {
        bail!("not flat: something was left behind");
    }
    Ok(())
}
