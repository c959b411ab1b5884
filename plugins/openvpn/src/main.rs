//! tinynm-openvpn: a drop-in for NetworkManager's nm-openvpn-service, on tinynm's plugin SDK.
//! Same service name, same `vpn.data`/`vpn.secrets` keys: a profile works with either.
//!
//! It runs the real `openvpn` with `--ifconfig-noexec --route-noexec` (the daemon configures the
//! kernel), its own `--up` helper (tinynm-openvpn-helper) that hands the pushed config back over
//! D-Bus, and openvpn's management interface, where openvpn connects to the plugin
//! (`--management-client`): credentials go there, and openvpn's refusals come back from it.

mod args;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tinynm_config::Profile;
use tinynm_config::nm::PluginFailure;
use tinynm_vpn_plugin::{Control, PluginError, VpnService};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use args::Kind;

const SERVICE: &str = "org.freedesktop.NetworkManager.openvpn";
/// NM_SETTING_SECRET_FLAG_NOT_REQUIRED
const NOT_REQUIRED: u32 = 4;

struct Running {
    pid: u32,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    exited: watch::Receiver<bool>,
    _dir: tempfile::TempDir,
}

struct OpenVpn {
    bus_name: String,
    running: Mutex<Option<Running>>,
}

fn flags(data: &BTreeMap<String, String>, key: &str) -> u32 {
    data.get(&format!("{key}-flags"))
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// The key file is encrypted (it needs `cert-pass`).
fn encrypted(key: Option<&String>) -> bool {
    key.and_then(|k| std::fs::read_to_string(k).ok())
        .is_some_and(|t| t.contains("ENCRYPTED"))
}

/// A value as the management interface wants it: double-quoted, `\` and `"` escaped.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// openvpn's `--machine-readable-output` line: `SECONDS.MICROS FLAGS message`; the flags say
/// how serious it is (M_FATAL 0x10, M_NONFATAL 0x20, M_WARN 0x40, M_DEBUG 0x80).
fn log_openvpn_line(line: &str) {
    let mut parts = line.splitn(3, ' ');
    let (_, flags, msg) = (parts.next(), parts.next(), parts.next());
    let (Some(flags), Some(msg)) = (flags.and_then(|f| u32::from_str_radix(f, 16).ok()), msg)
    else {
        tracing::info!("openvpn: {line}");
        return;
    };
    if flags & 0x10 != 0 {
        tracing::error!("openvpn: {msg}");
    } else if flags & 0x60 != 0 {
        tracing::warn!("openvpn: {msg}");
    } else if flags & 0x80 != 0 {
        tracing::debug!("openvpn: {msg}");
    } else {
        tracing::info!("openvpn: {msg}");
    }
}

impl OpenVpn {
    /// Serves openvpn's management connection: releases the hold, answers password requests,
    /// records why openvpn gives up.
    async fn management(
        listener: tokio::net::UnixListener,
        profile: Profile,
        failure: Arc<Mutex<Option<PluginFailure>>>,
    ) {
        let accepted = tokio::time::timeout(Duration::from_secs(60), listener.accept()).await;
        let Ok(Ok((stream, _))) = accepted else {
            tracing::error!("openvpn never connected to its management socket");
            return;
        };
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let user = profile
            .vpn
            .data
            .get("username")
            .cloned()
            .unwrap_or_default();
        while let Ok(Some(l)) = lines.next_line().await {
            tracing::debug!("management: {l}");
            let reply = if l.starts_with(">HOLD:") {
                // State notifications first, then let openvpn go on.
                Some("state on\nhold release\n".to_string())
            } else if let Some(st) = l.strip_prefix(">STATE:") {
                // TIME,STATE,DETAIL,…: CONNECTING, WAIT, AUTH, GET_CONFIG, CONNECTED,
                // RECONNECTING (DETAIL says why), EXITING.
                let mut f = st.split(',');
                let (state, detail) = (f.nth(1).unwrap_or(""), f.next().unwrap_or(""));
                if state == "RECONNECTING" || state == "EXITING" {
                    tracing::warn!("openvpn state {state} ({detail})");
                } else {
                    tracing::info!("openvpn state {state}");
                }
                None
            } else if l.starts_with(">PASSWORD:Need 'Auth'") {
                let pass = profile
                    .vpn
                    .secrets
                    .get("password")
                    .cloned()
                    .unwrap_or_default();
                Some(format!(
                    "username \"Auth\" {}\npassword \"Auth\" {}\n",
                    quoted(&user),
                    quoted(&pass)
                ))
            } else if l.starts_with(">PASSWORD:Need 'Private Key'") {
                let pass = profile
                    .vpn
                    .secrets
                    .get("cert-pass")
                    .cloned()
                    .unwrap_or_default();
                Some(format!("password \"Private Key\" {}\n", quoted(&pass)))
            } else if l.starts_with(">PASSWORD:Verification Failed:") {
                tracing::warn!("openvpn: the server refused the credentials ({l})");
                *failure.lock().expect("poisoned") = Some(PluginFailure::LoginFailed);
                None
            } else if let Some(why) = l.strip_prefix(">FATAL:") {
                tracing::error!("openvpn: fatal: {why}");
                failure
                    .lock()
                    .expect("poisoned")
                    .get_or_insert(PluginFailure::ConnectFailed);
                None
            } else {
                None
            };
            if let Some(r) = reply
                && w.write_all(r.as_bytes()).await.is_err()
            {
                break;
            }
        }
    }

    async fn start(&self, profile: Profile, ctl: Control) -> Result<(), PluginError> {
        let data = &profile.vpn.data;
        args::validate(data).map_err(PluginError::BadArguments)?;
        args::validate_secrets(&profile.vpn.secrets).map_err(PluginError::BadArguments)?;
        let kind = Kind::of(data).map_err(PluginError::BadArguments)?;
        if kind.password() && !profile.vpn.secrets.contains_key("password") {
            return Err(PluginError::InvalidConnection(
                "vpn.secrets password: missing (password authentication)".into(),
            ));
        }
        // The connection's runtime files (the management socket, a proxy's credentials) live
        // in the runtime directory tinynmd gives its plugins, and go with the connection.
        let base = std::env::var_os("TINYNM_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = (|| {
            std::fs::create_dir_all(&base)?;
            tempfile::Builder::new()
                .prefix("openvpn-")
                .tempdir_in(&base)
        })()
        .map_err(|e| {
            PluginError::LaunchFailed(format!("runtime directory in {}: {e}", base.display()))
        })?;
        let mgmt = dir.path().join("management");
        let proxy_auth = dir.path().join("http-proxy-auth");
        if let Some(user) = data.get("http-proxy-username") {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let pass = profile
                .vpn
                .secrets
                .get("http-proxy-password")
                .cloned()
                .unwrap_or_default();
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&proxy_auth)
                .and_then(|mut f| f.write_all(format!("{user}\n{pass}\n").as_bytes()))
                .map_err(|e| PluginError::LaunchFailed(format!("proxy credentials: {e}")))?;
        }
        let listener = tokio::net::UnixListener::bind(&mgmt)
            .map_err(|e| PluginError::LaunchFailed(format!("management socket: {e}")))?;
        let helper = std::env::current_exe()
            .map(|p| p.with_file_name("tinynm-openvpn-helper"))
            .unwrap_or_else(|_| PathBuf::from("tinynm-openvpn-helper"));
        let address = tinynm_config::daemon_config::system_bus_address();
        let up = format!(
            "{} --bus-address {address} --bus-name {}",
            helper.display(),
            self.bus_name
        );
        let rt = args::Runtime {
            mgmt: &mgmt,
            proxy_auth: &proxy_auth,
        };
        let argv = args::build(data, &up, &rt).map_err(PluginError::BadArguments)?;
        let openvpn = ["/usr/sbin/openvpn", "/usr/bin/openvpn"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .ok_or_else(|| {
                PluginError::LaunchFailed(
                    "openvpn is not installed (apt-get install openvpn)".into(),
                )
            })?;
        tracing::debug!("running {openvpn} {}", argv.join(" "));
        let mut child = tokio::process::Command::new(openvpn)
            .args(&argv)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| PluginError::LaunchFailed(format!("cannot run {openvpn}: {e}")))?;
        let pid = child.id().unwrap_or(0);
        tracing::info!("openvpn started (pid {pid})");
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        tinynm_vpn_plugin::process::each_line(&mut child, move |l| {
            log_openvpn_line(&l);
            // The server's certificate is not trusted: openvpn would retry forever against
            // the same certificate. Give up now (CONNECT_FAILED).
            if l.contains("VERIFY ERROR") {
                tracing::error!("openvpn: the server's certificate failed verification: giving up");
                failed
                    .lock()
                    .expect("poisoned")
                    .get_or_insert(PluginFailure::ConnectFailed);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        });
        tokio::spawn(Self::management(listener, profile.clone(), failure.clone()));
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (exited_tx, exited) = watch::channel(false);
        {
            let stopping = stopping.clone();
            tokio::spawn(async move {
                let status = child.wait().await;
                let _ = exited_tx.send(true);
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let f = failure
                    .lock()
                    .expect("poisoned")
                    .unwrap_or(PluginFailure::ConnectFailed);
                tracing::warn!("openvpn ended ({status:?}): failure {f:?}");
                let _ = ctl.failure(f).await;
            });
        }
        *self.running.lock().expect("poisoned") = Some(Running {
            pid,
            stopping,
            exited,
            _dir: dir,
        });
        Ok(())
    }
}

impl VpnService for OpenVpn {
    fn need_secrets(&self, profile: &Profile) -> Result<Option<String>, PluginError> {
        let data = &profile.vpn.data;
        let kind = Kind::of(data).map_err(PluginError::BadArguments)?;
        let s = &profile.vpn.secrets;
        let missing_password = kind.password()
            && !s.contains_key("password")
            && flags(data, "password") & NOT_REQUIRED == 0;
        let missing_cert_pass =
            kind.certs() && encrypted(data.get("key")) && !s.contains_key("cert-pass");
        Ok((missing_password || missing_cert_pass).then(|| "vpn".to_string()))
    }

    async fn connect(&self, profile: Profile, ctl: Control) -> Result<(), PluginError> {
        self.start(profile, ctl).await
    }

    async fn disconnect(&self) -> Result<(), PluginError> {
        let Some(mut r) = self.running.lock().expect("poisoned").take() else {
            return Ok(());
        };
        r.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let pid = nix::unistd::Pid::from_raw(r.pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let gone = tokio::time::timeout(Duration::from_secs(5), r.exited.wait_for(|e| *e))
            .await
            .is_ok();
        if !gone {
            tracing::warn!(
                "openvpn (pid {}) ignored SIGTERM for 5 s: killing it",
                r.pid
            );
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = r.exited.wait_for(|e| *e).await;
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = tinynm_vpn_plugin::service::args_or_exit(SERVICE, "tinynm-openvpn");
    let service = OpenVpn {
        bus_name: args.bus_name.clone(),
        running: Mutex::new(None),
    };
    tinynm_vpn_plugin::service::run_or_exit(service, args, "tinynm-openvpn").await;
}
