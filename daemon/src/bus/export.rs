//! The one place objects are put on the bus, announced, changed and taken off: the core and
//! the connection tasks publish through an [`Exporter`], naming interfaces by [`Iface`], never
//! by hand-typed strings.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;
use zbus::object_server::{Interface, SignalEmitter};
use zbus::{OwnedObjectPath, OwnedVariant, Variant};

use super::ipconfig::{Ip4ConfigView, Ip6ConfigView};
use super::objects::{Iface, Objects, announce_added, announce_removed, interfaces_of};
use crate::state::IpData;
use crate::state::paths::{IP4_PREFIX, IP6_PREFIX};

/// Publishes objects on one bus connection and keeps the ObjectManager's list.
#[derive(Clone)]
pub struct Exporter {
    conn: zbus::Connection,
    /// tinynm's own connection (`org.tinynm`): its interfaces' changes go out from it.
    own: zbus::Connection,
    objects: Arc<watch::Sender<Objects>>,
    /// The next IP4Config and IP6Config numbers (never reused).
    ip_numbers: Arc<[AtomicU64; 2]>,
    /// The next DHCP4Config number (never reused).
    pub(super) dhcp4_numbers: Arc<AtomicU64>,
    /// Whether NM's name is (being) owned. Before, no client can hear a signal of ours (they
    /// match on the name's owner), so none is built or sent: the start-up exports its objects
    /// silently, and clients read them all when the name appears.
    live: Arc<AtomicBool>,
}

/// An exported IP4Config or IP6Config object; dropped by [`Exporter::unexport_ip`].
pub struct IpObject {
    /// Its path.
    pub path: OwnedObjectPath,
    data: watch::Sender<Arc<IpData>>,
    v6: bool,
}

impl IpObject {
    fn iface(&self) -> Iface {
        if self.v6 { Iface::Ip6 } else { Iface::Ip4 }
    }
}

impl Exporter {
    /// An exporter for `conn` (NM's name; its ObjectManager reads `objects`) and `own`
    /// (`org.tinynm`).
    pub fn new(
        conn: zbus::Connection,
        own: zbus::Connection,
        objects: watch::Sender<Objects>,
    ) -> Self {
        Exporter {
            conn,
            own,
            objects: Arc::new(objects),
            ip_numbers: Arc::new([AtomicU64::new(1), AtomicU64::new(1)]),
            dhcp4_numbers: Arc::new(AtomicU64::new(1)),
            live: Arc::new(AtomicBool::new(false)),
        }
    }

    /// From now on signals are sent: called just before NM's name is requested.
    pub fn go_live(&self) {
        self.live.store(true, Ordering::SeqCst);
    }

    /// Whether signals are sent (see [`Exporter::go_live`]).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// The bus connection.
    pub fn conn(&self) -> &zbus::Connection {
        &self.conn
    }

    /// A signal emitter at `path`.
    pub fn emitter(&self, path: &str) -> zbus::Result<SignalEmitter<'static>> {
        Ok(SignalEmitter::new(&self.conn, path)?.into_owned())
    }

    /// Serves one interface of an object (announce it with [`Exporter::announce`] once all its
    /// interfaces are served).
    pub async fn serve<I: Interface>(&self, path: &str, view: I) -> zbus::Result<()> {
        self.conn.object_server().at(path, view).await.map(|_| ())
    }

    /// Stops serving one interface of an object.
    pub async fn unserve<I: Interface>(&self, path: &str) {
        let _ = self.conn.object_server().remove::<I, _>(path).await;
    }

    /// Lists an object whose interfaces are all served, and sends one `InterfacesAdded`.
    pub async fn announce(&self, path: &str, ifaces: &[Iface]) -> zbus::Result<()> {
        self.list(path, ifaces);
        if !self.is_live() {
            return Ok(());
        }
        announce_added(&self.conn, path, ifaces).await
    }

    /// Lists an object without a signal (objects that exist from the start).
    pub fn list(&self, path: &str, ifaces: &[Iface]) {
        self.objects
            .send_modify(|o| drop(o.insert(path.to_string(), ifaces.to_vec())));
    }

    /// Unlists an object and sends one `InterfacesRemoved`; a failure to send is logged.
    pub async fn withdraw(&self, path: &str, ifaces: &[Iface]) {
        self.objects.send_modify(|o| drop(o.remove(path)));
        if !self.is_live() {
            return;
        }
        if let Err(e) = announce_removed(&self.conn, path, ifaces).await {
            tracing::warn!("cannot announce the removal of {path}: {e}");
        }
    }

    /// `PropertiesChanged` with values, for several properties of one interface.
    pub async fn changed(
        &self,
        path: &str,
        iface: Iface,
        props: Vec<(&str, Variant<'_>)>,
    ) -> zbus::Result<()> {
        let conn = if iface.is_tinynm() {
            &self.own
        } else if self.is_live() {
            &self.conn
        } else {
            return Ok(());
        };
        let e = SignalEmitter::new(conn, path)?;
        let changed: HashMap<&str, Variant<'_>> = props.into_iter().collect();
        zbus::fdo::Properties::properties_changed(
            &e,
            iface.name().as_str().try_into()?,
            changed,
            std::borrow::Cow::Borrowed(&[]),
        )
        .await
    }

    /// [`Exporter::changed`], with a failure logged rather than returned.
    pub async fn changed_or_log(&self, path: &str, iface: Iface, props: Vec<(&str, Variant<'_>)>) {
        if let Err(e) = self.changed(path, iface, props).await {
            tracing::warn!("cannot announce a change of {path}: {e}");
        }
    }

    /// Exports and announces an IP4Config (or IP6Config) object with `data`.
    pub async fn export_ip(&self, v6: bool, data: IpData) -> zbus::Result<IpObject> {
        let n = self.ip_numbers[usize::from(v6)].fetch_add(1, Ordering::Relaxed);
        let prefix = if v6 { IP6_PREFIX } else { IP4_PREFIX };
        let path = OwnedObjectPath::try_from(format!("{prefix}/{n}"))?;
        let (tx, rx) = watch::channel(Arc::new(data));
        if v6 {
            self.serve(path.as_str(), Ip6ConfigView { data: rx })
                .await?;
        } else {
            self.serve(path.as_str(), Ip4ConfigView { data: rx })
                .await?;
        }
        let o = IpObject { path, data: tx, v6 };
        self.announce(o.path.as_str(), &[o.iface()]).await?;
        Ok(o)
    }

    /// Replaces an IP config's data, announcing what changed.
    pub async fn update_ip(&self, o: &IpObject, data: IpData) -> zbus::Result<()> {
        if **o.data.borrow() == data {
            return Ok(());
        }
        o.data.send_replace(Arc::new(data));
        if !self.is_live() {
            return Ok(());
        }
        let server = self.conn.object_server();
        let all = interfaces_of(server, &self.conn, o.path.as_str(), &[o.iface()]).await?;
        for (_, props) in all {
            let mut props: Vec<(String, OwnedVariant)> = props
                .into_iter()
                .map(|(k, v)| Ok((k, v.to_variant()?)))
                .collect::<zbus::Result<_>>()?;
            props.sort_by(|a, b| a.0.cmp(&b.0));
            let props: Vec<(&str, Variant<'_>)> = props
                .iter()
                .map(|(k, v)| (k.as_str(), (**v).clone()))
                .collect();
            self.changed(o.path.as_str(), o.iface(), props).await?;
        }
        Ok(())
    }

    /// Unexports an IP config object.
    pub async fn unexport_ip(&self, o: IpObject) {
        self.withdraw(o.path.as_str(), &[o.iface()]).await;
        if o.v6 {
            self.unserve::<Ip6ConfigView>(o.path.as_str()).await;
        } else {
            self.unserve::<Ip4ConfigView>(o.path.as_str()).await;
        }
    }
}
