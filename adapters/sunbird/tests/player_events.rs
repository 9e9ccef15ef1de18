//! The content player's START and END events, recorded from realistic fixtures of each player
//! kind (shapes from Sunbird's players): the derived updates follow Sunbird's progress
//! calculator, and malformed events give a typed error and record nothing.
#![cfg(test)]

use headway::{Error, ProgressUpdate, Status, Store};
use headway_sunbird::{CourseContext, Ignored, PlayerEventOutcome, RecordPlayerEvent};

const LEARNER: &str = "95e4942d-cbe8-477d-aebd-ad8e6de4bfc8";
const COURSE: &str = "do_11305961646828748812224";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/player/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn context(mime: &str, batch_status: Option<i64>) -> CourseContext {
    CourseContext {
        user_id: user_id(LEARNER),
        course_id: COURSE.try_into().unwrap(),
        batch_id: "01305961938705612812".try_into().unwrap(),
        batch_status,
        mime_type: Some(mime.into()),
    }
}

/// Records a fixture on a fresh store; returns the stored (status, progress) of its content.
fn recorded(name: &str, mime: &str) -> (Status, u8) {
    let store = Store::open_in_memory().unwrap();
    let outcome = store
        .record_player_event(&fixture(name), &context(mime, Some(1)))
        .unwrap();
    assert!(
        matches!(outcome, PlayerEventOutcome::Recorded(Some(_))),
        "{name}: {outcome:?}"
    );
    let items = store.items(&user_id(LEARNER), None).unwrap();
    assert_eq!(items.len(), 1, "{name}");
    let state = items[0].state();
    assert_eq!(
        state.last_access_time().map(|t| t.as_millis()),
        Some(1_714_558_530_123),
        "{name}: consumption time"
    );
    (state.status(), state.progress().get())
}

#[test]
fn end_events_of_each_player_kind_derive_sunbirds_progress() {
    let cases = [
        (
            "end_video_mp4_watched_to_the_end.json",
            "video/mp4",
            (Status::Completed, 100),
        ),
        (
            "end_video_mp4_30_percent_viewed.json",
            "video/mp4",
            (Status::Completed, 100),
        ),
        (
            "end_video_webm_10_percent_viewed.json",
            "video/webm",
            (Status::InProgress, 10),
        ),
        (
            "end_youtube_content_end.json",
            "video/x-youtube",
            (Status::Completed, 100),
        ),
        (
            "end_pdf_40_pages.json",
            "application/pdf",
            (Status::InProgress, 40),
        ),
        (
            "end_pdf_end_page_seen.json",
            "application/pdf",
            (Status::Completed, 100),
        ),
        (
            "end_epub_half.json",
            "application/epub",
            (Status::InProgress, 50),
        ),
        (
            "end_h5p_any_progress.json",
            "application/vnd.ekstep.h5p-archive",
            (Status::Completed, 100),
        ),
        (
            "end_html_any_progress.json",
            "application/vnd.ekstep.html-archive",
            (Status::Completed, 100),
        ),
        (
            "end_ecml_not_finished.json",
            "application/vnd.ekstep.ecml-archive",
            (Status::InProgress, 0),
        ),
        (
            "end_ecml_finished.json",
            "application/vnd.ekstep.ecml-archive",
            (Status::Completed, 100),
        ),
    ];
    for (name, mime, expected) in cases {
        assert_eq!(recorded(name, mime), expected, "{name}");
    }
}

#[test]
fn start_marks_a_new_content_in_progress_once() {
    let store = Store::open_in_memory().unwrap();
    let ctx = context("video/mp4", Some(1));
    let first = store
        .record_player_event(&fixture("start.json"), &ctx)
        .unwrap();
    assert!(
        matches!(first, PlayerEventOutcome::Recorded(Some(ref c)) if c.after.status() == Status::InProgress)
    );
    let again = store
        .record_player_event(&fixture("start.json"), &ctx)
        .unwrap();
    assert_eq!(again, PlayerEventOutcome::Ignored(Ignored::AlreadyStarted));
    // An END then completes it, and a replayed END changes nothing.
    let end = fixture("end_video_mp4_watched_to_the_end.json");
    assert!(matches!(
        store.record_player_event(&end, &ctx).unwrap(),
        PlayerEventOutcome::Recorded(Some(_))
    ));
    assert_eq!(
        store.record_player_event(&end, &ctx).unwrap(),
        PlayerEventOutcome::Ignored(Ignored::AlreadyCompleted)
    );
}

#[test]
fn well_formed_events_that_mean_nothing_are_ignored_with_a_reason() {
    let cases = [
        ("end_no_progress.json", Some(1), Ignored::NoProgress),
        (
            "end_of_the_course_itself.json",
            Some(1),
            Ignored::CourseEnded,
        ),
        (
            "end_not_from_the_player.json",
            Some(1),
            Ignored::NotFromThePlayer,
        ),
        (
            "interact.json",
            Some(1),
            Ignored::NotStartOrEnd {
                eid: "INTERACT".into(),
            },
        ),
        (
            "end_video_mp4_watched_to_the_end.json",
            Some(2),
            Ignored::BatchNotOngoing,
        ),
        (
            "end_video_mp4_watched_to_the_end.json",
            None,
            Ignored::BatchNotOngoing,
        ),
    ];
    for (name, batch_status, reason) in cases {
        let store = Store::open_in_memory().unwrap();
        let outcome = store
            .record_player_event(&fixture(name), &context("video/mp4", batch_status))
            .unwrap();
        assert_eq!(outcome, PlayerEventOutcome::Ignored(reason), "{name}");
        assert!(
            store.items(&user_id(LEARNER), None).unwrap().is_empty(),
            "{name} recorded something"
        );
    }
}

#[test]
fn malformed_events_give_a_typed_error_and_record_nothing() {
    for name in [
        "malformed_not_json.txt",
        "malformed_no_eid.json",
        "malformed_no_object.json",
        "malformed_summary_not_array.json",
        "malformed_other_learner.json",
        "malformed_ets_in_1990.json",
        "malformed_array.json",
    ] {
        let store = Store::open_in_memory().unwrap();
        let key =
            headway::ContentKey::new(LEARNER, COURSE, "01305961938705612812", "do_x").unwrap();
        store
            .record(ProgressUpdate::new(key, Status::InProgress, 10).unwrap())
            .unwrap();
        let before = store.items(&user_id(LEARNER), None).unwrap();
        let error = store
            .record_player_event(&fixture(name), &context("video/mp4", Some(1)))
            .expect_err(name);
        assert!(
            matches!(
                error,
                Error::InvalidTelemetry { .. } | Error::TimestampOutOfRange { .. }
            ),
            "{name}: {error:?}"
        );
        assert!(error.is_invalid_input(), "{name}");
        assert_eq!(
            store.items(&user_id(LEARNER), None).unwrap(),
            before,
            "{name} changed the store"
        );
    }
}

#[test]
fn a_lower_end_never_rolls_back_a_higher_state() {
    let store = Store::open_in_memory().unwrap();
    let ctx = context("application/pdf", Some(1));
    let key =
        headway::ContentKey::new(LEARNER, COURSE, "01305961938705612812", "do_pdf_1").unwrap();
    store
        .record(ProgressUpdate::new(key.clone(), Status::InProgress, 70).unwrap())
        .unwrap();
    // The fixture reports 40%: recorded as a no-op, progress stays 70.
    let outcome = store
        .record_player_event(&fixture("end_pdf_40_pages.json"), &ctx)
        .unwrap();
    assert!(matches!(outcome, PlayerEventOutcome::Recorded(_)));
    assert_eq!(store.state(&key).unwrap().unwrap().progress().get(), 70);
}

/// The learner `id`, validated (every id in these tests is valid).
fn user_id(id: &str) -> headway::UserId {
    headway::UserId::new(id).unwrap()
}
