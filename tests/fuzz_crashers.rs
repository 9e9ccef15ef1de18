//! Every input that ever crashed (or hung) a fuzz target, replayed: each must now give a typed
//! error or a valid result, never a panic. Files live in `tests/fuzz-crashers/<target>/`. The
//! store-level target's runner is compiled in from `fuzz/src/store_ops.rs` and replays its
//! kept inputs and hand-written seeds with every property checked; so is the peer target's,
//! from `fuzz/src/peer_message.rs`, which drives peer sessions without a store.
#![cfg(test)]

mod support;

#[path = "../fuzz/src/peer_message.rs"]
mod peer_message;
#[path = "../fuzz/src/store_ops.rs"]
mod store_ops;

use std::path::PathBuf;

use headway::{Error, LearnerDocument, PeerMessage, Store};
use support::user_id;

/// Every kept input, as (target, file, bytes).
fn crashers() -> Vec<(String, PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-crashers");
    let mut all = Vec::new();
    for target in std::fs::read_dir(&root).unwrap() {
        let target = target.unwrap().path();
        let name = target.file_name().unwrap().to_string_lossy().to_string();
        for file in std::fs::read_dir(&target).unwrap() {
            let path = file.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            all.push((name.clone(), path, bytes));
        }
    }
    all.sort();
    all
}

#[test]
fn every_kept_crasher_now_gives_a_typed_error_or_a_valid_result() {
    let all = crashers();
    assert!(
        all.iter().any(|(target, _, _)| target == "load_document"),
        "the known automerge panic input is missing"
    );
    for (target, path, bytes) in all {
        match target.as_str() {
            "load_document" => {
                if let Err(e) = LearnerDocument::load(&user_id("learner-1"), &bytes, None) {
                    assert!(
                        matches!(e, Error::CorruptDocument { .. }),
                        "{}: {e:?}",
                        path.display()
                    );
                }
                let mut doc = LearnerDocument::new(&user_id("learner-1")).unwrap();
                let _ = doc.load_more(&bytes);
            }
            "peer_message" => {
                let store = Store::open_in_memory().unwrap();
                if let Err(e) = store.peer_import(&user_id("u"), &bytes) {
                    // The peer's bad bytes, never a damaged store of ours.
                    assert!(
                        matches!(e, Error::PeerMessage { .. }),
                        "{}: {e:?}",
                        path.display()
                    );
                }
                let _ = PeerMessage::decode(&bytes);
            }
            // Panics, printing the steps, if any property of the store target breaks.
            "store_ops" => store_ops::run(&bytes),
            other => panic!("{}: no replay for fuzz target {other}", path.display()),
        }
    }
}

#[test]
fn every_store_ops_seed_keeps_every_store_property() {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/store_ops");
    let mut count = 0;
    for file in std::fs::read_dir(&seeds).unwrap() {
        store_ops::run(&std::fs::read(file.unwrap().path()).unwrap());
        count += 1;
    }
    assert!(count >= 3, "the store_ops seeds are missing");
}

#[test]
fn every_peer_message_seed_and_kept_input_keeps_every_peer_property() {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/peer_message");
    let mut count = 0;
    for file in std::fs::read_dir(&seeds).unwrap() {
        peer_message::run(&std::fs::read(file.unwrap().path()).unwrap());
        count += 1;
    }
    assert!(count >= 3, "the peer_message seeds are missing");
    for (target, _, bytes) in crashers() {
        if target == "peer_message" {
            peer_message::run(&bytes);
        }
    }
}
