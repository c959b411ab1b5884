//! The embedded bus (issue 13): tinynmd with `bus = "embedded:PATH"` runs its own D-Bus broker
//! (busd) and no dbus-daemon is started anywhere in the test; its test-bench plugin, Debian's
//! `nmcli` and a client of ours connect to the socket and work as on a system bus.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::LIMIT;
use futures::StreamExt;
use tinynm_sandbox::Netns;
use tinynm_sandbox::embedded::EmbeddedDaemon;
use tinynm_sandbox::nm::{ManagerProxy, SettingsProxy};
use tinynm_sandbox::openvpn::{Auth, OPENVPN, Pki, Server};
use zbus::{MatchRule, MessageStream, OwnedObjectPath};

/// Activates `profile`; the active connection and the VPN's first state that settles it
/// (ACTIVATED, FAILED or DISCONNECTED) with its reason, waited for with a bound.
async fn activate_until_settled(
    d: &EmbeddedDaemon,
    conn: &zbus::Connection,
    profile: &OwnedObjectPath,
) -> (OwnedObjectPath, u32, u32) {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .member("VpnStateChanged")
        .build()
        .unwrap();
    let mut states = MessageStream::for_match_rule(rule, conn, None)
        .await
        .unwrap();
    let root = OwnedObjectPath::try_from("/").unwrap();
    let ac = ManagerProxy::new(conn)
        .await
        .unwrap()
        .activate_connection(profile, &root, &root)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let m = tokio::time::timeout_at(deadline, states.next())
            .await
            .unwrap_or_else(|_| panic!("the VPN never settled: {}", d.log_text()))
            .unwrap()
            .unwrap();
        let (state, reason): (u32, u32) = m.body().deserialize().unwrap();
        if state >= 5 {
            return (ac, state, reason);
        }
    }
}

/// Activates `profile`; waits for the VPN's ACTIVATED (bounded), any other end fails.
async fn activate(
    d: &EmbeddedDaemon,
    conn: &zbus::Connection,
    profile: &OwnedObjectPath,
) -> OwnedObjectPath {
    let (ac, state, _) = activate_until_settled(d, conn, profile).await;
    assert_eq!(state, 5, "the VPN failed ({state}): {}", d.log_text());
    ac
}

fn nmcli(address: &str, args: &[&str]) -> (bool, String) {
    let o = common::nmcli_on(address, args);
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinynmd_serves_nm_on_a_bus_of_its_own_to_its_plugin_and_nmcli() {
    tinynm_sandbox::require_root("the embedded bus test").unwrap();
    let ns = Netns::new().unwrap();
    ns.add_parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("run/dbus/system_bus_socket");
    let d = EmbeddedDaemon::start(&ns, tmp.path(), Some(&sock), false, None)
        .await
        .unwrap();
    let conn = d.connect().await.unwrap();
    let address = d.address.clone();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o666,
        "open to every user, as the system bus's socket"
    );
    // A profile added by nmcli, activated by a client of ours: the plugin, exec'd by
    // tinynmd, found the embedded bus and brought the tunnel up.
    let (ok, text) = nmcli(
        &address,
        &common::nmcli_add_vpn_args("inside", "tundev=tbemb"),
    );
    assert!(ok, "{text}\n{}", d.log_text());
    // `Connection 'inside' (UUID) successfully added.`
    let uuid = text
        .split(['(', ')'])
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let settings = SettingsProxy::new(&conn).await.unwrap();
    let profile = settings.get_connection_by_uuid(uuid).await.unwrap();
    let ac = activate(&d, &conn, &profile).await;
    let k = ns.snapshot().unwrap();
    assert!(k.link("tbemb").is_some_and(|l| l.up), "{k}");
    // nmcli sees it active, and takes it down.
    let (ok, text) = nmcli(
        &address,
        &["-t", "-f", "NAME,TYPE", "connection", "show", "--active"],
    );
    assert!(ok, "{text}");
    assert!(text.lines().any(|l| l == "inside:vpn"), "{text}");
    let (ok, text) = nmcli(&address, &["connection", "down", "inside"]);
    assert!(ok, "{text}\n{}", d.log_text());
    // The plugin goes, and its tunnel with it.
    let deadline = std::time::Instant::now() + LIMIT;
    while ns.snapshot().unwrap().link("tbemb").is_some() {
        assert!(std::time::Instant::now() < deadline, "tbemb stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(ac);
    // No dbus-daemon was needed: the log names the broker.
    assert!(
        d.log_text().contains("embedded bus (busd) listening at"),
        "{}",
        d.log_text()
    );
}

/// Debian's nm-openvpn-service, unmodified, on the embedded bus at its default path: its
/// helper (`nm-openvpn-service-openvpn-helper`, run by openvpn) knows no other socket and hands
/// the pushed config back through it; packets cross the tunnel to the network behind the
/// sandbox's real openvpn server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debians_openvpn_plugin_and_its_helper_find_the_embedded_bus_at_the_default_path() {
    tinynm_sandbox::require_root("the embedded bus test").unwrap();
    assert!(
        std::path::Path::new("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name").exists(),
        "needs Debian's network-manager-openvpn (apt-get install -y network-manager-openvpn)"
    );
    let ns = Netns::new().unwrap();
    let server_ns = ns.add_server().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let _server = Server::start(&server_ns, &pki, Auth::Tls).unwrap();
    let d = EmbeddedDaemon::start(&ns, tmp.path(), None, true, None)
        .await
        .unwrap();
    let conn = d.connect().await.unwrap();
    let (data, secrets) = Auth::Tls.client_data(&pki);
    let mut p = common::profile("embedded-ovpn", OPENVPN, &[]);
    p.vpn.data = data;
    p.vpn.secrets = secrets;
    let profile = SettingsProxy::new(&conn)
        .await
        .unwrap()
        .add_connection_unsaved(tinynm_config::dbus::to_dict(&p, true))
        .await
        .unwrap();
    let _ac = activate(&d, &conn, &profile).await;
    let k = ns.snapshot().unwrap();
    assert!(
        k.routes
            .iter()
            .any(|r| r.starts_with("10.200.0.0/24") && r.contains(" dev tun")),
        "no pushed route through the tunnel\n{k}"
    );
    let ping = tinynm_sandbox::require_tool("ping", "iputils-ping").unwrap();
    let mut cmd = Command::new(ping);
    cmd.args(["-c", "1", "-W", "5", "10.200.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ns.prepare(&mut cmd);
    assert!(
        cmd.status().unwrap().success(),
        "no answer through the tunnel"
    );
}

/// busd has no bus policy: any user may own any name on it. tinynmd makes up for it where it
/// matters, as NM's D-Bus policy does on a system bus: a VPN plugin's name owned by a process
/// not running as root is not talked to (SERVICE_START_FAILED, the log names the uid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_name_another_user_owns_on_the_embedded_bus_is_refused() {
    tinynm_sandbox::require_root("the embedded bus test").unwrap();
    let ns = Netns::new().unwrap();
    ns.add_parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    // The socket's directories open to the impostor (uid 65534).
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = tmp.path().join("run/dbus/system_bus_socket");
    let d = EmbeddedDaemon::start(&ns, tmp.path(), Some(&sock), false, None)
        .await
        .unwrap();
    for dir in [tmp.path().join("run"), tmp.path().join("run/dbus")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let conn = d.connect().await.unwrap();
    // A plugin for one connection at a time: its bus name is its service's, known in advance.
    const SERVICE: &str = "org.freedesktop.NetworkManager.testbench-single";
    std::fs::write(
        tmp.path().join("vpn/testbench-single.name"),
        format!(
            "[VPN Connection]\nname=testbench-single\nservice={SERVICE}\nprogram={}\n",
            tinynm_sandbox::binary("tinynm-testbench")
                .unwrap()
                .display()
        ),
    )
    .unwrap();
    // The impostor: nobody, owning that name before tinynmd looks.
    let setpriv = tinynm_sandbox::require_tool("setpriv", "util-linux").unwrap();
    let mut impostor = Impostor(Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"])
        .arg(
            "import sys\n\
             from gi.repository import Gio, GLib\n\
             f = Gio.DBusConnectionFlags\n\
             c = Gio.DBusConnection.new_for_address_sync(sys.argv[1], f.AUTHENTICATION_CLIENT | f.MESSAGE_BUS_CONNECTION, None, None)\n\
             r = c.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'RequestName', GLib.Variant('(su)', (sys.argv[2], 4)), None, 0, -1, None)\n\
             print('owned', r.unpack()[0], flush=True)\n\
             GLib.MainLoop().run()\n",
        )
        .args([&d.address, SERVICE])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let mut out = std::io::BufReader::new(impostor.0.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "owned 1", "the impostor owns the name");
    let p = common::profile("impostor", SERVICE, &[]);
    let profile = SettingsProxy::new(&conn)
        .await
        .unwrap()
        .add_connection_unsaved(tinynm_config::dbus::to_dict(&p, true))
        .await
        .unwrap();
    let (_, state, reason) = activate_until_settled(&d, &conn, &profile).await;
    // DISCONNECTED, NM_VPN_CONNECTION_STATE_REASON_SERVICE_START_FAILED (8), as NM ends a
    // plugin that could not be started.
    let log = d.log_text();
    assert_eq!(
        (state, reason),
        (7, 8),
        "{}",
        &log[log.len().saturating_sub(3000)..]
    );
    assert!(
        log.contains(&format!("{SERVICE} is owned by"))
            && log.contains("a process of uid 65534: only root may serve"),
        "{log}"
    );
}

/// A process the test started, killed (by its PID) and reaped however the test ends.
struct Impostor(std::process::Child);

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
