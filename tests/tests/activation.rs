//! The activation spine, end to end: a real bus, a real kernel, the test-bench plugin.

mod common;

use common::World;

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
    assert!(
        w.manager()
            .await
            .active_connections()
            .await
            .unwrap()
            .is_empty()
    );
}
