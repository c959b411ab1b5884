pub mod bus;
pub mod config;
pub mod fdo;
#[doc(hidden)]
pub mod log;
pub mod match_rules;
pub mod name_registry;
pub mod peer;
pub mod peers;
pub mod tracing_subscriber;
