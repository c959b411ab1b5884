//! Where tinynmd logs: the journal's native protocol when systemd gives it the journal
//! (`JOURNAL_STREAM`), stderr otherwise; what it logs: `TINYNM_LOG` (else `RUST_LOG`) as a
//! filter over daemon.toml's level, a bad filter refused by name.

mod common;

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::World;
use tinynm_sandbox::DaemonOptions;

/// One journal entry of the native protocol: `KEY=value` lines, or `KEY\n<u64 le length>value\n`
/// for a value with a newline.
fn entry(mut b: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    while !b.is_empty() {
        let nl = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            out.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            b = &b[(nl + 1).min(b.len())..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &b[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            out.insert(key, String::from_utf8_lossy(&rest[8..8 + len]).into_owned());
            b = &rest[(8 + len + 1).min(rest.len())..];
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_by_systemd_it_logs_to_the_journal_with_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.socket");
    let journal = UnixDatagram::bind(&path).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let w = World::with(DaemonOptions {
        private_run: true,
        journal_socket: Some(path.clone()),
        env: vec![("JOURNAL_STREAM".into(), "8:12345".into())],
        log_level: "info".into(),
        ..DaemonOptions::default()
    })
    .await;
    // The daemon is up: its start line is in the journal, as an entry with its fields.
    let mut seen = Vec::new();
    let serving = loop {
        let mut buf = vec![0u8; 65536];
        let n = journal
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no journal entry ({e}); seen {seen:#?}"));
        let e = entry(&buf[..n]);
        if e.get("MESSAGE")
            .is_some_and(|m| m.contains("serving org.freedesktop.NetworkManager"))
        {
            break e;
        }
        seen.push(e);
    };
    assert_eq!(serving["SYSLOG_IDENTIFIER"], "tinynmd");
    assert_eq!(
        serving["PRIORITY"], "5",
        "info is the journal's notice, as tracing-journald maps it"
    );
    assert!(serving.contains_key("TARGET"), "{serving:?}");
    // And not on stderr.
    assert!(
        !w.daemon
            .log_text()
            .contains("serving org.freedesktop.NetworkManager"),
        "{}",
        w.daemon.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinynm_log_filters_and_a_bad_filter_is_refused_by_name() {
    // daemon.toml says warn; TINYNM_LOG asks for debug from tinynmd: debug lines come.
    let w = World::with(DaemonOptions {
        log_level: "warn".into(),
        env: vec![("TINYNM_LOG".into(), "warn,tinynmd=debug".into())],
        ..DaemonOptions::default()
    })
    .await;
    let log = w.daemon.log_text();
    assert!(
        log.contains("DEBUG") && log.contains("starting with"),
        "{log}"
    );
    drop(w);
    // Nothing but warnings without it.
    let w = World::with(DaemonOptions {
        log_level: "warn".into(),
        ..DaemonOptions::default()
    })
    .await;
    assert!(!w.daemon.log_text().contains("starting with"));
    drop(w);
    // A filter that does not parse: tinynmd does not start, and says which variable.
    let o = std::process::Command::new(tinynm_sandbox::binary("tinynmd").unwrap())
        .args(["--bus-address", "unix:path=/nonexistent/tinynm-test"])
        .env("TINYNM_LOG", "tinynmd=loud")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("TINYNM_LOG='tinynmd=loud' is not a log filter"),
        "{err}"
    );
}
