//! Debian's real `nmcli` 1.42 drives tinynmd, unmodified. libnm runs with its protocol checks
//! fatal (`LIBNM_CLIENT_DEBUG=warning,error G_DEBUG=fatal-warnings`): any deviation from what
//! it expects of NetworkManager aborts nmcli and fails the test.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::{TESTBENCH, World};

fn nmcli(w: &World, args: &[&str]) -> Output {
    common::nmcli_on(&w.bus.address, args)
}

/// `nmcli connection add type vpn` of a test-bench profile.
fn nmcli_add_vpn(w: &World, name: &str, data: &str) -> Output {
    nmcli(w, &common::nmcli_add_vpn_args(name, data))
}

/// nmcli in a blocking thread, for commands that wait on tinynmd while the test runs on.
async fn nmcli_async(w: &World, args: &[&str]) -> Output {
    nmcli_run(w, args).await
}

async fn nmcli_run(w: &World, args: &[&str]) -> Output {
    let bin = tinynm_sandbox::require_tool("nmcli", "network-manager").expect("nmcli");
    let addr = w.bus.address.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(&args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", addr)
            .env("LANG", "C")
            .env_remove("LC_ALL");
        cmd.env("LIBNM_CLIENT_DEBUG", "warning,error")
            .env("G_DEBUG", "fatal-warnings");
        cmd.output().expect("run nmcli")
    })
    .await
    .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_status_and_listing() {
    let w = World::new().await;
    let o = nmcli(&w, &["general", "status"]);
    assert!(o.status.success(), "{}", err(&o));
    // As NetworkManager answers (spec traces): the namespace has a way out.
    let lines: Vec<String> = out(&o)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], "STATE CONNECTIVITY WIFI-HW WIFI WWAN-HW WWAN");
    assert_eq!(lines[1], "connected full missing enabled missing enabled");

    w.add(
        "listed",
        &[("tundev", "tblist"), ("routes", "10.50.0.0/16")],
    )
    .await;
    let uuid = {
        let p = w.vpn_profiles().await;
        let c = w.profile_object(&p[0]).await;
        tinynm_config::dbus::from_dict(&c.get_settings().await.unwrap())
            .unwrap()
            .connection
            .uuid
    };
    let o = nmcli(&w, &["-t", "-f", "NAME,UUID,TYPE", "connection", "show"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    // Active first (lo, veth0: generated for the interfaces found configured), then the rest.
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("lo:") && lines[0].ends_with(":loopback"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("veth0:") && lines[1].ends_with(":802-3-ethernet"),
        "{lines:?}"
    );
    assert_eq!(lines[2], format!("listed:{uuid}:vpn"));
    let o = nmcli(&w, &["connection", "show", "listed"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains(&format!(
            "vpn.service-type:                       {TESTBENCH}"
        )),
        "{text}"
    );
    assert!(
        text.contains("routes = 10.50.0.0/16, tundev = tblist"),
        "{text}"
    );
    let o = nmcli(&w, &["general", "permissions"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("org.freedesktop.NetworkManager.network-control                    yes")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_modify_up_down_delete() {
    let w = World::new().await;
    let base = w.kernel();
    let o = nmcli_add_vpn(&w, "viaNmcli", "tundev=tbnmcli, routes=10.55.0.0/16");
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).starts_with("Connection 'viaNmcli' ("),
        "{}",
        out(&o)
    );
    let files = w.saved_profiles();
    assert_eq!(files.len(), 1, "saved to disk");
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let o = nmcli(
        &w,
        &["connection", "modify", "viaNmcli", "+vpn.data", "mtu=1300"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let saved = tinynm_config::toml_profile::load_file(&files[0]).unwrap();
    assert_eq!(
        saved.vpn.data.get("mtu").map(String::as_str),
        Some("1300"),
        "the file has the change"
    );

    let o = nmcli_async(&w, &["connection", "up", "id", "viaNmcli"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).starts_with("Connection successfully activated (D-Bus active path: /org/freedesktop/NetworkManager/ActiveConnection/"));
    let k = w.kernel();
    assert!(
        k.routes
            .contains(&"10.55.0.0/16 dev tbnmcli proto static metric 50".to_string()),
        "\n{k}"
    );
    assert_eq!(k.link("tbnmcli").map(|l| l.mtu), Some(1300));

    let o = nmcli_async(&w, &["connection", "down", "id", "viaNmcli"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).starts_with("Connection 'viaNmcli' successfully deactivated"),
        "{}",
        out(&o)
    );
    w.assert_clean(&base);

    let o = nmcli_async(&w, &["connection", "up", "uuid", &saved.connection.uuid]).await;
    assert!(o.status.success(), "{}", err(&o));
    let o = nmcli_async(&w, &["connection", "down", "uuid", &saved.connection.uuid]).await;
    assert!(o.status.success(), "{}", err(&o));

    let o = nmcli(&w, &["connection", "delete", "viaNmcli"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!files[0].exists(), "the file is gone");
    let o = nmcli(&w, &["-t", "-f", "NAME", "connection", "show"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "lo\nveth0\n",
        "only the generated profiles are left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_vpn_prints_nms_reason_and_fails() {
    let w = World::new().await;
    w.add("broken", &[("malformed", "prefix33")]).await;
    // libnm's checks fatal here too: a VPN that fails within milliseconds must still be a
    // well-formed object for as long as libnm may look at it.
    let o = nmcli_run(&w, &["connection", "up", "broken"]).await;
    assert_eq!(o.status.code(), Some(4), "{}", err(&o));
    assert!(
        err(&o).starts_with(
            "Error: Connection activation failed: The VPN service returned invalid configuration"
        ),
        "{}",
        err(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_prints_the_vpn_taking_the_default_route() {
    use std::io::{BufRead, BufReader};
    let mut w = World::new().await;
    let p = w.add("watched", &[("tundev", "tbmon")]).await;
    let bin = tinynm_sandbox::require_tool("nmcli", "network-manager").expect("nmcli");
    let mut child = std::process::Command::new(bin)
        .arg("monitor")
        .env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
        .env("LANG", "C")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Every line up to `want`, which must come within the limit.
    let until = |want: &str| {
        let deadline = std::time::Instant::now() + common::LIMIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l == want => return seen,
                Ok(l) => seen.push(l),
                Err(_) => panic!("nmcli monitor never printed {want:?} (printed {seen:#?})"),
            }
        }
    };
    until("NetworkManager is running");
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    // The tunnel's device walks NM's states for an assumed link, in NM's order.
    let seen = until("tbmon: connected (externally)");
    let tun: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("tbmon: ") && !l.contains("profile"))
        .collect();
    let mut want = vec![
        "tbmon: device created",
        "tbmon: unavailable",
        "tbmon: disconnected",
        "tbmon: using connection 'tbmon'",
    ];
    want.extend(["tbmon: connecting (externally)"; 5]);
    assert_eq!(tun, want, "{seen:#?}");
    if !seen
        .iter()
        .any(|l| l == "'watched' is now the primary connection")
    {
        until("'watched' is now the primary connection");
    }
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    // The tunnel goes; the uplink is primary again (assumed as NM does: connected externally).
    let seen = until("tbmon: device removed");
    if !seen
        .iter()
        .any(|l| l == "'veth0' is now the primary connection")
    {
        until("'veth0' is now the primary connection");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libnm_script_lists_activates_and_waits() {
    let w = World::new().await;
    w.add(
        "scripted",
        &[("tundev", "tbgi"), ("routes", "10.56.0.0/16")],
    )
    .await;
    w.add("other", &[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/libnm_activate.py");
    let python = "/usr/bin/python3";
    let addr = w.bus.address.clone();
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg("scripted")
            .env("DBUS_SYSTEM_BUS_ADDRESS", addr)
            .env("LIBNM_CLIENT_DEBUG", "warning,error")
            .env("G_DEBUG", "fatal-warnings")
            .output()
            .expect("python3 with gi (apt-get install -y python3-gi gir1.2-nm-1.0)")
    })
    .await
    .unwrap();
    let text = out(&o);
    assert!(o.status.success(), "{text}\n{}", err(&o));
    // The VPN profiles and those generated for the configured interfaces, as with NM.
    assert!(
        text.starts_with("profiles: lo,other,scripted,veth0\n"),
        "{text}"
    );
    assert!(text.contains("vpn: True"), "{text}");
    assert!(
        text.contains("devices: veth0\n"),
        "on the primary device: {text}"
    );
    assert!(
        w.kernel()
            .routes
            .contains(&"10.56.0.0/16 dev tbgi proto static metric 50".to_string()),
        "the VPN is up in the kernel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_an_ovpn_file_through_network_manager_openvpn() {
    let w = World::new().await;
    assert!(
        std::path::Path::new("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name").exists(),
        "needs Debian's network-manager-openvpn (apt-get install -y network-manager-openvpn)"
    );
    let dir = tempfile::tempdir().unwrap();
    let ovpn = dir.path().join("office.ovpn");
    std::fs::write(
        &ovpn,
        "client\ndev tun\nproto udp\nremote 10.99.0.1 1194\nca /srv/vpn/ca.crt\ncert /srv/vpn/client.crt\nkey /srv/vpn/client.key\ncipher AES-256-GCM\n",
    )
    .unwrap();
    let o = nmcli(
        &w,
        &[
            "connection",
            "import",
            "type",
            "openvpn",
            "file",
            ovpn.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).starts_with("Connection 'office' ("), "{}", out(&o));
    let files = w.saved_profiles();
    assert_eq!(files.len(), 1);
    let p = tinynm_config::toml_profile::load_file(&files[0]).unwrap();
    assert_eq!(p.vpn.service_type, "org.freedesktop.NetworkManager.openvpn");
    assert_eq!(p.vpn.data["remote"], "10.99.0.1:1194");
    assert_eq!(p.vpn.data["connection-type"], "tls");
    assert_eq!(p.vpn.data["ca"], "/srv/vpn/ca.crt");
}

fn columns(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_status_show_and_a_vpn_on_a_named_device() {
    let w = World::new().await;
    let o = nmcli(&w, &["device", "status"]);
    assert!(o.status.success(), "{}", err(&o));
    // As NM shows a namespace's links it did not configure itself (spec traces).
    assert_eq!(
        columns(&out(&o)),
        vec![
            "DEVICE TYPE STATE CONNECTION",
            "veth0 ethernet connected (externally) veth0",
            "lo loopback connected (externally) lo",
            "veth1 ethernet unmanaged --",
        ]
    );
    let o = nmcli(&w, &["device", "show", "veth0"]);
    assert!(o.status.success(), "{}", err(&o));
    let show = columns(&out(&o));
    for want in [
        "GENERAL.DEVICE: veth0",
        "GENERAL.TYPE: ethernet",
        "GENERAL.STATE: 100 (connected (externally))",
        "GENERAL.CONNECTION: veth0",
        "WIRED-PROPERTIES.CARRIER: on",
        "IP4.ADDRESS[1]: 10.99.0.2/24",
        "IP4.GATEWAY: 10.99.0.1",
    ] {
        assert!(show.iter().any(|l| l == want), "no {want:?} in {show:#?}");
    }

    w.add(
        "ondev",
        &[
            ("tundev", "tbdev"),
            ("routes", "10.57.0.0/16"),
            ("dns", "10.8.0.53"),
        ],
    )
    .await;
    let o = nmcli_async(&w, &["connection", "up", "id", "ondev", "ifname", "veth0"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        w.kernel()
            .routes
            .contains(&"10.57.0.0/16 dev tbdev proto static metric 50".to_string())
    );
    // The tunnel shows up as a device of its own once the kernel reports it configured.
    let devices = w.devices(&["tbdev"]).await;
    w.until("tbdev connected", || async {
        let d = tinynm_sandbox::nm::DeviceProxy::builder(&w.conn)
            .path(devices["tbdev"].clone())
            .build()
            .await
            .ok()?;
        (d.state().await.ok()? == 100).then_some(())
    })
    .await;
    let o = nmcli(&w, &["device", "status"]);
    assert!(o.status.success(), "{}", err(&o));
    let status = columns(&out(&o));
    assert!(
        status.contains(&"tbdev tun connected (externally) tbdev".to_string()),
        "{status:#?}"
    );
    let o = nmcli(
        &w,
        &[
            "-t",
            "-f",
            "NAME,TYPE,DEVICE",
            "connection",
            "show",
            "--active",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).lines().any(|l| l == "ondev:vpn:veth0"),
        "{}",
        out(&o)
    );

    // The VPN's own IPv4 config, as `connection show` prints it.
    let ac = w.vpn_actives().await.remove(0);
    w.ip4_config(&ac).await;
    let o = nmcli(&w, &["connection", "show", "ondev"]);
    assert!(o.status.success(), "{}", err(&o));
    let show = columns(&out(&o));
    for want in [
        "GENERAL.DEVICES: veth0",
        "GENERAL.VPN: yes",
        "IP4.ADDRESS[1]: 10.8.0.2/32",
        "IP4.DNS[1]: 10.8.0.53",
        "VPN.VPN-STATE: 5 - VPN connected",
    ] {
        assert!(show.iter().any(|l| l == want), "no {want:?} in {show:#?}");
    }
    assert!(
        show.iter().any(|l| l.starts_with("IP4.ROUTE[")
            && l.ends_with("dst = 10.57.0.0/16, nh = 0.0.0.0, mt = 50")),
        "{show:#?}"
    );

    // A device that is not there, or has no connection, is refused by name.
    let o = nmcli_async(
        &w,
        &["connection", "up", "id", "ondev", "ifname", "nosuch0"],
    )
    .await;
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err(&o).contains("no active connection on device 'nosuch0'"),
        "{}",
        err(&o)
    );
    let o = nmcli_async(&w, &["connection", "down", "id", "ondev"]).await;
    assert!(o.status.success(), "{}", err(&o));
    let o = nmcli_async(&w, &["connection", "up", "id", "ondev", "ifname", "veth1"]).await;
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err(&o).contains("no active connection on device 'veth1'"),
        "{}",
        err(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_load_and_secrets_through_nmcli() {
    let w = World::new().await;
    let dir = w.daemon.profile_dir.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let mut p = common::profile("dropped", TESTBENCH, &[("tundev", "tbrl")]);
    p.vpn.secrets.insert("password".into(), "s3cret".into());
    let file = dir.join("dropped.toml");
    std::fs::write(&file, tinynm_config::toml_profile::to_toml_string(&p)).unwrap();

    // A file dropped into the directory appears on `connection reload`.
    let o = nmcli(&w, &["connection", "reload"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = nmcli(&w, &["-t", "-f", "NAME", "connection", "show"]);
    assert!(out(&o).lines().any(|l| l == "dropped"), "{}", out(&o));
    let o = nmcli(&w, &["--show-secrets", "connection", "show", "dropped"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        columns(&out(&o)).contains(&"vpn.secrets: password = s3cret".to_string()),
        "{}",
        out(&o)
    );

    // Changed on disk, then `connection load FILE`: the profile follows.
    p.vpn.data.insert("mtu".into(), "1280".into());
    std::fs::write(&file, tinynm_config::toml_profile::to_toml_string(&p)).unwrap();
    let o = nmcli(&w, &["connection", "load", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", err(&o));
    let o = nmcli(&w, &["-g", "vpn.data", "connection", "show", "dropped"]);
    assert!(out(&o).contains("mtu = 1280"), "{}", out(&o));

    // A broken file is named as a failure, and changes nothing.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[connection]\nid = 3\n").unwrap();
    let before = out(&nmcli(&w, &["-t", "-f", "NAME", "connection", "show"]));
    let o = nmcli(&w, &["connection", "load", bad.to_str().unwrap()]);
    // nmcli reports the file and exits 0, as against NetworkManager.
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&nmcli(&w, &["-t", "-f", "NAME", "connection", "show"])),
        before
    );
    assert!(
        err(&o).contains(&format!("Could not load file '{}'", bad.display())),
        "{}",
        err(&o)
    );
    std::fs::remove_file(&bad).unwrap();

    // Gone from disk: gone on reload.
    std::fs::remove_file(&file).unwrap();
    let o = nmcli(&w, &["connection", "reload"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = nmcli(&w, &["-t", "-f", "NAME", "connection", "show"]);
    assert!(!out(&o).lines().any(|l| l == "dropped"), "{}", out(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_tinynm_does_not_use_are_kept_not_lost() {
    let mut w = World::new().await;
    let o = nmcli_add_vpn(&w, "zoned", "tundev=tbzone");
    assert!(o.status.success(), "{}", err(&o));
    // connection.zone (firewalld's zone) means nothing to tinynm: nmcli's change is kept.
    let o = nmcli(
        &w,
        &[
            "connection",
            "modify",
            "zoned",
            "connection.zone",
            "trusted",
            "connection.metered",
            "yes",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let get = |w: &World| {
        let o = nmcli(
            w,
            &[
                "-g",
                "connection.zone,connection.metered",
                "connection",
                "show",
                "zoned",
            ],
        );
        assert!(o.status.success(), "{}", err(&o));
        out(&o)
    };
    assert_eq!(get(&w), "trusted\nyes\n");
    // On disk, and so after a restart.
    let files = w.saved_profiles();
    let saved = tinynm_config::toml_profile::load_file(&files[0]).unwrap();
    assert!(
        saved.extra.contains_key("connection.zone"),
        "{:?}",
        saved.extra
    );
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert_eq!(get(&w), "trusted\nyes\n");
}
