//! Crash safety with real processes: a child records updates in a loop and is killed with
//! SIGKILL at random instants; after each kill the store opens and holds every update whose
//! `record` had returned, and the document agrees with the table.
#![cfg(test)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use headway::{Store, StoreOptions};
use support::{key, test_seed, update, user_id, Rng, TempDir};

const CHILD_ENV: &str = "HEADWAY_CRASH_CHILD_DB";
const T0: i64 = 1_714_558_530_123;
const KILLS: usize = 50;

/// Not a test of its own: the body the parent runs in a child process. Without the
/// environment variable it returns at once.
#[test]
fn crash_child_records_in_a_loop() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var("HEADWAY_CRASH_CHILD_SEED")
        .unwrap()
        .parse()
        .unwrap();
    let mut rng = Rng::new(seed);
    // Small batches so that kills land inside flushes and compactions too.
    let store = Store::open_with(&db, StoreOptions::new().flush_after(7).compact_after(3)).unwrap();
    println!("READY");
    for i in 0.. {
        let content = format!("do_{}", rng.below(40));
        let status = rng.below(3) as i64;
        let progress = rng.below(101) as i64;
        let at = T0 + (seed as i64 % 1000) * 10_000 + i;
        if rng.below(10) == 0 {
            let batch: Vec<_> = (0..5)
                .map(|j| {
                    update(
                        "u",
                        &format!("do_{}", (j * 7 + i) % 40),
                        status,
                        progress,
                        at,
                    )
                })
                .collect();
            store.record_batch(batch).unwrap();
            for j in 0..5 {
                println!("OK do_{} {status} {progress} {at}", (j * 7 + i) % 40);
            }
        } else {
            store
                .record(update("u", &content, status, progress, at))
                .unwrap();
            // Reported only after `record` returned: these must survive the kill.
            println!("OK {content} {status} {progress} {at}");
        }
    }
}

#[test]
fn sigkill_at_random_instants_loses_no_returned_record() {
    let dir = TempDir::new("crash");
    let db = dir.file("crash.db");
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    let exe = std::env::current_exe().unwrap();
    let mut confirmed = 0usize;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_records_in_a_loop",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .env(
                "HEADWAY_CRASH_CHILD_SEED",
                (seed + round as u64).to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        // Kill at a random instant after the child is up: from right after opening to deep
        // into the loop.
        let delay = Duration::from_millis(20 + rng.below(250));
        let start = Instant::now();
        while start.elapsed() < delay {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let store = Store::open(&db)
            .unwrap_or_else(|e| panic!("round {round}: the store did not open after a kill: {e}"));
        for line in lines.iter().filter_map(|l| l.strip_prefix("OK ")) {
            let f: Vec<&str> = line.split(' ').collect();
            let (content, status, progress, at) = (
                f[0],
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            );
            let reported = update("u", content, status, progress, at);
            let held = store.state(&key("u", content)).unwrap();
            assert!(
                held.is_some_and(|s| s.covers(reported.state())),
                "round {round} (HEADWAY_SEED={seed}): {line} was lost; store holds {held:?}"
            );
            confirmed += 1;
        }
        assert_eq!(
            store.document_items(&user_id("u")).unwrap(),
            store.items(&user_id("u"), None).unwrap(),
            "round {round}: document and table disagree after a kill"
        );
    }
    assert!(
        confirmed > KILLS,
        "only {confirmed} records were confirmed: the kills came too early"
    );
    eprintln!("{KILLS} kills, {confirmed} returned records checked");
}
