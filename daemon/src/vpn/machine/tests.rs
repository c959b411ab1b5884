//! NM's state table (spec VPN-PROTOCOL §6–7), cell by cell, and its timers on a paused clock.

use std::time::Duration;

use tinynm_config::nm::{AcState, PluginFailure, Reason, ServiceState, VpnState};

use super::*;
use crate::vpn::timers::Timers;

/// Where a machine can stand, and how it got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Waiting,
    /// Prepare, the plugin exec'd and not yet claimed.
    Starting,
    /// Prepare, the plugin's name owned, signals not yet subscribed.
    Claimed,
    NeedAuth,
    /// Connect, the call not yet returned.
    Connecting,
    /// Connect, the call returned (the connect timer runs).
    Connected,
    IpConfigGet,
    PreUp,
    Activated,
    Ended,
}

const ALL_AT: [At; 10] = [
    At::Waiting,
    At::Starting,
    At::Claimed,
    At::NeedAuth,
    At::Connecting,
    At::Connected,
    At::IpConfigGet,
    At::PreUp,
    At::Activated,
    At::Ended,
];

/// The happy path, event by event.
fn happy() -> [Event; 6] {
    [
        Event::OwnerLookedUp(true),
        Event::Subscribed,
        Event::SecretsReady,
        Event::Connected,
        Event::ConfigReceived {
            generic: true,
            complete: true,
        },
        Event::Applied(true),
    ]
}

fn machine_at(at: At) -> Machine {
    let h = happy();
    let partial = [Event::ConfigReceived {
        generic: true,
        complete: false,
    }];
    let path: Vec<Event> = match at {
        At::Waiting => vec![],
        At::Starting => vec![Event::OwnerLookedUp(false)],
        At::Claimed => vec![Event::OwnerLookedUp(false), Event::NameClaimed],
        At::NeedAuth => h[..2].to_vec(),
        At::Connecting => h[..3].to_vec(),
        At::Connected => h[..4].to_vec(),
        At::IpConfigGet => [&h[..4], &partial[..]].concat(),
        At::PreUp => h[..5].to_vec(),
        At::Activated => h.to_vec(),
        At::Ended => vec![Event::Deactivate(Reason::UserDisconnected)],
    };
    let mut m = Machine::new();
    for e in path {
        m.on_event(e);
    }
    m
}

fn all_events() -> Vec<Event> {
    let mut v = vec![
        Event::OwnerLookedUp(true),
        Event::OwnerLookedUp(false),
        Event::NameClaimed,
        Event::StartFailed,
        Event::SubscribeFailed,
        Event::Subscribed,
        Event::NameVanished,
        Event::Exited,
        Event::SecretsReady,
        Event::SecretsFailed,
        Event::Connected,
        Event::ConnectFailed,
        Event::Failure(PluginFailure::LoginFailed as u32),
        Event::SecretsRequired,
        Event::NewSecretsDone(true),
        Event::NewSecretsDone(false),
        Event::CredentialsRefused,
        Event::ConfigInvalid { generic: false },
        Event::ConfigInvalid { generic: true },
        Event::Applied(true),
        Event::Applied(false),
        Event::Deactivate(Reason::UserDisconnected),
        Event::Deactivate(Reason::DependencyFailed),
    ];
    for s in [
        ServiceState::Init,
        ServiceState::Starting,
        ServiceState::Started,
        ServiceState::Stopping,
        ServiceState::Stopped,
    ] {
        v.push(Event::ServiceState(s));
    }
    for (generic, complete) in [(false, false), (true, false), (false, true), (true, true)] {
        v.push(Event::ConfigReceived { generic, complete });
    }
    for t in [Timer::ServiceStart, Timer::Connect, Timer::Activation] {
        v.push(Event::Timeout(t));
    }
    v
}

fn fin(end: End) -> Vec<Action> {
    vec![Action::Finish(end)]
}

/// What NM does for `ev` at `at`: the expected actions, written from spec §6–7.
fn expected(at: At, ev: &Event) -> Vec<Action> {
    use At::*;
    let running = !matches!(at, Waiting | Ended);
    let claimed = running && at != Starting;
    let up = at == Activated;
    let takes_config = matches!(
        at,
        NeedAuth | Connecting | Connected | IpConfigGet | PreUp | Activated
    );
    if at == Ended {
        return vec![];
    }
    match ev {
        Event::OwnerLookedUp(true) if at == Waiting => vec![
            Action::Enter(Phase::Prepare, Reason::None),
            Action::Arm(Timer::Activation),
            Action::Subscribe,
        ],
        Event::OwnerLookedUp(false) if at == Waiting => vec![
            Action::Enter(Phase::Prepare, Reason::None),
            Action::StartPlugin,
            Action::Arm(Timer::ServiceStart),
        ],
        Event::OwnerLookedUp(_) => vec![],
        Event::NameClaimed if at == Starting => {
            vec![Action::Arm(Timer::Activation), Action::Subscribe]
        }
        Event::NameClaimed => vec![],
        Event::StartFailed => fin(End::disconnected(Reason::ServiceStartFailed)),
        Event::SubscribeFailed => fin(End::failed(Reason::ServiceStartFailed)),
        Event::Subscribed if matches!(at, Starting | Claimed) => vec![
            Action::Enter(Phase::NeedAuth, Reason::None),
            Action::Authenticate,
        ],
        Event::Subscribed => vec![],
        // §7: the name vanishing → DISCONNECTED / SERVICE_STOPPED.
        Event::NameVanished if claimed => fin(End::disconnected(Reason::ServiceStopped)),
        Event::NameVanished => vec![],
        Event::Exited if at == Starting => fin(End::disconnected(Reason::ServiceStartFailed)),
        Event::Exited => vec![],
        Event::SecretsReady if at == NeedAuth => {
            vec![Action::Enter(Phase::Connect, Reason::None), Action::Connect]
        }
        Event::SecretsReady => vec![],
        // §6.3: after pass 3, or a NeedSecrets error → FAILED / NO_SECRETS.
        Event::SecretsFailed => fin(End::failed(Reason::NoSecrets)),
        Event::Connected if matches!(at, Connecting | Connected) => {
            vec![Action::Arm(Timer::Connect)]
        }
        Event::Connected => vec![],
        Event::ConnectFailed => fin(End::failed(Reason::ServiceStartFailed)),
        // §4.3: STOPPED while running → FAILED with the recorded Failure's reason, else UNKNOWN.
        Event::ServiceState(ServiceState::Stopped) if running => fin(End::failed(Reason::Unknown)),
        Event::ServiceState(_) => vec![],
        Event::Failure(_) => vec![],
        // §6.3: SecretsRequired only in CONNECT or NEED_AUTH (and before).
        Event::SecretsRequired
            if claimed && matches!(at, Claimed | NeedAuth | Connecting | Connected) =>
        {
            let mut v = if at == NeedAuth {
                vec![]
            } else {
                vec![Action::Enter(Phase::NeedAuth, Reason::None)]
            };
            v.push(Action::AskMoreSecrets);
            v
        }
        Event::SecretsRequired => vec![],
        Event::NewSecretsDone(true) if at == NeedAuth => {
            vec![Action::Enter(Phase::Connect, Reason::None)]
        }
        Event::NewSecretsDone(true) => vec![],
        Event::NewSecretsDone(false) => fin(End::failed(Reason::NoSecrets)),
        Event::CredentialsRefused => fin(End::failed(Reason::LoginFailed)),
        Event::ConfigReceived { generic, complete } if takes_config => {
            let mut v = vec![];
            if *generic && matches!(at, NeedAuth | Connecting | Connected) {
                v.push(Action::Enter(Phase::IpConfigGet, Reason::None));
            }
            if *complete {
                if up {
                    v.push(Action::Reapply);
                } else if at == PreUp {
                    v.push(Action::Apply);
                } else {
                    v.extend([Action::Enter(Phase::PreUp, Reason::None), Action::Apply]);
                }
            }
            v
        }
        Event::ConfigReceived { .. } => vec![],
        Event::ConfigInvalid { generic } => {
            let mut v = vec![];
            if *generic && matches!(at, NeedAuth | Connecting | Connected) {
                v.push(Action::Enter(Phase::IpConfigGet, Reason::None));
            }
            v.extend(fin(End::failed(Reason::IpConfigInvalid)));
            v
        }
        Event::Applied(true) if at == PreUp => vec![
            Action::Enter(Phase::Activated, Reason::None),
            Action::Publish,
        ],
        Event::Applied(true) if up => vec![Action::Publish],
        Event::Applied(true) => vec![],
        Event::Applied(false) => fin(End::failed(Reason::IpConfigInvalid)),
        Event::Timeout(Timer::ServiceStart) if !claimed => {
            let mut v = vec![Action::TerminatePlugin];
            v.extend(fin(End::disconnected(Reason::ServiceStartTimeout)));
            v
        }
        Event::Timeout(Timer::ServiceStart) => vec![],
        Event::Timeout(Timer::Connect) if !up => fin(End::failed(Reason::ConnectTimeout)),
        Event::Timeout(Timer::Activation) if !up => {
            fin(End::disconnected(Reason::ServiceStartTimeout))
        }
        Event::Timeout(_) => vec![],
        // §6.4: a user's deactivation of an ACTIVATED VPN goes through DEACTIVATING.
        Event::Deactivate(r @ Reason::UserDisconnected) if up => vec![
            Action::Enter(Phase::Deactivating, *r),
            Action::Finish(End::disconnected(*r)),
        ],
        Event::Deactivate(r) => fin(End::disconnected(*r)),
    }
}

#[test]
fn every_state_and_event_of_nms_table() {
    let mut cells = 0;
    for at in ALL_AT {
        for ev in all_events() {
            let mut m = machine_at(at);
            let got = m.on_event(ev.clone());
            assert_eq!(got, expected(at, &ev), "at {at:?}, event {ev:?}");
            // A finished machine stays finished, with the end it said.
            if let Some(Action::Finish(end)) = got.last() {
                assert_eq!(m.ended(), Some(*end));
                assert!(m.on_event(Event::Applied(true)).is_empty());
            }
            cells += 1;
        }
    }
    assert_eq!(cells, ALL_AT.len() * all_events().len());
}

#[test]
fn the_happy_path_shows_nms_states_in_order() {
    let m = machine_at(At::Activated);
    assert_eq!(m.phase(), Phase::Activated);
    assert_eq!(
        m.phase().external(),
        (AcState::Activated, VpnState::Activated)
    );
    let mut m = Machine::new();
    let mut shown = vec![];
    for ev in [
        Event::OwnerLookedUp(false),
        Event::NameClaimed,
        Event::Subscribed,
        Event::SecretsReady,
        Event::Connected,
        Event::ConfigReceived {
            generic: true,
            complete: false,
        },
        Event::ConfigReceived {
            generic: false,
            complete: true,
        },
        Event::Applied(true),
    ] {
        for a in m.on_event(ev) {
            if let Action::Enter(p, _) = a {
                shown.push(p.external().1);
            }
        }
    }
    assert_eq!(
        shown,
        [
            VpnState::Prepare,
            VpnState::NeedAuth,
            VpnState::Connect,
            VpnState::IpConfigGet,
            VpnState::IpConfigGet,
            VpnState::Activated
        ]
    );
}

#[test]
fn a_recorded_failure_explains_the_stop() {
    // spec §7: Failure(LOGIN_FAILED) then STOPPED → FAILED / LOGIN_FAILED; BAD_IP_CONFIG →
    // IP_CONFIG_INVALID; CONNECT_FAILED → UNKNOWN.
    for (f, reason) in [
        (PluginFailure::LoginFailed, Reason::LoginFailed),
        (PluginFailure::BadIpConfig, Reason::IpConfigInvalid),
        (PluginFailure::ConnectFailed, Reason::Unknown),
    ] {
        for at in [At::Connected, At::Activated] {
            let mut m = machine_at(at);
            assert!(m.on_event(Event::Failure(f as u32)).is_empty());
            assert_eq!(
                m.on_event(Event::ServiceState(ServiceState::Stopped)),
                fin(End::failed(reason)),
                "{f:?} at {at:?}"
            );
        }
    }
}

#[test]
fn external_states() {
    assert_eq!(
        Phase::PreUp.external(),
        (AcState::Activating, VpnState::IpConfigGet)
    );
    assert_eq!(
        Phase::Deactivating.external(),
        (AcState::Deactivating, VpnState::Activated)
    );
    assert_eq!(
        Phase::Failed.external(),
        (AcState::Deactivated, VpnState::Failed)
    );
    assert_eq!(
        Phase::Disconnected.external(),
        (AcState::Deactivated, VpnState::Disconnected)
    );
}

/// Runs the timers on the paused clock until one goes off, feeding it to the machine.
async fn fire(timers: &mut Timers, m: &mut Machine) -> (Timer, Duration, Vec<Action>) {
    let start = tokio::time::Instant::now();
    let t = timers.next().await;
    (t, start.elapsed(), m.on_event(Event::Timeout(t)))
}

#[tokio::test(start_paused = true)]
async fn the_service_start_timer_ends_a_silent_plugin_after_5s() {
    let mut m = Machine::new();
    let mut timers = Timers::default();
    for a in m.on_event(Event::OwnerLookedUp(false)) {
        if let Action::Arm(t) = a {
            timers.arm(t, Duration::from_secs(5));
        }
    }
    let (t, after, actions) = fire(&mut timers, &mut m).await;
    assert_eq!(t, Timer::ServiceStart);
    assert_eq!(after, Duration::from_secs(5));
    assert_eq!(
        actions,
        [
            Action::TerminatePlugin,
            Action::Finish(End::disconnected(Reason::ServiceStartTimeout))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_connect_timer_goes_before_the_activation_timer() {
    let mut m = machine_at(At::Claimed);
    let mut timers = Timers::default();
    // vpn.timeout 60: the activation timer is 60 + 180 s from the claim, the connect timer
    // 60 s from Connect's return, 10 s later.
    timers.arm(Timer::Activation, Duration::from_secs(240));
    for ev in [Event::Subscribed, Event::SecretsReady] {
        m.on_event(ev);
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(m.on_event(Event::Connected), [Action::Arm(Timer::Connect)]);
    timers.arm(Timer::Connect, Duration::from_secs(60));
    let (t, after, actions) = fire(&mut timers, &mut m).await;
    assert_eq!((t, after), (Timer::Connect, Duration::from_secs(60)));
    assert_eq!(actions, fin(End::failed(Reason::ConnectTimeout)));
}

#[tokio::test(start_paused = true)]
async fn the_activation_timer_ends_a_slow_activation_and_not_an_activated_one() {
    let mut m = machine_at(At::IpConfigGet);
    let mut timers = Timers::default();
    timers.arm(Timer::Activation, Duration::from_secs(240));
    let (t, after, actions) = fire(&mut timers, &mut m).await;
    assert_eq!((t, after), (Timer::Activation, Duration::from_secs(240)));
    assert_eq!(actions, fin(End::disconnected(Reason::ServiceStartTimeout)));

    let mut m = machine_at(At::Activated);
    timers.arm(Timer::Activation, Duration::from_secs(1));
    timers.arm(Timer::Connect, Duration::from_secs(2));
    let (_, _, a1) = fire(&mut timers, &mut m).await;
    let (_, _, a2) = fire(&mut timers, &mut m).await;
    assert!(a1.is_empty() && a2.is_empty());
    assert_eq!(m.phase(), Phase::Activated);
}

#[tokio::test(start_paused = true)]
async fn cleared_timers_never_go_off() {
    let mut timers = Timers::default();
    timers.arm(Timer::Connect, Duration::from_secs(1));
    timers.clear();
    let r = tokio::time::timeout(Duration::from_secs(3600), timers.next()).await;
    assert!(r.is_err(), "a cleared timer went off");
}
