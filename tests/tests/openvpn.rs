//! Real OpenVPN tunnels: a real `openvpn` 2.6 server in a server namespace with a PKI the test
//! makes, and in the client namespace tinynmd running Debian's unmodified `nm-openvpn-service`,
//! which runs the real `openvpn` client. Packets cross the tunnel.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{LIMIT, World, descendants_named, ping};
use tinynm_sandbox::openvpn::{Auth, OPENVPN, Pki, Server};
use tinynm_sandbox::{DaemonOptions, require_tool};

/// Which plugin serves `org.freedesktop.NetworkManager.openvpn`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Plugin {
    /// Debian's nm-openvpn-service 1.10.2, unmodified.
    Nm,
    /// tinynm-openvpn.
    Tinynm,
}

/// A two-host world where `plugin` serves OpenVPN profiles.
async fn world(plugin: Plugin) -> World {
    match plugin {
        Plugin::Nm => {
            assert!(
                Path::new("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name").exists(),
                "needs Debian's network-manager-openvpn (apt-get install -y network-manager-openvpn)"
            );
            // nm-openvpn-service's helper only knows the default system bus socket.
            World::with_server(DaemonOptions {
                nm_plugin_dirs: true,
                private_run: true,
                ..Default::default()
            })
            .await
        }
        Plugin::Tinynm => {
            // The plugin's runtime files go in a directory of the test's, to be checked.
            let w = World::with_server(DaemonOptions {
                private_tmp: true,
                ..Default::default()
            })
            .await;
            common::use_tinynm_openvpn(&w);
            w
        }
    }
}

fn client_profile(id: &str, pki: &Pki, auth: Auth) -> tinynm_config::Profile {
    let (data, secrets) = auth.client_data(pki);
    let mut p = common::profile(id, OPENVPN, &[]);
    p.vpn.data = data;
    p.vpn.secrets = secrets;
    p
}

/// The whole chain, for real: tinynmd execs nm-openvpn-service, which runs openvpn, whose
/// `--up` helper hands the pushed config back over D-Bus; tinynmd puts it in the kernel; pings
/// cross the tunnel to the server and the network behind it; deactivation leaves nothing.
async fn happy_path(plugin: Plugin, auth: Auth) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let mut w = world(plugin).await;
    let _server = Server::start(w.server.as_ref().unwrap(), &pki, auth).unwrap();
    let p = w
        .add_profile(client_profile(&format!("ovpn-{auth:?}"), &pki, auth))
        .await;
    tunnel_works(&mut w, &p).await;
    if plugin == Plugin::Tinynm {
        // openvpn's state, from its management interface, in tinynmd's log.
        logged_at(&w.daemon.log_text(), "openvpn state CONNECTED", "INFO");
    }
}

/// A password profile whose password is not saved (`password-flags` 2): nmcli's own agent
/// gives it, asked on stdin (`--ask`) or read from a `passwd-file`.
async fn nmcli_password(plugin: Plugin, how: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let w = world(plugin).await;
    let _server = Server::start(w.server.as_ref().unwrap(), &pki, Auth::Password).unwrap();
    let mut p = client_profile("ask-me", &pki, Auth::Password);
    p.vpn.secrets.clear();
    p.vpn.data.insert("password-flags".into(), "2".into());
    w.add_profile(p).await;
    let nmcli = require_tool("nmcli", "network-manager").unwrap();
    let pwfile = tmp.path().join("passwd");
    std::fs::write(&pwfile, "vpn.secrets.password:wonderland\n").unwrap();
    let mut cmd = Command::new(nmcli);
    cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
        .env("LIBNM_CLIENT_DEBUG", "warning,error")
        .env("G_DEBUG", "fatal-warnings")
        .env("LANG", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match how {
        "ask" => cmd.args(["--ask", "connection", "up", "id", "ask-me"]),
        _ => cmd
            .args(["connection", "up", "id", "ask-me", "passwd-file"])
            .arg(&pwfile),
    };
    let o = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(b"wonderland\n");
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}\n--- tinynmd log ---\n{}",
        String::from_utf8_lossy(&o.stderr),
        w.daemon.log_text()
    );
    assert!(out.contains("Connection successfully activated"), "{out}");
    if how == "ask" {
        assert!(
            out.contains("Password (vpn.secrets.password):"),
            "nmcli prompted: {out}"
        );
    }
    assert!(ping(&w.ns, "10.200.0.1", 5), "the tunnel carries packets");
    // The password was never stored.
    let path = w.vpn_profiles().await.remove(0);
    assert!(
        w.profile_object(&path)
            .await
            .get_secrets("vpn")
            .await
            .unwrap()
            .is_empty()
    );
}

/// The test's own `.ovpn` (inline CA, certificate, key and tls-crypt key), imported with
/// `tinynm connection import openvpn`, brings up a working tunnel.
async fn imported(plugin: Plugin) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let mut w = world(plugin).await;
    let _server = Server::start(w.server.as_ref().unwrap(), &pki, Auth::Tls).unwrap();
    let ovpn = tmp.path().join("office.ovpn");
    std::fs::write(&ovpn, pki.client_ovpn()).unwrap();
    let certs = tmp.path().join("certs");
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let o = Command::new(bin)
        .arg("--bus-address")
        .arg(&w.bus.address)
        .args(["connection", "import", "openvpn"])
        .arg(&ovpn)
        .arg("--cert-dir")
        .arg(&certs)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.starts_with("Connection 'office' ("), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let key = certs.join("office-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600,
        "inline keys are written 0600"
    );
    let p = w.vpn_profiles().await.remove(0);
    tunnel_works(&mut w, &p).await;
}

/// Activates `p`: the pushed route and the server's host route are in the kernel, pings cross
/// the tunnel; then deactivates it and finds the kernel as it was.
async fn tunnel_works(w: &mut World, p: &zbus::OwnedObjectPath) {
    let base = w.kernel();
    assert!(
        !ping(&w.ns, "10.200.0.1", 1),
        "reachable without the tunnel"
    );
    let ac = w.activate(p).await.unwrap();
    let (state, reason) = w.wait_vpn(ac.as_str(), &[5, 6, 7]).await;
    assert_eq!(
        (state, reason),
        (5, 1),
        "the VPN did not come up\n--- tinynmd log ---\n{}",
        w.daemon.log_text()
    );
    let k = w.kernel();
    let tun = k
        .routes
        .iter()
        .find(|r| r.starts_with("10.200.0.0/24"))
        .unwrap_or_else(|| panic!("no pushed route to the network behind the server\n{k}"))
        .clone();
    assert!(tun.contains(" dev tun"), "{tun}");
    assert!(
        k.routes
            .iter()
            .any(|r| r.starts_with("10.99.0.1/32") || r.starts_with("10.99.0.1 ")),
        "no host route to the server\n{k}"
    );
    // The pushed DNS server is the VPN's, as NM shows it.
    let ip4 = w.ip4_config(&ac).await;
    let cfg = zbus::Proxy::new(
        &w.conn,
        "org.freedesktop.NetworkManager",
        ip4.as_str(),
        "org.freedesktop.NetworkManager.IP4Config",
    )
    .await
    .unwrap();
    let dns: Vec<std::collections::HashMap<String, zbus::OwnedVariant>> =
        cfg.get_property("NameserverData").await.unwrap();
    assert_eq!(
        dns.iter()
            .map(|d| String::try_from(d["address"].try_clone().unwrap()).unwrap())
            .collect::<Vec<_>>(),
        vec!["10.8.0.1"],
        "the pushed DNS server"
    );
    // The client's way out leads nowhere: these answers came through the tunnel.
    assert!(
        ping(&w.ns, "10.8.0.1", 5),
        "no answer from the server's tunnel address"
    );
    assert!(
        ping(&w.ns, "10.200.0.1", 5),
        "no answer from the network behind the server"
    );

    let openvpn = descendants_named(w.daemon.pid(), "openvpn");
    assert_eq!(openvpn.len(), 1, "one openvpn client runs: {openvpn:?}");
    if w.daemon.env("TMPDIR").is_some() {
        // tinynm-openvpn's management socket is in tinynmd's runtime directory.
        let run = w.daemon.dir().join("state/run");
        let dirs: Vec<_> = std::fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            dirs.len() == 1 && dirs[0].join("management").exists(),
            "{dirs:?}"
        );
    }
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[6, 7]).await, (7, 2));
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
    assert!(wait_exit(openvpn[0], LIMIT), "deactivation stops openvpn");
    assert!(!ping(&w.ns, "10.200.0.1", 1), "the tunnel is gone");
    if w.daemon.env("TMPDIR").is_some() {
        no_runtime_files_left(w).await;
    }
}

async fn failure(plugin: Plugin, auth: Auth, what: &str) -> (u32, u32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let mut w = world(plugin).await;
    let _server = Server::start(w.server.as_ref().unwrap(), &pki, auth).unwrap();
    let base = w.kernel();
    let mut p = client_profile(&format!("ovpn-{what}"), &pki, auth);
    match what {
        "wrong-password" => {
            p.vpn
                .secrets
                .insert("password".into(), "not-the-password".into());
        }
        "unreachable" => {
            p.vpn.data.insert("remote".into(), "10.99.0.77".into());
            p.vpn.timeout = 5;
        }
        "untrusted" => {
            // A CA of another PKI: the server's certificate does not verify.
            let other = tmp.path().join("other");
            std::fs::create_dir(&other).unwrap();
            let other = Pki::generate(&other).unwrap();
            p.vpn.data.insert("ca".into(), other.file("ca.crt"));
            p.vpn.timeout = 5;
        }
        _ => {}
    }
    let path = w.add_profile(p).await;
    let ac = w.activate(&path).await.unwrap();
    if what == "killed" {
        assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
        let pids = descendants_named(w.daemon.pid(), "openvpn");
        assert_eq!(pids.len(), 1, "one openvpn client: {pids:?}");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pids[0] as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    let (s, r) = w.wait_vpn(ac.as_str(), &[6, 7]).await;
    w.wait_removed(ac.as_str()).await;
    w.assert_clean(&base);
    // The plugin stops openvpn when told to disconnect; tinynmd does not wait for that.
    for pid in descendants_named(w.daemon.pid(), "openvpn") {
        assert!(wait_exit(pid, LIMIT), "openvpn {pid} left running");
    }
    if plugin == Plugin::Tinynm {
        no_runtime_files_left(&w).await;
    }
    (s, r, w.daemon.log_text())
}

/// tinynm-openvpn's runtime directory (its management socket) goes with the connection, and
/// with the plugin when openvpn dies on its own.
async fn no_runtime_files_left(w: &World) {
    for pid in descendants_named(w.daemon.pid(), "tinynm-openvpn") {
        assert!(wait_exit(pid, LIMIT), "tinynm-openvpn {pid} left running");
    }
    let tmpdir = w
        .daemon
        .env("TMPDIR")
        .expect("the test's runtime directory");
    let left: Vec<_> = std::fs::read_dir(&tmpdir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in {tmpdir}: {left:?}");
    // Its runtime files live in tinynmd's runtime directory, and went with the connection.
    let run = w.daemon.dir().join("state/run");
    let left: Vec<_> = std::fs::read_dir(&run)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", run.display());
}

/// Waits (at most `limit`) for process `pid` to end: a pidfd becomes readable when it does.
fn wait_exit(pid: u32, limit: std::time::Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return true; // already gone
    }
    let mut p = libc::pollfd {
        fd: fd as i32,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; the fd is closed right after.
    let n = unsafe { libc::poll(&mut p, 1, limit.as_millis() as i32) };
    // SAFETY: the fd is ours.
    unsafe { libc::close(fd as i32) };
    n == 1
}

/// The matrix: each scenario against each plugin.
macro_rules! matrix {
    ($($name:ident: $body:expr;)*) => {
        mod nm_openvpn_service {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let plugin = Plugin::Nm;
                    ($body)(plugin).await
                }
            )*
        }
        mod tinynm_openvpn {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let plugin = Plugin::Tinynm;
                    ($body)(plugin).await
                }
            )*
        }
    };
}

/// The daemon's log line that contains `what`, which the plugin wrote at `level`.
fn logged_at(log: &str, what: &str, level: &str) {
    let line = log
        .lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no {what:?} in the log:\n{log}"));
    assert!(
        line.split_whitespace().nth(1) == Some(level),
        "not at {level}: {line}"
    );
}

async fn run_wrong_password(plugin: Plugin) {
    let (s, r, log) = failure(plugin, Auth::Password, "wrong-password").await;
    // The plugin's warning reaches tinynmd's log as a warning.
    match plugin {
        Plugin::Nm => logged_at(&log, "Password verification failed", "WARN"),
        Plugin::Tinynm => logged_at(&log, "the server refused the credentials", "WARN"),
    }
    match plugin {
        // nm-openvpn-service, connected interactively as NM does, answers the server's
        // refusal by asking again for the password it was given; with no secret agent to
        // give another, NM ends NO_SECRETS, tinynmd says what happened: LOGIN_FAILED.
        Plugin::Nm => {
            assert!(log.contains("Password verification failed"), "{log}");
            assert!(
                log.contains("the VPN server refused the credentials: the plugin asks again for [\"password\"]"),
                "{log}"
            );
            assert_eq!((s, r), (6, 10), "LOGIN_FAILED\n{log}");
        }
        // tinynm-openvpn does not connect interactively (no agents yet): the refusal is
        // LOGIN_FAILED ("Invalid secrets").
        Plugin::Tinynm => {
            assert!(log.contains("the server refused the credentials"), "{log}");
            assert_eq!((s, r), (6, 10), "LOGIN_FAILED\n{log}");
        }
    }
}

async fn run_unreachable_server(plugin: Plugin) {
    let (s, r, log) = failure(plugin, Auth::Tls, "unreachable").await;
    assert_eq!(
        (s, r),
        (6, 6),
        "the connect timer (vpn.timeout 5 s), as NM\n{log}"
    );
}

async fn run_openvpn_killed(plugin: Plugin) {
    let (s, r, log) = failure(plugin, Auth::Tls, "killed").await;
    match plugin {
        Plugin::Nm => {
            assert!(log.contains("died with signal 9"), "{log}");
            // nm-openvpn-service then sends Failure(CONNECT_FAILED) and STOPPED (6/0,
            // "Unknown reason") and exits at once; when it exits before those signals leave
            // it, all anyone sees is its name vanish (7/4, "The VPN service stopped
            // unexpectedly"). NM reads the same race the same way; tinynmd reads every
            // signal that reached the bus before the name went, in order.
            assert!([(6, 0), (7, 4)].contains(&(s, r)), "({s}, {r})\n{log}");
        }
        // tinynm-openvpn sends Failure and STOPPED before it exits, always.
        Plugin::Tinynm => assert_eq!((s, r), (6, 0), "\n{log}"),
    }
}

async fn run_untrusted_server(plugin: Plugin) {
    let (s, r, log) = failure(plugin, Auth::Tls, "untrusted").await;
    assert!(log.contains("VERIFY ERROR"), "{log}");
    if plugin == Plugin::Tinynm {
        // openvpn's own lines keep their level (--machine-readable-output flags).
        logged_at(&log, "openvpn: VERIFY ERROR", "WARN");
        logged_at(&log, "openvpn: MANAGEMENT: CMD 'hold release'", "DEBUG");
    }
    match plugin {
        // nm-openvpn-service lets openvpn retry until NM's connect timer ends it.
        Plugin::Nm => assert_eq!((s, r), (6, 6), "\n{log}"),
        // tinynm-openvpn gives up at the first verification failure: CONNECT_FAILED.
        Plugin::Tinynm => {
            logged_at(&log, "failed verification: giving up", "ERROR");
            assert_eq!((s, r), (6, 0), "\n{log}");
        }
    }
}

matrix! {
    tls: |p| happy_path(p, Auth::Tls);
    password: |p| happy_path(p, Auth::Password);
    password_tls: |p| happy_path(p, Auth::PasswordTls);
    imported_ovpn: imported;
    nmcli_ask: |p| nmcli_password(p, "ask");
    nmcli_passwd_file: |p| nmcli_password(p, "file");
    wrong_password: run_wrong_password;
    unreachable: run_unreachable_server;
    untrusted_server: run_untrusted_server;
    killed: run_openvpn_killed;
}
