//! DHCPv4 for a wired connection, through `mozim` (the nispor/nmstate authors' client): what
//! NM's internal client sends by default (client id `01:<MAC>`, the host name), and its
//! leases, renewals, rebinds and losses as events.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mozim::{DhcpV4Client, DhcpV4Config, DhcpV4Lease, DhcpV4State};

/// A lease, as the connection uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Our address.
    pub address: Ipv4Addr,
    /// Its prefix (from the subnet mask).
    pub prefix: u8,
    /// The first router.
    pub gateway: Option<Ipv4Addr>,
    /// Name servers.
    pub dns: Vec<IpAddr>,
    /// The domain name (option 15) and search list (option 119).
    pub domains: Vec<String>,
    /// Lease time, seconds.
    pub lease_time: u32,
    /// The server that gave it.
    pub server: Ipv4Addr,
}

impl Lease {
    fn of(l: &DhcpV4Lease) -> Lease {
        let mut domains: Vec<String> = l.domain_name.iter().cloned().collect();
        for d in l.domain_search.iter().flatten() {
            if !domains.contains(d) {
                domains.push(d.clone());
            }
        }
        Lease {
            address: l.yiaddr,
            prefix: u32::from(l.subnet_mask).leading_ones() as u8,
            gateway: l.gateways.as_ref().and_then(|g| g.first().copied()),
            dns: l
                .dns_srvs
                .iter()
                .flatten()
                .map(|a| IpAddr::V4(*a))
                .collect(),
            domains,
            lease_time: l.lease_time_sec,
            server: l.srv_id,
        }
    }
}

/// The last lease of each profile on each link (profile UUID, ifindex), with when it was
/// had: a new activation asks for the same address again (RFC 2131's INIT-REBOOT, as NM does),
/// which skips DISCOVER and its random start delay.
#[derive(Clone, Default)]
pub struct Leases(Arc<Mutex<HashMap<LeaseKey, (DhcpV4Lease, Instant)>>>);

/// A profile's UUID and a link's ifindex.
pub type LeaseKey = (String, u32);

impl Leases {
    /// The lease to ask for again, while it has not run out.
    pub fn get(&self, key: &LeaseKey) -> Option<DhcpV4Lease> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key)
            .filter(|(l, at)| at.elapsed().as_secs() < u64::from(l.lease_time_sec))
            .map(|(l, _)| l.clone())
    }

    fn set(&self, key: LeaseKey, l: Option<DhcpV4Lease>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match l {
            Some(l) => m.insert(key, (l, Instant::now())),
            None => m.remove(&key),
        };
    }
}

/// What the client reports.
#[derive(Debug)]
pub enum DhcpEvent {
    /// A lease: the first, or a renewed or rebound one (the same or a new address).
    Lease(Lease),
    /// The lease is gone (expired without renewal, or the server said no): the address must go.
    Lost(&'static str),
    /// No lease could be had in time, or the client cannot run.
    Failed(String),
}

/// One link's DHCPv4 client.
pub struct Dhcp {
    client: DhcpV4Client,
    lease: Option<DhcpV4Lease>,
    leases: Leases,
    key: LeaseKey,
}

impl Dhcp {
    /// A client on link `index` (`name`, `mac`). It has no timeout of its own: mozim's would
    /// also cut renewals short, before the lease's end; the caller bounds the first lease.
    pub async fn start(
        index: u32,
        name: &str,
        mac: &str,
        leases: Leases,
        key: LeaseKey,
    ) -> Result<Dhcp, String> {
        let mut cfg = DhcpV4Config::new(name);
        cfg.set_iface_index(index);
        cfg.set_iface_mac(mac)
            .map_err(|e| format!("DHCP on {name}: {e}"))?;
        if let Ok(h) = nix::unistd::gethostname()
            && let Some(h) = h.to_str().filter(|h| !h.is_empty())
        {
            cfg.set_host_name(h);
        }
        cfg.use_mac_as_client_id();
        cfg.set_timeout_sec(0);
        let previous = leases.get(&key);
        if let Some(l) = &previous {
            tracing::info!("DHCPv4: asking for {} again (INIT-REBOOT)", l.yiaddr);
        }
        let client = DhcpV4Client::init(cfg, previous)
            .await
            .map_err(|e| format!("DHCP on {name}: {e}"))?;
        Ok(Dhcp {
            client,
            lease: None,
            leases,
            key,
        })
    }

    /// The next thing that matters: a lease, its loss, or a failure.
    pub async fn next(&mut self) -> DhcpEvent {
        loop {
            match self.client.run().await {
                Ok(DhcpV4State::Done(l)) => {
                    self.lease = Some((*l).clone());
                    self.leases.set(self.key.clone(), Some((*l).clone()));
                    return DhcpEvent::Lease(Lease::of(&l));
                }
                Ok(DhcpV4State::InitReboot) if self.lease.is_some() => {
                    self.lease = None;
                    self.leases.set(self.key.clone(), None);
                    return DhcpEvent::Lost("the DHCP lease expired or the server refused it");
                }
                Ok(s) => tracing::debug!("DHCP: {s}"),
                Err(e) => {
                    self.client.clean_up();
                    if self.lease.take().is_some() {
                        self.leases.set(self.key.clone(), None);
                        return DhcpEvent::Lost("the DHCP lease could not be renewed");
                    }
                    return DhcpEvent::Failed(e.to_string());
                }
            }
        }
    }

    /// Tells the server the address is given back (DHCPRELEASE), as NM does at deactivation.
    pub async fn release(mut self) {
        // Given back: not asked for again.
        self.leases.set(self.key.clone(), None);
        if let Some(l) = self.lease.take()
            && let Err(e) = self.client.release(&l).await
        {
            tracing::warn!("DHCP release: {e}");
        }
    }
}
