//! The registered secret agents, kept by unique bus name and dropped when that name leaves the
//! bus.

use std::sync::{Arc, Mutex};

use futures::StreamExt;

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

/// The registered agents, in registration order. Shared by the AgentManager view (which
/// registers) and the secrets requests (which read).
#[derive(Debug, Clone, Default)]
pub struct Agents(Arc<Mutex<Vec<Agent>>>);

/// An agent with this identifier is already registered for this user.
#[derive(Debug)]
pub struct AlreadyRegistered;

impl Agents {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Agent>> {
        self.0.lock().expect("agents lock")
    }

    /// Adds an agent, and forgets it when its unique name leaves the bus.
    pub fn register(&self, conn: &zbus::Connection, a: Agent) -> Result<(), AlreadyRegistered> {
        {
            let mut list = self.list();
            if list
                .iter()
                .any(|x| x.identifier == a.identifier && x.uid == a.uid)
            {
                return Err(AlreadyRegistered);
            }
            list.push(a.clone());
        }
        tracing::info!(
            "secret agent '{}' registered by {} (uid {})",
            a.identifier,
            a.sender,
            a.uid
        );
        let (agents, conn, sender) = (self.clone(), conn.clone(), a.sender);
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
            agents.unregister(&sender);
            tracing::debug!("secret agents of {sender} gone with it");
        });
        Ok(())
    }

    /// Forgets the agents of a unique name; whether there were any.
    pub fn unregister(&self, sender: &str) -> bool {
        let mut list = self.list();
        let before = list.len();
        list.retain(|a| a.sender != sender);
        list.len() != before
    }

    /// Every registered agent.
    pub fn all(&self) -> Vec<Agent> {
        self.list().clone()
    }

    /// The agents that may answer for `uid`, most recently registered first.
    pub fn candidates(&self, uid: u32) -> Vec<Agent> {
        self.list()
            .iter()
            .rev()
            .filter(|a| a.uid == uid)
            .cloned()
            .collect()
    }
}

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
