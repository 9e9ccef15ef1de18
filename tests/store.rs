//! The store on real SQLite files: reopening restores the exact state, stale updates change
//! nothing, learners are isolated, the document and the table agree through flushes and
//! compactions, and every change is announced once.
#![cfg(test)]

mod support;

use headway::{ChangeOrigin, Event, Status, Store, StoreOptions};
use support::{key, update, user_id, TempDir};

const T0: i64 = 1_714_558_530_123;

#[test]
fn reopening_restores_the_exact_state() {
    let dir = TempDir::new("reopen");
    let path = dir.file("p.db");
    let store =
        Store::open_with(&path, StoreOptions::new().flush_after(3).compact_after(2)).unwrap();
    for i in 0..50 {
        store
            .record(update(
                "u",
                &format!("do_{}", i % 7),
                i % 3,
                i % 101,
                T0 + i,
            ))
            .unwrap();
    }
    let before = store.items(&user_id("u"), None).unwrap();
    let device = store.device_id().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.items(&user_id("u"), None).unwrap(), before);
    assert_eq!(store.document_items(&user_id("u")).unwrap(), before);
    assert_eq!(
        store.device_id().unwrap(),
        device,
        "the device id is stable"
    );
}

#[test]
fn progress_never_regresses_after_a_stale_update() {
    let store = Store::open_in_memory().unwrap();
    store.record(update("u", "k", 2, 100, T0)).unwrap();
    assert!(store
        .record(update("u", "k", 1, 40, T0 - 1000))
        .unwrap()
        .is_none());
    let state = store.state(&key("u", "k")).unwrap().unwrap();
    assert_eq!(
        (state.status(), state.progress().get()),
        (Status::Completed, 100)
    );
    // A later access time still raises that one field, and nothing else.
    let change = store
        .record(update("u", "k", 1, 40, T0 + 1000))
        .unwrap()
        .unwrap();
    assert_eq!(change.after.status(), Status::Completed);
    assert_eq!(
        change.after.last_access_time().unwrap().as_millis(),
        T0 + 1000
    );
}

#[test]
fn learners_on_one_device_are_isolated() {
    let dir = TempDir::new("isolated");
    let store = Store::open_with(dir.file("p.db"), StoreOptions::new().flush_after(1)).unwrap();
    store.record(update("asha", "k", 2, 100, T0)).unwrap();
    store.record(update("ravi", "k", 1, 10, T0)).unwrap();
    assert_eq!(store.items(&user_id("asha"), None).unwrap().len(), 1);
    assert_eq!(
        store.items(&user_id("ravi"), None).unwrap()[0]
            .state()
            .progress()
            .get(),
        10
    );
    assert_eq!(store.document_items(&user_id("ravi")).unwrap().len(), 1);
    assert_eq!(
        store.learners().unwrap(),
        vec!["asha".to_string(), "ravi".to_string()]
    );
    let doc = headway::LearnerDocument::load(
        &user_id("ravi"),
        &store.save_document(&user_id("ravi")).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(doc.items().len(), 1);
    assert_eq!(doc.items()[0].key().user(), "ravi");
}

#[test]
fn document_and_table_agree_through_flushes_and_compactions() {
    let dir = TempDir::new("agree");
    let store = Store::open_with(
        dir.file("p.db"),
        StoreOptions::new().flush_after(5).compact_after(3),
    )
    .unwrap();
    for i in 0..400 {
        store
            .record(update(
                "u",
                &format!("do_{}", i % 37),
                i % 3,
                (i * 7) % 101,
                T0 + i,
            ))
            .unwrap();
        if i % 53 == 0 {
            assert_eq!(
                store.document_items(&user_id("u")).unwrap(),
                store.items(&user_id("u"), None).unwrap()
            );
        }
    }
    store.compact(&user_id("u")).unwrap();
    assert_eq!(
        store.document_items(&user_id("u")).unwrap(),
        store.items(&user_id("u"), None).unwrap()
    );
}

#[test]
fn compaction_bounds_the_document_history() {
    let dir = TempDir::new("bounded");
    let path = dir.file("p.db");
    let store =
        Store::open_with(&path, StoreOptions::new().flush_after(10).compact_after(4)).unwrap();
    for i in 0..2_000 {
        store
            .record(update("u", &format!("do_{}", i % 20), 1, i % 101, T0 + i))
            .unwrap();
    }
    let bytes = store.save_document(&user_id("u")).unwrap();
    let mut doc = headway::LearnerDocument::load(&user_id("u"), &bytes, None).unwrap();
    // 2,000 updates in flushes of 10 would be 200 changes; compaction keeps at most a
    // snapshot and the changes of the current epoch.
    assert!(
        doc.change_count() <= 6,
        "{} changes kept",
        doc.change_count()
    );
}

#[test]
fn two_handles_on_one_file_see_each_others_records() {
    let dir = TempDir::new("handles");
    let path = dir.file("p.db");
    let options = StoreOptions::new().flush_after(2).compact_after(3);
    let a = Store::open_with(&path, options.clone()).unwrap();
    let b = Store::open_with(&path, options).unwrap();
    for i in 0..60 {
        let store = if i % 3 == 0 { &a } else { &b };
        store
            .record(update("u", &format!("do_{}", i % 9), i % 3, i, T0 + i))
            .unwrap();
    }
    let items = a.items(&user_id("u"), None).unwrap();
    assert_eq!(b.items(&user_id("u"), None).unwrap(), items);
    assert_eq!(a.document_items(&user_id("u")).unwrap(), items);
    assert_eq!(b.document_items(&user_id("u")).unwrap(), items);
}

#[test]
fn every_change_is_announced_once_with_old_and_new_state() {
    let store = Store::open_in_memory().unwrap();
    let events = store.subscribe();
    store.record(update("u", "k", 1, 30, T0)).unwrap();
    store.record(update("u", "k", 1, 20, T0 - 5)).unwrap(); // stale: no event
    store.record(update("u", "k", 2, 100, T0 + 5)).unwrap();
    let seen = events.drain();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let Event::ContentStateChanged(first) = &seen[0] else {
        panic!("{seen:?}")
    };
    let Event::ContentStateChanged(second) = &seen[1] else {
        panic!("{seen:?}")
    };
    assert_eq!(first.before, None);
    assert_eq!(first.after.progress().get(), 30);
    assert_eq!(second.before, Some(first.after));
    assert_eq!(second.after.status(), Status::Completed);
    assert_eq!(second.origin, ChangeOrigin::Local);
}

#[test]
fn a_batch_is_recorded_in_one_transaction_and_reports_each_update() {
    let store = Store::open_in_memory().unwrap();
    let changes = store
        .record_batch(vec![
            update("u", "a", 1, 10, T0),
            update("u", "a", 1, 5, T0 - 1),
            update("u", "b", 2, 100, T0),
        ])
        .unwrap();
    assert!(changes[0].is_some());
    assert!(changes[1].is_none());
    assert!(changes[2].is_some());
    assert_eq!(store.pending(&user_id("u")).unwrap().len(), 2);
}

/// Issue 9, suspected: the vacuum and checkpoint after a compaction are housekeeping; a reader
/// holding the file open must not turn a committed compaction into an error.
#[test]
fn a_compaction_with_a_reader_open_succeeds() {
    let dir = TempDir::new("compact-reader");
    let path = dir.file("p.db");
    let store = Store::open(&path).unwrap();
    for i in 0..50 {
        store
            .record(update("u", &format!("k{i}"), 1, 10, T0 + i))
            .unwrap();
    }
    store.flush(&user_id("u")).unwrap();
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM content_state", [], |r| r.get(0))
        .unwrap();
    let started = std::time::Instant::now();
    store.compact(&user_id("u")).unwrap();
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(store.items(&user_id("u"), None).unwrap().len(), 50);
    // It does not wait out the busy timeout (10 s) for the reader to go.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Issue 9, suspected: events were published after the store's lock was released, so two
/// threads could deliver them out of commit order. Each event's `before` must be the previous
/// event's `after` for the same content.
#[test]
fn events_arrive_in_commit_order_when_threads_record_at_once() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let dir = TempDir::new("event-order");
    let store = Store::open_with(
        dir.file("p.db"),
        headway::StoreOptions::new().durability(headway::Durability::ProcessCrash),
    )
    .unwrap();
    let events = store.subscribe();
    let clock = AtomicI64::new(T0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..300 {
                    let at = clock.fetch_add(1, Ordering::SeqCst);
                    store.record(update("u", "k", 1, 10, at)).unwrap();
                }
            });
        }
    });
    let mut last = None;
    let mut seen = 0;
    for event in events.drain() {
        if let headway::Event::ContentStateChanged(change) = event {
            assert_eq!(change.before, last, "event {seen} is out of commit order");
            last = Some(change.after);
            seen += 1;
        }
    }
    assert!(seen > 0);
    assert_eq!(last, store.state(&key("u", "k")).unwrap());
}

/// Issue 10: a subscriber that does not keep up cannot grow memory without bound. Its queue
/// keeps the newest events; it reads one `Lagged` marker with the number dropped, then the
/// newest events in commit order, then new events as usual.
#[test]
fn a_slow_subscriber_loses_the_oldest_events_and_is_told_how_many() {
    let store = Store::open_in_memory().unwrap();
    let events = store.subscribe_with_capacity(100);
    let updates = (0..1_000)
        .map(|i| update("u", &format!("do_{i:04}"), 1, 10, T0 + i))
        .collect();
    store.record_batch(updates).unwrap();
    let seen = events.drain();
    assert_eq!(seen.len(), 101, "the marker and the 100 newest");
    assert_eq!(seen[0], Event::Lagged { missed: 900 });
    let contents: Vec<String> = seen[1..]
        .iter()
        .map(|e| match e {
            Event::ContentStateChanged(change) => change.key.content().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    let newest: Vec<String> = (900..1_000).map(|i| format!("do_{i:04}")).collect();
    assert_eq!(contents, newest);
    store
        .record(update("u", "do_0000", 2, 100, T0 + 5_000))
        .unwrap();
    assert!(matches!(
        events.drain().as_slice(),
        [Event::ContentStateChanged(change)] if change.key.content() == "do_0000"
    ));
}

/// Issue 10: an async subscriber waits for the next event without polling, and wakes when
/// another thread commits one.
#[test]
fn an_async_subscriber_wakes_when_another_thread_records() {
    let store = std::sync::Arc::new(Store::open_in_memory().unwrap());
    let events = store.subscribe();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let recorder = {
        let store = std::sync::Arc::clone(&store);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            store.record(update("u", "do_1", 1, 30, T0)).unwrap();
        })
    };
    let event = runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await
    });
    recorder.join().unwrap();
    assert!(
        matches!(&event, Ok(Event::ContentStateChanged(change)) if change.after.progress().get() == 30),
        "{event:?}"
    );
}

/// Answers every push with one rejection per item: the reason listed for its content id, or
/// else one of the kind its content id names (`dropped`, `closed`, a refusal for any other)
/// with the text "server text for <id>".
struct Refusing(Vec<(&'static str, headway::RejectionReason)>);

impl Refusing {
    /// Every reason from the content id's name.
    fn by_name() -> Refusing {
        Refusing(Vec::new())
    }
}

#[async_trait::async_trait]
impl headway::Adapter for Refusing {
    async fn push(&self, _: &headway::UserId, items: &[headway::Outgoing]) -> headway::PushReport {
        use headway::{ItemOutcome, RejectionReason};
        let outcomes = items
            .iter()
            .map(|out| {
                let content = out.item.key().content().as_str();
                let listed = self.0.iter().find(|(c, _)| *c == content);
                let text = format!("server text for {content}");
                let reason = match (listed, content) {
                    (Some((_, reason)), _) => reason.clone(),
                    (None, "dropped") => RejectionReason::DroppedByServer { text },
                    (None, "closed") => RejectionReason::BatchNotOngoing { text },
                    (None, _) => RejectionReason::RefusedByServer { text },
                };
                (out.item.key().clone(), ItemOutcome::Rejected { reason })
            })
            .collect();
        headway::PushReport {
            outcomes,
            requests: 1,
            ..headway::PushReport::default()
        }
    }
    async fn read_states(
        &self,
        _: &headway::UserId,
        _: &headway::CourseId,
        _: &headway::BatchId,
    ) -> Result<Vec<headway::ContentItem>, headway::AdapterError> {
        Ok(vec![])
    }
    async fn enrolled_courses(
        &self,
        _: &headway::UserId,
    ) -> Result<Vec<headway::EnrolledCourse>, headway::AdapterError> {
        Ok(vec![])
    }
}

/// Refuses every item for a closed batch, after the learner went on to 60% on `do_1` on the
/// device while the push was in flight.
struct RefusesWhileTheLearnerGoesOn(std::sync::Arc<Store>);

#[async_trait::async_trait]
impl headway::Adapter for RefusesWhileTheLearnerGoesOn {
    async fn push(&self, _: &headway::UserId, items: &[headway::Outgoing]) -> headway::PushReport {
        self.0.record(update("u", "do_1", 1, 60, T0 + 1)).unwrap();
        let reason = headway::RejectionReason::BatchNotOngoing {
            text: "NOT_A_ON_GOING_BATCH".into(),
        };
        headway::PushReport::all(items, headway::ItemOutcome::Rejected { reason })
    }
    async fn read_states(
        &self,
        _: &headway::UserId,
        _: &headway::CourseId,
        _: &headway::BatchId,
    ) -> Result<Vec<headway::ContentItem>, headway::AdapterError> {
        Ok(vec![])
    }
    async fn enrolled_courses(
        &self,
        _: &headway::UserId,
    ) -> Result<Vec<headway::EnrolledCourse>, headway::AdapterError> {
        Ok(vec![])
    }
}

/// Issue 18: a sync's rejected item carries the state the server refused (40%), not the one
/// the device holds by the time the report is read (60%); the higher state is pending again.
#[test]
fn a_rejected_item_reports_the_state_that_was_refused_after_the_learner_went_on() {
    let store = std::sync::Arc::new(Store::open_in_memory().unwrap());
    store.record(update("u", "do_1", 1, 40, T0)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let adapter = RefusesWhileTheLearnerGoesOn(store.clone());
    let report = runtime
        .block_on(store.sync(&user_id("u"), &adapter, &headway::SyncOptions::new()))
        .unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].state.progress().get(), 40);
    let now = store.state(&key("u", "do_1")).unwrap().unwrap();
    assert_eq!(now.progress().get(), 60);
    assert!(store.rejected(&user_id("u")).unwrap().is_empty());
    assert_eq!(store.pending(&user_id("u")).unwrap().len(), 1);
}

/// Cannot reach the server; notes the items handed to it and whether another connection on
/// the store's file saw a commit between its creation and the push (`PRAGMA data_version`).
struct UnreachableWatchingTheFile {
    watcher: std::sync::Mutex<rusqlite::Connection>,
    version_before: i64,
    seen: std::sync::Mutex<Option<(Vec<String>, i64)>>,
}

impl UnreachableWatchingTheFile {
    fn new(path: &std::path::Path) -> UnreachableWatchingTheFile {
        let watcher = rusqlite::Connection::open(path).unwrap();
        let version_before = watcher
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .unwrap();
        UnreachableWatchingTheFile {
            watcher: std::sync::Mutex::new(watcher),
            version_before,
            seen: std::sync::Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl headway::Adapter for UnreachableWatchingTheFile {
    async fn push(&self, _: &headway::UserId, items: &[headway::Outgoing]) -> headway::PushReport {
        let version: i64 = self
            .watcher
            .lock()
            .unwrap()
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .unwrap();
        let sent = items
            .iter()
            .map(|out| out.item.key().content().to_string())
            .collect();
        *self.seen.lock().unwrap() = Some((sent, version));
        let cause = headway::RetryCause::Network {
            detail: "cannot connect".into(),
        };
        headway::PushReport::all(items, headway::ItemOutcome::Retry { cause })
    }
    async fn read_states(
        &self,
        _: &headway::UserId,
        _: &headway::CourseId,
        _: &headway::BatchId,
    ) -> Result<Vec<headway::ContentItem>, headway::AdapterError> {
        Ok(vec![])
    }
    async fn enrolled_courses(
        &self,
        _: &headway::UserId,
    ) -> Result<Vec<headway::EnrolledCourse>, headway::AdapterError> {
        Ok(vec![])
    }
}

/// Issue 18: an item the server dropped is a retry state of its row. The next sync sends it
/// again without first rewriting the learner's rows (each sync used to start with a pass that
/// cleared every drop), and until the server answers otherwise it stays listed as rejected.
#[test]
fn a_dropped_item_is_sent_again_by_the_next_sync_with_no_write_before_the_push() {
    let dir = TempDir::new("dropped");
    let path = dir.file("p.db");
    assert_eq!(rejected_by_one_sync(&path, &["dropped", "closed"]), 2);
    let store = Store::open(&path).unwrap();
    let user = user_id("u");
    assert!(store.pending(&user).unwrap().is_empty());
    let adapter = UnreachableWatchingTheFile::new(&path);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(store.sync(&user, &adapter, &headway::SyncOptions::new()))
        .unwrap();
    let (sent, version) = adapter.seen.lock().unwrap().take().unwrap();
    assert_eq!(
        sent,
        ["dropped"],
        "the drop is resent, the closed batch is not"
    );
    assert_eq!(
        version, adapter.version_before,
        "nothing was written before the push"
    );
    assert_eq!((report.sent, report.retrying.len()), (1, 1));
    let rejected: Vec<String> = store
        .rejected(&user)
        .unwrap()
        .iter()
        .map(|(item, _)| item.key().content().to_string())
        .collect();
    assert_eq!(rejected, ["closed", "dropped"]);
}

/// Records learner `u`'s `contents` in a store at `path` and syncs once with [`Refusing`];
/// returns how many items it rejected.
fn rejected_by_one_sync(path: &std::path::Path, contents: &[&str]) -> usize {
    let store = Store::open(path).unwrap();
    for content in contents {
        store.record(update("u", content, 1, 40, T0)).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = headway::SyncOptions::new().max_rounds(1);
    let report = runtime
        .block_on(store.sync(&user_id("u"), &Refusing::by_name(), &options))
        .unwrap();
    report.rejected.len()
}

/// The text in `column` of the content state row of `content`, read with plain SQLite.
fn stored_text(path: &std::path::Path, column: &str, content: &str) -> String {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            &format!("SELECT {column} FROM content_state WHERE content_id = ?1"),
            [content],
            |row| row.get(0),
        )
        .unwrap()
}

/// Rewrites a current store file (schema 5: `rejection` holds the kind, U+001E, the text)
/// into the layout of schema version 4: the text in `rejected_reason`, the kind in
/// `rejected_kind`.
fn downgrade_to_schema_4(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "ALTER TABLE content_state RENAME COLUMN rejection TO rejected_reason;
        ALTER TABLE content_state ADD COLUMN rejected_kind TEXT;
        UPDATE content_state
        SET rejected_kind = substr(rejected_reason, 1, instr(rejected_reason, char(30)) - 1),
            rejected_reason = substr(rejected_reason, instr(rejected_reason, char(30)) + 1)
        WHERE rejected_reason IS NOT NULL;
        PRAGMA user_version = 4;",
    )
    .unwrap();
}

/// Rewrites a current store file into the layout of schema version 3: no `rejected_kind`
/// column, and a dropped item marked by a prefix of its reason (what version 3 wrote).
fn downgrade_to_schema_3(path: &std::path::Path) {
    downgrade_to_schema_4(path);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "UPDATE content_state SET rejected_reason = char(30) || 'next-sync' || char(30) || rejected_reason
            WHERE rejected_kind = 'dropped';
        ALTER TABLE content_state DROP COLUMN rejected_kind;
        PRAGMA user_version = 3;",
    )
    .unwrap();
}

/// Schema 5 keeps a rejection's kind and text in one column (a row never rejected spends
/// nothing on the kind): a version 4 store, with a rejection of each kind, opens, keeps its
/// checksums and reads the same reasons, kinds included.
#[test]
fn a_version_4_store_with_rejections_of_every_kind_opens_and_reads_the_same_rejections() {
    let dir = TempDir::new("schema4");
    let path = dir.file("p.db");
    let user = user_id("u");
    assert_eq!(
        rejected_by_one_sync(&path, &["dropped", "closed", "bad", "ok"]),
        4
    );
    let (before, items_before) = {
        let store = Store::open(&path).unwrap();
        (
            store.rejected(&user).unwrap(),
            store.items(&user, None).unwrap(),
        )
    };
    assert_eq!(before.len(), 4, "{before:?}");
    downgrade_to_schema_4(&path);
    let kind = stored_text(&path, "rejected_kind", "closed");
    assert_eq!(
        kind, "batch_not_ongoing",
        "the downgrade wrote version 4's layout"
    );

    let store = Store::open(&path).unwrap();
    store.check_integrity().unwrap();
    assert_eq!(store.rejected(&user).unwrap(), before);
    assert_eq!(store.items(&user, None).unwrap(), items_before);
    drop(store);
    let columns: Vec<String> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT name FROM pragma_table_info('content_state')")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(columns.contains(&"rejection".to_string()), "{columns:?}");
    assert!(
        !columns.contains(&"rejected_kind".to_string()),
        "{columns:?}"
    );
}

/// Issue 10: rejection reasons are a kind plus the server's text, in their own column; a store
/// written by schema version 3 (reasons as text, a dropped item behind a prefix) opens,
/// keeps its checksums, reads the same texts and still resends the dropped item.
#[test]
fn a_version_3_store_with_a_prefixed_dropped_reason_opens_and_reads_the_same_rejections() {
    let dir = TempDir::new("schema3");
    let path = dir.file("p.db");
    let user = user_id("u");
    // Version 3 knew two kinds only: a refusal for good and a dropped item.
    assert_eq!(rejected_by_one_sync(&path, &["dropped", "bad"]), 2);
    let before: Vec<_> = {
        let store = Store::open(&path).unwrap();
        store.rejected(&user).unwrap()
    };
    downgrade_to_schema_3(&path);
    let prefixed = stored_text(&path, "rejected_reason", "dropped");
    assert_eq!(prefixed, "\u{1e}next-sync\u{1e}server text for dropped");

    let store = Store::open(&path).unwrap();
    store.check_integrity().unwrap();
    let after = store.rejected(&user).unwrap();
    let texts = |list: &[(headway::ContentItem, headway::RejectionReason)]| {
        list.iter()
            .map(|(item, reason)| (item.key().content().to_string(), reason.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        texts(&after),
        texts(&before),
        "the texts read back unchanged"
    );
    let dropped = after
        .iter()
        .find(|(item, _)| item.key().content() == "dropped")
        .map(|(_, reason)| reason.clone());
    assert_eq!(
        dropped,
        Some(headway::RejectionReason::DroppedByServer {
            text: "server text for dropped".into()
        })
    );
    // Version 3 knew no batch kinds: its other rejections read as refusals for good.
    assert!(after
        .iter()
        .filter(|(item, _)| item.key().content() != "dropped")
        .all(|(_, reason)| matches!(reason, headway::RejectionReason::RefusedByServer { .. })));
    // The dropped item is still sent again by the next sync; the refusals are not.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(store.sync(
            &user,
            &Refusing::by_name(),
            &headway::SyncOptions::new().max_rounds(1),
        ))
        .unwrap();
    let resent: Vec<_> = report
        .rejected
        .iter()
        .map(|r| r.key.content().to_string())
        .collect();
    assert_eq!(resent, ["dropped"]);
}

/// Issue 10: each kind of rejection is stored with the server's exact text and read back as
/// the same kind after a reopen.
#[test]
fn a_rejections_kind_and_server_text_survive_a_reopen() {
    let dir = TempDir::new("kinds");
    let path = dir.file("p.db");
    let user = user_id("u");
    let expected = |content: &str| {
        let text = format!("server text for {content}");
        match content {
            "dropped" => headway::RejectionReason::DroppedByServer { text },
            "closed" => headway::RejectionReason::BatchNotOngoing { text },
            _ => headway::RejectionReason::RefusedByServer { text },
        }
    };
    {
        let store = Store::open(&path).unwrap();
        for content in ["dropped", "closed", "bad"] {
            store.record(update("u", content, 1, 40, T0)).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(store.sync(
                &user,
                &Refusing::by_name(),
                &headway::SyncOptions::new().max_rounds(1),
            ))
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let rejected = store.rejected(&user).unwrap();
    assert_eq!(rejected.len(), 3);
    for (item, reason) in rejected {
        assert_eq!(reason, expected(item.key().content()));
    }
}

/// Issue 10: before ids were typed, a cached enrollment list could hold any string as a
/// course, batch or content id. A store holding such rows still answers: the course under a
/// refused id is left out (as an enrollment list leaves such an entry out now), a refused leaf
/// or `contentStatus` id is not listed, and everything else reads as before.
#[test]
fn courses_cached_under_ids_the_core_now_refuses_are_left_out_and_the_rest_still_reads() {
    use headway::{BatchId, ContentId, CourseId, EnrolledCourse};
    let dir = TempDir::new("legacy-course-ids");
    let path = dir.file("legacy.db");
    let store = Store::open(&path).unwrap();
    let (course, batch) = (CourseId::new("do_c").unwrap(), BatchId::new("b1").unwrap());
    let mut listed = EnrolledCourse::new(course.clone(), batch.clone(), 0);
    listed.leaf_nodes = Some(vec![ContentId::new("do_1").unwrap()]);
    store.cache_courses(&user_id("u"), &[listed]).unwrap();
    drop(store);
    // What an earlier version could write: a whole course under a blank id, a leaf and a
    // `contentStatus` entry under ids with white space around them.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        r#"INSERT INTO enrolled_course (user_id, course_id, batch_id, position, server_progress,
            leaf_nodes_count, batch_status, content_status, fields, fetched_at)
        VALUES ('u', ' ', 'b1', 1, 0, 1, NULL, '{}', '{"courseName":"blank"}', 0);
        INSERT INTO course_leaf (user_id, course_id, batch_id, content_id, status)
        VALUES ('u', 'do_c', 'b1', ' do_2', 0);
        UPDATE enrolled_course SET content_status = '{"do_1":2," do_2":1}'
        WHERE course_id = 'do_c';"#,
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&path).unwrap();
    let courses = store.courses(&user_id("u")).unwrap();
    assert_eq!(courses.len(), 1, "{courses:?}");
    assert_eq!(
        (&courses[0].course_id, &courses[0].batch_id),
        (&course, &batch)
    );
    assert_eq!(
        courses[0].leaf_nodes,
        Some(vec![ContentId::new("do_1").unwrap()])
    );
    let statuses: Vec<(&str, u8)> = courses[0]
        .content_status
        .iter()
        .map(|(id, status)| (id.as_str(), *status))
        .collect();
    assert_eq!(statuses, [("do_1", 2)]);
    // The leaf under the refused id still counts (it can never be completed, as no progress
    // can be recorded under that id), as it does in the course-progress events.
    assert_eq!(courses[0].leaf_nodes_count, 2);
}

/// Server texts an upgrade must carry byte for byte: empty, holding the separator U+001E (also
/// where version 3's marker would be), holding NUL, and long.
fn awkward_rejections() -> Vec<(&'static str, headway::RejectionReason)> {
    use headway::RejectionReason::*;
    let long = "x\u{1e}\0é".repeat(50_000);
    vec![
        (
            "empty",
            RefusedByServer {
                text: String::new(),
            },
        ),
        (
            "sep",
            BatchUnknown {
                text: "\u{1e}a\u{1e}\u{1e}".into(),
            },
        ),
        (
            "marker",
            RefusedByServer {
                text: "\u{1e}next-sync\u{1e}not dropped".into(),
            },
        ),
        (
            "nul",
            BatchNotOngoing {
                text: "before\0after".into(),
            },
        ),
        (
            "dropped_nul",
            DroppedByServer {
                text: "left\0out".into(),
            },
        ),
        (
            "dropped_sep",
            DroppedByServer {
                text: "\u{1e}dropped\u{1e}".into(),
            },
        ),
        ("long", RefusedByServer { text: long }),
    ]
}

/// Records one item per entry of `rejections` for learner `u` at `path`, syncs once with
/// [`Refusing`] and returns what the store then reads: its rejections and its items.
fn store_with_rejections(
    path: &std::path::Path,
    rejections: Vec<(&'static str, headway::RejectionReason)>,
) -> (
    Vec<(headway::ContentItem, headway::RejectionReason)>,
    Vec<headway::ContentItem>,
) {
    let store = Store::open(path).unwrap();
    for (content, _) in &rejections {
        store.record(update("u", content, 1, 40, T0)).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let adapter = Refusing(rejections.clone());
    let options = headway::SyncOptions::new().max_rounds(1);
    let report = runtime
        .block_on(store.sync(&user_id("u"), &adapter, &options))
        .unwrap();
    assert_eq!(report.rejected.len(), rejections.len());
    let user = user_id("u");
    let read = (
        store.rejected(&user).unwrap(),
        store.items(&user, None).unwrap(),
    );
    let reasons: Vec<_> = read.0.iter().map(|(_, r)| r.clone()).collect();
    for (_, reason) in &rejections {
        assert!(reasons.contains(reason), "schema 5 itself keeps {reason:?}");
    }
    read
}

/// [`downgrade_to_schema_4`] with the split done in Rust and bound as parameters: SQLite's
/// `substr` stops at a NUL, so the SQL one cannot carry texts holding one.
fn downgrade_to_schema_4_exactly(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "ALTER TABLE content_state RENAME COLUMN rejection TO rejected_reason;
        ALTER TABLE content_state ADD COLUMN rejected_kind TEXT;",
    )
    .unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT content_id, rejected_reason FROM content_state WHERE rejected_reason IS NOT NULL")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (content, stored) in rows {
        let (kind, text) = stored.split_once('\u{1e}').unwrap();
        conn.execute(
            "UPDATE content_state SET rejected_kind = ?1, rejected_reason = ?2 WHERE content_id = ?3",
            rusqlite::params![kind, text, content],
        )
        .unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 4;").unwrap();
}

/// Every server text, whatever bytes it holds, reads back the same after the version 4 to 5
/// upgrade, and every checksum still verifies.
#[test]
fn a_version_4_store_keeps_empty_long_and_separator_or_nul_holding_texts_through_the_upgrade() {
    let dir = TempDir::new("schema4-texts");
    let path = dir.file("p.db");
    let rejections: Vec<_> = awkward_rejections()
        .into_iter()
        .filter(|(c, _)| *c != "marker")
        .collect();
    let (before, items) = store_with_rejections(&path, rejections);
    downgrade_to_schema_4_exactly(&path);
    let store = Store::open(&path).unwrap();
    store.check_integrity().unwrap();
    let user = user_id("u");
    assert_eq!(store.rejected(&user).unwrap(), before);
    assert_eq!(store.items(&user, None).unwrap(), items);
}

/// A version 3 store's dropped item keeps its whole text through the upgrades, even when the
/// server's text holds a NUL (the text is kept exactly as it came, so it may).
#[test]
fn a_version_3_store_keeps_a_dropped_items_text_holding_nul_through_the_upgrades() {
    let dir = TempDir::new("schema3-nul");
    let path = dir.file("p.db");
    let rejections: Vec<_> = awkward_rejections()
        .into_iter()
        .filter(|(c, _)| matches!(*c, "dropped_nul" | "dropped_sep" | "empty"))
        .collect();
    let (before, items) = store_with_rejections(&path, rejections);
    downgrade_to_schema_4_exactly(&path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let dropped: Vec<(String, String)> = conn
        .prepare(
            "SELECT content_id, rejected_reason FROM content_state WHERE rejected_kind = 'dropped'",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(dropped.len(), 2);
    for (content, text) in dropped {
        conn.execute(
            "UPDATE content_state SET rejected_reason = ?1 WHERE content_id = ?2",
            rusqlite::params![format!("\u{1e}next-sync\u{1e}{text}"), content],
        )
        .unwrap();
    }
    conn.execute_batch(
        "ALTER TABLE content_state DROP COLUMN rejected_kind; PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let user = user_id("u");
    assert_eq!(store.rejected(&user).unwrap(), before);
    assert_eq!(store.items(&user, None).unwrap(), items);
}

/// A version 4 row holding a rejection's state and text but no kind (a damaged row) reads as
/// corrupt under version 4 and still does after the upgrade, but the upgrade must not erase
/// the server's text on the way: it is still in the file afterwards.
#[test]
fn a_version_4_rejection_without_a_kind_keeps_its_text_through_the_upgrade() {
    let dir = TempDir::new("schema4-nokind");
    let path = dir.file("p.db");
    assert_eq!(rejected_by_one_sync(&path, &["bad"]), 1);
    downgrade_to_schema_4(&path);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE content_state SET rejected_kind = NULL")
        .unwrap();
    let store = Store::open(&path).unwrap();
    let error = store.items(&user_id("u"), None).unwrap_err();
    assert!(error.is_corruption(), "{error:?}");
    drop(store);
    let kept: Option<String> = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT rejection FROM content_state", [], |row| row.get(0))
        .unwrap();
    assert!(
        kept.as_deref()
            .is_some_and(|k| k.ends_with("server text for bad")),
        "the upgrade erased the text: {kept:?}"
    );
}

/// The upgrade's steps run in one transaction: when the last one fails (here SQLite refuses to
/// drop `rejected_kind` while a view names it), the file keeps version 4's stamp, layout and
/// texts, and opens once the obstacle is gone.
#[test]
fn a_version_4_upgrade_that_fails_midway_leaves_the_file_as_it_was() {
    let dir = TempDir::new("schema4-interrupted");
    let path = dir.file("p.db");
    assert_eq!(rejected_by_one_sync(&path, &["bad", "dropped"]), 2);
    let user = user_id("u");
    let before = Store::open(&path).unwrap().rejected(&user).unwrap();
    // A row never rejected goes through the upgrade too.
    Store::open(&path)
        .unwrap()
        .record(update("u", "never", 1, 40, T0))
        .unwrap();
    downgrade_to_schema_4(&path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE VIEW kinds AS SELECT rejected_kind FROM content_state")
        .unwrap();
    drop(conn);
    assert!(Store::open(&path).is_err(), "the view blocks the upgrade");
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 4);
    assert_eq!(
        stored_text(&path, "rejected_reason", "bad"),
        "server text for bad"
    );
    assert_eq!(stored_text(&path, "rejected_kind", "dropped"), "dropped");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP VIEW kinds")
        .unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.rejected(&user).unwrap(), before);
    assert_eq!(store.items(&user, None).unwrap().len(), 3);
}

/// A file with version 4's tables but a damaged stamp saying 5 is refused, not read with the
/// kind column taken for the rejection, and left untouched.
#[test]
fn a_version_4_file_stamped_5_is_refused_and_left_untouched() {
    let dir = TempDir::new("schema4-stamped5");
    let path = dir.file("p.db");
    assert_eq!(rejected_by_one_sync(&path, &["bad"]), 1);
    downgrade_to_schema_4(&path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 5; PRAGMA journal_mode = DELETE;")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let error = Store::open(&path).map(|_| ()).unwrap_err();
    assert!(error.is_corruption(), "{error:?}");
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the refused file changed"
    );
}

/// Answers every push "held lower" with what was sent raised to a completion: more than was
/// sent.
struct ClaimsMoreThanSent;

#[async_trait::async_trait]
impl headway::Adapter for ClaimsMoreThanSent {
    async fn push(&self, _: &headway::UserId, items: &[headway::Outgoing]) -> headway::PushReport {
        let completed = headway::ContentState::new(
            Status::Completed,
            headway::Progress::new(100).unwrap(),
            None,
            None,
        );
        let outcomes = items
            .iter()
            .map(|out| {
                let held = out.item.state().merge(&completed);
                (
                    out.item.key().clone(),
                    headway::ItemOutcome::HeldLower { held },
                )
            })
            .collect();
        headway::PushReport {
            outcomes,
            ..headway::PushReport::default()
        }
    }
    async fn read_states(
        &self,
        _: &headway::UserId,
        _: &headway::CourseId,
        _: &headway::BatchId,
    ) -> Result<Vec<headway::ContentItem>, headway::AdapterError> {
        Ok(vec![])
    }
    async fn enrolled_courses(
        &self,
        _: &headway::UserId,
    ) -> Result<Vec<headway::EnrolledCourse>, headway::AdapterError> {
        Ok(vec![])
    }
}

/// Issue 18 (hostile review): an adapter's "held lower" above what was sent must not become
/// the server's state, or it covers the item and no sync ever sends it again.
#[test]
fn a_held_lower_answer_above_what_was_sent_leaves_the_item_pending() {
    let store = Store::open_in_memory().unwrap();
    store.record(update("u", "do_1", 1, 40, T0)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(store.sync(
            &user_id("u"),
            &ClaimsMoreThanSent,
            &headway::SyncOptions::new().max_rounds(1),
        ))
        .unwrap();
    let pending = store.pending(&user_id("u")).unwrap();
    assert_eq!(pending.len(), 1, "the item must still be sent");
    assert_eq!(pending[0].state().progress().get(), 40);
}

// Found by the Node package's worker-thread test: openers racing on a new file saw the
// schema half-made ("not a headway store (application id 0x0, 8 tables)") or a locked
// switch to WAL.
#[test]
fn four_handles_opening_one_new_file_at_the_same_instant_all_open_it() {
    let dir = TempDir::new("store-open-race");
    for round in 0..30 {
        let path = dir.path().join(format!("race-{round}.db"));
        let start = std::sync::Arc::new(std::sync::Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Store::open(&path).map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for opener in openers {
            let opened = opener.join().expect("the opener does not panic");
            assert_eq!(opened, Ok(()), "round {round}");
        }
    }
}
