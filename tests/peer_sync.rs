//! Device-to-device sync: two stores converge through a file and through a live exchange,
//! later exchanges send only what the peer lacks, a compaction on one side does not stop
//! convergence, and malformed or hostile peer bytes give a typed error and change nothing.
#![cfg(test)]

mod support;

use headway::{Error, PeerMessage, PeerSession, Role, Store, StoreOptions};
use support::{exchange, update, user_id, Rng, TempDir};

const T0: i64 = 1_714_558_530_123;

fn fill(store: &Store, user: &str, seed: u64, count: i64) {
    let mut rng = Rng::new(seed);
    for i in 0..count {
        let content = format!("do_{}", rng.below(60));
        let status = rng.below(3) as i64;
        store
            .record(update(
                user,
                &content,
                status,
                rng.below(101) as i64,
                T0 + i,
            ))
            .unwrap();
    }
}

#[test]
fn two_stores_converge_through_files_in_both_directions() {
    let dir = TempDir::new("file");
    let school = Store::open(dir.file("school.db")).unwrap();
    let phone = Store::open(dir.file("phone.db")).unwrap();
    fill(&school, "u", 1, 200);
    fill(&phone, "u", 2, 200);
    let to_phone = school.peer_export(&user_id("u"), None).unwrap();
    std::fs::write(dir.file("to-phone.hwp"), &to_phone).unwrap();
    phone
        .peer_import(
            &user_id("u"),
            &std::fs::read(dir.file("to-phone.hwp")).unwrap(),
        )
        .unwrap();
    let to_school = phone.peer_export(&user_id("u"), None).unwrap();
    school.peer_import(&user_id("u"), &to_school).unwrap();
    assert_eq!(
        phone.items(&user_id("u"), None).unwrap(),
        school.items(&user_id("u"), None).unwrap()
    );
    assert_eq!(
        phone.document_items(&user_id("u")).unwrap(),
        phone.items(&user_id("u"), None).unwrap()
    );
    assert_eq!(
        school.document_items(&user_id("u")).unwrap(),
        school.items(&user_id("u"), None).unwrap()
    );
}

#[test]
fn a_later_file_carries_only_what_the_peer_lacks() {
    let dir = TempDir::new("since");
    let school = Store::open(dir.file("school.db")).unwrap();
    let phone = Store::open(dir.file("phone.db")).unwrap();
    fill(&school, "u", 3, 300);
    // First contact: whole documents, both ways, so both know the other's heads.
    phone
        .peer_import(
            &user_id("u"),
            &school.peer_export(&user_id("u"), None).unwrap(),
        )
        .unwrap();
    school
        .peer_import(
            &user_id("u"),
            &phone.peer_export(&user_id("u"), None).unwrap(),
        )
        .unwrap();
    fill(&school, "u", 4, 20);
    let phone_id = phone.device_id().unwrap();
    let full = school.peer_export(&user_id("u"), None).unwrap();
    let delta = school.peer_export(&user_id("u"), Some(&phone_id)).unwrap();
    assert!(
        delta.len() * 2 < full.len(),
        "delta {} vs full {}",
        delta.len(),
        full.len()
    );
    phone.peer_import(&user_id("u"), &delta).unwrap();
    assert_eq!(
        phone.items(&user_id("u"), None).unwrap(),
        school.items(&user_id("u"), None).unwrap()
    );
}

#[test]
fn a_live_exchange_converges_and_the_next_sends_less() {
    let dir = TempDir::new("live");
    let phone = Store::open(dir.file("phone.db")).unwrap();
    let tablet = Store::open(dir.file("tablet.db")).unwrap();
    fill(&phone, "u", 5, 300);
    fill(&tablet, "u", 6, 300);
    let first = exchange(&phone, &tablet, "u").unwrap();
    assert_eq!(
        phone.items(&user_id("u"), None).unwrap(),
        tablet.items(&user_id("u"), None).unwrap()
    );
    let update_on_tablet = update("u", "do_new", 2, 100, T0 + 10_000);
    tablet.record(update_on_tablet).unwrap();
    let second = exchange(&phone, &tablet, "u").unwrap();
    assert_eq!(
        phone.items(&user_id("u"), None).unwrap(),
        tablet.items(&user_id("u"), None).unwrap()
    );
    assert!(
        second * 2 < first,
        "second exchange {second} bytes vs first {first}"
    );
    // Nothing new: the exchange is a few hellos and idles.
    let third = exchange(&tablet, &phone, "u").unwrap();
    assert!(third < 600, "{third} bytes to say nothing changed");
}

#[test]
fn devices_converge_after_one_side_compacts() {
    let dir = TempDir::new("compact");
    let options = StoreOptions::new().flush_after(10).compact_after(2);
    let phone = Store::open_with(dir.file("phone.db"), options.clone()).unwrap();
    let tablet = Store::open_with(dir.file("tablet.db"), options).unwrap();
    for round in 0..6 {
        fill(&phone, "u", 10 + round, 80);
        fill(&tablet, "u", 20 + round, 40);
        phone.compact(&user_id("u")).unwrap();
        if round % 2 == 0 {
            exchange(&phone, &tablet, "u").unwrap();
        } else {
            exchange(&tablet, &phone, "u").unwrap();
        }
        assert_eq!(
            phone.items(&user_id("u"), None).unwrap(),
            tablet.items(&user_id("u"), None).unwrap(),
            "round {round}"
        );
    }
    // History stays bounded on both sides.
    let mut doc = headway::LearnerDocument::load(
        &user_id("u"),
        &tablet.save_document(&user_id("u")).unwrap(),
        None,
    )
    .unwrap();
    assert!(doc.change_count() < 40, "{} changes", doc.change_count());
}

#[test]
fn malformed_or_hostile_peer_bytes_change_nothing() {
    let dir = TempDir::new("hostile");
    let phone = Store::open(dir.file("phone.db")).unwrap();
    let other = Store::open(dir.file("other.db")).unwrap();
    fill(&phone, "u", 7, 50);
    fill(&other, "someone-else", 8, 50);
    let before = phone.items(&user_id("u"), None).unwrap();
    let mut rng = Rng::new(support::test_seed());
    let good = other.peer_export(&user_id("u"), None).unwrap();
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"HWPS".to_vec(),
        good[..good.len() / 2].to_vec(),
        // A file of another learner's progress.
        other.peer_export(&user_id("someone-else"), None).unwrap(),
    ];
    for _ in 0..40 {
        let mut bytes = good.clone();
        let at = rng.below(bytes.len() as u64) as usize;
        bytes[at] ^= 1 << rng.below(8);
        inputs.push(bytes);
        inputs.push((0..rng.below(300)).map(|_| rng.next_u64() as u8).collect());
    }
    for input in inputs {
        match phone.peer_import(&user_id("u"), &input) {
            Ok(()) => {}
            // Refused as the peer's bad data: never as a damaged store (the app would be
            // told its own file is corrupt).
            Err(e) => assert!(matches!(e, Error::PeerMessage { .. }), "untyped {e:?}"),
        }
        // An accepted flip may only add a join of states that decoded; nothing goes down.
        for item in &before {
            let now = phone.state(item.key()).unwrap().unwrap();
            assert!(now.covers(item.state()));
        }
    }
    // Someone else's document never lands in this learner's.
    assert!(phone
        .items(&user_id("someone-else"), None)
        .unwrap()
        .is_empty());
    // A live session refuses a hello for another learner.
    let mut session = PeerSession::new(&user_id("u"), Role::Responder);
    let mut theirs = PeerSession::new(&user_id("someone-else"), Role::Initiator);
    let hello = theirs.start(&other).unwrap();
    assert!(matches!(
        session.handle(&phone, hello),
        Err(Error::PeerMessage { .. })
    ));
    // Random sync messages are refused.
    let mut session = PeerSession::new(&user_id("u"), Role::Responder);
    let mut initiator = PeerSession::new(&user_id("u"), Role::Initiator);
    session
        .handle(&phone, initiator.start(&other).unwrap())
        .unwrap();
    for _ in 0..20 {
        let junk: Vec<u8> = (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect();
        let _ = session.handle(&phone, PeerMessage::Sync(junk));
    }
    assert_eq!(phone.items(&user_id("u"), None).unwrap(), before);
}

/// Issue 9, fault 1: the scenario from the audit. A's later write of `k` has the higher Lamport
/// counter, so B's higher value arrives as a conflict, not as Automerge's visible winner. It
/// must still reach A's table, and a compaction afterwards must keep it.
fn a_value_that_loses_automerges_winner_arrives(via_live_exchange: bool) {
    let dir = TempDir::new("conflict");
    let a = Store::open(dir.file("a.db")).unwrap();
    let b = Store::open(dir.file("b.db")).unwrap();
    a.record(update("u", "k", 1, 10, T0)).unwrap();
    b.peer_import(&user_id("u"), &a.peer_export(&user_id("u"), None).unwrap())
        .unwrap();
    for other in ["o1", "o2", "o3", "o4"] {
        a.record(update("u", other, 1, 5, T0 + 1)).unwrap();
    }
    // Flushed apart, so that A's next write of `k` has a higher Lamport counter than B's.
    a.flush(&user_id("u")).unwrap();
    a.record(update("u", "k", 1, 30, T0 + 2)).unwrap();
    a.flush(&user_id("u")).unwrap();
    b.record(update("u", "k", 1, 60, T0 + 3)).unwrap();
    if via_live_exchange {
        exchange(&a, &b, "u").unwrap();
    } else {
        let from_a = a.peer_export(&user_id("u"), None).unwrap();
        a.peer_import(&user_id("u"), &b.peer_export(&user_id("u"), None).unwrap())
            .unwrap();
        b.peer_import(&user_id("u"), &from_a).unwrap();
    }
    for (name, store) in [("a", &a), ("b", &b)] {
        let k = store.state(&support::key("u", "k")).unwrap().unwrap();
        assert_eq!(k.progress().get(), 60, "{name}'s table");
        assert_eq!(
            store.document_items(&user_id("u")).unwrap(),
            store.items(&user_id("u"), None).unwrap(),
            "{name}'s document and table"
        );
        store.compact(&user_id("u")).unwrap();
        let k = store.state(&support::key("u", "k")).unwrap().unwrap();
        assert_eq!(k.progress().get(), 60, "{name} after compaction");
    }
}

#[test]
fn a_peers_higher_value_that_is_not_automerges_winner_reaches_the_table_through_a_file() {
    a_value_that_loses_automerges_winner_arrives(false);
}

#[test]
fn a_peers_higher_value_that_is_not_automerges_winner_reaches_the_table_live() {
    a_value_that_loses_automerges_winner_arrives(true);
}

/// Issue 9, fault 2: A leaves the epoch it shares with B (a compaction), then comes back to it
/// by adopting C's older copy from a file. The sync state A saved for B names changes A's
/// document no longer holds; the next live exchange must still settle and converge, started
/// from either side.
#[test]
fn a_saved_sync_state_for_a_re_entered_epoch_does_not_stop_live_sync() {
    for a_initiates in [true, false] {
        let dir = TempDir::new("reenter");
        let a = Store::open(dir.file("a.db")).unwrap();
        let b = Store::open(dir.file("b.db")).unwrap();
        let c = Store::open(dir.file("c.db")).unwrap();
        fill(&a, "u", 30, 40);
        exchange(&a, &b, "u").unwrap();
        c.peer_import(&user_id("u"), &a.peer_export(&user_id("u"), None).unwrap())
            .unwrap();
        for round in 0..3 {
            fill(&a, "u", 31 + round, 10);
            fill(&b, "u", 41 + round, 10);
            exchange(&a, &b, "u").unwrap();
        }
        a.compact(&user_id("u")).unwrap();
        fill(&a, "u", 50, 10);
        a.peer_import(&user_id("u"), &c.peer_export(&user_id("u"), None).unwrap())
            .unwrap();
        fill(&b, "u", 51, 10);
        let outcome = if a_initiates {
            exchange(&a, &b, "u")
        } else {
            exchange(&b, &a, "u")
        };
        outcome.unwrap_or_else(|e| panic!("a initiates: {a_initiates}: {e}"));
        assert_eq!(
            a.items(&user_id("u"), None).unwrap(),
            b.items(&user_id("u"), None).unwrap()
        );
    }
}

/// Issue 9, suspected: a peer naming learners this device never held must not make it create
/// rows or documents for them.
#[test]
fn a_hello_for_a_learner_neither_device_holds_writes_nothing() {
    let dir = TempDir::new("ghost");
    let a = Store::open(dir.file("a.db")).unwrap();
    let b = Store::open(dir.file("b.db")).unwrap();
    fill(&b, "u", 60, 5);
    exchange(&a, &b, "ghost").unwrap();
    for (name, path) in [("a", dir.file("a.db")), ("b", dir.file("b.db"))] {
        let conn = rusqlite::Connection::open(path).unwrap();
        for table in ["learner", "doc_chunk", "content_state", "peer"] {
            let rows: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM {table} WHERE user_id = 'ghost'"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(rows, 0, "{name}: {table}");
        }
    }
    // A learner only one side holds still arrives on the other.
    exchange(&a, &b, "u").unwrap();
    assert_eq!(
        a.items(&user_id("u"), None).unwrap(),
        b.items(&user_id("u"), None).unwrap()
    );
}

/// Found by fuzzing: automerge 0.12 expands a tiny "bundle" chunk to gigabytes before checking
/// it, and `headway peer import` of a 169-byte file aborted with an allocation failure. Chunks
/// of any type headway never writes are refused before automerge sees them.
#[test]
fn a_peer_file_holding_an_automerge_bundle_chunk_is_refused_and_changes_nothing() {
    let file = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/peer-file-with-a-bundle-chunk.hwp"),
    )
    .unwrap();
    let dir = TempDir::new("bundle");
    let phone = Store::open(dir.file("phone.db")).unwrap();
    fill(&phone, "u", 70, 20);
    let before = phone.items(&user_id("u"), None).unwrap();
    let user = match PeerMessage::read_framed(&mut file.as_slice()) {
        Ok(Some(Ok(PeerMessage::Hello(hello)))) => hello.user,
        other => panic!("the fixture starts with {other:?}"),
    };
    let error = phone.peer_import(&user, &file).unwrap_err();
    assert!(matches!(error, Error::PeerMessage { .. }), "{error:?}");
    assert_eq!(phone.items(&user_id("u"), None).unwrap(), before);
}
