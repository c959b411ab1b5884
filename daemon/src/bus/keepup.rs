//! `org.tinynm.Settings`: tinynm's own interface beside NM's Settings (NM has no such
//! properties): the VPNs tinynmd is bringing back, the self-starting VPNs it holds down, and
//! the kill switch; and where a profile's imported certificates go, with the call that adds a
//! profile together with them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tinynm_config::dbus::SettingsDict;
use zbus::OwnedObjectPath;

use crate::state::{Command, KeepUpSnapshot, SettingsError};

/// tinynm's settings interface, at `/org/tinynm/Settings` (outside the tree libnm watches).
pub struct KeepUpView {
    /// The core's snapshot.
    pub snap: tokio::sync::watch::Receiver<KeepUpSnapshot>,
    /// Commands to the core.
    pub cmd: tokio::sync::mpsc::Sender<Command>,
    /// Who may do what.
    pub auth: Arc<crate::auth::Authority>,
    /// daemon.toml's profile directory's `certs/`.
    pub cert_dir: PathBuf,
}

#[zbus::interface(name = "org.tinynm.Settings")]
impl KeepUpView {
    /// Adds a profile (as AddConnection, or AddConnectionUnsaved when `save` is false) after
    /// writing `files` (file name → contents, mode 0600) into `CertDir`, where the profile's
    /// paths point: `tinynm connection import` sends an `.ovpn` file's inline certificates and
    /// keys so, to wherever this daemon keeps its files. Nothing is written unless the caller
    /// may add the profile; nothing stays if it is refused.
    async fn add_connection_with_files(
        &self,
        settings: SettingsDict,
        files: HashMap<String, Vec<u8>>,
        save: bool,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<OwnedObjectPath, SettingsError> {
        let mut files: Vec<(String, Vec<u8>)> = files.into_iter().collect();
        files.sort();
        super::settings::add_profile(&self.cmd, &self.auth, settings, save, files, &hdr, conn).await
    }

    /// The last lines the plugin of the profile `uuid`'s last VPN wrote, oldest first (none
    /// when it has not run since tinynmd started): what `tinynm connection up` shows beside
    /// NM's reason when it fails. Needs `network-control`, as activating does.
    async fn plugin_log(
        &self,
        uuid: String,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Vec<String>, SettingsError> {
        let caller = crate::auth::Caller::of(conn, &hdr).await?;
        self.auth
            .require(&caller, "network-control")
            .await
            .map_err(SettingsError::PermissionDenied)?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.cmd
            .send(Command::LastPluginLog { uuid, reply })
            .await
            .map_err(|_| SettingsError::Failed("tinynmd is stopping".into()))?;
        rx.await
            .map_err(|_| SettingsError::Failed("tinynmd is stopping".into()))
    }

    /// Where `AddConnectionWithFiles` writes: the profile directory's `certs/`.
    #[zbus(property)]
    fn cert_dir(&self) -> String {
        self.cert_dir.display().to_string()
    }

    /// Profile UUID → (tries so far, when the next starts in µs since the epoch, why the last
    /// ended) of each VPN waiting to be activated again.
    #[zbus(property)]
    fn reconnects(&self) -> HashMap<String, (u32, u64, String)> {
        self.snap
            .borrow()
            .reconnects
            .iter()
            .map(|(u, p)| (u.clone(), (p.tries, p.at_usec, p.reason.clone())))
            .collect()
    }

    /// UUIDs of the `tinynm-autoconnect` VPNs that will not come up by themselves until
    /// activated by hand.
    #[zbus(property)]
    fn autoconnect_blocked(&self) -> Vec<String> {
        self.snap.borrow().blocked.clone()
    }

    /// UUIDs of the VPNs that hold the kill switch (`tinynm-kill-switch`, or any VPN under
    /// lockdown): activating, up, or down without the user asking.
    #[zbus(property)]
    fn kill_switch(&self) -> Vec<String> {
        self.snap.borrow().kill_switch.clone()
    }

    /// daemon.toml's `[firewall] lockdown`: the switch is on whatever is up.
    #[zbus(property)]
    fn lockdown(&self) -> bool {
        self.snap.borrow().lockdown
    }

    /// Why the kill switch could not be put in force (the kernel's words), or empty.
    #[zbus(property)]
    fn kill_switch_error(&self) -> String {
        self.snap.borrow().kill_switch_error.clone()
    }
}
