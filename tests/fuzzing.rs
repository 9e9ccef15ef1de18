//! `scripts/fuzz`, the command CI's fuzz smoke run uses, as a user runs it: any crash, timeout,
//! out-of-memory or leak input a target leaves fails the run and is named; a panic that
//! headway catches (automerge's, on malformed bytes) does not stop a target, while one that
//! escapes a target fails the run. Issue 13.
#![cfg(test)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

use headway::{Error, LearnerDocument};
use support::{user_id, TempDir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fuzz_script(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/fuzz"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fuzz runs build the targets and may install cargo-fuzz: one at a time.
static FUZZ_RUN: Mutex<()> = Mutex::new(());

/// One target run through `scripts/fuzz` on its starting inputs only (its seeds and kept
/// crashers, each once: no mutation, so the outcome is deterministic), with its artifacts and
/// corpus in `dir`.
/// Which panic a fuzz run plants in every execution.
#[derive(Clone, Copy, PartialEq)]
enum Planted {
    /// A panic caught inside the run, as headway catches automerge's.
    CaughtPanic,
    /// A panic that escapes the target.
    EscapingPanic,
}

fn fuzz_run(dir: &TempDir, target: &str, planted: Planted) -> Output {
    let _one_at_a_time = FUZZ_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let artifacts = dir.file("artifacts");
    let corpus = dir.file("corpus");
    let mut command = Command::new("bash");
    command
        .arg(repo().join("scripts/fuzz"))
        .args(["5", target])
        .env("FUZZ_ARTIFACTS", &artifacts)
        .env("FUZZ_CORPUS", &corpus)
        .env("FUZZ_RUNS", "0")
        // Cargo's library path for this test, which the fuzz build does not need.
        .env_remove("LD_LIBRARY_PATH");
    command
        .env_remove("HEADWAY_FUZZ_PLANTED_PANIC")
        .env_remove("HEADWAY_FUZZ_PLANTED_CAUGHT_PANIC");
    match planted {
        Planted::CaughtPanic => {
            command.env("HEADWAY_FUZZ_PLANTED_CAUGHT_PANIC", "1");
        }
        Planted::EscapingPanic => {
            command.env("HEADWAY_FUZZ_PLANTED_PANIC", "1");
        }
    }
    command.output().unwrap()
}

#[test]
fn any_crash_timeout_oom_or_leak_input_fails_the_check_and_is_named() {
    for kind in ["crash", "timeout", "oom", "leak"] {
        let dir = TempDir::new("fuzz-check");
        std::fs::create_dir_all(dir.file("load_document")).unwrap();
        std::fs::create_dir_all(dir.file("store_ops")).unwrap();
        let input = dir.file("store_ops").join(format!("{kind}-0123abcd"));
        std::fs::write(&input, b"bytes").unwrap();
        let out = fuzz_script(&["--check-artifacts", dir.path().to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{kind}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "fuzz target store_ops failed on input {}",
                input.display()
            )),
            "{kind}: {stderr}"
        );
        assert!(!stderr.contains("load_document"), "{stderr}");
    }
}

#[test]
fn an_artifacts_directory_without_failing_inputs_passes_the_check() {
    let dir = TempDir::new("fuzz-clean");
    let out = fuzz_script(&["--check-artifacts", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // What libFuzzer leaves besides failures, and our logs, are no failure.
    std::fs::create_dir_all(dir.file("load_document")).unwrap();
    std::fs::write(dir.file("load_document").join("slow-unit-0123"), b"x").unwrap();
    std::fs::write(dir.file("load_document.log"), b"crash-0123 in a log").unwrap();
    let out = fuzz_script(&["--check-artifacts", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let missing = dir.file("never-created");
    let out = fuzz_script(&["--check-artifacts", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn the_check_looks_only_at_the_targets_named() {
    let dir = TempDir::new("fuzz-named");
    std::fs::create_dir_all(dir.file("store_ops")).unwrap();
    std::fs::write(dir.file("store_ops").join("crash-1"), b"x").unwrap();
    let root = dir.path().to_str().unwrap();
    let out = fuzz_script(&["--check-artifacts", root, "load_document"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = fuzz_script(&["--check-artifacts", root, "store_ops"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

/// The kept `load_document` crasher made automerge 0.12 panic (a bundle chunk); headway now
/// refuses it with a typed error before automerge parses it, so it panics nowhere.
#[test]
fn the_kept_automerge_crasher_is_refused_with_a_typed_error_and_no_panic() {
    let path =
        repo().join("tests/fuzz-crashers/load_document/automerge-0.12-column-decoder-panic.bin");
    let bytes = std::fs::read(path).unwrap();
    let loaded =
        std::panic::catch_unwind(|| LearnerDocument::load(&user_id("learner-1"), &bytes, None))
            .expect("a panic escaped");
    assert!(
        matches!(loaded, Err(Error::CorruptDocument { .. })),
        "{loaded:?}"
    );
}

#[test]
fn a_caught_panic_does_not_stop_a_fuzz_run() {
    let dir = TempDir::new("fuzz-caught");
    // Every execution panics and catches it, as headway catches automerge's panics on
    // malformed bytes: the run goes on and passes. (Before issue 13 libFuzzer's hook aborted
    // on the first caught panic.)
    let out = fuzz_run(&dir, "load_document", Planted::CaughtPanic);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("fuzzing passed: 1 targets"), "{stdout}");
    let log = std::fs::read_to_string(dir.file("artifacts").join("load_document.log")).unwrap();
    let seeds = log
        .split("INFO: seed corpus: files: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(
        seeds.is_some_and(|n| n >= 1),
        "the kept crasher did not run: {log}"
    );
    assert!(log.contains("Done "), "{log}");
}

#[test]
fn a_panic_escaping_a_target_fails_the_fuzz_run_and_names_the_input() {
    let dir = TempDir::new("fuzz-escaping");
    let out = fuzz_run(&dir, "sunbird_response", Planted::EscapingPanic);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let artifacts = dir.file("artifacts").join("sunbird_response");
    let inputs: Vec<_> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("crash-")
        })
        .collect();
    assert_eq!(inputs.len(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "fuzz target sunbird_response failed on input {}",
            inputs[0].display()
        )),
        "{stderr}"
    );
    assert!(
        stdout.contains("a panic escaped the fuzz target"),
        "{stdout}"
    );
}
