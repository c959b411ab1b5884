//! Throwaway worlds for tinynmd: a network namespace of its own, a private `dbus-daemon` with
//! its own config, and a tinynmd with its own profile and plugin directories. The demo, the
//! integration tests and the benches all run in these. Everything is removed on drop.

pub mod dhcp;
pub mod embedded;
pub mod netns;
pub mod ocserv;
pub mod openvpn;
pub mod polkit;
pub mod reference;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use netns::{Kernel, Netns, require_root};
/// The client proxies (the `tinynm-client` crate), where the tests have always found them.
pub use tinynm_client as nm;

/// Why a sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Needs root.
    #[error("{0} needs root: run as root (tests and the demo create network namespaces)")]
    NotRoot(String),
    /// A program is missing.
    #[error("'{program}' was not found: install it with `apt-get install -y {package}`")]
    MissingTool {
        /// The program.
        program: String,
        /// The Debian package that has it.
        package: String,
    },
    /// One of our binaries is missing.
    #[error(
        "{0} was not found next to this program: build it first with `cargo build --workspace`"
    )]
    MissingBinary(PathBuf),
    /// A system call failed.
    #[error("{0}: {1}")]
    Sys(&'static str, #[source] std::io::Error),
    /// Setting up failed.
    #[error("sandbox setup: {0}")]
    Setup(String),
}

/// Finds a program on PATH, or says which Debian package provides it.
pub fn require_tool(program: &str, package: &str) -> Result<PathBuf, SandboxError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]) {
        let p = dir.join(program);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(SandboxError::MissingTool {
        program: program.into(),
        package: package.into(),
    })
}

/// Where cargo put our binaries: next to the running program, or one level up from `deps/`.
pub fn binary(name: &str) -> Result<PathBuf, SandboxError> {
    let exe = std::env::current_exe().map_err(|e| SandboxError::Sys("current_exe", e))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(SandboxError::MissingBinary(p))
    }
}

/// A private `dbus-daemon` with a permissive config of its own.
pub struct Bus {
    child: Child,
    /// Its address, for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub address: String,
    _dir: tempfile::TempDir,
}

const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
  <limit name="max_connections_per_user">4096</limit>
  <limit name="max_completed_connections">4096</limit>
  <limit name="max_match_rules_per_connection">65536</limit>
  <limit name="max_replies_per_connection">8192</limit>
</busconfig>
"#;

impl Bus {
    /// dbus-daemon's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts the bus and waits until it listens.
    pub fn start() -> Result<Bus, SandboxError> {
        let prog = require_tool("dbus-daemon", "dbus")?;
        let dir = tempfile::Builder::new()
            .prefix("tinynm-bus")
            .tempdir()
            .map_err(|e| SandboxError::Sys("tempdir", e))?;
        let sock = dir.path().join("system_bus_socket");
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            BUS_CONFIG.replace("@SOCKET@", &sock.display().to_string()),
        )
        .map_err(|e| SandboxError::Sys("write bus.conf", e))?;
        let mut child = Command::new(prog)
            // A group of its own: a terminal's Ctrl-C is for whoever owns this sandbox, which
            // then stops the bus in its own time.
            .process_group(0)
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .arg("--print-address")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Unprivileged-limit warnings only; a failure to start shows as no address.
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| SandboxError::Sys("spawn dbus-daemon", e))?;
        // dbus-daemon prints its address once it listens.
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let address = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if !l.trim().is_empty() => l.trim().to_string(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SandboxError::Setup(
                    "dbus-daemon did not start listening within 10 s".into(),
                ));
            }
        };
        Ok(Bus {
            child,
            address,
            _dir: dir,
        })
    }

    /// Ends the bus (SIGKILL to the dbus-daemon we started, by its pid), as if it crashed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The socket path (for programs that only use the default system bus socket).
    pub fn socket(&self) -> PathBuf {
        self._dir.path().join("system_bus_socket")
    }

    /// A client connection to this bus.
    pub async fn connect(&self) -> zbus::Result<zbus::Connection> {
        zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A process's resident memory (VmRSS), KiB.
pub fn rss_of(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// A KiB figure of `/proc/PID/status`: `VmRSS`, `VmHWM`, `RssAnon`, `RssFile`…
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Ends a child we started, by its PID: SIGTERM, a bounded wait, then SIGKILL.
pub fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `name` has an owner on the bus (subscribing first, so it cannot be missed).
pub async fn wait_for_name(
    conn: &zbus::Connection,
    name: &str,
    limit: Duration,
) -> Result<String, SandboxError> {
    use futures::StreamExt;
    let dbus = zbus::fdo::DBusProxy::new(conn)
        .await
        .map_err(|e| SandboxError::Setup(e.to_string()))?;
    let mut changes = dbus
        .receive_name_owner_changed_with_args(&[(0, name)])
        .await
        .map_err(|e| SandboxError::Setup(e.to_string()))?;
    let bus_name: zbus::names::BusName<'_> = name
        .try_into()
        .map_err(|e: zbus::Error| SandboxError::Setup(e.to_string()))?;
    if let Ok(o) = dbus.get_name_owner(bus_name).await {
        return Ok(o.to_string());
    }
    let wait = async {
        while let Some(sig) = changes.next().await {
            if let Ok(a) = sig.args()
                && let Some(o) = a.new_owner().as_ref()
            {
                return Some(o.to_string());
            }
        }
        None
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(Some(o)) => Ok(o),
        _ => Err(SandboxError::Setup(format!(
            "{name} did not appear on the bus within {limit:?}"
        ))),
    }
}

/// The `.name` files of the test-bench plugin, pointing at `program`.
pub fn write_testbench_plugins(dir: &Path, program: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (file, service) in [
        ("testbench", "org.freedesktop.NetworkManager.testbench"),
        (
            "testbench-silent",
            "org.freedesktop.NetworkManager.testbench-silent",
        ),
        (
            "testbench-crash",
            "org.freedesktop.NetworkManager.testbench-crash",
        ),
    ] {
        std::fs::write(
            dir.join(format!("nm-{file}-service.name")),
            format!(
                "[VPN Connection]\nname={file}\nservice={service}\nprogram={}\nsupports-multiple-connections=true\n",
                program.display()
            ),
        )?;
    }
    Ok(())
}

/// Between fork and exec: a mount namespace of the child's own, nothing of which propagates
/// back to the host. Only raw syscalls.
pub(crate) fn private_mount_namespace() -> std::io::Result<()> {
    let root = c"/";
    // SAFETY: unshare and mount with valid C strings and null pointers, as documented.
    let r = unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            -1
        } else {
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        }
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes `cmd` start in a mount namespace of its own, with a tmpfs over `/run` holding
/// `/run/dbus/system_bus_socket` (a link to `socket`) and an empty `/run/NetworkManager`.
pub fn private_run_for(cmd: &mut Command, socket: &Path) -> Result<(), SandboxError> {
    private_run_with_journal(cmd, socket, None)
}

/// [`private_run_for`], and with `journal`, `/run/systemd/journal/socket` there is that socket
/// (journald's, for a test to read what a program logs to the journal).
pub fn private_run_with_journal(
    cmd: &mut Command,
    socket: &Path,
    journal: Option<&Path>,
) -> Result<(), SandboxError> {
    use std::ffi::CString;
    let c = |s: &str| CString::new(s).expect("no NUL");
    let target = CString::new(socket.as_os_str().as_encoded_bytes())
        .map_err(|_| SandboxError::Setup("bus socket path has a NUL".into()))?;
    let journal = journal
        .map(|j| CString::new(j.as_os_str().as_encoded_bytes()))
        .transpose()
        .map_err(|_| SandboxError::Setup("journal socket path has a NUL".into()))?;
    let (systemd, journal_dir, journal_link) = (
        c("/run/systemd"),
        c("/run/systemd/journal"),
        c("/run/systemd/journal/socket"),
    );
    let (run, tmpfs, dbus, link, nm, opts) = (
        c("/run"),
        c("tmpfs"),
        c("/run/dbus"),
        c("/run/dbus/system_bus_socket"),
        c("/run/NetworkManager"),
        c("mode=0755"),
    );
    // SAFETY: between fork and exec only raw syscalls run (unshare, mount, mkdir, symlink), on
    // strings built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let check = |r: libc::c_int| {
                if r == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            // Nothing mounted from here on propagates to the host.
            private_mount_namespace()?;
            check(libc::mount(
                tmpfs.as_ptr(),
                run.as_ptr(),
                tmpfs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            ))?;
            check(libc::mkdir(dbus.as_ptr(), 0o755))?;
            check(libc::symlink(target.as_ptr(), link.as_ptr()))?;
            if let Some(j) = &journal {
                check(libc::mkdir(systemd.as_ptr(), 0o755))?;
                check(libc::mkdir(journal_dir.as_ptr(), 0o755))?;
                check(libc::symlink(j.as_ptr(), journal_link.as_ptr()))?;
            }
            check(libc::mkdir(nm.as_ptr(), 0o755))
        });
    }
    Ok(())
}

/// A running tinynmd in a namespace, on a bus, with directories of its own.
pub struct Daemon {
    child: Child,
    /// Profile directory.
    pub profile_dir: PathBuf,
    /// Plugin directory.
    pub plugin_dir: PathBuf,
    /// NetworkManager keyfile directory.
    pub keyfile_dir: PathBuf,
    /// Its log (stderr).
    pub log: PathBuf,
    dir: tempfile::TempDir,
    tinynmd: PathBuf,
    launch: Launch,
    /// From its (last) spawn to `org.freedesktop.NetworkManager` owned, as a client already on
    /// the bus sees it.
    pub startup: Duration,
}

/// A client on the bus waiting for `org.freedesktop.NetworkManager` to get an owner, subscribed
/// before tinynmd is spawned so that the start-up is timed from the spawn.
struct NameWatch {
    _conn: zbus::Connection,
    changes: zbus::fdo::NameOwnerChangedStream,
}

impl NameWatch {
    async fn new(bus: &Bus) -> Result<NameWatch, SandboxError> {
        let setup = |e: zbus::Error| SandboxError::Setup(e.to_string());
        let conn = bus
            .connect()
            .await
            .map_err(|e| SandboxError::Setup(e.to_string()))?;
        let changes = zbus::fdo::DBusProxy::new(&conn)
            .await
            .map_err(setup)?
            .receive_name_owner_changed_with_args(&[(0, "org.freedesktop.NetworkManager")])
            .await
            .map_err(setup)?;
        Ok(NameWatch {
            _conn: conn,
            changes,
        })
    }

    async fn owned(mut self, limit: Duration) -> Result<(), SandboxError> {
        use futures::StreamExt;
        let wait = async {
            while let Some(sig) = self.changes.next().await {
                if let Ok(a) = sig.args()
                    && a.new_owner().is_some()
                {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(true) => Ok(()),
            _ => Err(SandboxError::Setup(format!(
                "org.freedesktop.NetworkManager did not appear on the bus within {limit:?}"
            ))),
        }
    }
}

/// How tinynmd is started, kept for restarts.
#[derive(Debug, Clone)]
struct Launch {
    bind_mounts: Vec<BindMount>,
    private_run: bool,
    journal_socket: Option<PathBuf>,
    bus_in_config_only: bool,
    env: Vec<(String, String)>,
}

/// A file bind-mounted over another in tinynmd's own mount namespace, as a container runtime
/// mounts `/etc/resolv.conf`.
#[derive(Debug, Clone)]
pub struct BindMount {
    /// The file that appears…
    pub source: PathBuf,
    /// …at this path (which must exist).
    pub target: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Makes `cmd` start in a mount namespace of its own with `mounts` made there.
pub(crate) fn bind_mounts_for(cmd: &mut Command, mounts: &[BindMount]) -> Result<(), SandboxError> {
    use std::ffi::CString;
    let cs = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| SandboxError::Setup(format!("{} has a NUL", p.display())))
    };
    let mut list = Vec::new();
    for m in mounts {
        list.push((cs(&m.source)?, cs(&m.target)?, m.read_only));
    }
    // SAFETY: between fork and exec only raw syscalls run (unshare, mount), on strings built
    // before the fork.
    unsafe {
        cmd.pre_exec(move || {
            private_mount_namespace()?;
            for (src, dst, ro) in &list {
                if libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if *ro
                    && libc::mount(
                        std::ptr::null(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// Options for [`Daemon::start`].
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Extra lines for daemon.toml.
    pub config: String,
    /// Log level.
    pub log_level: String,
    /// Profiles to put in the directory before start: (file name, text).
    pub profiles: Vec<(String, String)>,
    /// NetworkManager keyfiles to put in its keyfile directory: (file name, text).
    pub keyfiles: Vec<(String, String)>,
    /// Use a release build? (benches)
    pub binary_dir: Option<PathBuf>,
    /// Search NetworkManager's plugin directories too (Debian's nm-openvpn-service…).
    pub nm_plugin_dirs: bool,
    /// Run tinynmd (and so its plugins) in a mount namespace of its own with a tmpfs over
    /// `/run`, where `/run/dbus/system_bus_socket` is the test bus: for programs that only know
    /// the default socket (nm-openvpn-service's helper, run by openvpn with a scrubbed
    /// environment). The host's `/run` is never touched.
    pub private_run: bool,
    /// Give tinynmd its bus only in daemon.toml (`bus = ADDRESS`), not in its environment
    /// (`DBUS_SYSTEM_BUS_ADDRESS`): the plugins it starts must still find that bus.
    pub bus_in_config_only: bool,
    /// More environment for tinynmd (and so its plugins).
    pub env: Vec<(String, String)>,
    /// A `TMPDIR` of tinynmd's own (and so its plugins'), inside its directory: what they leave
    /// there can be checked, and it goes with the daemon.
    pub private_tmp: bool,
    /// Files bind-mounted in tinynmd's own mount namespace (the host sees none of them).
    pub bind_mounts: Vec<BindMount>,
    /// With `private_run`: the socket that is `/run/systemd/journal/socket` there.
    pub journal_socket: Option<PathBuf>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            config: String::new(),
            log_level: "debug".into(),
            profiles: Vec::new(),
            keyfiles: Vec::new(),
            binary_dir: None,
            nm_plugin_dirs: false,
            private_run: false,
            bus_in_config_only: false,
            env: Vec::new(),
            private_tmp: false,
            bind_mounts: Vec::new(),
            journal_socket: None,
        }
    }
}

impl Daemon {
    /// Starts tinynmd inside `ns` on `bus` and waits for its name.
    pub async fn start(ns: &Netns, bus: &Bus, opts: DaemonOptions) -> Result<Daemon, SandboxError> {
        let find = |n: &str| match &opts.binary_dir {
            Some(d) => {
                let p = d.join(n);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(SandboxError::MissingBinary(p))
                }
            }
            None => binary(n),
        };
        let tinynmd = find("tinynmd")?;
        let testbench = find("tinynm-testbench")?;
        let dir = tempfile::Builder::new()
            .prefix("tinynm-daemon")
            .tempdir()
            .map_err(|e| SandboxError::Sys("tempdir", e))?;
        let profile_dir = dir.path().join("connections");
        let plugin_dir = dir.path().join("vpn");
        let keyfile_dir = dir.path().join("system-connections");
        std::fs::create_dir_all(&profile_dir).map_err(|e| SandboxError::Sys("mkdir", e))?;
        std::fs::create_dir_all(&keyfile_dir).map_err(|e| SandboxError::Sys("mkdir", e))?;
        for (name, text) in &opts.keyfiles {
            // As NetworkManager writes them: for root's eyes only.
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(keyfile_dir.join(name))
                .map_err(|e| SandboxError::Sys("write keyfile", e))?;
            std::io::Write::write_all(&mut f, text.as_bytes())
                .map_err(|e| SandboxError::Sys("write keyfile", e))?;
        }
        write_testbench_plugins(&plugin_dir, &testbench)
            .map_err(|e| SandboxError::Sys("write .name files", e))?;
        for (name, text) in &opts.profiles {
            std::fs::write(profile_dir.join(name), text)
                .map_err(|e| SandboxError::Sys("write profile", e))?;
        }
        let conf = dir.path().join("daemon.toml");
        std::fs::write(
            &conf,
            format!(
                "bus = \"{}\"\nprofile-dir = \"{}\"\nkeyfile-dirs = [\"{}\"]\nplugin-dirs = [\"{}\"]\nnm-plugin-dirs = {}\nstate-dir = \"{}\"\nlease-dir = \"{}\"\nlog-level = \"{}\"\n{}\n",
                bus.address,
                profile_dir.display(),
                keyfile_dir.display(),
                plugin_dir.display(),
                opts.nm_plugin_dirs,
                dir.path().join("state").display(),
                dir.path().join("leases").display(),
                opts.log_level,
                if opts.config.contains("[dns]") {
                    opts.config.clone()
                } else {
                    // tinynmd manages DNS by default (`auto`), which would be the host's
                    // /etc/resolv.conf here: a world's tinynmd touches none unless asked.
                    format!("{}\n[dns]\nbackend = \"none\"\n", opts.config)
                }
            ),
        )
        .map_err(|e| SandboxError::Sys("write daemon.toml", e))?;
        let log = dir.path().join("tinynmd.log");
        let mut env = opts.env.clone();
        if opts.private_tmp {
            let tmp = dir.path().join("tmp");
            std::fs::create_dir_all(&tmp).map_err(|e| SandboxError::Sys("mkdir", e))?;
            env.push(("TMPDIR".into(), tmp.display().to_string()));
        }
        let launch = Launch {
            bind_mounts: opts.bind_mounts.clone(),
            private_run: opts.private_run,
            journal_socket: opts.journal_socket.clone(),
            bus_in_config_only: opts.bus_in_config_only,
            env,
        };
        let watch = NameWatch::new(bus).await?;
        let t0 = std::time::Instant::now();
        let child = Self::spawn(ns, bus, &tinynmd, &conf, &log, &launch)?;
        let mut d = Daemon {
            child,
            profile_dir,
            plugin_dir,
            keyfile_dir,
            log,
            dir,
            tinynmd,
            launch,
            startup: Duration::ZERO,
        };
        d.wait_ready(watch, t0).await?;
        Ok(d)
    }

    fn spawn(
        ns: &Netns,
        bus: &Bus,
        tinynmd: &Path,
        conf: &Path,
        log: &Path,
        launch: &Launch,
    ) -> Result<Child, SandboxError> {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| SandboxError::Sys("open log", e))?;
        let mut cmd = Command::new(tinynmd);
        cmd.process_group(0)
            .arg("--config")
            .arg(conf)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf);
        if launch.bus_in_config_only {
            cmd.env_remove("DBUS_SYSTEM_BUS_ADDRESS");
        }
        cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
        ns.prepare(&mut cmd);
        if launch.private_run {
            private_run_with_journal(&mut cmd, &bus.socket(), launch.journal_socket.as_deref())?;
        }
        if !launch.bind_mounts.is_empty() {
            bind_mounts_for(&mut cmd, &launch.bind_mounts)?;
        }
        cmd.spawn()
            .map_err(|e| SandboxError::Sys("spawn tinynmd", e))
    }

    async fn wait_ready(
        &mut self,
        watch: NameWatch,
        t0: std::time::Instant,
    ) -> Result<(), SandboxError> {
        if let Err(e) = watch.owned(Duration::from_secs(20)).await {
            let log = self.log_text();
            terminate(&mut self.child);
            return Err(SandboxError::Setup(format!("{e}; tinynmd's log:\n{log}")));
        }
        self.startup = t0.elapsed();
        Ok(())
    }

    /// Kills tinynmd with SIGKILL, as a crash would end it, and reaps it.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts tinynmd again with the same configuration, directories and log.
    pub async fn restart(&mut self, ns: &Netns, bus: &Bus) -> Result<(), SandboxError> {
        terminate(&mut self.child);
        let conf = self.dir.path().join("daemon.toml");
        let watch = NameWatch::new(bus).await?;
        let t0 = std::time::Instant::now();
        self.child = Self::spawn(ns, bus, &self.tinynmd, &conf, &self.log, &self.launch)?;
        self.wait_ready(watch, t0).await
    }

    /// Sets (or with `None` drops) a variable of tinynmd's environment for its next start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.launch.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.launch.env.push((key.to_string(), v.to_string()));
        }
    }

    /// Waits up to `limit` for tinynmd to end by itself (a crash the test asked for); whether
    /// it did. It is reaped.
    pub async fn wait_exit(&mut self, limit: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if std::time::Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A variable given to tinynmd's environment through [`DaemonOptions::env`].
    pub fn env(&self, key: &str) -> Option<String> {
        self.launch
            .env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// tinynmd's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB (VmRSS).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_of(self.child.id())
    }

    /// Resets the resident set's high-water mark (`VmHWM`) to the current RSS
    /// (`/proc/PID/clear_refs`, 5), so that [`Daemon::peak_kib`] gives the peak from now on.
    pub fn reset_peak(&self) -> std::io::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
    }

    /// The resident set's high-water mark (`VmHWM`), in KiB.
    pub fn peak_kib(&self) -> Option<u64> {
        status_kib(self.child.id(), "VmHWM")
    }

    /// Open file descriptors.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits for the exit (bounded).
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Every line `child` writes to its piped stdout and stderr, as they come (one reader thread
/// each).
pub fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    let mut outs: Vec<Box<dyn std::io::Read + Send>> = Vec::new();
    if let Some(o) = child.stdout.take() {
        outs.push(Box::new(o));
    }
    if let Some(e) = child.stderr.take() {
        outs.push(Box::new(e));
    }
    for out in outs {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Runs a PKI command (openssl, openvpn --genkey); its stderr is the error when it fails.
pub(crate) fn run_pki(cmd: &mut Command) -> Result<(), SandboxError> {
    let o = cmd
        .output()
        .map_err(|e| SandboxError::Sys("run a PKI command", e))?;
    if !o.status.success() {
        return Err(SandboxError::Setup(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    Ok(())
}

/// The processes below `pid` (its children, theirs…), by walking `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = vec![pid];
    let mut found = Vec::new();
    let mut changed = true;
    while changed {
        changed = false;
        let Ok(rd) = std::fs::read_dir("/proc") else {
            break;
        };
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if parents.contains(&p) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // pid (comm) state ppid …: the comm may hold spaces, the last ')' ends it.
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            let ppid: u32 = stat[close + 2..]
                .split(' ')
                .nth(1)
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            if parents.contains(&ppid) {
                parents.push(p);
                found.push(p);
                changed = true;
            }
        }
    }
    found
}
