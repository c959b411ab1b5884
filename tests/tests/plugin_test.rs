//! `tinynm plugin-test` against the test-bench plugin: clean, it passes every check; each
//! fault it is scripted with is reported by the check that owns it, with the evidence.

use std::process::Output;

fn name_file(dir: &std::path::Path, service: &str) -> std::path::PathBuf {
    let program = tinynm_sandbox::binary("tinynm-testbench").unwrap();
    let f = dir.join(format!("{service}.name"));
    std::fs::write(
        &f,
        format!(
            "[VPN Connection]\nname=testbench\nservice={service}\nprogram={}\nsupports-multiple-connections=true\n",
            program.display()
        ),
    )
    .unwrap();
    f
}

fn plugin_test(args: &[&str]) -> Output {
    tinynm_sandbox::require_root("plugin-test").unwrap();
    std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap())
        .arg("plugin-test")
        .args(args)
        .output()
        .unwrap()
}

/// The report's checks as (id, status, detail).
fn checks(o: &Output) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status<'a>(c: &'a [(String, String, String)], id: &str) -> (&'a str, &'a str) {
    let x = c
        .iter()
        .find(|x| x.0 == id)
        .unwrap_or_else(|| panic!("no check {id}: {c:?}"));
    (x.1.as_str(), x.2.as_str())
}

const SERVICE: &str = "org.freedesktop.NetworkManager.testbench";

#[test]
fn a_clean_plugin_passes_every_check() {
    let tmp = tempfile::tempdir().unwrap();
    let f = name_file(tmp.path(), SERVICE);
    let o = plugin_test(&[
        f.to_str().unwrap(),
        "--data",
        "tundev=tbptc0",
        "--data",
        "require-secret=password",
        "--data",
        "second-factor=424242",
        "--secret",
        "password=s3cret",
        "--secret",
        "otp=424242",
        "--json",
        "--trace",
        tmp.path().join("trace.jsonl").to_str().unwrap(),
    ]);
    let c = checks(&o);
    assert_eq!(o.status.code(), Some(0), "{c:?}");
    // The trace: every message, one JSON object a line; the secret never in it.
    let trace = std::fs::read_to_string(tmp.path().join("trace.jsonl")).unwrap();
    let msgs: Vec<serde_json::Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let member = |kind: &str, m: &str| {
        msgs.iter()
            .filter(|x| x["type"] == kind && x["member"] == m)
            .collect::<Vec<_>>()
    };
    let connect = member("call", "Connect");
    // The main scenario's, the two peer-watch instances', the two Disconnect-early ones'.
    assert_eq!(connect.len(), 5, "{trace}");
    assert_eq!(
        connect[0]["args"][0]["vpn"]["secrets"]["password"], "<redacted>",
        "{trace}"
    );
    assert!(!trace.contains("s3cret"), "{trace}");
    let states: Vec<u64> = member("signal", "StateChanged")
        .iter()
        .filter_map(|x| x["args"][0].as_u64())
        .collect();
    assert_eq!(states[..5], [1, 3, 4, 5, 6], "{states:?}");
    // The interactive path: SecretsRequired answered by NewSecrets.
    // The bench's, and tinynmd's for `applied` (it tries the interactive way first, as NM).
    assert_eq!(member("call", "ConnectInteractive").len(), 2, "{trace}");
    assert_eq!(
        member("signal", "SecretsRequired")[0]["args"][1],
        serde_json::json!(["otp"]),
        "{trace}"
    );
    assert_eq!(member("call", "NewSecrets").len(), 2, "{trace}");
    // The main scenario, the two early ones, the interactive one, tinynmd's.
    assert_eq!(member("call", "Disconnect").len(), 5, "{trace}");
    let ids: Vec<&str> = c.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        ids,
        [
            "name-claim",
            "need-secrets",
            "connect",
            "config-order",
            "config-valid",
            "ip4config-valid",
            "ip6config-valid",
            "failure-reason",
            "disconnect",
            "sigterm",
            "peer-watch",
            "disconnect-starting",
            "disconnect-configured",
            "interactive",
            "applied",
            "no-leftovers",
        ]
    );
    for (id, st, detail) in &c {
        let want = if id == "ip6config-valid" || id == "failure-reason" {
            "skip"
        } else {
            "pass"
        };
        assert_eq!(st, want, "{id}: {detail}");
    }
    assert!(
        status(&c, "config-valid").1.contains("tundev tbptc0"),
        "{c:?}"
    );
    assert!(
        status(&c, "interactive").1.starts_with(
            "SecretsRequired('Enter the one-time code', [\"otp\"]) answered by NewSecrets 1000 ms later: STARTED in "
        ),
        "{c:?}"
    );
}

#[test]
fn each_fault_is_reported_by_its_check() {
    let tmp = tempfile::tempdir().unwrap();
    let f = name_file(tmp.path(), SERVICE);
    let f = f.to_str().unwrap();
    // The JUnit form of a failing run: the check's evidence as the failure's message.
    let xml = tmp.path().join("report.xml");
    let o = plugin_test(&[
        f,
        "--data",
        "malformed=prefix33",
        "--junit",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let x = std::fs::read_to_string(&xml).unwrap();
    assert!(
        x.contains("tests=\"16\" failures=\"1\" skipped=\"3\"")
            && x.contains(
                "name=\"ip4config-valid\"><failure message=\"Ip4Config: prefix: 33 is out of range (expected 1 to 32)\"/>"
            ),
        "{x}"
    );
    // A failure the plugin reports, with one of NM's reasons.
    let o = plugin_test(&[
        f,
        "--data",
        "failure-at=config",
        "--data",
        "failure=login",
        "--json",
    ]);
    let c = checks(&o);
    assert_eq!(
        status(&c, "failure-reason"),
        ("pass", "Failure(0), one of NM's")
    );
    assert_eq!(status(&c, "connect").0, "fail", "{c:?}");
    assert!(status(&c, "connect").1.ends_with("; Failure(0)"), "{c:?}");
    // A plugin that never claims its name (the test bench's `-silent` service).
    let silent = name_file(tmp.path(), &format!("{SERVICE}-silent"));
    let o = plugin_test(&[silent.to_str().unwrap(), "--json"]);
    let c = checks(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        status(&c, "name-claim"),
        (
            "fail",
            "org.freedesktop.NetworkManager.testbench-silent.Connection_1 not claimed within 5 s"
        )
    );
    // A missing secret: the plugin asks for the setting, and says so.
    let o = plugin_test(&[
        f,
        "--data",
        "require-secret=password",
        "--secret",
        "other=x",
        "--json",
    ]);
    let c = checks(&o);
    assert_eq!(
        status(&c, "need-secrets"),
        (
            "fail",
            "asks for setting 'vpn' although every secret was given"
        ),
        "{c:?}"
    );
}

#[test]
fn bad_arguments_are_named_and_nothing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let f = name_file(tmp.path(), SERVICE);
    let o = plugin_test(&[f.to_str().unwrap(), "--data", "novalue"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "Error: --data 'novalue': expected KEY=VALUE"
    );
    let o = plugin_test(&["org.example.nosuch"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .starts_with("Error: no VPN plugin 'org.example.nosuch' in "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Small plugins of the test's own in dbus-python, as authors write them, each with one
/// protocol fault: each is caught by the check that owns it, and by that check only.
#[test]
fn deliberately_broken_plugins_are_each_caught_by_their_check() {
    tinynm_sandbox::require_root("plugin-test").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let program = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/broken_plugin.py");
    let keep = "STOPPED, but the name still owned 5 s";
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("clean", &[]),
        (
            "keep-name",
            &[
                ("disconnect", keep),
                (
                    "disconnect-starting",
                    "Disconnect right after Connect returned: ",
                ),
                ("disconnect-configured", "Disconnect after Config: "),
            ],
        ),
        (
            "ignore-peer",
            &[
                (
                    "peer-watch",
                    "the caller of Connect left the bus once STARTED; the plugin kept its name for 5 s; \
                     the caller of Connect left the bus mid-connect; the plugin kept its name for 5 s",
                ),
                // Still there when SIGTERM came, it died without removing its tun.
                (
                    "no-leftovers",
                    "left behind after peer-watch (once STARTED), ended by SIGTERM: link brk2",
                ),
            ],
        ),
        (
            "leave-tun",
            &[(
                "no-leftovers",
                "left behind after the main scenario: link brk1; after peer-watch",
            )],
        ),
        (
            "ip4-first",
            &[("config-order", "Ip4Config came before Config")],
        ),
        // The kernel holds a route tinynmd was never told of.
        ("own-route", &[("applied", "route 10.66.")]),
    ];
    // The runs at once: each world is its own.
    let runs: Vec<_> = cases
        .iter()
        .map(|(fault, _)| {
            let f = tmp.path().join(format!("{fault}.name"));
            std::fs::write(
                &f,
                format!(
                    "[VPN Connection]\nname=broken-{fault}\nservice=org.tinynm.broken.{fault}\nprogram={}\nsupports-multiple-connections=true\n",
                    program.display()
                ),
            )
            .unwrap();
            std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap())
                .args(["plugin-test", f.to_str().unwrap(), "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ((fault, want), run) in cases.iter().zip(runs) {
        let o = run.wait_with_output().unwrap();
        let c = checks(&o);
        let failed: Vec<(&str, &str)> = c
            .iter()
            .filter(|x| x.1 == "fail")
            .map(|x| (x.0.as_str(), x.2.as_str()))
            .collect();
        assert_eq!(
            o.status.code(),
            Some(if want.is_empty() { 0 } else { 1 }),
            "{fault}: {c:?}"
        );
        assert_eq!(failed.len(), want.len(), "{fault}: {c:?}");
        for ((id, detail), (want_id, prefix)) in failed.iter().zip(want.iter()) {
            assert_eq!(id, want_id, "{fault}: {c:?}");
            assert!(detail.starts_with(prefix), "{fault}: {detail}");
        }
    }
    // NM's timers scaled down: the same fault, found in a fifth of the time.
    let o = plugin_test(&[
        tmp.path().join("keep-name.name").to_str().unwrap(),
        "--timeouts",
        "fast",
        "--json",
    ]);
    assert_eq!(
        status(&checks(&o), "disconnect"),
        ("fail", "STOPPED, but the name still owned 1 s later")
    );
}

/// Both OpenVPN plugins, Debian's unmodified nm-openvpn-service and tinynm-openvpn, against a
/// real openvpn server that `--server` runs in the world's second namespace: every check that
/// applies passes.
#[test]
fn openvpn_plugins_pass_against_a_real_server() {
    use tinynm_sandbox::openvpn::{Auth, Pki, Server, name_file as openvpn_name};
    tinynm_sandbox::require_root("plugin-test").unwrap();
    tinynm_sandbox::require_tool("openvpn", "openvpn").unwrap();
    let debian = std::path::Path::new("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name");
    assert!(
        debian.exists(),
        "Debian's plugin is missing: apt-get install -y network-manager-openvpn"
    );
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let conf = Server::config(&pki, Auth::PasswordTls).unwrap();
    let ours = tmp.path().join("tinynm-openvpn.name");
    std::fs::write(
        &ours,
        openvpn_name(&tinynm_sandbox::binary("tinynm-openvpn").unwrap()),
    )
    .unwrap();
    let (data, secrets) = Auth::PasswordTls.client_data(&pki);
    let mut args: Vec<String> = Vec::new();
    for (k, v) in &data {
        args.extend(["--data".into(), format!("{k}={v}")]);
    }
    for (k, v) in &secrets {
        args.extend(["--secret".into(), format!("{k}={v}")]);
    }
    args.extend([
        "--server".into(),
        format!("exec openvpn --config {}", conf.display()),
        "--server-ready".into(),
        "Initialization Sequence Completed".into(),
        "--json".into(),
    ]);
    let runs: Vec<_> = [debian.to_path_buf(), ours]
        .iter()
        .map(|f| {
            std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap())
                .arg("plugin-test")
                .arg(f)
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (who, run) in ["nm-openvpn-service", "tinynm-openvpn"].iter().zip(runs) {
        let o = run.wait_with_output().unwrap();
        let c = checks(&o);
        assert_eq!(o.status.code(), Some(0), "{who}: {c:?}");
        let passed: Vec<&str> = c
            .iter()
            .filter(|x| x.1 == "pass")
            .map(|x| x.0.as_str())
            .collect();
        let mut want = vec![
            "name-claim",
            "need-secrets",
            "connect",
            "config-order",
            "config-valid",
            "ip4config-valid",
            "disconnect",
            "sigterm",
            "peer-watch",
            "disconnect-starting",
            "disconnect-configured",
            "applied",
            "no-leftovers",
        ];
        // nm-openvpn-service connects interactively too; tinynm-openvpn says it does not.
        if *who == "nm-openvpn-service" {
            want.insert(11, "interactive");
        }
        assert_eq!(passed, want, "{who}: {c:?}");
    }
    // A wrong password (LOGIN_FAILED from both): the repository's OpenVPN suite.
}

/// `--profile` (a TOML profile, `--data` adding to it), `--ipv6`, and `--keep`: the world stays
/// up with a tinynmd holding the profile, and the real `nmcli` brings it up there.
#[test]
fn a_profile_file_and_a_kept_world_that_nmcli_drives() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let f = name_file(tmp.path(), SERVICE);
    let toml = tmp.path().join("p.toml");
    std::fs::write(
        &toml,
        format!(
            "[connection]\nid = \"mine\"\ntype = \"vpn\"\nuuid = \"0e6e9c3a-2c2e-4d0e-9a61-3f1f9b7c0a11\"\n\n\
             [vpn]\nservice-type = \"{SERVICE}\"\ndata = {{ routes = \"10.55.0.0/16\" }}\n"
        ),
    )
    .unwrap();
    let o = plugin_test(&[
        f.to_str().unwrap(),
        "--profile",
        toml.to_str().unwrap(),
        "--data",
        "tundev=tbprof0",
        "--json",
    ]);
    let c = checks(&o);
    assert_eq!(o.status.code(), Some(0), "{c:?}");
    assert_eq!(
        status(&c, "ip4config-valid"),
        ("pass", "address 10.8.0.2/32, 1 route(s), 0 name server(s)")
    );
    assert!(
        status(&c, "applied")
            .1
            .starts_with("tinynmd applied 10.8.0.2/32 on tbprof0 with 1 route(s)"),
        "{c:?}"
    );
    // --ipv6: a plugin that brings none fails the check that says so.
    let o = plugin_test(&[
        f.to_str().unwrap(),
        "--profile",
        toml.to_str().unwrap(),
        "--ipv6",
        "--json",
    ]);
    assert_eq!(
        status(&checks(&o), "ip6config-valid"),
        ("fail", "no Ip6Config, and --ipv6 asks for one")
    );
    // A profile of another service type: named, nothing runs.
    let other = tmp.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&toml)
            .unwrap()
            .replace(SERVICE, "org.example.other"),
    )
    .unwrap();
    let o = plugin_test(&[f.to_str().unwrap(), "--profile", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        format!(
            "Error: --profile {}: its vpn.service-type is 'org.example.other', not this plugin's '{SERVICE}'",
            other.display()
        )
    );
    // --keep, driven by nmcli.
    let mut kept = std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap())
        .args([
            "plugin-test",
            f.to_str().unwrap(),
            "--data",
            "tundev=tbkeep9",
        ])
        .args(["--timeouts", "fast", "--keep"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(kept.stderr.take().unwrap());
    let mut address = None;
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if let Some(a) = line
            .trim()
            .strip_prefix("bus:       DBUS_SYSTEM_BUS_ADDRESS=")
        {
            address = Some(a.to_string());
            break;
        }
        line.clear();
    }
    let address = address.expect("plugin-test --keep printed the bus");
    let nmcli = |args: &[&str]| {
        std::process::Command::new("nmcli")
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .output()
            .expect("nmcli (apt-get install -y network-manager)")
    };
    let up = nmcli(&["connection", "up", "plugin-test"]);
    assert!(
        String::from_utf8_lossy(&up.stdout).starts_with("Connection successfully activated"),
        "{up:?}"
    );
    let active = nmcli(&[
        "-t",
        "-f",
        "NAME,TYPE,STATE",
        "connection",
        "show",
        "--active",
    ]);
    assert!(
        String::from_utf8_lossy(&active.stdout).contains("plugin-test:vpn:activated"),
        "{active:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(kept.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(kept.wait().unwrap().code(), Some(0));
}

fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// The test bench's own suite (`--scenarios`) passes; a scenario whose expectation the plugin
/// does not meet fails with the reason; a suite file with a mistake is named and nothing runs.
#[test]
fn scenario_suites_judge_each_scenario_by_what_it_expects() {
    let tmp = tempfile::tempdir().unwrap();
    let f = name_file(tmp.path(), SERVICE);
    let f = f.to_str().unwrap();
    let suite = repo_file("plugins/testbench/plugin-test.toml");
    let o = plugin_test(&[f, "--scenarios", suite.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(3), Some(0))
    );
    let login = &v["scenarios"][2];
    assert_eq!(login["name"], "a refused login is LOGIN_FAILED");
    let connect = login["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "connect")
        .unwrap();
    assert_eq!(connect["status"], "pass");
    assert!(
        connect["detail"]
            .as_str()
            .unwrap()
            .starts_with("failed, as the scenario expects: "),
        "{connect}"
    );
    // Expectations not met.
    let mine = tmp.path().join("mine.toml");
    std::fs::write(
        &mine,
        "[[scenario]]\nname = \"should connect\"\ndata = { failure-at = \"config\", failure = \"login\" }\ntimeouts = \"fast\"\n\n\
         [[scenario]]\nname = \"wrong reason\"\ndata = { failure-at = \"config\", failure = \"login\" }\ntimeouts = \"fast\"\n\
         expect = { outcome = \"failed\", reason = \"connect\" }\n\n\
         [[scenario]]\nname = \"should fail\"\ntimeouts = \"fast\"\nexpect = { outcome = \"failed\" }\n",
    )
    .unwrap();
    let o = plugin_test(&[f, "--scenarios", mine.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(v["failed"], 3, "{v:#}");
    let connect_of = |i: usize| {
        v["scenarios"][i]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "connect")
            .unwrap()
            .clone()
    };
    assert_eq!(connect_of(0)["status"], "fail");
    assert!(
        connect_of(1)["detail"]
            .as_str()
            .unwrap()
            .starts_with("failed with Failure(0), but the scenario expects Failure(1)"),
        "{v:#}"
    );
    assert!(
        connect_of(2)["detail"]
            .as_str()
            .unwrap()
            .starts_with("connected, but the scenario expects a failure"),
        "{v:#}"
    );
    // Mistakes in the file.
    for (text, error) in [
        (
            "[[scenario]]\nname = \"x\"\ndatta = {}\n",
            "unknown field `datta`",
        ),
        (
            "[[scenario]]\nname = \"x\"\ndata = { ca = \"${TINYNM_NO_SUCH_VAR}/ca.crt\" }\n",
            "${TINYNM_NO_SUCH_VAR} is used but not set in the environment",
        ),
        (
            "[[scenario]]\nname = \"x\"\nexpect = { skip = [\"peerwatch\"] }\n",
            "scenario 'x': expect.skip: 'peerwatch' is not a check",
        ),
        (
            "[[scenario]]\nname = \"x\"\nexpect = { reason = \"login\" }\n",
            "scenario 'x': expect.reason goes with outcome = \"failed\"",
        ),
    ] {
        std::fs::write(&mine, text).unwrap();
        let o = plugin_test(&[f, "--scenarios", mine.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(error), "{text}: {err}");
        assert!(o.stdout.is_empty(), "nothing ran: {text}");
    }
}

/// The OpenVPN plugins' suite in the repository, against Debian's nm-openvpn-service and
/// tinynm-openvpn alike, with a real openvpn server.
#[test]
fn the_openvpn_suite_passes_for_both_openvpn_plugins() {
    use tinynm_sandbox::openvpn::{Auth, Pki, Server, name_file as openvpn_name};
    tinynm_sandbox::require_root("plugin-test").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    Server::config(&pki, Auth::PasswordTls).unwrap();
    let ours = tmp.path().join("tinynm-openvpn.name");
    std::fs::write(
        &ours,
        openvpn_name(&tinynm_sandbox::binary("tinynm-openvpn").unwrap()),
    )
    .unwrap();
    let suite = repo_file("plugins/openvpn/plugin-test.toml");
    let runs: Vec<_> = [
        std::path::PathBuf::from("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name"),
        ours,
    ]
    .iter()
    .map(|f| {
        std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap())
            .arg("plugin-test")
            .arg(f)
            .args(["--scenarios", suite.to_str().unwrap(), "--json"])
            .env("PKI", tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    })
    .collect();
    for (who, run) in ["nm-openvpn-service", "tinynm-openvpn"].iter().zip(runs) {
        let o = run.wait_with_output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{who}: {e}: {}", String::from_utf8_lossy(&o.stderr)));
        assert_eq!(o.status.code(), Some(0), "{who}: {v:#}");
        assert_eq!(v["passed"], 2, "{who}: {v:#}");
    }
}

/// Debian's nm-openconnect-service against a real ocserv that `--server` runs, logged in
/// headlessly by `openconnect --authenticate` (`--secrets-command`): every applicable check
/// passes but `no-leftovers`, which reports the persistent tun it leaves after every
/// disconnect (under NM too); tinynmd removes it in `applied`.
#[test]
fn debian_openconnect_plugin_against_a_real_ocserv() {
    tinynm_sandbox::require_root("plugin-test").unwrap();
    let name = std::path::Path::new("/usr/lib/NetworkManager/VPN/nm-openconnect-service.name");
    assert!(
        name.exists(),
        "Debian's plugin is missing: apt-get install -y network-manager-openconnect ocserv"
    );
    let tmp = tempfile::tempdir().unwrap();
    let files = tinynm_sandbox::ocserv::prepare(tmp.path()).unwrap();
    let ca = format!("cacert={}", files.ca.display());
    let server = format!("exec ocserv -f -d 1 -c {}", files.conf.display());
    let login = tinynm_sandbox::ocserv::login_command(&files);
    let o = plugin_test(&[
        name.to_str().unwrap(),
        "--data",
        "gateway=10.99.0.1",
        "--data",
        "protocol=anyconnect",
        "--data",
        &ca,
        "--server",
        &server,
        "--server-ready",
        tinynm_sandbox::ocserv::READY,
        "--secrets-command",
        &login,
        // The network behind the server, reached only through the tunnel.
        "--ping",
        "10.200.0.1",
        "--json",
    ]);
    let c = checks(&o);
    assert_eq!(o.status.code(), Some(1), "{c:?}");
    let failed: Vec<(&str, &str)> = c
        .iter()
        .filter(|x| x.1 == "fail")
        .map(|x| (x.0.as_str(), x.2.as_str()))
        .collect();
    // Its persistent tun, after the main scenario's Disconnect (and perhaps after others').
    assert_eq!(failed.len(), 1, "{c:?}");
    assert_eq!(failed[0].0, "no-leftovers", "{c:?}");
    assert!(
        failed[0]
            .1
            .starts_with("left behind after the main scenario: link vpn0"),
        "{c:?}"
    );
    for id in [
        "name-claim",
        "need-secrets",
        "connect",
        "config-order",
        "config-valid",
        "ip4config-valid",
        "disconnect",
        "sigterm",
        "peer-watch",
        "disconnect-starting",
        "disconnect-configured",
    ] {
        assert_eq!(status(&c, id).0, "pass", "{id}: {c:?}");
    }
    // ocserv's pool, its pushed route and DNS server.
    assert_eq!(
        status(&c, "ip4config-valid").1,
        "address 10.96.0.50/24, 1 route(s), 1 name server(s)"
    );
    assert_eq!(
        status(&c, "interactive"),
        (
            "skip",
            "ConnectInteractive answered InteractiveNotSupported (NM falls back to Connect)"
        )
    );
    // Under tinynmd, the tun it leaves is removed: nothing of the VPN stays.
    assert!(
        status(&c, "applied").1
            == "tinynmd applied 10.96.0.50/24 on vpn0 with 1 route(s); 10.200.0.1 answered a ping; the kernel held exactly the configs, and none of it once down",
        "{c:?}"
    );
}

/// The test bench in every fault mode it has: each is reported by the check that owns it, and
/// by that check only; what NM accepts (duplicate routes, no tundev) passes.
#[test]
fn every_test_bench_fault_is_reported_by_its_check() {
    tinynm_sandbox::require_root("plugin-test").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let f = name_file(tmp.path(), SERVICE);
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["malformed=wrong-type"],
            "ip4config-valid",
            "Ip4Config: address: expected D-Bus type 'u', got 's'",
        ),
        (
            &["malformed=prefix33"],
            "ip4config-valid",
            "Ip4Config: prefix: 33 is out of range (expected 1 to 32)",
        ),
        (
            &["malformed=zero-address"],
            "ip4config-valid",
            "Ip4Config: address: 0.0.0.0 is not a usable address",
        ),
        (
            &["malformed=no-gateway"],
            "config-valid",
            "gateway: missing (NM fails the VPN: IP_CONFIG_INVALID)",
        ),
        (
            &["malformed=bad-tundev"],
            "config-valid",
            "tundev: 'tbnosuch0' is not a link in the namespace",
        ),
        (&["malformed=dup-routes", "routes=10.55.0.0/16"], "", ""),
        (&["malformed=no-tundev"], "", ""),
        (
            &["claim-tundev=lo"],
            "applied",
            "tinynmd's VPN state 6 (reason 5) instead of ACTIVATED",
        ),
        (
            &["exit-at=need-secrets"],
            "need-secrets",
            "NeedSecrets failed: org.freedesktop.DBus.Error.NoReply",
        ),
        (
            &["exit-at=connect"],
            "connect",
            "Connect failed: org.freedesktop.DBus.Error.NoReply",
        ),
        (
            &["exit-at=config"],
            "connect",
            "states [3] before the plugin left the bus (expected 3 then 4); the plugin's last lines: ",
        ),
        (
            &["exit-at=ip4"],
            "connect",
            "states [3] before the plugin left the bus (expected 3 then 4)",
        ),
        (
            &["exit-at=activated"],
            "connect",
            "STARTED, then the plugin left the bus before Disconnect (NM: the VPN fails, SERVICE_STOPPED)",
        ),
        (
            &["failure-at=connect"],
            "connect",
            "Connect failed: org.freedesktop.NetworkManager.VPN.Error.LaunchFailed: scripted failure at connect",
        ),
    ];
    let runs: Vec<_> = cases
        .iter()
        .map(|(data, _, _)| {
            let mut cmd = std::process::Command::new(tinynm_sandbox::binary("tinynm").unwrap());
            cmd.args(["plugin-test", f.to_str().unwrap(), "--json"]);
            for d in *data {
                cmd.args(["--data", d]);
            }
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ((data, id, evidence), run) in cases.iter().zip(runs) {
        let o = run.wait_with_output().unwrap();
        let c = checks(&o);
        let failed: Vec<(&str, &str)> = c
            .iter()
            .filter(|x| x.1 == "fail")
            .map(|x| (x.0.as_str(), x.2.as_str()))
            .collect();
        if id.is_empty() {
            assert_eq!(o.status.code(), Some(0), "{data:?}: {c:?}");
            continue;
        }
        assert_eq!(o.status.code(), Some(1), "{data:?}: {c:?}");
        assert_eq!(failed.len(), 1, "{data:?}: only its own check fails: {c:?}");
        assert_eq!(failed[0].0, *id, "{data:?}: {c:?}");
        assert!(failed[0].1.starts_with(evidence), "{data:?}: {c:?}");
    }
}
