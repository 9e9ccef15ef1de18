//! Times from outside this device are bounded by its clock (issue 17, fault 7): a time more
//! than a day ahead, from a peer's file, a live exchange or the server, is dropped from its item
//! before it reaches the table, status and progress kept, so it never freezes a register, and
//! devices whose clocks disagree still converge in status and progress.
#![cfg(test)]

mod support;

use headway::{
    ContentItem, ContentState, Progress, ProgressUpdate, Status, Store, Timestamp, UserId,
};
use support::{exchange, key, user_id, Rng, TempDir};

const USER: &str = "learner-1";
const DAY: i64 = 86_400_000;

fn year_9999() -> Timestamp {
    Timestamp::parse_rfc3339("9999-01-01T00:00:00Z").unwrap()
}

/// An update as a device whose clock reads `clock` records it: consumed at `clock`.
fn recorded_at(content: &str, status: Status, progress: i64, clock: Timestamp) -> ProgressUpdate {
    ProgressUpdate::new(key(USER, content), status, progress)
        .unwrap()
        .consumed_at_checked(clock, clock)
        .unwrap()
}

/// True when no time the store holds for the learner lies more than a day after now.
fn no_time_past_tomorrow(store: &Store) -> bool {
    let now = Timestamp::now();
    store
        .items(&user_id(USER), None)
        .unwrap()
        .iter()
        .all(|item| {
            [
                item.state().last_access_time(),
                item.state().last_completed_time(),
            ]
            .into_iter()
            .flatten()
            .all(|t| t.not_after_tomorrow(now).is_ok())
        })
}

/// Each item's (status, progress) as `store` holds it.
fn standing(store: &Store) -> Vec<(String, Status, u8)> {
    store
        .items(&user_id(USER), None)
        .unwrap()
        .into_iter()
        .map(|item| {
            let s = item.state();
            (
                item.key().content().to_string(),
                s.status(),
                s.progress().get(),
            )
        })
        .collect()
}

/// A later real access on `store` is recorded, reported as a change, and read back.
fn a_later_access_counts(store: &Store) {
    let later = ProgressUpdate::new(key(USER, "do_1"), Status::InProgress, 40).unwrap();
    let at = later.state().last_access_time();
    let change = store.record(later).unwrap();
    assert!(
        change.is_some(),
        "a real access after a far-future one reported unchanged"
    );
    assert_eq!(
        store
            .state(&key(USER, "do_1"))
            .unwrap()
            .unwrap()
            .last_access_time(),
        at
    );
    // Folding into the document (which may still hold the peer's far-future value) and
    // compacting it do not bring the far-future time back into the table.
    store.flush(&user_id(USER)).unwrap();
    assert_eq!(
        store
            .state(&key(USER, "do_1"))
            .unwrap()
            .unwrap()
            .last_access_time(),
        at
    );
    store.compact(&user_id(USER)).unwrap();
    assert_eq!(
        store
            .state(&key(USER, "do_1"))
            .unwrap()
            .unwrap()
            .last_access_time(),
        at
    );
    // The compaction rebuilt the document from the table: the far-future time is gone there too.
    assert_eq!(
        store.document_items(&user_id(USER)).unwrap(),
        store.items(&user_id(USER), None).unwrap()
    );
}

/// A device whose clock reads year 9999 recorded do_1 as 40% in progress.
fn a_device_in_year_9999(dir: &TempDir) -> Store {
    let wrong = Store::open(dir.file("wrong-clock.db")).unwrap();
    wrong
        .record(recorded_at("do_1", Status::InProgress, 40, year_9999()))
        .unwrap();
    wrong
}

// Issue 17, fault 7: a peer's year-9999 time stayed for good and later accesses were "unchanged".
#[test]
fn a_year_9999_time_in_a_peer_file_is_dropped_and_later_accesses_still_count() {
    let dir = TempDir::new("future-file");
    let wrong = a_device_in_year_9999(&dir);
    let file = wrong.peer_export(&user_id(USER), None).unwrap();
    let phone = Store::open(dir.file("phone.db")).unwrap();
    phone.peer_import(&user_id(USER), &file).unwrap();
    let held = phone.state(&key(USER, "do_1")).unwrap().unwrap();
    assert_eq!(
        (held.status(), held.progress().get()),
        (Status::InProgress, 40)
    );
    assert_eq!(
        held.last_access_time(),
        None,
        "the year-9999 time reached the table"
    );
    a_later_access_counts(&phone);
}

// Issue 17, fault 7, through a live exchange, in both roles.
#[test]
fn a_year_9999_time_in_a_live_exchange_is_dropped_and_later_accesses_still_count() {
    for wrong_starts in [true, false] {
        let dir = TempDir::new("future-live");
        let wrong = a_device_in_year_9999(&dir);
        let phone = Store::open(dir.file("phone.db")).unwrap();
        phone
            .record(recorded_at(
                "do_2",
                Status::Completed,
                100,
                Timestamp::now(),
            ))
            .unwrap();
        if wrong_starts {
            exchange(&wrong, &phone, USER).unwrap();
        } else {
            exchange(&phone, &wrong, USER).unwrap();
        }
        let held = phone.state(&key(USER, "do_1")).unwrap().unwrap();
        assert_eq!(
            (held.status(), held.progress().get()),
            (Status::InProgress, 40)
        );
        assert!(
            no_time_past_tomorrow(&phone),
            "{:?}",
            phone.items(&user_id(USER), None)
        );
        a_later_access_counts(&phone);
        // And the next exchange does not bring it back.
        exchange(&phone, &wrong, USER).unwrap();
        assert!(no_time_past_tomorrow(&phone));
        assert_eq!(standing(&phone), standing(&wrong));
    }
}

// Issue 17, fault 7: the server's year-9999 time froze the register.
#[test]
fn a_year_9999_time_from_the_server_is_dropped_and_what_the_server_holds_is_kept() {
    let dir = TempDir::new("future-server");
    let phone = Store::open(dir.file("phone.db")).unwrap();
    let on_server = ContentState::new(
        Status::InProgress,
        Progress::new(40).unwrap(),
        Some(year_9999()),
        None,
    );
    let changes = phone
        .merge_server_states(&[ContentItem::new(key(USER, "do_1"), on_server)])
        .unwrap();
    assert_eq!(changes.len(), 1);
    let held = phone.state(&key(USER, "do_1")).unwrap().unwrap();
    assert_eq!(
        (
            held.status(),
            held.progress().get(),
            held.last_access_time()
        ),
        (Status::InProgress, 40, None)
    );
    // The server holds at least this: nothing to send.
    assert!(phone.pending(&user_id(USER)).unwrap().is_empty());
    a_later_access_counts(&phone);
}

// Issue 17, fault 7: devices whose clocks disagree by a year still agree on status and progress.
#[test]
fn a_device_a_year_ahead_and_one_on_time_converge_in_status_and_progress() {
    let seed = support::test_seed();
    let mut rng = Rng::new(seed);
    let dir = TempDir::new("year-ahead");
    let ahead = Store::open(dir.file("ahead.db")).unwrap();
    let on_time = Store::open(dir.file("on-time.db")).unwrap();
    let now = Timestamp::now();
    let next_year = Timestamp::from_millis(now.as_millis() + 365 * DAY).unwrap();
    for round in 0..6 {
        for (store, clock) in [(&ahead, next_year), (&on_time, now)] {
            for _ in 0..5 {
                let content = format!("do_{}", rng.below(8));
                let status = Status::try_from(rng.below(3) as i64).unwrap();
                store
                    .record(recorded_at(&content, status, rng.below(101) as i64, clock))
                    .unwrap();
            }
        }
        // Alternate live exchanges and files, in both directions.
        if round % 2 == 0 {
            exchange(&ahead, &on_time, USER).unwrap();
        } else {
            let file = on_time.peer_export(&user_id(USER), None).unwrap();
            ahead.peer_import(&user_id(USER), &file).unwrap();
            let file = ahead.peer_export(&user_id(USER), None).unwrap();
            on_time.peer_import(&user_id(USER), &file).unwrap();
        }
        assert_eq!(
            standing(&ahead),
            standing(&on_time),
            "round {round}, HEADWAY_SEED={seed}"
        );
        assert!(no_time_past_tomorrow(&on_time), "round {round}");
    }
    let user: UserId = user_id(USER);
    assert!(!on_time.items(&user, None).unwrap().is_empty());
}
