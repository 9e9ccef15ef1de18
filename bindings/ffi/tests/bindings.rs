//! The generated bindings, driven from their own languages: the pytest suite and the Kotlin JVM
//! suite each play the design note's scenario against `headway serve` on 127.0.0.1, and the
//! committed Kotlin and Swift bindings must be what the library generates now. Each step
//! installs what it needs (pytest in a venv, the npm Kotlin compiler, Debian's JNA) and fails
//! loudly if it cannot; nothing is skipped.
#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The artifacts the suites need, built once per test run.
struct Artifacts {
    headway: PathBuf,
    library: PathBuf,
    bindgen: PathBuf,
}

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

/// The `headway` binary and `uniffi-bindgen` of this build. Under the README's command
/// (`cargo test --workspace --all-features`) both were just built for their own packages'
/// tests; when this test runs alone and one is missing, cargo builds it.
fn artifacts() -> &'static Artifacts {
    static BUILT: OnceLock<Artifacts> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let found = Artifacts {
            headway: dir.join("headway"),
            // Cargo builds every crate type of the library for this test, but leaves them in
            // deps/ (only `cargo build` copies them up).
            library: dir.join("deps").join("libheadway_ffi.so"),
            bindgen: dir.join("uniffi-bindgen"),
        };
        if !found.headway.exists() || !found.bindgen.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.current_dir(repo()).args([
                "build",
                "-p",
                "headway-cli",
                "-p",
                "headway-uniffi-bindgen",
            ]);
            if dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(
                status.success(),
                "building headway and uniffi-bindgen failed"
            );
        }
        for path in [&found.headway, &found.library, &found.bindgen] {
            assert!(path.exists(), "{} was not built", path.display());
        }
        found
    })
}

fn run(script: &str) {
    let built = artifacts();
    let status = Command::new(repo().join(script))
        .env("HEADWAY_BIN", &built.headway)
        .env("HEADWAY_FFI_LIB", &built.library)
        .env("UNIFFI_BINDGEN", &built.bindgen)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(status.success(), "{script} failed ({status})");
}

#[test]
fn python_plays_the_scenario_against_headway_serve() {
    run("bindings/python/test");
}

#[test]
fn kotlin_plays_the_scenario_against_headway_serve() {
    run("bindings/kotlin/test");
}

#[test]
fn committed_kotlin_and_swift_bindings_are_what_the_library_generates() {
    let fresh = std::env::temp_dir().join(format!("headway-bindings-{}", std::process::id()));
    run_generate(&fresh);
    for part in ["kotlin/src/main/kotlin", "swift/Sources"] {
        let status = Command::new("diff")
            .args(["-r", "-q"])
            .arg(repo().join("bindings").join(part))
            .arg(fresh.join(part))
            .status()
            .expect("diff runs");
        assert!(
            status.success(),
            "bindings/{part} is stale: run bindings/generate and commit the result"
        );
    }
    let _ = std::fs::remove_dir_all(&fresh);
}

fn run_generate(out: &Path) {
    let built = artifacts();
    let status = Command::new(repo().join("bindings/generate"))
        .arg(out)
        .env("HEADWAY_FFI_LIB", &built.library)
        .env("UNIFFI_BINDGEN", &built.bindgen)
        .status()
        .expect("bindings/generate runs");
    assert!(status.success(), "bindings/generate failed");
}
