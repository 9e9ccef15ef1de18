//! The store on real SQLite files: reopening restores the exact state, stale updates change
//! nothing, learners are isolated, the document and the table agree through flushes and
//! compactions, and every change is announced once.
#![cfg(test)]

mod support;

use headway::{ChangeOrigin, Event, Status, Store, StoreOptions};
use support::{key, update, TempDir};

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
    let before = store.items("u", None).unwrap();
    let device = store.device_id().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.items("u", None).unwrap(), before);
    assert_eq!(store.document_items("u").unwrap(), before);
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
    assert_eq!(store.items("asha", None).unwrap().len(), 1);
    assert_eq!(
        store.items("ravi", None).unwrap()[0]
            .state()
            .progress()
            .get(),
        10
    );
    assert_eq!(store.document_items("ravi").unwrap().len(), 1);
    assert_eq!(
        store.learners().unwrap(),
        vec!["asha".to_string(), "ravi".to_string()]
    );
    let doc = headway::LearnerDocument::load("ravi", &store.save_document("ravi").unwrap(), None)
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
                store.document_items("u").unwrap(),
                store.items("u", None).unwrap()
            );
        }
    }
    store.compact("u").unwrap();
    assert_eq!(
        store.document_items("u").unwrap(),
        store.items("u", None).unwrap()
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
    let bytes = store.save_document("u").unwrap();
    let mut doc = headway::LearnerDocument::load("u", &bytes, None).unwrap();
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
    let items = a.items("u", None).unwrap();
    assert_eq!(b.items("u", None).unwrap(), items);
    assert_eq!(a.document_items("u").unwrap(), items);
    assert_eq!(b.document_items("u").unwrap(), items);
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
    assert_eq!(store.pending("u").unwrap().len(), 2);
}
