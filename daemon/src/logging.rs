//! Where tinynmd logs, and what: to the journal when systemd gives its stderr to the journal
//! (`JOURNAL_STREAM`; with fields: the priority, the target, the plugin), else to stderr; the
//! level from daemon.toml's `log-level`, or a filter from `TINYNM_LOG` (else `RUST_LOG`), as
//! tracing's `EnvFilter` reads it. Imports nothing of the daemon.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter: the environment's when set (its name in the error when it does not parse),
/// else tinynmd's own modules at `level` and libraries (zbus…) only from warnings up.
pub fn filter(
    level: LevelFilter,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<EnvFilter> {
    for var in ["TINYNM_LOG", "RUST_LOG"] {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            return EnvFilter::builder()
                .parse(&v)
                .map_err(|e| anyhow::anyhow!("{var}='{v}' is not a log filter: {e}"));
        }
    }
    let quiet = level.min(LevelFilter::WARN);
    Ok(EnvFilter::builder().parse_lossy(format!(
        "{quiet},tinynmd={level},tinynm_vpn_plugin={level},mozim={level}"
    )))
}

/// Installs the logger.
pub fn init(level: LevelFilter) -> anyhow::Result<()> {
    let filter = filter(level, |v| std::env::var(v).ok())?;
    let journal = std::env::var_os("JOURNAL_STREAM")
        .is_some()
        .then(|| tracing_journald::layer().ok())
        .flatten();
    let registry = tracing_subscriber::registry().with(filter);
    match journal {
        Some(j) => registry
            .with(j.with_syslog_identifier("tinynmd".into()))
            .init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(|| tinynm_vpn_plugin::service::QuietStderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_and_a_bad_filter_is_named() {
        let none = |_: &str| None;
        let f = filter(LevelFilter::DEBUG, none).unwrap().to_string();
        // Its directives in no set order.
        let d: Vec<&str> = f.split(',').collect();
        assert!(d.contains(&"tinynmd=debug") && d.contains(&"warn"), "{f}");
        let f = filter(LevelFilter::INFO, |v| {
            (v == "RUST_LOG").then(|| "trace".to_string())
        })
        .unwrap();
        assert_eq!(f.to_string(), "trace");
        let f = filter(LevelFilter::INFO, |v| {
            Some(
                if v == "TINYNM_LOG" {
                    "tinynmd::vpn=debug"
                } else {
                    "off"
                }
                .to_string(),
            )
        })
        .unwrap();
        assert_eq!(f.to_string(), "tinynmd::vpn=debug");
        let e = filter(LevelFilter::INFO, |v| {
            (v == "TINYNM_LOG").then(|| "tinynmd=loud".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("TINYNM_LOG='tinynmd=loud' is not a log filter"),
            "{e}"
        );
    }
}
