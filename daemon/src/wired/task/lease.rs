//! The wired task's DHCPv4 side: the first lease (bounded), and the DHCP4Config object that
//! shows it, as NM's: exported empty at IP_CONFIG and shown by the device at once, filled when
//! the lease comes and at each renewal, named by the connection once ACTIVATED, gone at the end.

use std::time::Duration;

use zbus::Variant;

use super::{DHCP_TIMEOUT, End, Task};
use crate::bus::objects::Iface;
use crate::state::{Command, dev_reason};
use crate::wired::dhcp::{Dhcp, DhcpEvent, Lease};

impl Task {
    pub(super) async fn first_lease(&mut self) -> Result<Lease, End> {
        let key = (
            self.p.profile.connection.uuid.clone(),
            self.p.link.name.clone(),
        );
        let mut d = Dhcp::start(
            self.p.link.index,
            &self.p.link.name,
            &self.p.link.hw_address,
            self.p.leases.clone(),
            key,
        )
        .await
        .map_err(|e| {
            tracing::error!("{e}");
            End::failed(dev_reason::IP_CONFIG_UNAVAILABLE)
        })?;
        tracing::info!("DHCPv4: beginning transaction (timeout in {DHCP_TIMEOUT} seconds)");
        let limit = Duration::from_secs(DHCP_TIMEOUT.into());
        let ev = match self.or_cmd(tokio::time::timeout(limit, d.next())).await? {
            Ok(ev) => ev,
            Err(_) => DhcpEvent::Failed(format!("no lease within {DHCP_TIMEOUT} s")),
        };
        self.dhcp = Some(d);
        match ev {
            DhcpEvent::Lease(l) => {
                tracing::info!(
                    "DHCPv4: lease {}/{} via {:?} from {} for {} s",
                    l.address,
                    l.prefix,
                    l.gateway,
                    l.server,
                    l.lease_time
                );
                Ok(l)
            }
            DhcpEvent::Lost(why) => {
                tracing::error!("DHCPv4: no lease: {why}");
                Err(End::failed(dev_reason::IP_CONFIG_UNAVAILABLE))
            }
            DhcpEvent::Failed(why) => {
                tracing::error!("DHCPv4: no lease: {why}");
                Err(End::failed(dev_reason::IP_CONFIG_UNAVAILABLE))
            }
        }
    }

    /// A new DHCP4Config, empty until the lease, which the device shows at once (as NM).
    pub(super) async fn export_dhcp4(&mut self) {
        match self.p.h.bus.export_dhcp4().await {
            Ok(o) => {
                let path = o.path.clone();
                self.dhcp4 = Some(o);
                let index = self.p.link.index;
                let _ = self.p.core.send(Command::DeviceDhcp4 { index, path }).await;
            }
            Err(e) => tracing::warn!("cannot export a DHCP4Config: {e}"),
        }
    }

    /// The lease's options on the DHCP4Config.
    pub(super) async fn show_lease(&self, l: &Lease) {
        if let Some(o) = &self.dhcp4
            && let Err(e) = self.p.h.bus.update_dhcp4(o, l.options.clone()).await
        {
            tracing::warn!("cannot show the lease: {e}");
        }
    }

    /// NM sets the connection's DHCP4Config only once it is ACTIVATED.
    pub(super) async fn dhcp4_on_ac(&self) {
        let Some(o) = &self.dhcp4 else {
            return;
        };
        let path = o.path.clone();
        self.p.snap.send_modify(|s| s.dhcp4_config = path.clone());
        self.p
            .h
            .bus
            .changed_or_log(
                self.path.as_str(),
                Iface::Active,
                vec![("Dhcp4Config", Variant::from(path))],
            )
            .await;
    }

    /// The DHCP4Config goes, and the device shows none.
    pub(super) async fn drop_dhcp4(&mut self) {
        if let Some(o) = self.dhcp4.take() {
            let index = self.p.link.index;
            let path = crate::state::root();
            let _ = self.p.core.send(Command::DeviceDhcp4 { index, path }).await;
            self.p.h.bus.unexport_dhcp4(o).await;
        }
    }
}
