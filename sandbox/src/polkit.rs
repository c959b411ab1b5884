//! Debian's real `polkitd` on a test bus, with rules of the test's own: it runs in a mount
//! namespace of its own where the test's rules directory is bind-mounted over
//! `/etc/polkit-1/rules.d` (the host's rules are never touched).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Bus, SandboxError, terminate, wait_for_name};

/// The polkit daemon.
const POLKITD: &str = "/usr/lib/polkit-1/polkitd";

/// A running polkitd, stopped (by PID) when dropped.
pub struct Polkit {
    child: Child,
    _rules: tempfile::TempDir,
}

impl Polkit {
    /// Starts polkitd on `bus` with one rules file of `rules` (JavaScript, polkit's format) and
    /// waits (bounded) until it owns `org.freedesktop.PolicyKit1`.
    pub async fn start(bus: &Bus, rules: &str) -> Result<Polkit, SandboxError> {
        if !std::path::Path::new(POLKITD).is_file() {
            return Err(SandboxError::MissingTool {
                program: POLKITD.into(),
                package: "polkitd".into(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("tinynm-polkit")
            .tempdir()
            .map_err(|e| SandboxError::Sys("tempdir", e))?;
        std::fs::write(dir.path().join("50-tinynm-test.rules"), rules)
            .map_err(|e| SandboxError::Sys("write the polkit rules", e))?;
        let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
        let src = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes())
            .map_err(|_| SandboxError::Setup("rules path has a NUL".into()))?;
        let target = c("/etc/polkit-1/rules.d");
        let mut cmd = Command::new(POLKITD);
        cmd.arg("--no-debug")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only raw syscalls (unshare, mount) between fork and exec, on strings made
        // before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let check = |r: libc::c_int| {
                    if r == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                };
                crate::private_mount_namespace()?;
                check(libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ))
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| SandboxError::Sys("spawn polkitd", e))?;
        let conn = bus
            .connect()
            .await
            .map_err(|e| SandboxError::Setup(e.to_string()))?;
        if let Err(e) =
            wait_for_name(&conn, "org.freedesktop.PolicyKit1", Duration::from_secs(20)).await
        {
            terminate(&mut child);
            return Err(SandboxError::Setup(format!("polkitd did not come up: {e}")));
        }
        Ok(Polkit { child, _rules: dir })
    }
}

impl Drop for Polkit {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
