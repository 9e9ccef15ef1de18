//! The offline enrolled-courses answer for a learner with 50 courses x 200 leaf nodes, next to
//! reading the same 10,000 rows (course, batch, content, status) from a plain SQLite table, as a
//! ratio (goal: under 2x). `HEADWAY_BENCH_QUICK=1` runs fewer rounds.

use std::time::{Duration, Instant};

use headway::{
    BatchId, ContentId, ContentKey, CourseId, EnrolledCourse, ProgressUpdate, Status, Store,
    StoreOptions,
};
use rusqlite::{params, Connection};

type BoxError = Box<dyn std::error::Error>;

const USER: &str = "95e4942d-cbe8-477d-aebd-ad8e6de4bfc8";
const BATCH: &str = "0130596193870561281";

fn course_id(c: usize) -> String {
    format!("do_11305961646828748{c:06}")
}

fn content_id(c: usize, i: usize) -> String {
    format!("do_1130560561046650{c:03}{i:06}")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> Result<(), BoxError> {
    let quick = std::env::var("HEADWAY_BENCH_QUICK").is_ok_and(|v| v == "1");
    let rounds = if quick { 5 } else { 41 };
    let (courses, leaves) = (50, 200);
    let dir = std::env::temp_dir().join(format!("headway-bench-courses-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The store: the cached list with every course's leaves, and the learner's progress on
    // every content (a third completed).
    let store = Store::open_with(dir.join("store.db"), StoreOptions::new())?;
    let mut list = Vec::new();
    for c in 0..courses {
        let mut course =
            EnrolledCourse::new(CourseId::new(course_id(c))?, BatchId::new(BATCH)?, 200);
        let leaf_nodes = (0..leaves).map(|i| ContentId::new(content_id(c, i)));
        course.leaf_nodes = Some(leaf_nodes.collect::<headway::Result<_>>()?);
        list.push(course);
    }
    store.cache_courses(&headway::UserId::new(USER)?, &list)?;
    let mut updates = Vec::new();
    for c in 0..courses {
        for i in 0..leaves {
            let key = ContentKey::new(USER, course_id(c), BATCH, content_id(c, i))?;
            let status = Status::try_from(i64::try_from(i % 3)?)?;
            updates.push(ProgressUpdate::new(key, status, 50)?);
        }
    }
    for chunk in updates.chunks(1_000) {
        store.record_batch(chunk.to_vec())?;
    }

    // The baseline: the same rows in a plain table.
    let plain = Connection::open(dir.join("plain.db"))?;
    plain.execute_batch(
        "PRAGMA journal_mode = WAL;
        CREATE TABLE leaf (user_id TEXT, course_id TEXT, batch_id TEXT, content_id TEXT,
            status INTEGER, PRIMARY KEY (user_id, course_id, batch_id, content_id)) WITHOUT ROWID;",
    )?;
    {
        let tx = plain.unchecked_transaction()?;
        for c in 0..courses {
            for i in 0..leaves {
                tx.execute(
                    "INSERT INTO leaf VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        USER,
                        course_id(c),
                        BATCH,
                        content_id(c, i),
                        i64::try_from(i % 3)?
                    ],
                )?;
            }
        }
        tx.commit()?;
    }

    let mut ours = Vec::new();
    let mut baseline = Vec::new();
    let mut check = 0usize;
    for _ in 0..rounds {
        let started = Instant::now();
        let answer = store.courses(&headway::UserId::new(USER)?)?;
        ours.push(started.elapsed());
        check += answer.iter().map(|c| c.progress as usize).sum::<usize>();

        let started = Instant::now();
        let mut select = plain.prepare_cached(
            "SELECT course_id, batch_id, content_id, status FROM leaf WHERE user_id = ?1",
        )?;
        let rows: Vec<(String, String, String, i64)> = select
            .query_map(params![USER], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        baseline.push(started.elapsed());
        check += rows.len();
    }
    let (ours, baseline) = (median(ours), median(baseline));
    let ratio = ours.as_secs_f64() / baseline.as_secs_f64();
    println!("offline enrolled courses, {courses} courses x {leaves} leaf nodes ({rounds} rounds, medians)");
    println!(
        "  headway courses() {:>7.2} ms | plain SQLite read {:>7.2} ms | ratio {ratio:.2} (goal < 2) {}",
        ours.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        if ratio < 2.0 { "OK" } else { "MISSED" }
    );
    if check == 0 {
        return Err("nothing was read".into());
    }
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
