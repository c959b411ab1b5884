//! `Device` and its companions (`Statistics` and one type interface): views onto one kernel
//! link as the core publishes it.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot, watch};
use zbus::object_server::SignalEmitter;
use zbus::{OwnedObjectPath, OwnedVariant};

use super::objects::Iface;
use crate::netlink::links::LinkKind;
use crate::state::{Command, DeviceError, DeviceSnapshot, STATE_ACTIVATED};

fn root() -> OwnedObjectPath {
    OwnedObjectPath::try_from("/").expect("valid path")
}

/// `org.freedesktop.NetworkManager.Device`
pub struct DeviceView {
    /// The core's snapshot.
    pub snap: watch::Receiver<DeviceSnapshot>,
    /// Where its methods go.
    pub ctl: DeviceControl,
}

/// What a device's methods need: the core, and who may control networking.
#[derive(Clone)]
pub struct DeviceControl {
    /// Commands to the core.
    pub cmd: mpsc::Sender<Command>,
    /// Who may do what.
    pub auth: std::sync::Arc<crate::auth::Authority>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device")]
impl DeviceView {
    /// `nmcli device disconnect`: takes its connection down and keeps it from autoconnecting
    /// until it is activated again.
    async fn disconnect(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), DeviceError> {
        let caller = crate::auth::Caller::of(conn, &hdr)
            .await
            .map_err(|e| DeviceError::PermissionDenied(e.to_string()))?;
        self.ctl
            .auth
            .require(&caller, "network-control")
            .await
            .map_err(DeviceError::PermissionDenied)?;
        let (reply, rx) = oneshot::channel();
        let index = self.snap.borrow().link.index;
        self.ctl
            .cmd
            .send(Command::DisconnectDevice { index, reply })
            .await
            .map_err(|_| DeviceError::Failed("tinynmd is shutting down".into()))?;
        rx.await
            .map_err(|_| DeviceError::Failed("tinynmd is shutting down".into()))?
    }

    #[zbus(property)]
    fn udi(&self) -> String {
        format!("/virtual/device/{}", self.snap.borrow().link.name)
    }
    #[zbus(property)]
    fn path(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn interface(&self) -> String {
        self.snap.borrow().link.name.clone()
    }
    #[zbus(property)]
    fn ip_interface(&self) -> String {
        self.snap.borrow().link.name.clone()
    }
    #[zbus(property)]
    fn driver(&self) -> String {
        self.snap.borrow().link.kind.driver().to_string()
    }
    #[zbus(property)]
    fn driver_version(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn firmware_version(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn capabilities(&self) -> u32 {
        self.snap.borrow().link.kind.capabilities()
    }
    #[zbus(property)]
    fn ip4_address(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn state(&self) -> u32 {
        self.snap.borrow().state
    }
    #[zbus(property)]
    fn state_reason(&self) -> (u32, u32) {
        let s = self.snap.borrow();
        (s.state, s.reason)
    }
    #[zbus(property)]
    fn active_connection(&self) -> OwnedObjectPath {
        self.snap.borrow().active.clone()
    }
    #[zbus(property)]
    fn ip4_config(&self) -> OwnedObjectPath {
        self.snap.borrow().ip4.clone()
    }
    #[zbus(property)]
    fn dhcp4_config(&self) -> OwnedObjectPath {
        self.snap.borrow().dhcp4.clone()
    }
    #[zbus(property)]
    fn ip6_config(&self) -> OwnedObjectPath {
        self.snap.borrow().ip6.clone()
    }
    #[zbus(property)]
    fn dhcp6_config(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn managed(&self) -> bool {
        self.snap.borrow().state != crate::state::STATE_UNMANAGED
    }
    #[zbus(property)]
    fn autoconnect(&self) -> bool {
        self.snap.borrow().autoconnect
    }
    #[zbus(property)]
    fn firmware_missing(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn nm_plugin_missing(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn device_type(&self) -> u32 {
        self.snap.borrow().link.kind.device_type()
    }
    #[zbus(property)]
    fn available_connections(&self) -> Vec<OwnedObjectPath> {
        self.snap.borrow().available.clone()
    }
    #[zbus(property)]
    fn physical_port_id(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn mtu(&self) -> u32 {
        self.snap.borrow().link.mtu
    }
    #[zbus(property)]
    fn metered(&self) -> u32 {
        // NM_METERED_GUESS_NO once active, UNKNOWN otherwise (as NM shows).
        if self.snap.borrow().state == STATE_ACTIVATED {
            4
        } else {
            0
        }
    }
    #[zbus(property)]
    fn lldp_neighbors(&self) -> Vec<HashMap<String, OwnedVariant>> {
        Vec::new()
    }
    #[zbus(property)]
    fn real(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn ip4_connectivity(&self) -> u32 {
        connectivity(&self.snap.borrow())
    }
    #[zbus(property)]
    fn ip6_connectivity(&self) -> u32 {
        connectivity(&self.snap.borrow())
    }
    #[zbus(property)]
    fn interface_flags(&self) -> u32 {
        self.snap.borrow().link.interface_flags()
    }
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.snap.borrow().link.hw_address.clone()
    }
    #[zbus(property)]
    fn ports(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }

    /// NM's device state signal (libnm reads `StateReason` instead, but others listen).
    #[zbus(signal, name = "StateChanged")]
    pub async fn emit_state_changed(
        e: &SignalEmitter<'_>,
        new_state: u32,
        old_state: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

/// NMConnectivityState: FULL through the device with the default route, LIMITED on other
/// assumed devices, UNKNOWN on unmanaged ones (tinynmd runs no connectivity checks).
fn connectivity(s: &DeviceSnapshot) -> u32 {
    match (s.state == STATE_ACTIVATED, s.default_route) {
        (true, true) => 4,
        (true, false) => 3,
        (false, _) => 0,
    }
}

/// `org.freedesktop.NetworkManager.Device.Statistics`
pub struct StatisticsView {
    /// The core's snapshot.
    pub snap: watch::Receiver<DeviceSnapshot>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device.Statistics")]
impl StatisticsView {
    #[zbus(property)]
    fn refresh_rate_ms(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn tx_bytes(&self) -> u64 {
        self.snap.borrow().link.tx_bytes
    }
    #[zbus(property)]
    fn rx_bytes(&self) -> u64 {
        self.snap.borrow().link.rx_bytes
    }
}

/// `org.freedesktop.NetworkManager.Device.Loopback` (no properties)
pub struct LoopbackView;

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device.Loopback")]
impl LoopbackView {}

/// `org.freedesktop.NetworkManager.Device.Tun`
pub struct TunView {
    /// The core's snapshot.
    pub snap: watch::Receiver<DeviceSnapshot>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device.Tun")]
impl TunView {
    #[zbus(property)]
    fn owner(&self) -> i64 {
        -1
    }
    #[zbus(property)]
    fn group(&self) -> i64 {
        -1
    }
    #[zbus(property)]
    fn mode(&self) -> String {
        if self.snap.borrow().link.kind == LinkKind::Tap {
            "tap".into()
        } else {
            "tun".into()
        }
    }
    #[zbus(property)]
    fn no_pi(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn vnet_hdr(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn multi_queue(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.snap.borrow().link.hw_address.clone()
    }
}

/// `org.freedesktop.NetworkManager.Device.Wired` (ethernet and veth)
pub struct WiredView {
    /// The core's snapshot.
    pub snap: watch::Receiver<DeviceSnapshot>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device.Wired")]
impl WiredView {
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.snap.borrow().link.hw_address.clone()
    }
    #[zbus(property)]
    fn perm_hw_address(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn speed(&self) -> u32 {
        if self.snap.borrow().link.kind == LinkKind::Veth {
            10000
        } else {
            0
        }
    }
    #[zbus(property)]
    fn s390_subchannels(&self) -> Vec<String> {
        Vec::new()
    }
    #[zbus(property)]
    fn carrier(&self) -> bool {
        self.snap.borrow().link.lower_up
    }
}

/// `org.freedesktop.NetworkManager.Device.Veth`
pub struct VethView {
    /// The core's snapshot.
    pub snap: watch::Receiver<DeviceSnapshot>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device.Veth")]
impl VethView {
    #[zbus(property)]
    fn peer(&self) -> OwnedObjectPath {
        self.snap.borrow().peer.clone()
    }
}

/// `org.freedesktop.NetworkManager.Device.Generic`
pub struct GenericView {
    /// The core's snapshot.
    pub snap: watch::Receiver<DeviceSnapshot>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device.Generic")]
impl GenericView {
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.snap.borrow().link.hw_address.clone()
    }
    #[zbus(property)]
    fn type_description(&self) -> String {
        match &self.snap.borrow().link.kind {
            LinkKind::Generic(k) if !k.is_empty() => k.clone(),
            _ => "generic".into(),
        }
    }
}

/// Serves a device's views: `Device`, `Statistics` and its type's interfaces (`ifaces`).
pub async fn serve_device(
    bus: &super::export::Exporter,
    p: &str,
    ifaces: &[Iface],
    rx: &watch::Receiver<DeviceSnapshot>,
    ctl: DeviceControl,
) -> zbus::Result<()> {
    bus.serve(
        p,
        DeviceView {
            snap: rx.clone(),
            ctl,
        },
    )
    .await?;
    bus.serve(p, StatisticsView { snap: rx.clone() }).await?;
    for i in ifaces {
        match i {
            Iface::Loopback => bus.serve(p, LoopbackView).await?,
            Iface::Tun => bus.serve(p, TunView { snap: rx.clone() }).await?,
            Iface::Wired => bus.serve(p, WiredView { snap: rx.clone() }).await?,
            Iface::Veth => bus.serve(p, VethView { snap: rx.clone() }).await?,
            Iface::Generic => bus.serve(p, GenericView { snap: rx.clone() }).await?,
            _ => {}
        }
    }
    Ok(())
}

/// Stops serving what [`serve_device`] served.
pub async fn unserve_device(bus: &super::export::Exporter, p: &str, ifaces: &[Iface]) {
    bus.unserve::<DeviceView>(p).await;
    bus.unserve::<StatisticsView>(p).await;
    for i in ifaces {
        match i {
            Iface::Loopback => bus.unserve::<LoopbackView>(p).await,
            Iface::Tun => bus.unserve::<TunView>(p).await,
            Iface::Wired => bus.unserve::<WiredView>(p).await,
            Iface::Veth => bus.unserve::<VethView>(p).await,
            Iface::Generic => bus.unserve::<GenericView>(p).await,
            _ => {}
        }
    }
}
