//! Arbitrary operation sequences on two or three real store files of one learner: records,
//! flushes, compactions, restarts, file exports and imports, live exchanges that lose
//! messages. No field ever goes down, the document and the table agree after every fold, and
//! after a clean exchange every store holds the join of everything recorded (see
//! `headway_fuzz::store_ops`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: headway_fuzz::quiet_caught_panics(),
    |bytes: &[u8]| headway_fuzz::abort_on_escaping_panic(|| headway_fuzz::store_ops::run(bytes))
);
