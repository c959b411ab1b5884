//! The `tinynm` command line as a user of nmcli expects it, against a real tinynmd: `general`,
//! `device`, `monitor`, the active column, `--json` everywhere (errors too), `-t`, the exit
//! codes, ambiguous and mistyped names.

mod common;

use std::io::BufRead;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::World;

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", text(&o.stdout), text(&o.stderr)))
}

/// `tinynm ARGS` in a blocking task (while the test's runtime goes on).
async fn tinynm(w: &World, args: &[&str]) -> Output {
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let addr = w.bus.address.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .arg("--bus-address")
            .arg(addr)
            .args(args)
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_device_and_the_active_column() {
    let w = World::new().await;
    w.add("office", &[("tundev", "tbnm1"), ("routes", "10.51.0.0/16")])
        .await;
    w.add("home", &[("tundev", "tbnm2")]).await;

    let o = tinynm(&w, &["general"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let mut lines = out.lines();
    assert!(
        lines.next().unwrap().starts_with("STATE "),
        "a header first: {out}"
    );
    assert!(lines.next().unwrap().starts_with("connected "), "{out}");
    let v = json(&tinynm(&w, &["general", "status", "--json"]).await);
    assert_eq!(v["state"], "connected");
    assert_eq!(v["vpns"], "0");

    // Root may do everything.
    let o = tinynm(&w, &["general", "permissions", "-t"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout)
            .lines()
            .any(|l| l == "org.freedesktop.NetworkManager.network-control:yes"),
        "{}",
        text(&o.stdout)
    );

    // Up: the list shows it first, with its state; --active lists it alone.
    let o = tinynm(&w, &["connection", "up", "office"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = tinynm(&w, &["connection", "list"]).await;
    let out = text(&o.stdout);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "UUID", "TYPE", "DEVICE", "STATE"]);
    // As nmcli: the active ones first (among them the generated profiles of the parent link
    // and the tun, configured outside the VPN's profile); the VPN over its parent device.
    let office = rows
        .iter()
        .position(|r| r[0] == "office")
        .expect("office listed");
    let home = rows
        .iter()
        .position(|r| r[0] == "home")
        .expect("home listed");
    assert!(office < home, "{out}");
    assert_eq!(rows[office][2..], ["vpn", "veth0", "activated"], "{out}");
    assert_eq!(rows[home][2..], ["vpn", "--", "--"], "{out}");
    assert!(
        rows.iter()
            .any(|r| r[..3] == ["tbnm1", r[1], "tun"] && r[4] == "activated"),
        "{out}"
    );
    let o = tinynm(&w, &["connection", "show", "--active", "-t"]).await;
    let out = text(&o.stdout);
    let vpn: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f[2] == "vpn")
        .collect();
    assert_eq!(vpn.len(), 1, "{out}");
    assert_eq!(vpn[0][0], "office");
    assert_eq!(vpn[0][4], "activated");
    assert!(!out.contains("home"), "{out}");
    let v = json(&tinynm(&w, &["connection", "list", "--json"]).await);
    let by_id = |id: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("office")["active"]["state"], "activated");
    assert_eq!(by_id("office")["data"]["routes"], "10.51.0.0/16");
    assert!(by_id("home")["active"].is_null());

    // The VPN's tun as a device, with its address and routes.
    let o = tinynm(&w, &["device"]).await;
    let out = text(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..2] == ["tbnm1", "tun"]),
        "{out}"
    );
    let v = json(&tinynm(&w, &["device", "show", "tbnm1", "--json"]).await);
    assert_eq!(v["general.device"], "tbnm1");
    // As NM: the tun is configured by the VPN, not by a profile of its own.
    assert_eq!(v["general.state"], "100 (connected (externally))", "{v:#}");
    assert_eq!(
        v["ip4.address"],
        serde_json::json!(["10.8.0.2/32"]),
        "{v:#}"
    );
    // The parent link, its address.
    let o = tinynm(&w, &["device", "show", "veth0", "-t"]).await;
    let out = text(&o.stdout);
    assert!(out.lines().any(|l| l == "GENERAL.DEVICE:veth0"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("IP4.ADDRESS[1]:")),
        "{out}"
    );
    let o = tinynm(&w, &["device", "show", "nosuch0"]).await;
    assert_eq!(o.status.code(), Some(10));
    assert_eq!(text(&o.stderr).trim(), "Error: Device 'nosuch0' not found");

    let o = tinynm(&w, &["connection", "down", "office"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    // down waited until it was gone: nothing active now.
    let v = json(&tinynm(&w, &["connection", "list", "--active", "--json"]).await);
    assert!(
        v.as_array().unwrap().iter().all(|p| p["type"] != "vpn"),
        "{v:#}"
    );
    let o = tinynm(&w, &["connection", "down", "office"]).await;
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_names_and_json_errors() {
    let w = World::new().await;
    w.add("twin", &[("tundev", "tbtw1")]).await;
    w.add("twin", &[("tundev", "tbtw2")]).await;
    w.add("offices", &[("tundev", "tbof")]).await;
    w.add("broken", &[("malformed", "prefix33")]).await;

    // Two profiles with one id: an error naming both UUIDs, nothing activated.
    let o = tinynm(&w, &["connection", "up", "twin"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("'twin' is ambiguous: 2 profiles have that id"),
        "{err}"
    );
    let list = json(&tinynm(&w, &["connection", "list", "--json"]).await);
    let uuids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["id"] == "twin")
        .map(|p| p["uuid"].as_str().unwrap())
        .collect();
    for u in &uuids {
        assert!(err.contains(u), "{err}");
    }
    assert!(w.vpn_actives().await.is_empty());
    // By UUID it is one.
    let o = tinynm(&w, &["connection", "show", uuids[1], "--json"]).await;
    assert_eq!(json(&o)["data"]["tundev"], "tbtw2");

    // A mistyped name: not found (10), with the nearest id.
    let o = tinynm(&w, &["connection", "up", "ofices"]).await;
    assert_eq!(o.status.code(), Some(10));
    assert!(
        text(&o.stderr).contains("unknown connection 'ofices'")
            && text(&o.stderr).contains("did you mean 'offices'?"),
        "{}",
        text(&o.stderr)
    );
    // Under --json the error is JSON on stdout, with the same code.
    let o = tinynm(&w, &["connection", "up", "ofices", "--json"]).await;
    assert_eq!(o.status.code(), Some(10));
    let v = json(&o);
    assert_eq!(v["error"]["exit"], 10);
    assert_eq!(v["error"]["kind"], "not-found");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean 'offices'?")
    );

    // A failed activation is 4; under --json the states it went through are not lost.
    let o = tinynm(&w, &["connection", "up", "broken", "--json"]).await;
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(json(&o)["error"]["kind"], "activation-failed");

    // A plugin that dies: NM's reason, and the last line the plugin wrote (tinynmd keeps it).
    w.add("dies", &[("tundev", "tbdie"), ("exit-at", "connect")])
        .await;
    let o = tinynm(&w, &["connection", "up", "dies"]).await;
    assert_eq!(o.status.code(), Some(4));
    let err = text(&o.stderr);
    assert!(
        err.contains("Connection activation failed: The VPN service stopped unexpectedly"),
        "{err}"
    );
    assert!(
        err.contains("The plugin's last line: ")
            && err.contains("exit-at=connect: exiting as scripted"),
        "{err}\n{}",
        w.daemon.log_text()
    );

    // A mistyped command: clap's suggestion, usage exit 2.
    let o = tinynm(&w, &["conection", "list"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("tip: some similar subcommands exist")
            && text(&o.stderr).contains("'connection'"),
        "{}",
        text(&o.stderr)
    );

    // --wait 1 on a plugin that never answers Connect: a timeout, 3.
    w.add("slow", &[("tundev", "tbslow"), ("delay-connect", "60000")])
        .await;
    let o = tinynm(&w, &["connection", "up", "slow", "--wait", "1"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("timed out after 1 s waiting for 'slow' (--wait)"));

    // No daemon on the bus: 8.
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let o = std::process::Command::new(bin)
        .args([
            "--bus-address",
            "unix:path=/nonexistent/tinynm-test",
            "general",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(8), "{}", text(&o.stderr));

    // Colour only when asked for (or on a terminal without NO_COLOR).
    let o = tinynm(&w, &["connection", "list", "--color", "always"]).await;
    assert!(
        text(&o.stdout).contains("\x1b[32mactivated"),
        "{}",
        text(&o.stdout)
    );
    let o = tinynm(&w, &["device", "--color", "always"]).await;
    assert!(
        text(&o.stdout).contains("\x1b[32mconnected"),
        "{}",
        text(&o.stdout)
    );
    let o = tinynm(&w, &["device"]).await;
    assert!(!text(&o.stdout).contains("\x1b["));
}

/// `tinynm monitor` prints each change as it happens: the VPN's states with the reason it
/// failed, the connection's, the tun device's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_follows_vpn_states_and_devices() {
    let w = World::new().await;
    let ok = w.add("mon", &[("tundev", "tbmon")]).await;
    let bad = w.add("monbad", &[("malformed", "prefix33")]).await;
    let mut child = std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap())
        .args(["--bus-address", &w.bus.address, "monitor", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        // The subscription is in place once this line is out.
        let mut l = String::new();
        let _ = std::io::BufReader::new(stderr).read_line(&mut l);
        let _ = ready_tx.send(l);
    });
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    let l = tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .unwrap()
        .unwrap();
    assert!(l.contains("following the daemon"), "{l}");
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let mut wait_for = async |want: serde_json::Value| {
        let found = |seen: &[serde_json::Value]| {
            seen.iter().any(|v| {
                want.as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, x)| v.get(k) == Some(x))
            })
        };
        let r = tokio::time::timeout(Duration::from_secs(20), async {
            while !found(&seen) {
                let l = rx.recv().await.expect("monitor ended");
                seen.push(serde_json::from_str(&l).expect("a JSON object per line"));
            }
        })
        .await;
        assert!(r.is_ok(), "no {want} in {seen:#?}");
    };
    let ac = w.activate(&ok).await.unwrap();
    // As NM: the first VpnStateChanged is NEED_AUTH (PREPARE is not signalled).
    wait_for(serde_json::json!({"event": "vpn", "object": "mon", "state": "NEED_AUTH"})).await;
    wait_for(serde_json::json!({"event": "vpn", "object": "mon", "state": "ACTIVATED"})).await;
    wait_for(serde_json::json!({"event": "connection", "object": "mon", "state": "activated"}))
        .await;
    wait_for(serde_json::json!({"event": "device", "object": "tbmon", "state": "connected (externally)"})).await;
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    wait_for(
        serde_json::json!({"event": "vpn", "object": "mon", "state": "DISCONNECTED",
        "reason": "Disconnected by user"}),
    )
    .await;
    w.activate(&bad).await.unwrap();
    wait_for(
        serde_json::json!({"event": "vpn", "object": "monbad", "state": "FAILED",
        "reason": "The VPN service returned invalid configuration"}),
    )
    .await;
    // Profiles by their ids, as nmcli's "X: connection profile created".
    w.add("newone", &[]).await;
    wait_for(serde_json::json!({"event": "profile", "object": "newone", "state": "created"})).await;
    child.kill().unwrap();
    child.wait().unwrap();
}
