//! Review of issue 9 (hostile tester): a live exchange while the same store is busy. An app
//! keeps recording, its `BackgroundSync` flushes and compacts, and `peer serve` answers a peer
//! at the same time, all on one store (or another process on the same file). Between any two
//! messages of a live exchange, either side may record, flush or compact. The exchange must
//! still settle, both sides must end up covering what the other held when it began, and the
//! document and the table must agree.
//!
//! `HEADWAY_REVIEW_SEEDS=N` (default 200), `HEADWAY_SEED=N` replays one seed.
#![cfg(test)]

mod support;

use headway::{PeerMessage, PeerSession, Role, Store};
use support::{covers, snapshot, update, user_id, Rng, TempDir};

const T0: i64 = 1_714_558_530_123;
const USER: &str = "u";

/// Something the app does on `store` (or through `other`, a second handle on its file).
fn busy(rng: &mut Rng, store: &Store, other: &Store, contents: &[String]) -> Result<(), String> {
    // `HEADWAY_REVIEW_SAME_HANDLE`: the app's work goes through the very store the exchange
    // uses (BackgroundSync and `peer serve` sharing one `Store`).
    let other_handle = rng.below(2) == 1 && std::env::var("HEADWAY_REVIEW_SAME_HANDLE").is_err();
    let target = if other_handle { other } else { store };
    let what = rng.below(4);
    if std::env::var("HEADWAY_REVIEW_TRACE").is_ok() {
        eprintln!(
            "  busy: {}",
            ["record", "flush", "compact", "compact"][what as usize]
        );
    }
    match what {
        0 => {
            let content = &contents[rng.below(contents.len() as u64) as usize];
            target
                .record(update(
                    USER,
                    content,
                    rng.below(3) as i64,
                    rng.below(101) as i64,
                    T0 + rng.below(1_000_000) as i64,
                ))
                .map(|_| ())
                .map_err(|e| format!("record: {e}"))
        }
        1 => target
            .flush(&user_id(USER))
            .map_err(|e| format!("flush: {e}")),
        _ => target
            .compact(&user_id(USER))
            .map_err(|e| format!("compact: {e}")),
    }
}

fn kind(message: &PeerMessage) -> String {
    match message {
        PeerMessage::Hello(h) => format!("hello changes={} heads={}", h.changes, h.heads.len()),
        PeerMessage::Sync(b) => format!("sync {} bytes", b.len()),
        PeerMessage::Document(b) => format!("document {} bytes", b.len()),
        other => format!("{other:?}"),
    }
}

fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let dir = TempDir::new("review-interleaved");
    let contents: Vec<String> = (0..2 + rng.below(6)).map(|i| format!("do_{i}")).collect();
    let a = Store::open(dir.file("a.db")).unwrap();
    let a2 = Store::open(dir.file("a.db")).unwrap();
    let b = Store::open(dir.file("b.db")).unwrap();
    let b2 = Store::open(dir.file("b.db")).unwrap();
    for _ in 0..rng.below(6) {
        busy(&mut rng, &a, &a2, &contents)?;
        busy(&mut rng, &b, &b2, &contents)?;
    }
    for round in 0..1 + rng.below(4) {
        let held_a = snapshot(a.items(&user_id(USER), None).unwrap());
        let held_b = snapshot(b.items(&user_id(USER), None).unwrap());
        let (first, second, first2, second2) = if rng.below(2) == 0 {
            (&a, &b, &a2, &b2)
        } else {
            (&b, &a, &b2, &a2)
        };
        let mut initiator = PeerSession::new(&user_id(USER), Role::Initiator);
        let mut responder = PeerSession::new(&user_id(USER), Role::Responder);
        let mut outgoing = vec![initiator.start(first).map_err(|e| e.to_string())?];
        // At most a few interruptions per exchange (`HEADWAY_REVIEW_BUSY`, default 2): after
        // them both stores are quiet, and the exchange must settle.
        let mut interruptions: u64 = std::env::var("HEADWAY_REVIEW_BUSY")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2);
        while let Some(message) = outgoing.pop() {
            if interruptions > 0 && rng.below(3) == 0 {
                interruptions -= 1;
                busy(&mut rng, second, second2, &contents)
                    .map_err(|e| format!("round {round}: responder side: {e}"))?;
            }
            let message = PeerMessage::decode(&message.encode()).unwrap();
            if std::env::var("HEADWAY_REVIEW_TRACE").is_ok() {
                eprintln!("  -> {}", kind(&message));
            }
            for reply in responder
                .handle(second, message)
                .map_err(|e| format!("round {round}: responder: {e}"))?
            {
                if std::env::var("HEADWAY_REVIEW_TRACE").is_ok() {
                    eprintln!("  <- {}", kind(&reply));
                }
                if interruptions > 0 && rng.below(3) == 0 {
                    interruptions -= 1;
                    busy(&mut rng, first, first2, &contents)
                        .map_err(|e| format!("round {round}: initiator side: {e}"))?;
                }
                outgoing.extend(
                    initiator
                        .handle(first, reply)
                        .map_err(|e| format!("round {round}: initiator: {e}"))?,
                );
            }
        }
        if !initiator.is_finished() {
            return Err(format!("round {round}: the exchange did not finish"));
        }
        covers(&snapshot(a.items(&user_id(USER), None).unwrap()), &held_b)
            .map_err(|e| format!("round {round}: a lacks what b held: {e}"))?;
        covers(&snapshot(b.items(&user_id(USER), None).unwrap()), &held_a)
            .map_err(|e| format!("round {round}: b lacks what a held: {e}"))?;
        for (name, store) in [("a", &a), ("a2", &a2), ("b", &b), ("b2", &b2)] {
            let document = snapshot(
                store
                    .document_items(&user_id(USER))
                    .map_err(|e| format!("{name}: {e}"))?,
            );
            let table = snapshot(store.items(&user_id(USER), None).unwrap());
            if document != table {
                return Err(format!(
                    "round {round}: {name}: document and table disagree\n {document:?}\n {table:?}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn a_live_exchange_settles_and_loses_nothing_while_both_stores_record_flush_and_compact() {
    support::run_seeds("HEADWAY_REVIEW_SEEDS", 200, run);
}
