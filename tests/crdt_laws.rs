//! Property tests: the join of content states and the merge of learner documents are a
//! semilattice (commutative, associative, idempotent, monotone), and documents edited
//! concurrently converge to the max of everything written, whatever the merge order.
#![cfg(test)]

mod support;

use std::collections::BTreeMap;

use headway::{ContentKey, ContentState, LearnerDocument, Progress, Status, Timestamp};
use proptest::prelude::*;
use support::user_id;

const USER: &str = "learner-1";

fn timestamp() -> impl Strategy<Value = Option<Timestamp>> {
    prop_oneof![
        Just(None),
        (946_684_800_000i64..1_900_000_000_000).prop_map(|ms| Timestamp::from_millis(ms).ok()),
    ]
}

fn state() -> impl Strategy<Value = ContentState> {
    (0i64..=2, 0i64..=100, timestamp(), timestamp()).prop_map(|(s, p, a, c)| {
        ContentState::new(
            Status::try_from(s).unwrap(),
            Progress::new(p).unwrap(),
            a,
            c,
        )
    })
}

fn key(index: usize) -> ContentKey {
    ContentKey::new(USER, "do_course", "0130", format!("do_{index}")).unwrap()
}

#[derive(Clone, Debug)]
enum Op {
    Raise {
        doc: usize,
        key: usize,
        state: ContentState,
    },
    Merge {
        from: usize,
        into: usize,
    },
}

fn ops(docs: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0..docs, 0usize..4, state()).prop_map(|(doc, key, state)| Op::Raise { doc, key, state }),
        1 => (0..docs, 0..docs).prop_map(|(from, into)| Op::Merge { from, into }),
    ];
    proptest::collection::vec(op, 0..40)
}

fn copy(doc: &mut LearnerDocument) -> LearnerDocument {
    LearnerDocument::load(&user_id(USER), &doc.save(), None).unwrap()
}

fn every_order(n: usize) -> Vec<Vec<usize>> {
    if n == 2 {
        return vec![vec![0, 1], vec![1, 0]];
    }
    vec![
        vec![0, 1, 2],
        vec![0, 2, 1],
        vec![1, 0, 2],
        vec![1, 2, 0],
        vec![2, 0, 1],
        vec![2, 1, 0],
    ]
}

proptest! {
    #[test]
    fn state_merge_is_a_join(a in state(), b in state(), c in state()) {
        prop_assert_eq!(a.merge(&b), b.merge(&a));
        prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
        prop_assert_eq!(a.merge(&a), a);
        prop_assert!(a.merge(&b).covers(&a) && a.merge(&b).covers(&b));
        let m = a.merge(&b);
        prop_assert!(m.status() >= a.status() && m.status() >= b.status());
        prop_assert!(m.progress() >= a.progress() && m.progress() >= b.progress());
        prop_assert!(m.last_access_time() >= a.last_access_time());
        prop_assert!(m.last_completed_time() >= b.last_completed_time());
    }

    #[test]
    fn completed_state_always_has_progress_100(a in state(), b in state()) {
        let m = a.merge(&b);
        if m.status() == Status::Completed {
            prop_assert_eq!(m.progress(), Progress::COMPLETE);
        }
    }

    #[test]
    fn documents_merged_in_any_order_converge_to_the_max(n in 2usize..=3, ops in ops(3)) {
        let mut docs: Vec<LearnerDocument> =
            (0..n).map(|_| LearnerDocument::new(&user_id(USER)).unwrap()).collect();
        let mut model: BTreeMap<usize, ContentState> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Raise { doc, key: k, state } => {
                    let doc = doc % n;
                    let before = docs[doc].state(&key(k));
                    let after = docs[doc].raise(&key(k), &state).unwrap();
                    // Monotone: a write never lowers what this document read before.
                    prop_assert!(after.covers(&state));
                    if let Some(before) = before { prop_assert!(after.covers(&before)); }
                    let entry = model.entry(k).or_default();
                    *entry = entry.merge(&state);
                }
                Op::Merge { from, into } => {
                    let (from, into) = (from % n, into % n);
                    if from == into { continue; }
                    let before: Vec<_> = (0..4).map(|k| docs[into].state(&key(k))).collect();
                    let mut source = copy(&mut docs[from]);
                    docs[into].merge(&mut source).unwrap();
                    for (k, b) in before.into_iter().enumerate() {
                        if let Some(b) = b {
                            prop_assert!(docs[into].state(&key(k)).unwrap().covers(&b));
                        }
                    }
                }
            }
        }
        let expected: Vec<_> = model
            .iter()
            .map(|(k, s)| headway::ContentItem::new(key(*k), *s))
            .collect();
        let mut results = Vec::new();
        for order in every_order(n) {
            let mut merged = copy(&mut docs[order[0]]);
            for &i in &order[1..] {
                let mut other = copy(&mut docs[i]);
                merged.merge(&mut other).unwrap();
            }
            let mut items = merged.items();
            items.sort_by(|a, b| a.key().cmp(b.key()));
            results.push(items);
        }
        for items in &results {
            prop_assert_eq!(items, &expected);
        }
        // Merging a document into itself (idempotence) changes nothing.
        let mut again = copy(&mut docs[0]);
        let mut same = copy(&mut docs[0]);
        again.merge(&mut same).unwrap();
        prop_assert_eq!(again.items(), docs[0].items());
    }
}

#[test]
fn concurrent_creation_of_one_key_merges_to_the_max_of_every_field() {
    let t = |ms: i64| Some(Timestamp::from_millis(ms).unwrap());
    let k = key(7);
    let mut phone = LearnerDocument::new(&user_id(USER)).unwrap();
    let mut tablet = LearnerDocument::new(&user_id(USER)).unwrap();
    // Each side wins some fields: the phone has the higher status and access time, the
    // tablet the higher progress and completion time.
    let on_phone = ContentState::new(
        Status::InProgress,
        Progress::new(30).unwrap(),
        t(1_714_000_000_500),
        t(1_714_000_000_000),
    );
    let on_tablet = ContentState::new(
        Status::NotStarted,
        Progress::new(80).unwrap(),
        t(1_714_000_000_100),
        t(1_714_000_000_900),
    );
    phone.raise(&k, &on_phone).unwrap();
    tablet.raise(&k, &on_tablet).unwrap();
    let mut phone_copy = copy(&mut phone);
    let mut tablet_copy = copy(&mut tablet);
    phone.merge(&mut tablet_copy).unwrap();
    tablet.merge(&mut phone_copy).unwrap();
    let expected = ContentState::new(
        Status::InProgress,
        Progress::new(80).unwrap(),
        t(1_714_000_000_500),
        t(1_714_000_000_900),
    );
    assert_eq!(phone.state(&k), Some(expected));
    assert_eq!(tablet.state(&k), Some(expected));
}

#[test]
fn a_write_below_the_register_is_a_no_op() {
    let k = key(1);
    let mut doc = LearnerDocument::new(&user_id(USER)).unwrap();
    let high = ContentState::new(Status::Completed, Progress::COMPLETE, None, None);
    doc.raise(&k, &high).unwrap();
    doc.commit_change();
    let low = ContentState::new(Status::InProgress, Progress::new(10).unwrap(), None, None);
    assert_eq!(doc.raise(&k, &low).unwrap(), high);
    assert!(doc.commit_change().is_none(), "a stale write made a change");
}

#[test]
fn concurrent_raises_read_the_max_not_automerges_default_winner() {
    // Automerge's default winner is decided by actor id order, not by value; reading with
    // get_all and joining must give the max whichever actor wins.
    for round in 0..20 {
        let k = key(round);
        let mut a = LearnerDocument::new(&user_id(USER)).unwrap();
        let mut b = LearnerDocument::new(&user_id(USER)).unwrap();
        let lo = ContentState::new(Status::InProgress, Progress::new(10).unwrap(), None, None);
        let hi = ContentState::new(Status::InProgress, Progress::new(90).unwrap(), None, None);
        a.raise(&k, &lo).unwrap();
        b.raise(&k, &hi).unwrap();
        let mut b_copy = copy(&mut b);
        a.merge(&mut b_copy).unwrap();
        assert_eq!(a.state(&k), Some(hi));
    }
}
