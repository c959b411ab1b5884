//! resolv.conf as systems and containers have it: a symlink (followed, as NM's
//! `rc-manager=file` does, and never replaced by a file), a bind mount (written in place,
//! restored byte for byte, after a crash too) and a read-only file (an error that the
//! DnsManager and `tinynm dns explain` show, never reported as in force).

mod common;

use std::path::{Path, PathBuf};

use common::{TESTBENCH, World};
use tinynm_sandbox::{BindMount, DaemonOptions};

const ORIGINAL: &str = "# the runtime's\nnameserver 192.0.2.53\noptions ndots:2\n";

fn options(resolv: &Path, mounts: Vec<BindMount>) -> DaemonOptions {
    DaemonOptions {
        config: format!(
            "[dns]\nbackend = \"file\"\nresolv-conf = \"{}\"\n",
            resolv.display()
        ),
        bind_mounts: mounts,
        ..Default::default()
    }
}

/// A world whose resolv.conf is the runtime's file mounted over the path tinynmd manages
/// (rename over it: EBUSY), as a container runtime makes it: (world, its directory, the
/// runtime's file, the managed path).
async fn mounted(read_only: bool) -> (World, tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host-resolv.conf");
    let resolv = tmp.path().join("resolv.conf");
    std::fs::write(&host, ORIGINAL).unwrap();
    std::fs::write(&resolv, "").unwrap();
    let mounts = vec![BindMount {
        source: host.clone(),
        target: resolv.clone(),
        read_only,
    }];
    let w = World::with(options(&resolv, mounts)).await;
    (w, tmp, host, resolv)
}

async fn up(w: &mut World, id: &str, dev: &str) -> zbus::OwnedObjectPath {
    let mut p = common::profile(
        id,
        TESTBENCH,
        &[
            ("tundev", dev),
            ("dns", "10.8.0.53"),
            ("never-default", "true"),
        ],
    );
    p.ipv4.dns_search = vec!["corp.example".into()];
    let path = w.add_profile(p).await;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    ac
}

async fn down(w: &mut World, ac: &zbus::OwnedObjectPath) {
    w.manager().await.deactivate_connection(ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
}

async fn until_file(w: &World, file: &Path, what: &str, want: impl Fn(&str) -> bool) -> String {
    w.until(what, || async {
        let t = std::fs::read_to_string(file).ok()?;
        want(&t).then_some(t)
    })
    .await
}

/// Waits until `org.tinynm.DnsManager.Error` is set (`shown`) or cleared; returns it.
async fn dns_error(w: &World, status: &zbus::Proxy<'static>, shown: bool) -> String {
    let what = if shown {
        "the DNS error shown"
    } else {
        "the DNS error cleared"
    };
    w.until(what, || async {
        let e: String = status.get_property("Error").await.ok()?;
        (e.is_empty() != shown).then_some(e)
    })
    .await
}

async fn dns_error_proxy(w: &World) -> zbus::Proxy<'static> {
    zbus::Proxy::new(
        &w.conn,
        "org.tinynm",
        "/org/tinynm/DnsManager",
        "org.tinynm.DnsManager",
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_resolv_conf_is_followed_and_stays_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("stub-resolv.conf");
    let link = tmp.path().join("resolv.conf");
    std::fs::write(&real, ORIGINAL).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut w = World::with(options(&link, vec![])).await;
    let ac = up(&mut w, "symlinked", "tbrs0").await;
    let t = until_file(&w, &real, "the target lists the VPN", |t| {
        t.contains("nameserver 10.8.0.53\n")
    })
    .await;
    assert!(t.contains("search corp.example\n"), "{t}");
    let m = std::fs::symlink_metadata(&link).unwrap();
    assert!(m.file_type().is_symlink(), "resolv.conf is still a symlink");
    assert_eq!(std::fs::read_link(&link).unwrap(), real);
    down(&mut w, &ac).await;
    until_file(&w, &real, "the original back in the target", |t| {
        t == ORIGINAL
    })
    .await;
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_symlink_is_not_replaced_and_the_error_is_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("resolv.conf");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &link).unwrap();
    let mut w = World::with(options(&link, vec![])).await;
    let _ac = up(&mut w, "dangling", "tbrs1").await;
    let status = dns_error_proxy(&w).await;
    let err = dns_error(&w, &status, true).await;
    assert!(
        err.contains(&link.display().to_string()) && err.contains("symlink"),
        "{err}"
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!tmp.path().join("nowhere").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_mounted_resolv_conf_is_written_in_place_and_put_back_byte_for_byte() {
    let (mut w, _tmp, host, resolv) = mounted(false).await;
    let ac = up(&mut w, "bound", "tbrs2").await;
    until_file(&w, &host, "the mounted file lists the VPN", |t| {
        t.contains("nameserver 10.8.0.53\n")
    })
    .await;
    down(&mut w, &ac).await;
    until_file(&w, &host, "the original back", |t| t == ORIGINAL).await;
    assert_eq!(
        std::fs::read(&resolv).unwrap(),
        b"",
        "the host never saw a change"
    );

    // After a crash, the next start puts it back, in place.
    let _ac = up(&mut w, "bound2", "tbrs3").await;
    until_file(&w, &host, "the mounted file lists the VPN again", |t| {
        t.contains("nameserver 10.8.0.53\n")
    })
    .await;
    w.daemon.crash();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert_eq!(std::fs::read_to_string(&host).unwrap(), ORIGINAL);
    let log = w.daemon.log_text();
    assert!(log.contains("cannot be replaced"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_resolv_conf_is_an_error_never_reported_in_force() {
    let (mut w, _tmp, host, resolv) = mounted(true).await;
    let ac = up(&mut w, "readonly", "tbrs4").await;
    let status = dns_error_proxy(&w).await;
    let err = dns_error(&w, &status, true).await;
    assert!(
        err.contains(&resolv.display().to_string()) && err.contains("Read-only file system"),
        "{err}"
    );
    let dns = zbus::Proxy::new(
        &w.conn,
        "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager/DnsManager",
        "org.freedesktop.NetworkManager.DnsManager",
    )
    .await
    .unwrap();
    let config: Vec<std::collections::HashMap<String, zbus::OwnedVariant>> =
        dns.get_property("Configuration").await.unwrap();
    assert!(config.is_empty(), "nothing reported in force: {config:?}");
    let o = w.tinynm(&["dns", "explain", "wiki.corp.example"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.starts_with("the last DNS change is NOT in force: ")
            && out.contains("Read-only file system"),
        "{out}"
    );
    assert!(!out.contains("goes to 10.8.0.53"), "{out}");
    assert_eq!(std::fs::read_to_string(&host).unwrap(), ORIGINAL);
    let log = w.daemon.log_text();
    assert!(log.contains("the VPN's DNS is not in force"), "{log}");
    // Going down clears it: nothing was changed, nothing to put back.
    down(&mut w, &ac).await;
    dns_error(&w, &status, false).await;
    assert!(!w.daemon.dir().join("state/resolv.conf.orig").exists());
}
