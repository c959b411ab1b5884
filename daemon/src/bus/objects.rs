//! `org.freedesktop.DBus.ObjectManager` at `/org/freedesktop`, as NetworkManager serves it.
//!
//! libnm types an object once, from the interfaces of its first `InterfacesAdded`: a VPN
//! active connection must arrive with `Connection.Active` and `VPN.Connection` together. zbus's
//! own ObjectManager announces each interface as it is registered, so tinynmd keeps its own:
//! the core registers every interface of an object, then announces them in one signal.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::watch;
use zbus::object_server::{Interface, SignalEmitter};
use zbus::{ObjectPath, ObjectServer, OwnedObjectPath};

use super::active::{ActiveView, VpnView};
use super::agent::AgentManagerView;
use super::device::{
    DeviceView, GenericView, LoopbackView, StatisticsView, TunView, VethView, WiredView,
};
use super::dhcp4::Dhcp4ConfigView;
use super::dns::{DnsManagerView, DnsStatusView};
use super::ipconfig::{Ip4ConfigView, Ip6ConfigView, PropValue, ip_props};
use super::keepup::KeepUpView;
use super::manager::Manager;
use super::settings::{ConnectionView, SettingsView};

/// Where the ObjectManager is served.
pub const ROOT: &str = "/org/freedesktop";

/// The kinds of interface tinynmd exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iface {
    /// `org.freedesktop.NetworkManager`
    Manager,
    /// `org.freedesktop.NetworkManager.Settings`
    Settings,
    /// `org.freedesktop.NetworkManager.Settings.Connection`
    Connection,
    /// `org.freedesktop.NetworkManager.Connection.Active`
    Active,
    /// `org.freedesktop.NetworkManager.VPN.Connection`
    Vpn,
    /// `org.freedesktop.NetworkManager.DnsManager`
    Dns,
    /// `org.tinynm.DnsManager` (tinynm's own, beside it)
    DnsStatus,
    /// `org.tinynm.Settings` (tinynm's own, beside NM's Settings)
    KeepUp,
    /// `org.freedesktop.NetworkManager.AgentManager`
    Agent,
    /// `org.freedesktop.NetworkManager.Device`
    Device,
    /// `org.freedesktop.NetworkManager.Device.Statistics`
    Statistics,
    /// `org.freedesktop.NetworkManager.Device.Loopback`
    Loopback,
    /// `org.freedesktop.NetworkManager.Device.Tun`
    Tun,
    /// `org.freedesktop.NetworkManager.Device.Wired`
    Wired,
    /// `org.freedesktop.NetworkManager.Device.Veth`
    Veth,
    /// `org.freedesktop.NetworkManager.Device.Generic`
    Generic,
    /// `org.freedesktop.NetworkManager.IP4Config`
    Ip4,
    /// `org.freedesktop.NetworkManager.IP6Config`
    Ip6,
    /// `org.freedesktop.NetworkManager.DHCP4Config`
    Dhcp4,
}

impl Iface {
    /// tinynm's own interface, served by the `org.tinynm` connection.
    pub fn is_tinynm(self) -> bool {
        matches!(self, Iface::KeepUp | Iface::DnsStatus)
    }

    /// The interface's D-Bus name.
    pub fn name(self) -> String {
        match self {
            Iface::Manager => Manager::name(),
            Iface::Settings => SettingsView::name(),
            Iface::Connection => ConnectionView::name(),
            Iface::Active => ActiveView::name(),
            Iface::Vpn => VpnView::name(),
            Iface::Dns => DnsManagerView::name(),
            Iface::DnsStatus => DnsStatusView::name(),
            Iface::KeepUp => KeepUpView::name(),
            Iface::Agent => AgentManagerView::name(),
            Iface::Device => DeviceView::name(),
            Iface::Statistics => StatisticsView::name(),
            Iface::Loopback => LoopbackView::name(),
            Iface::Tun => TunView::name(),
            Iface::Wired => WiredView::name(),
            Iface::Veth => VethView::name(),
            Iface::Generic => GenericView::name(),
            Iface::Ip4 => Ip4ConfigView::name(),
            Iface::Ip6 => Ip6ConfigView::name(),
            Iface::Dhcp4 => Dhcp4ConfigView::name(),
        }
        .to_string()
    }
}

/// Every exported object and its interfaces, as the core keeps it.
pub type Objects = BTreeMap<String, Vec<Iface>>;

/// One interface's properties, as they go on the wire.
pub type Props = HashMap<String, PropValue>;

async fn props_of<I: Interface>(
    server: &ObjectServer,
    conn: &zbus::Connection,
    path: &str,
) -> zbus::fdo::Result<Props> {
    let r = server
        .interface::<_, I>(path)
        .await
        .map_err(|e| zbus::fdo::Error::UnknownObject(format!("{path}: {e}")))?;
    let g = r.get().await;
    let all = g.get_all(server, conn, None, r.signal_emitter()).await?;
    Ok(all.into_iter().map(|(k, v)| (k, PropValue::V(v))).collect())
}

fn gone(path: &str, e: zbus::Error) -> zbus::fdo::Error {
    zbus::fdo::Error::UnknownObject(format!("{path}: {e}"))
}

/// The properties of every interface of an object, as `InterfacesAdded` and
/// `GetManagedObjects` carry them.
pub async fn interfaces_of(
    server: &ObjectServer,
    conn: &zbus::Connection,
    path: &str,
    ifaces: &[Iface],
) -> zbus::fdo::Result<HashMap<String, Props>> {
    let mut out = HashMap::new();
    for i in ifaces {
        let props = match i {
            Iface::Manager => props_of::<Manager>(server, conn, path).await?,
            Iface::Settings => props_of::<SettingsView>(server, conn, path).await?,
            Iface::Connection => props_of::<ConnectionView>(server, conn, path).await?,
            Iface::Active => props_of::<ActiveView>(server, conn, path).await?,
            Iface::Vpn => props_of::<VpnView>(server, conn, path).await?,
            Iface::Dns => props_of::<DnsManagerView>(server, conn, path).await?,
            Iface::DnsStatus => props_of::<DnsStatusView>(server, conn, path).await?,
            Iface::KeepUp => props_of::<KeepUpView>(server, conn, path).await?,
            // NM lists the AgentManager with no properties.
            Iface::Agent => Props::new(),
            Iface::Device => props_of::<DeviceView>(server, conn, path).await?,
            Iface::Statistics => props_of::<StatisticsView>(server, conn, path).await?,
            Iface::Loopback => props_of::<LoopbackView>(server, conn, path).await?,
            Iface::Tun => props_of::<TunView>(server, conn, path).await?,
            Iface::Wired => props_of::<WiredView>(server, conn, path).await?,
            Iface::Veth => props_of::<VethView>(server, conn, path).await?,
            Iface::Generic => props_of::<GenericView>(server, conn, path).await?,
            // Route lists are written straight from the data (they can be 50,000 long).
            Iface::Ip4 => {
                let r = server
                    .interface::<_, Ip4ConfigView>(path)
                    .await
                    .map_err(|e| gone(path, e))?;
                let d = r.get().await.data.borrow().clone();
                ip_props(&d, false)
            }
            Iface::Ip6 => {
                let r = server
                    .interface::<_, Ip6ConfigView>(path)
                    .await
                    .map_err(|e| gone(path, e))?;
                let d = r.get().await.data.borrow().clone();
                ip_props(&d, true)
            }
            Iface::Dhcp4 => props_of::<Dhcp4ConfigView>(server, conn, path).await?,
        };
        out.insert(i.name(), props);
    }
    Ok(out)
}

/// Announces an object whose interfaces are all registered: one `InterfacesAdded`.
pub async fn announce_added(
    conn: &zbus::Connection,
    path: &str,
    ifaces: &[Iface],
) -> zbus::Result<()> {
    let server = conn.object_server();
    let all = interfaces_of(server, conn, path, ifaces).await?;
    let e = SignalEmitter::new(conn, ROOT)?;
    ObjectManagerView::interfaces_added(&e, ObjectPath::try_from(path)?, all).await
}

/// Announces an object's removal: one `InterfacesRemoved` naming all its interfaces.
pub async fn announce_removed(
    conn: &zbus::Connection,
    path: &str,
    ifaces: &[Iface],
) -> zbus::Result<()> {
    let e = SignalEmitter::new(conn, ROOT)?;
    let names: Vec<String> = ifaces.iter().map(|i| i.name()).collect();
    ObjectManagerView::interfaces_removed(&e, ObjectPath::try_from(path)?, names).await
}

/// The view: reads the core's object list.
pub struct ObjectManagerView {
    /// The core's list of objects.
    pub objects: watch::Receiver<Objects>,
}

#[zbus::interface(name = "org.freedesktop.DBus.ObjectManager")]
impl ObjectManagerView {
    async fn get_managed_objects(
        &self,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> zbus::fdo::Result<HashMap<OwnedObjectPath, HashMap<String, Props>>> {
        let objects = self.objects.borrow().clone();
        let mut out = HashMap::new();
        for (path, ifaces) in objects {
            // An object being torn down may already be gone from the server: skip it.
            match interfaces_of(server, conn, &path, &ifaces).await {
                Ok(all) => {
                    out.insert(OwnedObjectPath::try_from(path)?, all);
                }
                Err(e) => tracing::debug!("GetManagedObjects: {path} skipped: {e}"),
            }
        }
        // The objects are read one by one while tinynmd goes on: a connection can go between
        // reading the Manager and reading it. The answer must never list what it does not hold.
        let present: std::collections::HashSet<String> =
            out.keys().map(|p| p.to_string()).collect();
        for (path, iface, list) in [
            (
                crate::state::paths::NM_PATH,
                Iface::Manager,
                "ActiveConnections",
            ),
            (crate::state::paths::NM_PATH, Iface::Manager, "Devices"),
            (crate::state::paths::NM_PATH, Iface::Manager, "AllDevices"),
            (
                crate::state::paths::SETTINGS_PATH,
                Iface::Settings,
                "Connections",
            ),
        ] {
            let Ok(key) = OwnedObjectPath::try_from(path) else {
                continue;
            };
            if let Some(props) = out.get_mut(&key).and_then(|i| i.get_mut(&iface.name()))
                && let Some(PropValue::V(v)) = props.get(list)
                && let Ok(paths) = Vec::<OwnedObjectPath>::try_from(v.try_clone()?)
            {
                let kept: Vec<OwnedObjectPath> = paths
                    .into_iter()
                    .filter(|p| present.contains(p.as_str()))
                    .collect();
                props.insert(
                    list.to_string(),
                    PropValue::V(zbus::Variant::from(kept).try_into_owned()?),
                );
            }
        }
        Ok(out)
    }

    /// Objects appeared.
    #[zbus(signal)]
    pub async fn interfaces_added(
        e: &SignalEmitter<'_>,
        object_path: ObjectPath<'_>,
        interfaces_and_properties: HashMap<String, Props>,
    ) -> zbus::Result<()>;

    /// Objects went away.
    #[zbus(signal)]
    pub async fn interfaces_removed(
        e: &SignalEmitter<'_>,
        object_path: ObjectPath<'_>,
        interfaces: Vec<String>,
    ) -> zbus::Result<()>;
}
