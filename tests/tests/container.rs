//! tinynmd as a container's entrypoint: `.ovpn` files from a mounted directory imported at
//! start, the VPN up by itself and failing closed, `tinynm wait-online --vpn` for the health
//! check, SIGTERM taking everything down.

mod common;

use std::process::{Command, Stdio};

use common::{LIMIT, World};
use tinynm_sandbox::openvpn::{Auth, Pki, Server};
use tinynm_sandbox::{DaemonOptions, Netns, require_tool};

fn ping(ns: &Netns, addr: &str, wait: u32) -> bool {
    let bin = require_tool("ping", "iputils-ping").unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(["-c", "1", "-W", &wait.to_string(), addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ns.prepare(&mut cmd);
    cmd.status().expect("ping").success()
}

/// Debian's nm-openvpn-service (its helper on the default socket path, in tinynmd's private
/// `/run`), the `.ovpn` in a directory named by `[import]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovpn_files_imported_at_start_come_up_by_themselves_and_fail_closed() {
    assert!(
        std::path::Path::new("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name").exists(),
        "needs Debian's network-manager-openvpn"
    );
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let config = tmp.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("provider.ovpn"), pki.client_ovpn()).unwrap();
    std::fs::write(config.join("broken.ovpn"), "remote\n").unwrap();
    std::fs::write(config.join("notes.txt"), "not a profile").unwrap();
    let w = World::with_server(DaemonOptions {
        nm_plugin_dirs: true,
        private_run: true,
        config: format!(
            "[import]\nopenvpn = [\"{}/*.ovpn\"]\nkill-switch = true\n",
            config.display()
        ),
        ..Default::default()
    })
    .await;
    let _server = Server::start(w.server.as_ref().unwrap(), &pki, Auth::Tls).unwrap();
    // Another host on the uplink's network, reachable before the VPN.
    let ip = require_tool("ip", "iproute2").unwrap();
    let mut cmd = Command::new(ip);
    cmd.args(["addr", "add", "10.99.0.7/24", "dev", "veth1"]);
    w.server.as_ref().unwrap().prepare(&mut cmd);
    assert!(cmd.status().unwrap().success());
    // The health check: a VPN up, by itself (the server came after tinynmd: retried).
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let addr = w.bus.address.clone();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(["--bus-address", &addr, "wait-online", "--vpn", "--timeout"])
            .arg(LIMIT.as_secs().to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let log = w.daemon.log_text();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{log}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        log.contains("imported ") && log.contains("as 'provider'"),
        "{log}"
    );
    // The broken file is named with its line; the others still came.
    assert!(
        log.contains(&format!(
            "cannot import {}: line 1:",
            config.join("broken.ovpn").display()
        )),
        "{log}"
    );
    assert!(ping(&w.ns, "10.200.0.1", 5), "through the tunnel");
    // Failing closed: the uplink's other hosts are not reached any more.
    assert!(
        !ping(&w.ns, "10.99.0.7", 1),
        "the kill switch lets the uplink through"
    );
    // The inline key was written 0600 in tinynmd's state directory.
    use std::os::unix::fs::PermissionsExt;
    let key = w.daemon.dir().join("state/import/provider-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The profile is tinynmd's for this run only: nothing was written to the profile directory.
    assert!(w.saved_profiles().is_empty(), "{:?}", w.saved_profiles());
}
