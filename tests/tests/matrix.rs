//! The fault matrix: every way a plugin, the kernel, tinynmd itself or its saved state can go
//! wrong, each ending in NM's state and reason, with the kernel (links, addresses, routes,
//! rules), resolv.conf and the state directory exactly as before. One world per family of
//! faults; each scenario checks the world is as it was before the next one starts.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{AgentMode, TESTBENCH, TestAgent, World, profile};
use tinynm_sandbox::{DaemonOptions, Kernel};

const ORIGINAL: &str = "# the system's own\nnameserver 192.0.2.53\noptions edns0\n";
const CRASHER: &str = "org.freedesktop.NetworkManager.testbench-crash";
const SILENT: &str = "org.freedesktop.NetworkManager.testbench-silent";

struct Files {
    _tmp: tempfile::TempDir,
    resolv: PathBuf,
}

async fn world(extra: &str) -> (World, Files) {
    let tmp = tempfile::tempdir().unwrap();
    let resolv = tmp.path().join("resolv.conf");
    std::fs::write(&resolv, ORIGINAL).unwrap();
    let w = World::with(DaemonOptions {
        config: format!(
            "[dns]\nbackend = \"file\"\nresolv-conf = \"{}\"\n[timeouts]\nservice-start = 1.0\nplugin-call = 1.0\n{extra}",
            resolv.display()
        ),
        ..Default::default()
    })
    .await;
    (w, Files { _tmp: tmp, resolv })
}

/// The kernel, resolv.conf and the state directory are as they were.
fn settled(w: &World, base: &Kernel, f: &Files, case: &str) {
    w.assert_clean(base);
    assert_eq!(
        std::fs::read_to_string(&f.resolv).unwrap(),
        ORIGINAL,
        "{case}: resolv.conf as it was"
    );
    let state = w.daemon.dir().join("state");
    let mut left: Vec<String> = std::fs::read_dir(&state)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    left.retain(|n| n != "run" && !n.ends_with(".damaged"));
    assert!(
        left.is_empty(),
        "{case}: left in the state directory: {left:?}"
    );
    let run: Vec<_> = std::fs::read_dir(state.join("run"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(run.is_empty(), "{case}: left in state/run: {run:?}");
}

/// The data every scenario's VPN has on top of its fault: DNS (so resolv.conf changes) and a
/// route (so the kernel does).
fn with_common<'a>(data: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut d = vec![
        ("dns", "10.8.0.53"),
        ("routes", "10.50.0.0/16"),
        ("never-default", "true"),
    ];
    d.extend_from_slice(data);
    d
}

struct Case {
    name: &'static str,
    service: &'static str,
    data: Vec<(&'static str, &'static str)>,
    timeout: u32,
    /// Deactivated by the user once ACTIVATED.
    deactivate: bool,
    /// The plugin SIGKILLed once ACTIVATED.
    kill_when_up: bool,
    want: (u32, u32),
}

fn case(name: &'static str, data: &[(&'static str, &'static str)], want: (u32, u32)) -> Case {
    Case {
        name,
        service: TESTBENCH,
        data: with_common(data),
        timeout: 0,
        deactivate: false,
        kill_when_up: false,
        want,
    }
}

async fn run(w: &mut World, f: &Files, c: &Case) {
    let base = w.kernel();
    let mut p = profile(c.name, c.service, &c.data);
    p.vpn.timeout = c.timeout;
    let path = w.add_profile(p).await;
    let ac = w.activate(&path).await.unwrap();
    if c.deactivate || c.kill_when_up {
        assert_eq!(
            w.wait_vpn(ac.as_str(), &[5, 6, 7]).await,
            (5, 1),
            "{}",
            c.name
        );
    }
    if c.deactivate {
        w.manager().await.deactivate_connection(&ac).await.unwrap();
    }
    if c.kill_when_up {
        let pids = common::children_named(w.daemon.pid(), "tinynm-testbenc");
        assert_eq!(pids.len(), 1, "{}: one plugin runs: {pids:?}", c.name);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pids[0] as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    let end = w.wait_vpn(ac.as_str(), &[6, 7]).await;
    if end != c.want {
        let log = w.daemon.log_text();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        panic!(
            "{}: (VpnState, reason) {end:?}, expected {:?}\n{}",
            c.name,
            c.want,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    w.wait_removed(ac.as_str()).await;
    settled(w, &base, f, c.name);
}

/// The plugin crashing, hanging or misbehaving at every stage, and the kernel refusing a route
/// partway through a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_and_kernel_faults() {
    let (mut w, f) = world("").await;
    let mut cases = vec![
        Case {
            service: SILENT,
            ..case("never claims its name", &[], (7, 7))
        },
        Case {
            service: CRASHER,
            ..case("dies before its name", &[], (7, 8))
        },
    ];
    for (name, at) in [
        ("dies in NeedSecrets", "need-secrets"),
        ("dies before Connect returns", "connect"),
        ("dies before Config", "config"),
        ("dies between Config and Ip4Config", "ip4"),
    ] {
        cases.push(case(name, &[("tundev", "tbmx0"), ("exit-at", at)], (7, 4)));
    }
    cases.push(case(
        "dies between Config and Ip4Config, no tun",
        &[
            ("malformed", "no-tundev"),
            ("address", "10.8.9.7"),
            ("exit-at", "ip4"),
        ],
        (7, 4),
    ));
    for (name, data) in [
        ("killed after ACTIVATED", &[("tundev", "tbmx8")][..]),
        (
            "killed after ACTIVATED, config on the parent",
            &[("malformed", "no-tundev"), ("address", "10.8.9.7")][..],
        ),
    ] {
        cases.push(Case {
            kill_when_up: true,
            ..case(name, data, (7, 4))
        });
    }
    cases.extend([
        Case {
            timeout: 1,
            ..case(
                "hangs before Config",
                &[("tundev", "tbmx1"), ("delay-config", "5000")],
                (6, 6),
            )
        },
        Case {
            timeout: 1,
            ..case(
                "hangs between Config and Ip4Config",
                &[("tundev", "tbmx2"), ("delay-ip4", "5000")],
                (6, 6),
            )
        },
        case(
            "Connect never returns",
            &[("tundev", "tbmx3"), ("delay-connect", "5000")],
            (6, 8),
        ),
        case(
            "Failure LOGIN_FAILED",
            &[("failure-at", "config"), ("failure", "login")],
            (6, 10),
        ),
        case(
            "Failure CONNECT_FAILED",
            &[("failure-at", "config"), ("failure", "connect")],
            (6, 0),
        ),
        case(
            "Failure BAD_IP_CONFIG",
            &[("failure-at", "config"), ("failure", "bad-ip")],
            (6, 5),
        ),
        case("Connect refused", &[("failure-at", "connect")], (6, 8)),
        case(
            "a secret it needs, no agent",
            &[("require-secret", "password")],
            (6, 9),
        ),
    ]);
    for (name, m) in [
        ("Ip4Config of wrong types", "wrong-type"),
        ("prefix out of range", "prefix33"),
        ("address 0.0.0.0", "zero-address"),
        ("no gateway", "no-gateway"),
        ("a tundev that does not exist", "bad-tundev"),
    ] {
        cases.push(case(name, &[("malformed", m)], (6, 5)));
    }
    for (name, dev) in [
        ("names the uplink as its tundev", "veth0"),
        ("names loopback as its tundev", "lo"),
    ] {
        cases.push(case(name, &[("claim-tundev", dev)], (6, 5)));
    }
    cases.extend([
        case(
            "the kernel refuses a route partway through a batch",
            &[
                ("tundev", "tbmx4"),
                ("route-count", "600"),
                ("routes", "10.51.0.0/16,10.70.0.0/16 via 192.0.2.77"),
            ],
            (6, 5),
        ),
        Case {
            deactivate: true,
            ..case(
                "hangs in Disconnect",
                &[("tundev", "tbmx5"), ("delay-disconnect", "60000")],
                (7, 2),
            )
        },
        Case {
            deactivate: true,
            ..case(
                "dies in Disconnect",
                &[("tundev", "tbmx6"), ("exit-at", "disconnect")],
                (7, 2),
            )
        },
    ]);
    for c in &cases {
        run(&mut w, &f, c).await;
    }
    // An agent that leaves the bus in the middle of a request.
    let agent = TestAgent::register(&w, &[], AgentMode::Vanish).await;
    run(
        &mut w,
        &f,
        &case(
            "the agent leaves mid-request",
            &[
                ("tundev", "tbmx7"),
                ("require-secret", "token"),
                ("token-flags", "1"),
            ],
            (6, 9),
        ),
    )
    .await;
    drop(agent);
    eprintln!("plugin and kernel faults: {} scenarios", cases.len() + 1);
}

/// The bus goes away under a connected VPN: tinynmd takes it down as at SIGTERM and ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_going_away() {
    let (mut w, f) = world("").await;
    let base = w.kernel();
    let p = w
        .add_profile(profile(
            "bus-goes",
            TESTBENCH,
            &with_common(&[("tundev", "tbbus")]),
        ))
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let resolv = f.resolv.clone();
    w.until("the VPN's DNS in resolv.conf", || {
        let r = resolv.clone();
        async move {
            std::fs::read_to_string(&r)
                .ok()
                .filter(|t| t.contains("nameserver 10.8.0.53"))
        }
    })
    .await;
    w.bus.kill();
    assert!(
        w.daemon.wait_exit(Duration::from_secs(20)).await,
        "tinynmd ends when its bus does"
    );
    let log = w.daemon.log_text();
    assert!(
        log.contains("the bus connection closed: taking every VPN down"),
        "{log}"
    );
    settled(&w, &base, &f, "the bus going away");
}

/// tinynmd SIGKILLed at every stage of an activation and a removal, with and without a tun
/// device: the next start leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinynmd_killed_at_every_stage() {
    let (mut w, f) = world("").await;
    let mut n = 0;
    for tun in [true, false] {
        for point in [
            "phase-NEED_AUTH:1",
            "phase-CONNECT:1",
            "phase-IP_CONFIG_GET:1",
            "apply-window:2",
            "phase-ACTIVATED:1",
            "dns-applied:1",
            "remove-batch:1",
        ] {
            let name = format!(
                "killed at {point} {}",
                if tun { "(tun)" } else { "(parent)" }
            );
            let base = w.kernel();
            w.daemon.set_env("TINYNMD_CRASH_AT", Some(point));
            w.daemon.restart(&w.ns, &w.bus).await.unwrap();
            w.forget_signals();
            let data: Vec<(&str, &str)> = if tun {
                with_common(&[("tundev", "tbkill"), ("route-count", "300")])
            } else {
                with_common(&[
                    ("malformed", "no-tundev"),
                    ("address", "10.8.9.8"),
                    ("route-count", "300"),
                ])
            };
            let p = w.add_profile(profile(&name, TESTBENCH, &data)).await;
            if let Ok(ac) = w.activate(&p).await
                && point.starts_with("remove")
            {
                assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1), "{name}");
                let _ = w.manager().await.deactivate_connection(&ac).await;
            }
            assert!(
                w.daemon.wait_exit(Duration::from_secs(20)).await,
                "{name}: tinynmd did not reach its crash point\n{}",
                w.daemon.log_text()
            );
            w.daemon.set_env("TINYNMD_CRASH_AT", None);
            w.daemon.restart(&w.ns, &w.bus).await.unwrap();
            assert!(
                w.vpn_actives().await.is_empty(),
                "{name}: no connection after restart"
            );
            settled(&w, &base, &f, &name);
            n += 1;
        }
    }
    eprintln!("tinynmd killed: {n} scenarios");
}

/// Restarts over damaged journals and backups: what is damaged is reported, what can be undone
/// is, and nothing is written from a damaged backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_over_damaged_state() {
    let (mut w, f) = world("").await;
    let state = w.daemon.dir().join("state");
    let base = w.kernel();
    // 1. A torn journal: what it still names is removed, the damage is reported.
    let p = w
        .add_profile(profile(
            "torn",
            TESTBENCH,
            &with_common(&[("malformed", "no-tundev"), ("address", "10.8.9.9")]),
        ))
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    w.daemon.crash();
    let n = ac.as_str().rsplit('/').next().unwrap().to_string();
    let journal = state.join(format!("ac-{n}.journal"));
    // As a crash in the middle of writing ahead leaves it: a record cut short, for an object
    // never sent (it is written before it is sent).
    let mut bytes = std::fs::read(&journal).unwrap();
    let first = u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize;
    let torn = bytes[..first - 9].to_vec();
    bytes.extend(torn);
    std::fs::write(&journal, &bytes).unwrap();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert!(w.daemon.log_text().contains("damaged journal: bytes"));
    settled(&w, &base, &f, "torn journal");
    // 2. A journal of garbage: reported, nothing removed that it does not name.
    std::fs::write(state.join("ac-77.journal"), vec![0xa5u8; 64]).unwrap();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert!(
        w.daemon
            .log_text()
            .contains("ac-77.journal: damaged journal: bytes 0 to 64 of 64 are not a whole record"),
        "{}",
        w.daemon.log_text()
    );
    settled(&w, &base, &f, "garbage journal");
    // 3. An empty resolv.conf backup: nothing written from it, set aside.
    let backup = state.join("resolv.conf.orig");
    std::fs::write(&backup, b"").unwrap();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert!(
        w.daemon
            .log_text()
            .contains("damaged backup of a resolv.conf: it is empty")
    );
    assert!(state.join("resolv.conf.orig.damaged").exists());
    settled(&w, &base, &f, "empty backup");
    // 4. A backup with a damaged header.
    std::fs::write(
        &backup,
        b"tinynm resolv.conf backup 1\npath /x\nmaybe\n\nnameserver 1.1.1.1\n",
    )
    .unwrap();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert!(w.daemon.log_text().contains("its header is damaged"));
    settled(&w, &base, &f, "damaged header");
    // 5. A backup of another path goes back to that path, never over the configured one.
    let other = f.resolv.with_file_name("other-resolv.conf");
    std::fs::write(&other, "changed by an earlier run\n").unwrap();
    let b = format!(
        "tinynm resolv.conf backup 1\npath {}\npresent\n\nnameserver 198.51.100.1\n",
        other.display()
    );
    std::fs::write(&backup, b).unwrap();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "nameserver 198.51.100.1\n"
    );
    settled(&w, &base, &f, "backup of another path");
    eprintln!("damaged state: 5 scenarios");
}
