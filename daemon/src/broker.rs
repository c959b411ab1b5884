//! The embedded bus (`bus = "embedded[:PATH]"`): a D-Bus broker inside tinynmd, for systems
//! and containers with no dbus-daemon. It is `busd` (the zbus authors' broker, as a library)
//! on a thread of its own, on its own runtime (busd runs on `zruntime`); tinynmd, its plugins
//! and NM's clients (nmcli, libnm, nm-openvpn-service's helper) connect to its socket as to
//! any bus. Imports nothing of the daemon.

use std::path::Path;

use anyhow::{Context, bail};

/// Starts the broker listening at `path` (its directory made, a stale socket of an earlier
/// run replaced, the socket open to every user as the system bus's is); returns its address
/// once it accepts connections. A live bus already at `path` is an error.
pub fn start(path: &Path) -> anyhow::Result<String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot make {} for the bus", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "{}: a bus already answers there (is dbus-daemon running?)",
            path.display()
        );
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot replace {}", path.display()));
        }
        _ => {}
    }
    let address = format!("unix:path={}", path.display());
    let (ready, started) = std::sync::mpsc::channel();
    let listen = address.clone();
    std::thread::Builder::new()
        .name("bus".into())
        .spawn(move || {
            zruntime::block_on(async move {
                let mut bus = match busd::bus::Bus::for_address(Some(&listen)).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                if let Err(e) = bus.run().await {
                    tracing::error!("the embedded bus stopped: {e:#}");
                }
            })
        })
        .context("cannot start the bus's thread")?;
    started
        .recv()
        .context("the bus's thread ended")?
        .with_context(|| format!("cannot listen at {}", path.display()))?;
    // As the system bus's socket: anyone may connect; what they may do is tinynmd's to say.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot open {} to every user", path.display()))?;
    tracing::info!("embedded bus (busd) listening at {}", path.display());
    Ok(address)
}
