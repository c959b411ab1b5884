//! A tinynmd that dies (SIGKILL, at a point the test chooses through `TINYNMD_CRASH_AT`) at
//! any moment of an apply or a removal leaves nothing that its next start does not remove: the
//! journal is written ahead of every netlink batch, MTU changes included.

mod common;

use std::time::Duration;

use common::World;
use tinynm_sandbox::DaemonOptions;

fn crashing_at(point: &str) -> DaemonOptions {
    DaemonOptions {
        env: vec![("TINYNMD_CRASH_AT".into(), point.into())],
        ..Default::default()
    }
}

fn routes_matching(w: &World, prefix: &str) -> usize {
    w.kernel()
        .routes
        .iter()
        .filter(|r| r.starts_with(prefix))
        .count()
}

/// Restarts tinynmd without the crash point and waits until the kernel is as it was.
async fn restart_and_expect_clean(w: &mut World, base: &tinynm_sandbox::Kernel) {
    w.daemon.set_env("TINYNMD_CRASH_AT", None);
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    let log = w.daemon.log_text();
    assert!(
        log.contains("objects an earlier tinynmd left in the kernel"),
        "{log}"
    );
    // A plugin's own tun goes when the orphaned plugin notices tinynmd is gone: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while w.kernel().links.len() != base.links.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.assert_clean(base);
    let journals = std::fs::read_dir(w.daemon.dir().join("state"))
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.ends_with(".journal") || n.ends_with(".tmp")
        })
        .count();
    assert_eq!(journals, 0, "no journal left after recovery");
}

/// The journals in the state directory, with their sizes.
fn journals(w: &World) -> Vec<(String, u64)> {
    std::fs::read_dir(w.daemon.dir().join("state"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
        .map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n, e.metadata().unwrap().len())
        })
        .collect()
}

async fn crash_mid_apply(data: &[(&str, &str)], on_parent: bool) {
    // Addresses are window 1; 10,000 routes are windows 2 to 4 of 4,096: die before the third.
    let mut w = World::with(crashing_at("apply-window:3")).await;
    let base = w.kernel();
    let p = w.add("midway", data).await;
    let _ = w.activate(&p).await;
    assert!(
        w.daemon.wait_exit(Duration::from_secs(30)).await,
        "tinynmd did not reach its crash point"
    );
    // Written ahead: the journal names at least the 8,192 routes of the first two windows.
    let j = journals(&w);
    assert!(
        j.len() == 1 && j[0].1 > 8192 * 40,
        "one journal, written ahead of the windows sent: {j:?}"
    );
    if on_parent {
        // The parent outlives the plugin, so what reached the kernel is still there.
        let left = routes_matching(&w, "100.6");
        assert!(
            (4096..10_000).contains(&left),
            "the crash came partway through the routes ({left} in the kernel)"
        );
    }
    restart_and_expect_clean(&mut w, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_partway_through_an_apply_on_the_parent_leaves_nothing() {
    // A route-based VPN (no tundev): its config sits on the uplink, which outlives everything.
    crash_mid_apply(
        &[
            ("malformed", "no-tundev"),
            ("address", "10.8.9.4"),
            ("route-count", "10000"),
            ("never-default", "true"),
        ],
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_partway_through_an_apply_on_a_tun_leaves_nothing() {
    crash_mid_apply(
        &[
            ("tundev", "tbmid"),
            ("route-count", "10000"),
            ("never-default", "true"),
        ],
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_partway_through_a_removal_leaves_nothing() {
    let mut w = World::with(crashing_at("remove-batch:10")).await;
    let base = w.kernel();
    let p = w
        .add(
            "unwind",
            &[
                ("malformed", "no-tundev"),
                ("address", "10.8.9.5"),
                ("route-count", "10000"),
                ("never-default", "true"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    assert_eq!(routes_matching(&w, "100.6"), 10_000);
    let _ = w.manager().await.deactivate_connection(&ac).await;
    assert!(
        w.daemon.wait_exit(Duration::from_secs(30)).await,
        "tinynmd did not reach its crash point"
    );
    let left = routes_matching(&w, "100.6");
    assert!(
        (1..10_000).contains(&left),
        "the crash came partway through the removal ({left} left)"
    );
    restart_and_expect_clean(&mut w, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtu_tinynmd_changed_is_put_back_after_a_crash() {
    let mut w = World::new().await;
    // A persistent tun of the test's own, which outlives any plugin: only the journal can
    // tell the next tinynmd what its MTU was.
    let mut ip = std::process::Command::new("ip");
    ip.args(["tuntap", "add", "dev", "tbkeep0", "mode", "tun"]);
    w.ns.prepare(&mut ip);
    assert!(ip.status().unwrap().success());
    let base = w.kernel();
    assert_eq!(base.link("tbkeep0").unwrap().mtu, 1500);
    let p = w
        .add(
            "keepmtu",
            &[
                ("claim-tundev", "tbkeep0"),
                ("mtu", "1300"),
                ("address", "10.8.9.6"),
                ("routes", "10.76.0.0/16"),
                ("never-default", "true"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    assert_eq!(k.link("tbkeep0").unwrap().mtu, 1300, "\n{k}");
    w.daemon.crash();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    let k = w.kernel();
    assert_eq!(k.link("tbkeep0").unwrap().mtu, 1500, "MTU put back\n{k}");
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_table_routes_ipv6_and_the_block_leaks_route_go_after_a_crash() {
    // Route-based (no tundev): what they put in the kernel outlives the plugins.
    let mut w = World::new().await;
    let base = w.kernel();
    let mut tabled = common::profile(
        "tabled",
        common::TESTBENCH,
        &[
            ("malformed", "no-tundev"),
            ("address", "10.8.9.10"),
            ("address6", "fd00:8::2"),
            ("routes", "10.50.0.0/16"),
        ],
    );
    tabled.ipv4.route_table = 100;
    tabled.ipv4.routing_rules = vec![
        tinynm_config::profile::RoutingRule::parse("priority 1000 from 10.8.9.10/32 table 100")
            .unwrap(),
    ];
    let mut leaky = common::profile(
        "leaky",
        common::TESTBENCH,
        &[("malformed", "no-tundev"), ("address", "10.8.9.11")],
    );
    leaky.ipv6.block_leaks = true;
    for p in [tabled, leaky] {
        let path = w.add_profile(p).await;
        let ac = w.activate(&path).await.unwrap();
        assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    }
    let k = w.kernel();
    for want in [
        "10.50.0.0/16 dev veth0 proto static metric 50 table 100",
        "unreachable default dev lo proto static metric 50",
    ] {
        assert!(k.routes.iter().any(|r| r == want), "missing {want}\n{k}");
    }
    assert!(
        k.addresses.iter().any(|a| a.starts_with("fd00:8::2/")),
        "\n{k}"
    );
    assert_eq!(k.rules, vec!["priority 1000 from 10.8.9.10/32 table 100"]);
    w.daemon.crash();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    w.assert_clean(&base);
}

/// A plugin that leaves the tun device it made behind (Debian's nm-openconnect-service does
/// after every disconnect, under NM too): tinynmd removes it once the plugin has gone. An
/// interface that was there before the plugin ran is never removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tun_the_plugin_left_behind_is_removed_once_it_has_gone() {
    let mut w = World::new().await;
    let base = w.kernel();
    let p = w
        .add(
            "persist",
            &[
                ("tundev", "tbpersist0"),
                ("persist-tun", "yes"),
                ("address", "10.8.9.7"),
                ("never-default", "true"),
            ],
        )
        .await;
    let p_persist = p.clone();
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    w.tinynm(&["connection", "down", "persist"]);
    assert_eq!(w.wait_vpn(ac.as_str(), &[7]).await.0, 7);
    w.wait_log(
        "removed the tun device tbpersist0 that the plugin",
        Duration::from_secs(10),
    )
    .await;
    w.assert_clean(&base);
    // The same, on an interface of the test's own: it stays.
    let mut ip = std::process::Command::new("ip");
    ip.args(["tuntap", "add", "dev", "tbmine0", "mode", "tun"]);
    w.ns.prepare(&mut ip);
    assert!(ip.status().unwrap().success());
    let p = w
        .add(
            "mine",
            &[
                ("claim-tundev", "tbmine0"),
                ("address", "10.8.9.8"),
                ("never-default", "true"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    w.tinynm(&["connection", "down", "mine"]);
    assert_eq!(w.wait_vpn(ac.as_str(), &[7]).await.0, 7);
    // Then the persistent one once more: once its tun is removed, the earlier plugin's end
    // has long been handled.
    let ac = w.activate(&p_persist).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    w.tinynm(&["connection", "down", "persist"]);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while w
        .daemon
        .log_text()
        .matches("removed the tun device tbpersist0")
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < end, "{}", w.daemon.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(w.kernel().link("tbmine0").is_some(), "{}", w.kernel());
    assert!(
        !w.daemon
            .log_text()
            .contains("removed the tun device tbmine0")
    );
}
