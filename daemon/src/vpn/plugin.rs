//! Executing a plugin's program as NM does (spec §3.2): own process group, stdin closed, the
//! daemon's environment with NM's log variables, output captured into the activation's log.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tracing::Instrument;

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

/// Starts the plugin; `on_exit` gets how it ended. Returns its pid.
pub fn spawn(
    info: &PluginInfo,
    bus_name: &str,
    on_exit: impl FnOnce(String) + Send + 'static,
) -> Result<u32, ExecError> {
    let mut cmd = Command::new(&info.program);
    if info.multiple {
        cmd.arg("--bus-name").arg(bus_name);
    }
    cmd.env_remove("NM_VPN_LOG_LEVEL")
        .env_remove("NM_VPN_LOG_SYSLOG")
        .env("NM_VPN_LOG_LEVEL", nm_log_level().to_string())
        .env("NM_VPN_LOG_SYSLOG", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(|source| ExecError {
        program: info.program.clone(),
        file: info.file.clone(),
        source,
    })?;
    let pid = child.id().unwrap_or(0);
    LIVE.fetch_add(1, Ordering::SeqCst);
    let span = tracing::Span::current();
    let name = info.name.clone();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let name = name.clone();
        tokio::spawn(
            async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    tracing::info!(plugin = %name, "{l}");
                }
            }
            .instrument(span.clone()),
        );
    }
    tokio::spawn(async move {
        let how = match child.wait().await {
            Ok(s) => describe_exit(s),
            Err(e) => format!("could not be waited for: {e}"),
        };
        LIVE.fetch_sub(1, Ordering::SeqCst);
        EXITED.notify_waiters();
        on_exit(how);
    });
    Ok(pid)
}
