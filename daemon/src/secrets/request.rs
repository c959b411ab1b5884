//! Secrets from secret agents, asked as NetworkManager's agent manager asks them (spec
//! VPN-PROTOCOL §6.3): the requester's agents one at a time, each with the profile stripped of
//! its secrets; the first that gives VPN secrets wins; a user's cancel ends the request.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tinynm_config::Profile;
use tinynm_config::dbus::SettingsDict;
use zbus::OwnedObjectPath;

use super::agents::{Agent, Agents};
use super::proxy;

/// NM_SECRET_AGENT_GET_SECRETS_FLAG_*
pub mod flags {
    /// The agent may prompt.
    pub const ALLOW_INTERACTION: u32 = 0x1;
    /// A user asked for this activation.
    pub const USER_REQUESTED: u32 = 0x4;
}

/// NM_SECRET_AGENT_CAPABILITY_VPN_HINTS
pub const VPN_HINTS: u32 = 0x1;

/// NM_SETTING_SECRET_FLAG_NOT_REQUIRED
const NOT_REQUIRED: u32 = 0x4;

/// Why no agent gave the secrets.
#[derive(Debug)]
pub enum AgentsFailed {
    /// No agent of the requester is registered.
    NoAgents,
    /// The user cancelled (at this agent).
    UserCanceled(String),
    /// These agents were asked; none gave VPN secrets (each with why).
    NoneAnswered(Vec<String>),
}

impl std::fmt::Display for AgentsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentsFailed::NoAgents => write!(f, "no secret agent is registered for this user"),
            AgentsFailed::UserCanceled(a) => write!(f, "the user cancelled at agent '{a}'"),
            AgentsFailed::NoneAnswered(a) => {
                write!(f, "no agent gave them (asked: {})", a.join("; "))
            }
        }
    }
}

/// The secrets a profile lacks, by key (for messages): those whose `<key>-flags` say they are
/// required and that have no value, and a password type's `password`.
pub fn missing_keys(p: &Profile) -> Vec<String> {
    let mut keys: Vec<String> = p
        .vpn
        .data
        .keys()
        .filter_map(|k| k.strip_suffix("-flags"))
        .filter(|k| p.secret_flags(k) & NOT_REQUIRED == 0 && !p.vpn.secrets.contains_key(*k))
        .map(|k| format!("vpn.secrets.{k}"))
        .collect();
    let password_type = matches!(
        p.vpn.data.get("connection-type").map(String::as_str),
        Some("password" | "password-tls")
    );
    if password_type
        && !p.vpn.secrets.contains_key("password")
        && !keys.iter().any(|k| k == "vpn.secrets.password")
    {
        keys.push("vpn.secrets.password".into());
    }
    keys
}

/// The VPN secrets in an agent's reply, if any.
fn vpn_secrets(reply: &SettingsDict) -> Option<BTreeMap<String, String>> {
    let v = reply.get("vpn")?.get("secrets")?;
    let m: HashMap<String, String> = v.try_clone().ok()?.try_into().ok()?;
    (!m.is_empty()).then(|| m.into_iter().collect())
}

/// One request for a profile's VPN secrets.
pub struct Request<'a> {
    /// The applied profile (its secrets are stripped before agents see it).
    pub profile: &'a Profile,
    /// Its Settings.Connection path.
    pub path: &'a OwnedObjectPath,
    /// The plugin's hints.
    pub hints: &'a [String],
    /// GetSecrets flags.
    pub flags: u32,
    /// The requester.
    pub uid: u32,
}

/// Asks the requester's agents, one at a time, for the profile's VPN secrets.
pub async fn request(
    conn: &zbus::Connection,
    agents: &Agents,
    r: Request<'_>,
    limit: Duration,
) -> Result<(BTreeMap<String, String>, Agent), AgentsFailed> {
    let Request {
        profile,
        path,
        hints,
        flags,
        uid,
    } = r;
    let cands = agents.candidates(uid);
    if cands.is_empty() {
        return Err(AgentsFailed::NoAgents);
    }
    let mut bare = profile.clone();
    bare.vpn.secrets.clear();
    let dict = tinynm_config::dbus::to_dict(&bare, false);
    let mut asked = Vec::new();
    for a in cands {
        tracing::info!(
            "asking secret agent '{}' ({}) for VPN secrets (flags 0x{flags:x}, hints {hints:?})",
            a.identifier,
            a.sender
        );
        let agent = match proxy::to(conn, &a.sender).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("secret agent '{}': {e}", a.identifier);
                asked.push(format!("'{}': {e}", a.identifier));
                continue;
            }
        };
        let call = agent.get_secrets(&dict, path, "vpn", hints, flags);
        let why = match tokio::time::timeout(limit, call).await {
            Ok(Ok(d)) => match vpn_secrets(&d) {
                Some(s) => return Ok((s, a)),
                None => "no VPN secrets in its reply".to_string(),
            },
            Ok(Err(zbus::Error::MethodError(name, msg, _))) => {
                if name.as_str() == "org.freedesktop.NetworkManager.SecretAgent.UserCanceled" {
                    return Err(AgentsFailed::UserCanceled(a.identifier));
                }
                format!("{name}: {}", msg.unwrap_or_default())
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => {
                // As NM: tell the agent the request is over, and do not wait for it.
                let path = path.clone();
                tokio::spawn(async move {
                    let cancel = agent.cancel_get_secrets(&path, "vpn");
                    let _ = tokio::time::timeout(Duration::from_millis(1500), cancel).await;
                });
                format!("no answer within {limit:?}")
            }
        };
        tracing::warn!("secret agent '{}': {why}", a.identifier);
        asked.push(format!("'{}': {why}", a.identifier));
    }
    Err(AgentsFailed::NoneAnswered(asked))
}

/// NM_SETTING_SECRET_FLAG_AGENT_OWNED
const AGENT_OWNED: u32 = 0x1;
/// NM_SETTING_SECRET_FLAG_NOT_SAVED
const NOT_SAVED: u32 = 0x2;

/// Takes out of a profile the secrets tinynmd must not keep: agent-owned ones (returned, for
/// the agents' SaveSecrets) and not-saved ones (dropped). System-owned secrets stay.
pub fn take_unstorable(p: &mut Profile) -> BTreeMap<String, String> {
    let mut agent_owned = BTreeMap::new();
    let keys: Vec<String> = p.vpn.secrets.keys().cloned().collect();
    for k in keys {
        let f = p.secret_flags(&k);
        if f & NOT_SAVED != 0 {
            p.vpn.secrets.remove(&k);
        } else if f & AGENT_OWNED != 0
            && let Some(v) = p.vpn.secrets.remove(&k)
        {
            agent_owned.insert(k, v);
        }
    }
    agent_owned
}

/// NM's SaveSecrets after Add/Update: the agent-owned secrets go to the caller's agents (the
/// first that takes them wins); tinynmd keeps none of them. Not awaited.
pub fn save_secrets(
    conn: &zbus::Connection,
    agents: &Agents,
    uid: u32,
    profile: &Profile,
    secrets: BTreeMap<String, String>,
    path: &OwnedObjectPath,
) {
    if secrets.is_empty() {
        return;
    }
    let mut p = profile.clone();
    p.vpn.secrets = secrets;
    let dict = tinynm_config::dbus::to_dict(&p, true);
    let (conn, path, cands) = (conn.clone(), path.clone(), agents.candidates(uid));
    tokio::spawn(async move {
        for a in cands {
            let Ok(agent) = proxy::to(&conn, &a.sender).await else {
                continue;
            };
            let call = agent.save_secrets(&dict, &path);
            match tokio::time::timeout(Duration::from_secs(10), call).await {
                Ok(Ok(_)) => {
                    tracing::info!(
                        "secret agent '{}' saved the agent-owned secrets",
                        a.identifier
                    );
                    return;
                }
                Ok(Err(e)) => tracing::warn!("SaveSecrets on '{}': {e}", a.identifier),
                Err(_) => tracing::warn!("SaveSecrets on '{}': no answer", a.identifier),
            }
        }
    });
}

/// NM's DeleteSecrets after Delete/ClearSecrets: every agent hears of it. Not awaited.
pub fn delete_secrets(
    conn: &zbus::Connection,
    agents: &Agents,
    profile: &Profile,
    path: &OwnedObjectPath,
) {
    let mut p = profile.clone();
    p.vpn.secrets.clear();
    let dict = tinynm_config::dbus::to_dict(&p, false);
    let all = agents.all();
    let (conn, path) = (conn.clone(), path.clone());
    tokio::spawn(async move {
        for a in all {
            let Ok(agent) = proxy::to(&conn, &a.sender).await else {
                continue;
            };
            let _ =
                tokio::time::timeout(Duration::from_secs(10), agent.delete_secrets(&dict, &path))
                    .await;
        }
    });
}
