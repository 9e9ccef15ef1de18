//! The `headway` binary as scripts use it: exact flags, JSON shapes and exit codes.
#![cfg(test)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{headway, json_of, record_args, TempDir};

fn record(db: &Path, content: &str, status: &str, progress: &str, extra: &[&str]) -> Output {
    let mut args = record_args(["u1", "do_c", "0130", content], status, progress);
    args.extend_from_slice(extra);
    headway(db, &args)
}

fn state_json(db: &Path) -> Value {
    json_of(&headway(db, &["state", "--user", "u1", "--json"]))
}

#[test]
fn record_then_state_prints_the_documented_shape() {
    let dir = TempDir::new("shape");
    let db = dir.0.join("h.db");
    let out = record(
        &db,
        "do_1",
        "2",
        "100",
        &["--at", "2024-05-01T10:15:30.123Z"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = record(
        &db,
        "do_2",
        "1",
        "40",
        &["--at", "2024-05-01T15:45:30+05:30"],
    );
    assert_eq!(out.status.code(), Some(0));
    let all = state_json(&db);
    let items = all.as_array().unwrap();
    assert_eq!(items.len(), 2);
    let first = &items[0];
    assert_eq!(first["userId"], "u1");
    assert_eq!(first["courseId"], "do_c");
    assert_eq!(first["batchId"], "0130");
    assert_eq!(first["contentId"], "do_1");
    assert_eq!(first["status"], 2);
    assert_eq!(first["progress"], 100);
    assert_eq!(first["lastAccessTime"], "2024-05-01T10:15:30.123Z");
    assert_eq!(first["lastCompletedTime"], "2024-05-01T10:15:30.123Z");
    assert_eq!(items[1]["lastAccessTime"], "2024-05-01T10:15:30.000Z");
    assert_eq!(items[1]["lastCompletedTime"], Value::Null);
    // Without --json: one JSON object per line.
    let out = headway(&db, &["state", "--user", "u1", "--course", "do_c"]);
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, items.clone());
    let other_course = headway(
        &db,
        &["state", "--user", "u1", "--course", "nope", "--json"],
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&other_course.stdout).unwrap(),
        Value::Array(vec![])
    );
}

#[test]
fn a_stale_record_exits_0_and_changes_nothing() {
    let dir = TempDir::new("stale");
    let db = dir.0.join("h.db");
    assert!(record(&db, "do_1", "2", "100", &[]).status.success());
    let before = state_json(&db);
    let out = record(&db, "do_1", "1", "10", &["--at", "2024-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(state_json(&db), before);
}

#[test]
fn pending_lists_what_a_sync_would_send() {
    let dir = TempDir::new("pending");
    let db = dir.0.join("h.db");
    assert!(record(&db, "do_1", "1", "30", &[]).status.success());
    assert!(record(&db, "do_2", "2", "100", &[]).status.success());
    let out = headway(&db, &["pending", "--user", "u1", "--json"]);
    assert!(out.status.success());
    let pending: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 2);
    assert_eq!(pending, state_json(&db));
}

#[test]
fn every_bad_input_exits_2_with_one_line_and_changes_nothing() {
    let dir = TempDir::new("bad");
    let db = dir.0.join("h.db");
    assert!(
        record(&db, "do_1", "1", "50", &["--at", "2024-05-01T10:15:30Z"])
            .status
            .success()
    );
    let before = state_json(&db);
    let long = "x".repeat(300);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("status 3", vec!["--status", "3"]),
        ("status -1", vec!["--status", "-1"]),
        ("status text", vec!["--status", "done"]),
        ("progress 101", vec!["--progress", "101"]),
        ("progress -5", vec!["--progress", "-5"]),
        ("empty content", vec!["--content", ""]),
        ("long content", vec!["--content", &long]),
        ("control char", vec!["--content", "do_\n1"]),
        ("empty batch", vec!["--batch", ""]),
        ("before 2000", vec!["--at", "1999-12-31T23:59:59Z"]),
        ("far future", vec!["--at", "2999-01-01T00:00:00Z"]),
        ("not a date", vec!["--at", "yesterday"]),
        ("sunbird date", vec!["--at", "2024-05-01 10:15:30:123+0000"]),
    ];
    for (name, overrides) in cases {
        let mut args: Vec<&str> = vec!["record"];
        let defaults = [
            ("--user", "u1"),
            ("--course", "do_c"),
            ("--batch", "0130"),
            ("--content", "do_1"),
            ("--status", "2"),
            ("--progress", "100"),
        ];
        for (flag, value) in defaults {
            let value = overrides
                .chunks(2)
                .find(|pair| pair[0] == flag)
                .map_or(value, |pair| pair[1]);
            args.extend([flag, value]);
        }
        if let Some(pair) = overrides.chunks(2).find(|pair| pair[0] == "--at") {
            args.extend(["--at", pair[1]]);
        }
        let out = headway(&db, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stderr.trim().is_empty(), "{name}: no reason given");
        assert_eq!(state_json(&db), before, "{name}: the store changed");
    }
}

#[test]
fn bad_input_does_not_even_create_the_store() {
    let dir = TempDir::new("nocreate");
    let db = dir.0.join("h.db");
    let out = record(&db, "do_1", "7", "50", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!db.exists(), "a refused record created the store file");
}

#[test]
fn a_corrupt_store_is_an_error_not_a_panic() {
    let dir = TempDir::new("corrupt");
    let db = dir.0.join("h.db");
    std::fs::write(
        &db,
        b"this is not a database, just some text that is long enough",
    )
    .unwrap();
    let out = headway(&db, &["state", "--user", "u1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("corrupt") || stderr.contains("not a"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_db_path_comes_from_headway_db_when_no_flag_is_given() {
    let dir = TempDir::new("env");
    let db = dir.0.join("env.db");
    let out = Command::new(env!("CARGO_BIN_EXE_headway"))
        .args([
            "record",
            "--user",
            "u1",
            "--course",
            "c",
            "--batch",
            "b",
            "--content",
            "k",
        ])
        .args(["--status", "1", "--progress", "5"])
        .env("HEADWAY_DB", &db)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(db.exists());
}

#[test]
fn the_demo_tells_the_story_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "the cached list answers",
        "Fractions                    [##########..........]  50% 2/4 contents",
        "sync: sent 3, acknowledged 3, rejected 0, in 1 request(s)",
        "server's list: Fractions        0%",
        "is still completed; server: still completed",
        "nothing lost, nothing rolled back",
        // Issue 17: the demo's devices pair before they talk.
        "a device with another key: refused",
        "completed, no server needed",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn a_missing_command_is_a_usage_error_with_exit_2() {
    for args in [&[][..], &["peer"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_headway"))
            .args(args)
            .env_remove("HEADWAY_DB")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage: headway"), "{stderr}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
}

#[test]
fn refused_flags_of_networked_and_peer_commands_create_no_store() {
    let dir = TempDir::new("refused-nothing-created");
    let junk = dir.0.join("junk.hwp");
    std::fs::write(&junk, b"not a peer file").unwrap();
    let junk = junk.to_str().unwrap();
    let cases: [&[&str]; 4] = [
        &["sync", "--user", "u1", "--server", "ftp://example.org"],
        &["courses", "--user", "u1", "--server", "ftp://example.org"],
        &["peer", "serve", "--no-auth", "--addr", "not-an-address"],
        &["peer", "import", "--user", "u1", junk],
    ];
    for (i, args) in cases.into_iter().enumerate() {
        let db = dir.0.join(format!("h{i}.db"));
        let out = headway(&db, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("headway: refused: "), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with(&format!("h{i}.db")))
            .collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

/// Issue 10: ids are validated newtypes; every command that names a learner refuses a bad id
/// with the same line as before, exit 2, and never creates the store (`compact` once did).
#[test]
fn a_refused_learner_id_exits_2_with_the_same_line_and_creates_no_store_in_any_command() {
    let dir = TempDir::new("badid");
    let db = dir.0.join("h.db");
    let file = dir.0.join("peer.bin");
    let file = file.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["state", "--user"],
        vec!["pending", "--user"],
        vec!["rejected", "--user"],
        vec!["resend", "--user"],
        vec!["compact", "--user"],
        vec!["status", "--user"],
        vec!["courses", "--offline", "--user"],
        vec!["sync", "--server", "http://127.0.0.1:1", "--user"],
        vec!["peer", "export", "--out", file, "--user"],
        vec!["peer", "import", file, "--user"],
    ];
    for command in commands {
        let mut args = command.clone();
        args.push(" learner-1");
        let out = headway(&db, &args);
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            stderr,
            "headway: refused: user id \" learner-1\" is invalid: it starts or ends with white space\n",
            "{command:?}"
        );
        assert!(!db.exists(), "{command:?} created the store");
    }
    let out = headway(&db, &["resend", "--user", "u", "--course", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "headway: refused: course id \"\" is invalid: it is empty\n"
    );
    assert!(!db.exists());
}

// Issue 20, item 4: `record` tells the truth. An update below what is stored said
// "recorded ... progress 50" when only its access time went up; one that raised nothing says
// `unchanged` and shows what is kept.
#[test]
fn record_says_what_went_up_when_only_part_of_the_update_did_and_unchanged_when_nothing_did() {
    let dir = TempDir::new("record-truth");
    let db = dir.0.join("h.db");
    let said = |out: Output| String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        said(record(&db, "do_1", "1", "50", &[])).trim(),
        "recorded do_1: status 1 progress 50"
    );
    assert_eq!(
        said(record(&db, "do_1", "1", "30", &[])).trim(),
        "recorded do_1: only the last access time went up; status 1 progress 50 stored \
         (status 1 progress 30 is below it)"
    );
    assert_eq!(
        said(record(
            &db,
            "do_1",
            "1",
            "30",
            &["--at", "2024-05-01T10:00:00Z"]
        ))
        .trim(),
        "unchanged do_1: the stored state is not lower (status 1 progress 50)"
    );
}

// Issue 20, items 4 and 5: help that helps, and a learner the store does not hold.
#[test]
fn a_subcommands_help_lists_its_own_options_before_the_global_ones() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_headway"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let sync = help(&["sync", "--help"]);
    let (own, global) = (
        sync.find("--user").unwrap(),
        sync.find("Global options:").unwrap(),
    );
    assert!(
        own < global && global < sync.find("--db").unwrap(),
        "{sync}"
    );
    assert!(help(&["serve", "--help"]).contains("lives in memory, or in the file `--db`"));
    let completions = help(&["completions", "--help"]);
    for shell in ["bash", "elvish", "fish", "powershell", "zsh"] {
        assert!(
            completions.lines().next().unwrap().contains(shell),
            "{completions}"
        );
    }
}

#[test]
fn serve_listens_on_a_host_name_and_port() {
    use std::io::BufRead;
    let dir = TempDir::new("serve-localhost");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(dir.0.join("server.db"))
        .args(["serve", "--addr", "localhost:0", "-q"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    serve.kill().unwrap();
    let _ = serve.wait();
    assert!(line.contains("listening on http://127.0.0.1:"), "{line}");
}

#[test]
fn a_learner_the_store_does_not_hold_is_named_on_stderr_with_nothing_on_stdout_when_piped() {
    let dir = TempDir::new("unknown-learner");
    let db = dir.0.join("h.db");
    assert!(record(&db, "do_1", "1", "50", &[]).status.success());
    for command in ["state", "pending"] {
        let out = headway(&db, &[command, "--user", "nobody"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty(), "{command}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("no progress recorded for learner nobody: the store holds no such"),
            "{stderr}"
        );
    }
}
