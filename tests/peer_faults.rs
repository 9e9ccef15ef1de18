//! Review of issue 9 (hostile tester): targeted reproductions of faults found by
//! `peer_stress`.
#![cfg(test)]

mod support;

use headway::{Error, PeerMessage, PeerSession, Role, Store};
use support::{exchange, peer_file, update, user_id, TempDir};

const T0: i64 = 1_714_558_530_123;

/// A `--since-peer` file from `a` to `b`, which share an epoch: `a` records `k1`, both hold
/// it, `a` learns what `b` holds, records `k2` (progress 40) and exports the changes since.
fn since_peer_changes_file(a: &Store, b: &Store) -> Vec<u8> {
    a.record(update("u", "k1", 1, 10, T0)).unwrap();
    b.peer_import(&user_id("u"), &a.peer_export(&user_id("u"), None).unwrap())
        .unwrap();
    // a learns what b holds (b's file), so a later `--since-peer b` file carries changes.
    a.peer_import(&user_id("u"), &b.peer_export(&user_id("u"), None).unwrap())
        .unwrap();
    let b_id = b.device_id().unwrap();
    a.record(update("u", "k2", 1, 40, T0 + 1)).unwrap();
    let file = a.peer_export(&user_id("u"), Some(&b_id)).unwrap();
    assert!(
        matches!(peer_file(&file).1, PeerMessage::Changes(_)),
        "the file carries changes only"
    );
    file
}

/// A `--since-peer` file whose base the receiver no longer holds (it compacted after the
/// sender last heard of it): its values reach the table, but its changes stay in the open
/// document waiting for dependencies that will never come.
fn stale_changes_file_imported(dir: &TempDir) -> (Store, Store, String) {
    let a = Store::open(dir.file("a.db")).unwrap();
    let b_path = dir.file("b.db");
    let b = Store::open(&b_path).unwrap();
    let stale = since_peer_changes_file(&a, &b);
    // b leaves the epoch before the file arrives.
    b.record(update("u", "k3", 1, 20, T0 + 2)).unwrap();
    b.compact(&user_id("u")).unwrap();
    b.peer_import(&user_id("u"), &stale).unwrap();
    assert_eq!(
        b.state(&support::key("u", "k2"))
            .unwrap()
            .map(|s| s.progress().get()),
        Some(40),
        "the stale file's value reached the table"
    );
    (a, b, b_path.to_string_lossy().into_owned())
}

/// Another handle on the same file (another process: the app and the CLI) writes a chunk; the
/// first handle, catching up, refuses its own in-memory document because of the orphaned
/// changes and the step fails: "N changes are missing their dependencies".
#[test]
fn a_stale_changes_file_does_not_make_the_next_step_fail_after_another_handle_wrote() {
    let dir = TempDir::new("review-orphan-handle");
    let (_a, b, b_path) = stale_changes_file_imported(&dir);
    let other = Store::open(&b_path).unwrap();
    other.record(update("u", "k4", 1, 50, T0 + 3)).unwrap();
    other.flush(&user_id("u")).unwrap();
    b.peer_export(&user_id("u"), None)
        .expect("export after another handle flushed");
}

/// The same, with the orphans still in memory when a live exchange runs with the sender.
#[test]
fn a_stale_changes_file_does_not_stop_the_next_live_exchange() {
    let dir = TempDir::new("review-orphan-live");
    let (a, b, _) = stale_changes_file_imported(&dir);
    a.record(update("u", "k5", 2, 100, T0 + 4)).unwrap();
    b.record(update("u", "k6", 1, 70, T0 + 5)).unwrap();
    exchange(&b, &a, "u").expect("b initiates");
    exchange(&a, &b, "u").expect("a initiates");
    assert_eq!(
        a.items(&user_id("u"), None).unwrap(),
        b.items(&user_id("u"), None).unwrap()
    );
}

/// The same stale file imported twice, then a flush and a compaction on the receiver.
#[test]
fn a_stale_changes_file_imported_twice_then_compacted_keeps_everything() {
    let dir = TempDir::new("review-orphan-twice");
    let a = Store::open(dir.file("a.db")).unwrap();
    let b = Store::open(dir.file("b.db")).unwrap();
    let stale = since_peer_changes_file(&a, &b);
    b.compact(&user_id("u")).unwrap();
    b.peer_import(&user_id("u"), &stale).unwrap();
    b.peer_import(&user_id("u"), &stale).unwrap();
    b.record(update("u", "k3", 1, 30, T0 + 2)).unwrap();
    b.flush(&user_id("u")).unwrap();
    b.compact(&user_id("u")).unwrap();
    let reopened = Store::open(dir.file("b.db")).unwrap();
    assert_eq!(reopened.items(&user_id("u"), None).unwrap().len(), 3);
    assert_eq!(
        reopened.document_items(&user_id("u")).unwrap(),
        reopened.items(&user_id("u"), None).unwrap()
    );
}

/// A live exchange during which both stores compact (the app's `BackgroundSync` compacts
/// automatically while `peer serve` answers on the same store): after the compactions both
/// stores are quiet, yet the exchange never settles. The peer keeps sending changes of the
/// epoch the session started in, which never apply to the new one, and asks for them again
/// until "the exchange did not settle" (64 rounds).
#[test]
fn a_live_exchange_settles_when_both_sides_compact_in_the_middle_of_it() {
    let mut failures = Vec::new();
    for at in 2..8 {
        let dir = TempDir::new("review-compact-mid");
        let a = Store::open(dir.file("a.db")).unwrap();
        let b = Store::open(dir.file("b.db")).unwrap();
        for i in 0..6 {
            a.record(update("u", &format!("do_{i}"), 1, 10 + i, T0 + i))
                .unwrap();
        }
        exchange(&a, &b, "u").unwrap();
        for i in 0..6 {
            a.record(update("u", &format!("do_{i}"), 1, 30 + i, T0 + 10 + i))
                .unwrap();
            b.record(update(
                "u",
                &format!("do_{}", i + 3),
                1,
                40 + i,
                T0 + 20 + i,
            ))
            .unwrap();
        }
        let mut initiator = PeerSession::new(&user_id("u"), Role::Initiator);
        let mut responder = PeerSession::new(&user_id("u"), Role::Responder);
        let mut outgoing = vec![initiator.start(&a).unwrap()];
        let mut delivered = 0;
        let outcome = (|| -> Result<(), Error> {
            while let Some(message) = outgoing.pop() {
                delivered += 1;
                if delivered == at {
                    a.compact(&user_id("u"))?;
                    b.compact(&user_id("u"))?;
                }
                for reply in responder.handle(&b, message)? {
                    outgoing.extend(initiator.handle(&a, reply)?);
                }
            }
            Ok(())
        })();
        match outcome {
            Ok(()) if initiator.is_finished() => {
                if a.items(&user_id("u"), None).unwrap() != b.items(&user_id("u"), None).unwrap() {
                    failures.push(format!("compacted before message {at}: did not converge"));
                }
            }
            Ok(()) => failures.push(format!("compacted before message {at}: not finished")),
            Err(e) => failures.push(format!("compacted before message {at}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
