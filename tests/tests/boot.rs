//! Boot: what a service manager and a package need. `scripts/run install` puts the binaries,
//! the unit, the D-Bus policy and activation file and an example daemon.toml at FHS paths;
//! the policy lets root own NM's name on a real dbus-daemon; tinynmd tells the service manager
//! it is ready (Type=notify) only once its name is owned; `nm-online -s` returns once the
//! start-up autoconnects have settled (Manager `Startup`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use common::World;
use tinynm_sandbox::DaemonOptions;

#[test]
fn install_puts_everything_at_fhs_paths_and_the_policy_works_on_a_real_bus() {
    tinynm_sandbox::require_root("the install test").unwrap();
    let built = tinynm_sandbox::binary("tinynmd").unwrap();
    let from = built.parent().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(repo.join("scripts/run"))
        .arg("install")
        .arg(format!("DESTDIR={}", dest.path().display()))
        .arg(format!("--from={}", from.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let d = dest.path();
    for (file, mode) in [
        ("usr/sbin/tinynmd", 0o755),
        ("usr/bin/tinynm", 0o755),
        ("usr/libexec/tinynm/tinynm-openvpn", 0o755),
        ("usr/libexec/tinynm/tinynm-openvpn-helper", 0o755),
        ("usr/libexec/tinynm/tinynm-testbench", 0o755),
        ("usr/lib/tinynm/VPN/tinynm-openvpn.name", 0o644),
        ("lib/systemd/system/tinynmd.service", 0o644),
        ("usr/share/dbus-1/system.d/tinynm.conf", 0o644),
        (
            "usr/share/dbus-1/system-services/org.freedesktop.NetworkManager.service",
            0o644,
        ),
        ("etc/tinynm/daemon.toml", 0o644),
        ("usr/share/man/man1/tinynm.1", 0o644),
        ("usr/share/man/man8/tinynmd.8", 0o644),
        ("usr/share/man/man5/tinynm-daemon.toml.5", 0o644),
        ("usr/share/doc/tinynm/examples/daemon.toml", 0o644),
        ("usr/share/doc/tinynm/cli.md", 0o644),
        ("usr/share/bash-completion/completions/tinynm", 0o644),
        ("usr/share/zsh/vendor-completions/_tinynm", 0o644),
        ("usr/share/fish/vendor_completions.d/tinynm.fish", 0o644),
    ] {
        let m = std::fs::metadata(d.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(m.permissions().mode() & 0o777, mode, "{file}");
    }
    // The manuals and completions come from the clap definitions: every command and option.
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let man1 = read("usr/share/man/man1/tinynm.1");
    assert!(
        man1.starts_with(".ie \\n(.g .ds Aq \\(aq") || man1.contains(".TH tinynm 1"),
        "{man1}"
    );
    assert!(man1.contains(".TH tinynm 1"), "{man1}");
    for cmd in [
        "connection",
        "plugin\\-test",
        "wait\\-online",
        "completions",
        "agent",
        "general",
        "device",
        "monitor",
        "Exit status",
    ] {
        assert!(man1.contains(cmd), "{cmd} in tinynm(1):\n{man1}");
    }
    let man8 = read("usr/share/man/man8/tinynmd.8");
    assert!(man8.contains(".TH tinynmd 8"), "{man8}");
    for opt in [
        "\\-\\-config",
        "\\-\\-bus",
        "\\-\\-profile\\-dir",
        "\\-\\-log\\-level",
    ] {
        assert!(man8.contains(opt), "{opt} in tinynmd(8):\n{man8}");
    }
    let bash = read("usr/share/bash-completion/completions/tinynm");
    assert!(
        bash.contains("complete -F _tinynm") && bash.contains("plugin-test"),
        "{bash}"
    );
    // bash itself accepts the script.
    let ok = std::process::Command::new("bash")
        .args(["-n"])
        .arg(d.join("usr/share/bash-completion/completions/tinynm"))
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(read("usr/share/zsh/vendor-completions/_tinynm").starts_with("#compdef tinynm"));
    assert!(read("usr/share/fish/vendor_completions.d/tinynm.fish").contains("complete -c tinynm"));
    // The example daemon.toml is one tinynmd accepts.
    let text = std::fs::read_to_string(d.join("etc/tinynm/daemon.toml")).unwrap();
    let cfg = tinynm_config::DaemonConfig::from_toml_str(&text, Path::new("daemon.toml")).unwrap();
    assert_eq!(cfg.dns.backend, "auto");
    let unit = std::fs::read_to_string(d.join("lib/systemd/system/tinynmd.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStart=/usr/sbin/tinynmd --config /etc/tinynm/daemon.toml",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in:\n{unit}");
    }
    // The policy on a real dbus-daemon whose own policy lets nobody own anything: it loads, and
    // through it root may own NM's name.
    let sock = d.join("bus.sock");
    let conf = d.join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\
             <type>system</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\
             <policy context=\"default\"><allow user=\"*\"/><deny own=\"*\"/>\
             <allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy>\
             <includedir>{}</includedir></busconfig>\n",
            sock.display(),
            d.join("usr/share/dbus-1/system.d").display()
        ),
    )
    .unwrap();
    let dbus = tinynm_sandbox::require_tool("dbus-daemon", "dbus").unwrap();
    let mut bus = std::process::Command::new(dbus)
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--nopidfile"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let owned = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + common::LIMIT;
        let conn = loop {
            let addr = format!("unix:path={}", sock.display());
            let built = tokio::time::timeout(
                common::LIMIT,
                zbus::connection::Builder::address(addr.as_str()).build(),
            )
            .await
            .expect("the bus answers");
            match built {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() > deadline => panic!("the bus: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        tokio::time::timeout(
            common::LIMIT,
            conn.request_name("org.freedesktop.NetworkManager"),
        )
        .await
        .expect("an answer from the bus")
    });
    tinynm_sandbox::terminate(&mut bus);
    owned.expect("root owns org.freedesktop.NetworkManager under the installed policy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinynmd_tells_the_service_manager_it_is_ready_once_its_name_is_owned() {
    tinynm_sandbox::require_root("the notify test").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(common::LIMIT)).unwrap();
    let mut w = World::with(DaemonOptions {
        env: vec![("NOTIFY_SOCKET".into(), path.display().to_string())],
        ..Default::default()
    })
    .await;
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a notification");
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "READY=1\n");
    // Ready means answering: the name has an owner at that point.
    let owner = zbus::fdo::DBusProxy::new(&w.conn)
        .await
        .unwrap()
        .name_has_owner("org.freedesktop.NetworkManager".try_into().unwrap())
        .await
        .unwrap();
    assert!(owner);
    w.daemon.stop();
    let n = sock.recv(&mut buf).expect("a notification at the end");
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "STOPPING=1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nm_online_s_returns_once_the_start_up_uplink_has_settled() {
    tinynm_sandbox::require_root("the nm-online test").unwrap();
    let keyfile = "[connection]\nid=uplink\nuuid=9d6b0f0e-0909-4a09-9009-b0a9c0d0e001\n\
                   type=ethernet\ninterface-name=veth0\n\n[ipv4]\nmethod=manual\n\
                   address1=10.99.0.10/24,10.99.0.1\n\n[ipv6]\nmethod=ignore\n";
    let w = World::with_uplink(
        DaemonOptions {
            keyfiles: vec![("uplink.nmconnection".into(), keyfile.into())],
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let bin = tinynm_sandbox::require_tool("nm-online", "network-manager").unwrap();
    let out = tokio::process::Command::new(bin)
        .args(["-s", "-q", "-t", "30"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Startup ends only after the uplink's activation: the device is ACTIVATED by then.
    let dev = w.devices(&["veth0"]).await["veth0"].clone();
    let p = zbus::Proxy::new(
        &w.conn,
        "org.freedesktop.NetworkManager",
        dev,
        "org.freedesktop.NetworkManager.Device",
    )
    .await
    .unwrap();
    assert_eq!(p.get_property::<u32>("State").await.unwrap(), 100);
    let m = zbus::Proxy::new(
        &w.conn,
        "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager",
        "org.freedesktop.NetworkManager",
    )
    .await
    .unwrap();
    assert!(!m.get_property::<bool>("Startup").await.unwrap());
    // And nm-online without -s: connected.
    let out = tokio::process::Command::new(
        tinynm_sandbox::require_tool("nm-online", "network-manager").unwrap(),
    )
    .args(["-q", "-t", "10"])
    .env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
    .output()
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// As NM: a second daemon on the same bus does not take the names from the first (which
/// keeps serving), and says why it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tinynmd_on_the_same_bus_is_refused_and_the_first_keeps_its_names() {
    let w = World::new().await;
    let dbus = zbus::fdo::DBusProxy::new(&w.conn).await.unwrap();
    let owner = |name: &'static str| {
        let dbus = dbus.clone();
        async move {
            dbus.get_name_owner(name.try_into().unwrap())
                .await
                .unwrap()
                .to_string()
        }
    };
    let nm = owner("org.freedesktop.NetworkManager").await;
    let own = owner("org.tinynm").await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("daemon.toml");
    std::fs::write(
        &conf,
        format!(
            "bus = \"{}\"\nprofile-dir = \"{d}/p\"\nstate-dir = \"{d}/s\"\nlease-dir = \"{d}/l\"\nkeyfile-dirs = []\nnm-plugin-dirs = false\n[dns]\nbackend = \"none\"\n",
            w.bus.address,
            d = dir.path().display()
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(tinynm_sandbox::binary("tinynmd").unwrap());
    cmd.arg("--config")
        .arg(&conf)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    w.ns.prepare_tokio(&mut cmd);
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        cmd.spawn().unwrap().wait_with_output(),
    )
    .await
    .expect("the second tinynmd stops by itself")
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "cannot own org.tinynm on '{}': another process owns it",
            w.bus.address
        )),
        "{err}"
    );
    assert_eq!(owner("org.freedesktop.NetworkManager").await, nm);
    assert_eq!(owner("org.tinynm").await, own);
    // And the first still answers.
    let version: String = zbus::Proxy::new(
        &w.conn,
        "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager",
        "org.freedesktop.NetworkManager",
    )
    .await
    .unwrap()
    .get_property("Version")
    .await
    .unwrap();
    assert!(!version.is_empty());
}
