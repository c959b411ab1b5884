//! The `tinynm` command line against a real tinynmd.

mod common;

use common::World;
use std::process::Output;

fn tinynm(w: &World, args: &[&str]) -> Output {
    w.tinynm(args)
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
    let vpns: Vec<&serde_json::Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "vpn")
        .collect();
    assert_eq!(vpns.len(), 2);
    assert_eq!(vpns[0]["id"], "office");

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
    assert_eq!(o.status.code(), Some(4));
    assert!(
        text(&o.stderr).contains(
            "Connection activation failed: The VPN service returned invalid configuration"
        ),
        "{}",
        text(&o.stderr)
    );

    let o = tinynm(&w, &["connection", "up", "nosuch"]);
    assert_eq!(o.status.code(), Some(10));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_modify_delete_and_bad_arguments() {
    let w = World::new().await;
    let o = tinynm(
        &w,
        &[
            "connection",
            "add",
            "--name",
            "made",
            "--vpn-type",
            "org.freedesktop.NetworkManager.testbench",
            "--data",
            "tundev=tbmade",
            "--data",
            "routes=10.59.0.0/16",
            "--secret",
            "password=pw",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("Connection 'made' ("),
        "{}",
        text(&o.stdout)
    );
    let files = w.saved_profiles();
    assert_eq!(files.len(), 1);
    let p = tinynm_config::toml_profile::load_file(&files[0]).unwrap();
    assert_eq!(p.vpn.data["routes"], "10.59.0.0/16");
    assert_eq!(p.vpn.secrets["password"], "pw");

    let o = tinynm(
        &w,
        &[
            "connection",
            "modify",
            "made",
            "--data",
            "mtu=1300",
            "--remove-data",
            "routes",
            "--never-default",
            "yes",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p = tinynm_config::toml_profile::load_file(&files[0]).unwrap();
    assert_eq!(p.vpn.data.get("mtu").map(String::as_str), Some("1300"));
    assert!(!p.vpn.data.contains_key("routes"));
    assert!(p.ipv4.never_default);
    assert_eq!(p.vpn.secrets["password"], "pw", "secrets kept");

    // Bad input: a clear error naming what was wrong, and nothing changed.
    let before = std::fs::read_to_string(&files[0]).unwrap();
    let o = tinynm(&w, &["connection", "modify", "made", "--data", "novalue"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains(
            "invalid value 'novalue' for '--data <KEY=VALUE>': 'novalue' is not KEY=VALUE"
        ),
        "{}",
        text(&o.stderr)
    );
    let o = tinynm(
        &w,
        &["connection", "modify", "made", "--remove-data", "nosuch"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("'made' has no vpn.data item 'nosuch'"),
        "{}",
        text(&o.stderr)
    );
    let o = tinynm(&w, &["connection", "add", "--name", " ", "--vpn-type", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("[connection] id: must not be empty"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), before);

    let o = tinynm(&w, &["connection", "delete", "made"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!files[0].exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_a_bad_ovpn_names_the_line_and_changes_nothing() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("bad.ovpn");
    std::fs::write(
        &f,
        "client\nremote 10.99.0.1\n<ca>\nX\n</ca>\ncomp-lzo maybe\n",
    )
    .unwrap();
    let certs = tmp.path().join("certs");
    let o = tinynm(
        &w,
        &[
            "connection",
            "import",
            "openvpn",
            f.to_str().unwrap(),
            "--cert-dir",
            certs.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("line 6: unsupported comp-lzo argument"),
        "{err}"
    );
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!certs.exists(), "no inline file written");
    assert!(w.vpn_profiles().await.is_empty(), "no profile added");
}

/// A profile whose secret `token` is agent-owned and not stored.
async fn needs_token(w: &World, id: &str, tundev: &str) {
    w.add(
        id,
        &[
            ("tundev", tundev),
            ("require-secret", "token"),
            ("token-flags", "1"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_a_secrets_file_and_with_a_running_agent() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("secrets");
    std::fs::write(&f, "# one per line\nvpn.secrets.token:t0k3n\n").unwrap();

    needs_token(&w, "by-file", "tbcli1").await;
    let o = tinynm(
        &w,
        &[
            "connection",
            "up",
            "by-file",
            "--secrets-file",
            f.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(w.kernel().link("tbcli1").is_some(), "the VPN is up");

    // Without an agent, the same kind of profile fails at once, naming the key.
    needs_token(&w, "no-agent", "tbcli2").await;
    let o = tinynm(&w, &["connection", "up", "no-agent"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("No valid secrets"),
        "{}",
        text(&o.stderr)
    );

    // A long-running agent answers for activations made by anyone of its user.
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let mut agent = common::spawn_tinynm_agent(
        std::process::Command::new(bin)
            .arg("--bus-address")
            .arg(&w.bus.address)
            .args(["agent", "--secrets-file", f.to_str().unwrap()]),
    );
    needs_token(&w, "by-agent", "tbcli3").await;
    let o = tinynm(&w, &["connection", "up", "by-agent"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    tinynm_sandbox::terminate(&mut agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_file_gives_a_secret_whatever_its_flags() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("secrets");
    std::fs::write(&f, "vpn.secrets.password:s3cret\n").unwrap();
    // `password` has no flags (system-owned) and the profile does not store it.
    w.add(
        "no-flags",
        &[("tundev", "tbcli5"), ("require-secret", "password")],
    )
    .await;
    let up = |id: &'static str| {
        let path = f.to_str().unwrap().to_string();
        tinynm(&w, &["connection", "up", id, "--secrets-file", &path])
    };
    let o = up("no-flags");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(w.kernel().link("tbcli5").is_some(), "the VPN is up");
    let log = w.daemon.log_text();
    assert!(!log.contains("none of  is known"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_ask_prompts_on_the_terminal_without_echo() {
    let w = World::new().await;
    needs_token(&w, "asked", "tbcli4").await;
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let script = tinynm_sandbox::require_tool("script", "bsdutils").unwrap();
    // `script` gives tinynm a terminal of its own; what we write is typed on it.
    let cmdline = format!(
        "{} --bus-address '{}' connection up asked --ask",
        bin.display(),
        w.bus.address
    );
    let (out, ok) = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut child = std::process::Command::new(script)
            .args(["-qec", &cmdline, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        // Read what the terminal shows; type the secret once the prompt is there, as a user
        // would (the reader thread ends with the program).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut shown = Vec::new();
        let deadline = std::time::Instant::now() + common::LIMIT;
        let mut typed = false;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => shown.extend(b),
                Err(_) => break,
            }
            if !typed && String::from_utf8_lossy(&shown).contains("(vpn.secrets.token): ") {
                stdin.write_all(b"t0k3n\n").unwrap();
                typed = true;
            }
        }
        drop(stdin);
        let ok = child.wait().unwrap().success();
        (String::from_utf8_lossy(&shown).into_owned(), ok)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert!(
        out.contains("Secret for 'asked' (vpn.secrets.token):"),
        "{out}"
    );
    assert!(!out.contains("t0k3n"), "the secret was echoed: {out}");
    assert!(w.kernel().link("tbcli4").is_some(), "the VPN is up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_never_answers_is_a_clear_error_not_a_hang() {
    let w = World::new().await;
    let pid = nix::unistd::Pid::from_raw(w.daemon.pid() as i32);
    // tinynmd stopped: the bus takes the call and nobody answers.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let mut child = std::process::Command::new(bin)
        .arg("--bus-address")
        .arg(&w.bus.address)
        .args(["--timeout", "1", "connection", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a tinynm that hangs is killed and the test fails.
    let mut ended = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            ended = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let Some(status) = ended else {
        tinynm_sandbox::terminate(&mut child);
        panic!("tinynm connection list still waits for a daemon that does not answer");
    };
    let o = child.wait_with_output().unwrap();
    assert!(!status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("no answer within 1 s (is tinynmd running and answering on this bus?"),
        "{err}"
    );
}

/// `tinynm wait-online` (NM's `nm-online`): 0 once connected (with `--vpn`, once a VPN is up),
/// 1 when the time runs out first, 2 when there is no bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_online_exits_as_nm_online_does() {
    let w = World::new().await;
    // The parent link is up with a default route: connected at once.
    let o = tinynm(&w, &["wait-online", "--timeout", "10"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // --json says so on stdout.
    let o = tinynm(&w, &["wait-online", "--timeout", "10", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["online"], true);
    assert_eq!(v["vpn"], false);
    let o = tinynm(&w, &["wait-online", "--vpn", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr).trim(),
        "Error: not online within 1 s (no VPN up)"
    );
    // A VPN coming up ends the wait.
    let p = w.add("online", &[("tundev", "tbonline")]).await;
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let addr = w.bus.address.clone();
    let waiting = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args([
                "--bus-address",
                &addr,
                "wait-online",
                "--vpn",
                "--timeout",
                "20",
            ])
            .output()
            .unwrap()
    });
    w.activate(&p).await.unwrap();
    let o = waiting.await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // No bus at all: an error of its own.
    let o = std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap())
        .args([
            "--bus-address",
            "unix:path=/nonexistent/tinynm-test-socket",
            "wait-online",
            "--timeout",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cannot connect to the bus"),
        "{}",
        text(&o.stderr)
    );
}
