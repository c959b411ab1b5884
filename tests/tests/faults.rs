//! Each fault of the test-bench plugin ends in NetworkManager's state and reason, and leaves
//! nothing in the kernel.

mod common;

use common::{TESTBENCH, World, profile};
use tinynm_sandbox::DaemonOptions;

/// Activates a test-bench profile and returns its final (VpnState, reason) after cleanup.
async fn outcome(w: &mut World, service: &str, data: &[(&str, &str)], timeout: u32) -> (u32, u32) {
    let base = w.kernel();
    let mut p = profile("fault", service, data);
    p.vpn.timeout = timeout;
    let path = w.add_profile(p).await;
    let ac = w.activate(&path).await.unwrap();
    let end = w.wait_vpn(ac.as_str(), &[6, 7]).await;
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
    end
}

fn quick() -> DaemonOptions {
    DaemonOptions {
        config: "[timeouts]\nservice-start = 1.0\n".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_never_claimed_is_service_start_timeout() {
    let mut w = World::with(quick()).await;
    let silent = "org.freedesktop.NetworkManager.testbench-silent";
    assert_eq!(outcome(&mut w, silent, &[], 0).await, (7, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_dying_before_its_name_is_service_start_failed() {
    let mut w = World::new().await;
    let crash = "org.freedesktop.NetworkManager.testbench-crash";
    assert_eq!(outcome(&mut w, crash, &[], 0).await, (7, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_exit_at_each_stage_is_service_stopped() {
    let mut w = World::new().await;
    for stage in ["need-secrets", "connect", "config", "ip4"] {
        assert_eq!(
            outcome(&mut w, TESTBENCH, &[("exit-at", stage)], 0).await,
            (7, 4),
            "exit at {stage}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_exit_after_activation_removes_everything() {
    let mut w = World::new().await;
    let base = w.kernel();
    let path = w
        .add(
            "dies",
            &[
                ("tundev", "tbdie"),
                ("routes", "10.50.0.0/16"),
                ("exit-at", "activated"),
                ("exit-delay", "500"),
            ],
        )
        .await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    assert_eq!(
        w.kernel().routes_on("tbdie").len(),
        2,
        "10.50.0.0/16 and the default route"
    );
    assert_eq!(w.wait_vpn(ac.as_str(), &[6, 7]).await, (7, 4));
    assert_eq!(
        w.ac_states(ac.as_str()),
        vec![(1, 1), (2, 1), (4, 4)],
        "no DEACTIVATING, as NM"
    );
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_signals_map_to_nm_reasons() {
    let mut w = World::new().await;
    let at = ("failure-at", "config");
    assert_eq!(
        outcome(&mut w, TESTBENCH, &[at, ("failure", "login")], 0).await,
        (6, 10)
    );
    assert_eq!(
        outcome(&mut w, TESTBENCH, &[at, ("failure", "connect")], 0).await,
        (6, 0)
    );
    assert_eq!(
        outcome(&mut w, TESTBENCH, &[at, ("failure", "bad-ip")], 0).await,
        (6, 5)
    );
    assert_eq!(
        outcome(&mut w, TESTBENCH, &[("failure-at", "connect")], 0).await,
        (6, 8)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_configs_are_ip_config_invalid() {
    let mut w = World::new().await;
    for m in [
        "wrong-type",
        "prefix33",
        "zero-address",
        "no-gateway",
        "bad-tundev",
    ] {
        assert_eq!(
            outcome(
                &mut w,
                TESTBENCH,
                &[("malformed", m), ("routes", "10.50.0.0/16")],
                0
            )
            .await,
            (6, 5),
            "malformed={m}"
        );
    }
    let log = w.daemon.log_text();
    for needle in [
        "Ip4Config: address: expected D-Bus type 'u', got 's'",
        "Ip4Config: prefix: 33 is out of range (expected 1 to 32)",
        "Ip4Config: address: 0.0.0.0 is not a usable address",
        "Config: gateway: missing or zero",
        "Config: tundev: interface 'tbnosuch0' does not exist",
    ] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_is_nm_connect_timeout() {
    let mut w = World::new().await;
    assert_eq!(
        outcome(&mut w, TESTBENCH, &[("delay-config", "5000")], 1).await,
        (6, 6)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_is_no_secrets_and_a_stored_one_works() {
    let mut w = World::new().await;
    assert_eq!(
        outcome(&mut w, TESTBENCH, &[("require-secret", "password")], 0).await,
        (6, 9)
    );
    let mut p = profile(
        "with-secret",
        TESTBENCH,
        &[("require-secret", "password"), ("tundev", "tbsec")],
    );
    p.vpn.secrets.insert("password".into(), "s3cret".into());
    let path = w.add_profile(p).await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_routes_are_merged_as_nm_does() {
    let mut w = World::new().await;
    let path = w
        .add(
            "dups",
            &[
                ("tundev", "tbdup"),
                ("malformed", "dup-routes"),
                ("routes", "10.50.0.0/16,10.60.0.0/16"),
            ],
        )
        .await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    let on = k.routes_on("tbdup");
    assert_eq!(
        on.iter().filter(|r| r.starts_with("10.50.0.0/16")).count(),
        1,
        "\n{k}"
    );
    assert_eq!(
        on.iter().filter(|r| r.starts_with("10.60.0.0/16")).count(),
        1,
        "\n{k}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tundev_puts_the_config_on_the_parent_and_takes_it_off() {
    let mut w = World::new().await;
    let base = w.kernel();
    let path = w
        .add(
            "routed",
            &[
                ("malformed", "no-tundev"),
                ("address", "10.8.9.2"),
                ("never-default", "true"),
            ],
        )
        .await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    assert!(
        k.addresses.contains(&"10.8.9.2/32 dev veth0".to_string()),
        "\n{k}"
    );
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tundev_that_is_not_a_tunnel_is_refused_and_left_as_it_was() {
    let mut w = World::new().await;
    // The uplink (a veth, and the parent), loopback: a plugin may name neither.
    for dev in ["veth0", "lo"] {
        let before = w.kernel();
        let mtu = before.link(dev).expect("the link exists").mtu;
        let data = [
            ("claim-tundev", dev),
            ("mtu", "1280"),
            ("routes", "10.50.0.0/16"),
        ];
        assert_eq!(outcome(&mut w, TESTBENCH, &data, 0).await, (6, 5), "{dev}");
        let after = w.kernel();
        assert_eq!(
            after.link(dev).expect("still there").mtu,
            mtu,
            "{dev}\n{after}"
        );
        let needle = format!("Config: tundev: '{dev}' is not a tunnel device");
        assert!(
            w.daemon.log_text().contains(&needle),
            "log lacks {needle:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_get_the_bus_tinynmd_serves_on() {
    // The bus only in daemon.toml (`--bus-address`'s case): the plugin must still find it.
    let mut w = World::with(DaemonOptions {
        bus_in_config_only: true,
        ..Default::default()
    })
    .await;
    let path = w.add("elsewhere", &[("tundev", "tbbus")]).await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_whole_stderr_reaches_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let mut w = World::new().await;
    // A plugin that dies with a Python traceback (and a line that is not UTF-8) on stderr.
    let dir = w.daemon.dir().join("vpn");
    let prog = w.daemon.dir().join("traceback-plugin");
    std::fs::write(
        &prog,
        "#!/bin/sh\nprintf 'Traceback (most recent call last):\\n  File \"/usr/lib/x/plugin.py\", line 3, in <module>\\n    boom()\\nNameError: name \\047boom\\047 is not defined\\n\\377 not utf-8\\nthe last line\\n' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let service = "org.freedesktop.NetworkManager.traceback";
    std::fs::write(
        dir.join("nm-traceback-service.name"),
        format!(
            "[VPN Connection]\nname=traceback\nservice={service}\nprogram={}\n",
            prog.display()
        ),
    )
    .unwrap();
    assert_eq!(outcome(&mut w, service, &[], 0).await, (7, 8));
    let log = w.daemon.log_text();
    for line in [
        "Traceback (most recent call last):",
        "  File \"/usr/lib/x/plugin.py\", line 3, in <module>",
        "    boom()",
        "NameError: name 'boom' is not defined",
        "\u{fffd} not utf-8",
        "the last line",
    ] {
        assert!(log.contains(line), "log lacks {line:?}:\n{log}");
    }
}
