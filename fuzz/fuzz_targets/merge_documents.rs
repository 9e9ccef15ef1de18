//! Documents built from arbitrary operation sequences (raises on two or three replicas,
//! merges between them) obey the CRDT laws: merged in any order they agree, every register
//! reads the max of everything written to it, and no merge lowers a register.
#![no_main]

use std::collections::BTreeMap;

use headway::{ContentKey, ContentState, LearnerDocument, Progress, Status, Timestamp, UserId};
use libfuzzer_sys::fuzz_target;

const USER: &str = "learner-1";

fn key(k: u8) -> ContentKey {
    ContentKey::new(USER, "c", "b", format!("k{}", k % 6)).expect("valid key")
}

fn state(bytes: &[u8]) -> ContentState {
    let status = Status::try_from(i64::from(bytes[0] % 3)).expect("0..=2");
    let progress = Progress::new(i64::from(bytes[1] % 101)).expect("0..=100");
    let time = |b: u8| {
        (!b.is_multiple_of(4)).then(|| {
            Timestamp::from_millis(1_700_000_000_000 + i64::from(b) * 1_000).expect("valid")
        })
    };
    ContentState::new(status, progress, time(bytes[2]), time(bytes[3]))
}

fn user() -> UserId {
    UserId::new(USER).expect("the fuzz learner's id is valid")
}

fn copy(doc: &mut LearnerDocument) -> LearnerDocument {
    LearnerDocument::load(&user(), &doc.save(), None).expect("a saved document loads")
}

fuzz_target!(init: headway_fuzz::quiet_caught_panics(), |bytes: &[u8]| {
    headway_fuzz::abort_on_escaping_panic(|| {
        let Some((&n, ops)) = bytes.split_first() else {
            return;
        };
        let n = 2 + usize::from(n % 2);
        let mut docs: Vec<LearnerDocument> = (0..n)
            .map(|_| LearnerDocument::new(&user()).expect("new"))
            .collect();
        let mut model: BTreeMap<ContentKey, ContentState> = BTreeMap::new();
        for op in ops.chunks_exact(6) {
            let replica = usize::from(op[0]) % n;
            if op[1] % 5 == 0 {
                let from = usize::from(op[2]) % n;
                if from != replica {
                    let before = docs[replica].items();
                    let mut source = copy(&mut docs[from]);
                    docs[replica].merge(&mut source).expect("merge");
                    for item in before {
                        assert!(docs[replica]
                            .state(item.key())
                            .expect("kept")
                            .covers(item.state()));
                    }
                }
            } else {
                let k = key(op[1]);
                let s = state(&op[2..6]);
                let after = docs[replica].raise(&k, &s).expect("raise");
                assert!(after.covers(&s));
                let entry = model.entry(k).or_default();
                *entry = entry.merge(&s);
            }
        }
        let mut results = Vec::new();
        for first in 0..n {
            let mut merged = copy(&mut docs[first]);
            for other in (0..n).rev() {
                if other != first {
                    let mut source = copy(&mut docs[other]);
                    merged.merge(&mut source).expect("merge");
                }
            }
            results.push(merged.items());
        }
        let expected: Vec<_> = model
            .into_iter()
            .map(|(k, s)| headway::ContentItem::new(k, s))
            .collect();
        for items in results {
            assert_eq!(items, expected);
        }
    });
});
