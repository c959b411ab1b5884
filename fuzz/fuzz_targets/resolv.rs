//! A resolv.conf and the backup of one in the state directory: with the daemon's own code.
#![no_main]

#[allow(dead_code)]
#[path = "../../daemon/src/dns/resolv.rs"]
mod resolv;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resolv::parse_resolv(&String::from_utf8_lossy(data));
    if let Ok(b) = resolv::Backup::decode(data) {
        assert_eq!(resolv::Backup::decode(&b.encode()), Ok(b));
    }
});
