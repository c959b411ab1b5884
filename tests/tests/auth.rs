//! Authorization: callers of other uids (the test runs them as `nobody` and `nm-openvpn`, users
//! Debian has) are refused what they may not do, with NM's error naming the action, and change
//! nothing; daemon.toml rules let a group do what it lists; `connection.permissions` hides a
//! profile from the users it does not name.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Output;

use common::{TESTBENCH, World};
use tinynm_sandbox::DaemonOptions;

/// (uid, gid) of a user of this system.
fn user(name: &str) -> (u32, u32) {
    let u = nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no user '{name}' on this system"));
    (u.uid.as_raw(), u.gid.as_raw())
}

/// Makes `cmd` run as user `name`, with that user's groups.
fn as_user(cmd: &mut std::process::Command, name: &str) {
    let (uid, gid) = user(name);
    let cname = std::ffi::CString::new(name).unwrap();
    // SAFETY: only raw syscalls between fork and exec (initgroups, setgid, setuid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::initgroups(cname.as_ptr(), gid) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `tinynm ARGS` run as `name`.
fn tinynm_as(w: &World, name: &str, args: &[&str]) -> Output {
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("--bus-address").arg(&w.bus.address).args(args);
    as_user(&mut cmd, name);
    cmd.output().unwrap()
}

/// `nmcli -t general permissions` as `name`.
fn permissions(w: &World, name: &str) -> String {
    let nmcli = tinynm_sandbox::require_tool("nmcli", "network-manager").unwrap();
    let mut cmd = std::process::Command::new(nmcli);
    cmd.args(["-t", "general", "permissions"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
        .env("LIBNM_CLIENT_DEBUG", "warning,error")
        .env("G_DEBUG", "fatal-warnings")
        .env("LANG", "C");
    as_user(&mut cmd, name);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn refused(o: &Output, error: &str, action: &str) {
    assert!(
        !o.status.success(),
        "allowed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e = err(o);
    assert!(e.contains(error), "not {error}: {e}");
    // tinynm's own exit code for "not authorized".
    assert_eq!(o.status.code(), Some(11), "{e}");
    assert!(
        e.contains(&format!("needs org.freedesktop.NetworkManager.{action}")),
        "the action is not named: {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprivileged_caller_is_refused_and_changes_nothing() {
    let mut w = World::new().await;
    let mut p = common::profile("system", TESTBENCH, &[("tundev", "tbauth0")]);
    p.vpn.secrets.insert("password".into(), "s3cret".into());
    let d = tinynm_config::dbus::to_dict(&p, true);
    let path = w.settings().await.add_connection(d).await.unwrap();
    let ac = w.activate(&path).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let files = w.saved_profiles();
    let before = std::fs::read_to_string(&files[0]).unwrap();

    let settings = "org.freedesktop.NetworkManager.Settings.PermissionDenied";
    let manager = "org.freedesktop.NetworkManager.PermissionDenied";
    // Deactivate someone else's connection.
    refused(
        &tinynm_as(&w, "nobody", &["connection", "down", "system"]),
        manager,
        "network-control",
    );
    // Activate.
    let o = tinynm_as(&w, "nobody", &["connection", "up", "system"]);
    refused(&o, manager, "network-control");
    // Add, modify, delete a system profile.
    refused(
        &tinynm_as(
            &w,
            "nobody",
            &[
                "connection",
                "add",
                "--name",
                "mine",
                "--vpn-type",
                TESTBENCH,
            ],
        ),
        settings,
        "settings.modify.system",
    );
    refused(
        &tinynm_as(
            &w,
            "nobody",
            &["connection", "modify", "system", "--data", "mtu=1200"],
        ),
        settings,
        "settings.modify.system",
    );
    refused(
        &tinynm_as(&w, "nobody", &["connection", "delete", "system"]),
        settings,
        "settings.modify.system",
    );
    // Read the secrets.
    refused(
        &tinynm_as(
            &w,
            "nobody",
            &["connection", "show", "system", "--show-secrets"],
        ),
        settings,
        "settings.modify.system",
    );
    // Nothing changed: the VPN is up, the profile and its file as they were, no new profile.
    assert_eq!(w.vpn_actives().await, vec![ac.clone()]);
    assert_eq!(w.vpn_profiles().await, vec![path.clone()]);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), before);
    assert!(w.kernel().link("tbauth0").is_some());
    // What root may do, it still may: read the secrets.
    let o = tinynm_as(
        &w,
        "root",
        &["connection", "show", "system", "--show-secrets"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("password = \"s3cret\""));

    // An agent of another user never hears of root's secret requests.
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("secrets");
    std::fs::write(&f, "vpn.secrets.token:stolen\n").unwrap();
    let (uid, gid) = user("nobody");
    std::os::unix::fs::chown(&f, Some(uid), Some(gid)).unwrap();
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let mut agent = std::process::Command::new(bin);
    agent.arg("--bus-address").arg(&w.bus.address).args([
        "agent",
        "--secrets-file",
        f.to_str().unwrap(),
    ]);
    as_user(&mut agent, "nobody");
    let mut agent = common::spawn_tinynm_agent(&mut agent);
    let q = w
        .add(
            "roots-secret",
            &[
                ("tundev", "tbauth1"),
                ("require-secret", "token"),
                ("token-flags", "1"),
            ],
        )
        .await;
    let ac2 = w.activate(&q).await.unwrap();
    assert_eq!(w.wait_vpn(ac2.as_str(), &[5, 6, 7]).await, (6, 9));
    assert!(
        !w.daemon
            .log_text()
            .contains("asking secret agent 'tinynm-agent'"),
        "nobody's agent was asked for root's secret"
    );
    tinynm_sandbox::terminate(&mut agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_toml_rules_let_a_group_control_the_network() {
    let w = World::with(DaemonOptions {
        config: "[authorization]\nnetwork-control = [\"group:nogroup\"]\n".into(),
        ..Default::default()
    })
    .await;
    w.add("shared", &[("tundev", "tbauth2")]).await;
    // nm-openvpn is not in nogroup: refused.
    refused(
        &tinynm_as(&w, "nm-openvpn", &["connection", "up", "shared"]),
        "org.freedesktop.NetworkManager.PermissionDenied",
        "network-control",
    );
    assert!(w.vpn_actives().await.is_empty());
    // nobody is: allowed, and may take down what it brought up.
    let o = tinynm_as(&w, "nobody", &["connection", "up", "shared"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(w.kernel().link("tbauth2").is_some());
    // GetPermissions says so, per action.
    let out = permissions(&w, "nobody");
    assert!(
        out.lines()
            .any(|l| l == "org.freedesktop.NetworkManager.network-control:yes"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == "org.freedesktop.NetworkManager.settings.modify.system:no"),
        "{out}"
    );
    let o = tinynm_as(&w, "nobody", &["connection", "down", "shared"]);
    assert!(o.status.success(), "{}", err(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_profile_is_invisible_to_other_users() {
    let w = World::with(DaemonOptions {
        config: "[authorization]\nnetwork-control = [\"user:nobody\", \"user:nm-openvpn\"]\n"
            .into(),
        ..Default::default()
    })
    .await;
    let mut p = common::profile("private", TESTBENCH, &[("tundev", "tbauth3")]);
    p.connection.permissions = vec!["user:nm-openvpn".into()];
    w.add_profile(p).await;
    // nobody does not see it, and cannot activate it.
    let o = tinynm_as(&w, "nobody", &["connection", "list"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("private"));
    let o = tinynm_as(&w, "nobody", &["connection", "up", "private"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("unknown connection 'private'"),
        "{}",
        err(&o)
    );
    // Its user sees it and activates it.
    let o = tinynm_as(&w, "nm-openvpn", &["connection", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("private"),
        "{}",
        err(&o)
    );
    let o = tinynm_as(&w, "nm-openvpn", &["connection", "up", "private"]);
    assert!(o.status.success(), "{}", err(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polkit_decides_when_it_is_on_the_bus() {
    // daemon.toml would let nm-openvpn; polkit, present, decides instead.
    let w = World::with(DaemonOptions {
        config: "[authorization]\nnetwork-control = [\"user:nm-openvpn\"]\n".into(),
        ..Default::default()
    })
    .await;
    let _polkit = tinynm_sandbox::polkit::Polkit::start(
        &w.bus,
        "polkit.addRule(function(action, subject) {\n\
         if (action.id == \"org.freedesktop.NetworkManager.network-control\" &&\n\
             subject.isInGroup(\"nogroup\")) {\n\
           return polkit.Result.YES;\n\
         }\n\
         });\n",
    )
    .await
    .expect("polkitd (apt-get install -y polkitd)");
    w.add("via-polkit", &[("tundev", "tbauth4")]).await;
    // Not in the group: NM's policy asks for an administrator (auth_admin), which a caller
    // without a session cannot give: refused.
    refused(
        &tinynm_as(&w, "nm-openvpn", &["connection", "up", "via-polkit"]),
        "org.freedesktop.NetworkManager.PermissionDenied",
        "network-control",
    );
    assert!(w.vpn_actives().await.is_empty());
    let out = permissions(&w, "nm-openvpn");
    assert!(
        out.lines()
            .any(|l| l == "org.freedesktop.NetworkManager.network-control:auth"),
        "polkit's challenge shows as auth: {out}"
    );
    // In the group: polkit says yes.
    let o = tinynm_as(&w, "nobody", &["connection", "up", "via-polkit"]);
    assert!(o.status.success(), "{}\n{}", err(&o), w.daemon.log_text());
    assert!(w.kernel().link("tbauth4").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_modify_own_covers_a_users_private_profiles_only() {
    let w = World::with(DaemonOptions {
        config: "[authorization]\n\"settings.modify.own\" = [\"user:nobody\"]\n".into(),
        ..Default::default()
    })
    .await;
    let add = |name: &str, private: bool| {
        let mut args = vec!["connection", "add", "--name", name, "--vpn-type", TESTBENCH];
        if private {
            args.push("--private");
        }
        tinynm_as(&w, "nobody", &args)
    };
    // A system profile needs settings.modify.system.
    refused(
        &add("public", false),
        "org.freedesktop.NetworkManager.Settings.PermissionDenied",
        "settings.modify.system",
    );
    // A profile of nobody's own needs only settings.modify.own.
    let o = add("mine", true);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(w.vpn_profiles().await.len(), 1);
    // Others do not see it; nobody may delete it.
    let o = tinynm_as(&w, "nm-openvpn", &["connection", "list"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("mine"));
    let o = tinynm_as(&w, "nobody", &["connection", "delete", "mine"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(w.vpn_profiles().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_puts_new_authorization_rules_in_force() {
    let w = World::new().await;
    w.add("later", &[("tundev", "tbauth9")]).await;
    refused(
        &tinynm_as(&w, "nobody", &["connection", "up", "later"]),
        "org.freedesktop.NetworkManager.PermissionDenied",
        "network-control",
    );
    let conf = w.daemon.dir().join("daemon.toml");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\n[authorization]\nnetwork-control = [\"user:nobody\"]\n");
    std::fs::write(&conf, text).unwrap();
    let pid = nix::unistd::Pid::from_raw(w.daemon.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    // Bounded wait for the reload to be in force.
    let mut reloaded = false;
    for _ in 0..200 {
        if w.daemon.log_text().contains("daemon.toml reloaded") {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(reloaded, "{}", w.daemon.log_text());
    let o = tinynm_as(&w, "nobody", &["connection", "up", "later"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(w.kernel().link("tbauth9").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_may_not_take_down_what_another_user_brought_up() {
    // Both may control the network: the ownership rule itself is what refuses.
    let w = World::with(DaemonOptions {
        config: "[authorization]\nnetwork-control = [\"user:nobody\", \"user:nm-openvpn\"]\n"
            .into(),
        ..Default::default()
    })
    .await;
    w.add("owned", &[("tundev", "tbauth8")]).await;
    let o = tinynm_as(&w, "nobody", &["connection", "up", "owned"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = tinynm_as(&w, "nm-openvpn", &["connection", "down", "owned"]);
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains("org.freedesktop.NetworkManager.PermissionDenied")
            && e.contains("was activated by another user"),
        "{e}"
    );
    assert_eq!(w.vpn_actives().await.len(), 1, "still up");
    assert!(w.kernel().link("tbauth8").is_some());
    let o = tinynm_as(&w, "nobody", &["connection", "down", "owned"]);
    assert!(o.status.success(), "{}", err(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_profile_may_name_only_files_that_user_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let mut w = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.path().join("root-only.key");
    let open = dir.path().join("ca.crt");
    std::fs::write(&secret, "root's key\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&open, "a CA anyone may read\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let owned = |id: &str, file: &std::path::Path| {
        let mut p = common::profile(
            id,
            TESTBENCH,
            &[
                ("tundev", "tbfile0"),
                ("never-default", "true"),
                ("key", file.to_str().unwrap()),
            ],
        );
        p.connection.permissions = vec!["user:nobody:".into()];
        p
    };
    // Activated by root, for nobody's profile: root's key is still not used.
    let bad = w.add_profile(owned("nobodys-bad", &secret)).await;
    let err = w.activate(&bad).await.unwrap_err().to_string();
    assert!(
        err.contains("PermissionDenied")
            && err.contains(&format!(
                "vpn.data key: '{}' cannot be read by 'nobody'",
                secret.display()
            )),
        "{err}"
    );
    assert!(w.vpn_actives().await.is_empty(), "nothing was started");
    // Whatever the plugin: an OpenVPN profile (Debian's nm-openvpn-service or tinynm-openvpn
    // would serve it) naming root's key as its CA is refused before any plugin starts.
    let mut ovpn = common::profile(
        "nobodys-openvpn",
        "org.freedesktop.NetworkManager.openvpn",
        &[("remote", "192.0.2.1"), ("ca", secret.to_str().unwrap())],
    );
    ovpn.connection.permissions = vec!["user:nobody:".into()];
    let ovpn = w.add_profile(ovpn).await;
    let err = w.activate(&ovpn).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "vpn.data ca: '{}' cannot be read by 'nobody'",
            secret.display()
        )),
        "{err}"
    );
    // A file nobody can read is fine.
    let good = w.add_profile(owned("nobodys-good", &open)).await;
    let ac = w.activate(&good).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    // A system profile (no permissions) may name root's files.
    let mut sys = owned("system", &secret);
    sys.connection.permissions.clear();
    sys.vpn.data.insert("tundev".into(), "tbfile1".into());
    let sys = w.add_profile(sys).await;
    let ac = w.activate(&sys).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
}
