//! tinynmd's release binary is linked with the code its start-up runs laid out first
//! (`link-order.txt`, taken by `bash scripts/run link-order`). The kernel maps a binary's code
//! 64 KiB around each page a process touches, so start-up code spread over the whole text keeps
//! nearly all of it resident; gathered, only about what runs is. A name the linker does not
//! find (a function added or renamed since the list was taken) is passed over: the order then
//! helps less, it never breaks the build.
//!
//! The order is given to LLD, the linker rustc uses for this target (since Rust 1.90), with the
//! link map beside it (`OUT_DIR/tinynmd.map`), from which `scripts/link-order` names the
//! functions a run of the stripped binary touched. `TINYNM_LINK_ORDER=0` links without it.
//!
//! Its relative relocations are packed (`-z pack-relative-relocs`, DT_RELR, which glibc ≥ 2.36
//! applies in a static PIE too): 3.5 KB instead of 12,000 24-byte entries that every start read
//! and kept resident.

fn main() {
    let order = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=TINYNM_LINK_ORDER");
    let lld = std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    if std::env::var("PROFILE").as_deref() != Ok("release") || !lld {
        return;
    }
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-arg-bin=tinynmd=-Wl,-Map={out}/tinynmd.map,--no-demangle");
    println!("cargo:rustc-link-arg-bin=tinynmd=-Wl,-z,pack-relative-relocs");
    if order.exists() && std::env::var_os("TINYNM_LINK_ORDER").is_none_or(|v| v != "0") {
        println!(
            "cargo:rustc-link-arg-bin=tinynmd=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            order.display()
        );
    }
}
