//! A connection's journal in the state directory, read at start after a crash: with the
//! daemon's own journal code.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../daemon/src/netlink/journal.rs"]
mod journal;
#[allow(dead_code)]
#[path = "../../daemon/src/netlink/route.rs"]
mod route;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (j, _damage) = journal::Journal::from_bytes(data);
    // What could be read is written back and reads the same.
    let again = j.to_bytes();
    let (k, damage) = journal::Journal::from_bytes(&again);
    assert!(damage.is_empty());
    assert_eq!(k.len(), j.len());
});
