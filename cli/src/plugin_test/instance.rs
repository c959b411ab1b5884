//! One running instance of the plugin: its process, its name, its signals, and what it
//! leaves behind.

use super::world::*;
use super::*;

/// One running instance of the plugin.
pub(super) struct Instance {
    pub child: std::process::Child,
    pub pid: u32,
    /// `<service>.Connection_N`, and who owns it.
    pub bus_name: String,
    pub owner: String,
    /// How long it took to claim the name.
    pub claimed: Duration,
    pub log: tempfile::NamedTempFile,
    /// The kernel before it started.
    pub base: tinynm_sandbox::Kernel,
    pub owners: zbus::fdo::NameOwnerChangedStream,
    /// Its VPN.Plugin signals.
    pub signals: MessageStream,
    pub plugin: VpnPluginProxy<'static>,
    /// Every process seen below it or in its process group.
    pub below: std::collections::BTreeSet<u32>,
    /// Its name was seen released.
    pub gone: bool,
}

impl Instance {
    /// Notes the processes below the plugin and in its process group now.
    pub fn note_processes(&mut self) {
        self.below.extend(tinynm_sandbox::descendants(self.pid));
        self.below.extend(group(self.pid));
        self.below.remove(&self.pid);
    }

    /// The signals until `stop` says so or `limit` passes; whether `stop` said so.
    pub async fn signals_until(
        &mut self,
        seen: &mut Vec<Sig>,
        limit: Duration,
        stop: impl Fn(&Sig) -> bool,
    ) -> bool {
        let end = tokio::time::Instant::now() + limit;
        loop {
            tokio::select! {
                biased;
                m = tokio::time::timeout_at(end, self.signals.next()) => match m {
                    Ok(Some(Ok(m))) => {
                        if let Some(s) = sig_of(&m) {
                            let done = stop(&s);
                            seen.push(s);
                            if done {
                                self.note_processes();
                                return true;
                            }
                        }
                    }
                    _ => break,
                },
                o = self.owners.next(), if !self.gone => match o {
                    Some(s) if s.args().is_ok_and(|a| a.new_owner().is_none()) => {
                        // The plugin left the bus: what it sent before is queued; nothing more
                        // will come.
                        self.gone = true;
                        while let Ok(Some(Ok(m))) =
                            tokio::time::timeout(Duration::from_millis(50), self.signals.next()).await
                        {
                            if let Some(s) = sig_of(&m) {
                                let done = stop(&s);
                                seen.push(s);
                                if done {
                                    return true;
                                }
                            }
                        }
                        break;
                    }
                    Some(_) => {}
                    None => self.gone = true,
                },
            }
        }
        self.note_processes();
        false
    }

    /// After `Disconnect`: waits up to `limit` for STOPPED and the name's release, whichever
    /// come (a plugin that leaves the bus first sends no STOPPED); (stopped, released).
    pub async fn stop_seen(
        &mut self,
        dbus: &zbus::fdo::DBusProxy<'_>,
        limit: Duration,
    ) -> anyhow::Result<(bool, bool)> {
        let end = tokio::time::Instant::now() + limit;
        let mut stopped = false;
        if self.gone {
            while let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(50), self.signals.next()).await
            {
                stopped |= matches!(sig_of(&m), Some(Sig::State(STOPPED)));
            }
            return Ok((stopped, true));
        }
        loop {
            tokio::select! {
                m = tokio::time::timeout_at(end, self.signals.next()) => match m {
                    Ok(Some(Ok(m))) => {
                        if matches!(sig_of(&m), Some(Sig::State(STOPPED))) {
                            let released = self.released(dbus, end - tokio::time::Instant::now()).await?;
                            return Ok((true, released));
                        }
                    }
                    _ => break,
                },
                o = tokio::time::timeout_at(end, self.owners.next()) => match o {
                    Ok(Some(s)) if s.args().is_ok_and(|a| a.new_owner().is_none()) => {
                        // Gone: a STOPPED it sent before going is already queued.
                        while let Ok(Some(Ok(m))) =
                            tokio::time::timeout(Duration::from_millis(50), self.signals.next()).await
                        {
                            stopped |= matches!(sig_of(&m), Some(Sig::State(STOPPED)));
                        }
                        return Ok((stopped, true));
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                },
            }
        }
        let released = self.released(dbus, Duration::ZERO).await?;
        Ok((stopped, released))
    }

    /// Whether its name is released within `limit`.
    pub async fn released(
        &mut self,
        dbus: &zbus::fdo::DBusProxy<'_>,
        limit: Duration,
    ) -> anyhow::Result<bool> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let n: zbus::names::BusName<'_> = self.bus_name.as_str().try_into()?;
            if !dbus.name_has_owner(n).await.unwrap_or(true) {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= end {
                return Ok(false);
            }
            let _ = tokio::time::timeout_at(end, self.owners.next()).await;
        }
    }
}

/// The processes in process group `pgid`.
fn group(pgid: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid pgrp …: the last ')' ends comm.
                    let close = stat.rfind(')')?;
                    stat[close + 2..].split(' ').nth(2)?.parse::<u32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}
