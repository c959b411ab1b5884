//! A VPN over a VPN: the inner one's server is reached through the outer tunnel; taking the
//! outer one down takes the inner one down first (DEPENDENCY_FAILED); any order leaves nothing.

mod common;

use common::{Signal, World};

async fn two_layers(w: &mut World) -> (zbus::OwnedObjectPath, zbus::OwnedObjectPath) {
    let outer = w
        .add(
            "outer",
            &[
                ("tundev", "tbouter"),
                ("routes", "10.77.0.0/16"),
                ("never-default", "true"),
            ],
        )
        .await;
    let inner = w
        .add(
            "inner",
            &[
                ("tundev", "tbinner"),
                ("address", "10.9.0.2"),
                ("gateway", "10.77.0.1"),
                ("routes", "10.78.0.0/16"),
                ("never-default", "true"),
            ],
        )
        .await;
    let ac_outer = w.activate(&outer).await.unwrap();
    assert_eq!(w.wait_vpn(ac_outer.as_str(), &[5, 6, 7]).await, (5, 1));
    // Over the outer VPN: its active connection is the inner one's specific object.
    let root = zbus::ObjectPath::try_from("/").unwrap();
    let ac_inner = w
        .manager()
        .await
        .activate_connection(&inner, &root, &ac_outer)
        .await
        .unwrap();
    assert_eq!(w.wait_vpn(ac_inner.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    assert!(
        k.routes
            .iter()
            .any(|r| r.starts_with("10.77.0.1/32") && r.contains("dev tbouter")),
        "the inner server through the outer tunnel\n{k}"
    );
    (ac_outer, ac_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_the_outer_vpn_down_takes_the_inner_one_down_first() {
    let mut w = World::new().await;
    let base = w.kernel();
    let (outer, inner) = two_layers(&mut w).await;
    w.manager()
        .await
        .deactivate_connection(&outer)
        .await
        .unwrap();
    assert_eq!(
        w.wait_vpn(inner.as_str(), &[6, 7]).await,
        (7, 12),
        "DEPENDENCY_FAILED"
    );
    assert_eq!(w.wait_vpn(outer.as_str(), &[6, 7]).await, (7, 2));
    // The inner one ended before the outer one.
    let end = |ac: &str| {
        w.seen
            .iter()
            .position(|s| matches!(s, Signal::Vpn(p, 7, _) if p == ac))
            .unwrap()
    };
    assert!(end(inner.as_str()) < end(outer.as_str()), "{:?}", w.seen);
    w.wait_removed(inner.as_str()).await;
    w.wait_removed(outer.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_first_then_outer_leaves_nothing() {
    let mut w = World::new().await;
    let base = w.kernel();
    let (outer, inner) = two_layers(&mut w).await;
    w.manager()
        .await
        .deactivate_connection(&inner)
        .await
        .unwrap();
    assert_eq!(w.wait_vpn(inner.as_str(), &[6, 7]).await, (7, 2));
    w.wait_removed(inner.as_str()).await;
    let k = w.kernel();
    assert!(k.link("tbouter").is_some(), "the outer one stays up\n{k}");
    assert!(
        !k.routes.iter().any(|r| r.starts_with("10.77.0.1/32")),
        "\n{k}"
    );
    w.manager()
        .await
        .deactivate_connection(&outer)
        .await
        .unwrap();
    assert_eq!(w.wait_vpn(outer.as_str(), &[6, 7]).await, (7, 2));
    w.wait_removed(outer.as_str()).await;
    w.assert_clean(&base);
}
