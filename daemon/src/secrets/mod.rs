//! Secrets: the registered secret agents, and NM's ways of asking them (spec VPN-PROTOCOL
//! §6.3), saving agent-owned secrets with them and telling them to forget.

mod agents;
mod proxy;
mod request;

pub use agents::{Agent, Agents, check_identifier};
pub use request::{
    AgentsFailed, Request, VPN_HINTS, delete_secrets, flags, missing_keys, request, save_secrets,
    take_unstorable,
};
