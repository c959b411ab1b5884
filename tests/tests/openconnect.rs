//! Debian's second VPN plugin family, unmodified: tinynmd runs `nm-openconnect-service`
//! against a real `ocserv` (password authentication) in the server's namespace. The secrets NM's
//! GUI auth dialog would fetch (cookie, gateway, certificate fingerprint) come from a headless
//! login that `tinynm agent` makes with `openconnect --authenticate`; the tunnel carries pings,
//! and the persistent tun the plugin leaves behind after every disconnect is removed.

mod common;

use std::time::Duration;

use common::World;
use tinynm_sandbox::DaemonOptions;
use tinynm_sandbox::ocserv;

const OPENCONNECT: &str = "org.freedesktop.NetworkManager.openconnect";

fn agent(w: &World, secrets: &str) -> (std::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("secrets");
    std::fs::write(&f, secrets).unwrap();
    let mut cmd = std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap());
    cmd.arg("--bus-address")
        .arg(&w.bus.address)
        .args(["agent", "--secrets-file"])
        .arg(&f);
    // In the client's namespace: the login goes to the server from there.
    w.ns.prepare(&mut cmd);
    (common::spawn_tinynm_agent(&mut cmd), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_openconnect_with_a_headless_login_carries_pings_and_leaves_nothing() {
    assert!(
        std::path::Path::new("/usr/lib/NetworkManager/VPN/nm-openconnect-service.name").exists(),
        "Debian's plugin is missing: apt-get install -y network-manager-openconnect ocserv"
    );
    let mut w = World::with_server(DaemonOptions {
        nm_plugin_dirs: true,
        ..Default::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let files = ocserv::prepare(tmp.path()).unwrap();
    let _server = ocserv::Server::start(w.server.as_ref().unwrap(), &files).unwrap();
    let base = w.kernel();
    let ca = files.ca.display().to_string();
    // As NM's GUI makes them: the secrets are not saved; an agent fetches them.
    let p = common::profile(
        "oc",
        OPENCONNECT,
        &[
            ("gateway", "10.99.0.1"),
            ("protocol", "anyconnect"),
            ("cacert", &ca),
            ("cookie-flags", "2"),
            ("gateway-flags", "2"),
            ("gwcert-flags", "2"),
        ],
    );
    let path = w.add_profile(p).await;

    // A wrong password: the login fails, named, and nothing is applied.
    let (mut wrong, _d) = agent(
        &w,
        "vpn.secrets.username:alice\nvpn.secrets.password:nope\n",
    );
    let ac = w.activate(&path).await.unwrap();
    let (state, reason) = w.wait_vpn(ac.as_str(), &[5, 6, 7]).await;
    assert_eq!(
        (state, reason),
        (6, 9),
        "NO_SECRETS\n{}",
        w.daemon.log_text()
    );
    w.wait_log(
        "the login to https://10.99.0.1/ failed",
        Duration::from_secs(5),
    )
    .await;
    tinynm_sandbox::terminate(&mut wrong);
    w.assert_clean(&base);

    let (mut agent, _d) = agent(
        &w,
        "vpn.secrets.username:alice\nvpn.secrets.password:wonderland\n",
    );
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(
        w.wait_vpn(ac.as_str(), &[5, 6, 7]).await,
        (5, 1),
        "{}",
        w.daemon.log_text()
    );
    let k = w.kernel();
    assert!(
        k.addresses.iter().any(|a| a == "10.96.0.50/24 dev vpn0"),
        "ocserv's address on the plugin's tun\n{k}"
    );
    // The network behind the server answers only through the tunnel.
    assert!(common::ping(&w.ns, "10.200.0.1", 3), "\n{k}");
    w.tinynm(&["connection", "down", "oc"]);
    assert_eq!(w.wait_vpn(ac.as_str(), &[7]).await.0, 7);
    w.wait_log(
        "removed the tun device vpn0 that the plugin",
        Duration::from_secs(10),
    )
    .await;
    w.assert_clean(&base);
    tinynm_sandbox::terminate(&mut agent);
}
