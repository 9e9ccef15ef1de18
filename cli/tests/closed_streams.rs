//! Issue 17 (fault 9): a closed stderr (or stdout) never turns a CLI error into a panic.
//! `eprintln!` panics when stderr is a pipe whose reader has gone; the exit code must stay the
//! one scripts rely on (2 refused input, 3 unavailable, 1 other), never 101.

#![cfg(test)]

mod support;

use std::process::{Command, ExitStatus, Stdio};

use support::{record_args, TempDir};

/// Runs `headway --db DB ARGS...` with stderr, and stdout too when `close_stdout`, a pipe whose
/// reading end is already closed: every write to it fails with a broken pipe.
fn with_closed_streams(db: &std::path::Path, args: &[&str], close_stdout: bool) -> ExitStatus {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = Command::new(env!("CARGO_BIN_EXE_headway"));
    command
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("HEADWAY_DB")
        .env_remove("HEADWAY_USER_TOKEN")
        .stdin(Stdio::null())
        .stderr(writer.try_clone().unwrap());
    command.stdout(if close_stdout {
        Stdio::from(writer)
    } else {
        Stdio::null()
    });
    command.status().unwrap()
}

/// A port nothing listens on: connecting is refused at once.
fn refused_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

#[test]
fn errors_keep_their_exit_code_when_stderr_is_closed() {
    let dir = TempDir::new("closed-stderr");
    let db = dir.0.join("progress.db");
    let recorded = with_closed_streams(
        &db,
        &record_args(["asha", "do_c", "0130", "do_1"], "2", "100"),
        false,
    );
    assert_eq!(recorded.code(), Some(0));
    let server = refused_port();
    let peer = refused_port().replace("http://", "");
    let cases: [(&[&str], i32); 6] = [
        (&["record", "--user", " ", "--course", "c"], 2),
        (&["state", "--user", "asha", "--course", " bad"], 2),
        (&["sync", "--user", "asha", "--server", &server], 3),
        (&["courses", "--user", "asha", "--server", &server], 0),
        (&["-vv", "sync", "--user", "asha", "--server", &server], 3),
        (&["peer", "connect", &peer, "--user", "asha"], 3),
    ];
    for (args, code) in cases {
        for close_stdout in [false, true] {
            let status = with_closed_streams(&db, args, close_stdout);
            assert_ne!(status.code(), Some(101), "{args:?} panicked");
            if !close_stdout || code != 0 {
                assert_eq!(
                    status.code(),
                    Some(code),
                    "{args:?}, stdout closed: {close_stdout}"
                );
            }
        }
    }
    // A usage error (clap prints it) and an error of the third kind (exit 1): a directory as
    // the store.
    let usage = with_closed_streams(&db, &["frobnicate"], true);
    assert_eq!(usage.code(), Some(2));
    let not_a_store = with_closed_streams(&dir.0, &["state", "--user", "asha"], false);
    assert!(matches!(not_a_store.code(), Some(1 | 2)), "{not_a_store:?}");
}
