//! Bad input over D-Bus and on disk: a clear error naming what was wrong, and nothing changed.

mod common;

use common::{TESTBENCH, World, profile};
use tinynm_sandbox::DaemonOptions;
use zbus::Variant;

fn method_error(e: zbus::Error) -> (String, String) {
    match e {
        zbus::Error::MethodError(name, msg, _) => (name.to_string(), msg.unwrap_or_default()),
        zbus::Error::FDO(e) => {
            use zbus::DBusError;
            (
                e.name().to_string(),
                e.description().unwrap_or_default().to_string(),
            )
        }
        other => panic!("expected a D-Bus error reply, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_calls_get_errors_that_say_what_was_wrong() {
    let w = World::new().await;
    let settings = w.settings().await;
    let before = w.vpn_profiles().await;

    // Unknown profile.
    let nope =
        zbus::OwnedObjectPath::try_from("/org/freedesktop/NetworkManager/Settings/999").unwrap();
    let e = w.activate(&nope).await.unwrap_err();
    assert_eq!(
        method_error(e),
        (
            "org.freedesktop.NetworkManager.UnknownConnection".into(),
            "Connection could not be found.".into()
        )
    );

    // A property of the wrong D-Bus type.
    let mut d = tinynm_config::dbus::to_dict(&profile("bad", TESTBENCH, &[]), false);
    d.get_mut("ipv4").unwrap().insert(
        "route-metric".into(),
        Variant::from("50").try_into_owned().unwrap(),
    );
    let e = settings.add_connection_unsaved(d).await.unwrap_err();
    assert_eq!(
        method_error(e),
        (
            "org.freedesktop.NetworkManager.Settings.InvalidConnection".into(),
            "[ipv4] route-metric: expected D-Bus type 'x', got 's'".into()
        )
    );

    // A missing setting.
    let mut d = tinynm_config::dbus::to_dict(&profile("bad2", TESTBENCH, &[]), false);
    d.remove("vpn");
    let e = settings.add_connection(d).await.unwrap_err();
    assert_eq!(method_error(e).1, "[vpn]: setting is missing");

    // The wrong signature altogether.
    let e = w
        .conn
        .call_method(
            Some("org.freedesktop.NetworkManager"),
            "/org/freedesktop/NetworkManager",
            Some("org.freedesktop.NetworkManager"),
            "ActivateConnection",
            &("not", "paths"),
        )
        .await
        .unwrap_err();
    assert_eq!(method_error(e).0, "org.freedesktop.DBus.Error.InvalidArgs");

    // A plugin that is not installed.
    let path = w
        .add_profile(profile("nosuch", "org.example.nosuch", &[]))
        .await;
    let e = w.activate(&path).await.unwrap_err();
    assert_eq!(
        method_error(e),
        (
            "org.freedesktop.NetworkManager.ConnectionNotAvailable".into(),
            "The VPN service 'org.example.nosuch' was not installed.".into()
        )
    );

    // Nothing changed but the one good profile; nothing is active; nothing written to disk.
    let after = w.vpn_profiles().await;
    assert_eq!(after.len(), before.len() + 1);
    assert!(w.vpn_actives().await.is_empty());
    assert!(w.saved_profiles().is_empty());
}

const GOOD: &str = r#"
[connection]
id = "good"
uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
autoconnect = false

[vpn]
service-type = "org.freedesktop.NetworkManager.testbench"
data = { tundev = "tbfile" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_profile_file_is_reported_by_file_and_key_and_the_rest_load() {
    let broken = GOOD.replace("1b4e28ba", "2b4e28ba").replace(
        "autoconnect = false",
        "autoconnect = false\n\n[ipv4]\nroute-metric = \"high\"",
    );
    let w = World::with(DaemonOptions {
        profiles: vec![
            ("good.toml".into(), GOOD.into()),
            ("broken.toml".into(), broken),
        ],
        ..Default::default()
    })
    .await;
    let settings = w.settings().await;
    let list = w.vpn_profiles().await;
    assert_eq!(list.len(), 1);
    let log = w.daemon.log_text();
    let file = w.daemon.profile_dir.join("broken.toml");
    let want = format!(
        "{}: [ipv4] route-metric: expected an integer, found a string",
        file.display()
    );
    assert!(log.contains(&want), "log lacks {want:?}:\n{log}");
    // The good one is whole and activates.
    let path = settings
        .get_connection_by_uuid("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
        .await
        .unwrap();
    let mut w = w;
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_profiles_are_written_0600_and_deleted() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new().await;
    let mut p = profile("saved", TESTBENCH, &[("tundev", "tbsave")]);
    p.vpn.secrets.insert("password".into(), "s3cret".into());
    let path = w
        .settings()
        .await
        .add_connection(tinynm_config::dbus::to_dict(&p, true))
        .await
        .unwrap();
    let file = w
        .daemon
        .profile_dir
        .join(format!("{}.toml", p.connection.uuid));
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let back = tinynm_config::toml_profile::load_file(&file).unwrap();
    assert_eq!(back, p);
    // GetSettings never carries secrets.
    let c = w.profile_object(&path).await;
    let got = c.get_settings().await.unwrap();
    assert!(!got["vpn"].contains_key("secrets"));
    c.delete().await.unwrap();
    assert!(!file.exists());
    assert!(w.vpn_profiles().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_rewrites_the_file_keeps_secrets_and_refuses_bad_settings() {
    let w = World::new().await;
    let mut p = profile("upd", TESTBENCH, &[("tundev", "tbupd")]);
    p.vpn.secrets.insert("password".into(), "s3cret".into());
    let path = w
        .settings()
        .await
        .add_connection(tinynm_config::dbus::to_dict(&p, true))
        .await
        .unwrap();
    let file = w
        .daemon
        .profile_dir
        .join(format!("{}.toml", p.connection.uuid));
    let c = w.profile_object(&path).await;

    // An update without secrets (what clients send) keeps the stored ones.
    let mut q = p.clone();
    q.vpn.data.insert("mtu".into(), "1300".into());
    c.update(tinynm_config::dbus::to_dict(&q, false))
        .await
        .unwrap();
    let on_disk = tinynm_config::toml_profile::load_file(&file).unwrap();
    assert_eq!(
        on_disk.vpn.data.get("mtu").map(String::as_str),
        Some("1300")
    );
    assert_eq!(
        on_disk.vpn.secrets.get("password").map(String::as_str),
        Some("s3cret")
    );
    let got = tinynm_config::dbus::from_dict(&c.get_settings().await.unwrap()).unwrap();
    assert_eq!(got.vpn.data, q.vpn.data);

    // A bad update changes nothing.
    let before = std::fs::read_to_string(&file).unwrap();
    let mut d = tinynm_config::dbus::to_dict(&q, false);
    d.get_mut("ipv6").unwrap().insert(
        "method".into(),
        Variant::from("sideways").try_into_owned().unwrap(),
    );
    let e = c.update(d).await.unwrap_err();
    assert_eq!(
        method_error(e),
        (
            "org.freedesktop.NetworkManager.Settings.InvalidConnection".into(),
            "[ipv6] method: 'sideways' is not a method (expected one of: auto, disabled, ignore, manual, link-local, shared)".into()
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

const KEYFILE: &str = "[connection]\nid=from-nm\nuuid=3c7d9a1e-5b2f-4e8a-9c6d-1f2e3a4b5c6d\ntype=vpn\nautoconnect=false\n\n[vpn]\nservice-type=org.freedesktop.NetworkManager.testbench\ntundev=tbkey\nroutes=10.57.0.0/16\n\n[ipv4]\nmethod=auto\nroute1=10.58.0.0/16\n\n[ipv6]\naddr-gen-mode=stable-privacy\nmethod=auto\n\n[proxy]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networkmanager_keyfiles_are_read_activated_updated_and_deleted() {
    // Types tinynm does not model (Wi-Fi…) are left to other tools.
    let wifi = "[connection]\nid=wifi\nuuid=11111111-2222-3333-4444-555555555555\ntype=wifi\n";
    let broken = KEYFILE
        .replace("3c7d9a1e", "4c7d9a1e")
        .replace("route1=10.58.0.0/16", "route1=10.58.0.0/99");
    let mut w = World::with(DaemonOptions {
        keyfiles: vec![
            ("from-nm.nmconnection".into(), KEYFILE.into()),
            ("wifi.nmconnection".into(), wifi.into()),
            ("broken.nmconnection".into(), broken),
        ],
        ..Default::default()
    })
    .await;
    let keyfile = w.daemon.keyfile_dir.join("from-nm.nmconnection");
    let list = w.vpn_profiles().await;
    assert_eq!(list.len(), 1, "the VPN keyfile only");
    let log = w.daemon.log_text();
    let bad = w.daemon.keyfile_dir.join("broken.nmconnection");
    assert!(
        log.contains(&format!(
            "{}: [ipv4] route1: '10.58.0.0/99' is not ADDRESS/PREFIX",
            bad.display()
        )),
        "{log}"
    );

    let ac = w.activate(&list[0]).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let k = w.kernel();
    assert!(
        k.routes
            .contains(&"10.57.0.0/16 dev tbkey proto static metric 50".to_string()),
        "\n{k}"
    );
    assert!(
        k.routes
            .contains(&"10.58.0.0/16 dev tbkey proto static metric 50".to_string()),
        "\n{k}"
    );

    // A change is saved as a tinynm profile; NetworkManager's file is not rewritten.
    let c = w.profile_object(&list[0]).await;
    let mut p = tinynm_config::dbus::from_dict(&c.get_settings().await.unwrap()).unwrap();
    p.vpn.data.insert("mtu".into(), "1280".into());
    c.update(tinynm_config::dbus::to_dict(&p, false))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&keyfile).unwrap(), KEYFILE);
    let toml = w
        .daemon
        .profile_dir
        .join(format!("{}.toml", p.connection.uuid));
    assert_eq!(
        tinynm_config::toml_profile::load_file(&toml)
            .unwrap()
            .vpn
            .data["mtu"],
        "1280"
    );

    c.delete().await.unwrap();
    assert!(!keyfile.exists() && !toml.exists(), "both files are gone");
    assert!(
        w.daemon.keyfile_dir.join("wifi.nmconnection").exists(),
        "other types are left alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_tree_is_nms() {
    use std::collections::HashMap;
    use zbus::{OwnedObjectPath, OwnedVariant};
    type Tree = HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedVariant>>>;
    let mut w = World::new().await;
    let p = w.add("tree", &[("tundev", "tbtree")]).await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let devices = w.devices(&["lo", "veth0", "veth1", "tbtree"]).await;
    let ip4 = w.ip4_config(&ac).await;
    let reply = w
        .conn
        .call_method(
            Some("org.freedesktop.NetworkManager"),
            "/org/freedesktop",
            Some("org.freedesktop.DBus.ObjectManager"),
            "GetManagedObjects",
            &(),
        )
        .await
        .unwrap();
    let tree: Tree = reply.body().deserialize().unwrap();
    let ifaces = |path: &str| -> Vec<String> {
        let mut v: Vec<String> = tree[&OwnedObjectPath::try_from(path).unwrap()]
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ifaces("/org/freedesktop/NetworkManager"),
        vec!["org.freedesktop.NetworkManager"]
    );
    assert_eq!(
        ifaces("/org/freedesktop/NetworkManager/Settings"),
        vec!["org.freedesktop.NetworkManager.Settings"]
    );
    assert_eq!(
        ifaces("/org/freedesktop/NetworkManager/DnsManager"),
        vec!["org.freedesktop.NetworkManager.DnsManager"]
    );
    assert_eq!(
        ifaces(p.as_str()),
        vec!["org.freedesktop.NetworkManager.Settings.Connection"]
    );
    assert_eq!(
        ifaces(ac.as_str()),
        vec![
            "org.freedesktop.NetworkManager.Connection.Active",
            "org.freedesktop.NetworkManager.VPN.Connection"
        ]
    );
    let manager = &tree[&OwnedObjectPath::try_from("/org/freedesktop/NetworkManager").unwrap()]["org.freedesktop.NetworkManager"];
    let primary =
        OwnedObjectPath::try_from(manager["PrimaryConnection"].try_clone().unwrap()).unwrap();
    assert_eq!(primary, ac, "the VPN with the default route is primary");
    assert_eq!(u32::try_from(&manager["State"]).unwrap(), 70);
    assert_eq!(
        ifaces("/org/freedesktop/NetworkManager/AgentManager"),
        vec!["org.freedesktop.NetworkManager.AgentManager"]
    );

    // Every link is a device with NM's interface set for its kind.
    let dev = |name: &str| devices[name].as_str().to_string();
    let base = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "org.freedesktop.NetworkManager.Device",
            "org.freedesktop.NetworkManager.Device.Statistics",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        v.sort();
        v
    };
    assert_eq!(
        ifaces(&dev("lo")),
        base(&["org.freedesktop.NetworkManager.Device.Loopback"])
    );
    for veth in ["veth0", "veth1"] {
        assert_eq!(
            ifaces(&dev(veth)),
            base(&[
                "org.freedesktop.NetworkManager.Device.Veth",
                "org.freedesktop.NetworkManager.Device.Wired"
            ])
        );
    }
    assert_eq!(
        ifaces(&dev("tbtree")),
        base(&["org.freedesktop.NetworkManager.Device.Tun"])
    );
    let props = |path: &str, iface: &str| {
        tree[&OwnedObjectPath::try_from(path).unwrap()]
            [&format!("org.freedesktop.NetworkManager.{iface}")]
            .iter()
            .map(|(k, v)| (k.clone(), v.try_clone().unwrap()))
            .collect::<HashMap<String, OwnedVariant>>()
    };
    let path_of = |v: &OwnedVariant| OwnedObjectPath::try_from(v.try_clone().unwrap()).unwrap();
    let veth1 = props(&dev("veth1"), "Device");
    assert_eq!(
        <(u32, u32)>::try_from(veth1["StateReason"].try_clone().unwrap()).unwrap(),
        (10, 0),
        "up without an address: unmanaged"
    );
    let veth0 = props(&dev("veth0"), "Device");
    assert_eq!(
        <(u32, u32)>::try_from(veth0["StateReason"].try_clone().unwrap()).unwrap(),
        (100, 0),
        "up with an address: connected (externally)"
    );
    assert_eq!(
        path_of(&props(&dev("veth0"), "Device.Veth")["Peer"]).as_str(),
        dev("veth1")
    );

    // Its external connection: a generated profile, StateFlags as NM's (EXTERNAL…).
    let base_ac = path_of(&veth0["ActiveConnection"]);
    let base_props = props(base_ac.as_str(), "Connection.Active");
    assert_eq!(u32::try_from(&base_props["StateFlags"]).unwrap(), 220);
    assert_eq!(
        String::try_from(base_props["Type"].try_clone().unwrap()).unwrap(),
        "802-3-ethernet"
    );
    let generated = path_of(&base_props["Connection"]);
    assert_eq!(
        u32::try_from(&props(generated.as_str(), "Settings.Connection")["Flags"]).unwrap(),
        15
    );

    // The VPN sits on it: parent device, base connection, and an IP4Config of its own.
    let vpn = props(ac.as_str(), "Connection.Active");
    assert_eq!(
        Vec::<OwnedObjectPath>::try_from(vpn["Devices"].try_clone().unwrap()).unwrap(),
        vec![devices["veth0"].clone()]
    );
    assert_eq!(path_of(&vpn["SpecificObject"]), base_ac);
    let ip4 = props(ip4.as_str(), "IP4Config");
    let addrs =
        Vec::<HashMap<String, OwnedVariant>>::try_from(ip4["AddressData"].try_clone().unwrap())
            .unwrap();
    assert_eq!(
        String::try_from(addrs[0]["address"].try_clone().unwrap()).unwrap(),
        "10.8.0.2"
    );
    let routes =
        Vec::<HashMap<String, OwnedVariant>>::try_from(ip4["RouteData"].try_clone().unwrap())
            .unwrap();
    assert!(
        routes.iter().any(|r| {
            String::try_from(r["dest"].try_clone().unwrap()).unwrap() == "0.0.0.0"
                && u32::try_from(&r["prefix"]).unwrap() == 0
                && u32::try_from(&r["metric"]).unwrap() == 50
        }),
        "{routes:?}"
    );
    assert_eq!(i32::try_from(&ip4["DnsPriority"]).unwrap(), 50);

    // Whatever the lists name is in the tree.
    for list in ["ActiveConnections", "Devices", "AllDevices"] {
        for p in Vec::<OwnedObjectPath>::try_from(manager[list].try_clone().unwrap()).unwrap() {
            assert!(tree.contains_key(&p), "{list} names {p} that is not there");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_clear_secrets() {
    let w = World::new().await;
    let mut p = profile("secretive", TESTBENCH, &[]);
    p.vpn.secrets.insert("password".into(), "s3cret".into());
    let d = tinynm_config::dbus::to_dict(&p, true);
    let path = w.settings().await.add_connection(d).await.unwrap();
    let c = w.profile_object(&path).await;
    let got = c.get_secrets("vpn").await.unwrap();
    let secrets: std::collections::HashMap<String, String> = got["vpn"]["secrets"]
        .try_clone()
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(secrets["password"], "s3cret");
    assert!(
        !c.get_settings().await.unwrap()["vpn"].contains_key("secrets"),
        "GetSettings never carries secrets"
    );
    let e = c.get_secrets("wifi").await.unwrap_err();
    assert_eq!(
        method_error(e),
        (
            "org.freedesktop.NetworkManager.Settings.Connection.SettingNotFound".into(),
            "Connection didn't have requested setting 'wifi'.".into()
        )
    );
    c.clear_secrets().await.unwrap();
    assert!(c.get_secrets("vpn").await.unwrap().is_empty());
    let saved = tinynm_config::toml_profile::load_file(&w.saved_profiles()[0]).unwrap();
    assert!(saved.vpn.secrets.is_empty(), "the file has no secret left");
}
