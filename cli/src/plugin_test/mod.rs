//! `tinynm plugin-test`: runs an NM VPN plugin through NetworkManager 1.42's protocol in a
//! throwaway world (a network namespace with a parent network, a private bus) and checks it
//! against NM's contract (spec VPN-PROTOCOL.md), check by check, with the evidence.
//!
//! The bench plays NM's part itself: it execs the plugin as NM does (`--bus-name
//! <service>.Connection_1`, NM's log variables, the bus in `DBUS_SYSTEM_BUS_ADDRESS`), calls
//! `NeedSecrets`, `Connect` and `Disconnect`, reads every signal, parses each config with NM's
//! rules (the SDK's wire types, as tinynmd does), then ends the plugin with SIGTERM and compares
//! the namespace's kernel state with what it was before.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tinynm_config::Profile;
use tinynm_config::namefile::PluginInfo;
use tinynm_config::profile::Family;
use tinynm_sandbox::{Bus, Kernel, Netns};
use tinynm_vpn_plugin::proxy::VpnPluginProxy;
use tinynm_vpn_plugin::wire::{Dict, GenericConfig, IpConfig};
use zbus::{MatchRule, MessageStream};

mod applied;
mod faults;
mod instance;
mod scenario;
mod server;
mod suite;
mod trace;
mod world;

/// NM's service states (`NMVpnServiceState`).
const STARTING: u32 = 3;
const STARTED: u32 = 4;
const STOPPED: u32 = 6;

/// How long NM gives a plugin to claim its name, and the bench gives it to go.
const FIVE: Duration = Duration::from_secs(5);

/// How long NM's timers run: NM's own, or scaled down so that a plugin that fails a check
/// costs a second, not five.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Timeouts {
    /// NM 1.42's: 5 s to claim the name, to stop and to leave.
    Nm,
    /// A fifth of them: 1 s each.
    Fast,
}

/// What to run.
#[derive(clap::Args, Debug, Clone)]
pub struct Opts {
    /// A `.name` file, or a service type (`org.freedesktop.NetworkManager.openvpn`) or
    /// plugin name found in NM's plugin directories or tinynm's.
    pub plugin: String,
    /// The profile: a tinynm TOML profile (`.toml`) or an NM keyfile (`.nmconnection`) of
    /// the plugin's service type; `--data` and `--secret` add to it.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// The plugin must bring IPv6 too: a missing Ip6Config fails `ip6config-valid`.
    #[arg(long)]
    pub ipv6: bool,
    /// Run the scenarios of this TOML file (`[[scenario]]`: name, data, secrets, ipv6,
    /// server, expect), each in a world of its own; `--data`/`--secret` add to each.
    #[arg(long, value_name = "FILE")]
    pub scenarios: Option<PathBuf>,
    /// `vpn.data` KEY=VALUE (repeat).
    #[arg(long = "data", value_name = "KEY=VALUE")]
    pub data: Vec<String>,
    /// `vpn.secrets` KEY=VALUE (repeat).
    #[arg(long = "secret", value_name = "KEY=VALUE")]
    pub secrets: Vec<String>,
    /// Seconds `Connect` may take to reach STARTED.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub connect_timeout: u64,
    /// NM's timers (`nm`: 5 s) or a fifth of them (`fast`).
    #[arg(long, value_enum, default_value = "nm")]
    pub timeouts: Timeouts,
    /// The report as JSON (the global `--json`): {plugin, service, checks: [{id, status,
    /// detail}], passed, failed}.
    #[arg(skip)]
    pub json: bool,
    /// Colour (the global `--color`).
    #[arg(skip)]
    pub color: bool,
    /// Also write the report as JUnit XML to FILE (one test case per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Run the plugin's peer: COMMAND (by `sh -c`) in a second namespace at 10.99.0.1/24,
    /// the plugin's at 10.99.0.2/24 (and 10.200.0.0/24 behind the server).
    #[arg(long, value_name = "COMMAND")]
    pub server: Option<String>,
    /// Wait, before the plugin starts, until the server's output holds TEXT.
    #[arg(long, value_name = "TEXT", requires = "server")]
    pub server_ready: Option<String>,
    /// After the checks, keep the world up (with a tinynmd holding the profile, named
    /// `plugin-test`) until Ctrl-C, and print how to enter it: the bus for `nmcli`, `nsenter`.
    #[arg(long)]
    pub keep: bool,
    /// In `applied`, ADDR must answer a ping through the VPN (repeat).
    #[arg(long, value_name = "ADDR")]
    pub ping: Vec<String>,
    /// Run COMMAND (by `sh -c`) in the plugin's namespace once `--server` is up, and take
    /// each `KEY=VALUE` line it prints as a secret (a headless login: `openconnect
    /// --authenticate`'s cookie).
    #[arg(long, value_name = "COMMAND")]
    pub secrets_command: Option<String>,
    /// Write every D-Bus message of the run to FILE, one JSON object per line (secrets
    /// redacted).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

impl Opts {
    /// NM's 5 s, or the fast second.
    fn limit(&self) -> Duration {
        match self.timeouts {
            Timeouts::Nm => FIVE,
            Timeouts::Fast => Duration::from_secs(1),
        }
    }

    fn connect_limit(&self) -> Duration {
        Duration::from_secs(self.connect_timeout)
    }
}

/// One check's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// Its stable id.
    pub id: &'static str,
    /// `pass`, `fail` or `skip`.
    pub status: &'static str,
    /// The evidence, in one line.
    pub detail: String,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn put(&mut self, id: &'static str, ok: bool, detail: impl Into<String>) {
        let status = if ok { "pass" } else { "fail" };
        self.0.push(Check {
            id,
            status,
            detail: detail.into(),
        });
    }

    fn skip(&mut self, id: &'static str, detail: impl Into<String>) {
        self.0.push(Check {
            id,
            status: "skip",
            detail: detail.into(),
        });
    }
}

/// The plugin `arg` names: a `.name` file, or a plugin whose service type, alias or name it is,
/// in NM's directories and tinynm's.
fn find_plugin(arg: &str) -> anyhow::Result<PluginInfo> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return tinynm_config::namefile::parse(&text, path).with_context(|| {
            format!(
                "{}: not a VPN plugin description ([VPN Connection] with name, service and an absolute program)",
                path.display()
            )
        });
    }
    let dirs: Vec<PathBuf> = tinynm_config::daemon_config::NM_PLUGIN_DIRS
        .iter()
        .chain(&["/usr/lib/tinynm/VPN"])
        .map(PathBuf::from)
        .collect();
    for dir in &dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "name") {
                continue;
            }
            let Some(info) = std::fs::read_to_string(&p)
                .ok()
                .and_then(|t| tinynm_config::namefile::parse(&t, &p))
            else {
                continue;
            };
            if info.serves(arg) || info.name == arg {
                return Ok(info);
            }
        }
    }
    bail!(
        "no VPN plugin '{arg}' in {}: give a .name file or a service type",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn pairs(what: &str, kv: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    kv.iter()
        .map(|s| {
            s.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{what} '{s}': expected KEY=VALUE"))
        })
        .collect()
}

/// `s` with XML's five special characters escaped.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The report as JUnit XML: a test suite per (name, checks), one test case per check, a
/// failure or a skip with its evidence as the message.
fn junit(suites: &[(String, Vec<Check>)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (name, checks) in suites {
        let count = |s: &str| checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "<testsuite name=\"tinynm plugin-test {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
            xml(name),
            checks.len(),
            count("fail"),
            count("skip")
        ));
        for c in checks {
            let (class, id, detail) = (xml(name), c.id, xml(&c.detail));
            out.push_str(&match c.status {
                "fail" => format!(
                    "  <testcase classname=\"{class}\" name=\"{id}\"><failure message=\"{detail}\"/></testcase>\n"
                ),
                "skip" => format!(
                    "  <testcase classname=\"{class}\" name=\"{id}\"><skipped message=\"{detail}\"/></testcase>\n"
                ),
                _ => format!(
                    "  <testcase classname=\"{class}\" name=\"{id}\"><system-out>{detail}</system-out></testcase>\n"
                ),
            });
        }
        out.push_str("</testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// `--profile`: a TOML profile or an NM keyfile, for this plugin's service.
fn load_profile(f: &Path, info: &PluginInfo) -> anyhow::Result<Profile> {
    let text = std::fs::read_to_string(f)
        .with_context(|| format!("--profile: cannot read {}", f.display()))?;
    let keyfile = f.extension().is_some_and(|x| x == "nmconnection");
    let p = if keyfile {
        tinynm_config::keyfile::from_keyfile_str(&text)
            .with_context(|| format!("--profile {}", f.display()))?
            .with_context(|| format!("--profile {}: not a VPN profile", f.display()))?
    } else {
        tinynm_config::toml_profile::from_toml_str(&text)
            .with_context(|| format!("--profile {}", f.display()))?
    };
    if !p.is_vpn() || !info.serves(&p.vpn.service_type) {
        bail!(
            "--profile {}: its vpn.service-type is '{}', not this plugin's '{}'",
            f.display(),
            p.vpn.service_type,
            info.service
        );
    }
    Ok(p)
}

/// The profile the options describe.
fn profile_of(o: &Opts, info: &PluginInfo) -> anyhow::Result<Profile> {
    let data = pairs("--data", &o.data)?;
    let secrets = pairs("--secret", &o.secrets)?;
    let mut profile = match &o.profile {
        Some(f) => load_profile(f, info)?,
        None => Profile::new_vpn(
            "plugin-test",
            "5e1f7e57-0000-4000-8000-00000000beef",
            &info.service,
        ),
    };
    profile.connection.id = "plugin-test".into();
    profile.vpn.data.extend(data);
    profile.vpn.secrets.extend(secrets);
    profile
        .validate()
        .context("the profile the options describe")?;
    Ok(profile)
}

/// Runs the checks (or with `--scenarios`, each scenario's); the report and whether nothing
/// failed.
pub async fn run(o: Opts) -> anyhow::Result<bool> {
    let info = find_plugin(&o.plugin)?;
    if let Some(f) = &o.scenarios {
        return suite::run(&o, &info, f).await;
    }
    let profile = profile_of(&o, &info)?;
    let (checks, mut world) = scenario::exercise(&info, profile, &o).await?;
    let failed = checks.iter().filter(|c| c.status == "fail").count();
    let passed = checks.iter().filter(|c| c.status == "pass").count();
    if let Some(f) = &o.junit {
        std::fs::write(f, junit(&[(info.service.clone(), checks.clone())]))
            .with_context(|| format!("cannot write {}", f.display()))?;
    }
    if o.json {
        let v = serde_json::json!({
            "plugin": info.file.display().to_string(),
            "service": info.service,
            "checks": checks,
            "passed": passed,
            "failed": failed,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        header(&info);
        table(&checks, o.color);
        println!("{passed} passed, {failed} failed");
    }
    if o.keep {
        use std::io::Write;
        std::io::stdout().flush()?;
        applied::keep(&mut world).await?;
    }
    drop(world);
    Ok(failed == 0)
}

/// The report's first line: the plugin.
fn header(info: &PluginInfo) {
    println!(
        "plugin {} ({}, {})",
        info.name,
        info.service,
        info.program.display()
    );
}

/// The checks as a table, a line each; the status in colour on a terminal (not with
/// `NO_COLOR`).
fn table(checks: &[Check], colour: bool) {
    for c in checks {
        let status = format!("{:<4}", c.status);
        let status = match (colour, c.status) {
            (true, "pass") => format!("\x1b[32m{status}\x1b[0m"),
            (true, "fail") => format!("\x1b[1;31m{status}\x1b[0m"),
            (true, _) => format!("\x1b[33m{status}\x1b[0m"),
            (false, _) => status,
        };
        println!("{:<21} {status}  {}", c.id, c.detail);
    }
}
