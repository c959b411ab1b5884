//! Executing a plugin's program as NM does (spec §3.2): own process group, stdin closed, the
//! daemon's environment with NM's log variables, output captured into the activation's log.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::netlink::Netlink;

use tokio::sync::Notify;

use tokio::process::Command;

use super::registry::PluginInfo;

/// Why a plugin could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot execute the plugin program {} (from {}): {source}", program.display(), file.display())]
pub struct ExecError {
    program: std::path::PathBuf,
    file: std::path::PathBuf,
    #[source]
    source: std::io::Error,
}

/// Plugin processes started and not yet reaped.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static EXITED: Notify = Notify::const_new();

/// Waits (bounded) until every plugin tinynmd started has exited and been reaped: on shutdown
/// they stop after their Disconnect, and should not outlive the daemon as orphans.
pub async fn wait_all(limit: Duration) {
    let wait = async {
        loop {
            // Registered before the check, so that an exit in between is not missed.
            let exited = EXITED.notified();
            tokio::pin!(exited);
            exited.as_mut().enable();
            if LIVE.load(Ordering::SeqCst) == 0 {
                break;
            }
            exited.await;
        }
    };
    if tokio::time::timeout(limit, wait).await.is_err() {
        tracing::warn!(
            "{} plugin processes still running at exit",
            LIVE.load(Ordering::SeqCst)
        );
    }
}

/// Ends a plugin that never came up (its whole process group, which it leads).
pub fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// NM's `NM_VPN_LOG_LEVEL` for the daemon's own level.
pub fn nm_log_level() -> u32 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::TRACE => 7,
        LevelFilter::DEBUG => 6,
        LevelFilter::INFO => 5,
        LevelFilter::WARN => 4,
        LevelFilter::ERROR => 3,
        _ => 0,
    }
}

/// How a process ended, in words.
pub fn describe_exit(s: std::process::ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended".to_string(),
    }
}

/// Starts the plugin; `on_exit` gets how it ended. Returns its pid. `bus`: the address of
/// tinynmd's bus when it is not the system bus, given to the plugin as its system bus (the only
/// one an NM plugin connects to).
/// The last lines a plugin wrote (stdout and stderr), kept to say why a VPN failed, and
/// whether its output has ended.
#[derive(Clone)]
pub struct PluginLines(std::sync::Arc<LinesInner>);

struct LinesInner {
    lines: std::sync::Mutex<std::collections::VecDeque<String>>,
    ended: tokio::sync::watch::Sender<bool>,
}

impl Default for PluginLines {
    fn default() -> Self {
        PluginLines(std::sync::Arc::new(LinesInner {
            lines: Default::default(),
            ended: tokio::sync::watch::Sender::new(false),
        }))
    }
}

impl PluginLines {
    /// How many lines are kept.
    const KEEP: usize = 5;
    /// How long a line kept may be (a longer one is cut).
    const WIDTH: usize = 400;

    fn push(&self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        let cut: String = line.chars().take(Self::WIDTH).collect();
        let mut q = self.0.lines.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() == Self::KEEP {
            q.pop_front();
        }
        q.push_back(cut);
    }

    /// The lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let q = self.0.lines.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().cloned().collect()
    }

    /// Waits (at most `limit`) until the plugin's output has ended: a plugin that died may
    /// have written its last words after its bus name went.
    pub async fn ended(&self, limit: Duration) {
        let mut rx = self.0.ended.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|e| *e)).await;
    }
}

pub fn spawn(
    info: &PluginInfo,
    bus_name: &str,
    bus: Option<&str>,
    runtime: &std::path::Path,
    lines: PluginLines,
    on_exit: impl FnOnce(String) + Send + 'static,
) -> Result<Spawned, ExecError> {
    let mut cmd = Command::new(&info.program);
    if info.multiple {
        cmd.arg("--bus-name").arg(bus_name);
    }
    cmd.env_remove("NM_VPN_LOG_LEVEL")
        .env_remove("NM_VPN_LOG_SYSLOG")
        .env("NM_VPN_LOG_LEVEL", nm_log_level().to_string())
        .env("NM_VPN_LOG_SYSLOG", "0")
        // systemd's notification socket is tinynmd's own, not its plugins'.
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(a) = bus {
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", a);
    }
    // Where tinynm's own plugins keep a connection's runtime files (management sockets…):
    // tinynmd's, emptied at its next start after a crash.
    cmd.env("TINYNM_RUNTIME_DIR", runtime);
    let mut child = cmd.spawn().map_err(|source| ExecError {
        program: info.program.clone(),
        file: info.file.clone(),
        source,
    })?;
    let pid = child.id().unwrap_or(0);
    LIVE.fetch_add(1, Ordering::SeqCst);
    let span = tracing::Span::current();
    let name = info.name.clone();
    let ended = lines.clone();
    let readers = tinynm_vpn_plugin::process::each_line(&mut child, move |l| {
        let _in = span.enter();
        let (level, msg) = line_level(&l);
        lines.push(msg);
        match level {
            tracing::Level::ERROR => tracing::error!(plugin = %name, "{msg}"),
            tracing::Level::WARN => tracing::warn!(plugin = %name, "{msg}"),
            tracing::Level::DEBUG => tracing::debug!(plugin = %name, "{msg}"),
            tracing::Level::TRACE => tracing::trace!(plugin = %name, "{msg}"),
            _ => tracing::info!(plugin = %name, "{msg}"),
        }
    });
    tokio::spawn(async move {
        for r in readers {
            let _ = r.await;
        }
        ended.0.ended.send_replace(true);
    });
    let (exited_tx, exited) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let how = match child.wait().await {
            Ok(s) => describe_exit(s),
            Err(e) => format!("could not be waited for: {e}"),
        };
        LIVE.fetch_sub(1, Ordering::SeqCst);
        EXITED.notify_waiters();
        let _ = exited_tx.send(true);
        on_exit(how);
    });
    Ok(Spawned { pid, exited })
}

/// A plugin process tinynmd started.
pub struct Spawned {
    /// Its pid (it leads its process group).
    pub pid: u32,
    /// Becomes `true` once it has exited and been reaped (until then its pid is ours).
    pub exited: tokio::sync::watch::Receiver<bool>,
}

/// After `Disconnect`: a plugin that has not quit within `grace` gets SIGTERM, and SIGKILL after
/// as long again (NM's plugins quit on their own; one that hangs must not outlive its
/// connection with its tunnel). Once it has gone, the tun device it made (`tun`) is removed if
/// it left it behind (Debian's nm-openconnect-service leaves its persistent tun after every
/// disconnect, under NM too).
pub fn reap(
    pid: u32,
    mut exited: tokio::sync::watch::Receiver<bool>,
    grace: Duration,
    tun: Option<((String, u32), Netlink)>,
) {
    tokio::spawn(async move {
        for signal in [
            nix::sys::signal::Signal::SIGTERM,
            nix::sys::signal::Signal::SIGKILL,
        ] {
            if tokio::time::timeout(grace, exited.wait_for(|e| *e))
                .await
                .is_ok()
            {
                break;
            }
            tracing::warn!(
                "the plugin (pid {pid}) has not quit {grace:?} after Disconnect: {signal}"
            );
            if let Ok(p) = i32::try_from(pid) {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), signal);
            }
        }
        let _ = tokio::time::timeout(grace, exited.wait_for(|e| *e)).await;
        if let Some(((name, index), nl)) = tun {
            match nl.remove_tun(index, &name).await {
                Ok(true) => tracing::info!(
                    "removed the tun device {name} that the plugin (pid {pid}) left behind"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!("cannot remove the plugin's leftover {name}: {e}"),
            }
        }
    });
}

/// The level a plugin's output line was written at, and the message to log: a tracing line
/// (`TIMESTAMP  LEVEL message`, as the SDK writes) loses its timestamp and level; a GLib plugin's
/// line (`nm-openvpn[12] <warn> …`) is kept whole. Anything else is INFO.
pub fn line_level(l: &str) -> (tracing::Level, &str) {
    use tracing::Level;
    let level_of = |w: &str| match w {
        "ERROR" | "<error>" => Some(Level::ERROR),
        "WARN" | "<warn>" => Some(Level::WARN),
        "INFO" | "<info>" => Some(Level::INFO),
        "DEBUG" | "<debug>" => Some(Level::DEBUG),
        "TRACE" | "<trace>" => Some(Level::TRACE),
        _ => None,
    };
    let mut words = l.split_whitespace();
    let (first, second) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if first.ends_with('Z')
        && first.contains('T')
        && let Some(level) = level_of(second)
    {
        let rest = l[l.find(second).unwrap_or(0) + second.len()..].trim_start();
        return (level, rest);
    }
    match level_of(second).or_else(|| level_of(first)) {
        Some(level) => (level, l),
        None => (Level::INFO, l),
    }
}

#[cfg(test)]
mod level_tests {
    use super::line_level;
    use tracing::Level;

    #[test]
    fn plugin_lines_keep_their_level() {
        assert_eq!(
            line_level("2026-11-22T17:46:38.924149Z  WARN openvpn: the server refused"),
            (Level::WARN, "openvpn: the server refused")
        );
        assert_eq!(
            line_level("nm-openvpn[766] <warn>  openvpn[770] died with signal 9").0,
            Level::WARN
        );
        assert_eq!(
            line_level("nm-openvpn[766]: <debug> [helper-771] environment: dev=tun0").0,
            Level::DEBUG
        );
        assert_eq!(line_level("plain words").0, Level::INFO);
    }
}
