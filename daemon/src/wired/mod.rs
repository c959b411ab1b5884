//! Wired base connections: one task per activation of an ethernet profile on its link
//! (`task`), with DHCPv4 (`dhcp`). The core chooses the link and the profile; the task owns the
//! link's configuration while it runs.

mod dhcp;
mod task;

pub use dhcp::Leases;
pub use task::{WiredParams, run};
