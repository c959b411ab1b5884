//! A TOML profile in tinynm's profile directory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(p) = tinynm_config::toml_profile::from_toml_str(&text) {
        // What was read is written back and reads the same.
        let again = tinynm_config::toml_profile::to_toml_string(&p);
        assert_eq!(
            tinynm_config::toml_profile::from_toml_str(&again).ok(),
            Some(p)
        );
    }
});
