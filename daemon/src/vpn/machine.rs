//! The VPN connection's state machine (spec VPN-PROTOCOL §6–7), pure: an event in, the actions
//! out, no I/O and no clock. The task (`task.rs`) turns the plugin's signals, its calls'
//! outcomes, the timers and the core's commands into [`Event`]s and performs the [`Action`]s.

use tinynm_config::nm::{AcState, PluginFailure, Reason, ServiceState, VpnState};

/// NM's internal VPN states (spec §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The object exists; nothing started.
    Waiting,
    /// Looking for / starting the plugin.
    Prepare,
    /// Secrets.
    NeedAuth,
    /// `Connect` sent.
    Connect,
    /// Config being received.
    IpConfigGet,
    /// Config being applied.
    PreUp,
    /// Up.
    Activated,
    /// Going down at the user's request.
    Deactivating,
    /// Down, cleanly.
    Disconnected,
    /// Down, on an error.
    Failed,
}

impl Phase {
    /// How the phase shows on D-Bus: (Connection.Active.State, VPN.Connection.VpnState).
    pub fn external(self) -> (AcState, VpnState) {
        match self {
            Phase::Waiting | Phase::Prepare => (AcState::Activating, VpnState::Prepare),
            Phase::NeedAuth => (AcState::Activating, VpnState::NeedAuth),
            Phase::Connect => (AcState::Activating, VpnState::Connect),
            Phase::IpConfigGet | Phase::PreUp => (AcState::Activating, VpnState::IpConfigGet),
            Phase::Activated => (AcState::Activated, VpnState::Activated),
            // The API has no deactivating VPN state.
            Phase::Deactivating => (AcState::Deactivating, VpnState::Activated),
            Phase::Disconnected => (AcState::Deactivated, VpnState::Disconnected),
            Phase::Failed => (AcState::Deactivated, VpnState::Failed),
        }
    }

    /// Between starting the plugin and being up: the plugin's stop and name loss count.
    fn running(self) -> bool {
        self >= Phase::Prepare && self <= Phase::Activated
    }
}

/// How a connection ends: its final phase and NM's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// `Failed` or `Disconnected`.
    pub phase: Phase,
    /// The reason sent with the final state.
    pub reason: Reason,
}

impl End {
    /// Ends in FAILED.
    pub fn failed(reason: Reason) -> End {
        End {
            phase: Phase::Failed,
            reason,
        }
    }

    /// Ends in DISCONNECTED.
    pub fn disconnected(reason: Reason) -> End {
        End {
            phase: Phase::Disconnected,
            reason,
        }
    }
}

/// NM's timers of one activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The exec'd plugin must claim its bus name (NM: 5 s).
    ServiceStart,
    /// From `Connect`'s return to a complete config (`vpn.timeout`).
    Connect,
    /// The whole activation, from the plugin's name (`vpn.timeout` + 180 s).
    Activation,
}

/// What happens to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// GetNameOwner answered: `true` when the plugin already owns its name.
    OwnerLookedUp(bool),
    /// The plugin claimed its bus name.
    NameClaimed,
    /// The plugin could not be started or reached (exec, proxy): the task logged why.
    StartFailed,
    /// Its signals could not be subscribed to.
    SubscribeFailed,
    /// Proxy and signals are in place.
    Subscribed,
    /// The plugin's name lost its owner, or changed it.
    NameVanished,
    /// The plugin process ended.
    Exited,
    /// `NeedSecrets` says nothing is missing any more.
    SecretsReady,
    /// No pass could provide the secrets (or `NeedSecrets` failed).
    SecretsFailed,
    /// `Connect` returned.
    Connected,
    /// `Connect` failed (or timed out).
    ConnectFailed,
    /// The plugin's `StateChanged`.
    ServiceState(ServiceState),
    /// The plugin's `Failure`.
    Failure(u32),
    /// The plugin's `SecretsRequired`.
    SecretsRequired,
    /// The plugin asked again for secrets it was just given and no agent can give new ones:
    /// the server refused them.
    CredentialsRefused,
    /// `NewSecrets` after the agents' answer: accepted or not.
    NewSecretsDone(bool),
    /// A `Config`/`Ip4Config`/`Ip6Config` was taken. `generic`: it carried the generic config;
    /// `complete`: every config the plugin announced is now here.
    ConfigReceived {
        /// It was (or carried) the generic config.
        generic: bool,
        /// The whole config is here.
        complete: bool,
    },
    /// A config from the plugin broke NM's rules (the task logged which). `generic`: it was
    /// (or carried) the generic config, which NM reads in IP_CONFIG_GET.
    ConfigInvalid {
        /// It was (or carried) the generic config.
        generic: bool,
    },
    /// The kernel took the config (`true`) or refused it and everything was rolled back.
    Applied(bool),
    /// A timer went off.
    Timeout(Timer),
    /// The core takes the connection down.
    Deactivate(Reason),
}

/// What the task must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Move to the phase and announce it (AC state first, then the VPN state if it changed).
    Enter(Phase, Reason),
    /// Exec the plugin.
    StartPlugin,
    /// End the plugin process (it never came up).
    TerminatePlugin,
    /// Start a timer.
    Arm(Timer),
    /// Make a proxy to the plugin's owner and subscribe to its signals.
    Subscribe,
    /// NM's secrets passes, `NeedSecrets` after each.
    Authenticate,
    /// `ConnectInteractive` or `Connect`.
    Connect,
    /// Ask the agents with the plugin's hints, then `NewSecrets`.
    AskMoreSecrets,
    /// Put the config in the kernel.
    Apply,
    /// Replace the config in force with the new one.
    Reapply,
    /// Export the IP4Config/IP6Config objects of the config in force.
    Publish,
    /// Tear down and end.
    Finish(End),
}

/// What NM records from a plugin's `Failure` signal, for a later STOPPED (spec §4.3).
pub fn failure_reason(failure: u32) -> Reason {
    match failure {
        x if x == PluginFailure::LoginFailed as u32 => Reason::LoginFailed,
        x if x == PluginFailure::BadIpConfig as u32 => Reason::IpConfigInvalid,
        _ => Reason::Unknown,
    }
}

/// One connection's state.
#[derive(Debug, Clone)]
pub struct Machine {
    phase: Phase,
    /// The plugin owns its name (found or claimed).
    claimed: bool,
    /// tinynmd exec'd the plugin.
    started: bool,
    last_failure: Option<Reason>,
    ended: Option<End>,
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

impl Machine {
    /// A new activation, WAITING.
    pub fn new() -> Self {
        Machine {
            phase: Phase::Waiting,
            claimed: false,
            started: false,
            last_failure: None,
            ended: None,
        }
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// How it ended, once it has.
    pub fn ended(&self) -> Option<End> {
        self.ended
    }

    /// Whether a config from the plugin is taken now (NM reads them from NEED_AUTH on).
    pub fn takes_config(&self) -> bool {
        self.ended.is_none() && self.phase >= Phase::NeedAuth && self.phase <= Phase::Activated
    }

    fn enter(&mut self, out: &mut Vec<Action>, phase: Phase, reason: Reason) {
        if self.phase != phase {
            self.phase = phase;
            out.push(Action::Enter(phase, reason));
        }
    }

    fn finish(&mut self, out: &mut Vec<Action>, end: End) {
        self.ended = Some(end);
        out.push(Action::Finish(end));
    }

    /// NM's rule for `event` in the state now: the actions, in order. Once finished, nothing.
    pub fn on_event(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended.is_some() {
            return out;
        }
        let up = self.phase == Phase::Activated;
        match event {
            Event::OwnerLookedUp(found) if self.phase == Phase::Waiting => {
                self.enter(&mut out, Phase::Prepare, Reason::None);
                if found {
                    self.claimed = true;
                    out.extend([Action::Arm(Timer::Activation), Action::Subscribe]);
                } else {
                    self.started = true;
                    out.extend([Action::StartPlugin, Action::Arm(Timer::ServiceStart)]);
                }
            }
            Event::OwnerLookedUp(_) => {}
            Event::NameClaimed if self.phase == Phase::Prepare && !self.claimed => {
                self.claimed = true;
                out.extend([Action::Arm(Timer::Activation), Action::Subscribe]);
            }
            Event::NameClaimed => {}
            Event::StartFailed => {
                self.finish(&mut out, End::disconnected(Reason::ServiceStartFailed));
            }
            Event::SubscribeFailed => {
                self.finish(&mut out, End::failed(Reason::ServiceStartFailed));
            }
            Event::Subscribed if self.phase == Phase::Prepare => {
                self.enter(&mut out, Phase::NeedAuth, Reason::None);
                out.push(Action::Authenticate);
            }
            Event::Subscribed => {}
            Event::NameVanished if self.claimed && self.phase.running() => {
                self.finish(&mut out, End::disconnected(Reason::ServiceStopped));
            }
            Event::NameVanished => {}
            // A plugin that exits before claiming its name fails at once (NM waits for its 5 s
            // timer); after that, its name's loss is what counts.
            Event::Exited if self.started && !self.claimed => {
                self.finish(&mut out, End::disconnected(Reason::ServiceStartFailed));
            }
            Event::Exited => {}
            Event::SecretsReady if self.phase == Phase::NeedAuth => {
                // NM's state goes to CONNECT when the call is sent, not when it returns.
                self.enter(&mut out, Phase::Connect, Reason::None);
                out.push(Action::Connect);
            }
            Event::SecretsReady => {}
            Event::SecretsFailed => self.finish(&mut out, End::failed(Reason::NoSecrets)),
            Event::Connected if self.phase == Phase::Connect => {
                out.push(Action::Arm(Timer::Connect));
            }
            Event::Connected => {}
            Event::ConnectFailed => {
                self.finish(&mut out, End::failed(Reason::ServiceStartFailed));
            }
            Event::ServiceState(s) => {
                if self.phase.running() && s == ServiceState::Stopped {
                    let reason = self.last_failure.unwrap_or(Reason::Unknown);
                    self.finish(&mut out, End::failed(reason));
                }
            }
            Event::Failure(f) => self.last_failure = Some(failure_reason(f)),
            Event::SecretsRequired if self.phase <= Phase::Connect && self.claimed => {
                self.enter(&mut out, Phase::NeedAuth, Reason::None);
                out.push(Action::AskMoreSecrets);
            }
            Event::SecretsRequired => {}
            Event::NewSecretsDone(true) if self.phase == Phase::NeedAuth => {
                self.enter(&mut out, Phase::Connect, Reason::None);
            }
            Event::NewSecretsDone(true) => {}
            Event::NewSecretsDone(false) => self.finish(&mut out, End::failed(Reason::NoSecrets)),
            Event::CredentialsRefused => self.finish(&mut out, End::failed(Reason::LoginFailed)),
            Event::ConfigReceived { generic, complete } if self.takes_config() => {
                // While up, a new config (a restarted tunnel's) is taken without a state change.
                if generic && self.phase < Phase::IpConfigGet {
                    self.enter(&mut out, Phase::IpConfigGet, Reason::None);
                }
                if complete {
                    if up {
                        out.push(Action::Reapply);
                    } else {
                        self.enter(&mut out, Phase::PreUp, Reason::None);
                        out.push(Action::Apply);
                    }
                }
            }
            Event::ConfigReceived { .. } => {}
            Event::ConfigInvalid { generic } => {
                // NM moves to IP_CONFIG_GET before it reads the generic config.
                if generic && self.takes_config() && self.phase < Phase::IpConfigGet {
                    self.enter(&mut out, Phase::IpConfigGet, Reason::None);
                }
                self.finish(&mut out, End::failed(Reason::IpConfigInvalid));
            }
            Event::Applied(true) if self.phase == Phase::PreUp || up => {
                self.enter(&mut out, Phase::Activated, Reason::None);
                out.push(Action::Publish);
            }
            Event::Applied(true) => {}
            Event::Applied(false) => self.finish(&mut out, End::failed(Reason::IpConfigInvalid)),
            Event::Timeout(t) => {
                let end = match t {
                    Timer::ServiceStart if !self.claimed => {
                        out.push(Action::TerminatePlugin);
                        Some(End::disconnected(Reason::ServiceStartTimeout))
                    }
                    Timer::Connect if !up => Some(End::failed(Reason::ConnectTimeout)),
                    Timer::Activation if !up => {
                        Some(End::disconnected(Reason::ServiceStartTimeout))
                    }
                    _ => None,
                };
                if let Some(end) = end {
                    self.finish(&mut out, end);
                }
            }
            Event::Deactivate(r) => {
                let user = matches!(r, Reason::UserDisconnected | Reason::ConnectionRemoved);
                if user && up {
                    self.enter(&mut out, Phase::Deactivating, r);
                }
                self.finish(&mut out, End::disconnected(r));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
