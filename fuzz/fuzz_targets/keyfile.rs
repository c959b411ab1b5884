//! A keyfile in /etc/NetworkManager/system-connections.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tinynm_config::keyfile::from_keyfile_str(&String::from_utf8_lossy(data));
});
