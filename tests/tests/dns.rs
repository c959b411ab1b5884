//! DNS: the `file` backend writes a resolv.conf of the test's own (never the host's), ordered by
//! dns-priority, and puts the original back when the last VPN goes and after a crash.

mod common;

use common::{TESTBENCH, World};
use tinynm_sandbox::DaemonOptions;

const ORIGINAL: &str =
    "# the system's own\nnameserver 192.0.2.53\nsearch home.example\noptions edns0\n";

async fn world(tmp: &std::path::Path, backend: &str) -> (World, std::path::PathBuf) {
    let resolv = tmp.join("resolv.conf");
    std::fs::write(&resolv, ORIGINAL).unwrap();
    let w = World::with(DaemonOptions {
        config: format!(
            "[dns]\nbackend = \"{backend}\"\nresolv-conf = \"{}\"\n",
            resolv.display()
        ),
        ..Default::default()
    })
    .await;
    (w, resolv)
}

fn vpn(id: &str, tundev: &str, dns: &str, priority: i32, search: &str) -> tinynm_config::Profile {
    let mut p = common::profile(
        id,
        TESTBENCH,
        &[("tundev", tundev), ("dns", dns), ("never-default", "true")],
    );
    p.ipv4.dns_priority = priority;
    if !search.is_empty() {
        p.ipv4.dns_search = vec![search.to_string()];
    }
    p
}

/// The DnsManager object, as clients read it.
async fn dns_manager(w: &World) -> zbus::Proxy<'_> {
    zbus::Proxy::new(
        &w.conn,
        "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager/DnsManager",
        "org.freedesktop.NetworkManager.DnsManager",
    )
    .await
    .unwrap()
}

/// Brings up a VPN with DNS (10.8.0.53, corp.example), checks the DnsManager's Mode and
/// RcManager, and waits for its Configuration to list the VPN (returned).
async fn shown_with_a_vpn(
    w: &mut World,
    id: &str,
    dev: &str,
    (mode, rc): (&str, &str),
) -> Vec<std::collections::HashMap<String, zbus::OwnedVariant>> {
    let a = w
        .add_profile(vpn(id, dev, "10.8.0.53", 0, "corp.example"))
        .await;
    let ac = w.activate(&a).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let dns = dns_manager(w).await;
    assert_eq!(dns.get_property::<String>("Mode").await.unwrap(), mode);
    assert_eq!(dns.get_property::<String>("RcManager").await.unwrap(), rc);
    w.until("the DnsManager's configuration", || async {
        let c: Vec<std::collections::HashMap<String, zbus::OwnedVariant>> =
            dns.get_property("Configuration").await.ok()?;
        (!c.is_empty()).then_some(c)
    })
    .await
}

/// Waits until resolv.conf lists exactly these servers (and returns it).
async fn servers(w: &World, resolv: &std::path::Path, want: &[&str]) -> String {
    let want: Vec<String> = want.iter().map(|s| format!("nameserver {s}")).collect();
    w.until(&format!("resolv.conf with {want:?}"), || async {
        let t = std::fs::read_to_string(resolv).ok()?;
        let got: Vec<String> = t
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .map(String::from)
            .collect();
        (got == want).then_some(t)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolv_conf_follows_the_vpns_by_priority_and_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, resolv) = world(tmp.path(), "file").await;
    let a = w
        .add_profile(vpn("dns-a", "tbdns0", "10.8.0.53", 0, "corp.example"))
        .await;
    let b = w
        .add_profile(vpn("dns-b", "tbdns1", "10.9.0.53", 20, ""))
        .await;
    let x = w
        .add_profile(vpn("dns-x", "tbdns2", "10.7.0.53", -1, "only.example"))
        .await;

    let ac_a = w.activate(&a).await.unwrap();
    assert_eq!(w.wait_vpn(ac_a.as_str(), &[5, 6, 7]).await, (5, 1));
    let t = servers(&w, &resolv, &["10.8.0.53", "192.0.2.53"]).await;
    assert!(t.contains("search corp.example home.example\n"), "{t}");
    assert!(
        t.contains("options edns0\n"),
        "the original's options stay: {t}"
    );

    // A second VPN with a lower priority value goes first.
    let ac_b = w.activate(&b).await.unwrap();
    assert_eq!(w.wait_vpn(ac_b.as_str(), &[5, 6, 7]).await, (5, 1));
    servers(&w, &resolv, &["10.9.0.53", "10.8.0.53", "192.0.2.53"]).await;

    // A negative priority is exclusive.
    let ac_x = w.activate(&x).await.unwrap();
    assert_eq!(w.wait_vpn(ac_x.as_str(), &[5, 6, 7]).await, (5, 1));
    let t = servers(&w, &resolv, &["10.7.0.53"]).await;
    assert!(t.contains("search only.example\n"), "{t}");

    // Taken apart in any order.
    let m = w.manager().await;
    m.deactivate_connection(&ac_a).await.unwrap();
    w.wait_removed(ac_a.as_str()).await;
    servers(&w, &resolv, &["10.7.0.53"]).await;
    m.deactivate_connection(&ac_x).await.unwrap();
    w.wait_removed(ac_x.as_str()).await;
    servers(&w, &resolv, &["10.9.0.53", "192.0.2.53"]).await;
    m.deactivate_connection(&ac_b).await.unwrap();
    w.wait_removed(ac_b.as_str()).await;
    w.until("the original resolv.conf back", || async {
        (std::fs::read_to_string(&resolv).ok()? == ORIGINAL).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_tinynmd_s_resolv_conf_is_put_back_at_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, resolv) = world(tmp.path(), "file").await;
    let a = w
        .add_profile(vpn("dns-crash", "tbdns3", "10.8.0.53", 0, ""))
        .await;
    let ac = w.activate(&a).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    servers(&w, &resolv, &["10.8.0.53", "192.0.2.53"]).await;
    w.daemon.crash();
    assert_ne!(std::fs::read_to_string(&resolv).unwrap(), ORIGINAL);
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert_eq!(std::fs::read_to_string(&resolv).unwrap(), ORIGINAL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dns_manager_shows_what_is_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _resolv) = world(tmp.path(), "file").await;
    let config = shown_with_a_vpn(&mut w, "dns-shown", "tbdns4", ("default", "file")).await;
    let servers: Vec<String> = config[0]["nameservers"]
        .try_clone()
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(servers, vec!["10.8.0.53"]);
    assert_eq!(i32::try_from(&config[0]["priority"]).unwrap(), 50);
    assert_eq!(
        String::try_from(config[0]["interface"].try_clone().unwrap()).unwrap(),
        "tbdns4"
    );
    assert!(bool::try_from(&config[0]["vpn"]).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinynm_dns_explain_says_where_a_name_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, resolv) = world(tmp.path(), "file").await;
    let a = w
        .add_profile(vpn("dns-ex", "tbdns5", "10.8.0.53", 0, "corp.example"))
        .await;
    let ac = w.activate(&a).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    servers(&w, &resolv, &["10.8.0.53", "192.0.2.53"]).await;
    let o = w.tinynm(&["dns", "explain", "wiki.corp.example"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        out,
        "wiki.corp.example goes to 10.8.0.53: the first name server in force, from tbdns5 (dns-priority 50)\n  wiki.corp.example is under the search domain corp.example of tbdns5 (dns-priority 50)\n"
    );
}

/// A stand-in for systemd-resolved's Manager on the test bus, recording the calls it gets.
struct Resolve1 {
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    changed: std::sync::Arc<tokio::sync::Notify>,
}

impl Resolve1 {
    fn record(&self, c: String) {
        self.calls.lock().unwrap().push(c);
        self.changed.notify_waiters();
    }
}

#[zbus::interface(name = "org.freedesktop.resolve1.Manager")]
impl Resolve1 {
    #[zbus(name = "SetLinkDNS")]
    fn set_link_dns(&self, index: i32, servers: Vec<(i32, Vec<u8>)>) {
        let s: Vec<String> = servers
            .iter()
            .map(|(f, a)| match (*f, a.len()) {
                (2, 4) => std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
                _ => format!("{f}:{a:?}"),
            })
            .collect();
        self.record(format!("SetLinkDNS {index} {}", s.join(",")));
    }
    fn set_link_domains(&self, index: i32, domains: Vec<(String, bool)>) {
        let d: Vec<String> = domains
            .iter()
            .map(|(d, routing)| if *routing { format!("~{d}") } else { d.clone() })
            .collect();
        self.record(format!("SetLinkDomains {index} {}", d.join(",")));
    }
    fn set_link_default_route(&self, index: i32, enable: bool) {
        self.record(format!("SetLinkDefaultRoute {index} {enable}"));
    }
    fn revert_link(&self, index: i32) {
        self.record(format!("RevertLink {index}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolved_backend_sets_the_vpn_link_s_dns_and_reverts_it() {
    // auto: systemd-resolved is on the bus, so it is used (and the file is left alone).
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, resolv) = world(tmp.path(), "auto").await;
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let resolved = w.bus.connect().await.unwrap();
    resolved
        .object_server()
        .at(
            "/org/freedesktop/resolve1",
            Resolve1 {
                calls: calls.clone(),
                changed: changed.clone(),
            },
        )
        .await
        .unwrap();
    resolved
        .request_name("org.freedesktop.resolve1")
        .await
        .unwrap();
    let wait = |n: usize| {
        let (calls, changed) = (calls.clone(), changed.clone());
        async move {
            let deadline = tokio::time::Instant::now() + common::LIMIT;
            loop {
                let notified = changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if calls.lock().unwrap().len() >= n {
                    return calls.lock().unwrap().clone();
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    panic!("resolved got only {:?}", calls.lock().unwrap());
                }
            }
        }
    };
    // A split tunnel: its domain is routing-only, and it does not take the default route.
    let a = w
        .add_profile(vpn(
            "resolved-split",
            "tbres0",
            "10.8.0.53",
            0,
            "corp.example",
        ))
        .await;
    let ac = w.activate(&a).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let index = w.kernel().link("tbres0").unwrap().index;
    assert_eq!(
        wait(3).await,
        vec![
            format!("SetLinkDNS {index} 10.8.0.53"),
            format!("SetLinkDomains {index} ~corp.example"),
            format!("SetLinkDefaultRoute {index} false"),
        ]
    );
    assert_eq!(std::fs::read_to_string(&resolv).unwrap(), ORIGINAL);
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
    assert_eq!(wait(4).await[3], format!("RevertLink {index}"));

    // A full tunnel: its domain is a search domain, and it takes resolved's default route.
    let mut full = vpn("resolved-full", "tbres1", "10.8.0.54", 0, "corp.example");
    full.vpn.data.remove("never-default");
    let a = w.add_profile(full).await;
    let ac = w.activate(&a).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let index = w.kernel().link("tbres1").unwrap().index;
    assert_eq!(
        wait(7).await[4..],
        [
            format!("SetLinkDNS {index} 10.8.0.54"),
            format!("SetLinkDomains {index} corp.example"),
            format!("SetLinkDefaultRoute {index} true"),
        ]
    );
    assert_eq!(std::fs::read_to_string(&resolv).unwrap(), ORIGINAL);
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;
    assert_eq!(wait(8).await[7], format!("RevertLink {index}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_without_resolved_writes_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, resolv) = world(tmp.path(), "auto").await;
    let a = w
        .add_profile(vpn("auto-file", "tbdns6", "10.8.0.53", 0, ""))
        .await;
    let ac = w.activate(&a).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    servers(&w, &resolv, &["10.8.0.53", "192.0.2.53"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_damaged_backup_writes_nothing_and_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, resolv) = world(tmp.path(), "file").await;
    let backup = w.daemon.dir().join("state").join("resolv.conf.orig");
    for (bad, why) in [
        (&b""[..], "it is empty (0 bytes)"),
        // A backup as an earlier tinynm wrote it: the bare original, not tied to a path.
        (ORIGINAL.as_bytes(), "it does not start with"),
    ] {
        w.daemon.crash();
        std::fs::create_dir_all(backup.parent().unwrap()).unwrap();
        std::fs::write(&backup, bad).unwrap();
        w.daemon.restart(&w.ns, &w.bus).await.unwrap();
        assert_eq!(std::fs::read_to_string(&resolv).unwrap(), ORIGINAL, "{why}");
        let log = w.daemon.log_text();
        let needle = format!(
            "{}: damaged backup of a resolv.conf: {why}",
            backup.display()
        );
        assert!(log.contains(&needle), "log lacks {needle:?}:\n{log}");
        assert!(!backup.exists(), "set aside");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_goes_back_where_it_was_taken_from() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, resolv) = world(tmp.path(), "file").await;
    let a = w
        .add_profile(vpn("dns-moved", "tbdns7", "10.8.0.53", 0, ""))
        .await;
    let ac = w.activate(&a).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    servers(&w, &resolv, &["10.8.0.53", "192.0.2.53"]).await;
    w.daemon.crash();
    // daemon.toml now names another resolv.conf: it must not get the first one's original.
    let other = tmp.path().join("other-resolv.conf");
    std::fs::write(&other, "nameserver 203.0.113.53\n").unwrap();
    let conf = w.daemon.dir().join("daemon.toml");
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace(&resolv.display().to_string(), &other.display().to_string());
    std::fs::write(&conf, text).unwrap();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    assert_eq!(std::fs::read_to_string(&resolv).unwrap(), ORIGINAL);
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "nameserver 203.0.113.53\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_none_touches_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, resolv) = world(tmp.path(), "none").await;
    // The configuration is published after the backend has had its say.
    shown_with_a_vpn(&mut w, "dns-none", "tbdns8", ("none", "unmanaged")).await;
    assert_eq!(std::fs::read_to_string(&resolv).unwrap(), ORIGINAL);
    assert!(
        !w.daemon
            .dir()
            .join("state")
            .join("resolv.conf.orig")
            .exists()
    );
}
