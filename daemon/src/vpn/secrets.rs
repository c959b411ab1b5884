//! A connection's calls that carry the profile: NM's secrets passes with `NeedSecrets` after
//! each (spec §6.3), `ConnectInteractive`/`Connect`, and `SecretsRequired` answered through the
//! agents and `NewSecrets`.

use tinynm_vpn_plugin::proxy::VpnPluginProxy;

use super::link::died_meanwhile;
use super::machine::Event;
use super::task::{Task, deactivation, secs};
use crate::secrets::{self, AgentsFailed};

impl Task {
    /// NM's secrets passes: the stored secrets (and daemon.toml's secrets file), then the
    /// agents without interaction, then with it; `NeedSecrets` after each. Fails at once with
    /// NO_SECRETS, naming the missing keys, when no agent can answer.
    pub(super) async fn authenticate(&mut self) -> Event {
        let Some(proxy) = self.link.proxy() else {
            return Event::SecretsFailed;
        };
        self.secrets_from_file();
        let mut pass = 1;
        loop {
            let setting = match self.need_secrets(&proxy).await {
                Ok(None) => return Event::SecretsReady,
                Ok(Some(s)) => s,
                Err(e) => return e,
            };
            if pass == 3 {
                tracing::error!(
                    "the plugin still needs secrets for '{setting}' ({}) after the agents' answers",
                    self.missing()
                );
                return Event::SecretsFailed;
            }
            let flags = secrets::flags::USER_REQUESTED
                | if pass == 2 {
                    secrets::flags::ALLOW_INTERACTION
                } else {
                    0
                };
            match self.ask_agents(&[], flags).await {
                Err(ev) => return ev,
                Ok(Ok(())) => {}
                Ok(Err(AgentsFailed::NoAgents)) => {
                    tracing::error!(
                        "the plugin needs secrets for '{setting}' ({}): the profile does not store them and no secret agent of uid {} is registered",
                        self.missing(),
                        self.p.uid
                    );
                    return Event::SecretsFailed;
                }
                Ok(Err(e @ AgentsFailed::UserCanceled(_))) => {
                    tracing::error!("secrets for '{setting}' ({}): {e}", self.missing());
                    return Event::SecretsFailed;
                }
                Ok(Err(e)) if pass == 2 => {
                    tracing::error!("secrets for '{setting}' ({}): {e}", self.missing());
                    return Event::SecretsFailed;
                }
                Ok(Err(e)) => tracing::info!("secrets without interaction: {e}"),
            }
            pass += 1;
        }
    }

    /// Pass 1 takes the daemon's secrets file too (a headless system's source), for keys the
    /// profile does not store.
    fn secrets_from_file(&mut self) {
        let Some(f) = self.p.h.cfg.secrets_file.clone() else {
            return;
        };
        let c = &self.p.profile.connection;
        match tinynm_config::daemon_config::secrets_for(&f, &c.id, &c.uuid) {
            Ok(found) => {
                for (k, v) in found {
                    self.p.profile.vpn.secrets.entry(k).or_insert(v);
                }
            }
            Err(e) => tracing::error!("secrets file: {e}"),
        }
    }

    /// `NeedSecrets`: the setting that still lacks secrets, if any; the machine's event when
    /// the call failed.
    async fn need_secrets(&self, proxy: &VpnPluginProxy<'static>) -> Result<Option<String>, Event> {
        let dict = tinynm_config::dbus::to_plugin_dict(&self.p.profile);
        let need = tokio::time::timeout(secs(self.t().plugin_call), proxy.need_secrets(dict)).await;
        match need {
            Ok(Ok(s)) if s.is_empty() => Ok(None),
            Ok(Ok(setting)) => Ok(Some(setting)),
            Ok(Err(e)) => {
                tracing::error!("NeedSecrets failed: {e}");
                if died_meanwhile(&e) && !self.link.alive().await {
                    return Err(Event::NameVanished);
                }
                Err(Event::SecretsFailed)
            }
            Err(_) => {
                tracing::error!("NeedSecrets: no reply within {}s", self.t().plugin_call);
                Err(Event::SecretsFailed)
            }
        }
    }

    /// The keys the profile lacks, for messages.
    fn missing(&self) -> String {
        let keys = secrets::missing_keys(&self.p.profile);
        if keys.is_empty() {
            "vpn.secrets".into()
        } else {
            keys.join(", ")
        }
    }

    /// Asks the agents (bounded; a deactivation meanwhile ends the activation: `Err` is then
    /// the machine's event) and merges what they give into the applied profile, in memory only.
    async fn ask_agents(
        &mut self,
        hints: &[String],
        flags: u32,
    ) -> Result<Result<(), AgentsFailed>, Event> {
        let limit = secs(self.t().agent);
        let (conn, agents) = (self.p.h.bus.conn().clone(), self.p.h.agents.clone());
        let (profile, path, uid) = (
            self.p.profile.clone(),
            self.p.settings_path.clone(),
            self.p.uid,
        );
        let ask = secrets::request(
            &conn,
            &agents,
            secrets::Request {
                profile: &profile,
                path: &path,
                hints,
                flags,
                uid,
            },
            limit,
        );
        let got = tokio::select! {
            r = ask => r,
            cmd = self.p.cmd.recv() => return Err(deactivation(cmd)),
        };
        match got {
            Ok((s, agent)) => {
                tracing::info!(
                    "secret agent '{}' gave {} secret(s)",
                    agent.identifier,
                    s.len()
                );
                self.p.profile.vpn.secrets.extend(s);
                if let Some(name) = crate::auth::user_name(agent.uid) {
                    self.p.profile.vpn.user_name = Some(name);
                }
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// `ConnectInteractive` unless one of the requester's agents cannot take the plugin's
    /// hints (NM's rule: every agent of the uid has VPN_HINTS, which holds when there is none);
    /// `Connect` when the plugin does not do interactive.
    pub(super) async fn connect(&mut self) -> Event {
        let Some(proxy) = self.link.proxy() else {
            return Event::ConnectFailed;
        };
        let dict = tinynm_config::dbus::to_plugin_dict(&self.p.profile);
        let call = secs(self.t().plugin_call);
        let interactive = self
            .p
            .h
            .agents
            .candidates(self.p.uid)
            .iter()
            .all(|a| a.capabilities & secrets::VPN_HINTS != 0);
        let first = async {
            if interactive {
                proxy
                    .connect_interactive(dict.clone(), Default::default())
                    .await
            } else {
                proxy.connect(dict.clone()).await
            }
        };
        let r = match tokio::time::timeout(call, first).await {
            Ok(Err(zbus::Error::MethodError(name, _, _)))
                if name.as_str()
                    == "org.freedesktop.NetworkManager.VPN.Error.InteractiveNotSupported" =>
            {
                tokio::time::timeout(call, proxy.connect(dict)).await
            }
            other => other,
        };
        match r {
            Ok(Ok(())) => Event::Connected,
            Ok(Err(e)) => {
                tracing::error!("Connect failed: {e}");
                if died_meanwhile(&e) && !self.link.alive().await {
                    return Event::NameVanished;
                }
                Event::ConnectFailed
            }
            Err(_) => {
                tracing::error!("Connect: no reply within {call:?}");
                Event::ConnectFailed
            }
        }
    }

    /// NM's pass 4: the plugin's hints and message to the agents, then `NewSecrets`.
    pub(super) async fn ask_more_secrets(&mut self) -> Event {
        let (msg, mut hints) = self.pending_hints.take().unwrap_or_default();
        hints.push(format!("x-vpn-message:{msg}"));
        let flags = secrets::flags::ALLOW_INTERACTION | secrets::flags::USER_REQUESTED;
        match self.ask_agents(&hints, flags).await {
            Err(ev) => return ev,
            Ok(Err(e)) => {
                // Asked again for secrets it was just given (the server refused them), with
                // nobody to give others: NM ends NO_SECRETS; the truth is LOGIN_FAILED.
                let given: Vec<&String> = hints
                    .iter()
                    .filter(|h| self.p.profile.vpn.secrets.contains_key(h.as_str()))
                    .collect();
                if !given.is_empty() {
                    tracing::error!(
                        "the VPN server refused the credentials: the plugin asks again for {given:?}, which it was given ({msg:?}), and no secret agent can give new ones ({e})"
                    );
                    return Event::CredentialsRefused;
                }
                tracing::error!("the plugin asks for more secrets ({msg:?}, hints {hints:?}): {e}");
                return Event::NewSecretsDone(false);
            }
            Ok(Ok(())) => {}
        }
        let Some(proxy) = self.link.proxy() else {
            return Event::NewSecretsDone(false);
        };
        let dict = tinynm_config::dbus::to_plugin_dict(&self.p.profile);
        match tokio::time::timeout(secs(self.t().plugin_call), proxy.new_secrets(dict)).await {
            Ok(Ok(())) => Event::NewSecretsDone(true),
            Ok(Err(e)) => {
                tracing::error!("NewSecrets failed: {e}");
                Event::NewSecretsDone(false)
            }
            Err(_) => {
                tracing::error!("NewSecrets: no reply");
                Event::NewSecretsDone(false)
            }
        }
    }
}
