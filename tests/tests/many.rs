//! Many VPNs at once, on one daemon: a real bus, a real kernel, the test-bench plugin.

mod common;

use common::World;

/// A hundred VPNs activated at once all come up, and all go. Every plugin's signals share one
/// match rule on the daemon's connection, and zbus stops reading a connection while any
/// subscriber's queue is full: a stream left unpolled across a round trip once stalled the
/// daemon until the plugins' start timers fired (SERVICE_START_TIMEOUT for plugins that had
/// claimed their names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_vpns_at_once_all_come_up_and_all_go() {
    let mut w = World::new().await;
    let base = w.kernel();
    let mut profiles = Vec::new();
    for i in 0..100 {
        let (tun, addr) = (
            format!("tbm{i}"),
            format!("10.{}.{}.2", 100 + i / 250, i % 250),
        );
        let data = [
            ("tundev", tun.as_str()),
            ("address", addr.as_str()),
            ("never-default", "true"),
        ];
        profiles.push(w.add(&format!("many-{i}"), &data).await);
    }
    let root = zbus::ObjectPath::try_from("/").unwrap();
    let m = w.manager().await;
    let acs = futures::future::try_join_all(
        profiles
            .iter()
            .map(|p| m.activate_connection(p, &root, &root)),
    )
    .await
    .unwrap();
    for ac in &acs {
        assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1), "{ac}");
    }
    for ac in &acs {
        m.deactivate_connection(ac).await.unwrap();
    }
    for ac in &acs {
        w.wait_removed(ac.as_str()).await;
    }
    w.assert_clean(&base);
}
