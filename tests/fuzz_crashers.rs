//! Every input that ever crashed (or hung) a fuzz target, replayed: each must now give a typed
//! error or a valid result, never a panic. Files live in `tests/fuzz-crashers/<target>/`.
#![cfg(test)]

use std::path::PathBuf;

use headway::{Error, LearnerDocument, PeerMessage, Store};

fn crashers(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-crashers")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn load_document_crashers_give_a_typed_error() {
    let files = crashers("load_document");
    assert!(
        !files.is_empty(),
        "the known automerge panic input is missing"
    );
    for (path, bytes) in files {
        match LearnerDocument::load("learner-1", &bytes, None) {
            Ok(_) => {}
            Err(e) => assert!(
                matches!(e, Error::CorruptDocument { .. }),
                "{}: {e:?}",
                path.display()
            ),
        }
        let mut doc = LearnerDocument::new("learner-1").unwrap();
        let _ = doc.load_more(&bytes);
    }
}

#[test]
fn peer_message_crashers_change_nothing() {
    for (path, bytes) in crashers("peer_message") {
        let store = Store::open_in_memory().unwrap();
        let result = store.peer_import("u", &bytes);
        assert!(
            result.is_ok()
                || matches!(
                    result,
                    Err(Error::PeerMessage { .. } | Error::CorruptDocument { .. })
                ),
            "{}",
            path.display()
        );
        let _ = PeerMessage::decode(&bytes);
    }
}
