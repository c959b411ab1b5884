//! Signals to tinynmd, as a service manager sends them: SIGHUP reloads daemon.toml and the
//! profiles (as NM does), SIGTERM takes every VPN down and leaves nothing.

mod common;

use std::time::Duration;

use common::{TESTBENCH, World, profile};
use nix::sys::signal::{Signal, kill};

fn signal(w: &World, s: Signal) {
    kill(nix::unistd::Pid::from_raw(w.daemon.pid() as i32), s).expect("signal tinynmd");
}

/// Waits (bounded) until the daemon's log has `needle`.
async fn log_says(w: &World, needle: &str) {
    for _ in 0..200 {
        if w.daemon.log_text().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "tinynmd's log never said {needle:?}:\n{}",
        w.daemon.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_loads_new_profile_files_and_keeps_running() {
    let mut w = World::new().await;
    assert!(w.vpn_profiles().await.is_empty());
    let p = profile("dropped-in", TESTBENCH, &[("tundev", "tbhup")]);
    let file = w.daemon.profile_dir.join("dropped-in.toml");
    std::fs::write(&file, tinynm_config::toml_profile::to_toml_string(&p)).unwrap();
    signal(&w, Signal::SIGHUP);
    log_says(&w, "daemon.toml reloaded").await;
    let all = w.vpn_profiles().await;
    assert_eq!(all.len(), 1, "the new file's profile is loaded");
    // Still serving: the new profile activates.
    let ac = w.activate(&all[0]).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_daemon_toml_keeps_the_old_one() {
    let mut w = World::new().await;
    let conf = w.daemon.dir().join("daemon.toml");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{good}\n[timeouts]\nagent = \"soon\"\n")).unwrap();
    signal(&w, Signal::SIGHUP);
    log_says(&w, "daemon.toml not reloaded, the old one stays").await;
    log_says(&w, "agent").await;
    std::fs::write(&conf, &good).unwrap();
    let path = w.add("after-bad-hup", &[("tundev", "tbhup2")]).await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_takes_every_vpn_down_and_leaves_nothing() {
    let mut w = World::new().await;
    let base = w.kernel();
    for (id, dev) in [("one", "tbterm1"), ("two", "tbterm2")] {
        let path = w
            .add(id, &[("tundev", dev), ("routes", "10.50.0.0/16")])
            .await;
        let ac = w.activate(&path).await.unwrap();
        assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    }
    assert!(w.kernel().link("tbterm1").is_some());
    w.daemon.stop();
    let log = w.daemon.log_text();
    assert!(
        log.contains("shutting down: deactivating every VPN"),
        "{log}"
    );
    w.assert_clean(&base);
    let journals = std::fs::read_dir(w.daemon.dir().join("state"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(journals, 0, "no journal left in the state directory");
}
