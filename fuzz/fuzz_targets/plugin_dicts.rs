//! A plugin's `Config`/`Ip4Config`/`Ip6Config`: any `a{sv}` body, as it arrives on the bus.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinynm_config::profile::Family;
use tinynm_vpn_plugin::{Dict, GenericConfig, IpConfig};
use zbus::wire::{
    Endian,
    serialized::{Context, Data},
};

fuzz_target!(|data: &[u8]| {
    let ctx = Context::new(Endian::Little, 0);
    let d = Data::new(data, ctx);
    if let Ok((dict, _)) = d.deserialize::<Dict>() {
        let _ = GenericConfig::parse(&dict);
        let _ = IpConfig::parse(&dict, Family::V4, None);
        let _ = IpConfig::parse(&dict, Family::V6, None);
    }
});
