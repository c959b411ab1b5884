//! daemon.toml.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tinynm_config::DaemonConfig::from_toml_str(
        &String::from_utf8_lossy(data),
        std::path::Path::new("/etc/tinynm/daemon.toml"),
    );
});
