//! A VPN over a VPN: the inner one's server is reached through the outer tunnel; taking the
//! outer one down takes the inner one down first (DEPENDENCY_FAILED), and so does the outer one
//! ending by itself; a VPN whose base link goes away goes down (DEVICE_DISCONNECTED); any order
//! leaves nothing.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outer_vpn_that_ends_by_itself_takes_the_inner_one_with_it() {
    let mut w = World::new().await;
    let base = w.kernel();
    let (outer, inner) = two_layers(&mut w).await;
    // The outer plugin dies: its tunnel, and the way to the inner server, are gone.
    let pids = common::children_named(w.daemon.pid(), "tinynm-testbenc");
    let n = outer.as_str().rsplit('/').next().unwrap();
    let outer_pid = pids
        .into_iter()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).ends_with(&format!("Connection_{n}\0")))
        })
        .expect("the outer plugin");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(outer_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(
        w.wait_vpn(outer.as_str(), &[6, 7]).await,
        (7, 4),
        "SERVICE_STOPPED"
    );
    assert_eq!(
        w.wait_vpn(inner.as_str(), &[6, 7]).await,
        (7, 12),
        "DEPENDENCY_FAILED"
    );
    w.wait_removed(inner.as_str()).await;
    w.wait_removed(outer.as_str()).await;
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_base_link_is_device_disconnected() {
    let mut w = World::new().await;
    let base = w.kernel();
    // A second uplink of its own, which the test then deletes.
    let ip = |w: &World, args: &[&str]| {
        let mut c = std::process::Command::new("ip");
        c.args(args);
        w.ns.prepare(&mut c);
        assert!(c.status().unwrap().success(), "ip {args:?}");
    };
    ip(
        &w,
        &["link", "add", "up0", "type", "veth", "peer", "name", "up0p"],
    );
    ip(&w, &["addr", "add", "10.98.0.2/24", "dev", "up0"]);
    ip(&w, &["link", "set", "up0", "up"]);
    ip(&w, &["link", "set", "up0p", "up"]);
    let p = w
        .add(
            "on-up0",
            &[
                ("tundev", "tbup0"),
                ("gateway", "10.98.0.1"),
                ("routes", "10.79.0.0/16"),
                ("never-default", "true"),
            ],
        )
        .await;
    let devices = w.devices(&["up0"]).await;
    let root = zbus::ObjectPath::try_from("/").unwrap();
    let ac = w
        .manager()
        .await
        .activate_connection(&p, &devices["up0"], &root)
        .await
        .unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    ip(&w, &["link", "del", "up0"]);
    assert_eq!(
        w.wait_vpn(ac.as_str(), &[6, 7]).await,
        (7, 3),
        "DEVICE_DISCONNECTED"
    );
    w.wait_removed(ac.as_str()).await;
    // Deleting one end of the veth took the other: the kernel is as before it was made.
    w.assert_clean(&base);
}
