//! The activation spine, end to end: a real bus, a real kernel, the test-bench plugin.

mod common;

use common::{TESTBENCH, World};

const VPN: [u32; 4] = [2, 3, 4, 5];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_happy_path() {
    let mut w = World::new().await;
    let base = w.kernel();
    let p = w
        .add(
            "v4",
            &[
                ("tundev", "tbtun0"),
                ("address", "10.8.0.2"),
                ("peer", "10.8.0.1"),
                ("gateway", "192.0.2.1"),
                ("mtu", "1400"),
                ("routes", "10.50.0.0/16,10.60.1.0/24 via 10.8.0.1"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    assert_eq!(
        w.vpn_states(ac.as_str()),
        VPN.iter().map(|s| (*s, 1)).collect::<Vec<_>>()
    );
    assert_eq!(w.ac_states(ac.as_str()), vec![(1, 1), (2, 1)]);
    let k = w.kernel();
    assert_eq!(k.addresses, {
        let mut v = base.addresses.clone();
        v.push("10.8.0.2 peer 10.8.0.1/32 dev tbtun0".into());
        v.sort();
        v
    });
    let tun = k.link("tbtun0").expect("tun device");
    assert!(tun.up, "tun is up");
    assert_eq!(tun.mtu, 1400);
    let mut want: Vec<String> = base.routes.clone();
    want.extend(
        [
            "10.8.0.1/32 dev tbtun0 proto kernel metric 50",
            "10.50.0.0/16 dev tbtun0 proto static metric 50",
            "10.60.1.0/24 via 10.8.0.1 dev tbtun0 proto static metric 50",
            "default dev tbtun0 proto static metric 50",
            "192.0.2.1/32 via 10.99.0.1 dev veth0 proto static metric 50",
            "10.99.0.1/32 dev veth0 proto static metric 50",
        ]
        .map(String::from),
    );
    want.sort();
    assert_eq!(k.routes, want, "\n{k}");

    w.manager().await.deactivate_connection(&ac).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[6, 7]).await, (7, 2));
    assert_eq!(
        w.ac_states(ac.as_str()),
        vec![(1, 1), (2, 1), (3, 2), (4, 2)]
    );
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
    assert!(w.vpn_actives().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_happy_path() {
    let mut w = World::new().await;
    let base = w.kernel();
    let p = w
        .add(
            "v6",
            &[
                ("tundev", "tbtun6"),
                ("address", "none"),
                ("address6", "fd00:8::2"),
                ("prefix6", "64"),
                ("routes6", "fd00:60::/48,fd00:70::/56 via fd00:8::1"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    assert!(
        k.addresses.contains(&"fd00:8::2/64 dev tbtun6".to_string()),
        "\n{k}"
    );
    let mut on_tun = k.routes_on("tbtun6");
    on_tun.sort();
    assert_eq!(
        on_tun,
        vec![
            "default dev tbtun6 proto static metric 50",
            "fd00:60::/48 dev tbtun6 proto static metric 50",
            "fd00:70::/56 via fd00:8::1 dev tbtun6 proto static metric 50",
            "fd00:8::/64 dev tbtun6 proto kernel metric 50",
        ],
        "\n{k}"
    );
    // An IPv6-only VPN puts nothing IPv4 on the tunnel.
    assert!(
        !k.addresses
            .iter()
            .any(|a| a.contains("tbtun6") && a.contains('.'))
    );
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[6, 7]).await, (7, 2));
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vpns_at_once_share_the_server_route() {
    let mut w = World::new().await;
    let base = w.kernel();
    let a = w
        .add(
            "a",
            &[
                ("tundev", "tba"),
                ("address", "10.8.1.2"),
                ("peer", "10.8.1.1"),
                ("routes", "10.51.0.0/16"),
            ],
        )
        .await;
    let b = w
        .add(
            "b",
            &[
                ("tundev", "tbb"),
                ("address", "10.8.2.2"),
                ("peer", "10.8.2.1"),
                ("routes", "10.52.0.0/16"),
            ],
        )
        .await;
    let ac_a = w.activate(&a).await.unwrap();
    let ac_b = w.activate(&b).await.unwrap();
    assert_ne!(ac_a, ac_b);
    assert_eq!(w.wait_vpn(ac_a.as_str(), &[5, 6, 7]).await, (5, 1));
    assert_eq!(w.wait_vpn(ac_b.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    for r in [
        "10.51.0.0/16 dev tba proto static metric 50",
        "10.52.0.0/16 dev tbb proto static metric 50",
        "default dev tba proto static metric 50",
        "default dev tbb proto static metric 50",
        "192.0.2.1/32 via 10.99.0.1 dev veth0 proto static metric 50",
    ] {
        assert!(k.routes.contains(&r.to_string()), "missing {r}\n{k}");
    }
    let active = w.vpn_actives().await;
    assert_eq!(
        active,
        vec![ac_b.clone(), ac_a.clone()],
        "newest first, as NM"
    );

    // Taking A down leaves B whole, including the server route both use.
    w.manager()
        .await
        .deactivate_connection(&ac_a)
        .await
        .unwrap();
    w.wait_removed(ac_a.as_str()).await;
    let k = w.kernel();
    assert!(k.routes_on("tba").is_empty(), "\n{k}");
    assert_eq!(k.routes_on("tbb").len(), 3, "\n{k}");
    assert!(
        k.routes
            .contains(&"192.0.2.1/32 via 10.99.0.1 dev veth0 proto static metric 50".to_string())
    );
    w.manager()
        .await
        .deactivate_connection(&ac_b)
        .await
        .unwrap();
    w.wait_removed(ac_b.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_while_activating() {
    let mut w = World::new().await;
    let base = w.kernel();
    let p = w
        .add("slow", &[("tundev", "tbslow"), ("delay-config", "20000")])
        .await;
    let ac = w.activate(&p).await.unwrap();
    w.wait_vpn(ac.as_str(), &[3]).await;
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (7, 2));
    assert_eq!(w.ac_states(ac.as_str()), vec![(1, 1), (4, 2)]);
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_error_mid_apply_rolls_back_everything() {
    let mut w = World::new().await;
    let base = w.kernel();
    // The second route's next hop is on no link: the kernel refuses it after the address,
    // the first route and more are in.
    let p = w
        .add(
            "refused",
            &[
                ("tundev", "tbref"),
                ("route-count", "300"),
                ("routes", "10.50.0.0/16,10.70.0.0/16 via 192.0.2.77"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (6, 5));
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
    let log = w.daemon.log_text();
    assert!(
        log.contains("kernel refused to add route 10.70.0.0/16 via 192.0.2.77")
            && log.contains("Network is unreachable"),
        "the log names the route and the kernel's error:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_answers_are_lost_is_rolled_back_whole() {
    // The third datagram of adds (the routes' second 256; the address was the first) reaches
    // the kernel, which adds its routes, but its answers are lost, as at a socket error or the
    // 10 s timeout. The routes of that window, answered or not, are removed with the rest.
    let mut w = World::with(tinynm_sandbox::DaemonOptions {
        env: vec![("TINYNMD_FAIL_AT".into(), "batch-answers:3".into())],
        ..Default::default()
    })
    .await;
    let base = w.kernel();
    // A route-based VPN: its routes sit on the parent, which outlives the plugin, so only the
    // rollback takes them away.
    let p = w
        .add(
            "lost",
            &[
                ("malformed", "no-tundev"),
                ("address", "10.8.9.6"),
                ("route-count", "600"),
                ("never-default", "true"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (6, 5));
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
    let log = w.daemon.log_text();
    assert!(
        log.contains("TINYNMD_FAIL_AT: failing at batch-answers")
            && log.contains(
                "the netlink socket failed while trying to apply 256 changes: \
                 its answers were lost"
            ),
        "the log names the failed batch:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_crashed_daemon_left_is_removed_at_its_next_start() {
    let mut w = World::new().await;
    let base = w.kernel();
    // A route-based VPN: its config sits on the parent, which outlives the plugin.
    let p = w
        .add(
            "crashy",
            &[
                ("malformed", "no-tundev"),
                ("address", "10.8.9.2"),
                ("routes", "10.77.0.0/16"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    w.daemon.crash();
    let k = w.kernel();
    assert!(
        k.addresses.contains(&"10.8.9.2/32 dev veth0".to_string()),
        "\n{k}"
    );
    assert!(
        k.routes
            .contains(&"10.77.0.0/16 dev veth0 proto static metric 50".to_string()),
        "\n{k}"
    );
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    w.assert_clean(&base);
    let log = w.daemon.log_text();
    assert!(
        log.contains("objects an earlier tinynmd left in the kernel"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_journal_is_reported_and_what_it_names_is_removed() {
    let mut w = World::new().await;
    let p = w
        .add(
            "torn",
            &[
                ("malformed", "no-tundev"),
                ("address", "10.8.9.3"),
                ("routes", "10.78.0.0/16,10.79.0.0/16"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    w.daemon.crash();
    let n = ac.as_str().rsplit('/').next().unwrap();
    let journal = w.daemon.dir().join("state").join(format!("ac-{n}.journal"));
    let bytes = std::fs::read(&journal).unwrap();
    std::fs::write(&journal, &bytes[..bytes.len() - 5]).unwrap();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    let log = w.daemon.log_text();
    let needle = format!("{}: damaged journal: bytes", journal.display());
    assert!(log.contains(&needle), "log lacks {needle:?}:\n{log}");
    assert!(
        log.contains("are not a whole record (a torn write?)"),
        "{log}"
    );
    let k = w.kernel();
    assert!(
        !k.addresses.contains(&"10.8.9.3/32 dev veth0".to_string()),
        "the address it still names is gone\n{k}"
    );
    assert!(!journal.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_from_anyone_but_the_plugin_are_ignored() {
    use std::collections::HashMap;
    let mut w = World::new().await;
    let p = w
        .add(
            "owned",
            &[
                ("tundev", "tbown"),
                ("delay-config", "1500"),
                ("routes", "10.50.0.0/16"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    w.wait_vpn(ac.as_str(), &[3]).await;
    // An impostor on the bus sends what would stop or hijack the VPN if tinynmd listened.
    let plugin = "/org/freedesktop/NetworkManager/VPN/Plugin";
    let iface = "org.freedesktop.NetworkManager.VPN.Plugin";
    let mut bogus: HashMap<&str, zbus::Variant<'_>> = HashMap::new();
    bogus.insert("tundev", zbus::Variant::from("lo"));
    bogus.insert("gateway", zbus::Variant::from(1u32));
    w.conn
        .emit_signal(None::<()>, plugin, iface, "Failure", &(0u32,))
        .await
        .unwrap();
    w.conn
        .emit_signal(None::<()>, plugin, iface, "Config", &(bogus,))
        .await
        .unwrap();
    w.conn
        .emit_signal(None::<()>, plugin, iface, "StateChanged", &(6u32,))
        .await
        .unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    assert_eq!(
        k.routes_on("tbown").len(),
        2,
        "the plugin's own config\n{k}"
    );
    assert!(k.routes_on("lo").is_empty(), "\n{k}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_is_blocked_while_an_ipv4_only_vpn_takes_the_default_route() {
    let mut w = World::new().await;
    let base = w.kernel();
    let mut p = common::profile("full", TESTBENCH, &[("tundev", "tbleak0")]);
    p.ipv6.block_leaks = true;
    let path = w.add_profile(p).await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    assert!(
        k.routes
            .contains(&"unreachable default dev lo proto static metric 50".to_string()),
        "\n{k}"
    );
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);

    // A split tunnel (never-default) leaves IPv6 alone.
    let mut p = common::profile(
        "split",
        TESTBENCH,
        &[("tundev", "tbleak1"), ("never-default", "true")],
    );
    p.ipv6.block_leaks = true;
    let path = w.add_profile(p).await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    assert!(
        !w.kernel()
            .routes
            .iter()
            .any(|r| r.starts_with("unreachable"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_table_puts_the_vpn_routes_in_that_table() {
    let mut w = World::new().await;
    let base = w.kernel();
    let mut p = common::profile(
        "tabled",
        TESTBENCH,
        &[("tundev", "tbtab0"), ("routes", "10.50.0.0/16")],
    );
    p.ipv4.route_table = 100;
    p.ipv4.routing_rules = vec![
        tinynm_config::profile::RoutingRule::parse("priority 1000 from 10.8.0.2/32 table 100")
            .unwrap(),
    ];
    let path = w.add_profile(p).await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    for r in [
        "default dev tbtab0 proto static metric 50 table 100",
        "10.50.0.0/16 dev tbtab0 proto static metric 50 table 100",
    ] {
        assert!(k.routes.contains(&r.to_string()), "missing {r}\n{k}");
    }
    assert!(
        !k.routes
            .iter()
            .any(|r| r.contains("tbtab0") && !r.ends_with("table 100")),
        "nothing of the VPN in the main table\n{k}"
    );
    assert_eq!(
        k.rules,
        vec!["priority 1000 from 10.8.0.2/32 table 100"],
        "\n{k}"
    );
    // The way to the VPN server stays in the main table.
    assert!(
        k.routes
            .contains(&"192.0.2.1/32 via 10.99.0.1 dev veth0 proto static metric 50".to_string()),
        "\n{k}"
    );
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_default_and_ignore_auto_routes_keep_the_main_way_out() {
    let mut w = World::new().await;
    let main_default = "default via 10.99.0.1 dev veth0 proto static metric 100".to_string();
    // From the plugin, and from the profile.
    let a = w
        .add(
            "nd-plugin",
            &[
                ("tundev", "tbnd0"),
                ("never-default", "true"),
                ("routes", "10.51.0.0/16"),
            ],
        )
        .await;
    let mut p = common::profile(
        "nd-profile",
        TESTBENCH,
        &[("tundev", "tbnd1"), ("routes", "10.52.0.0/16")],
    );
    p.ipv4.never_default = true;
    p.ipv4.ignore_auto_routes = true;
    p.ipv4.routes = vec![tinynm_config::profile::StaticRoute {
        dest: "10.53.0.0".parse().unwrap(),
        prefix: 16,
        next_hop: None,
        metric: Some(7),
    }];
    let b = w.add_profile(p).await;
    for path in [&a, &b] {
        let ac = w.activate(path).await.unwrap();
        assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    }
    let k = w.kernel();
    assert!(k.routes.contains(&main_default), "\n{k}");
    assert!(
        !k.routes.iter().any(|r| r.starts_with("default dev tbnd")),
        "\n{k}"
    );
    assert!(
        k.routes
            .contains(&"10.51.0.0/16 dev tbnd0 proto static metric 50".to_string()),
        "\n{k}"
    );
    // ignore-auto-routes drops the plugin's route; the profile's own stays, with its metric.
    assert!(
        !k.routes.iter().any(|r| r.starts_with("10.52.0.0/16")),
        "\n{k}"
    );
    assert!(
        k.routes
            .contains(&"10.53.0.0/16 dev tbnd1 proto static metric 7".to_string()),
        "\n{k}"
    );
}

/// A new config while up (as a restarted tunnel sends): re-applied; the old routes stay only
/// when the new config says preserve-routes; nothing is left after.
async fn reconfigured(preserve: bool) {
    let mut w = World::new().await;
    let base = w.kernel();
    let dev = if preserve { "tbre1" } else { "tbre0" };
    let mut data = vec![
        ("tundev", dev),
        ("routes", "10.61.0.0/16"),
        ("reconfig-ms", "50"),
        ("address-2", "10.8.0.3"),
        ("routes-2", "10.62.0.0/16"),
    ];
    if preserve {
        data.push(("preserve-routes", "true"));
    }
    let p = w.add("reconf", &data).await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let new = format!("10.62.0.0/16 dev {dev} proto static metric 50");
    let old = format!("10.61.0.0/16 dev {dev} proto static metric 50");
    // Only the end state has the new address and route and, exactly when preserved, the old
    // route (re-checked at each signal; the re-applied config's IP4Config is the last one).
    let k = w
        .until("the re-applied config in the kernel", || async {
            let k = w.kernel();
            (k.addresses.contains(&format!("10.8.0.3/32 dev {dev}"))
                && k.routes.contains(&new)
                && k.routes.contains(&old) == preserve)
                .then_some(k)
        })
        .await;
    assert!(
        !k.addresses.iter().any(|a| a.starts_with("10.8.0.2")),
        "\n{k}"
    );
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_config_while_up_replaces_the_old_one() {
    reconfigured(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preserve_routes_keeps_the_old_routes() {
    reconfigured(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vpns_taken_apart_newest_first_leave_nothing() {
    let mut w = World::new().await;
    let base = w.kernel();
    let mut acs = Vec::new();
    for (id, dev, addr, route) in [
        ("c", "tbc", "10.8.3.2", "10.53.0.0/16"),
        ("d", "tbd", "10.8.4.2", "10.54.0.0/16"),
    ] {
        let p = w
            .add(id, &[("tundev", dev), ("address", addr), ("routes", route)])
            .await;
        acs.push(w.activate(&p).await.unwrap());
    }
    for ac in &acs {
        assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    }
    // The newer one first: the older keeps its routes and the server route both use.
    w.manager()
        .await
        .deactivate_connection(&acs[1])
        .await
        .unwrap();
    w.wait_removed(acs[1].as_str()).await;
    let k = w.kernel();
    assert!(k.routes_on("tbd").is_empty(), "\n{k}");
    assert_eq!(
        k.routes_on("tbc"),
        vec![
            "10.53.0.0/16 dev tbc proto static metric 50",
            "default dev tbc proto static metric 50"
        ],
        "\n{k}"
    );
    assert!(
        k.routes
            .contains(&"192.0.2.1/32 via 10.99.0.1 dev veth0 proto static metric 50".to_string())
    );
    w.manager()
        .await
        .deactivate_connection(&acs[0])
        .await
        .unwrap();
    w.wait_removed(acs[0].as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_routes_all_reach_the_kernel_and_all_leave_it() {
    // More than one datagram of 256 requests, only the last of each ACKed: every route must
    // still be in the kernel, exactly.
    let mut w = World::new().await;
    let base = w.kernel();
    let path = w
        .add(
            "many",
            &[
                ("tundev", "tbmany"),
                ("route-count", "10000"),
                ("never-default", "true"),
            ],
        )
        .await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    let got: std::collections::BTreeSet<String> = k
        .routes_on("tbmany")
        .iter()
        .map(|r| r.split_whitespace().next().unwrap().to_string())
        .filter(|d| d.starts_with("100.6"))
        .collect();
    let want: std::collections::BTreeSet<String> = (1..=10_000u32)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(100, 64, 0, 0)) + i);
            format!("{a}/32")
        })
        .collect();
    assert_eq!(got.len(), 10_000);
    assert_eq!(got, want, "the kernel holds exactly the plugin's routes");
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
}
