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
use support::TempDir;

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
fn fuzz_run(dir: &TempDir, target: &str, planted_panic: bool) -> Output {
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
    if planted_panic {
        command.env("HEADWAY_FUZZ_PLANTED_PANIC", "1");
    } else {
        command.env_remove("HEADWAY_FUZZ_PLANTED_PANIC");
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

/// The kept `load_document` crasher still makes automerge panic; headway catches it.
#[test]
fn the_kept_automerge_crasher_panics_inside_automerge_and_is_caught() {
    let path =
        repo().join("tests/fuzz-crashers/load_document/automerge-0.12-column-decoder-panic.bin");
    let bytes = std::fs::read(path).unwrap();
    thread_local!(static PANICS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.with(|p| p.set(p.get() + 1));
        previous(info);
    }));
    let loaded = LearnerDocument::load("learner-1", &bytes, None);
    assert!(
        matches!(loaded, Err(Error::CorruptDocument { .. })),
        "{loaded:?}"
    );
    assert!(
        PANICS.with(|p| p.get()) >= 1,
        "automerge no longer panics on it"
    );
}

#[test]
fn a_caught_automerge_panic_does_not_stop_a_fuzz_run() {
    let dir = TempDir::new("fuzz-caught");
    // Every run of load_document starts from the kept crasher, whose automerge panic headway
    // catches: the run goes on and passes. (Before issue 13 this run aborted on that input.)
    let out = fuzz_run(&dir, "load_document", false);
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
    let out = fuzz_run(&dir, "sunbird_response", true);
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
