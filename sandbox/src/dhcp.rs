//! An uplink for tinynmd to configure itself: a veth pair whose far end sits in a second
//! namespace (the "router", 10.99.0.1/24), and Debian's `dnsmasq` serving DHCP there.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;

use crate::{Netns, SandboxError, require_tool, terminate};

/// The router's address on the uplink.
pub const ROUTER: &str = "10.99.0.1";
/// The router's IPv6 address; it advertises fd00:99::/64 for SLAAC when asked to.
pub const ROUTER6: &str = "fd00:99::1";
/// The name server the DHCP server hands out.
pub const LEASE_DNS: &str = "10.99.0.53";
/// The domain it hands out.
pub const LEASE_DOMAIN: &str = "uplink.test";

/// The ifindex of link `name`, or an error naming it.
async fn index_of(h: &rtnetlink::Handle, name: &str) -> Result<u32, std::io::Error> {
    h.link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
        .map_err(std::io::Error::other)?
        .map(|l| l.header.index)
        .ok_or_else(|| std::io::Error::other(format!("no link {name}")))
}

impl Netns {
    /// Adds an unconfigured link `veth0` here (down, no address: tinynmd's to configure) whose
    /// peer `veth1` is 10.99.0.1/24 in a new namespace, which is returned.
    pub fn add_uplink(&self) -> Result<Netns, SandboxError> {
        use std::os::fd::AsRawFd;
        let router = Netns::new()?;
        let fd = router.fd.as_raw_fd();
        self.run(|| async move {
            let (c, h, _) = rtnetlink::new_connection()?;
            tokio::spawn(c);
            h.link()
                .add(rtnetlink::LinkVeth::new("veth0", "veth1").build())
                .execute()
                .await?;
            let i = index_of(&h, "veth1").await?;
            h.link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(i)
                        .setns_by_fd(fd)
                        .build(),
                )
                .execute()
                .await?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .map_err(|e| SandboxError::Setup(format!("uplink: {e}")))?;
        router.set_link("veth1", true)?;
        router
            .run(|| async {
                let (c, h, _) = rtnetlink::new_connection()?;
                tokio::spawn(c);
                let i = index_of(&h, "veth1").await?;
                h.address()
                    .add(i, "10.99.0.1".parse()?, 24)
                    .execute()
                    .await?;
                // The prefix the router advertises when asked to (`DhcpOptions::ra`).
                h.address().add(i, ROUTER6.parse()?, 64).execute().await?;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            })
            .map_err(|e| SandboxError::Setup(format!("router side: {e}")))?;
        Ok(router)
    }

    /// What a reboot leaves of this namespace's uplink: `veth0` down with no address, and no
    /// tunnel links (the daemon that made them is gone). Disks and the DHCP server remember.
    pub fn reset_uplink(&self) -> Result<(), SandboxError> {
        let ip = |args: &[&str]| -> Result<String, SandboxError> {
            let mut c = Command::new(require_tool("ip", "iproute2")?);
            c.args(args);
            self.prepare(&mut c);
            let o = c.output().map_err(|e| SandboxError::Sys("ip", e))?;
            if !o.status.success() {
                return Err(SandboxError::Setup(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr)
                )));
            }
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        };
        ip(&["addr", "flush", "dev", "veth0"])?;
        ip(&["link", "set", "veth0", "down"])?;
        for line in ip(&["-o", "link", "show", "type", "tun"])?.lines() {
            // `7: tun0: <…>`
            if let Some(name) = line.split(": ").nth(1) {
                ip(&["link", "del", name])?;
            }
        }
        Ok(())
    }

    /// Sets link `name` up or down (the far end of an uplink: the carrier of the near end).
    pub fn set_link(&self, name: &str, up: bool) -> Result<(), SandboxError> {
        let name = name.to_string();
        self.run(|| async move {
            let (c, h, _) = rtnetlink::new_connection()?;
            tokio::spawn(c);
            let b = rtnetlink::LinkUnspec::new_with_index(index_of(&h, &name).await?);
            let b = if up { b.up() } else { b.down() };
            h.link().set(b.build()).execute().await?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .map_err(|e| SandboxError::Setup(format!("set a link up/down: {e}")))
    }
}

/// What the DHCP server hands out.
#[derive(Debug, Clone)]
pub struct DhcpOptions {
    /// Lease time in seconds (dnsmasq's minimum is 120).
    pub lease_secs: u32,
    /// Renewal time (option 58), if not half the lease.
    pub t1: Option<u32>,
    /// Rebinding time (option 59).
    pub t2: Option<u32>,
    /// Router advertisements of fd00:99::/64 (SLAAC only, no DHCPv6).
    pub ra: bool,
    /// `--dhcp-authoritative`: refuse (DHCPNAK) a request for an address it does not know;
    /// without it, such a request gets no answer at all.
    pub authoritative: bool,
}

impl Default for DhcpOptions {
    fn default() -> Self {
        DhcpOptions {
            lease_secs: 3600,
            t1: None,
            t2: None,
            ra: false,
            authoritative: true,
        }
    }
}

/// Debian's dnsmasq, serving DHCP on the router's `veth1` (10.99.0.100–150, router 10.99.0.1,
/// DNS 10.99.0.53, domain uplink.test); ended on drop.
pub struct Dnsmasq {
    child: Child,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Its lease file.
    pub leases: PathBuf,
}

impl Dnsmasq {
    /// Starts it in `router`, its files in `dir`.
    pub fn start(router: &Netns, dir: &Path, o: &DhcpOptions) -> Result<Dnsmasq, SandboxError> {
        Self::start_range(router, dir, o, "10.99.0.100,10.99.0.150")
    }

    /// The same, handing out addresses from `range` (`FIRST,LAST`).
    pub fn start_range(
        router: &Netns,
        dir: &Path,
        o: &DhcpOptions,
        range: &str,
    ) -> Result<Dnsmasq, SandboxError> {
        let dnsmasq = require_tool("dnsmasq", "dnsmasq-base")?;
        let leases = dir.join("dnsmasq.leases");
        let mut cmd = Command::new(dnsmasq);
        cmd.args([
            "--keep-in-foreground",
            "--log-facility=-",
            "--log-dhcp",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--user=root",
            "--group=root",
            "--interface=veth1",
            "--bind-interfaces",
            // No ICMP check of a new address before offering it (3 s of waiting for an echo
            // that no one in these namespaces sends): the figures are the daemons', not that.
            "--no-ping",
        ])
        .arg(format!(
            "--dhcp-range={range},255.255.255.0,{}",
            o.lease_secs
        ))
        .arg(format!("--dhcp-option=option:router,{ROUTER}"))
        .arg(format!("--dhcp-option=option:dns-server,{LEASE_DNS}"))
        .arg(format!("--dhcp-option=option:domain-name,{LEASE_DOMAIN}"))
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()));
        if o.authoritative {
            cmd.arg("--dhcp-authoritative");
        }
        if let Some(t1) = o.t1 {
            cmd.arg(format!("--dhcp-option=option:T1,{t1}"));
        }
        if let Some(t2) = o.t2 {
            cmd.arg(format!("--dhcp-option=option:T2,{t2}"));
        }
        if o.ra {
            cmd.args([
                "--enable-ra",
                "--dhcp-range=::,constructor:veth1,ra-only,64",
            ]);
        }
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        router.prepare(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| SandboxError::Sys("spawn dnsmasq", e))?;
        let (tx, log) = mpsc::channel();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut d = Dnsmasq {
            child,
            log,
            seen: Vec::new(),
            leases,
        };
        d.expect("DHCP, IP range", Duration::from_secs(10))?;
        Ok(d)
    }

    /// Waits (at most `limit`) for a log line containing `what`, e.g. `DHCPACK(veth1)`.
    pub fn expect(&mut self, what: &str, limit: Duration) -> Result<String, SandboxError> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(what) {
                        return Ok(l);
                    }
                }
                Err(_) => {
                    return Err(SandboxError::Setup(format!(
                        "dnsmasq never logged {what:?}:\n{}",
                        self.seen.join("\n")
                    )));
                }
            }
        }
    }

    /// Everything it logged so far.
    pub fn log_text(&mut self) -> String {
        while let Ok(l) = self.log.try_recv() {
            self.seen.push(l);
        }
        self.seen.join("\n")
    }

    /// Stops it (the server goes away).
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
