//! The reference: Debian's real NetworkManager 1.42, run like a world's tinynmd, for the
//! benches that put the two side by side. It runs in the world's network namespace on the
//! world's bus, in a mount namespace of its own where its fixed paths are the sandbox's: a tmpfs
//! over /run, a directory of the sandbox's over /var/lib/NetworkManager (its secret key, its
//! timestamps) and over /usr/lib/NetworkManager/VPN (the VPN plugins it may run). The host's
//! files and network are never touched: no DNS (dns=none), no hostname, no connectivity check,
//! no automatic profile on any link (no-auto-default=*).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{BindMount, Bus, Netns, SandboxError, require_tool, terminate};

/// A running NetworkManager.
pub struct NetworkManager {
    child: Child,
    dir: tempfile::TempDir,
}

impl NetworkManager {
    /// Starts it in `ns` on `bus` with these keyfiles (file name, text) and the `.name` files
    /// of `vpn_names` (file name, text). Returns as soon as the process runs: the benches time
    /// what follows.
    pub fn spawn(
        ns: &Netns,
        bus: &Bus,
        keyfiles: &[(String, String)],
        vpn_names: &[(String, String)],
    ) -> Result<NetworkManager, SandboxError> {
        require_tool("NetworkManager", "network-manager")?;
        let dir = tempfile::Builder::new()
            .prefix("tinynm-nm")
            .tempdir()
            .map_err(|e| SandboxError::Sys("tempdir", e))?;
        let sys = |e| SandboxError::Sys("NetworkManager's files", e);
        let kdir = dir.path().join("system-connections");
        let vdir = dir.path().join("VPN");
        let lib = dir.path().join("lib");
        let confd = dir.path().join("conf.d");
        for d in [&kdir, &vdir, &lib, &confd] {
            std::fs::create_dir_all(d).map_err(sys)?;
        }
        for (name, text) in keyfiles {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(kdir.join(name))
                .map_err(sys)?;
            std::io::Write::write_all(&mut f, text.as_bytes()).map_err(sys)?;
        }
        for (name, text) in vpn_names {
            std::fs::write(vdir.join(name), text).map_err(sys)?;
        }
        let conf = dir.path().join("NetworkManager.conf");
        std::fs::write(
            &conf,
            format!(
                "[main]\nplugins=keyfile\nno-auto-default=*\ndhcp=internal\ndns=none\n\
                 rc-manager=unmanaged\nhostname-mode=none\nauth-polkit=false\n\
                 [keyfile]\npath={}\n[connectivity]\nenabled=false\n[logging]\nlevel=INFO\n\
                 [device-veth0]\nmatch-device=interface-name:veth0\nmanaged=1\n",
                kdir.display()
            ),
        )
        .map_err(sys)?;
        let child = Self::launch(ns, bus, dir.path())?;
        Ok(NetworkManager { child, dir })
    }

    /// Stops it (SIGTERM), runs `between`, and starts it again on the same files: its state,
    /// its DHCP leases.
    pub fn restart_stopped(
        &mut self,
        ns: &Netns,
        bus: &Bus,
        between: impl FnOnce() -> Result<(), SandboxError>,
    ) -> Result<(), SandboxError> {
        terminate(&mut self.child);
        between()?;
        self.child = Self::launch(ns, bus, self.dir.path())?;
        Ok(())
    }

    /// Runs NetworkManager on the files in `dir`.
    fn launch(ns: &Netns, bus: &Bus, dir: &Path) -> Result<Child, SandboxError> {
        let nm = require_tool("NetworkManager", "network-manager")?;
        let sys = |e| SandboxError::Sys("NetworkManager's files", e);
        let conf = dir.join("NetworkManager.conf");
        let confd = dir.join("conf.d");
        let lib = dir.join("lib");
        let vdir = dir.join("VPN");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("NetworkManager.log"))
            .map_err(sys)?;
        let mut cmd = Command::new(nm);
        cmd.process_group(0)
            .arg("--debug")
            .arg(format!("--config={}", conf.display()))
            .arg(format!("--config-dir={}", confd.display()))
            .arg(format!("--system-config-dir={}", confd.display()))
            .arg(format!(
                "--intern-config={}",
                lib.join("NetworkManager-intern.conf").display()
            ))
            .arg(format!(
                "--state-file={}",
                lib.join("NetworkManager.state").display()
            ))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        ns.prepare(&mut cmd);
        crate::private_run_for(&mut cmd, &bus.socket())?;
        crate::bind_mounts_for(
            &mut cmd,
            &[
                BindMount {
                    source: lib.clone(),
                    target: PathBuf::from("/var/lib/NetworkManager"),
                    read_only: false,
                },
                BindMount {
                    source: vdir.clone(),
                    target: PathBuf::from("/usr/lib/NetworkManager/VPN"),
                    read_only: true,
                },
            ],
        )?;
        // A sysfs of the namespace's own, read-only: NetworkManager then shows this namespace's
        // links and does not wait for udev (which never sees them) to initialize them.
        let (sysfs, sys_dir) = (c"sysfs", c"/sys");
        // SAFETY: between fork and exec only a raw mount syscall runs, on static C strings.
        unsafe {
            cmd.pre_exec(move || {
                let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                if libc::mount(
                    sysfs.as_ptr(),
                    sys_dir.as_ptr(),
                    sysfs.as_ptr(),
                    flags,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn()
            .map_err(|e| SandboxError::Sys("spawn NetworkManager", e))
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory (VmRSS), KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        crate::rss_of(self.child.id())
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("NetworkManager.log")).unwrap_or_default()
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for NetworkManager {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
