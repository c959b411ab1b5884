//! tinynmd as a container's entrypoint: `.ovpn` files from a mounted directory imported at
//! start, the VPN up by itself and failing closed, `tinynm wait-online --vpn` for the health
//! check, SIGTERM taking everything down.

mod common;

use std::process::Command;

use common::{LIMIT, World, ping};
use tinynm_sandbox::openvpn::{Auth, Pki, Server};
use tinynm_sandbox::{DaemonOptions, Netns, require_tool};

/// Debian's nm-openvpn-service (its helper on the default socket path, in tinynmd's private
/// `/run`), the `.ovpn` in a directory named by `[import]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovpn_files_imported_at_start_come_up_by_themselves_and_fail_closed() {
    assert!(
        std::path::Path::new("/usr/lib/NetworkManager/VPN/nm-openvpn-service.name").exists(),
        "needs Debian's network-manager-openvpn"
    );
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let config = tmp.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("provider.ovpn"), pki.client_ovpn()).unwrap();
    std::fs::write(config.join("broken.ovpn"), "remote\n").unwrap();
    std::fs::write(config.join("notes.txt"), "not a profile").unwrap();
    let w = World::with_server(DaemonOptions {
        nm_plugin_dirs: true,
        private_run: true,
        config: format!(
            "[import]\nopenvpn = [\"{}/*.ovpn\"]\nkill-switch = true\n",
            config.display()
        ),
        ..Default::default()
    })
    .await;
    let _server = Server::start(w.server.as_ref().unwrap(), &pki, Auth::Tls).unwrap();
    // Another host on the uplink's network, reachable before the VPN.
    let ip = require_tool("ip", "iproute2").unwrap();
    let mut cmd = Command::new(ip);
    cmd.args(["addr", "add", "10.99.0.7/24", "dev", "veth1"]);
    w.server.as_ref().unwrap().prepare(&mut cmd);
    assert!(cmd.status().unwrap().success());
    // The health check: a VPN up, by itself (the server came after tinynmd: retried).
    let bin = tinynm_sandbox::binary("tinynm").unwrap();
    let addr = w.bus.address.clone();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(["--bus-address", &addr, "wait-online", "--vpn", "--timeout"])
            .arg(LIMIT.as_secs().to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let log = w.daemon.log_text();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{log}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        log.contains("imported ") && log.contains("as 'provider'"),
        "{log}"
    );
    // The broken file is named with its line; the others still came.
    assert!(
        log.contains(&format!(
            "cannot import {}: line 1:",
            config.join("broken.ovpn").display()
        )),
        "{log}"
    );
    assert!(ping(&w.ns, "10.200.0.1", 5), "through the tunnel");
    // Failing closed: the uplink's other hosts are not reached any more.
    assert!(
        !ping(&w.ns, "10.99.0.7", 1),
        "the kill switch lets the uplink through"
    );
    // The inline key was written 0600 in tinynmd's state directory.
    use std::os::unix::fs::PermissionsExt;
    let key = w.daemon.dir().join("state/import/provider-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The profile is tinynmd's for this run only: nothing was written to the profile directory.
    assert!(w.saved_profiles().is_empty(), "{:?}", w.saved_profiles());
}

/// The static binaries `scripts/run test` builds (`TINYNM_STATIC_DIR`).
fn static_dir() -> std::path::PathBuf {
    let d = std::env::var("TINYNM_STATIC_DIR").unwrap_or_else(|_| {
        panic!(
            "TINYNM_STATIC_DIR is not set: run the suite with `bash scripts/run test`, which builds \
             the static release binaries this test puts in a root file system"
        )
    });
    std::path::PathBuf::from(d)
}

/// Copies `src` to the same path under `root`, with its directories.
fn put(root: &std::path::Path, src: &std::path::Path, at: &str) {
    let dst = root.join(at.trim_start_matches('/'));
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
}

/// `program` at `at` under `root`, with the libraries it links at their paths.
fn put_linked(root: &std::path::Path, program: &std::path::Path, at: &str) {
    put(root, program, at);
    let ldd = Command::new("ldd").arg(program).output().unwrap();
    for l in String::from_utf8_lossy(&ldd.stdout).lines() {
        let lib = l
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(std::path::PathBuf::from);
        if let Some(lib) = lib {
            let real = std::fs::canonicalize(&lib).unwrap();
            put(root, &real, lib.to_str().unwrap());
        }
    }
}

/// Debian's nm-openvpn-service and its helper, with what they link and their `.name` file, in
/// `root` (NM's plugin directory).
fn put_debian_plugin(root: &std::path::Path) {
    let name = "/usr/lib/NetworkManager/VPN/nm-openvpn-service.name";
    assert!(
        std::path::Path::new(name).exists(),
        "needs Debian's network-manager-openvpn"
    );
    put(root, std::path::Path::new(name), name);
    for p in [
        "/usr/lib/NetworkManager/nm-openvpn-service",
        "/usr/lib/NetworkManager/nm-openvpn-service-openvpn-helper",
    ] {
        put_linked(root, std::path::Path::new(p), p);
    }
    // Debian's base has it; the plugin puts its management socket under /var/run.
    std::fs::create_dir_all(root.join("var")).unwrap();
    std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
    // The user openvpn drops to, as the package's installation makes it (its ids as here).
    let line = |file: &str| {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("nm-openvpn:"))
            .unwrap_or_else(|| panic!("no nm-openvpn in {file}"))
            .to_string()
    };
    std::fs::write(
        root.join("etc/passwd"),
        format!("root:x:0:0:root:/root:/bin/sh\n{}\n", line("/etc/passwd")),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        format!("root:x:0:\n{}\n", line("/etc/group")),
    )
    .unwrap();
    let chroot = root.join("var/lib/openvpn/chroot");
    std::fs::create_dir_all(&chroot).unwrap();
    let meta = std::fs::metadata("/var/lib/openvpn/chroot").unwrap();
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::chown(&chroot, Some(meta.uid()), Some(meta.gid())).unwrap();
}

/// A container's root file system under `dir/root`: tinynm's static binaries, `openvpn` and the
/// libraries it links at their paths, tinynm-openvpn as the OpenVPN plugin, `daemon_toml`, the
/// PKI's `.ovpn` in `/config`, and mount points (`/proc`, `/run`, `/tmp`, `/dev/net/tun`,
/// `/dev/null`, `/etc/resolv.conf`); no `/dev/urandom`, no dbus-daemon.
fn rootfs(dir: &std::path::Path, pki: &Pki, daemon_toml: &str) -> std::path::PathBuf {
    let bins = static_dir();
    let root = dir.join("root");
    for b in [
        "tinynmd",
        "tinynm",
        "tinynm-openvpn",
        "tinynm-openvpn-helper",
    ] {
        put(&root, &bins.join(b), &format!("/usr/bin/{b}"));
    }
    // openvpn and what it links, at the same paths.
    let openvpn = require_tool("openvpn", "openvpn").unwrap();
    put_linked(&root, &openvpn, "/usr/sbin/openvpn");
    let vpn_dir = root.join("usr/lib/tinynm/VPN");
    std::fs::create_dir_all(&vpn_dir).unwrap();
    std::fs::write(
        vpn_dir.join("nm-openvpn-service.name"),
        tinynm_sandbox::openvpn::name_file(std::path::Path::new("/usr/bin/tinynm-openvpn")),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc/tinynm")).unwrap();
    std::fs::write(root.join("etc/tinynm/daemon.toml"), daemon_toml).unwrap();
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::write(root.join("config/provider.ovpn"), pki.client_ovpn()).unwrap();
    for d in ["proc", "run", "tmp", "dev/net"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("etc/resolv.conf"), "").unwrap();
    std::fs::write(root.join("dev/net/tun"), "").unwrap();
    std::fs::write(root.join("dev/null"), "").unwrap();
    root
}

/// A container as a runtime makes one, built by the test: a root file system holding only
/// tinynm's static binaries, `openvpn` and the libraries it links (no dbus-daemon, no /dev
/// but the tun device, no systemd), entered with chroot in private mount and PID namespaces
/// over the client's network namespace; `/etc/resolv.conf` bind-mounted from outside; the
/// `.ovpn` in `/config`. tinynmd (`bus = "embedded"`) comes up, imports and activates the VPN;
/// nmcli and tinynm from outside reach it over the socket; packets cross the tunnel; the
/// VPN's DNS is in the bind-mounted file, which SIGTERM puts back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_of_static_binaries_runs_the_vpn_on_its_embedded_bus() {
    container_world(false).await;
}

/// The same with Debian's nm-openvpn-service and its helper (and the libraries they link) in
/// the container as the OpenVPN plugin: the helper finds the embedded bus at the default path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debians_openvpn_plugin_runs_in_the_container_on_its_embedded_bus() {
    container_world(true).await;
}

async fn container_world(debian: bool) {
    tinynm_sandbox::require_root("the container test").unwrap();
    let ns = Netns::new().unwrap();
    let server_ns = ns.add_server().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let _server = Server::start(&server_ns, &pki, Auth::Tls).unwrap();
    let plugins = if debian {
        "plugin-dirs = []\nnm-plugin-dirs = true\n"
    } else {
        "plugin-dirs = [\"/usr/lib/tinynm/VPN\"]\nnm-plugin-dirs = false\n"
    };
    let root = rootfs(
        tmp.path(),
        &pki,
        &format!(
            "bus = \"embedded\"\nkeyfile-dirs = []\n{plugins}log-level = \"debug\"\n\
             [dns]\nbackend = \"file\"\n[import]\nopenvpn = [\"/config/*.ovpn\"]\n"
        ),
    );
    if debian {
        put_debian_plugin(&root);
    }
    assert!(!root.join("dev/urandom").exists() && !root.join("usr/bin/dbus-daemon").exists());
    // The runtime's resolv.conf, bind-mounted over the container's.
    let resolv = tmp.path().join("resolv.conf");
    let original = "# written by the container runtime\nnameserver 10.99.0.254\noptions ndots:0\n";
    std::fs::write(&resolv, original).unwrap();
    let log = tmp.path().join("container.log");
    let script = format!(
        "set -e\nR={root}\nmount --make-rprivate /\nmount -t proc proc $R/proc\n\
         mount -t tmpfs tmpfs $R/run\nmount -t tmpfs tmpfs $R/tmp\n\
         mount --bind {resolv} $R/etc/resolv.conf\nmount --bind /dev/net/tun $R/dev/net/tun\nmount --bind /dev/null $R/dev/null\n\
         exec chroot $R /usr/bin/tinynmd --config /etc/tinynm/daemon.toml\n",
        root = root.display(),
        resolv = resolv.display()
    );
    let mut cmd = Command::new(require_tool("unshare", "util-linux").unwrap());
    cmd.args([
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "sh",
        "-c",
        &script,
    ])
    .stdout(std::fs::File::create(&log).unwrap())
    .stderr(std::fs::File::create(tmp.path().join("container.err")).unwrap());
    ns.prepare(&mut cmd);
    let mut container = Container(cmd.spawn().unwrap());
    let logged = || {
        format!(
            "{}{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(tmp.path().join("container.err")).unwrap_or_default()
        )
    };
    // tinynmd is PID 1's… child of unshare: its socket is reached through its root.
    let deadline = std::time::Instant::now() + LIMIT;
    let (pid, socket) = loop {
        let found = common::descendants_named(container.0.id(), "tinynmd");
        if let Some(pid) = found.first() {
            let s = format!("/proc/{pid}/root/run/dbus/system_bus_socket");
            if std::path::Path::new(&s).exists() {
                break (*pid, s);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no embedded bus within {LIMIT:?}\n{}",
            logged()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let address = format!("unix:path={socket}");
    // The clients run outside, in the host's PID namespace, which the container cannot see
    // (SO_PEERCRED gives busd pid 0 for them: vendor/zbus).
    let tinynm = |args: &[&str]| {
        Command::new(static_dir().join("tinynm"))
            .args(["--bus-address", &address])
            .args(args)
            .output()
            .unwrap()
    };
    let o = tinynm(&[
        "wait-online",
        "--vpn",
        "--timeout",
        &LIMIT.as_secs().to_string(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        logged()
    );
    let plugin = if debian {
        "started /usr/lib/NetworkManager/nm-openvpn-service (pid"
    } else {
        "started /usr/bin/tinynm-openvpn (pid"
    };
    assert!(logged().contains(plugin), "{}", logged());
    let o = tinynm(&["connection", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("provider ")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = common::nmcli_on(
        &address,
        &["-t", "-f", "NAME,TYPE", "connection", "show", "--active"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l == "provider:vpn"), "{out}");
    assert!(
        ping(&ns, "10.200.0.1", 5),
        "through the tunnel\n{}",
        logged()
    );
    // nmcli takes it down (the runtime's file comes back), tinynm brings it up again.
    let o = common::nmcli_on(&address, &["connection", "down", "provider"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let end = std::time::Instant::now() + LIMIT;
    while std::fs::read_to_string(&resolv).unwrap() != original {
        assert!(
            std::time::Instant::now() < end,
            "resolv.conf not restored\n{}",
            logged()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let o = tinynm(&["connection", "up", "provider"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        logged()
    );
    assert!(
        ping(&ns, "10.200.0.1", 5),
        "through the tunnel again\n{}",
        logged()
    );
    // The VPN's DNS server, in the runtime's bind-mounted file.
    let text = std::fs::read_to_string(&resolv).unwrap();
    assert!(text.contains("nameserver 10.8.0.1"), "{text}");
    // SIGTERM: everything down, the file back as the runtime wrote it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let end = std::time::Instant::now() + LIMIT;
    while container.0.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < end,
            "tinynmd did not end\n{}",
            logged()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read_to_string(&resolv).unwrap(), original);
    let k = ns.snapshot().unwrap();
    assert!(!k.links.iter().any(|l| l.name.starts_with("tun")), "{k}");
    let text = logged();
    assert!(!text.contains("panicked"), "{text}");
}

/// The container's processes, ended (by PID) however the test ends.
struct Container(std::process::Child);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Podman, with its state in the test's directory (`--root`, `--runroot`, the vfs driver)
/// and runc (crun refuses this machine's hybrid cgroups); the machine's hard limits as the
/// container's (podman's defaults are above them).
fn podman(dir: &std::path::Path) -> Command {
    let mut c = Command::new(require_tool("podman", "podman").unwrap());
    c.arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .args([
            "--storage-driver",
            "vfs",
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]);
    c
}

fn ok(mut c: Command, what: &str) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The container removed, however the test ends.
struct Podman(std::path::PathBuf);

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = podman(&self.0)
            .args(["rm", "-f", "-t", "0", "vpn"])
            .output();
    }
}

/// The same image in a real container runtime (Debian's podman): built FROM scratch out of the
/// root file system (no image is pulled), run as the README shows (NET_ADMIN, the tun device,
/// the `.ovpn` directory mounted at `/config`, the runtime's resolv.conf bind-mounted), with
/// the shipped `packaging/container/daemon.toml`; the client namespace is its network (podman
/// runs in it, `--network host`). `podman exec … tinynm wait-online --vpn` is the health
/// check; `podman stop` is SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_in_podman_as_a_vpn_sidecar() {
    tinynm_sandbox::require_root("the podman test").unwrap();
    require_tool("runc", "runc").unwrap();
    let ns = Netns::new().unwrap();
    let server_ns = ns.add_server().unwrap();
    let ip = require_tool("ip", "iproute2").unwrap();
    let mut add = Command::new(&ip);
    add.args(["addr", "add", "10.99.0.7/24", "dev", "veth1"]);
    server_ns.prepare(&mut add);
    assert!(add.status().unwrap().success());
    assert!(ping(&ns, "10.99.0.7", 2), "the uplink's other host, before");
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path()).unwrap();
    let _server = Server::start(&server_ns, &pki, Auth::Tls).unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/container/daemon.toml"),
    )
    .unwrap();
    let root = rootfs(tmp.path(), &pki, &shipped);
    // /config comes from the host, as a volume.
    let config = tmp.path().join("config");
    std::fs::rename(root.join("config"), &config).unwrap();
    std::fs::create_dir(root.join("config")).unwrap();
    std::fs::write(
        tmp.path().join("Containerfile"),
        "FROM scratch\nCOPY root/ /\n\
         ENTRYPOINT [\"/usr/bin/tinynmd\", \"--config\", \"/etc/tinynm/daemon.toml\"]\n",
    )
    .unwrap();
    let mut build = podman(tmp.path());
    build
        .args(["build", "-q", "-t", "tinynm-test", "-f"])
        .arg(tmp.path().join("Containerfile"))
        .arg(tmp.path());
    ok(build, "podman build");
    let resolv = tmp.path().join("resolv.conf");
    let original = "# written by the container runtime\nnameserver 10.99.0.254\n";
    std::fs::write(&resolv, original).unwrap();
    let _guard = Podman(tmp.path().to_path_buf());
    let mut run = podman(tmp.path());
    run.args([
        "run",
        "-d",
        "--name",
        "vpn",
        "--network",
        "host",
        "--no-hosts",
        "--cap-add",
        "NET_ADMIN",
        "--device",
        "/dev/net/tun",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-v",
    ])
    .arg(format!("{}:/config:ro", config.display()))
    .arg("-v")
    .arg(format!("{}:/etc/resolv.conf", resolv.display()))
    .arg("tinynm-test");
    ns.prepare(&mut run);
    ok(run, "podman run");
    let logs = || {
        let o = podman(tmp.path()).args(["logs", "vpn"]).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let mut health = podman(tmp.path());
    health.args([
        "exec",
        "vpn",
        "/usr/bin/tinynm",
        "wait-online",
        "--vpn",
        "--timeout",
    ]);
    health.arg(LIMIT.as_secs().to_string());
    let o = health.output().unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        logs()
    );
    assert!(ping(&ns, "10.200.0.1", 5), "through the tunnel\n{}", logs());
    assert!(
        !ping(&ns, "10.99.0.7", 1),
        "the kill switch lets the uplink through"
    );
    let text = std::fs::read_to_string(&resolv).unwrap();
    assert!(text.contains("nameserver 10.8.0.1"), "{text}");
    let mut stop = podman(tmp.path());
    stop.args(["stop", "-t", "20", "vpn"]);
    ok(stop, "podman stop");
    assert_eq!(
        std::fs::read_to_string(&resolv).unwrap(),
        original,
        "{}",
        logs()
    );
    let text = logs();
    assert!(text.contains("shutting down"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
