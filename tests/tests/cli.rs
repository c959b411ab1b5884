//! The `tinynm` command line against a real tinynmd.

mod common;

use common::World;
use std::process::Output;

fn tinynm(w: &World, args: &[&str]) -> Output {
    let bin = tinynm_sandbox::binary("tinynm").expect("tinynm binary");
    std::process::Command::new(bin)
        .arg("--bus-address")
        .arg(&w.bus.address)
        .args(args)
        .output()
        .expect("run tinynm")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_up_down() {
    let w = World::new().await;
    w.add("office", &[("tundev", "tbcli"), ("routes", "10.50.0.0/16")])
        .await;
    w.add("broken", &[("malformed", "prefix33")]).await;

    let o = tinynm(&w, &["connection", "list"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.lines().any(|l| l.starts_with("office ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("broken ")), "{out}");

    let o = tinynm(&w, &["connection", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["id"], "office");

    let o = tinynm(&w, &["connection", "show", "office"]);
    assert!(
        text(&o.stdout).contains("routes = \"10.50.0.0/16\""),
        "{}",
        text(&o.stdout)
    );

    let w2 = &w;
    let up = tokio::task::spawn_blocking({
        let args = ["connection", "up", "office"];
        let bin = tinynm_sandbox::binary("tinynm").unwrap();
        let addr = w2.bus.address.clone();
        move || {
            std::process::Command::new(bin)
                .arg("--bus-address")
                .arg(addr)
                .args(args)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(up.status.success(), "{}", text(&up.stderr));
    let out = text(&up.stdout);
    assert!(out.contains("VPN state: NEED_AUTH"), "{out}");
    assert!(out.contains("Connection successfully activated"), "{out}");
    assert_eq!(w.kernel().routes_on("tbcli").len(), 2);

    let o = tinynm(&w, &["connection", "down", "office"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("successfully deactivated"));

    let o = tinynm(&w, &["connection", "up", "broken"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains(
            "Connection activation failed: The VPN service returned invalid configuration"
        ),
        "{}",
        text(&o.stderr)
    );

    let o = tinynm(&w, &["connection", "up", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("unknown connection 'nosuch'"),
        "{}",
        text(&o.stderr)
    );

    let o = tinynm(&w, &["connection", "frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn demo_runs_and_cleans_up() {
    let bin = tinynm_sandbox::binary("tinynm").expect("tinynm binary");
    let o = std::process::Command::new(bin)
        .args(["demo", "--routes", "3"])
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("VPN state ACTIVATED"), "{out}");
    assert!(
        out.contains("route   100.64.0.3/32 dev demo0 proto static metric 50"),
        "{out}"
    );
    assert!(
        out.contains("(nothing: the kernel is as it was before the VPN)"),
        "{out}"
    );
    assert!(out.contains("Cleaned up"), "{out}");
}
