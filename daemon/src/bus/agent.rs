//! `org.freedesktop.NetworkManager.AgentManager`: secret agents register here (nmcli does
//! before every `connection up`). Agents are kept by unique bus name and dropped when that
//! name leaves the bus.

use crate::auth::caller_uid;
use crate::secrets::{Agent, Agents, check_identifier};

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
        let agent = Agent {
            identifier,
            uid,
            sender,
            capabilities,
        };
        self.agents.register(conn, agent).map_err(|_| {
            AgentError::PermissionDenied(
                "An agent with this ID is already registered for this user.".into(),
            )
        })?;
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
        if !self.agents.unregister(&sender) {
            return Err(AgentError::NotRegistered(
                "Caller is not registered as an Agent".into(),
            ));
        }
        Ok(())
    }
}
