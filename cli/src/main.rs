//! tinynm: the command-line client of tinynmd (and of NetworkManager: it speaks NM's API).

mod agent;
mod connection;
mod demo;
mod device;
mod dns;
mod general;
mod monitor;
mod names;
mod online;
mod openconnect;
mod out;
mod plugin_test;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use out::{Color, Exit, Out};

/// tinynm: drive tinynmd (or NetworkManager) from the command line.
#[derive(Parser, Debug)]
#[command(name = "tinynm", version, about, after_long_help = EXIT_CODES)]
struct Cli {
    /// D-Bus address of the bus tinynmd is on (default: the system bus, honouring
    /// DBUS_SYSTEM_BUS_ADDRESS).
    #[arg(long, global = true, value_name = "ADDRESS")]
    bus_address: Option<String>,
    /// Give up on a D-Bus call that has no answer after this many seconds (D-Bus's own
    /// default, 25); for `wait-online`, how long to wait (30, as nm-online).
    #[arg(long, global = true, value_name = "SECS")]
    timeout: Option<u64>,
    /// JSON output (the schema: docs/cli.md); errors too, as {"error": {exit, kind, message}}
    /// on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Terse output for scripts, as nmcli's -t: no header, fields separated by ':' (a ':' or
    /// '\' in a value escaped with '\').
    #[arg(short = 't', long, global = true, conflicts_with = "json")]
    terse: bool,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto"
    )]
    color: Color,
    /// How long `connection up` waits for the VPN (default 90 s, as nmcli) and `connection
    /// down` for it to be gone (default 10 s); 0: do not wait.
    #[arg(short = 'w', long, global = true, value_name = "SECS")]
    wait: Option<u64>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The exit codes, for `--help` and the manual (docs/cli.md has the same).
const EXIT_CODES: &str = "\
Exit status (nmcli's numbers; 11 is tinynm's own):
  0   success
  1   any other error
  2   wrong invocation, invalid value, or an ambiguous name (two profiles with that id)
  3   --wait or --timeout ran out
  4   the activation failed
  5   the deactivation failed, or the connection was not active
  6   disconnecting a device failed
  7   deleting a profile failed
  8   no tinynmd (or NetworkManager) on the bus
  10  no such profile, device or active connection
  11  not authorized
With --json an error is printed on stdout as {\"error\": {\"exit\", \"kind\", \"message\"}}.

Environment: NO_COLOR (no colour with --color auto), DBUS_SYSTEM_BUS_ADDRESS (the bus when
--bus-address is not given).";

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The daemon: its state, what you may do.
    #[command(visible_alias = "g")]
    General {
        #[command(subcommand)]
        cmd: Option<general::GeneralCmd>,
    },
    /// Network interfaces as the daemon sees them.
    #[command(visible_alias = "d")]
    Device {
        #[command(subcommand)]
        cmd: Option<device::DeviceCmd>,
    },
    /// Follows the daemon live (devices, active connections, VPN states with reasons, DNS)
    /// until stopped: a line per change.
    #[command(visible_alias = "m")]
    Monitor,
    /// Connection profiles.
    #[command(subcommand, visible_alias = "c")]
    Connection(connection::ConnCmd),
    /// Runs tinynmd in a throwaway namespace with its own bus, activates a VPN of the
    /// test-bench plugin, shows what it put in the kernel, takes it down, cleans up.
    Demo {
        /// Number of extra /32 routes the VPN pushes.
        #[arg(long, default_value_t = 5)]
        routes: u32,
        /// Keep the VPN up this many seconds before taking it down.
        #[arg(long, default_value_t = 0)]
        hold: u64,
    },
    /// DNS as tinynmd has it in force.
    #[command(subcommand)]
    Dns(DnsCmd),
    /// A secret agent: answers tinynmd's requests for VPN secrets (by asking on the terminal,
    /// no echo, or from a secrets file) until stopped.
    Agent {
        /// Answer from this file (`vpn.secrets.KEY:VALUE` lines) instead of asking.
        #[arg(long, value_name = "FILE")]
        secrets_file: Option<PathBuf>,
    },
    /// Runs an NM VPN plugin through NM's protocol in a throwaway namespace and bus, and checks
    /// it against NM's contract: a line per check (id, pass/fail/skip, the evidence); exit 0
    /// only if nothing failed.
    PluginTest(Box<plugin_test::Opts>),
    /// Prints the shell completion script for SHELL (bash, zsh, fish, …), generated from
    /// these very definitions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the manual page tinynm(1) (roff), generated from these very definitions.
    Manual,
    /// Waits until tinynmd is connected (NM's `nm-online`): exit 0 once it is, 1 when
    /// `--timeout` (30 s) runs out first, 2 on another error. For health checks, and for a
    /// container that shares the network of tinynmd's.
    WaitOnline {
        /// Also wait for a VPN to be up (ACTIVATED).
        #[arg(long)]
        vpn: bool,
    },
}

#[derive(Subcommand, Debug)]
enum DnsCmd {
    /// Which server a name will go to, and why.
    Explain {
        /// A host name.
        name: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let out = Out {
        json: cli.json,
        terse: cli.terse,
        color: cli.color.stdout(),
    };
    let call_timeout = cli.timeout.unwrap_or(25);
    let connect = |address: Option<String>| async move {
        connect(address.as_deref(), Duration::from_secs(call_timeout)).await
    };
    let r = match cli.cmd {
        Cmd::PluginTest(opts) => {
            let o = plugin_test::Opts {
                json: out.json,
                color: out.color,
                ..*opts
            };
            match plugin_test::run(o).await {
                Ok(true) => std::process::exit(0),
                Ok(false) => std::process::exit(1),
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    std::process::exit(2);
                }
            }
        }
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tinynm", &mut out);
            std::io::Write::write_all(&mut std::io::stdout(), &out)
                .context("cannot write the completions")
        }
        Cmd::Manual => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("cannot write the manual")
        }
        Cmd::WaitOnline { vpn } => {
            let limit = Duration::from_secs(cli.timeout.unwrap_or(30));
            let call = Duration::from_secs(call_timeout.min(cli.timeout.unwrap_or(25)));
            let started = std::time::Instant::now();
            let r = online::wait(cli.bus_address.as_deref(), vpn, limit, call).await;
            if out.json {
                let v = match &r {
                    Ok(online) => serde_json::json!({
                        "online": online, "vpn": vpn,
                        "seconds": started.elapsed().as_secs_f64(),
                    }),
                    Err(e) => {
                        serde_json::json!({"error": {"exit": 2, "kind": "error", "message": format!("{e:#}")}})
                    }
                };
                println!("{v}");
            }
            match r {
                Ok(true) => std::process::exit(0),
                Ok(false) => {
                    eprintln!(
                        "Error: not online within {} s{}",
                        limit.as_secs(),
                        if vpn { " (no VPN up)" } else { "" }
                    );
                    std::process::exit(1);
                }
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    std::process::exit(2);
                }
            }
        }
        Cmd::Demo { routes, hold } => demo::run(routes, hold).await,
        Cmd::Dns(DnsCmd::Explain { name }) => match connect(cli.bus_address.clone()).await {
            Ok(conn) => dns::explain(&conn, &name, out).await,
            Err(e) => Err(e),
        },
        Cmd::General { cmd } => match connect(cli.bus_address.clone()).await {
            Ok(conn) => general::run(&conn, cmd.unwrap_or_default(), out).await,
            Err(e) => Err(e),
        },
        Cmd::Device { cmd } => match connect(cli.bus_address.clone()).await {
            Ok(conn) => device::run(&conn, cmd.unwrap_or_default(), out).await,
            Err(e) => Err(e),
        },
        Cmd::Monitor => match connect(cli.bus_address.clone()).await {
            Ok(conn) => monitor::run(&conn, out).await,
            Err(e) => Err(e),
        },
        Cmd::Agent { secrets_file } => match connect(cli.bus_address.clone()).await {
            Ok(conn) => agent::run_agent(&conn, secrets_file).await,
            Err(e) => Err(e),
        },
        Cmd::Connection(c) => match connect(cli.bus_address.clone()).await {
            Ok(conn) => connection::run(&conn, c, out, cli.wait).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = r {
        let exit = out::classify(&e);
        let msg = if timed_out(&e) {
            format!(
                "{e:#}: no answer within {call_timeout} s (is tinynmd running and answering on this bus? see --timeout)"
            )
        } else if exit == Exit::NotRunning {
            format!("{e:#} (is tinynmd running on this bus?)")
        } else {
            format!("{e:#}")
        };
        if out.json {
            let v = serde_json::json!({"error": {"exit": exit as i32, "kind": exit.name(), "message": msg}});
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else if cli.color.stderr() {
            eprintln!("\x1b[1;31mError\x1b[0m: {msg}");
        } else {
            eprintln!("Error: {msg}");
        }
        std::process::exit(exit as i32);
    }
}

/// Whether a call failed because nobody answered in time.
fn timed_out(e: &anyhow::Error) -> bool {
    e.chain().any(|c| match c.downcast_ref::<zbus::Error>() {
        Some(zbus::Error::InputOutput(io)) => io.kind() == std::io::ErrorKind::TimedOut,
        _ => c
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut),
    })
}

async fn connect(address: Option<&str>, timeout: Duration) -> anyhow::Result<zbus::Connection> {
    let b = match address {
        Some(a) => zbus::connection::Builder::address(a),
        None => zbus::connection::Builder::address(
            tinynm_config::daemon_config::system_bus_address().as_str(),
        ),
    };
    let connecting = b.method_timeout(timeout).build();
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
        .context("cannot connect to the bus")?
        .map_err(|e| {
            anyhow::Error::new(e).context(out::Fail {
                exit: Exit::NotRunning,
                msg: "cannot connect to the bus (is tinynmd's bus up? see --bus-address)".into(),
            })
        })
}
