//! The kill switch, against the kernel's nftables: a real openvpn server in a second
//! namespace, tinynm-openvpn running the real `openvpn` client, pings and DNS queries from the
//! client namespace. With the switch on, only the tunnel, the VPN server, the allowed prefix
//! and loopback are reached; the uplink's other hosts (IPv4 and IPv6) and its DNS server are
//! not, also after the VPN dropped and while tinynmd is dead, until the user takes the VPN
//! down.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{LIMIT, World, descendants_named, ping};
use tinynm_sandbox::openvpn::{Auth, OPENVPN, Pki, Server};
use tinynm_sandbox::{DaemonOptions, Netns, require_tool};

/// A host on the uplink's network that is not the VPN server.
const OTHER: &str = "10.99.0.7";
/// A host in the allowed prefix.
const ALLOWED: &str = "10.99.0.200";
/// The server side's IPv6 address on the uplink.
const OTHER6: &str = "fd99::1";

fn run_in(ns: &Netns, args: &[&str]) {
    let ip = require_tool("ip", "iproute2").unwrap();
    let mut cmd = Command::new(ip);
    cmd.args(args);
    ns.prepare(&mut cmd);
    assert!(cmd.status().unwrap().success(), "ip {args:?}");
}

/// One DNS query (A probe.test) to `server`; whether the answer came within 2 s.
fn dns_answers(ns: &Netns, server: &str) -> bool {
    let py = require_tool("python3", "python3").unwrap();
    let mut cmd = Command::new(py);
    cmd.args([
        "-c",
        "import socket,sys\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n\
         q=b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x05probe\\x04test\\x00\\x00\\x01\\x00\\x01'\n\
         s.sendto(q,(sys.argv[1],53));d=s.recv(512);sys.exit(0 if d[:2]==b'\\x12\\x34' else 1)",
        server,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    ns.prepare(&mut cmd);
    cmd.status().expect("python3").success()
}

/// dnsmasq as the uplink's DNS server, on `OTHER` in the server namespace.
struct Dns(std::process::Child);

impl Dns {
    fn start(ns: &Netns) -> Dns {
        let bin = require_tool("dnsmasq", "dnsmasq-base").unwrap();
        let mut cmd = Command::new(bin);
        cmd.args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--bind-interfaces",
            &format!("--listen-address={OTHER}"),
            "--address=/probe.test/10.1.2.3",
            "--pid-file=",
            "--user=root",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        ns.prepare(&mut cmd);
        Dns(cmd.spawn().expect("dnsmasq"))
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + LIMIT;
    while !check() {
        assert!(std::time::Instant::now() < end, "{what} within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The world: the uplink's other hosts on the server side (IPv4 and IPv6) and its DNS server.
async fn world(config: &str) -> (World, Dns) {
    let w = World::with_server(DaemonOptions {
        private_tmp: true,
        config: config.into(),
        ..Default::default()
    })
    .await;
    common::use_tinynm_openvpn(&w);
    let server = w.server.as_ref().unwrap();
    for a in [OTHER, ALLOWED] {
        run_in(server, &["addr", "add", &format!("{a}/24"), "dev", "veth1"]);
    }
    run_in(
        server,
        &["-6", "addr", "add", "fd99::1/64", "dev", "veth1", "nodad"],
    );
    run_in(
        &w.ns,
        &["-6", "addr", "add", "fd99::2/64", "dev", "veth0", "nodad"],
    );
    let dns = Dns::start(server);
    (w, dns)
}

/// What the uplink reaches, in one line: (other host, its DNS, IPv6 host, allowed host).
fn uplink(ns: &Netns) -> (bool, bool, bool, bool) {
    (
        ping(ns, OTHER, 1),
        dns_answers(ns, OTHER),
        ping(ns, OTHER6, 1),
        ping(ns, ALLOWED, 1),
    )
}

/// The engaged VPNs on `org.tinynm.Settings`.
async fn engaged(w: &World) -> Vec<String> {
    let p = zbus::Proxy::new(
        &w.conn,
        "org.tinynm",
        "/org/tinynm/Settings",
        "org.tinynm.Settings",
    )
    .await
    .unwrap();
    p.get_property("KillSwitch").await.unwrap()
}

fn profile(id: &str, pki: &Pki) -> tinynm_config::Profile {
    let (data, secrets) = Auth::Tls.client_data(pki);
    let mut p = common::profile(id, OPENVPN, &[]);
    p.vpn.data = data;
    p.vpn.data.insert("tinynm-kill-switch".into(), "yes".into());
    p.vpn.secrets = secrets;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_holds_through_a_drop_and_a_crash_until_the_user_deactivates() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let (mut w, _dns) = world("[firewall]\nallow = [\"10.99.0.192/26\"]\n").await;
    let server = Server::start(w.server.as_ref().unwrap(), &pki, Auth::Tls).unwrap();
    // Without the switch, the uplink reaches everything.
    assert_eq!(uplink(&w.ns), (true, true, true, true), "before");
    let p = profile("ks", &pki);
    let uuid = p.connection.uuid.clone();
    // Saved: the profile outlives tinynmd (a profile that is gone no longer holds the switch).
    let path = w
        .settings()
        .await
        .add_connection(tinynm_config::dbus::to_dict(&p, true))
        .await
        .unwrap();
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(
        w.wait_vpn(ac.as_str(), &[5, 6, 7]).await,
        (5, 1),
        "the VPN came up through the switch (its server is let through)\n{}",
        w.daemon.log_text()
    );
    assert!(ping(&w.ns, "10.200.0.1", 5), "through the tunnel");
    assert_eq!(
        uplink(&w.ns),
        (false, false, false, true),
        "up: only the allowed prefix beside the tunnel"
    );
    assert_eq!(engaged(&w).await, vec![uuid.clone()]);

    // The server dies, then the client: the VPN fails, the switch holds.
    drop(server);
    let pids = descendants_named(w.daemon.pid(), "openvpn");
    assert_eq!(pids.len(), 1, "{pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (s, _) = w.wait_vpn(ac.as_str(), &[6, 7]).await;
    assert!(s == 6 || s == 7, "{s}");
    w.wait_removed(ac.as_str()).await;
    assert_eq!(uplink(&w.ns), (false, false, false, true), "dropped");
    assert_eq!(engaged(&w).await, vec![uuid.clone()]);

    // tinynmd dies: the kernel keeps the rules; the next tinynmd takes them over.
    w.daemon.crash();
    assert_eq!(uplink(&w.ns), (false, false, false, true), "tinynmd dead");
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    w.wait_log("kill switch: taking over", LIMIT).await;
    assert_eq!(
        uplink(&w.ns),
        (false, false, false, true),
        "restarted\n{}",
        w.daemon.log_text()
    );
    assert_eq!(engaged(&w).await, vec![uuid.clone()]);

    // The user brings it up again and takes it down: the switch goes.
    let server = Server::start(w.server.as_ref().unwrap(), &pki, Auth::Tls).unwrap();
    let path = w
        .settings()
        .await
        .get_connection_by_uuid(&uuid)
        .await
        .unwrap();
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
    until("the uplink open again", || ping(&w.ns, OTHER, 1)).await;
    assert_eq!(uplink(&w.ns), (true, true, true, true), "released");
    assert!(engaged(&w).await.is_empty());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_blocks_from_the_start() {
    let (w, _dns) = world("[firewall]\nlockdown = true\n").await;
    // Nothing active, nothing leaves: the uplink's hosts and DNS, IPv4 and IPv6.
    assert_eq!(uplink(&w.ns), (false, false, false, false), "lockdown");
    // Loopback still works.
    assert!(ping(&w.ns, "127.0.0.1", 1));
    let log = w.daemon.log_text();
    assert!(log.contains("kill switch on"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_the_switch_off_in_the_profile_releases_it() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let (mut w, _dns) = world("").await;
    let server = Server::start(w.server.as_ref().unwrap(), &pki, Auth::Tls).unwrap();
    let p = profile("ks-off", &pki);
    let path = w.add_profile(p.clone()).await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    drop(server);
    let pids = descendants_named(w.daemon.pid(), "openvpn");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    w.wait_removed(ac.as_str()).await;
    assert!(!ping(&w.ns, OTHER, 1), "held after the drop");
    // The profile's switch turned off over D-Bus (nmcli's `modify`): released at once.
    let mut off = p;
    off.vpn
        .data
        .insert("tinynm-kill-switch".into(), "no".into());
    let c = w.profile_object(&path).await;
    c.update(tinynm_config::dbus::to_dict(&off, false))
        .await
        .unwrap();
    until("the uplink open again", || ping(&w.ns, OTHER, 1)).await;
    assert!(engaged(&w).await.is_empty());
}
