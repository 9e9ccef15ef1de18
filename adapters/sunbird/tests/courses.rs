//! Enrolled courses against the reference course service over real HTTP: the offline answer
//! merges local progress, a refresh while the server's list lags shows no drop, non-leaf and
//! in-progress contents do not bump a course, a repeated completion counts once, a second
//! device's progress arrives through the server, a failing server falls back to the cache;
//! and the app's events arrive in order, each once.
#![cfg(test)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use headway::{
    ChangeOrigin, ContentKey, CoursesSource, EnrolledCourse, Event, ProgressUpdate, Status, Store,
    SyncOptions,
};
use headway_sunbird::{StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};
use headway_sunbird_server::{BatchStatus, Lag, ReferenceServer, ServerConfig};

const USER: &str = "learner-1";
const COURSE: &str = "do_course";
const BATCH: &str = "0130000000000000001";

/// A server with one course of four leaves (`do_1`..`do_4`) and a list lagging a minute.
async fn server() -> ReferenceServer {
    let lag = Lag {
        progress_ms: 60_000,
        list_cache_ms: 60_000,
    };
    let server = ReferenceServer::start(ServerConfig::new("127.0.0.1:0").lag(lag))
        .await
        .unwrap();
    let leaves: Vec<String> = (1..=4).map(|i| format!("do_{i}")).collect();
    server
        .service()
        .put_course(COURSE, "Fractions", &leaves)
        .unwrap();
    server
        .service()
        .put_batch(BATCH, COURSE, BatchStatus::Ongoing)
        .unwrap();
    server
        .service()
        .enrol(USER, COURSE, BATCH, 1_714_558_530_123)
        .unwrap();
    server
}

fn adapter(url: &str) -> SunbirdAdapter {
    SunbirdAdapter::new(
        SunbirdConfig::new(url).attempts(1),
        Arc::new(StaticToken::new(UserToken::new("t"))),
    )
    .unwrap()
}

fn complete(store: &Store, content: &str) {
    let key = ContentKey::new(USER, COURSE, BATCH, content).unwrap();
    store
        .record(ProgressUpdate::new(key, Status::Completed, 100).unwrap())
        .unwrap();
}

fn figures(courses: &[EnrolledCourse]) -> (u32, u32, u8) {
    let c = &courses[0];
    (c.progress, c.completion_percentage, c.status)
}

fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_answer_merges_local_progress_into_the_cached_list() {
    let server = server().await;
    let store = Store::open_in_memory().unwrap();
    let answer = store
        .refresh_courses(&user_id(USER), &adapter(server.url()), &SyncOptions::new())
        .await
        .unwrap();
    assert_eq!(answer.source, CoursesSource::Server);
    assert_eq!(figures(&answer.courses), (0, 0, 0));
    server.shutdown().await;
    // Offline from here on.
    complete(&store, "do_1");
    assert_eq!(figures(&store.courses(&user_id(USER)).unwrap()), (1, 25, 1));
    complete(&store, "do_2");
    complete(&store, "do_3");
    complete(&store, "do_4");
    let courses = store.courses(&user_id(USER)).unwrap();
    assert_eq!(figures(&courses), (4, 100, 2));
    assert_eq!(courses[0].content_status.get("do_4"), Some(&2));
    // The server's fields the library does not model are kept for the app.
    assert_eq!(courses[0].fields["courseName"], "Fractions");
    assert_eq!(courses[0].fields["content"]["primaryCategory"], "Course");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_while_the_server_lags_never_shows_a_course_lower() {
    let server = server().await;
    let store = Store::open_in_memory().unwrap();
    let adapter = adapter(server.url());
    store
        .refresh_courses(&user_id(USER), &adapter, &SyncOptions::new())
        .await
        .unwrap();
    complete(&store, "do_1");
    complete(&store, "do_2");
    // The refresh syncs first; the server's list still says 0 (its job runs a minute later).
    let answer = store
        .refresh_courses(&user_id(USER), &adapter, &SyncOptions::new())
        .await
        .unwrap();
    assert_eq!(answer.sync.as_ref().map(|s| s.acknowledged), Some(2));
    use headway::Adapter;
    let listed = adapter.enrolled_courses(&user_id(USER)).await.unwrap();
    assert_eq!(
        listed[0].progress, 0,
        "the reference server's list should lag"
    );
    assert_eq!(figures(&answer.courses), (2, 50, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_leaf_and_in_progress_contents_do_not_bump_and_a_completion_counts_once() {
    let server = server().await;
    let store = Store::open_in_memory().unwrap();
    store
        .refresh_courses(&user_id(USER), &adapter(server.url()), &SyncOptions::new())
        .await
        .unwrap();
    complete(&store, "do_not_a_leaf");
    let key = ContentKey::new(USER, COURSE, BATCH, "do_2").unwrap();
    store
        .record(ProgressUpdate::new(key, Status::InProgress, 90).unwrap())
        .unwrap();
    assert_eq!(figures(&store.courses(&user_id(USER)).unwrap()), (0, 0, 0));
    complete(&store, "do_1");
    complete(&store, "do_1");
    complete(&store, "do_1");
    assert_eq!(figures(&store.courses(&user_id(USER)).unwrap()), (1, 25, 1));
    // The same completion arriving from the server again does not count twice either.
    store
        .refresh_courses(&user_id(USER), &adapter(server.url()), &SyncOptions::new())
        .await
        .unwrap();
    assert_eq!(figures(&store.courses(&user_id(USER)).unwrap()), (1, 25, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_devices_progress_arrives_through_the_server() {
    let server = server().await;
    let phone = Store::open_in_memory().unwrap();
    let tablet = Store::open_in_memory().unwrap();
    let adapter = adapter(server.url());
    complete(&phone, "do_1");
    complete(&phone, "do_3");
    let report = phone
        .sync(&user_id(USER), &adapter, &SyncOptions::new())
        .await
        .unwrap();
    assert_eq!(report.acknowledged, 2);
    let events = tablet.subscribe();
    let answer = tablet
        .refresh_courses(&user_id(USER), &adapter, &SyncOptions::new())
        .await
        .unwrap();
    assert_eq!(figures(&answer.courses), (2, 50, 1));
    let from_server = events
        .drain()
        .into_iter()
        .filter(|e| matches!(e, Event::ContentStateChanged(c) if c.origin == ChangeOrigin::Server))
        .count();
    assert_eq!(from_server, 2);
    // What came from the server is not sent back.
    assert!(tablet.pending(&user_id(USER)).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_unreachable_server_falls_back_to_the_cache() {
    let server = server().await;
    let store = Store::open_in_memory().unwrap();
    store
        .refresh_courses(&user_id(USER), &adapter(server.url()), &SyncOptions::new())
        .await
        .unwrap();
    complete(&store, "do_1");
    server.fail_next(1_000, 503);
    let answer = store
        .refresh_courses(&user_id(USER), &adapter(server.url()), &SyncOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(answer.source, CoursesSource::Cache { .. }),
        "{:?}",
        answer.source
    );
    assert_eq!(figures(&answer.courses), (1, 25, 1));
    assert_eq!(
        store.pending(&user_id(USER)).unwrap().len(),
        1,
        "the completion must stay pending"
    );
    let answer = store
        .refresh_courses(
            &user_id(USER),
            &adapter(&unreachable_url()),
            &SyncOptions::new(),
        )
        .await
        .unwrap();
    assert!(matches!(answer.source, CoursesSource::Cache { .. }));
    assert_eq!(figures(&answer.courses), (1, 25, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_sees_each_kind_of_event_in_order_exactly_once() {
    let server = server().await;
    let store = Store::open_in_memory().unwrap();
    store
        .refresh_courses(&user_id(USER), &adapter(server.url()), &SyncOptions::new())
        .await
        .unwrap();
    let events = store.subscribe();
    complete(&store, "do_1");
    store
        .sync(&user_id(USER), &adapter(server.url()), &SyncOptions::new())
        .await
        .unwrap();
    complete(&store, "do_2");
    store
        .sync(
            &user_id(USER),
            &adapter(&unreachable_url()),
            &SyncOptions::new(),
        )
        .await
        .unwrap();
    let seen = events.drain();
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| match e {
            Event::ContentStateChanged(_) => "content",
            Event::CourseProgressChanged(_) => "course",
            Event::SyncFinished(_) => "finished",
            Event::SyncFailed(_) => "failed",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["content", "course", "finished", "content", "course", "failed"],
        "{seen:#?}"
    );
    let Event::CourseProgressChanged(first) = &seen[1] else {
        unreachable!()
    };
    assert_eq!((first.before, first.after), (0, 25));
    let Event::SyncFinished(report) = &seen[2] else {
        unreachable!()
    };
    assert_eq!(report.acknowledged, 1);
    let Event::SyncFailed(failed) = &seen[5] else {
        unreachable!()
    };
    assert_eq!(failed.pending, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_sync_backs_off_while_the_server_fails_and_restarts_when_the_network_is_back() {
    let server = server().await;
    let store = Arc::new(Store::open_in_memory().unwrap());
    server.fail_next(u32::MAX, 503);
    let options = headway::BackgroundOptions::new()
        .debounce(Duration::from_millis(20))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .interval(Duration::from_secs(60));
    let background = headway::BackgroundSync::start(
        store.clone(),
        Arc::new(adapter(server.url())),
        vec![user_id(USER)],
        options,
    );
    let started = Instant::now();
    complete(&store, "do_1");
    // It retries without waiting for a new record. Issue 18: this counted attempts in 700 ms
    // of wall time, which a loaded machine can stretch; it now waits for three attempts (a
    // generous ceiling) and checks only a lower bound, which load cannot break. The exact
    // schedule is tested on virtual time in `src/background.rs`.
    let ceiling = started + Duration::from_secs(60);
    while server.stats().failed_requests < 3 && Instant::now() < ceiling {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(server.stats().failed_requests >= 3, "{:?}", server.stats());
    // Backing off (at least 25 then 50 ms between attempts), not one attempt per 20 ms tick.
    assert!(started.elapsed() >= Duration::from_millis(75));
    assert_eq!(
        store.pending(&user_id(USER)).unwrap().len(),
        1,
        "nothing is dropped while failing"
    );
    // The server recovers; the app says the network is back: the sync runs without waiting
    // for another record.
    server.set_faults(headway_sunbird_server::Faults::default());
    background.network_up();
    let ceiling = Instant::now() + Duration::from_secs(60);
    while !store.pending(&user_id(USER)).unwrap().is_empty() && Instant::now() < ceiling {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.pending(&user_id(USER)).unwrap().is_empty());
    background.stop().await;
}

/// The learner `id`, validated (every id in these tests is valid).
fn user_id(id: &str) -> headway::UserId {
    headway::UserId::new(id).unwrap()
}
