//! `headway sync` and `headway serve` as processes: the JSON report, exit codes, and a sync
//! killed with SIGKILL mid-flight that loses nothing.
#![cfg(test)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use headway::{ContentKey, ProgressUpdate, Status, Store};
use headway_sunbird_server::Faults;
use serde_json::Value;
use support::{
    headway, headway_async, json_of, server_with_a_closed_batch, server_with_a_course, TempDir,
};

const USER: &str = "learner-1";

fn fill(db: &Path, batch: &str, contents: usize, status: Status) {
    let store = Store::open(db).unwrap();
    let updates = (0..contents)
        .map(|c| {
            let key = ContentKey::new(USER, "do_course", batch, format!("do_{c:04}")).unwrap();
            ProgressUpdate::new(key, status, 100).unwrap()
        })
        .collect();
    store.record_batch(updates).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_prints_the_report_as_json_and_exits_0_even_with_rejections() {
    let dir = TempDir::new("json");
    let db = dir.0.join("h.db");
    let server = server_with_a_closed_batch().await;
    fill(&db, "0130", 3, Status::Completed);
    let closed = ContentKey::new(USER, "do_course", "closed", "do_x").unwrap();
    Store::open(&db)
        .unwrap()
        .record(ProgressUpdate::new(closed, Status::Completed, 100).unwrap())
        .unwrap();
    let url = server.url().to_string();
    let out = headway_async(
        &db,
        &[
            "sync",
            "--user",
            USER,
            "--server",
            &url,
            "--user-token",
            "t",
            "--json",
        ],
    )
    .await;
    let report = json_of(&out);
    assert_eq!(report["sent"], 4);
    assert_eq!(report["acknowledged"], 3);
    assert_eq!(report["retrying"], 0);
    assert_eq!(report["requests"], 1);
    assert_eq!(report["rejected"][0]["contentId"], "do_x");
    assert_eq!(report["rejected"][0]["batchId"], "closed");
    assert_eq!(report["rejected"][0]["reason"], "NOT_A_ON_GOING_BATCH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_exits_non_zero_when_the_server_keeps_failing_and_keeps_everything_pending() {
    let dir = TempDir::new("failing");
    let db = dir.0.join("h.db");
    let server = server_with_a_closed_batch().await;
    fill(&db, "0130", 5, Status::Completed);
    server.fail_next(1_000, 503);
    let url = server.url().to_string();
    let out = headway_async(&db, &["sync", "--user", USER, "--server", &url, "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["retrying"], 5);
    assert_eq!(
        Store::open(&db)
            .unwrap()
            .pending(&user_id(USER))
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_mid_flight_loses_nothing_and_the_next_sync_completes() {
    let dir = TempDir::new("kill");
    let db = dir.0.join("h.db");
    let server = server_with_a_closed_batch().await;
    fill(&db, "0130", 250, Status::Completed);
    let url = server.url().to_string();
    for round in 0..5u64 {
        // Each request waits on the server, so the kill lands mid-flight.
        server.set_faults(Faults {
            delay_ms: 150,
            ..Faults::default()
        });
        let mut child = Command::new(env!("CARGO_BIN_EXE_headway"))
            .arg("--db")
            .arg(&db)
            .args(["sync", "--user", USER, "--server", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60 + round * 70)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let store = Store::open(&db).unwrap();
        let recorded = 250 + round as usize;
        assert_eq!(
            store.items(&user_id(USER), None).unwrap().len(),
            recorded,
            "round {round}: states lost"
        );
        // Whatever the server does not hold is still pending.
        let on_server: std::collections::HashSet<String> = server
            .service()
            .states_of(USER)
            .unwrap()
            .iter()
            .map(|row| row["contentId"].as_str().unwrap().to_string())
            .collect();
        for item in store.items(&user_id(USER), None).unwrap() {
            let pending = store
                .pending(&user_id(USER))
                .unwrap()
                .iter()
                .any(|p| p.key() == item.key());
            assert!(
                pending || on_server.contains(item.key().content().as_str()),
                "round {round}: {} is neither on the server nor pending",
                item.key().content()
            );
        }
        // More progress arrives between attempts.
        let key = ContentKey::new(USER, "do_course", "0130", format!("do_new_{round}")).unwrap();
        store
            .record(ProgressUpdate::new(key, Status::Completed, 100).unwrap())
            .unwrap();
    }
    server.set_faults(Faults::default());
    let out = headway_async(&db, &["sync", "--user", USER, "--server", &url, "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&db).unwrap();
    assert!(store.pending(&user_id(USER)).unwrap().is_empty());
    let rows = server.service().states_of(USER).unwrap();
    assert_eq!(rows.len(), 255);
    assert!(rows
        .iter()
        .all(|row| row["status"] == 2 && row["progress"] == 100));
}

#[test]
fn serve_listens_on_the_given_address_and_answers_sunbird_requests() {
    let dir = TempDir::new("serve");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let server_db = dir.0.join("server.db");
    let mut server = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(&server_db)
        .args(["serve", "--addr", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains(&addr), "{line}");
    let db = dir.0.join("h.db");
    fill(&db, "0130", 2, Status::Completed);
    let url = format!("http://{addr}");
    let out = headway(&db, &["sync", "--user", USER, "--server", &url, "--json"]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["acknowledged"], 2);
    assert!(server_db.exists(), "--db was not used by serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courses_prints_merged_progress_online_and_offline() {
    let dir = TempDir::new("courses");
    let db = dir.0.join("h.db");
    let server = server_with_a_course(USER, 1_714_558_530_123).await;
    let url = server.url().to_string();
    let online = headway_async(
        &db,
        &[
            "courses",
            "--user",
            USER,
            "--server",
            &url,
            "--user-token",
            "t",
            "--json",
        ],
    )
    .await;
    let courses = json_of(&online);
    assert_eq!(courses[0]["courseId"], "do_course");
    assert_eq!(courses[0]["batchId"], "0130");
    assert_eq!(courses[0]["leafNodesCount"], 4);
    assert_eq!(courses[0]["completionPercentage"], 0);
    assert_eq!(courses[0]["courseName"], "Fractions");
    server.shutdown().await;
    // Offline: one completion recorded, the bar moves without a server.
    fill(&db, "0130", 1, Status::Completed);
    let offline = headway(&db, &["courses", "--user", USER, "--offline", "--json"]);
    assert_eq!(offline.status.code(), Some(0));
    let courses: Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(courses[0]["progress"], 1);
    assert_eq!(courses[0]["completionPercentage"], 25);
    assert_eq!(courses[0]["status"], 1);
    assert_eq!(courses[0]["contentStatus"]["do_0000"], 2);
}

/// The learner `id`, validated (every id in these tests is valid).
fn user_id(id: &str) -> headway::UserId {
    headway::UserId::new(id).unwrap()
}
