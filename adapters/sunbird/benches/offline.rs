//! Offline means instant (issue 12): with 10,000 pending items and the course service down (a
//! refused port on 127.0.0.1), how long `sync` and the `courses --server` refresh take with
//! fail-fast on (the default: the first request that cannot connect ends the call) against
//! the same run with it off (every chunk tried three times with back-off and no overall
//! deadline: the behaviour before issue 12). Goal: under 1 s with fail-fast on. The CLI's
//! `headway sync` and `headway courses --server` run exactly these calls.
//! `HEADWAY_BENCH_QUICK=1` runs 1,000 items.

use std::sync::Arc;
use std::time::{Duration, Instant};

use headway::{ContentKey, ProgressUpdate, Status, Store, SyncOptions};
use headway_sunbird::{StaticToken, SunbirdAdapter, SunbirdConfig, UserToken, WhenUnreachable};

type BoxError = Box<dyn std::error::Error>;

const USER: &str = "95e4942d-cbe8-477d-aebd-ad8e6de4bfc8";

fn pending_store(count: usize) -> Result<Store, BoxError> {
    let store = Store::open_in_memory()?;
    let updates = (0..count)
        .map(|i| {
            let key = ContentKey::new(USER, "do_course", "0130", format!("do_{i:06}"))?;
            ProgressUpdate::new(key, Status::Completed, 100)
        })
        .collect::<headway::Result<Vec<_>>>()?;
    store.record_batch(updates)?;
    Ok(store)
}

fn refused_url() -> Result<String, BoxError> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", probe.local_addr()?);
    drop(probe);
    Ok(url)
}

fn adapter(url: &str, policy: WhenUnreachable) -> Result<SunbirdAdapter, BoxError> {
    let config = SunbirdConfig::new(url)
        .when_unreachable(policy)
        // Before issue 12 nothing bounded the whole call.
        .deadline(Duration::from_secs(3_600));
    Ok(SunbirdAdapter::new(
        config,
        Arc::new(StaticToken::new(UserToken::new("t"))),
    )?)
}

/// Times one offline `sync` and one offline refresh of the enrolled courses.
async fn offline(count: usize, policy: WhenUnreachable) -> Result<(Duration, Duration), BoxError> {
    let store = pending_store(count)?;
    let adapter = adapter(&refused_url()?, policy)?;
    let started = Instant::now();
    let report = store
        .sync(&headway::UserId::new(USER)?, &adapter, &SyncOptions::new())
        .await?;
    let sync = started.elapsed();
    assert!(report.server_failed() && report.retrying.len() == count);
    let started = Instant::now();
    let answer = store
        .refresh_courses(&headway::UserId::new(USER)?, &adapter, &SyncOptions::new())
        .await?;
    let courses = started.elapsed();
    assert!(matches!(
        answer.source,
        headway::CoursesSource::Cache { .. }
    ));
    assert_eq!(
        store.pending(&headway::UserId::new(USER)?)?.len(),
        count,
        "nothing may be lost"
    );
    Ok((sync, courses))
}

fn main() -> Result<(), BoxError> {
    let quick = std::env::var_os("HEADWAY_BENCH_QUICK").is_some();
    let count = if quick { 1_000 } else { 10_000 };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (fast_sync, fast_courses) =
        runtime.block_on(offline(count, WhenUnreachable::StopAtOnce))?;
    let (slow_sync, slow_courses) =
        runtime.block_on(offline(count, WhenUnreachable::TryEveryRequest))?;
    println!("offline, {count} pending items, refused port on 127.0.0.1:");
    for (what, fast, slow) in [
        ("sync", fast_sync, slow_sync),
        ("courses --server", fast_courses, slow_courses),
    ] {
        println!(
            "  {what:<17} fail-fast {:>9.1} ms   without {:>9.1} ms   ratio {:>7.0}x faster   goal < 1000 ms: {}",
            fast.as_secs_f64() * 1e3,
            slow.as_secs_f64() * 1e3,
            slow.as_secs_f64() / fast.as_secs_f64().max(1e-6),
            if fast < Duration::from_secs(1) { "met" } else { "MISSED" }
        );
    }
    Ok(())
}
