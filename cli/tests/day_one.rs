//! The command line a newcomer meets on day one (issue 12), as processes on real sockets:
//! offline fails fast and loses nothing, a silent server is bounded, usage errors and refused
//! flags exit 2 with a helpful message, a closed stdout ends quietly, read commands never
//! create a store, `record --from` round-trips all or nothing, `serve --seed` and its API key,
//! `rejected`/`resend`/`status`/`completions`, and progress bars only on a terminal.
#![cfg(test)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use headway_sunbird_server::{Faults, ReferenceServer, ServerConfig};
use serde_json::Value;
use support::{
    headway, headway_async, json_of, record_args, server_with_a_closed_batch, server_with_a_course,
    text, TempDir,
};

const USER: &str = "learner-1";

/// Runs `headway --db DB ARGS` with `stdin` as its standard input.
fn headway_with_stdin(db: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("HEADWAY_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// JSON Lines of `count` completed items of `USER` in course `do_course`, batch `batch`.
fn lines(batch: &str, count: usize) -> String {
    (0..count)
        .map(|c| {
            format!(
                r#"{{"userId":"{USER}","courseId":"do_course","batchId":"{batch}","contentId":"do_{c:04}","status":2,"progress":100,"lastAccessTime":"2024-05-01T10:15:30.000Z","lastCompletedTime":"2024-05-01T10:15:30.000Z"}}"#
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fills `db` with `count` pending items through `record --from -`.
fn fill(db: &Path, batch: &str, count: usize) {
    let out = headway_with_stdin(db, &["record", "--from", "-"], &lines(batch, count));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn pending(db: &Path) -> usize {
    let out = headway(db, &["pending", "--user", USER, "--json"]);
    json_of(&out).as_array().unwrap().len()
}

fn state_json(db: &Path) -> Value {
    json_of(&headway(db, &["state", "--user", USER, "--json"]))
}

/// A port on 127.0.0.1 where nothing listens.
fn refused_port() -> String {
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    addr
}

/// A listener that accepts connections and never answers; counts the connections.
fn silent_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream); // kept open, never answered
        }
    });
    (addr, accepted)
}

#[test]
fn a_refused_port_ends_the_sync_at_once_with_one_line_and_everything_stays_pending() {
    let dir = TempDir::new("refused");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 250);
    let addr = refused_port();
    let url = format!("http://{addr}");
    let out = headway(&db, &["sync", "--user", USER, "--server", &url]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&addr),
        "the address tried is not named: {stderr}"
    );
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    // The JSON report shows one request: no further chunk, no retry.
    let out = headway(&db, &["sync", "--user", USER, "--server", &url, "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["requests"].as_u64(), report["retrying"].as_u64()),
        (Some(1), Some(250))
    );
    assert_eq!(pending(&db), 250);
}

#[test]
fn a_server_that_never_answers_is_bounded_for_sync_and_courses_and_nothing_is_lost() {
    let dir = TempDir::new("silent");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 250);
    let (addr, accepted) = silent_listener();
    let url = format!("http://{addr}");
    let out = headway(
        &db,
        &[
            "sync",
            "--user",
            USER,
            "--server",
            &url,
            "--timeout",
            "0.5",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["retrying"], 250);
    assert_eq!(report["retryingItems"][0]["cause"], "timed out");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "after a timeout no further chunk may be tried"
    );
    let out = headway(
        &db,
        &[
            "courses",
            "--user",
            USER,
            "--server",
            &url,
            "--timeout",
            "0.5",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cached list"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        Value::Array(vec![])
    );
    assert_eq!(pending(&db), 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courses_with_the_server_down_answer_from_the_cache_the_last_refresh_left() {
    let dir = TempDir::new("cache");
    let db = dir.0.join("h.db");
    let server = server_with_a_course(USER, 1).await;
    let url = server.url().to_string();
    let online = headway_async(
        &db,
        &["courses", "--user", USER, "--server", &url, "--json"],
    )
    .await;
    assert_eq!(online.status.code(), Some(0), "{}", text(&online.stderr));
    server.shutdown().await;
    fill(&db, "0130", 2);
    let down = format!("http://{}", refused_port());
    let out = headway_async(
        &db,
        &["courses", "--user", USER, "--server", &down, "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let courses: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(courses[0]["courseName"], "Fractions");
    assert_eq!(courses[0]["completionPercentage"], 50);
    assert_eq!(pending(&db), 2);
    // --quiet silences the note, not the answer.
    let quiet = headway_async(
        &db,
        &["courses", "--user", USER, "--server", &down, "--quiet"],
    )
    .await;
    assert_eq!(quiet.status.code(), Some(0));
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet.stderr));
    assert!(text(&quiet.stdout).contains("\"completionPercentage\":50"));
}

#[test]
fn usage_errors_print_the_whole_clap_message_and_exit_2() {
    let dir = TempDir::new("usage");
    let db = dir.0.join("phone.db");
    let out = headway(&db, &["state"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--user <USER>") && stderr.contains("Usage:"),
        "{stderr}"
    );
    let out = headway(&db, &["state", "--usr", "u"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("similar argument exists: '--user'"),
        "{}",
        text(&out.stderr)
    );
    assert!(!db.exists());
}

#[test]
fn every_refused_flag_exits_2() {
    let dir = TempDir::new("flags");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 1);
    let bad_seed = dir.0.join("bad-seed.json");
    std::fs::write(&bad_seed, r#"{"courses": [{"course": "x"}]}"#).unwrap();
    let missing = dir.0.join("missing.json");
    let url = format!("http://{}", refused_port());
    let cases: Vec<Vec<&str>> = vec![
        vec!["serve", "--addr", "not-an-address"],
        vec![
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--token",
            "no-equals-sign",
        ],
        vec![
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--seed",
            bad_seed.to_str().unwrap(),
        ],
        vec![
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--seed",
            missing.to_str().unwrap(),
        ],
        vec!["serve", "--addr", "127.0.0.1:0", "--progress-lag-ms", "-1"],
        vec!["sync", "--user", USER, "--server", "ftp://x"],
        vec!["sync", "--user", USER, "--server", &url, "--timeout", "0"],
        vec![
            "sync",
            "--user",
            USER,
            "--server",
            &url,
            "--timeout",
            "soon",
        ],
        vec!["sync", "--user", USER, "--server", &url, "--chunk", "0"],
        vec![
            "courses",
            "--user",
            USER,
            "--server",
            &url,
            "--deadline",
            "-3",
        ],
        vec!["completions", "powershell-9"],
        vec!["resend", "--user", ""],
        vec!["peer", "serve", "--no-auth", "--addr", "nowhere"],
        vec!["record", "--from", missing.to_str().unwrap()],
        vec!["record", "--from", "-", "--user", USER],
    ];
    for args in cases {
        let out = headway(&db, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?}: no reason given");
    }
}

#[test]
fn a_closed_stdout_ends_quietly_and_the_demo_leaves_no_folder_behind() {
    let dir = TempDir::new("pipe");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 3_000);
    for args in [
        vec!["state", "--user", USER],
        vec!["state", "--user", USER, "--json"],
        vec!["pending", "--user", USER],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_headway"))
            .arg("--db")
            .arg(&db)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap(); // the reader is dropped here: stdout is closed
        let out = child.wait_with_output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 141)),
            "{args:?}: {:?}",
            out.status
        );
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{}",
            text(&out.stderr)
        );
    }
    let mut demo = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = demo.id();
    let mut first = String::new();
    BufReader::new(demo.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = demo.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 141)),
        "{:?}",
        out.status
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    let left: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("headway-demo-{pid}-")))
        })
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
}

#[test]
fn read_commands_on_a_missing_store_exit_2_and_create_nothing() {
    let dir = TempDir::new("missing");
    let db = dir.0.join("typo.db");
    let out_file = dir.0.join("out.hwp");
    let out_path = out_file.to_str().unwrap();
    let reads: Vec<Vec<&str>> = vec![
        vec!["state", "--user", USER],
        vec!["pending", "--user", USER],
        vec!["courses", "--user", USER, "--offline"],
        vec!["courses", "--user", USER],
        vec!["peer", "export", "--user", USER, "--out", out_path],
        vec!["rejected", "--user", USER],
        vec!["status"],
        vec!["status", "--user", USER],
    ];
    for args in &reads {
        let out = headway(&db, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("no store at {}", db.display())),
            "{args:?}: {stderr}"
        );
        assert!(!db.exists(), "{args:?} created the store");
        assert!(!out_file.exists(), "{args:?} wrote a file");
    }
    let nested = dir.0.join("no-such-dir").join("h.db");
    let out = headway(&nested, &["state", "--user", USER]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no-such-dir"),
        "{}",
        text(&out.stderr)
    );
    let out = headway(&nested, &record_args([USER, "c", "b", "k"], "1", "5"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no-such-dir"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn misleading_messages_are_fixed() {
    let dir = TempDir::new("messages");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 1);
    // A future --at is echoed as typed, with the accepted format.
    let mut args = record_args([USER, "c", "b", "k"], "1", "5");
    args.extend(["--at", "2999-01-01T00:00:00Z"]);
    let out = headway(&db, &args);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"2999-01-01T00:00:00Z\"") && stderr.contains("2024-05-01T10:15:30Z"),
        "{stderr}"
    );
    assert!(!stderr.contains(" ms"), "{stderr}");
    // Compacting a learner with no progress does not claim it compacted.
    let out = headway(&db, &["compact", "--user", "nobody"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("nothing to compact") && !stdout.contains("compacted"),
        "{stdout}"
    );
    let out = headway(&db, &["compact", "--user", USER]);
    assert!(
        text(&out.stdout).contains("compacted"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_connect_to_an_http_port_says_it_is_not_a_headway_peer() {
    let dir = TempDir::new("notpeer");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 1);
    let server = ReferenceServer::start(ServerConfig::new("127.0.0.1:0"))
        .await
        .unwrap();
    let addr = server.addr().to_string();
    let out = headway_async(&db, &["peer", "connect", &addr, "--user", USER]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a headway peer"), "{stderr}");
    assert!(!stderr.contains("too large"), "{stderr}");
}

#[test]
fn record_from_round_trips_state_json_and_is_all_or_nothing() {
    let dir = TempDir::new("import");
    let phone = dir.0.join("phone.db");
    for (content, status, progress, at) in [
        ("do_1", "2", "100", "2024-05-01T10:15:30Z"),
        ("do_1", "1", "40", "2024-05-03T08:00:00Z"),
        ("do_2", "1", "60", "2024-05-02T09:00:00.250+05:30"),
        ("do_3", "0", "0", "2024-05-02T09:00:00Z"),
    ] {
        let mut args = record_args([USER, "c", "b", content], status, progress);
        args.extend(["--at", at]);
        let out = headway(&phone, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let exported = state_json(&phone);
    // do_1: completed on the 1st, seen again on the 3rd: two different times survive.
    assert_ne!(
        exported[0]["lastAccessTime"],
        exported[0]["lastCompletedTime"]
    );
    let jsonl: String = exported
        .as_array()
        .unwrap()
        .iter()
        .map(|item| format!("{item}\n"))
        .collect();
    let tablet = dir.0.join("tablet.db");
    let out = headway_with_stdin(&tablet, &["record", "--from", "-"], &jsonl);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(state_json(&tablet), exported);
    let file = dir.0.join("items.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let laptop = dir.0.join("laptop.db");
    let out = headway(&laptop, &["record", "--from", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(state_json(&laptop), exported);

    // One bad line: exit 2 naming it, nothing recorded, no store created.
    let before = state_json(&tablet);
    let good = lines("0130", 3);
    for (bad, reason) in [
        (
            r#"{"userId":"u","courseId":"c","batchId":"b","contentId":"k","status":2,"progress":101,"lastAccessTime":null,"lastCompletedTime":null}"#,
            "progress",
        ),
        (
            r#"{"userId":"u","courseId":"c","batchId":"b","contentId":"k","status":1,"progress":1,"lastAccessTime":"yesterday","lastCompletedTime":null}"#,
            "yesterday",
        ),
        // A far-future time is no longer a bad line (issue 17): it is dropped from its item
        // with a note (`times_cli.rs`).
        (
            r#"{"userId":"","courseId":"c","batchId":"b","contentId":"k","status":1,"progress":1}"#,
            "user",
        ),
        (
            r#"{"userId":"u","courseId":"c","batchId":"b","contentId":"k","status":1,"progress":1,"colour":"red"}"#,
            "colour",
        ),
        ("not json", "expected"),
    ] {
        let input = format!("{good}\n{bad}\n");
        let out = headway_with_stdin(&tablet, &["record", "--from", "-"], &input);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("line 4") && stderr.contains(reason),
            "{bad}: {stderr}"
        );
        assert_eq!(state_json(&tablet), before, "{bad}: the store changed");
        let fresh = dir.0.join("fresh.db");
        let out = headway_with_stdin(&fresh, &["record", "--from", "-"], &input);
        assert_eq!(out.status.code(), Some(2));
        assert!(!fresh.exists(), "a refused import created the store");
    }
}

/// Starts `headway serve` on a free port with `args`; returns the child, its URL and a
/// reader of its stderr.
fn spawn_serve(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, BufReader<std::process::ChildStderr>) {
    let addr = refused_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_headway"));
    command
        .args(["serve", "--addr", &addr])
        .args(args)
        .env_remove("HEADWAY_API_KEY")
        .env_remove("HEADWAY_TOKENS")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains(&addr), "{line}");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    (child, format!("http://{addr}"), stderr)
}

/// One HTTP/1.1 request over a plain socket; returns the status code.
fn http(url: &str, method: &str, path: &str, key: Option<&str>, body: &str) -> u16 {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = key.map_or_else(String::new, |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const SEED: &str = r#"{
  "courses": [{"courseId": "do_course", "name": "Fractions", "leafNodes": ["do_0000", "do_0001", "do_0002", "do_0003"]}],
  "batches": [{"batchId": "0130", "courseId": "do_course", "status": 1}],
  "enrolments": [{"userId": "learner-1", "courseId": "do_course", "batchId": "0130"}],
  "tokens": {"token-1": "learner-1"}
}"#;

#[test]
fn serve_with_a_seed_answers_courses_and_admin_needs_the_key_which_is_never_logged() {
    let dir = TempDir::new("seed");
    let seed = dir.0.join("seed.json");
    std::fs::write(&seed, SEED).unwrap();
    let (mut server, url, mut log) = spawn_serve(
        &["--seed", seed.to_str().unwrap(), "-v"],
        &[("HEADWAY_API_KEY", "gateway-secret")],
    );
    let db = dir.0.join("h.db");
    fill(&db, "0130", 2);
    let out = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(&db)
        .args(["courses", "--user", USER, "--server", &url, "--json"])
        .env("HEADWAY_API_KEY", "gateway-secret")
        .env("HEADWAY_USER_TOKEN", "token-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let courses: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(courses[0]["courseName"], "Fractions");
    assert_eq!(courses[0]["completionPercentage"], 50);
    assert_eq!(pending(&db), 0);

    let lag = r#"{"progressMs": 0, "listCacheMs": 0}"#;
    assert_eq!(http(&url, "POST", "/admin/lag", None, lag), 401);
    assert_eq!(http(&url, "POST", "/admin/lag", Some("wrong"), lag), 401);
    assert_eq!(http(&url, "GET", "/admin/stats", None, ""), 401);
    assert_eq!(
        http(&url, "POST", "/admin/lag", Some("gateway-secret"), lag),
        200
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let mut logged = String::new();
    log.read_to_string(&mut logged).unwrap();
    let requests = logged
        .lines()
        .filter(|l| l.contains(" /api/course/v1/"))
        .count();
    assert!(
        requests >= 3,
        "serve -v logs one line per request:\n{logged}"
    );
    assert!(
        logged.contains("/admin/lag 401") && logged.contains("/admin/lag 200"),
        "{logged}"
    );
    assert!(
        !logged.contains("gateway-secret") && !logged.contains("token-1"),
        "{logged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_lists_refused_items_and_resend_makes_them_pending_again() {
    let dir = TempDir::new("rejected");
    let db = dir.0.join("h.db");
    let server = server_with_a_closed_batch().await;
    fill(&db, "closed", 3);
    let other = lines("0130", 1).replace("do_course", "do_other");
    let out = headway_with_stdin(&db, &["record", "--from", "-"], &other);
    assert!(out.status.success());
    let url = server.url().to_string();
    let out = headway_async(&db, &["sync", "--user", USER, "--server", &url, "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = headway_async(&db, &["rejected", "--user", USER, "--json"]).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let first = listed[0].as_object().unwrap();
    let fields: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "userId",
            "courseId",
            "batchId",
            "contentId",
            "status",
            "progress",
            "reason"
        ]
    );
    assert_eq!(first["reason"], "NOT_A_ON_GOING_BATCH");
    let piped = headway_async(&db, &["rejected", "--user", USER]).await;
    let per_line: Vec<Value> = text(&piped.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(Value::Array(per_line), listed);
    assert_eq!(pending(&db), 0);

    let out = headway_async(&db, &["resend", "--user", USER, "--course", "do_other"]).await;
    assert!(text(&out.stdout).starts_with("0 "), "{}", text(&out.stdout));
    let out = headway_async(&db, &["resend", "--user", USER, "--course", "do_course"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("3 "), "{}", text(&out.stdout));
    assert_eq!(pending(&db), 3);
    let out = headway_async(&db, &["rejected", "--user", USER, "--json"]).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        Value::Array(vec![])
    );

    let status = headway_async(&db, &["status", "--user", USER, "--json"]).await;
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (status["learners"].as_u64(), status["items"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(
        (status["pending"].as_u64(), status["rejected"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(status["lastSync"]["outcome"], "partial");
    assert_eq!(status["deviceId"].as_str().map(str::len), Some(32));
    let people = headway_async(&db, &["status"]).await;
    let people = text(&people.stdout);
    assert!(
        people.contains("last sync") && people.contains("partial"),
        "{people}"
    );
    server.shutdown().await;
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let dir = TempDir::new("completions");
    for shell in ["bash", "zsh", "fish"] {
        let out = headway(&dir.0.join("h.db"), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(text(&out.stdout).contains("headway"), "{shell}");
        assert!(text(&out.stdout).contains("record"), "{shell}");
    }
}

/// Runs `headway ARGS` inside a pseudo-terminal (util-linux `script`); returns what the
/// terminal showed.
fn on_a_terminal(db: &Path, args: &[&str]) -> String {
    let mut line = format!(
        "'{}' --db '{}'",
        env!("CARGO_BIN_EXE_headway"),
        db.display()
    );
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("COLUMNS", "120")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` is needed for the terminal tests (apt-get install bsdutils)");
    assert!(out.status.success(), "{}", text(&out.stdout));
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_shows_a_progress_bar_and_tables_and_a_pipe_shows_neither() {
    let dir = TempDir::new("tty");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 40);
    let server = ReferenceServer::start(ServerConfig::new("127.0.0.1:0"))
        .await
        .unwrap();
    server.set_faults(Faults {
        delay_ms: 150,
        fail_status: 503,
        ..Faults::default()
    });
    let url = server.url().to_string();
    let sync = ["sync", "--user", USER, "--server", &url, "--chunk", "5"];
    let (db2, sync2) = (db.clone(), sync.map(str::to_string));
    let shown = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = sync2.iter().map(String::as_str).collect();
        on_a_terminal(&db2, &args)
    })
    .await
    .unwrap();
    assert!(
        shown.contains("syncing learner-1") && shown.contains("/40"),
        "{shown}"
    );
    assert!(shown.contains("acknowledged 40"), "{shown}");

    fill(&db, "0131", 40);
    let piped = headway_async(&db, &sync).await;
    assert_eq!(piped.status.code(), Some(0));
    assert!(
        piped.stderr.is_empty(),
        "a pipe got progress: {}",
        text(&piped.stderr)
    );
    assert!(
        !text(&piped.stdout).contains("syncing"),
        "{}",
        text(&piped.stdout)
    );

    let table = on_a_terminal(&db, &["state", "--user", USER]);
    let header = table
        .lines()
        .find(|l| l.contains("COURSE"))
        .unwrap_or_default();
    assert!(
        header.contains("CONTENT") && header.contains("LAST ACCESS"),
        "{table}"
    );
    assert!(
        table.contains("completed") && !table.contains("\"userId\""),
        "{table}"
    );
    let empty = on_a_terminal(&db, &["pending", "--user", USER]);
    assert!(
        empty.contains("nothing pending for learner learner-1"),
        "{empty}"
    );
    let quiet = on_a_terminal(&db, &["state", "--user", "nobody"]);
    assert!(
        quiet.contains("no progress recorded for learner nobody"),
        "{quiet}"
    );
    server.shutdown().await;
}

#[test]
fn logs_come_with_v_or_rust_log_on_stderr_and_never_show_a_secret() {
    let dir = TempDir::new("logs");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 3);
    let url = format!("http://{}", refused_port());
    let run = |extra: &[&str], rust_log: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_headway"));
        command
            .arg("--db")
            .arg(&db)
            .args(["sync", "--user", USER, "--server", &url])
            .args(extra)
            .env("HEADWAY_USER_TOKEN", "user-token-secret")
            .env("HEADWAY_API_KEY", "api-key-secret")
            .env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(3));
        text(&out.stderr)
    };
    let plain = run(&[], None);
    assert_eq!(plain.lines().count(), 1, "{plain}");
    for logged in [
        run(&["-v"], None),
        run(&["-vv"], None),
        run(&[], Some("headway=debug")),
    ] {
        assert!(logged.contains("sync finished"), "{logged}");
        assert!(!logged.contains("secret"), "{logged}");
    }
    assert!(
        run(&["-vv"], None).contains("pushing"),
        "-vv shows debug events"
    );
}
