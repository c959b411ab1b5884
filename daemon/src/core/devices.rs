//! Devices: the core's side of the kernel's links. Each link is a Device object with its
//! IP4Config/IP6Config; a link that is up with an address gets, as in NM, a generated profile
//! and an external active connection ("connected (externally)"), which VPNs then sit on.

use tinynm_config::Profile;
use tinynm_config::nm::AcState;
use tokio::sync::watch;
use zbus::{OwnedObjectPath, Variant};

use super::Core;
use crate::bus::active::ActiveView;
use crate::bus::device::{DeviceControl, DeviceView, serve_device, unserve_device};
use crate::bus::export::IpObject;
use crate::bus::manager::Manager;
use crate::bus::objects::{Iface, interfaces_of};
use crate::netlink::Lookup;
use crate::netlink::links::{Link, LinkKind};
use crate::state::paths::NM_PATH;
use crate::state::{
    AcId, AcSnapshot, Command, DeviceSnapshot, Generated, IpData, NmError, ProfileId,
    STATE_ACTIVATED, STATE_UNMANAGED, root,
};

/// NM_ACTIVATION_STATE_FLAG_* of an external connection: EXTERNAL | IP6_READY | IP4_READY |
/// LAYER2_READY | IS_CONTROLLER… as NM shows them (220).
const EXTERNAL_FLAGS: u32 = 0x80 | 0x40 | 0x10 | 0x08 | 0x04;

/// NM's way through the states for a link it assumes: UNAVAILABLE and DISCONNECTED
/// (CONNECTION_ASSUMED), then, once the external connection is exported and a client has had
/// the time to read it, PREPARE … ACTIVATED: `nmcli monitor` prints "connecting (externally)"
/// and "connected (externally)" as it does with NM.
const ASSUME_STEPS: [(u32, u32); 8] = {
    use crate::state::{dev_reason as r, dev_state as s};
    [
        (s::UNAVAILABLE, r::CONNECTION_ASSUMED),
        (s::DISCONNECTED, r::CONNECTION_ASSUMED),
        (s::PREPARE, r::NONE),
        (s::CONFIG, r::NONE),
        (s::IP_CONFIG, r::NONE),
        (s::IP_CHECK, r::NONE),
        (s::SECONDARIES, r::NONE),
        (STATE_ACTIVATED, r::NONE),
    ]
};

/// How long an assumed device waits in DISCONNECTED for a client to read its generated
/// profile (NM takes about 13 ms between the two).
const ASSUME_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// One exported device.
pub struct DeviceEntry {
    /// Its object path.
    pub path: OwnedObjectPath,
    ifaces: Vec<Iface>,
    /// Its published snapshot.
    pub snap: watch::Sender<DeviceSnapshot>,
    ip4: IpObject,
    ip6: IpObject,
    /// Its generated profile and external active connection, while it has them.
    pub external: Option<(ProfileId, AcId)>,
    /// The wired activation that holds it, while one does.
    pub managed: Option<AcId>,
}

/// An external active connection.
pub struct ExternalAc {
    /// The device's ifindex.
    pub device: u32,
    /// Its snapshot (the view reads it).
    pub snap: watch::Sender<AcSnapshot>,
}

fn type_ifaces(kind: &LinkKind) -> Vec<Iface> {
    match kind {
        LinkKind::Loopback => vec![Iface::Loopback],
        LinkKind::Tun | LinkKind::Tap => vec![Iface::Tun],
        LinkKind::Veth => vec![Iface::Wired, Iface::Veth],
        LinkKind::Ethernet => vec![Iface::Wired],
        LinkKind::Generic(_) => vec![Iface::Generic],
    }
}

/// A device's IP config as the kernel has it: its addresses, and the gateway when the
/// default route goes through it.
fn device_ip(link: &Link, v6: bool, default: Option<&Lookup>) -> IpData {
    let addrs = link
        .addrs
        .iter()
        .filter(|a| a.addr.is_ipv6() == v6)
        .cloned()
        .collect();
    let gateway = match default {
        Some(l) if l.oif == link.index && !v6 => l
            .gateway
            .map(|g| g.to_string())
            .unwrap_or_else(|| "0.0.0.0".into()),
        _ => String::new(),
    };
    IpData {
        addrs,
        gateway,
        ..IpData::default()
    }
}

impl Core {
    /// Makes the Device objects match the kernel's links.
    pub async fn sync_links(&mut self, links: Vec<Link>) -> zbus::Result<()> {
        let default = self.default_route().await;
        let gone: Vec<u32> = self
            .devices
            .keys()
            .filter(|i| !links.iter().any(|l| l.index == **i))
            .copied()
            .collect();
        for index in gone {
            self.remove_device(index).await?;
        }
        for l in links {
            if self.devices.contains_key(&l.index) {
                self.update_device(l, default.as_ref()).await?;
            } else {
                self.add_device(l, default.as_ref()).await?;
            }
        }
        self.link_peers().await?;
        self.publish_manager().await
    }

    async fn add_device(&mut self, link: Link, default: Option<&Lookup>) -> zbus::Result<()> {
        let n = self.next_device;
        self.next_device = n.next();
        let path = n.path();
        let bus = self.h.bus.clone();
        let ip4 = bus
            .export_ip(false, device_ip(&link, false, default))
            .await?;
        let ip6 = bus.export_ip(true, device_ip(&link, true, default)).await?;
        let index = link.index;
        let configured = link.configured();
        let mut ifaces = vec![Iface::Device, Iface::Statistics];
        ifaces.extend(type_ifaces(&link.kind));
        let (tx, rx) = watch::channel(DeviceSnapshot {
            default_route: default.is_some_and(|d| d.oif == index),
            link,
            state: STATE_UNMANAGED,
            reason: 0,
            autoconnect: true,
            active: root(),
            available: Vec::new(),
            ip4: ip4.path.clone(),
            ip6: ip6.path.clone(),
            dhcp4: root(),
            peer: root(),
        });
        let p = path.as_str();
        let ctl = DeviceControl {
            cmd: self.tx.clone(),
            auth: self.auth.clone(),
        };
        serve_device(&bus, p, &ifaces, &rx, ctl).await?;
        bus.announce(p, &ifaces).await?;
        if bus.is_live() {
            Manager::emit_device_added(&bus.emitter(NM_PATH)?, path.clone()).await?;
        }
        tracing::debug!("device {path}: {}", rx.borrow().link.name);
        self.devices.insert(
            index,
            DeviceEntry {
                path,
                ifaces,
                snap: tx,
                ip4,
                ip6,
                external: None,
                managed: None,
            },
        );
        // Clients learn of a device from the Manager's `Devices`: it lists the device (at
        // UNMANAGED) before the device moves, as NM's does.
        self.publish_manager().await?;
        if configured {
            self.add_external(index).await?;
        }
        Ok(())
    }

    async fn update_device(&mut self, link: Link, default: Option<&Lookup>) -> zbus::Result<()> {
        let index = link.index;
        let Some(entry) = self.devices.get(&index) else {
            return Ok(());
        };
        let old = entry.snap.borrow().clone();
        let bus = &self.h.bus;
        bus.update_ip(&entry.ip4, device_ip(&link, false, default))
            .await?;
        bus.update_ip(&entry.ip6, device_ip(&link, true, default))
            .await?;
        let default_route = default.is_some_and(|d| d.oif == index);
        let mut props: Vec<(&str, Variant<'_>)> = Vec::new();
        if old.link.mtu != link.mtu {
            props.push(("Mtu", Variant::from(link.mtu)));
        }
        if old.link.hw_address != link.hw_address {
            props.push(("HwAddress", Variant::from(link.hw_address.clone())));
        }
        if old.link.interface_flags() != link.interface_flags() {
            props.push(("InterfaceFlags", Variant::from(link.interface_flags())));
        }
        let (was, now) = (old.link.configured(), link.configured());
        let addrs_changed = old.link.addrs != link.addrs;
        let addrs = link.addrs.clone();
        entry.snap.send_modify(|s| {
            s.link = link;
            s.default_route = default_route;
        });
        if old.default_route != default_route {
            let c: u32 = if !now {
                0
            } else if default_route {
                4
            } else {
                3
            };
            props.push(("Ip4Connectivity", Variant::from(c)));
            props.push(("Ip6Connectivity", Variant::from(c)));
        }
        if !props.is_empty() {
            bus.changed(entry.path.as_str(), Iface::Device, props)
                .await?;
        }
        // A link tinynmd configures itself is never anyone else's.
        let managed =
            entry.managed.is_some() || entry.external.is_none() && old.state != STATE_UNMANAGED;
        match (was, now) {
            _ if managed => {}
            (true, false) => self.remove_external(index).await?,
            (false, true) => self.add_external(index).await?,
            (true, true) if addrs_changed => {
                if let Some((pn, _)) = entry.external
                    && let Some(p) = self.profiles.get(&pn)
                {
                    p.snap.send_modify(|s| {
                        if let Some(g) = &mut s.generated {
                            g.addrs = addrs;
                        }
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn remove_device(&mut self, index: u32) -> zbus::Result<()> {
        self.remove_external(index).await?;
        let Some(entry) = self.devices.remove(&index) else {
            return Ok(());
        };
        // The Manager stops listing it before it goes.
        self.publish_manager().await?;
        let bus = &self.h.bus;
        if bus.is_live() {
            Manager::emit_device_removed(&bus.emitter(NM_PATH)?, entry.path.clone()).await?;
        }
        let p = entry.path.as_str();
        bus.withdraw(p, &entry.ifaces).await;
        unserve_device(bus, p, &entry.ifaces).await;
        bus.unexport_ip(entry.ip4).await;
        bus.unexport_ip(entry.ip6).await;
        Ok(())
    }

    /// Each veth's `Peer`, once both ends are known.
    async fn link_peers(&mut self) -> zbus::Result<()> {
        let paths: Vec<(u32, OwnedObjectPath)> = self
            .devices
            .iter()
            .map(|(i, d)| (*i, d.path.clone()))
            .collect();
        for entry in self.devices.values() {
            let (peer_index, old) = {
                let s = entry.snap.borrow();
                (s.link.peer, s.peer.clone())
            };
            let peer = peer_index
                .and_then(|pi| paths.iter().find(|(i, _)| *i == pi))
                .map(|(_, p)| p.clone())
                .unwrap_or_else(root);
            if peer != old && entry.ifaces.contains(&Iface::Veth) {
                entry.snap.send_modify(|s| s.peer = peer.clone());
                self.h
                    .bus
                    .changed(
                        entry.path.as_str(),
                        Iface::Veth,
                        vec![("Peer", Variant::from(peer))],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// A generated profile and an external active connection for a configured link.
    async fn add_external(&mut self, index: u32) -> zbus::Result<()> {
        let Some(entry) = self.devices.get(&index) else {
            return Ok(());
        };
        let (link, dev_path, ip4, ip6) = {
            let s = entry.snap.borrow();
            (
                s.link.clone(),
                entry.path.clone(),
                s.ip4.clone(),
                s.ip6.clone(),
            )
        };
        let mut p = Profile::new_vpn(&link.name, &uuid::Uuid::new_v4().to_string(), "");
        p.connection.autoconnect = false;
        p.connection.kind = link.kind.connection_type().to_string();
        let kind = p.connection.kind.clone();
        let (id, uuid) = (p.connection.id.clone(), p.connection.uuid.clone());
        let fetched = std::sync::Arc::new(tokio::sync::Notify::new());
        let generated = Generated {
            iface: link.name.clone(),
            addrs: link.addrs.clone(),
            fetched: fetched.clone(),
        };
        let ppath = self
            .insert_profile(p, None, None, Some(generated), true)
            .await?;
        let pn = ProfileId(self.next_profile.0 - 1);
        let n = self.next_ac;
        self.next_ac = n.next();
        let path = n.path();
        let mut ac = AcSnapshot::device(ppath.clone(), id, uuid, kind, dev_path.clone(), ip4, ip6);
        ac.state = AcState::Activated as u32;
        ac.state_flags = EXTERNAL_FLAGS;
        let (tx, rx) = watch::channel(ac);
        let bus = &self.h.bus;
        bus.serve(path.as_str(), ActiveView { snap: rx }).await?;
        bus.announce(path.as_str(), &[Iface::Active]).await?;
        self.externals.insert(
            n,
            ExternalAc {
                device: index,
                snap: tx,
            },
        );
        let Some(entry) = self.devices.get_mut(&index) else {
            return Ok(());
        };
        entry.external = Some((pn, n));
        entry.snap.send_modify(|s| {
            s.active = path.clone();
            s.available = vec![ppath.clone()];
        });
        // Before the name is owned nobody is watching: straight to ACTIVATED.
        if self.startup_deadline.is_none() {
            self.walk(index, &ASSUME_STEPS).await?;
        } else {
            self.walk(index, &ASSUME_STEPS[..2]).await?;
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(ASSUME_WAIT, fetched.notified()).await;
                let _ = tx.send(Command::Assumed { index, ac: n }).await;
            });
        }
        self.publish_manager().await
    }

    /// The rest of the walk of a device whose external connection is `ac`, if it still is.
    pub(super) async fn assumed(&mut self, index: u32, ac: AcId) -> zbus::Result<()> {
        let Some(entry) = self.devices.get(&index) else {
            return Ok(());
        };
        if entry.external.map(|(_, n)| n) != Some(ac) {
            return Ok(());
        }
        self.walk(index, &ASSUME_STEPS[2..]).await?;
        self.publish_manager().await
    }

    /// Takes a device through `steps`, each announced on its own.
    async fn walk(&self, index: u32, steps: &[(u32, u32)]) -> zbus::Result<()> {
        let Some(entry) = self.devices.get(&index) else {
            return Ok(());
        };
        let mut old = entry.snap.borrow().state;
        for &(state, reason) in steps {
            entry.snap.send_modify(|d| {
                d.state = state;
                d.reason = reason;
            });
            self.announce_device_state(index, old).await?;
            old = state;
        }
        Ok(())
    }

    /// Announces a device's new state (from `old`), with the properties that follow it, as
    /// its view shows them.
    pub(super) async fn announce_device_state(&self, index: u32, old: u32) -> zbus::Result<()> {
        // Before the name is owned nobody hears it: the properties are not even read.
        if !self.h.bus.is_live() {
            return Ok(());
        }
        let Some(entry) = self.devices.get(&index) else {
            return Ok(());
        };
        let p = entry.path.as_str();
        let bus = &self.h.bus;
        let server = bus.conn().object_server();
        let all = interfaces_of(server, bus.conn(), p, &[Iface::Device]).await?;
        let device_iface = Iface::Device.name();
        let keep = [
            "ActiveConnection",
            "AvailableConnections",
            "Managed",
            "Metered",
            "Ip4Connectivity",
            "Ip6Connectivity",
            "State",
            "StateReason",
        ];
        let mut props = Vec::new();
        for k in keep {
            if let Some(v) = all.get(&device_iface).and_then(|d| d.get(k)) {
                props.push((k, Variant::from(v.to_variant()?)));
            }
        }
        bus.changed(p, Iface::Device, props).await?;
        let (new, reason) = {
            let s = entry.snap.borrow();
            (s.state, s.reason)
        };
        DeviceView::emit_state_changed(&bus.emitter(p)?, new, old, reason).await
    }

    /// The link is no longer configured (or gone): its external connection and profile go.
    pub(super) async fn remove_external(&mut self, index: u32) -> zbus::Result<()> {
        let Some(entry) = self.devices.get_mut(&index) else {
            return Ok(());
        };
        let Some((pn, n)) = entry.external.take() else {
            return Ok(());
        };
        let was = entry.snap.borrow().state;
        entry.snap.send_modify(|s| {
            s.state = STATE_UNMANAGED;
            s.reason = 0;
            s.active = root();
            s.available = Vec::new();
        });
        self.announce_device_state(index, was).await?;
        let path = n.path();
        // The VPNs over it lose their base: down, as NM's parent-device rule says.
        for d in self.dependents(n) {
            self.take_down(d, tinynm_config::nm::Reason::DeviceDisconnected)
                .await;
        }
        if let Some(ac) = self.externals.remove(&n) {
            let deactivated = AcState::Deactivated as u32;
            ac.snap.send_modify(|s| s.state = deactivated);
            let bus = &self.h.bus;
            if bus.is_live() {
                ActiveView::emit_state_changed(&bus.emitter(path.as_str())?, deactivated, 0)
                    .await?;
            }
            bus.changed(
                path.as_str(),
                Iface::Active,
                vec![("State", Variant::from(deactivated))],
            )
            .await?;
        }
        self.publish_manager().await?;
        self.h.bus.withdraw(path.as_str(), &[Iface::Active]).await;
        self.h.bus.unserve::<ActiveView>(path.as_str()).await;
        self.drop_profile(pn).await
    }

    /// The base connection and parent device of a new VPN, from ActivateConnection's device
    /// and specific object: the given active connection, the device's, or the primary one.
    pub(super) fn base_for(
        &self,
        device: &OwnedObjectPath,
        specific: OwnedObjectPath,
    ) -> Result<(OwnedObjectPath, Option<OwnedObjectPath>), NmError> {
        let device_of = |n: AcId| -> Option<OwnedObjectPath> {
            if let Some(e) = self.externals.get(&n) {
                return e.snap.borrow().devices.first().cloned();
            }
            self.actives
                .get(&n)
                .and_then(|a| a.snap.borrow().devices.first().cloned())
        };
        if specific.as_str() != "/" {
            let n = AcId::of_path(specific.as_str())
                .filter(|n| self.actives.contains_key(n) || self.externals.contains_key(n))
                .ok_or_else(|| {
                    NmError::ConnectionNotActive(
                        "Base connection for VPN connection not active.".into(),
                    )
                })?;
            return Ok((specific, device_of(n)));
        }
        if device.as_str() != "/" {
            let Some(d) = self.devices.values().find(|d| &d.path == device) else {
                return Err(NmError::UnknownDevice(format!(
                    "Device '{}' not found",
                    device.as_str()
                )));
            };
            let Some((_, n)) = d.external else {
                return Err(NmError::ConnectionNotActive(format!(
                    "no active connection on device '{}'",
                    d.snap.borrow().link.name
                )));
            };
            return Ok((n.path(), Some(device.clone())));
        }
        let primary = self.out.manager.borrow().primary.clone();
        match AcId::of_path(primary.as_str()) {
            Some(n) => Ok((primary, device_of(n))),
            None => Err(NmError::UnknownConnection(
                "Could not find source connection.".into(),
            )),
        }
    }
}
