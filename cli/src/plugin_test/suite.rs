//! `--scenarios FILE`: a plugin author's suite in TOML, kept in the plugin's repository. Each
//! `[[scenario]]` runs in a world of its own and says what it expects:
//!
//! ```toml
//! [[scenario]]
//! name = "wrong password"
//! data = { remote = "10.99.0.1" }
//! secrets = { password = "wrong" }
//! ping = ["10.200.0.1"]
//! server = { command = "exec openvpn --config ${PKI}/server.conf", ready = "Initialization Sequence Completed" }
//! expect = { outcome = "failed", reason = "login", skip = ["peer-watch"] }
//! ```
//!
//! `${NAME}` is replaced by the environment variable NAME (an error if it is not set), so a
//! suite can name files that a CI job makes. A scenario passes when no check fails; with
//! `outcome = "failed"`, `connect` passes only if the plugin fails (with `reason`'s Failure,
//! if given), and it fails if the plugin connects.

use serde::Deserialize;

use super::*;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Suite {
    scenario: Vec<Scenario>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Scenario {
    name: String,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    ipv6: bool,
    /// Addresses that must answer a ping through the VPN (`applied`).
    #[serde(default)]
    ping: Vec<String>,
    timeouts: Option<String>,
    server: Option<ServerSpec>,
    #[serde(default)]
    expect: Expect,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ServerSpec {
    command: String,
    ready: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    outcome: Outcome,
    reason: Option<Reason>,
    #[serde(default)]
    skip: Vec<String>,
}

#[derive(Deserialize, Debug, Default, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Outcome {
    #[default]
    Activated,
    Failed,
}

/// NM's `NMVpnPluginFailure`.
#[derive(Deserialize, Debug, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Reason {
    Login,
    Connect,
    BadIp,
}

impl Reason {
    fn code(self) -> u32 {
        match self {
            Reason::Login => 0,
            Reason::Connect => 1,
            Reason::BadIp => 2,
        }
    }
}

/// Every check id a report can hold.
const IDS: [&str; 16] = [
    "name-claim",
    "need-secrets",
    "connect",
    "config-order",
    "config-valid",
    "ip4config-valid",
    "ip6config-valid",
    "failure-reason",
    "disconnect",
    "sigterm",
    "peer-watch",
    "disconnect-starting",
    "disconnect-configured",
    "interactive",
    "applied",
    "no-leftovers",
];

/// `text` with each `${NAME}` replaced by the environment's NAME.
fn expand(text: &str, file: &Path) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            bail!("{}: an unclosed '${{'", file.display());
        };
        let name = &after[..j];
        let v = std::env::var(name).with_context(|| {
            format!(
                "{}: ${{{name}}} is used but not set in the environment",
                file.display()
            )
        })?;
        out.push_str(&v);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn load(file: &Path) -> anyhow::Result<Suite> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--scenarios: cannot read {}", file.display()))?;
    parse(&text, file)
}

/// A suite from its text (`file` names it in errors).
fn parse(text: &str, file: &Path) -> anyhow::Result<Suite> {
    let suite: Suite = toml::from_str(&expand(text, file)?)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message()))?;
    if suite.scenario.is_empty() {
        bail!("{}: no [[scenario]]", file.display());
    }
    for s in &suite.scenario {
        for id in &s.expect.skip {
            if !IDS.contains(&id.as_str()) {
                bail!(
                    "{}: scenario '{}': expect.skip: '{id}' is not a check (the checks: {})",
                    file.display(),
                    s.name,
                    IDS.join(", ")
                );
            }
        }
        if s.expect.reason.is_some() && s.expect.outcome != Outcome::Failed {
            bail!(
                "{}: scenario '{}': expect.reason goes with outcome = \"failed\"",
                file.display(),
                s.name
            );
        }
        if let Some(t) = &s.timeouts
            && t != "nm"
            && t != "fast"
        {
            bail!(
                "{}: scenario '{}': timeouts: '{t}' (expected \"nm\" or \"fast\")",
                file.display(),
                s.name
            );
        }
    }
    Ok(suite)
}

/// The scenario's expectations applied to its report.
fn judge(s: &Scenario, checks: &mut [Check]) {
    for c in checks.iter_mut() {
        if s.expect.skip.iter().any(|x| x == c.id) {
            c.status = "skip";
            c.detail = format!("not judged in this scenario ({})", c.detail);
        }
    }
    if s.expect.outcome != Outcome::Failed {
        return;
    }
    // A scenario that fails judges how the plugin fails; what needs it connected is moot.
    for c in checks.iter_mut() {
        let judged = [
            "name-claim",
            "need-secrets",
            "connect",
            "failure-reason",
            "disconnect",
            "sigterm",
            "no-leftovers",
        ];
        if !judged.contains(&c.id) && c.status == "fail" {
            c.status = "skip";
            c.detail = format!("not judged in a scenario that fails ({})", c.detail);
        }
    }
    let failure = checks
        .iter()
        .find(|c| c.id == "connect")
        .and_then(|c| c.detail.split("; Failure(").nth(1))
        .and_then(|x| x.split(')').next())
        .and_then(|x| x.parse::<u32>().ok());
    for c in checks.iter_mut() {
        match c.id {
            "connect" if c.status == "pass" => {
                c.status = "fail";
                c.detail = format!(
                    "connected, but the scenario expects a failure ({})",
                    c.detail
                );
            }
            "connect" => match (s.expect.reason, failure) {
                (Some(r), Some(f)) if r.code() != f => {
                    c.detail = format!(
                        "failed with Failure({f}), but the scenario expects Failure({}) ({})",
                        r.code(),
                        c.detail
                    );
                }
                (Some(r), None) => {
                    c.detail = format!(
                        "failed without a Failure signal; the scenario expects Failure({}) ({})",
                        r.code(),
                        c.detail
                    );
                }
                _ => {
                    c.status = "pass";
                    c.detail = format!("failed, as the scenario expects: {}", c.detail);
                }
            },
            _ => {}
        }
    }
}

/// Runs every scenario of `file`; whether none failed.
pub(super) async fn run(o: &Opts, info: &PluginInfo, file: &Path) -> anyhow::Result<bool> {
    let suite = load(file)?;
    let mut results: Vec<(String, Vec<Check>)> = Vec::new();
    for s in &suite.scenario {
        let mut so = o.clone();
        so.data = s
            .data
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(o.data.iter().cloned())
            .collect();
        so.secrets = s
            .secrets
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(o.secrets.iter().cloned())
            .collect();
        so.ipv6 |= s.ipv6;
        so.ping.extend(s.ping.iter().cloned());
        if let Some(t) = &s.timeouts {
            so.timeouts = if t == "fast" {
                Timeouts::Fast
            } else {
                Timeouts::Nm
            };
        }
        if let Some(srv) = &s.server {
            so.server = Some(srv.command.clone());
            so.server_ready = srv.ready.clone();
        }
        let profile = profile_of(&so, info).with_context(|| format!("scenario '{}'", s.name))?;
        let (mut checks, world) = scenario::exercise(info, profile, &so)
            .await
            .with_context(|| format!("scenario '{}'", s.name))?;
        drop(world);
        judge(s, &mut checks);
        results.push((s.name.clone(), checks));
    }
    let count = |checks: &[Check], st: &str| checks.iter().filter(|c| c.status == st).count();
    let failed_scenarios = results.iter().filter(|(_, c)| count(c, "fail") > 0).count();
    if let Some(f) = &o.junit {
        std::fs::write(f, junit(&results))
            .with_context(|| format!("cannot write {}", f.display()))?;
    }
    if o.json {
        let scenarios: Vec<serde_json::Value> = results
            .iter()
            .map(|(name, checks)| {
                serde_json::json!({
                    "name": name,
                    "checks": checks,
                    "passed": count(checks, "pass"),
                    "failed": count(checks, "fail"),
                })
            })
            .collect();
        let v = serde_json::json!({
            "plugin": info.file.display().to_string(),
            "service": info.service,
            "scenarios": scenarios,
            "passed": results.len() - failed_scenarios,
            "failed": failed_scenarios,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        header(info);
        for (name, checks) in &results {
            println!(
                "\nscenario {name}: {}",
                if count(checks, "fail") == 0 {
                    "pass"
                } else {
                    "FAIL"
                }
            );
            table(checks, o.color);
        }
        println!(
            "\n{} scenarios passed, {failed_scenarios} failed",
            results.len() - failed_scenarios
        );
    }
    Ok(failed_scenarios == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A suite file is the author's input: whatever it holds, an error or a suite, never a
        /// panic.
        #[test]
        fn any_text_is_a_suite_or_an_error(text in "\\PC{0,400}") {
            let _ = parse(&text, Path::new("s.toml"));
        }

        /// Scenarios of any names, data and expectations parse back as written.
        #[test]
        fn written_suites_parse_back(
            names in proptest::collection::vec("[a-z ]{1,12}", 1..4),
            key in "[a-z-]{1,10}",
            value in "[a-zA-Z0-9./ -]{0,20}",
            fail in any::<bool>(),
        ) {
            let mut text = String::new();
            for n in &names {
                text.push_str(&format!(
                    "[[scenario]]\nname = {n:?}\ndata = {{ {key:?} = {value:?} }}\nexpect = {{ outcome = {:?} }}\n",
                    if fail { "failed" } else { "activated" }
                ));
            }
            let s = parse(&text, Path::new("s.toml")).unwrap();
            prop_assert_eq!(s.scenario.len(), names.len());
            for (sc, n) in s.scenario.iter().zip(&names) {
                prop_assert_eq!(&sc.name, n);
                prop_assert_eq!(sc.data.get(&key), Some(&value));
                prop_assert_eq!(sc.expect.outcome == Outcome::Failed, fail);
            }
        }
    }
}
