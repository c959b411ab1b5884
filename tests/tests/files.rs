//! Profile files as NetworkManager treats them: a file others could have written (or, for a
//! keyfile, read), or one not owned by root, is refused with a message naming it; a symlink is
//! judged by what it points to; profiles are written through unpredictable, exclusive
//! temporary files, so a planted symlink redirects nothing.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{TESTBENCH, World, profile};

fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn toml(id: &str, dev: &str) -> String {
    tinynm_config::toml_profile::to_toml_string(&profile(id, TESTBENCH, &[("tundev", dev)]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_profile_files_are_refused_by_name_and_the_others_load() {
    let w = World::new().await;
    let dir = &w.daemon.profile_dir;
    let outside = tempfile::tempdir().unwrap();
    write_mode(&dir.join("ok.toml"), &toml("ok", "tbf1"), 0o600);
    write_mode(&dir.join("readable.toml"), &toml("readable", "tbf2"), 0o644);
    write_mode(&dir.join("writable.toml"), &toml("writable", "tbf3"), 0o666);
    let theirs = dir.join("theirs.toml");
    write_mode(&theirs, &toml("theirs", "tbf4"), 0o600);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    std::os::unix::fs::chown(&theirs, Some(nobody.uid.as_raw()), None).unwrap();
    // A symlink is as good as what it points to.
    let bad_target = outside.path().join("bad.toml");
    write_mode(&bad_target, &toml("via-bad-link", "tbf5"), 0o666);
    std::os::unix::fs::symlink(&bad_target, dir.join("bad-link.toml")).unwrap();
    let good_target = outside.path().join("good.toml");
    write_mode(&good_target, &toml("via-good-link", "tbf6"), 0o600);
    std::os::unix::fs::symlink(&good_target, dir.join("good-link.toml")).unwrap();
    // A NetworkManager keyfile others may read is refused, as NM refuses it.
    let key = "[connection]\nid=nm-readable\nuuid=3c7d9a1e-5b2f-4e8a-9c6d-1f2e3a4b5c6e\ntype=vpn\n\n[vpn]\nservice-type=org.freedesktop.NetworkManager.testbench\n";
    let keyfile = w.daemon.keyfile_dir.join("nm-readable.nmconnection");
    write_mode(&keyfile, key, 0o644);

    w.settings().await.reload_connections().await.unwrap();
    let mut ids = Vec::new();
    for p in w.vpn_profiles().await {
        let c = w.profile_object(&p).await;
        let d = c.get_settings().await.unwrap();
        ids.push(String::try_from(d["connection"]["id"].try_clone().unwrap()).unwrap());
    }
    ids.sort();
    assert_eq!(ids, ["ok", "readable", "via-good-link"]);
    let log = w.daemon.log_text();
    for (file, why) in [
        (
            dir.join("writable.toml"),
            "insecure, not loaded: mode 666 lets others change it: chmod 644",
        ),
        (theirs.clone(), "insecure, not loaded: owned by uid"),
        (dir.join("bad-link.toml"), "insecure, not loaded: mode 666"),
        (
            keyfile.clone(),
            "insecure, not loaded: mode 644 lets others read or change it: chmod 600",
        ),
    ] {
        let needle = format!("{}: {why}", file.display());
        assert!(log.contains(&needle), "log lacks {needle:?}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_where_a_profile_is_written_redirects_nothing() {
    let w = World::new().await;
    let p = profile("planted", TESTBENCH, &[("tundev", "tbf7")]);
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    // Where a predictable temporary name would be: the file's name, `.tmp` and the daemon's pid.
    let name = format!("{}.toml", p.connection.uuid);
    for guess in [
        format!(".{name}.tmp{}", w.daemon.pid()),
        format!(".{name}.tmp"),
    ] {
        std::os::unix::fs::symlink(&victim, w.daemon.profile_dir.join(guess)).unwrap();
    }
    let mut with_secret = p.clone();
    with_secret
        .vpn
        .secrets
        .insert("password".into(), "s3cret".into());
    w.settings()
        .await
        .add_connection(tinynm_config::dbus::to_dict(&with_secret, true))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let file = w.daemon.profile_dir.join(&name);
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(meta.is_file(), "the profile is a file of its own");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}
