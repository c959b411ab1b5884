//! DHCPv4 for a wired connection, through `mozim` (the nispor/nmstate authors' client): what
//! NM's internal client sends by default (client id `01:<MAC>`, the host name), and its
//! leases, renewals, rebinds and losses as events.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mozim::{DhcpV4Client, DhcpV4Config, DhcpV4Lease, DhcpV4State};
use serde::{Deserialize, Serialize};

/// How long an INIT-REBOOT request for the last address waits for an answer before the client
/// starts over with DISCOVER (a server that does not know the lease and is not authoritative
/// stays silent; mozim alone would try four times, about a minute).
const REBOOT_WAIT: Duration = Duration::from_secs(2);

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
    /// As NM's DHCP4Config shows it.
    pub options: crate::bus::dhcp4::Options,
}

/// The options NM's internal client asks for, shown as `requested_<name> = 1`.
const REQUESTED: [&str; 17] = [
    "broadcast_address",
    "domain_name",
    "domain_name_servers",
    "domain_search",
    "host_name",
    "interface_mtu",
    "ms_classless_static_routes",
    "nis_domain",
    "nis_servers",
    "ntp_servers",
    "rfc3442_classless_static_routes",
    "root_path",
    "routers",
    "static_routes",
    "subnet_mask",
    "time_offset",
    "wpad",
];

/// A lease's DHCP4Config `Options`, with NM's names and forms (addresses space-separated,
/// `expiry` the lease's end in seconds since the epoch).
fn nm_options(l: &DhcpV4Lease, client_id: &str) -> crate::bus::dhcp4::Options {
    let join = |v: &[Ipv4Addr]| {
        v.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut o = crate::bus::dhcp4::Options::new();
    let mut put = |k: &str, v: String| {
        o.insert(k.to_string(), v);
    };
    put("ip_address", l.yiaddr.to_string());
    put("subnet_mask", l.subnet_mask.to_string());
    put("dhcp_lease_time", l.lease_time_sec.to_string());
    put("dhcp_server_identifier", l.srv_id.to_string());
    put("dhcp_client_identifier", client_id.to_string());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    put("expiry", (now + u64::from(l.lease_time_sec)).to_string());
    if let Some(b) = l.broadcast_addr {
        put("broadcast_address", b.to_string());
    }
    if !l.siaddr.is_unspecified() {
        put("next_server", l.siaddr.to_string());
    }
    if let Some(g) = l.gateways.as_deref().filter(|g| !g.is_empty()) {
        put("routers", join(g));
    }
    if let Some(d) = l.dns_srvs.as_deref().filter(|d| !d.is_empty()) {
        put("domain_name_servers", join(d));
    }
    if let Some(n) = l.ntp_srvs.as_deref().filter(|n| !n.is_empty()) {
        put("ntp_servers", join(n));
    }
    if let Some(d) = &l.domain_name {
        put("domain_name", d.clone());
    }
    if let Some(s) = l.domain_search.as_ref().filter(|s| !s.is_empty()) {
        put("domain_search", s.join(" "));
    }
    if let Some(h) = &l.host_name {
        put("host_name", h.clone());
    }
    if let Some(m) = l.mtu {
        put("interface_mtu", m.to_string());
    }
    for r in REQUESTED {
        put(&format!("requested_{r}"), "1".into());
    }
    o
}

impl Lease {
    fn of(l: &DhcpV4Lease, client_id: &str) -> Lease {
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
            options: nm_options(l, client_id),
        }
    }
}

/// The last lease of each profile on each link (profile UUID, interface name), with when it
/// was had, in memory and on disk (as NM keeps `internal-<uuid>-<iface>.lease`): a new
/// activation, also after a restart or a reboot, asks for the same address again (RFC 2131's
/// INIT-REBOOT, as NM does), which skips DISCOVER and its random start delay.
#[derive(Clone, Default)]
pub struct Leases {
    known: Arc<Mutex<HashMap<LeaseKey, (DhcpV4Lease, SystemTime)>>>,
    /// Where they are kept across restarts (none: only in memory).
    dir: Option<PathBuf>,
}

/// A profile's UUID and a link's name.
pub type LeaseKey = (String, String);

/// A lease on disk: what INIT-REBOOT asks for again.
#[derive(Debug, Serialize, Deserialize)]
struct SavedLease {
    address: Ipv4Addr,
    netmask: Ipv4Addr,
    server: Ipv4Addr,
    lease_time: u32,
    /// When it was had, seconds since the epoch.
    obtained: u64,
}

impl Leases {
    /// Leases kept in `dir` (created when the first is written) as well as in memory.
    pub fn in_dir(dir: &Path) -> Leases {
        Leases {
            known: Arc::default(),
            dir: Some(dir.to_path_buf()),
        }
    }

    fn file(&self, (uuid, iface): &LeaseKey) -> Option<PathBuf> {
        // A UUID and an interface name hold no '/' (both are checked when read).
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{uuid}-{iface}.lease")))
    }

    /// The lease to ask for again, while it has not run out.
    pub fn get(&self, key: &LeaseKey) -> Option<DhcpV4Lease> {
        let live = |(l, at): &(DhcpV4Lease, SystemTime)| {
            at.elapsed()
                .is_ok_and(|e| e.as_secs() < u64::from(l.lease_time_sec))
        };
        {
            let m = self.known.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(x) = m.get(key) {
                return live(x).then(|| x.0.clone());
            }
        }
        let path = self.file(key)?;
        let text = std::fs::read_to_string(&path).ok()?;
        let saved: SavedLease = match toml::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("{}: not a lease, ignored: {e}", path.display());
                return None;
            }
        };
        let mut l = DhcpV4Lease::default();
        l.yiaddr = saved.address;
        l.subnet_mask = saved.netmask;
        l.srv_id = saved.server;
        l.lease_time_sec = saved.lease_time;
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(saved.obtained);
        let x = (l, at);
        live(&x).then_some(x.0)
    }

    fn set(&self, key: LeaseKey, l: Option<DhcpV4Lease>) {
        let now = SystemTime::now();
        if let Some(path) = self.file(&key) {
            let r = match &l {
                Some(l) => {
                    let saved = SavedLease {
                        address: l.yiaddr,
                        netmask: l.subnet_mask,
                        server: l.srv_id,
                        lease_time: l.lease_time_sec,
                        obtained: now
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0),
                    };
                    let text = toml::to_string(&saved).expect("a lease serializes");
                    path.parent()
                        .map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|_| crate::store::write_atomic(&path, text.as_bytes(), 0o600))
                }
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
            };
            if let Err(e) = r {
                tracing::warn!("{}: {e}", path.display());
            }
        }
        let mut m = self.known.lock().unwrap_or_else(|e| e.into_inner());
        match l {
            Some(l) => m.insert(key, (l, now)),
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
    cfg: DhcpV4Config,
    lease: Option<DhcpV4Lease>,
    /// Asking for the last address again (INIT-REBOOT), not answered yet.
    rebooting: bool,
    /// The client identifier sent, `01:<mac>`.
    client_id: String,
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
        // As NM: its DHCP client (n-dhcp4) has a start delay of 1 ms, where mozim waits a
        // random 0-200 ms before the first DISCOVER: most of a boot's time to the VPN.
        cfg.set_start_delay_max_ms(1);
        let previous = leases.get(&key);
        if let Some(l) = &previous {
            tracing::info!("DHCPv4: asking for {} again (INIT-REBOOT)", l.yiaddr);
        }
        let rebooting = previous.is_some();
        let client = DhcpV4Client::init(cfg.clone(), previous)
            .await
            .map_err(|e| format!("DHCP on {name}: {e}"))?;
        Ok(Dhcp {
            client,
            cfg,
            lease: None,
            rebooting,
            client_id: format!("01:{}", mac.to_ascii_lowercase()),
            leases,
            key,
        })
    }

    /// The client's next state; an INIT-REBOOT no one answers within [`REBOOT_WAIT`] starts
    /// over with DISCOVER.
    async fn run(&mut self) -> Result<DhcpV4State, mozim::DhcpError> {
        if !self.rebooting {
            return self.client.run().await;
        }
        match tokio::time::timeout(REBOOT_WAIT, self.client.run()).await {
            Ok(r) => {
                if matches!(r, Ok(DhcpV4State::Done(_))) {
                    self.rebooting = false;
                }
                r
            }
            Err(_) => {
                tracing::info!(
                    "DHCPv4: no answer for the last address within {} s: asking anew (DISCOVER)",
                    REBOOT_WAIT.as_secs()
                );
                self.rebooting = false;
                self.leases.set(self.key.clone(), None);
                self.client.clean_up();
                self.client = DhcpV4Client::init(self.cfg.clone(), None).await?;
                Ok(DhcpV4State::InitReboot)
            }
        }
    }

    /// The next thing that matters: a lease, its loss, or a failure.
    pub async fn next(&mut self) -> DhcpEvent {
        loop {
            match self.run().await {
                Ok(DhcpV4State::Done(l)) => {
                    self.lease = Some((*l).clone());
                    self.leases.set(self.key.clone(), Some((*l).clone()));
                    return DhcpEvent::Lease(Lease::of(&l, &self.client_id));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(addr: [u8; 4], secs: u32) -> DhcpV4Lease {
        let mut l = DhcpV4Lease::default();
        l.yiaddr = Ipv4Addr::from(addr);
        l.subnet_mask = Ipv4Addr::new(255, 255, 255, 0);
        l.srv_id = Ipv4Addr::new(10, 99, 0, 1);
        l.lease_time_sec = secs;
        l
    }

    #[test]
    fn leases_outlive_a_restart_until_they_run_out_or_are_given_back() {
        let tmp = tempfile::tempdir().unwrap();
        let key: LeaseKey = ("9d6b0f0e-0909-4a09-9009-b0a9c0d0e001".into(), "eth0".into());
        let a = Leases::in_dir(tmp.path());
        a.set(key.clone(), Some(lease([10, 99, 0, 120], 3600)));
        // Another tinynmd (a restart) reads it from disk.
        let b = Leases::in_dir(tmp.path());
        let got = b.get(&key).expect("the lease from disk");
        assert_eq!(got.yiaddr, Ipv4Addr::new(10, 99, 0, 120));
        assert_eq!(got.srv_id, Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(got.subnet_mask, Ipv4Addr::new(255, 255, 255, 0));
        // Given back: gone from memory and disk.
        b.set(key.clone(), None);
        assert!(b.get(&key).is_none());
        assert!(Leases::in_dir(tmp.path()).get(&key).is_none());
        // Run out: not asked for.
        let file = tmp.path().join(format!("{}-{}.lease", key.0, key.1));
        std::fs::write(
            &file,
            "address = \"10.99.0.120\"\nnetmask = \"255.255.255.0\"\nserver = \"10.99.0.1\"\n\
             lease_time = 60\nobtained = 1000\n",
        )
        .unwrap();
        assert!(Leases::in_dir(tmp.path()).get(&key).is_none());
        // Not a lease: ignored.
        std::fs::write(&file, "address = 7\n").unwrap();
        assert!(Leases::in_dir(tmp.path()).get(&key).is_none());
    }
}
