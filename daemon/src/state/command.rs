//! What the D-Bus views ask of the core: the core actor's interface.

use tinynm_config::dbus::SettingsDict;
use tokio::sync::oneshot;
use zbus::OwnedObjectPath;

use super::{AcId, DeviceError, NmError, ProfileId, SettingsError, Storage};
use crate::netlink::links::Link;

/// What the views ask of the core.
pub enum Command {
    /// The external connection of the device at this ifindex may be shown ACTIVATED: a
    /// client has read its profile, or the wait for one is over.
    Assumed {
        /// The device's ifindex.
        index: u32,
        /// Its external active connection.
        ac: AcId,
    },
    /// `ActivateConnection`
    Activate {
        /// Caller's uid.
        uid: u32,
        /// Settings.Connection path.
        connection: OwnedObjectPath,
        /// Device or `/`.
        device: OwnedObjectPath,
        /// Base active connection or `/`.
        specific_object: OwnedObjectPath,
        /// Reply.
        reply: oneshot::Sender<Result<OwnedObjectPath, NmError>>,
    },
    /// `DeactivateConnection`
    Deactivate {
        /// Caller's uid.
        uid: u32,
        /// Active connection path.
        active: OwnedObjectPath,
        /// Reply.
        reply: oneshot::Sender<Result<(), NmError>>,
    },
    /// `AddConnection` / `AddConnectionUnsaved`
    Add {
        /// Caller's uid.
        uid: u32,
        /// The settings.
        settings: SettingsDict,
        /// Write it to disk.
        save: bool,
        /// Files the profile names, to write first into the daemon's certificate directory
        /// (`org.tinynm.Settings.AddConnectionWithFiles`): file name → contents.
        files: Vec<(String, Vec<u8>)>,
        /// Reply.
        reply: oneshot::Sender<Result<OwnedObjectPath, SettingsError>>,
    },
    /// `Settings.Connection.Update`
    Update {
        /// Caller's uid.
        uid: u32,
        /// The profile.
        n: ProfileId,
        /// The new settings; `None` changes only where the profile is kept (Update2).
        settings: Option<SettingsDict>,
        /// Where to keep it.
        storage: Storage,
        /// Reply.
        reply: oneshot::Sender<Result<(), SettingsError>>,
    },
    /// `Settings.Connection.Delete`
    Delete {
        /// Caller's uid.
        uid: u32,
        /// The profile.
        n: ProfileId,
        /// Reply.
        reply: oneshot::Sender<Result<(), SettingsError>>,
    },
    /// An active connection's task has ended (sent by the task itself).
    Ended {
        /// The active connection.
        n: AcId,
    },
    /// A VPN is about to announce its end (FAILED, DISCONNECTED): its plugin's last lines, kept
    /// by profile UUID for `org.tinynm.Settings.PluginLog` (sent before the signal, so that a
    /// client that asks on seeing the end gets them).
    PluginLog {
        /// The profile's UUID.
        uuid: String,
        /// The plugin's last lines, oldest first.
        lines: Vec<String>,
    },
    /// The last lines the plugin of a profile's last VPN wrote.
    LastPluginLog {
        /// The profile's UUID.
        uuid: String,
        /// Reply.
        reply: oneshot::Sender<Vec<String>>,
    },
    /// An active connection reached or left ACTIVATED.
    Changed,
    /// A VPN's config is in the kernel and it is about to announce ACTIVATED: answered once the
    /// kill switch lets its tunnel through, so that nobody sees it up before it passes.
    Applied {
        /// Answered when the core has looked.
        reply: tokio::sync::oneshot::Sender<()>,
    },
    /// A wired activation moved its device to a new state (sent by its task).
    DeviceState {
        /// The link.
        index: u32,
        /// `NMDeviceState`
        state: u32,
        /// `NMDeviceStateReason`
        reason: u32,
    },
    /// The DHCP4Config object of the activation on link `index` (`/`: none any more).
    DeviceDhcp4 {
        /// The link.
        index: u32,
        /// The object.
        path: zbus::OwnedObjectPath,
    },
    /// `Device.Disconnect` on link `index`.
    DisconnectDevice {
        /// The link.
        index: u32,
        /// Reply.
        reply: oneshot::Sender<Result<(), DeviceError>>,
    },
    /// The name is owned: manage and autoconnect the links (answered once started).
    StartUp {
        /// Answered when the start-up autoconnects are started.
        reply: oneshot::Sender<()>,
    },
    /// A VPN's reconnect delay ran out: activate it again.
    Reconnect {
        /// The profile.
        profile: ProfileId,
    },
    /// NM's carrier wait ran out for link `index`, lost under activation `n`.
    CarrierWait {
        /// The link.
        index: u32,
        /// The activation that held it.
        n: AcId,
    },
    /// A wired activation's `connection.secondaries` to activate over it (sent by its task).
    Secondaries {
        /// The base connection.
        base: AcId,
        /// Who activated the base.
        uid: u32,
        /// The VPN profiles' UUIDs.
        uuids: Vec<String>,
        /// Each one's snapshot once started, or why it could not start.
        reply:
            oneshot::Sender<Vec<Result<tokio::sync::watch::Receiver<super::AcSnapshot>, String>>>,
    },
    /// The kernel's links now.
    Links(Vec<Link>),
    /// `LoadConnections` (these files) / `ReloadConnections` (`None`: every file).
    Reload {
        /// Caller's uid.
        uid: u32,
        /// The files to (re)load.
        files: Option<Vec<String>>,
        /// The files that could not be loaded.
        reply: oneshot::Sender<Result<Vec<String>, SettingsError>>,
    },
    /// SIGHUP: daemon.toml read again (what can change while running is taken), then every
    /// profile file.
    ReloadConfig(Box<tinynm_config::DaemonConfig>),
    /// `Settings.Connection.ClearSecrets`
    ClearSecrets {
        /// Caller's uid.
        uid: u32,
        /// The profile.
        n: ProfileId,
        /// Reply.
        reply: oneshot::Sender<Result<(), SettingsError>>,
    },
    /// Deactivate everything and stop.
    Shutdown {
        /// Answered when every VPN is down.
        reply: oneshot::Sender<()>,
    },
}
