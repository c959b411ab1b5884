//! NM's `a{sa{sv}}` settings, as AddConnection and Update receive them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinynm_config::dbus::{SettingsDict, from_dict};
use zbus::wire::{
    Endian,
    serialized::{Context, Data},
};

fuzz_target!(|data: &[u8]| {
    let ctx = Context::new(Endian::Little, 0);
    let d = Data::new(data, ctx);
    if let Ok((s, _)) = d.deserialize::<SettingsDict>() {
        let _ = from_dict(&s);
    }
});
