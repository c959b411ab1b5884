//! Thin D-Bus views. They read snapshots and send commands; they hold no logic of their own.

pub mod active;
pub mod agent;
pub mod device;
pub mod dhcp4;
pub mod dns;
pub mod export;
pub mod ipconfig;
pub mod keepup;
pub mod manager;
pub mod objects;
pub mod settings;
