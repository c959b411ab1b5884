//! tinynm's secret agent: answers tinynmd's requests for VPN secrets from a secrets file or by
//! asking on the terminal (no echo), as nmcli's agent does.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use tinynm_client::SettingsDict;
use zbus::OwnedObjectPath;

/// NM_SECRET_AGENT_GET_SECRETS_FLAG_ALLOW_INTERACTION
const ALLOW_INTERACTION: u32 = 0x1;
/// NM_SETTING_SECRET_FLAG_AGENT_OWNED | NOT_SAVED
const ASKABLE: u32 = 0x1 | 0x2;

/// Agent errors, with NM's names.
#[allow(missing_docs)]
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager.SecretAgent")]
pub enum AgentError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    InvalidConnection(String),
    UserCanceled(String),
    NoSecrets(String),
}

/// Where the answers come from.
pub enum Source {
    /// `vpn.secrets.KEY:VALUE` lines (nmcli's passwd-file format).
    File(BTreeMap<String, String>),
    /// The terminal, when tinynmd allows interaction.
    Terminal,
}

/// Reads a secrets file: `vpn.secrets.KEY:VALUE` per line (`#` comments); a line of another
/// form is an error naming it.
pub fn read_secrets_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = BTreeMap::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once(':') else {
            anyhow::bail!(
                "{}: line {}: expected vpn.secrets.KEY:VALUE",
                path.display(),
                i + 1
            );
        };
        let Some(key) = k.trim().strip_prefix("vpn.secrets.") else {
            anyhow::bail!(
                "{}: line {}: '{k}' is not vpn.secrets.KEY",
                path.display(),
                i + 1
            );
        };
        out.insert(key.to_string(), v.to_string());
    }
    Ok(out)
}

/// The keys to give: the plugin's hints, then the profile's secrets an agent owns or that are
/// never saved, and an OpenVPN password type's password.
fn wanted(p: &tinynm_config::Profile, hints: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = hints
        .iter()
        .filter(|h| !h.starts_with("x-vpn-message:"))
        .cloned()
        .collect();
    for k in p.vpn.data.keys().filter_map(|k| k.strip_suffix("-flags")) {
        if p.secret_flags(k) & ASKABLE != 0 && !keys.iter().any(|x| x == k) {
            keys.push(k.to_string());
        }
    }
    let password_type = matches!(
        p.vpn.data.get("connection-type").map(String::as_str),
        Some("password" | "password-tls")
    );
    if password_type && !keys.iter().any(|x| x == "password") {
        keys.push("password".into());
    }
    keys
}

/// Reads one line from the terminal with echo off.
fn prompt(text: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to ask on (use --secrets-file)")?;
    let mut out = tty.try_clone()?;
    // Echo off before the prompt shows: what is typed once it shows is never echoed (rpassword
    // shows the prompt first, which a fast typist or a script can beat: hence no crate here).
    let saved = tcgetattr(&tty).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&tty, SetArg::TCSANOW, &quiet);
    }
    // From the start of a clean line: `up`'s progress line may be on the terminal.
    write!(out, "\r\x1b[K{text}")?;
    out.flush()?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&tty, SetArg::TCSANOW, t);
    }
    writeln!(out)?;
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

struct AgentIface {
    source: Source,
}

/// `{"vpn": {"secrets": got}}`.
fn reply(got: HashMap<String, String>) -> Result<SettingsDict, AgentError> {
    let v = zbus::Variant::from(got)
        .try_into_owned()
        .map_err(|e| AgentError::Failed(e.to_string()))?;
    Ok(HashMap::from([(
        "vpn".to_string(),
        HashMap::from([("secrets".to_string(), v)]),
    )]))
}

impl AgentIface {
    /// An OpenConnect profile's secrets by a headless login (`openconnect --authenticate`),
    /// with the username and password from the secrets file (`username`, `password`) or the
    /// terminal; `None` when the file has the cookie itself (it goes as it is).
    async fn openconnect(
        &self,
        p: &tinynm_config::Profile,
        flags: u32,
    ) -> Result<Option<HashMap<String, String>>, AgentError> {
        let (user, password) = match &self.source {
            Source::File(map) if map.contains_key("cookie") => return Ok(None),
            Source::File(map) => match (map.get("username"), map.get("password")) {
                (Some(u), Some(pw)) => (u.clone(), pw.clone()),
                _ => {
                    return Err(AgentError::NoSecrets(
                        "an OpenConnect login needs vpn.secrets.username and vpn.secrets.password in the secrets file (or cookie, gateway and gwcert)".into(),
                    ));
                }
            },
            Source::Terminal => {
                if flags & ALLOW_INTERACTION == 0 {
                    return Err(AgentError::NoSecrets(
                        "Stored passwords not supported".into(),
                    ));
                }
                let gw = p.vpn.data.get("gateway").cloned().unwrap_or_default();
                let ask = |text: String| async move {
                    tokio::task::spawn_blocking(move || prompt(&text))
                        .await
                        .map_err(|e| AgentError::Failed(e.to_string()))?
                        .map_err(|e| AgentError::UserCanceled(e.to_string()))
                };
                let user = ask(format!("Username for {gw} ('{}'): ", p.connection.id)).await?;
                let password = ask(format!("Password for {user}@{gw}: ")).await?;
                (user, password)
            }
        };
        crate::openconnect::login(p, &user, &password)
            .await
            .map(Some)
            .map_err(AgentError::NoSecrets)
    }
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.SecretAgent")]
impl AgentIface {
    async fn get_secrets(
        &self,
        connection: SettingsDict,
        _connection_path: OwnedObjectPath,
        setting_name: String,
        hints: Vec<String>,
        flags: u32,
    ) -> Result<SettingsDict, AgentError> {
        if setting_name != "vpn" {
            return Err(AgentError::NoSecrets(format!(
                "only VPN secrets, not '{setting_name}'"
            )));
        }
        let p = tinynm_config::dbus::from_dict(&connection)
            .map_err(|e| AgentError::InvalidConnection(e.to_string()))?;
        if p.vpn.service_type == crate::openconnect::SERVICE
            && let Some(got) = self.openconnect(&p, flags).await?
        {
            return reply(got);
        }
        let keys = wanted(&p, &hints);
        let mut got: HashMap<String, String> = HashMap::new();
        match &self.source {
            // The file was given for VPN secrets: all of them go, as nmcli's passwd-file does;
            // the plugin's NeedSecrets judges (a secret without flags is system-owned, and a
            // profile need not say which keys its plugin wants).
            Source::File(map) => got.extend(map.iter().map(|(k, v)| (k.clone(), v.clone()))),
            Source::Terminal => {
                if flags & ALLOW_INTERACTION == 0 {
                    return Err(AgentError::NoSecrets(
                        "Stored passwords not supported".into(),
                    ));
                }
                if let Some(m) = hints.iter().find_map(|h| h.strip_prefix("x-vpn-message:"))
                    && !m.is_empty()
                {
                    eprintln!("{m}");
                }
                for k in &keys {
                    let text = format!("Secret for '{}' (vpn.secrets.{k}): ", p.connection.id);
                    let v = tokio::task::spawn_blocking(move || prompt(&text))
                        .await
                        .map_err(|e| AgentError::Failed(e.to_string()))?
                        .map_err(|e| AgentError::UserCanceled(e.to_string()))?;
                    got.insert(k.clone(), v);
                }
            }
        }
        if got.is_empty() {
            return Err(AgentError::NoSecrets(if keys.is_empty() {
                "this agent knows no VPN secret".to_string()
            } else {
                format!(
                    "none of {} is known to this agent",
                    keys.iter()
                        .map(|k| format!("vpn.secrets.{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }));
        }
        reply(got)
    }

    fn cancel_get_secrets(&self, _connection_path: OwnedObjectPath, _setting_name: String) {}

    fn save_secrets(&self, _connection: SettingsDict, _connection_path: OwnedObjectPath) {}

    fn delete_secrets(&self, _connection: SettingsDict, _connection_path: OwnedObjectPath) {}
}

/// Serves the agent on `conn` and registers it with tinynmd as `identifier`.
pub async fn register(
    conn: &zbus::Connection,
    source: Source,
    identifier: &str,
) -> anyhow::Result<()> {
    conn.object_server()
        .at(
            "/org/freedesktop/NetworkManager/SecretAgent",
            AgentIface { source },
        )
        .await?;
    conn.call_method(
        Some("org.freedesktop.NetworkManager"),
        "/org/freedesktop/NetworkManager/AgentManager",
        Some("org.freedesktop.NetworkManager.AgentManager"),
        "RegisterWithCapabilities",
        &(identifier, 1u32),
    )
    .await
    .context("cannot register as a secret agent")?;
    Ok(())
}

/// `tinynm agent`: serves until SIGINT/SIGTERM, then unregisters.
pub async fn run_agent(
    conn: &zbus::Connection,
    secrets_file: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let source = match &secrets_file {
        Some(f) => Source::File(read_secrets_file(f)?),
        None => Source::Terminal,
    };
    register(conn, source, "tinynm-agent").await?;
    eprintln!("tinynm agent: answering tinynmd's requests for VPN secrets (Ctrl-C to stop)");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = conn
        .call_method(
            Some("org.freedesktop.NetworkManager"),
            "/org/freedesktop/NetworkManager/AgentManager",
            Some("org.freedesktop.NetworkManager.AgentManager"),
            "Unregister",
            &(),
        )
        .await;
    Ok(())
}
