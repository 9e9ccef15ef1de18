//! Bulk sync against per-item sync: time and requests to bring 10,000 pending items to the
//! reference course service on 127.0.0.1, measured in one run. The per-item baseline sends one
//! PATCH per update, as the incumbent SDK's network queue does, over the same keep-alive HTTP
//! client. Loopback has no network latency at all, so a per-item request costs only the
//! server's work (~0.1 ms); the last scenario adds a 2 ms round trip per request on the server
//! (a phone's real round trip is 20-300 ms), which is where per-item sync hurts.
//! `HEADWAY_BENCH_QUICK=1` runs a small version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use headway::{ContentItem, ContentKey, ProgressUpdate, Status, Store, SyncOptions};
use headway_sunbird::{wire, StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};
use headway_sunbird_server::{BatchStatus, ReferenceServer, ServerConfig};

type BoxError = Box<dyn std::error::Error>;

const USER: &str = "95e4942d-cbe8-477d-aebd-ad8e6de4bfc8";
const BATCH: &str = "0130596193870561281";

fn items(count: usize, status: Status) -> Result<Vec<ProgressUpdate>, BoxError> {
    (0..count)
        .map(|i| {
            let course = format!("do_11305961646828748{:06}", i / 200);
            let key = ContentKey::new(USER, course, BATCH, format!("do_1130560561046650{:09}", i))?;
            Ok(ProgressUpdate::new(
                key,
                status,
                if status == Status::Completed { 100 } else { 40 },
            )?)
        })
        .collect()
}

async fn fresh_server(courses: usize, rtt_ms: u64) -> Result<ReferenceServer, BoxError> {
    let server = ReferenceServer::start(ServerConfig::new("127.0.0.1:0")).await?;
    server.set_faults(headway_sunbird_server::Faults {
        delay_ms: rtt_ms,
        ..headway_sunbird_server::Faults::default()
    });
    for c in 0..courses {
        let course = format!("do_11305961646828748{c:06}");
        server
            .service()
            .put_batch(BATCH, &course, BatchStatus::Ongoing)?;
    }
    Ok(server)
}

/// Bulk: the sync engine and the Sunbird adapter, chunks of 100.
async fn bulk(
    updates: &[ProgressUpdate],
    courses: usize,
    rtt_ms: u64,
) -> Result<(Duration, usize, usize), BoxError> {
    let server = fresh_server(courses, rtt_ms).await?;
    let store = Store::open_in_memory()?;
    store.record_batch(updates.to_vec())?;
    let adapter = SunbirdAdapter::new(
        SunbirdConfig::new(server.url()),
        Arc::new(StaticToken::new(UserToken::new("t"))),
    )?;
    let started = Instant::now();
    let report = store
        .sync(&headway::UserId::new(USER)?, &adapter, &SyncOptions::new())
        .await?;
    let elapsed = started.elapsed();
    let requests = usize::try_from(server.stats().update_requests)?;
    if !store.pending(&headway::UserId::new(USER)?)?.is_empty() {
        return Err("bulk sync left items pending".into());
    }
    server.shutdown().await;
    Ok((elapsed, requests, report.acknowledged))
}

/// The incumbent: one PATCH per update, waiting for each answer.
async fn per_item(
    updates: &[ProgressUpdate],
    courses: usize,
    rtt_ms: u64,
) -> Result<(Duration, usize), BoxError> {
    let server = fresh_server(courses, rtt_ms).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/api/course/v1/content/state/update", server.url());
    let user = headway::UserId::new(USER)?;
    let started = Instant::now();
    for update in updates {
        let item = ContentItem::new(update.key().clone(), *update.state());
        let body = serde_json::to_vec(&wire::update_body(&user, &[&item]))?;
        let response = http
            .patch(&url)
            .header("content-type", "application/json")
            .header("x-authenticated-user-token", "t")
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("per-item request failed: {}", response.status()).into());
        }
        response.bytes().await?;
    }
    let elapsed = started.elapsed();
    let requests = usize::try_from(server.stats().update_requests)?;
    server.shutdown().await;
    Ok((elapsed, requests))
}

fn main() -> Result<(), BoxError> {
    let quick = std::env::var("HEADWAY_BENCH_QUICK").is_ok_and(|v| v == "1");
    let count: usize = if quick { 500 } else { 10_000 };
    let courses = count.div_ceil(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("sync of {count} pending items to the reference course service on 127.0.0.1");
    let scenarios = [
        ("loopback, completed contents", Status::Completed, 0),
        ("loopback, first writes in progress", Status::InProgress, 0),
        ("2 ms round trip, completed contents", Status::Completed, 2),
    ];
    for (label, status, rtt_ms) in scenarios {
        let updates = items(count, status)?;
        let (bulk_time, bulk_requests, acknowledged) =
            runtime.block_on(bulk(&updates, courses, rtt_ms))?;
        let (item_time, item_requests) = runtime.block_on(per_item(&updates, courses, rtt_ms))?;
        let faster = item_time.as_secs_f64() / bulk_time.as_secs_f64();
        let fewer = item_requests as f64 / bulk_requests as f64;
        println!("  {label}: {acknowledged} acknowledged");
        println!(
            "    bulk     {:>9.1} ms {:>6} requests",
            bulk_time.as_secs_f64() * 1e3,
            bulk_requests
        );
        println!(
            "    per-item {:>9.1} ms {:>6} requests",
            item_time.as_secs_f64() * 1e3,
            item_requests
        );
        println!(
            "    ratio    {faster:>9.1}x faster (goal >= 50) {}, {fewer:.0}x fewer requests (goal >= 100) {}",
            if faster >= 50.0 { "OK" } else { "MISSED" },
            if fewer >= 100.0 { "OK" } else { "MISSED" }
        );
    }
    Ok(())
}
