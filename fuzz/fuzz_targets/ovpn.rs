//! An `.ovpn` file given to `tinynm connection import`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tinynm_config::ovpn::import(
        &String::from_utf8_lossy(data),
        "fuzz",
        "6a1b0c1e-4f8d-4e53-9d0a-2f1e0a0b0c0d",
        std::path::Path::new("/nonexistent/certs"),
    );
});
