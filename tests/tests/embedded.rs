//! The embedded bus (issue 13): tinynmd with `bus = "embedded:PATH"` runs its own D-Bus broker
//! (busd) and no dbus-daemon is started anywhere in the test; its test-bench plugin, Debian's
//! `nmcli` and a client of ours connect to the socket and work as on a system bus.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{LIMIT, TESTBENCH};
use futures::StreamExt;
use tinynm_sandbox::Netns;
use tinynm_sandbox::nm::{ManagerProxy, SettingsProxy};
use zbus::{MatchRule, MessageStream, OwnedObjectPath};

/// tinynmd in `ns` on an embedded bus at `sock`; its files in `dir`. Ended on drop.
struct Embedded {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        tinynm_sandbox::terminate(&mut self.child);
    }
}

impl Embedded {
    fn start(ns: &Netns, dir: &std::path::Path, sock: &std::path::Path) -> Embedded {
        let tinynmd = tinynm_sandbox::binary("tinynmd").unwrap();
        let testbench = tinynm_sandbox::binary("tinynm-testbench").unwrap();
        let plugins = dir.join("vpn");
        tinynm_sandbox::write_testbench_plugins(&plugins, &testbench).unwrap();
        std::fs::create_dir_all(dir.join("connections")).unwrap();
        let conf = dir.join("daemon.toml");
        std::fs::write(
            &conf,
            format!(
                "bus = \"embedded:{}\"\nprofile-dir = \"{}\"\nkeyfile-dirs = []\nplugin-dirs = [\"{}\"]\n\
                 nm-plugin-dirs = false\nstate-dir = \"{}\"\nlog-level = \"debug\"\n[dns]\nbackend = \"none\"\n",
                sock.display(),
                dir.join("connections").display(),
                plugins.display(),
                dir.join("state").display(),
            ),
        )
        .unwrap();
        let log = dir.join("tinynmd.log");
        let mut cmd = Command::new(tinynmd);
        cmd.arg("--config")
            .arg(&conf)
            // No bus of anyone else's to fall back on.
            .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        ns.prepare(&mut cmd);
        Embedded {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

use std::os::unix::process::CommandExt;

fn nmcli(address: &str, args: &[&str]) -> (bool, String) {
    let bin = tinynm_sandbox::require_tool("nmcli", "network-manager").expect("nmcli");
    let o = Command::new(bin)
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", address)
        .env("LIBNM_CLIENT_DEBUG", "warning,error")
        .env("G_DEBUG", "fatal-warnings")
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .output()
        .expect("run nmcli");
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
    let d = Embedded::start(&ns, tmp.path(), &sock);
    let address = format!("unix:path={}", sock.display());
    // The socket appears once the broker listens; the name once tinynmd owns it.
    let deadline = std::time::Instant::now() + LIMIT;
    while !sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no socket at {}: {}",
            sock.display(),
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .unwrap_or_else(|e| panic!("connect to the embedded bus: {e}\n{}", d.log_text()));
    tinynm_sandbox::wait_for_name(&conn, "org.freedesktop.NetworkManager", LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
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
        &[
            "connection",
            "add",
            "type",
            "vpn",
            "vpn-type",
            TESTBENCH,
            "con-name",
            "inside",
            "vpn.data",
            "tundev=tbemb",
        ],
    );
    assert!(ok, "{text}\n{}", d.log_text());
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .member("VpnStateChanged")
        .build()
        .unwrap();
    let mut states = MessageStream::for_match_rule(rule, &conn, None)
        .await
        .unwrap();
    // `Connection 'inside' (UUID) successfully added.`
    let uuid = text
        .split(['(', ')'])
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let settings = SettingsProxy::new(&conn).await.unwrap();
    let profile = settings.get_connection_by_uuid(uuid).await.unwrap();
    let root = OwnedObjectPath::try_from("/").unwrap();
    let ac = ManagerProxy::new(&conn)
        .await
        .unwrap()
        .activate_connection(&profile, &root, &root)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let m = tokio::time::timeout_at(deadline, states.next())
            .await
            .unwrap_or_else(|_| panic!("no VPN ACTIVATED: {}", d.log_text()))
            .unwrap()
            .unwrap();
        let (state, _): (u32, u32) = m.body().deserialize().unwrap();
        if state == 5 {
            break;
        }
        assert!(state < 6, "the VPN failed ({state}): {}", d.log_text());
    }
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
