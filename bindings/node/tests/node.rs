//! The Node package, driven from JavaScript: `bindings/node/run-tests` builds the addon with
//! the napi CLI, checks the committed `index.d.ts` against it, compiles the sunbird-sdk-shaped
//! course service and its type test against the SDK's own `.d.ts` files, and runs the
//! `node --test` suites against `headway serve`. It installs what it needs (npm
//! devDependencies, the SDK's tarball) and fails loudly if it cannot; nothing is skipped.
#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// This test's profile directory (`target/debug`), from the test binary's own path.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

#[test]
fn the_node_package_passes_its_javascript_suites_against_headway_serve() {
    // Under the README's command the CLI was just built for its own tests; alone, the script
    // builds it.
    let headway = profile_dir().join("headway");
    let mut run = Command::new(repo().join("bindings/node/run-tests"));
    if headway.exists() {
        run.env("HEADWAY_BIN", &headway);
    }
    let status = run.status().expect("bindings/node/run-tests runs");
    assert!(
        status.success(),
        "bindings/node/run-tests failed ({status})"
    );
}
