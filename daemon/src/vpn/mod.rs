//! The VPN manager: plugin registry, plugin processes, and one task per active connection.
//!
//! A connection's task (`task`) drives its pure state machine (`machine`) with what its plugin
//! link (`link`), the core and its timers (`timers`) bring, and performs the machine's actions:
//! the secrets passes and calls (`secrets`), the kernel config (`apply`).

mod apply;
mod link;
pub mod machine;
pub mod plugin;
pub mod registry;
mod secrets;
mod task;
mod timers;

pub use task::{AcCommand, AcParams, Handles, run};
