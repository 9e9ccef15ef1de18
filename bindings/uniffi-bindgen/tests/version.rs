//! The generator is the UniFFI version the library links: bindings from another version would
//! fail their checksum checks at load time. (This test also makes `cargo test` build the
//! `uniffi-bindgen` executable that `bindings/ffi/tests/bindings.rs` runs.)
#![cfg(test)]

use std::process::Command;

#[test]
fn uniffi_bindgen_is_the_uniffi_version_of_the_library() {
    let output = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .arg("--version")
        .output()
        .expect("uniffi-bindgen runs");
    assert!(output.status.success());
    let printed = String::from_utf8_lossy(&output.stdout);
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
        .expect("the workspace has a Cargo.lock");
    let locked = lock
        .split("[[package]]")
        .find(|entry| entry.contains("\nname = \"uniffi\"\n"))
        .and_then(|entry| entry.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_string())
        .expect("uniffi is in Cargo.lock");
    assert_eq!(printed.trim(), format!("uniffi-bindgen {locked}"));
}
