//! The kill switch in the kernel: nftables table `inet tinynm`, replaced as a whole in one
//! netlink batch (the kernel applies a batch atomically), through `rustables` (nftables over
//! netlink in pure Rust: no libnftnl, no `nft` binary, the static build stays static). What the
//! table lets through is a [`Ruleset`] (`rules.rs`); when to have one is the core's business.
//! Imports nothing of the daemon.

mod rules;

pub use rules::{Ruleset, Server};

use rustables::{Batch, MsgType, ProtocolFamily, Table};

/// The table's name (family `inet`: IPv4 and IPv6 alike).
pub const TABLE: &str = "tinynm";

/// The kernel refused or could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("nftables: {0}")]
pub struct FirewallError(String);

impl FirewallError {
    fn of(what: &str, e: rustables::error::QueryError) -> Self {
        use rustables::error::QueryError as Q;
        let why = match &e {
            Q::NetlinkError(m) => std::io::Error::from_raw_os_error(-m.error).to_string(),
            Q::NetlinkOpenError(e) | Q::NetlinkSendError(e) | Q::NetlinkRecvError(e) => {
                e.to_string()
            }
            other => other.to_string(),
        };
        FirewallError(format!("{what}: {why}"))
    }
}

fn table() -> Table {
    Table::new(ProtocolFamily::Inet).with_name(TABLE)
}

/// Puts `rules` in force in place of whatever the table held, in one atomic batch: there is
/// no moment without the table once it exists.
pub fn install(rules: &Ruleset) -> Result<(), FirewallError> {
    let mut batch = Batch::new();
    // Add before delete: deleting a table that is not there would fail the whole batch.
    batch.add(&table(), MsgType::Add);
    batch.add(&table(), MsgType::Del);
    let t = table();
    batch.add(&t, MsgType::Add);
    rules
        .build(&t, &mut batch)
        .map_err(|e| FirewallError(format!("building the rules: {e}")))?;
    batch
        .send()
        .map_err(|e| FirewallError::of("installing the kill switch", e))
}

/// Removes the table, if it is there.
pub fn remove() -> Result<(), FirewallError> {
    let mut batch = Batch::new();
    batch.add(&table(), MsgType::Add);
    batch.add(&table(), MsgType::Del);
    batch
        .send()
        .map_err(|e| FirewallError::of("removing the kill switch", e))
}

/// Whether the table is in the kernel (a previous tinynmd's, after a crash).
pub fn installed() -> Result<bool, FirewallError> {
    let tables =
        rustables::list_tables().map_err(|e| FirewallError::of("listing the tables", e))?;
    Ok(tables
        .iter()
        .any(|t| t.get_name().is_some_and(|n| n == TABLE)))
}
