//! Secrets: stored ones, secret agents (NM's passes), a second factor, and never hanging when
//! nobody can answer.

mod common;

use common::{AgentMode, TestAgent, World};

/// Activates a profile needing secret `token` (with these flags) and expects NO_SECRETS;
/// returns the daemon's log.
async fn fails_for_token(w: &mut World, id: &str, tundev: &str, flags: &str) -> String {
    let p = w
        .add(
            id,
            &[
                ("tundev", tundev),
                ("require-secret", "token"),
                ("token-flags", flags),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(
        w.wait_vpn(ac.as_str(), &[5, 6, 7]).await,
        (6, 9),
        "NO_SECRETS"
    );
    w.wait_removed(ac.as_str()).await;
    w.daemon.log_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_agent_a_missing_secret_fails_at_once_naming_it() {
    let mut w = World::new().await;
    let base = w.kernel();
    let log = fails_for_token(&mut w, "needs-token", "tbsec0", "2").await;
    assert!(
        log.contains(
            "needs secrets for 'vpn' (vpn.secrets.token): the profile does not store them and no secret agent of uid 0 is registered"
        ),
        "{log}"
    );
    w.assert_clean(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_gives_the_secret_when_it_may_ask() {
    let mut w = World::new().await;
    let agent = TestAgent::register(&w, &[("token", "t0k3n")], AgentMode::Interactive).await;
    let p = w
        .add(
            "from-agent",
            &[
                ("tundev", "tbsec1"),
                ("require-secret", "token"),
                ("token-flags", "1"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    // NM's passes: without interaction first (USER_REQUESTED), then allowed to ask.
    assert_eq!(
        *agent.seen.lock().unwrap(),
        vec![(0x4, vec![]), (0x5, vec![])]
    );
    // Agent-owned secrets are never written: the profile has none.
    let c = w.profile_object(&p).await;
    assert!(c.get_secrets("vpn").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_asked_after_the_password() {
    let mut w = World::new().await;
    let agent = TestAgent::register(&w, &[("otp", "424242")], AgentMode::Answer).await;
    let mut p = common::profile(
        "two-factor",
        common::TESTBENCH,
        &[("tundev", "tbsec2"), ("second-factor", "424242")],
    );
    p.vpn.secrets.insert("password".into(), "stored".into());
    let p = w.add_profile(p).await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
    let seen = agent.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(
            0x5,
            vec![
                "otp".to_string(),
                "x-vpn-message:Enter the one-time code".to_string()
            ]
        )],
        "one interactive request with the plugin's hints and message"
    );
    // NEED_AUTH again while the second factor was asked, then CONNECT again.
    let states: Vec<u32> = w.vpn_states(ac.as_str()).iter().map(|s| s.0).collect();
    assert_eq!(states, vec![2, 3, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_second_factor_is_login_failed() {
    let mut w = World::new().await;
    let _agent = TestAgent::register(&w, &[("otp", "000000")], AgentMode::Answer).await;
    let p = w
        .add(
            "two-factor-bad",
            &[("tundev", "tbsec3"), ("second-factor", "424242")],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (6, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_leaves_mid_request_fails_the_activation_cleanly() {
    let mut w = World::new().await;
    let base = w.kernel();
    let _agent = TestAgent::register(&w, &[], AgentMode::Vanish).await;
    let log = fails_for_token(&mut w, "agent-leaves", "tbsec4", "1").await;
    w.assert_clean(&base);
    assert!(log.contains("vpn.secrets.token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_secrets_file_in_daemon_toml() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("secrets.toml");
    std::fs::write(&f, "[\"headless\"]\ntoken = \"t0k3n\"\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut w = World::with(tinynm_sandbox::DaemonOptions {
        config: format!("secrets-file = \"{}\"", f.display()),
        ..Default::default()
    })
    .await;
    let p = w
        .add(
            "headless",
            &[("tundev", "tbsec5"), ("require-secret", "token")],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(
        w.wait_vpn(ac.as_str(), &[5, 6, 7]).await,
        (5, 1),
        "no agent needed"
    );
    w.manager().await.deactivate_connection(&ac).await.unwrap();
    w.wait_removed(ac.as_str()).await;

    // A file others may read is refused, and says so.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (6, 9));
    let log = w.daemon.log_text();
    assert!(
        log.contains(&format!(
            "secrets file: {}: refused: it must be root's and mode 0600 (it is uid 0, mode 644)",
            f.display()
        )),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_answers_is_given_up_on_after_the_agent_timeout() {
    let mut w = World::with(tinynm_sandbox::DaemonOptions {
        config: "[timeouts]\nagent = 0.5".into(),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::register(&w, &[], AgentMode::Silent).await;
    let log = fails_for_token(&mut w, "agent-silent", "tbsec6", "1").await;
    assert!(
        log.contains(
            "secrets for 'vpn' (vpn.secrets.token): no agent gave them (asked: 'tinynm-test-agent': no answer within 500ms)"
        ),
        "{log}"
    );
    // Each time, the agent was told the request is over.
    agent.wait_calls("cancel", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_owned_secrets_go_to_the_agent_not_to_disk() {
    let w = World::new().await;
    let agent = TestAgent::register(&w, &[], AgentMode::Answer).await;
    let mut p = common::profile(
        "owned",
        common::TESTBENCH,
        &[("password-flags", "1"), ("pin-flags", "2")],
    );
    p.vpn
        .secrets
        .insert("password".into(), "agents-only".into());
    p.vpn.secrets.insert("pin".into(), "never-saved".into());
    p.vpn.secrets.insert("system".into(), "kept".into());
    let d = tinynm_config::dbus::to_dict(&p, true);
    let path = w.settings().await.add_connection(d).await.unwrap();
    let saved = tinynm_config::toml_profile::load_file(&w.saved_profiles()[0]).unwrap();
    assert_eq!(
        saved.vpn.secrets.keys().collect::<Vec<_>>(),
        vec!["system"],
        "only the system-owned secret is written"
    );
    agent.wait_calls("save password", 1).await;
    w.profile_object(&path).await.delete().await.unwrap();
    agent.wait_calls("delete", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_required_secret_never_blocks() {
    let mut w = World::new().await;
    let p = w
        .add(
            "optional",
            &[
                ("tundev", "tbsec7"),
                ("require-secret", "token"),
                ("token-flags", "4"),
            ],
        )
        .await;
    let ac = w.activate(&p).await.unwrap();
    assert_eq!(w.wait_vpn(ac.as_str(), &[5, 6, 7]).await, (5, 1));
}
