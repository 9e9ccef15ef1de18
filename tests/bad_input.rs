//! Every validation rule of the progress model refuses bad input with a typed error and leaves
//! the store exactly as it was.
#![cfg(test)]

mod support;

use headway::{ContentKey, Error, Progress, ProgressUpdate, Status, Store, Timestamp};
use support::{update, user_id, TempDir};

const T0: i64 = 1_714_558_530_123;

/// Runs `attempt` against a store holding one state and checks the store did not change.
fn refused_and_unchanged(attempt: impl Fn(&Store) -> headway::Result<()>) -> Error {
    let dir = TempDir::new("bad");
    let path = dir.file("p.db");
    let store = Store::open(&path).unwrap();
    store.record(update("u", "k", 1, 50, T0)).unwrap();
    let before = store.items(&user_id("u"), None).unwrap();
    let pending_before = store.pending(&user_id("u")).unwrap();
    let error = attempt(&store).expect_err("bad input was accepted");
    assert!(error.is_invalid_input(), "{error:?} is not an input error");
    assert_eq!(store.items(&user_id("u"), None).unwrap(), before);
    assert_eq!(store.pending(&user_id("u")).unwrap(), pending_before);
    drop(store);
    assert_eq!(
        Store::open(&path)
            .unwrap()
            .items(&user_id("u"), None)
            .unwrap(),
        before
    );
    error
}

fn record(
    store: &Store,
    key: headway::Result<ContentKey>,
    status: i64,
    progress: i64,
) -> headway::Result<()> {
    let update = ProgressUpdate::new(key?, Status::try_from(status)?, progress)?;
    store.record(update).map(|_| ())
}

fn good_key() -> headway::Result<ContentKey> {
    ContentKey::new("u", "do_course", "0130000000000000001", "k")
}

#[test]
fn status_outside_0_to_2_is_refused() {
    for status in [-1, 3, 255, i64::MAX] {
        let e = refused_and_unchanged(|s| record(s, good_key(), status, 10));
        assert!(
            matches!(e, Error::StatusOutOfRange { status: got } if got == status),
            "{e:?}"
        );
    }
}

#[test]
fn progress_outside_0_to_100_is_refused() {
    for percent in [-1, 101, 256, i64::MIN] {
        let e = refused_and_unchanged(|s| record(s, good_key(), 1, percent));
        assert!(
            matches!(e, Error::ProgressOutOfRange { percent: got } if got == percent),
            "{e:?}"
        );
    }
    assert!(matches!(
        Progress::new(101),
        Err(Error::ProgressOutOfRange { percent: 101 })
    ));
}

#[test]
fn empty_ids_are_refused() {
    type MakeKey = fn() -> headway::Result<ContentKey>;
    let cases: [(&str, MakeKey); 5] = [
        ("user", || ContentKey::new("", "c", "b", "k")),
        ("course", || ContentKey::new("u", "", "b", "k")),
        ("batch", || ContentKey::new("u", "c", "", "k")),
        ("content", || ContentKey::new("u", "c", "b", "")),
        ("batch", || ContentKey::new("u", "c", "   ", "k")),
    ];
    for (field, key) in cases {
        let e = refused_and_unchanged(|s| record(s, key(), 1, 10));
        assert!(
            matches!(e, Error::InvalidId { field: f, .. } if f == field),
            "{e:?}"
        );
    }
}

#[test]
fn over_long_ids_are_refused() {
    let long = "x".repeat(headway::MAX_ID_LEN + 1);
    let e =
        refused_and_unchanged(|s| record(s, ContentKey::new("u", "c", "b", long.clone()), 1, 10));
    assert!(
        matches!(
            e,
            Error::InvalidId {
                field: "content",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(ContentKey::new("u", "c", "b", "x".repeat(headway::MAX_ID_LEN)).is_ok());
}

#[test]
fn ids_with_control_characters_are_refused() {
    for bad in [
        "a\nb",
        "a\u{0}b",
        "tab\there",
        "\u{7f}",
        "esc\u{1b}[0m",
        "unit\u{1f}sep",
    ] {
        let e = refused_and_unchanged(|s| record(s, ContentKey::new("u", bad, "b", "k"), 1, 10));
        assert!(
            matches!(
                e,
                Error::InvalidId {
                    field: "course",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn timestamps_before_2000_are_refused() {
    let e = refused_and_unchanged(|s| {
        let at = Timestamp::from_millis(946_684_799_999)?;
        s.record(ProgressUpdate::new(good_key()?, Status::InProgress, 10)?.consumed_at(at)?)
            .map(|_| ())
    });
    assert!(matches!(e, Error::TimestampOutOfRange { .. }), "{e:?}");
    assert!(Timestamp::from_millis(946_684_800_000).is_ok());
}

#[test]
fn timestamps_more_than_a_day_ahead_are_refused() {
    let e = refused_and_unchanged(|s| {
        let at = Timestamp::from_millis(Timestamp::now().as_millis() + 86_400_000 + 60_000)?;
        s.record(ProgressUpdate::new(good_key()?, Status::InProgress, 10)?.consumed_at(at)?)
            .map(|_| ())
    });
    assert!(matches!(e, Error::TimestampOutOfRange { .. }), "{e:?}");
    let soon = Timestamp::from_millis(Timestamp::now().as_millis() + 3_600_000).unwrap();
    assert!(
        ProgressUpdate::new(good_key().unwrap(), Status::InProgress, 1)
            .unwrap()
            .consumed_at(soon)
            .is_ok()
    );
}

#[test]
fn malformed_dates_are_refused() {
    let e = refused_and_unchanged(|s| {
        let at = Timestamp::parse_rfc3339("2024-05-01 10:15:30:123+0000")?;
        s.record(ProgressUpdate::new(good_key()?, Status::InProgress, 10)?.consumed_at(at)?)
            .map(|_| ())
    });
    assert!(matches!(e, Error::InvalidDate { .. }), "{e:?}");
}

/// Issue 9, fault 3: Sunbird trims ids, so an item in batch "bclosed " would be answered
/// under "bclosed" and could not be matched. Such ids are refused before anything is stored.
#[test]
fn ids_with_leading_or_trailing_white_space_are_refused() {
    for (user, course, batch, content) in [
        (" u", "do_course", "b", "k"),
        ("u", "do_course ", "b", "k"),
        ("u", "do_course", "bclosed ", "k"),
        ("u", "do_course", "\u{a0}b", "k"),
        ("u", "do_course", "b", "k\t"),
    ] {
        let e = refused_and_unchanged(|s| {
            record(s, ContentKey::new(user, course, batch, content), 2, 100)
        });
        assert!(matches!(e, Error::InvalidId { .. }), "{e:?}");
    }
}
