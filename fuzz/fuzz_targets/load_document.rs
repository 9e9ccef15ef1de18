//! Arbitrary bytes loaded as a learner's document: a typed error or a document that saves and
//! loads back to the same content states. Never a panic.
#![no_main]

use headway::LearnerDocument;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(mut doc) = LearnerDocument::load("learner-1", bytes, None) {
        let again = LearnerDocument::load("learner-1", &doc.save(), None)
            .expect("a saved document loads");
        assert_eq!(again.items(), doc.items());
    }
});
