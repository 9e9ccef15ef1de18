//! Arbitrary bytes from a peer: as a message and as frames to live sessions driven without a
//! store (on a `MemoryReplica`), and as an imported file. A typed error or an accepted
//! message; never a panic, never a content state going down, never another learner's data; a
//! device fed hostile bytes still converges with an honest one; the limits before a hello
//! accept nothing an exchange refuses (see `headway_fuzz::peer_message`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: headway_fuzz::quiet_caught_panics(),
    |bytes: &[u8]| headway_fuzz::abort_on_escaping_panic(|| headway_fuzz::peer_message::run(bytes))
);
