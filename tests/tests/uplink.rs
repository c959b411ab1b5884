//! Standalone: tinynmd brings up the wired uplink itself (DHCP from a real dnsmasq, or static),
//! then the VPN named in the uplink's `connection.secondaries`, with NM's device states; a lost
//! carrier takes both down after NM's 6 s and its return brings both back.

mod common;

use std::path::Path;

use common::{LIMIT, Signal, TESTBENCH, World};
use tinynm_config::toml_profile::to_toml_string;
use tinynm_sandbox::DaemonOptions;
use tinynm_sandbox::dhcp::{DhcpOptions, Dnsmasq, LEASE_DNS, LEASE_DOMAIN};
use zbus::OwnedObjectPath;

const UPLINK_UUID: &str = "9d6b0f0e-0909-4a09-9009-b0a9c0d0e001";

/// The device states of one activation, as NM goes through them.
const UP: [u32; 6] = [40, 50, 70, 80, 90, 100];

fn options(dir: &Path, keyfile: String, vpn: &tinynm_config::Profile) -> DaemonOptions {
    DaemonOptions {
        config: format!(
            "[dns]\nbackend = \"file\"\nresolv-conf = \"{}\"\n",
            dir.join("resolv.conf").display()
        ),
        profiles: vec![("office.toml".into(), to_toml_string(vpn))],
        keyfiles: vec![("uplink.nmconnection".into(), keyfile)],
        ..Default::default()
    }
}

fn vpn() -> tinynm_config::Profile {
    common::profile(
        "office",
        TESTBENCH,
        &[("dns", "10.8.0.53"), ("never-default", "true")],
    )
}

/// An NM keyfile for the uplink `veth0`, as NM writes one, with the VPN as its secondary.
fn uplink_keyfile(ipv4: &str, vpn_uuid: &str) -> String {
    format!(
        "[connection]\nid=uplink\nuuid={UPLINK_UUID}\ntype=ethernet\ninterface-name=veth0\n\
         secondaries={vpn_uuid};\n\n[ethernet]\n\n[ipv4]\n{ipv4}\n\n[ipv6]\naddr-gen-mode=eui64\n\
         method=ignore\n\n[proxy]\n"
    )
}

/// Whether `seq` holds `want` in order (other states may sit between).
fn in_order(seq: &[(u32, u32)], want: &[u32]) -> bool {
    let mut it = seq.iter().map(|(s, _)| *s);
    want.iter().all(|w| it.any(|s| s == *w))
}

/// A world whose static uplink (`ipv4`, keyfile lines) has the test-bench VPN as its
/// secondary, both up: (world, the uplink device's path, the VPN's active connection).
async fn up_with_vpn(dir: &Path, ipv4: &str) -> (World, String, String) {
    tinynm_sandbox::require_root("the uplink tests").unwrap();
    let v = vpn();
    let opts = options(dir, uplink_keyfile(ipv4, &v.connection.uuid), &v);
    let mut w = World::with_uplink(opts, |_| {}).await;
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    w.wait_device(&dev, 100).await;
    let ac = vpn_ac(&w).expect("the VPN up before the uplink's ACTIVATED");
    (w, dev, ac)
}

/// A world whose DHCP uplink has the test-bench VPN as its secondary, with the router's
/// dnsmasq (`o`) started before tinynmd.
async fn dhcp_world(dir: &Path, o: &DhcpOptions) -> (World, Dnsmasq) {
    tinynm_sandbox::require_root("the uplink tests").unwrap();
    let v = vpn();
    let opts = options(dir, uplink_keyfile("method=auto", &v.connection.uuid), &v);
    let mut dnsmasq = None;
    let w = World::with_uplink(opts, |router| {
        dnsmasq = Some(Dnsmasq::start(router, dir, o).unwrap());
    })
    .await;
    (w, dnsmasq.expect("dnsmasq started"))
}

/// SIGKILLs the one test-bench plugin tinynmd runs, the signals seen so far forgotten.
fn kill_the_plugin(w: &mut World) {
    let pids = common::children_named(w.daemon.pid(), "tinynm-testbenc");
    assert_eq!(pids.len(), 1, "one plugin: {pids:?}");
    w.forget_signals();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

fn vpn_ac(w: &World) -> Option<String> {
    w.seen.iter().rev().find_map(|s| match s {
        Signal::Vpn(p, 5, _) => Some(p.clone()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dhcp_uplink_comes_up_at_start_then_its_secondary_vpn_and_goes_down_with_a_release() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, mut dnsmasq) = dhcp_world(tmp.path(), &DhcpOptions::default()).await;
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    assert_eq!(w.wait_device(&dev, 100).await, 0);
    let states = w.device_states(&dev);
    assert!(in_order(&states, &UP), "device states: {states:?}");
    // The VPN was up before the device reached ACTIVATED (NM holds it in SECONDARIES).
    let vpn_path = vpn_ac(&w).expect("the secondary VPN reached ACTIVATED before the device");
    let ack = dnsmasq
        .expect("DHCPACK(veth1)", std::time::Duration::from_secs(5))
        .unwrap();
    let leased = acked(&ack);
    assert!(leased.starts_with("10.99.0."), "{ack}");
    let k = w.kernel();
    assert!(
        k.addresses.contains(&format!("{leased}/24 dev veth0")),
        "{k}"
    );
    let routes = k.routes_on("veth0");
    assert!(
        routes.contains(&"default via 10.99.0.1 dev veth0 proto Dhcp metric 100"),
        "{routes:?}"
    );
    assert!(
        routes.contains(&"10.99.0.0/24 dev veth0 proto kernel metric 100"),
        "{routes:?}"
    );
    // The VPN's servers first, the lease's after, its domain searched.
    let resolv = tmp.path().join("resolv.conf");
    let text = w
        .until("resolv.conf with both connections' DNS", || async {
            let t = std::fs::read_to_string(&resolv).ok()?;
            t.contains(LEASE_DNS).then_some(t)
        })
        .await;
    let vpn_at = text.find("nameserver 10.8.0.53").expect(&text);
    let lease_at = text.find(&format!("nameserver {LEASE_DNS}")).expect(&text);
    assert!(vpn_at < lease_at, "{text}");
    assert!(text.contains(LEASE_DOMAIN), "{text}");
    // NM's DHCP4Config: the device's, and once ACTIVATED the connection's, with the lease's
    // options as NM's internal client names them; nmcli shows them.
    let uplink_ac = w.wait_ac(|p, st, _| st == 2 && p != vpn_path).await;
    let dhcp4 = object(get(&w, &dev, "Device", "Dhcp4Config").await);
    assert!(
        dhcp4
            .as_str()
            .starts_with("/org/freedesktop/NetworkManager/DHCP4Config/")
    );
    assert_eq!(
        object(get(&w, &uplink_ac, "Connection.Active", "Dhcp4Config").await),
        dhcp4
    );
    let opts = dhcp_options(get(&w, dhcp4.as_str(), "DHCP4Config", "Options").await);
    let mac = String::try_from(get(&w, &dev, "Device", "HwAddress").await)
        .unwrap()
        .to_lowercase();
    for (k, v) in [
        ("ip_address", leased.as_str()),
        ("subnet_mask", "255.255.255.0"),
        ("routers", "10.99.0.1"),
        ("domain_name_servers", LEASE_DNS),
        ("domain_name", LEASE_DOMAIN),
        ("dhcp_lease_time", "3600"),
        ("dhcp_server_identifier", "10.99.0.1"),
        ("dhcp_client_identifier", &format!("01:{mac}")),
        ("requested_subnet_mask", "1"),
        ("requested_rfc3442_classless_static_routes", "1"),
    ] {
        assert_eq!(opts.get(k).map(String::as_str), Some(v), "{k}: {opts:#?}");
    }
    let expiry: u64 = opts["expiry"].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 3500..=now + 3600).contains(&expiry),
        "{expiry} vs {now}"
    );
    let (ok, text) = nmcli(&w, &["-t", "-f", "DHCP4", "device", "show", "veth0"]);
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("DHCP4.OPTION[")
                && l.ends_with(&format!("ip_address = {leased}"))),
        "{text}"
    );
    // Down by the user: the VPN goes, the lease is given back, nothing of either stays.
    w.forget_signals();
    w.manager()
        .await
        .deactivate_connection(&zbus::ObjectPath::try_from(uplink_ac.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(w.wait_device(&dev, 30).await, 39, "USER_REQUESTED");
    assert!(
        in_order(&w.device_states(&dev), &[110, 30]),
        "{:?}",
        w.device_states(&dev)
    );
    dnsmasq
        .expect("DHCPRELEASE(veth1)", std::time::Duration::from_secs(5))
        .unwrap();
    w.wait_vpn(&vpn_path, &[7]).await;
    let k = w
        .until("the uplink's config removed", || async {
            let k = w.kernel();
            k.routes_on("veth0").is_empty().then_some(k)
        })
        .await;
    assert!(!k.addresses.iter().any(|a| a.contains("veth0")), "{k}");
    w.wait_removed(dhcp4.as_str()).await;
    assert_eq!(
        object(get(&w, &dev, "Device", "Dhcp4Config").await).as_str(),
        "/"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_uplink_goes_down_6_s_after_its_carrier_and_comes_back_with_its_vpn() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, dev, first_vpn) = up_with_vpn(
        tmp.path(),
        "address1=10.99.0.10/24,10.99.0.1\ndns=10.99.0.53;\ndns-search=static.test;\nmethod=manual",
    )
    .await;
    let k = w.kernel();
    assert!(
        k.addresses.contains(&"10.99.0.10/24 dev veth0".to_string()),
        "{k}"
    );
    assert!(
        k.routes_on("veth0")
            .contains(&"default via 10.99.0.1 dev veth0 proto static metric 100"),
        "{k}"
    );
    // The far end goes down: the carrier is lost; after NM's 6 s both go, the device is
    // UNAVAILABLE for CARRIER, and the VPN's end says the base went.
    let router = w.server.take().unwrap();
    w.forget_signals();
    router.set_link("veth1", false).unwrap();
    assert_eq!(w.wait_device(&dev, 20).await, 40);
    let (st, reason) = w.wait_vpn(&first_vpn, &[6, 7]).await;
    assert_eq!(st, 7);
    assert!(reason == 3 || reason == 12, "VPN reason {reason}");
    let k = w.kernel();
    assert!(!k.addresses.iter().any(|a| a.contains("veth0")), "{k}");
    // The carrier returns: the uplink comes back by itself, and its VPN with it (a new one).
    w.forget_signals();
    router.set_link("veth1", true).unwrap();
    w.wait_device(&dev, 100).await;
    let second_vpn = vpn_ac(&w).expect("the VPN back");
    assert_ne!(second_vpn, first_vpn);
    let k = w.kernel();
    assert!(
        k.addresses.contains(&"10.99.0.10/24 dev veth0".to_string()),
        "{k}"
    );
    w.server = Some(router);
}

/// The secondary VPN's plugin dies: tinynmd brings the VPN back by itself (tinynm's own: NM
/// leaves it down), after its first backoff delay, over the same uplink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_vpn_whose_plugin_dies_is_brought_back_over_its_uplink() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, dev, first) = up_with_vpn(
        tmp.path(),
        "address1=10.99.0.10/24,10.99.0.1\nmethod=manual",
    )
    .await;
    kill_the_plugin(&mut w);
    let (st, reason) = w.wait_vpn(&first, &[6, 7]).await;
    assert_eq!((st, reason), (7, 4), "DISCONNECTED, SERVICE_STOPPED");
    // A new activation of the same profile, over the uplink's connection, comes up.
    let second = w.wait_ac(|p, st, _| st == 2 && p != first).await;
    assert_ne!(second, first);
    w.wait_vpn(&second, &[5]).await;
    w.wait_log("trying again in 1 s (try 1)", LIMIT).await;
    // The uplink never moved.
    assert!(
        w.device_states(&dev).is_empty(),
        "{:?}",
        w.device_states(&dev)
    );
}

/// A property of one of tinynmd's objects (`iface` under `org.freedesktop.NetworkManager.`).
async fn get(w: &World, path: &str, iface: &str, name: &str) -> zbus::OwnedVariant {
    let p = zbus::fdo::PropertiesProxy::builder(&w.conn)
        .destination("org.freedesktop.NetworkManager")
        .path(path.to_string())
        .build()
        .await
        .unwrap();
    let iface = format!("org.freedesktop.NetworkManager.{iface}");
    p.get(iface.as_str().try_into().unwrap(), name)
        .await
        .unwrap_or_else(|e| panic!("{path} {iface}.{name}: {e}"))
}

fn object(v: zbus::OwnedVariant) -> OwnedObjectPath {
    OwnedObjectPath::try_from(v).unwrap()
}

/// A DHCP4Config's `Options`: every value a string, as NM's.
fn dhcp_options(v: zbus::OwnedVariant) -> std::collections::BTreeMap<String, String> {
    std::collections::HashMap::<String, zbus::OwnedVariant>::try_from(v)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::try_from(v).expect("a string value")))
        .collect()
}

fn nmcli(w: &World, args: &[&str]) -> (bool, String) {
    let bin = tinynm_sandbox::require_tool("nmcli", "network-manager").expect("nmcli");
    let out = std::process::Command::new(bin)
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .output()
        .expect("run nmcli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nmcli_adds_an_ethernet_profile_and_drives_the_device_as_with_nm() {
    tinynm_sandbox::require_root("the uplink tests").unwrap();
    let mut w = World::with_uplink(DaemonOptions::default(), |_| {}).await;
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    // No profile fits veth0 yet: tinynmd leaves it alone.
    let (ok, out) = nmcli(&w, &["-t", "-f", "DEVICE,STATE", "device", "status"]);
    assert!(ok && out.contains("veth0:unmanaged"), "{out}");
    let (ok, out) = nmcli(
        &w,
        &[
            "connection",
            "add",
            "type",
            "ethernet",
            "con-name",
            "uplink",
            "ifname",
            "veth0",
            "ipv4.method",
            "manual",
            "ipv4.addresses",
            "10.99.0.10/24",
            "ipv4.gateway",
            "10.99.0.1",
            "ipv6.method",
            "ignore",
        ],
    );
    assert!(ok, "{out}");
    // autoconnect (yes by default) brings it up at once.
    w.wait_device(&dev, 100).await;
    let (ok, out) = nmcli(
        &w,
        &[
            "-t",
            "-f",
            "DEVICE,TYPE,STATE,CONNECTION",
            "device",
            "status",
        ],
    );
    assert!(
        ok && out.contains("veth0:ethernet:connected:uplink"),
        "{out}"
    );
    assert!(
        w.kernel()
            .routes_on("veth0")
            .contains(&"default via 10.99.0.1 dev veth0 proto static metric 100"),
        "{}",
        w.kernel()
    );
    // device disconnect: down, USER_REQUESTED, and no autoconnect until asked.
    w.forget_signals();
    let (ok, out) = nmcli(&w, &["device", "disconnect", "veth0"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Device 'veth0' successfully disconnected."),
        "{out}"
    );
    assert_eq!(w.wait_device(&dev, 30).await, 39);
    let (_, out) = nmcli(
        &w,
        &["-t", "-f", "GENERAL.AUTOCONNECT", "device", "show", "veth0"],
    );
    assert!(out.contains("GENERAL.AUTOCONNECT:no"), "{out}");
    // device connect: the best profile for it, up again.
    let (ok, out) = nmcli(&w, &["device", "connect", "veth0"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Device 'veth0' successfully activated"),
        "{out}"
    );
    // connection down / up by name.
    let (ok, out) = nmcli(&w, &["connection", "down", "uplink"]);
    assert!(ok && out.contains("successfully deactivated"), "{out}");
    let (ok, out) = nmcli(&w, &["connection", "up", "uplink"]);
    assert!(
        ok && out.contains("Connection successfully activated"),
        "{out}"
    );
    // A wired profile that cannot be is refused by name over D-Bus, and nothing is added.
    let before = w.settings().await.list_connections().await.unwrap().len();
    let mut bad = tinynm_config::Profile::new_ethernet(
        "bad",
        "9d6b0f0e-0909-4a09-9009-b0a9c0d0e0ff",
        Some("veth0"),
    );
    bad.ipv4.method = tinynm_config::profile::IpMethod::parse("manual").unwrap();
    let err = w
        .settings()
        .await
        .add_connection_unsaved(tinynm_config::dbus::to_dict(&bad, false))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("[ipv4] addresses: method 'manual' needs at least one address"),
        "{err}"
    );
    assert_eq!(
        w.settings().await.list_connections().await.unwrap().len(),
        before
    );
}

/// The same boot with Debian's unmodified nm-openvpn-service as the secondary, against a real
/// openvpn server on the router: DHCP, then the tunnel, with nothing configured by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dhcp_uplink_brings_up_debians_openvpn_plugin_as_its_secondary() {
    use tinynm_sandbox::openvpn::{Auth, OPENVPN, Pki, Server};
    tinynm_sandbox::require_root("the uplink tests").unwrap();
    assert!(
        Path::new("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name").exists(),
        "needs Debian's network-manager-openvpn (apt-get install -y network-manager-openvpn)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let (data, secrets) = Auth::Tls.client_data(&pki);
    let mut v = common::profile("office-ovpn", OPENVPN, &[]);
    v.vpn.data = data;
    v.vpn.secrets = secrets;
    let mut opts = options(
        tmp.path(),
        uplink_keyfile("method=auto", &v.connection.uuid),
        &v,
    );
    opts.nm_plugin_dirs = true;
    opts.private_run = true;
    let (mut dnsmasq, mut server) = (None, None);
    let mut w = World::with_uplink(opts, |router| {
        dnsmasq = Some(Dnsmasq::start(router, tmp.path(), &DhcpOptions::default()).unwrap());
        server = Some(Server::start(router, &pki, Auth::Tls).unwrap());
    })
    .await;
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    assert_eq!(w.wait_device(&dev, 100).await, 0);
    vpn_ac(&w).expect("the OpenVPN secondary up before the uplink's ACTIVATED");
    let k = w.kernel();
    assert!(
        k.addresses.iter().any(|a| a.starts_with("10.8.0.")),
        "the tunnel's address: {k}"
    );
    assert!(
        k.routes.iter().any(|r| r.starts_with("10.200.0.0/24")),
        "the pushed route: {k}"
    );
    drop((dnsmasq, server));
}

/// dnsmasq's shortest lease (120 s) with renewal at 60 s (its least T1) and rebinding at 100 s.
fn short_lease() -> DhcpOptions {
    DhcpOptions {
        lease_secs: 120,
        t1: Some(60),
        t2: Some(100),
        ..DhcpOptions::default()
    }
}

/// Each wait on the DHCP server's timers is bounded a little past them.
const PAST_T1: std::time::Duration = std::time::Duration::from_secs(90);

/// A renewal at the server's T1 keeps the lease: the same address, acknowledged again, and
/// nothing changes on the bus (NM's "new lease" without a state change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_at_t1_keeps_the_lease_and_changes_no_state() {
    tinynm_sandbox::require_root("the uplink tests").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let v = vpn();
    let keyfile = uplink_keyfile("method=auto", &v.connection.uuid)
        .replace(&format!("secondaries={};\n", v.connection.uuid), "");
    let mut dnsmasq = None;
    let mut w = World::with_uplink(options(tmp.path(), keyfile, &v), |router| {
        dnsmasq = Some(Dnsmasq::start(router, tmp.path(), &short_lease()).unwrap());
    })
    .await;
    let mut dnsmasq = dnsmasq.unwrap();
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    w.wait_device(&dev, 100).await;
    let first = dnsmasq.expect("DHCPACK(veth1)", PAST_T1).unwrap();
    let dhcp4 = object(get(&w, &dev, "Device", "Dhcp4Config").await);
    let expiry =
        |o: &std::collections::BTreeMap<String, String>| -> u64 { o["expiry"].parse().unwrap() };
    let before = dhcp_options(get(&w, dhcp4.as_str(), "DHCP4Config", "Options").await);
    w.forget_signals();
    dnsmasq.expect("DHCPREQUEST(veth1)", PAST_T1).unwrap();
    let again = dnsmasq.expect("DHCPACK(veth1)", PAST_T1).unwrap();
    let addr = acked;
    assert_eq!(addr(&first), addr(&again));
    let k = w.kernel();
    assert!(
        k.addresses
            .contains(&format!("{}/24 dev veth0", addr(&first))),
        "{k}"
    );
    w.wait_log("DHCPv4: lease renewed", LIMIT).await;
    // The same DHCP4Config, its options renewed: only `expiry` moves (as NM's).
    assert_eq!(object(get(&w, &dev, "Device", "Dhcp4Config").await), dhcp4);
    let after = dhcp_options(get(&w, dhcp4.as_str(), "DHCP4Config", "Options").await);
    assert!(
        expiry(&after) >= expiry(&before) + 50,
        "{before:?} → {after:?}"
    );
    let rest = |o: &std::collections::BTreeMap<String, String>| {
        let mut o = o.clone();
        o.remove("expiry");
        o
    };
    assert_eq!(rest(&after), rest(&before));
    assert!(
        w.device_states(&dev).is_empty(),
        "{:?}",
        w.device_states(&dev)
    );
}

/// The server goes away: renewals and rebinds fail, and at the lease's end the address goes,
/// the device fails with IP_CONFIG_EXPIRED, the VPN over it goes down, and its DNS leaves
/// resolv.conf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_gone_the_lease_expires_and_takes_the_address_and_the_vpn_down() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, mut dnsmasq) = dhcp_world(tmp.path(), &short_lease()).await;
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    w.wait_device(&dev, 100).await;
    let vpn_path = vpn_ac(&w).expect("VPN up");
    dnsmasq.stop();
    w.forget_signals();
    // 120 s after the lease was given.
    let reason = w
        .wait_device_within(&dev, 120, std::time::Duration::from_secs(150))
        .await;
    assert_eq!(reason, 18, "IP_CONFIG_EXPIRED");
    let log = w.daemon.log_text();
    assert!(
        log.contains("DHCPv4: the DHCP lease expired"),
        "given up at the lease's end, not before: {}",
        log.lines()
            .filter(|l| l.contains("DHCP"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (st, _) = w.wait_vpn(&vpn_path, &[7]).await;
    assert_eq!(st, 7);
    let k = w
        .until("the lease's address gone", || async {
            let k = w.kernel();
            (!k.addresses.iter().any(|a| a.ends_with("dev veth0"))).then_some(k)
        })
        .await;
    assert!(k.routes_on("veth0").is_empty(), "{k}");
    let resolv = std::fs::read_to_string(tmp.path().join("resolv.conf")).unwrap_or_default();
    assert!(!resolv.contains(LEASE_DNS), "{resolv}");
}

/// A static IPv4 uplink with `ipv6.method=auto`: the kernel's SLAAC takes the router's
/// advertised prefix (dnsmasq's router advertisements), and the device's IP6Config shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_auto_takes_the_routers_advertised_prefix_by_slaac() {
    tinynm_sandbox::require_root("the uplink tests").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let v = vpn();
    let keyfile = uplink_keyfile(
        "address1=10.99.0.10/24,10.99.0.1\nmethod=manual",
        &v.connection.uuid,
    )
    .replace("method=ignore", "method=auto");
    let ra = DhcpOptions {
        ra: true,
        ..DhcpOptions::default()
    };
    let mut dnsmasq = None;
    let mut w = World::with_uplink(options(tmp.path(), keyfile, &v), |router| {
        dnsmasq = Some(Dnsmasq::start(router, tmp.path(), &ra).unwrap());
    })
    .await;
    let devs = w.devices(&["veth0"]).await;
    w.wait_device(devs["veth0"].as_str(), 100).await;
    let k = w
        .until("a SLAAC address from fd00:99::/64 on veth0", || async {
            let k = w.kernel();
            k.addresses
                .iter()
                .any(|a| a.starts_with("fd00:99::") && a.ends_with("/64 dev veth0"))
                .then_some(k)
        })
        .await;
    assert!(
        k.addresses.contains(&"10.99.0.10/24 dev veth0".to_string()),
        "{k}"
    );
    let dev = zbus::Proxy::new(
        &w.conn,
        "org.freedesktop.NetworkManager",
        devs["veth0"].clone(),
        "org.freedesktop.NetworkManager.Device",
    )
    .await
    .unwrap();
    let ip6: zbus::OwnedObjectPath = dev.get_property("Ip6Config").await.unwrap();
    let cfg = zbus::Proxy::new(
        &w.conn,
        "org.freedesktop.NetworkManager",
        ip6,
        "org.freedesktop.NetworkManager.IP6Config",
    )
    .await
    .unwrap();
    type Data = Vec<std::collections::HashMap<String, zbus::OwnedVariant>>;
    let shown = w
        .until("the SLAAC address in the device's IP6Config", || async {
            let d: Data = cfg.get_property("AddressData").await.ok()?;
            d.iter()
                .filter_map(|a| String::try_from(a.get("address")?.try_clone().ok()?).ok())
                .find(|a| a.starts_with("fd00:99::"))
        })
        .await;
    assert!(shown.starts_with("fd00:99::"));
    drop(dnsmasq);
}

/// tinynm's `org.tinynm.Settings` property `name`, as a PropertiesChanged signal carries it,
/// once `f` accepts it.
async fn keepup_change<T>(
    changes: &mut zbus::fdo::PropertiesChangedStream,
    name: &str,
    f: impl Fn(&zbus::Variant<'_>) -> Option<T>,
) -> T {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let s = tokio::time::timeout_at(deadline, changes.next())
            .await
            .unwrap_or_else(|_| panic!("no org.tinynm.Settings {name} change within {LIMIT:?}"))
            .expect("the signal stream");
        let args = s.args().unwrap();
        if args.interface_name.as_str() != "org.tinynm.Settings" {
            continue;
        }
        if let Some(v) = args.changed_properties.get(name).and_then(&f) {
            return v;
        }
    }
}

/// A VPN with `tinynm-autoconnect=yes` (tinynm's own; no secondaries): it waits for a
/// primary connection, comes up over the uplink by itself, is brought back when its plugin
/// dies (shown on D-Bus), and comes back with the uplink's carrier; taken down by the user it
/// stays down (shown on D-Bus) until activated by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_starting_vpn_follows_the_primary_connection_and_stays_down_for_the_user() {
    use std::collections::HashMap;
    tinynm_sandbox::require_root("the uplink tests").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut v = vpn();
    v.vpn.data.insert("tinynm-autoconnect".into(), "yes".into());
    let keyfile = format!(
        "[connection]\nid=uplink\nuuid={UPLINK_UUID}\ntype=ethernet\ninterface-name=veth0\n\n\
         [ipv4]\naddress1=10.99.0.10/24,10.99.0.1\nmethod=manual\n\n[ipv6]\nmethod=ignore\n"
    );
    let mut w = World::with_uplink(options(tmp.path(), keyfile, &v), |_| {}).await;
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    let first = w.wait_vpn_other(&[]).await;
    w.wait_vpn(&first, &[5]).await;
    // It waited for the primary connection: the uplink had its IP before the VPN started.
    let ip_at = w
        .seen
        .iter()
        .position(|s| matches!(s, Signal::Dev(p, 70, _, _) if *p == dev))
        .expect("the uplink through IP_CONFIG");
    let vpn_at = w
        .seen
        .iter()
        .position(|s| matches!(s, Signal::Vpn(p, _, _) if *p == first))
        .expect("the VPN's states");
    assert!(ip_at < vpn_at, "{:?}", w.seen);
    // The plugin dies: the VPN waits for its next try, shown on D-Bus, and comes back.
    let props = zbus::fdo::PropertiesProxy::builder(&w.conn)
        .destination("org.tinynm")
        .path("/org/tinynm/Settings")
        .build()
        .await
        .unwrap();
    let mut changes = props.receive_properties_changed().await.unwrap();
    kill_the_plugin(&mut w);
    let uuid = v.connection.uuid.clone();
    let pending = keepup_change(&mut changes, "Reconnects", |val| {
        let m = HashMap::<String, (u32, u64, String)>::try_from(val.try_clone().ok()?).ok()?;
        m.get(&uuid).cloned()
    })
    .await;
    assert_eq!(pending.0, 1, "{pending:?}");
    assert_eq!(
        pending.2, "The VPN service stopped unexpectedly",
        "{pending:?}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    assert!(
        pending.1 > now - 2_000_000 && pending.1 < now + 2_000_000,
        "{pending:?}"
    );
    let second = w.wait_ac(|p, st, _| st == 2 && p != first).await;
    w.wait_vpn(&second, &[5]).await;
    keepup_change(&mut changes, "Reconnects", |val| {
        let m = HashMap::<String, (u32, u64, String)>::try_from(val.try_clone().ok()?).ok()?;
        m.is_empty().then_some(())
    })
    .await;
    // The carrier goes: both go down after 6 s; it returns: the VPN comes back by itself.
    let router = w.server.take().unwrap();
    w.forget_signals();
    router.set_link("veth1", false).unwrap();
    assert_eq!(w.wait_device(&dev, 20).await, 40);
    w.wait_vpn(&second, &[7]).await;
    router.set_link("veth1", true).unwrap();
    w.wait_device(&dev, 100).await;
    let third = w.wait_vpn_other(&[&first, &second]).await;
    w.wait_vpn(&third, &[5]).await;
    w.server = Some(router);
    // The user takes it down: it stays down, held on D-Bus, even as tinynmd looks again
    // (a new profile makes it look for links and VPNs to start).
    w.manager()
        .await
        .deactivate_connection(&OwnedObjectPath::try_from(third.as_str()).unwrap())
        .await
        .unwrap();
    let blocked = keepup_change(&mut changes, "AutoconnectBlocked", |val| {
        Vec::<String>::try_from(val.try_clone().ok()?).ok()
    })
    .await;
    assert_eq!(blocked, [uuid]);
    w.wait_removed(&third).await;
    w.add("another", &[]).await;
    assert!(w.vpn_actives().await.is_empty(), "the VPN came back");
    // Activated by hand, it is no longer held.
    let profile = w
        .settings()
        .await
        .get_connection_by_uuid(&v.connection.uuid)
        .await
        .unwrap();
    let fourth = w.activate(&profile).await.unwrap();
    w.wait_vpn(fourth.as_str(), &[5]).await;
    let blocked = keepup_change(&mut changes, "AutoconnectBlocked", |val| {
        Vec::<String>::try_from(val.try_clone().ok()?).ok()
    })
    .await;
    assert!(blocked.is_empty(), "{blocked:?}");
}

/// A DHCP world whose uplink is ACTIVATED: (world, dnsmasq, the uplink device, its lease's
/// address).
async fn dhcp_up(dir: &Path) -> (World, Dnsmasq, String, String) {
    let (mut w, mut dnsmasq) = dhcp_world(dir, &DhcpOptions::default()).await;
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    w.wait_device(&dev, 100).await;
    let leased = acked(
        &dnsmasq
            .expect("DHCPACK(veth1)", std::time::Duration::from_secs(5))
            .unwrap(),
    );
    (w, dnsmasq, dev, leased)
}

/// The address in dnsmasq's `dnsmasq-dhcp[PID]: XID DHCPACK(veth1) ADDRESS MAC HOST` line.
fn acked(line: &str) -> String {
    line.split_whitespace()
        .skip_while(|w| *w != "DHCPACK(veth1)")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// The network is renumbered while the carrier is away (a new server that knows nothing of
/// the old lease): on the carrier's return tinynmd asks for its last address (INIT-REBOOT),
/// the server refuses it with a DHCPNAK, and tinynmd starts over and takes the new network's
/// address; the old one is gone from the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nak_for_the_last_address_after_a_renumbering_gets_a_new_lease() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, mut dnsmasq, dev, old) = dhcp_up(tmp.path()).await;
    assert!(old.starts_with("10.99.0.1"), "{old}");
    let router = w.server.take().unwrap();
    w.forget_signals();
    router.set_link("veth1", false).unwrap();
    assert_eq!(w.wait_device(&dev, 20).await, 40, "CARRIER");
    // Renumbered: a new server, its leases forgotten, handing out .200–.250 only.
    dnsmasq.stop();
    std::fs::remove_file(&dnsmasq.leases).unwrap();
    let mut renumbered = Dnsmasq::start_range(
        &router,
        tmp.path(),
        &DhcpOptions::default(),
        "10.99.0.200,10.99.0.250",
    )
    .unwrap();
    router.set_link("veth1", true).unwrap();
    w.wait_device(&dev, 100).await;
    let nak = renumbered
        .expect("DHCPNAK(veth1)", std::time::Duration::from_secs(5))
        .unwrap();
    assert!(
        nak.contains(&old),
        "the NAK was for the last address: {nak}"
    );
    let new = acked(
        &renumbered
            .expect("DHCPACK(veth1)", std::time::Duration::from_secs(5))
            .unwrap(),
    );
    assert!(new.starts_with("10.99.0.2"), "{new}");
    w.wait_log("DHCPNAK", LIMIT).await;
    let k = w.kernel();
    assert!(k.addresses.contains(&format!("{new}/24 dev veth0")), "{k}");
    assert!(
        !k.addresses
            .iter()
            .any(|a| a.starts_with(&format!("{old}/"))),
        "{k}"
    );
    w.server = Some(router);
}

/// tinynmd stops with the uplink up: it gives no DHCPRELEASE (as NM) and keeps the lease on
/// disk; started again it asks for the same address (INIT-REBOOT: no DISCOVER) and has it.
/// A server that knows nothing of it and is not authoritative stays silent: after 2 s tinynmd
/// starts over with DISCOVER and has a lease all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_asks_for_the_kept_lease_and_starts_over_when_no_one_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, mut dnsmasq, _, first) = dhcp_up(tmp.path()).await;
    w.forget_signals();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    w.wait_device(&dev, 100).await;
    w.wait_log(&format!("asking for {first} again (INIT-REBOOT)"), LIMIT)
        .await;
    let again = acked(
        &dnsmasq
            .expect("DHCPACK(veth1)", std::time::Duration::from_secs(5))
            .unwrap(),
    );
    assert_eq!(again, first);
    let log = dnsmasq.log_text();
    assert!(!log.contains("DHCPRELEASE"), "released at the stop:\n{log}");
    assert_eq!(
        log.matches("DHCPDISCOVER(veth1)").count(),
        1,
        "only the first start discovers:\n{log}"
    );
    // A new server that forgot every lease and does not answer for others' addresses.
    dnsmasq.stop();
    std::fs::remove_file(&dnsmasq.leases).unwrap();
    let router = w.server.take().unwrap();
    let quiet = DhcpOptions {
        authoritative: false,
        ..DhcpOptions::default()
    };
    let mut quiet_server = Dnsmasq::start(&router, tmp.path(), &quiet).unwrap();
    w.server = Some(router);
    w.forget_signals();
    w.daemon.restart(&w.ns, &w.bus).await.unwrap();
    let dev = w.devices(&["veth0"]).await["veth0"].to_string();
    w.wait_device(&dev, 100).await;
    w.wait_log(
        "no answer for the last address within 2 s: asking anew (DISCOVER)",
        LIMIT,
    )
    .await;
    quiet_server
        .expect("DHCPDISCOVER(veth1)", std::time::Duration::from_secs(5))
        .unwrap();
    let leased = acked(
        &quiet_server
            .expect("DHCPACK(veth1)", std::time::Duration::from_secs(5))
            .unwrap(),
    );
    let k = w.kernel();
    assert!(
        k.addresses.contains(&format!("{leased}/24 dev veth0")),
        "{k}"
    );
}
