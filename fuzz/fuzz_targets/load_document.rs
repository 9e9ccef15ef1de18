//! Arbitrary bytes loaded as a learner's document, and applied as a store chunk on top of a
//! real document: a typed error, or a document that saves and loads back to the same content
//! states. Never a panic.
#![no_main]

use headway::{LearnerDocument, UserId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: headway_fuzz::quiet_caught_panics(), |bytes: &[u8]| {
    headway_fuzz::abort_on_escaping_panic(|| {
        let user = UserId::new("learner-1").expect("a valid id");
        if let Ok(mut doc) = LearnerDocument::load(&user, bytes, None) {
            let again = LearnerDocument::load(&user, &doc.save(), None)
                .expect("a saved document loads");
            assert_eq!(again.items(), doc.items());
        }
        // The same bytes as a chunk appended to a stored document.
        let mut doc = LearnerDocument::new(&user).expect("a new document");
        let before = doc.items();
        if doc.load_more(bytes).is_ok() {
            for item in &before {
                let now = doc.state(item.key()).expect("a state never disappears");
                assert!(now.covers(item.state()));
            }
        }
    });
});
