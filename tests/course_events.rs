//! Review of issue 9 (hostile tester): course-progress events from `set_leaf_nodes` (and
//! `cache_courses`) are computed from a `before` read without the store's lock and published
//! after it is released, so they can reach a subscriber after, and behind, the events of a
//! record that committed in between: the app is told the course went *down*.
#![cfg(test)]

mod support;

use std::sync::Arc;

use headway::{EnrolledCourse, Event, Store};
use support::{update, user_id};

const COURSE: &str = "do_course";
const BATCH: &str = "0130000000000000001";

/// The course of these tests.
fn course() -> headway::CourseId {
    headway::CourseId::new(COURSE).unwrap()
}

/// The batch of these tests.
fn batch() -> headway::BatchId {
    headway::BatchId::new(BATCH).unwrap()
}

/// The course's leaves `do_0`, `do_1`, ...
fn leaves(count: usize) -> Vec<headway::ContentId> {
    (0..count)
        .map(|i| headway::ContentId::new(format!("do_{i}")).unwrap())
        .collect()
}

#[test]
fn course_progress_events_never_go_backwards_when_leaves_are_set_while_recording() {
    let leaves = leaves(200);
    for attempt in 0..150 {
        let store = Arc::new(Store::open_in_memory().unwrap());
        store
            .cache_courses(
                &user_id("u"),
                &[EnrolledCourse::new(course(), batch(), 200)],
            )
            .unwrap();
        store
            .set_leaf_nodes(&user_id("u"), &course(), &batch(), &leaves)
            .unwrap();
        let events = store.subscribe();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let recorder = {
            let store = Arc::clone(&store);
            let leaves = leaves.clone();
            std::thread::spawn(move || {
                for (i, leaf) in leaves.iter().enumerate() {
                    store
                        .record(update("u", leaf, 2, 100, 1_714_558_530_123 + i as i64))
                        .unwrap();
                }
            })
        };
        let setter = {
            let store = Arc::clone(&store);
            let leaves = leaves.clone();
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    store
                        .set_leaf_nodes(&user_id("u"), &course(), &batch(), &leaves)
                        .unwrap();
                }
            })
        };
        recorder.join().unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        setter.join().unwrap();
        let moves: Vec<(u32, u32)> = events
            .drain()
            .into_iter()
            .filter_map(|e| match e {
                Event::CourseProgressChanged(c) => Some((c.before, c.after)),
                _ => None,
            })
            .collect();
        let mut highest = 0;
        for (before, after) in &moves {
            assert!(
                *after >= highest,
                "attempt {attempt}: an event says the course went from {before}% to {after}% after \
                 one already said {highest}%: {moves:?}"
            );
            highest = *after;
        }
        let now = store.courses(&user_id("u")).unwrap()[0].completion_percentage;
        assert_eq!(
            highest, now,
            "attempt {attempt}: the last event is not the course's progress"
        );
    }
}

/// Each completed leaf that moves the course's percentage is announced with the percentage
/// `courses()` shows (single thread). The server listed no leaf count (0), the app supplied
/// the leaves: `courses()` counts them, but the events from `record` (`figures`) take 0 leaves
/// and announce 100% at the first completion.
#[test]
fn a_leaf_completion_announces_the_percentage_courses_shows_when_the_app_supplied_the_leaves() {
    let leaves = leaves(4);
    let store = Store::open_in_memory().unwrap();
    store
        .cache_courses(&user_id("u"), &[EnrolledCourse::new(course(), batch(), 0)])
        .unwrap();
    store
        .set_leaf_nodes(&user_id("u"), &course(), &batch(), &leaves)
        .unwrap();
    let events = store.subscribe();
    for (i, leaf) in leaves.iter().enumerate() {
        store
            .record(update("u", leaf, 2, 100, 1_714_558_530_123 + i as i64))
            .unwrap();
    }
    let moves: Vec<(u32, u32)> = events
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            Event::CourseProgressChanged(c) => Some((c.before, c.after)),
            _ => None,
        })
        .collect();
    assert_eq!(moves, vec![(0, 25), (25, 50), (50, 75), (75, 100)]);
}
