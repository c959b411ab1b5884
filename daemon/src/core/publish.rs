//! What the core publishes: the Manager's state (active connections, primary connection,
//! devices, NMState) and the DNS configuration in force, each with NM's signals.

use tinynm_config::nm::{AcState, nm_state};
use zbus::{OwnedObjectPath, Variant};

use super::Core;
use crate::bus::manager::Manager;
use crate::bus::objects::Iface;
use crate::state::paths::{DNS_PATH, NM_PATH};
use crate::state::{AcId, ManagerSnapshot, root};

impl Core {
    /// Publishes the Manager's list and state (and their PropertiesChanged when they changed).
    pub async fn publish_manager(&self) -> zbus::Result<()> {
        // Before NM's name is owned nobody reads the Manager: the start-up computes it once,
        // last ([`Core::prepare_manager`]).
        if !self.h.bus.is_live() {
            return Ok(());
        }
        let change = self.update_manager().await;
        self.announce_manager(change).await
    }

    /// Computes the Manager's snapshot without a signal: the last step before the name is
    /// requested.
    pub async fn prepare_manager(&self) {
        self.update_manager().await;
    }

    /// Recomputes the Manager's snapshot; returns the old one, for [`Core::announce_manager`].
    pub(super) async fn update_manager(&self) -> ManagerSnapshot {
        let mut numbers: Vec<AcId> = self
            .actives
            .keys()
            .chain(self.externals.keys())
            .copied()
            .collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        let active: Vec<OwnedObjectPath> = numbers.into_iter().map(AcId::path).collect();
        let any_up = self
            .actives
            .values()
            .any(|a| a.snap.borrow().state == AcState::Activated as u32);
        // Connected when a VPN is up or the kernel has a way out (a FIB lookup of a TEST-NET-2
        // address: nothing is sent anywhere).
        let way_out = self.default_route().await.map(|l| l.oif);
        tracing::debug!("manager: any VPN up {any_up}, a way out via {way_out:?}");
        let state = if any_up || way_out.is_some() {
            nm_state::CONNECTED_GLOBAL
        } else {
            nm_state::DISCONNECTED
        };
        let vpn = self.actives.iter().rev().find(|(_, a)| {
            let s = a.snap.borrow();
            s.state == AcState::Activated as u32 && (s.default4 || s.default6)
        });
        // The connection of the device the default goes through: tinynmd's own wired one
        // (from its IP config on, as NM), else the external one.
        let external = || {
            let oif = way_out?;
            if let Some(n) = self.devices.get(&oif).and_then(|d| d.managed)
                && let Some(a) = self.actives.get(&n)
            {
                return Some((n, a.snap.borrow().kind.clone()));
            }
            self.externals
                .iter()
                .find(|(_, e)| e.device == oif)
                .map(|(n, e)| (*n, e.snap.borrow().kind.clone()))
        };
        let (primary, primary_type) = match vpn {
            Some((n, _)) => (n.path(), "vpn".to_string()),
            None => match external() {
                Some((n, kind)) => (n.path(), kind),
                None => (root(), String::new()),
            },
        };
        let devices = self.devices.values().map(|d| d.path.clone()).collect();
        self.out.manager.send_replace(ManagerSnapshot {
            active,
            state,
            primary,
            primary_type,
            devices,
            startup: self.starting,
        })
    }

    /// Puts the active VPNs' DNS in force and shows it on the DnsManager.
    pub(super) async fn update_dns(&mut self) {
        let entries: Vec<crate::dns::DnsEntry> = self
            .actives
            .values()
            .filter(|a| {
                // A base connection's DNS counts from its IP config on (it waits for its
                // secondaries in ACTIVATING); a VPN's once it is up.
                let s = a.snap.borrow();
                s.state == AcState::Activated as u32
                    || (!s.vpn && s.state == AcState::Activating as u32)
            })
            .flat_map(|a| a.snap.borrow().dns.clone())
            .collect();
        {
            let now = self.out.dns.borrow();
            if now.entries == entries && now.error.is_empty() {
                return;
            }
        }
        // auto decides when there is something to put in force.
        if !entries.is_empty() {
            self.dns.detect(self.h.bus.conn()).await;
        }
        let (mode, rc) = (
            self.dns.mode().to_string(),
            self.dns.rc_manager().to_string(),
        );
        self.out.dns.send_modify(|s| {
            s.mode = mode;
            s.rc_manager = rc;
        });
        let before = self.out.dns.borrow().entries.clone();
        // What is in force afterwards: the new entries, or on failure still the old ones (the
        // next change tries again); the failure is shown, never the entries that failed.
        let (in_force, error) = match self.dns.apply(self.h.bus.conn(), &entries, &before).await {
            Ok(()) => {
                crate::netlink::crash_point("dns-applied");
                (entries, String::new())
            }
            Err(e) => {
                tracing::error!("DNS: {e}: the VPN's DNS is not in force");
                (before, e.to_string())
            }
        };
        let error_changed = self.out.dns.borrow().error != error;
        self.out.dns.send_modify(|s| {
            s.entries = in_force.clone();
            s.error = error.clone();
        });
        let config = crate::bus::dns::configuration(&in_force);
        self.h
            .bus
            .changed_or_log(
                DNS_PATH,
                Iface::Dns,
                vec![("Configuration", Variant::from(config))],
            )
            .await;
        if error_changed {
            self.h
                .bus
                .changed_or_log(
                    crate::state::paths::TINYNM_DNS_PATH,
                    Iface::DnsStatus,
                    vec![("Error", Variant::from(error))],
                )
                .await;
        }
    }

    /// The interface the kernel sends the default route through (a FIB lookup of a TEST-NET-2
    /// address: nothing is sent anywhere).
    pub(super) async fn default_route(&self) -> Option<crate::netlink::Lookup> {
        self.h
            .netlink
            .route_get(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                198, 51, 100, 255,
            )))
            .await
            .ok()
            .flatten()
    }

    /// Emits what changed since `old`.
    pub(super) async fn announce_manager(&self, old: ManagerSnapshot) -> zbus::Result<()> {
        let ManagerSnapshot {
            active,
            state,
            primary,
            primary_type,
            devices,
            startup,
        } = self.out.manager.borrow().clone();
        let mut props = Vec::new();
        if old.primary != primary {
            props.push(("PrimaryConnectionType", Variant::from(primary_type)));
            props.push(("PrimaryConnection", Variant::from(primary)));
        }
        if old.devices != devices {
            props.push(("Devices", Variant::from(devices.clone())));
            props.push(("AllDevices", Variant::from(devices)));
        }
        if old.active != active {
            props.push(("ActiveConnections", Variant::from(active)));
        }
        if old.state != state {
            props.push(("State", Variant::from(state)));
            props.push((
                "Connectivity",
                Variant::from(crate::state::connectivity(state)),
            ));
        }
        if old.startup != startup {
            props.push(("Startup", Variant::from(startup)));
        }
        if !props.is_empty() {
            self.h.bus.changed(NM_PATH, Iface::Manager, props).await?;
        }
        if old.state != state {
            Manager::emit_state_changed(&self.h.bus.emitter(NM_PATH)?, state).await?;
        }
        Ok(())
    }
}
