//! `org.freedesktop.NetworkManager.AgentManager`: secret agents register here (nmcli does
//! before every `connection up`). Agents are kept by unique bus name and dropped when that
//! name leaves the bus.

use std::sync::{Arc, Mutex};

use futures::StreamExt;

use super::caller_uid;

/// Where the AgentManager is served.
pub const AGENT_PATH: &str = "/org/freedesktop/NetworkManager/AgentManager";

/// Errors of the AgentManager interface (`NMAgentManagerError`).
#[allow(missing_docs)]
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager.AgentManager")]
pub enum AgentError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    PermissionDenied(String),
    InvalidIdentifier(String),
    NotRegistered(String),
    NoSecrets(String),
    UserCanceled(String),
}

/// One registered secret agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Its identifier (`nmcli-connect`…).
    pub identifier: String,
    /// Its owner's uid.
    pub uid: u32,
    /// Its unique bus name.
    pub sender: String,
    /// NM_SECRET_AGENT_CAPABILITY_*.
    pub capabilities: u32,
}

/// The registered agents, in registration order.
pub type Agents = Arc<Mutex<Vec<Agent>>>;

/// NM's rule for an agent identifier, or what is wrong with it.
pub fn check_identifier(id: &str) -> Result<(), String> {
    if id.len() < 3 || id.len() > 255 {
        return Err(format!(
            "Identifier length not between 3 and 255 characters (inclusive) ({} characters)",
            id.len()
        ));
    }
    if id.starts_with('.') || id.ends_with('.') || id.contains("..") {
        return Err(
            "Identifier contains an invalid '.' (at the start, at the end or doubled)".into(),
        );
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!("Identifier contains invalid character '{c}'"));
    }
    Ok(())
}

/// The view.
pub struct AgentManagerView {
    /// The registered agents.
    pub agents: Agents,
}

impl AgentManagerView {
    async fn add_agent(
        &self,
        identifier: String,
        capabilities: u32,
        hdr: &zbus::message::Header<'_>,
        conn: &zbus::Connection,
    ) -> Result<(), AgentError> {
        let sender = hdr.sender().map(|s| s.to_string()).ok_or_else(|| {
            AgentError::PermissionDenied("Unable to determine request UID.".into())
        })?;
        let uid = caller_uid(conn, hdr)
            .await
            .map_err(|_| AgentError::PermissionDenied("Unable to determine request UID.".into()))?;
        check_identifier(&identifier).map_err(AgentError::InvalidIdentifier)?;
        {
            let mut agents = self.agents.lock().expect("agents lock");
            if agents
                .iter()
                .any(|a| a.identifier == identifier && a.uid == uid)
            {
                return Err(AgentError::PermissionDenied(
                    "An agent with this ID is already registered for this user.".into(),
                ));
            }
            agents.push(Agent {
                identifier: identifier.clone(),
                uid,
                sender: sender.clone(),
                capabilities,
            });
        }
        tracing::info!("secret agent '{identifier}' registered by {sender} (uid {uid})");
        // Forget the agent when its name leaves the bus.
        let agents = self.agents.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let Ok(dbus) = zbus::fdo::DBusProxy::new(&conn).await else {
                return;
            };
            let Ok(mut changes) = dbus
                .receive_name_owner_changed_with_args(&[(0, sender.as_str())])
                .await
            else {
                return;
            };
            // Gone already (it may have left between the call and this watch)?
            let gone_now = !dbus
                .name_has_owner(sender.as_str().try_into().expect("a unique name"))
                .await
                .unwrap_or(false);
            if !gone_now {
                while let Some(s) = changes.next().await {
                    if s.args().is_ok_and(|a| a.new_owner().is_none()) {
                        break;
                    }
                }
            }
            agents
                .lock()
                .expect("agents lock")
                .retain(|a| a.sender != sender);
            tracing::debug!("secret agents of {sender} gone with it");
        });
        Ok(())
    }
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.AgentManager")]
impl AgentManagerView {
    async fn register(
        &self,
        identifier: String,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), AgentError> {
        self.add_agent(identifier, 0, &hdr, conn).await
    }

    async fn register_with_capabilities(
        &self,
        identifier: String,
        capabilities: u32,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), AgentError> {
        self.add_agent(identifier, capabilities, &hdr, conn).await
    }

    async fn unregister(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) -> Result<(), AgentError> {
        let sender = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        let mut agents = self.agents.lock().expect("agents lock");
        let before = agents.len();
        agents.retain(|a| a.sender != sender);
        if agents.len() == before {
            return Err(AgentError::NotRegistered(
                "Caller is not registered as an Agent".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check_identifier;

    #[test]
    fn identifiers_follow_nm_rules() {
        assert!(check_identifier("nmcli-connect").is_ok());
        assert!(check_identifier("org.gnome.shell.NetworkAgent").is_ok());
        assert!(check_identifier("ab").is_err());
        assert!(check_identifier(".abc").is_err());
        assert!(check_identifier("abc.").is_err());
        assert!(check_identifier("a..bc").is_err());
        assert!(check_identifier("a bc").is_err());
        assert!(check_identifier(&"a".repeat(256)).is_err());
    }
}
