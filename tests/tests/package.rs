//! The Debian package (`bash scripts/run deb`, dpkg-deb): installed by dpkg into a throwaway
//! root, its files are there, its static binaries run in that root (chroot: no libraries
//! there), nothing was started, and remove and purge take back what they should.

use std::path::{Path, PathBuf};
use std::process::Command;

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// dpkg on the throwaway root, its maintainer scripts run outside a chroot with DPKG_ROOT set.
fn dpkg(root: &Path, args: &[&str]) -> String {
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg("--force-script-chrootless")
        .args(args))
}

#[test]
fn the_package_installs_into_a_root_runs_there_and_purges() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test installs a package with dpkg: run it as root"
    );
    let Some(bin) = std::env::var_os("TINYNM_STATIC_DIR") else {
        panic!(
            "TINYNM_STATIC_DIR is not set: run the suite with `bash scripts/run test`, which builds the static release binaries the package holds"
        );
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let out = run(Command::new("bash")
        .current_dir(&repo)
        .args(["scripts/run", "deb"])
        .arg(format!("--from={}", PathBuf::from(bin).display()))
        .arg(format!("OUT={}", tmp.path().display())));
    let deb = PathBuf::from(out.trim());
    assert!(deb.exists(), "{out}");
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    for field in [
        "Package: tinynm",
        "Version: 0.1.0",
        "Suggests: network-manager-openvpn",
    ] {
        assert!(info.contains(field), "{field}: {info}");
    }
    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    assert!(
        !listing.contains("system-services/org.freedesktop.NetworkManager.service"),
        "the activation file is network-manager's: {listing}"
    );

    // A throwaway root with an empty dpkg database.
    let root = tmp.path().join("root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    dpkg(&root, &["--install", deb.to_str().unwrap()]);
    let status = dpkg(&root, &["--status", "tinynm"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    {
        use std::os::unix::fs::PermissionsExt;
        for (f, mode) in [
            ("usr/sbin/tinynmd", 0o755),
            ("usr/bin/tinynm", 0o755),
            ("usr/libexec/tinynm/tinynm-openvpn", 0o755),
            ("usr/lib/tinynm/VPN/tinynm-openvpn.name", 0o644),
            ("lib/systemd/system/tinynmd.service", 0o644),
            ("usr/share/dbus-1/system.d/tinynm.conf", 0o644),
            ("usr/share/man/man1/tinynm.1", 0o644),
            ("usr/share/man/man5/tinynm-daemon.toml.5", 0o644),
            ("usr/share/man/man8/tinynmd.8", 0o644),
            ("usr/share/bash-completion/completions/tinynm", 0o644),
            ("etc/tinynm/daemon.toml", 0o644),
            // Made by postinst.
            ("etc/tinynm/connections", 0o700),
            ("var/lib/tinynm/leases", 0o755),
        ] {
            let m = std::fs::metadata(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(m.permissions().mode() & 0o777, mode, "{f}");
        }
    }
    let conffiles = dpkg(&root, &["--status", "tinynm"]);
    assert!(conffiles.contains("/etc/tinynm/daemon.toml"), "{conffiles}");
    // Static: they run in a root that has no libraries at all.
    assert!(!root.join("lib/x86_64-linux-gnu/libc.so.6").exists());
    let v = run(Command::new("chroot")
        .arg(&root)
        .args(["/usr/sbin/tinynmd", "--version"]));
    assert_eq!(v.trim(), "tinynmd 0.1.0");
    let v = run(Command::new("chroot")
        .arg(&root)
        .args(["/usr/bin/tinynm", "--version"]));
    assert_eq!(v.trim(), "tinynm 0.1.0");

    // Remove: the binaries go, the admin's daemon.toml and profiles stay; purge: all of it.
    std::fs::write(root.join("etc/tinynm/connections/x.toml"), "# a profile\n").unwrap();
    dpkg(&root, &["--remove", "tinynm"]);
    assert!(!root.join("usr/sbin/tinynmd").exists());
    assert!(root.join("etc/tinynm/daemon.toml").exists());
    assert!(root.join("etc/tinynm/connections/x.toml").exists());
    dpkg(&root, &["--purge", "tinynm"]);
    assert!(!root.join("etc/tinynm").exists());
    assert!(!root.join("var/lib/tinynm").exists());
}
