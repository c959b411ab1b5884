//! tinynmd on a bus of its own (`bus = "embedded"`): no dbus-daemon anywhere. For the tests and
//! the benches of the embedded bus.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Netns, SandboxError, binary, terminate, wait_for_name, write_testbench_plugins};

/// tinynmd in a namespace, serving on its embedded bus; ended on drop.
pub struct EmbeddedDaemon {
    child: Child,
    log: PathBuf,
    /// Its bus's socket as this process reaches it.
    pub socket: PathBuf,
    /// That socket's D-Bus address.
    pub address: String,
}

impl EmbeddedDaemon {
    /// Starts tinynmd (from `bin`, else next to the running executable) in `ns`, its files in
    /// `dir`, its bus at `sock`, or (`None`) at the default path, /run/dbus/system_bus_socket,
    /// in a mount namespace of its own with a tmpfs over /run, reached from here through
    /// `/proc/PID/root`. `nm_plugins`: NM's plugin directories are searched too. Returns once
    /// the socket is there (not yet the name: see [`EmbeddedDaemon::connect`]).
    pub async fn start(
        ns: &Netns,
        dir: &Path,
        sock: Option<&Path>,
        nm_plugins: bool,
        bin: Option<&Path>,
    ) -> Result<EmbeddedDaemon, SandboxError> {
        let find = |n: &str| match bin {
            Some(b) => Ok(b.join(n)),
            None => binary(n),
        };
        let sys = |e| SandboxError::Sys("the embedded daemon's files", e);
        let plugins = dir.join("vpn");
        write_testbench_plugins(&plugins, &find("tinynm-testbench")?).map_err(sys)?;
        std::fs::create_dir_all(dir.join("connections")).map_err(sys)?;
        let bus = match sock {
            Some(s) => format!("embedded:{}", s.display()),
            None => "embedded".to_string(),
        };
        let conf = dir.join("daemon.toml");
        std::fs::write(
            &conf,
            format!(
                "bus = \"{bus}\"\nprofile-dir = \"{}\"\nkeyfile-dirs = []\nplugin-dirs = [\"{}\"]\n\
                 nm-plugin-dirs = {nm_plugins}\nstate-dir = \"{}\"\nlease-dir = \"{}\"\n\
                 log-level = \"debug\"\n[dns]\nbackend = \"none\"\n",
                dir.join("connections").display(),
                plugins.display(),
                dir.join("state").display(),
                dir.join("leases").display(),
            ),
        )
        .map_err(sys)?;
        let log = dir.join("tinynmd.log");
        let mut cmd = Command::new(find("tinynmd")?);
        cmd.arg("--config")
            .arg(&conf)
            // No bus of anyone else's to fall back on.
            .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(sys)?);
        ns.prepare(&mut cmd);
        if sock.is_none() {
            // SAFETY: between fork and exec, only raw syscalls on static C strings.
            unsafe {
                cmd.pre_exec(|| {
                    crate::private_mount_namespace()?;
                    let (run, tmpfs) = (c"/run", c"tmpfs");
                    if libc::mount(
                        tmpfs.as_ptr(),
                        run.as_ptr(),
                        tmpfs.as_ptr(),
                        0,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| SandboxError::Sys("spawn tinynmd", e))?;
        let socket = match sock {
            Some(s) => s.to_path_buf(),
            None => PathBuf::from(format!(
                "/proc/{}/root/run/dbus/system_bus_socket",
                child.id()
            )),
        };
        let mut d = EmbeddedDaemon {
            child,
            log,
            address: format!("unix:path={}", socket.display()),
            socket,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !d.socket.exists() {
            if std::time::Instant::now() >= deadline || matches!(d.child.try_wait(), Ok(Some(_))) {
                let log = d.log_text();
                terminate(&mut d.child);
                return Err(SandboxError::Setup(format!(
                    "no bus at {}; tinynmd's log:\n{log}",
                    d.socket.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(d)
    }

    /// A connection to its bus, once tinynmd owns its name there.
    pub async fn connect(&self) -> Result<zbus::Connection, SandboxError> {
        let setup =
            |e: String| SandboxError::Setup(format!("{e}; tinynmd's log:\n{}", self.log_text()));
        // The socket's file exists from bind(2), a moment before busd listens on it: a refused
        // connection is tried again, within a bound.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let conn = loop {
            match zbus::connection::Builder::address(self.address.as_str())
                .build()
                .await
            {
                Ok(c) => break c,
                Err(zbus::Error::Connection(e, _) | zbus::Error::InputOutput(e))
                    if e.kind() == std::io::ErrorKind::ConnectionRefused
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(setup(format!("connect to the embedded bus: {e}"))),
            }
        };
        wait_for_name(
            &conn,
            "org.freedesktop.NetworkManager",
            Duration::from_secs(20),
        )
        .await
        .map_err(|e| setup(e.to_string()))?;
        Ok(conn)
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// tinynmd's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EmbeddedDaemon {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
