//! Times from outside this device, through the binary: a far-future time from the server or
//! from a `record --from` file is dropped from its item (status and progress kept) instead of
//! freezing the register or refusing the import, and what `state` prints always re-imports.
#![cfg(test)]

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use headway::Timestamp;
use serde_json::{json, Value};
use support::{headway, headway_async, json_of, record_args, server_with_a_course, text, TempDir};

const USER: &str = "learner-1";
const YEAR_9999: &str = "9999-01-01T00:00:00.000Z";

/// `headway --db DB record --from -` with `input` on stdin.
fn import(db: &Path, input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(db)
        .args(["record", "--from", "-"])
        .env_remove("HEADWAY_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// What `state --user USER --json` prints.
fn state(db: &Path) -> Vec<Value> {
    json_of(&headway(db, &["state", "--user", USER, "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

/// One import line for content `content` of `do_course`/`0130`.
fn line(content: &str, status: i64, progress: i64, access: Option<&str>) -> String {
    json!({"userId": USER, "courseId": "do_course", "batchId": "0130", "contentId": content,
           "status": status, "progress": progress, "lastAccessTime": access,
           "lastCompletedTime": null})
    .to_string()
}

// Issue 17, fault 7: a year-9999 time in a `record --from` line refused the whole import.
#[test]
fn a_far_future_time_in_record_from_is_dropped_with_a_note_naming_the_line_and_exits_0() {
    let dir = TempDir::new("import-future");
    let db = dir.0.join("h.db");
    let input = [
        line("do_1", 1, 40, Some("2024-05-01T10:15:30.000Z")),
        line("do_2", 2, 100, Some(YEAR_9999)),
    ]
    .join("\n");
    let out = import(&db, input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 2 of -") && stderr.contains("lastAccessTime"),
        "{stderr}"
    );
    assert!(!stderr.contains("line 1 "), "{stderr}");
    let items = state(&db);
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["lastAccessTime"], "2024-05-01T10:15:30.000Z");
    assert_eq!(
        (items[1]["status"].as_i64(), items[1]["progress"].as_i64()),
        (Some(2), Some(100))
    );
    assert_eq!(items[1]["lastAccessTime"], Value::Null);
}

#[test]
fn record_at_a_far_future_time_stays_refused() {
    let dir = TempDir::new("at-future");
    let db = dir.0.join("h.db");
    let mut args = record_args([USER, "do_course", "0130", "do_1"], "1", "10");
    args.extend(["--at", YEAR_9999]);
    let out = headway(&db, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!db.exists(), "a refused record creates no store");
}

// Issue 17, fault 7: a `lastAccessTime` of year 9999 read from the server stayed for good, later
// real accesses reported "unchanged", and `state | record --from -` was refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_9999_time_from_the_server_freezes_nothing_and_state_still_re_imports() {
    let dir = TempDir::new("server-future");
    let db = dir.0.join("h.db");
    let server = server_with_a_course(USER, Timestamp::now().as_millis()).await;
    // Another client with a wrong clock wrote year 9999 on the server.
    let reply = server.service().update(
        None,
        &json!({"request": {"userId": USER, "contents": [{
            "contentId": "do_0000", "courseId": "do_course", "batchId": "0130",
            "status": 2, "progress": 100,
            "lastAccessTime": "9999-01-01 00:00:00:000+0000"}]}}),
        Timestamp::now().as_millis(),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let url = server.url().to_string();
    let out = headway_async(
        &db,
        &["courses", "--user", USER, "--server", &url, "--json"],
    )
    .await;
    json_of(&out);
    let items = state(&db);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        (items[0]["status"].as_i64(), items[0]["progress"].as_i64()),
        (Some(2), Some(100))
    );
    assert_eq!(
        items[0]["lastAccessTime"],
        Value::Null,
        "the far-future time was kept"
    );

    // A later real access is recorded and reported as a change.
    let out = headway_async(
        &db,
        &record_args([USER, "do_course", "0130", "do_0000"], "1", "30"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("recorded do_0000"),
        "{}",
        text(&out.stdout)
    );
    let seen = state(&db)[0]["lastAccessTime"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(Timestamp::parse_rfc3339(&seen).unwrap() <= Timestamp::now());

    // Copying the learner to another device works.
    let copy = dir.0.join("copy.db");
    let printed = headway(&db, &["state", "--user", USER]);
    assert_eq!(printed.status.code(), Some(0));
    let out = import(&copy, &printed.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(state(&copy), state(&db));
    server.shutdown().await;
}

/// A seeded generator (SplitMix64), printed so a failure can be replayed with HEADWAY_SEED.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    /// None, a past time, a time within the day of slack, or one far in the future.
    fn time(&mut self, now: i64) -> Option<String> {
        const DAY: i64 = 86_400_000;
        let millis = match self.below(5) {
            0 => return None,
            1 => now - 1 - self.below(3_000 * DAY as u64) as i64,
            2 => now + self.below(DAY as u64 / 2) as i64,
            3 => now + 2 * DAY + self.below(3_650 * DAY as u64) as i64,
            _ => Timestamp::parse_rfc3339(YEAR_9999).unwrap().as_millis(),
        };
        Some(Timestamp::from_millis(millis).unwrap().to_rfc3339())
    }
}

// Issue 17, fault 7: whatever came in from outside, what `state` prints re-imports whole, and the
// copy reads the same.
#[test]
fn what_state_prints_always_re_imports_with_record_from() {
    let seed = std::env::var("HEADWAY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Timestamp::now().as_millis() as u64);
    eprintln!("HEADWAY_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = TempDir::new("re-import");
    for round in 0..12 {
        let (db, copy) = (
            dir.0.join(format!("{round}.db")),
            dir.0.join(format!("{round}-copy.db")),
        );
        let now = Timestamp::now().as_millis();
        let lines: Vec<String> = (0..1 + rng.below(8))
            .map(|_| {
                let content = format!("do_{}", rng.below(4));
                let status = rng.below(3) as i64;
                let progress = rng.below(101) as i64;
                let mut item: Value =
                    serde_json::from_str(&line(&content, status, progress, None)).unwrap();
                item["lastAccessTime"] = json!(rng.time(now));
                item["lastCompletedTime"] = json!(rng.time(now));
                item.to_string()
            })
            .collect();
        let out = import(&db, lines.join("\n").as_bytes());
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            text(&out.stderr)
        );
        let printed = headway(&db, &["state", "--user", USER]);
        assert_eq!(printed.status.code(), Some(0), "{}", text(&printed.stderr));
        let out = import(&copy, &printed.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            text(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "nothing printed is dropped: {}",
            text(&out.stderr)
        );
        assert_eq!(state(&copy), state(&db), "round {round}");
    }
}

/// Records `content` at `status`/`progress` in the store at `db` as a device whose clock reads
/// `clock` would (the binary refuses a time past its own tomorrow, so the library does it).
fn record_with_clock(db: &Path, content: &str, status: i64, progress: i64, clock: Timestamp) {
    let store = headway::Store::open(db).unwrap();
    let key = headway::ContentKey::new(USER, "do_course", "0130", content).unwrap();
    let update = headway::ProgressUpdate::new(key, status.try_into().unwrap(), progress)
        .unwrap()
        .consumed_at_checked(clock, clock)
        .unwrap();
    store.record(update).unwrap();
}

/// Each item's (content, status, progress) as `state` prints it.
fn standing(db: &Path) -> Vec<(String, i64, i64)> {
    state(db)
        .iter()
        .map(|item| {
            (
                item["contentId"].as_str().unwrap().to_string(),
                item["status"].as_i64().unwrap(),
                item["progress"].as_i64().unwrap(),
            )
        })
        .collect()
}

// Issue 17, fault 7: through the server, a device whose clock runs a year ahead and one on time
// end with the same status and progress, and the one on time holds no time from next year.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_a_year_ahead_and_one_on_time_converge_through_the_server() {
    let dir = TempDir::new("year-ahead-server");
    let (ahead, on_time) = (dir.0.join("ahead.db"), dir.0.join("on-time.db"));
    let server = server_with_a_course(USER, Timestamp::now().as_millis()).await;
    let url = server.url().to_string();
    let now = Timestamp::now();
    let next_year = Timestamp::from_millis(now.as_millis() + 365 * 86_400_000).unwrap();
    record_with_clock(&ahead, "do_0000", 2, 100, next_year);
    record_with_clock(&ahead, "do_0001", 1, 60, next_year);
    record_with_clock(&on_time, "do_0001", 1, 30, now);
    record_with_clock(&on_time, "do_0002", 2, 100, now);
    for db in [&ahead, &on_time, &ahead] {
        let out = headway_async(db, &["courses", "--user", USER, "--server", &url, "--json"]).await;
        json_of(&out);
    }
    assert_eq!(standing(&ahead), standing(&on_time));
    assert_eq!(standing(&on_time).len(), 3);
    let tomorrow = now.as_millis() + 2 * 86_400_000;
    for item in state(&on_time) {
        for field in ["lastAccessTime", "lastCompletedTime"] {
            if let Some(t) = item[field].as_str() {
                let t = Timestamp::parse_rfc3339(t).unwrap().as_millis();
                assert!(
                    t < tomorrow,
                    "{field} from next year reached the device on time: {item}"
                );
            }
        }
    }
    server.shutdown().await;
}

// Issue 20, item 3: `record --from` without guessing. What `state --json` prints (a pretty
// JSON array) copies a learner exactly; Sunbird's own time format is read; a time field left
// out means now while `null` means none; an error names one line and the field in words.
#[test]
fn record_from_reads_state_json_and_sunbird_times_and_names_the_line_and_field_of_a_bad_item() {
    let dir = TempDir::new("import-shapes");
    let (a, b) = (dir.0.join("a.db"), dir.0.join("b.db"));
    let lines = [
        json!({"userId": USER, "courseId": "do_course", "batchId": "0130", "contentId": "do_1",
               "status": 1, "progress": 40, "lastAccessTime": "2024-05-01 10:15:30:000+0530",
               "lastCompletedTime": null}),
        // No time fields: now, and completed now as well.
        json!({"userId": USER, "courseId": "do_course", "batchId": "0130", "contentId": "do_2",
               "status": 2, "progress": 100}),
        // Explicit nulls: no time at all.
        json!({"userId": USER, "courseId": "do_course", "batchId": "0130", "contentId": "do_3",
               "status": 1, "progress": 5, "lastAccessTime": null, "lastCompletedTime": null}),
    ]
    .map(|line| line.to_string())
    .join("\n");
    let out = import(&a, lines.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let items = state(&a);
    assert_eq!(items[0]["lastAccessTime"], "2024-05-01T04:45:30.000Z");
    assert!(items[1]["lastAccessTime"].is_string());
    assert!(items[1]["lastCompletedTime"].is_string());
    assert_eq!(items[2]["lastAccessTime"], Value::Null);

    // `state --json` (a pretty array) into another store: the same items, exactly.
    let printed = headway(&a, &["state", "--user", USER, "--json"]).stdout;
    let out = import(&b, &printed);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(state(&b), items);

    // A bad item in an array is named by the line it starts on, its field in words.
    let bad = "[\n  {\"userId\": \"learner-1\", \"courseId\": \"c\", \"batchId\": \"b\", \"contentId\": \"k\", \"status\": 1, \"progress\": 5},\n  {\"userId\": \"learner-1\", \"courseId\": \"c\", \"batchId\": \"b\", \"contentId\": \"k2\", \"status\": \"2\", \"progress\": 5}\n]\n";
    let out = import(&b, bad.as_bytes());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains(r#"line 3 of -: "status" must be 0, 1 or 2, got "2" (a string)"#),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(state(&b), items, "a refused file records nothing");
}
