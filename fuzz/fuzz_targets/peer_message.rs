//! Arbitrary bytes from a peer: as a message to a live session, and as an imported file. A
//! typed error or an accepted message; never a panic, never a content state going down, never
//! another learner's data.
#![no_main]

use headway::{ContentKey, PeerMessage, PeerSession, ProgressUpdate, Role, Status, Store, UserId};
use libfuzzer_sys::fuzz_target;

fn seeded() -> Store {
    let store = Store::open_in_memory().expect("store");
    for i in 0..5 {
        let key = ContentKey::new("u", "c", "b", format!("k{i}")).expect("key");
        store
            .record(ProgressUpdate::new(key, Status::InProgress, 10 * i).expect("update"))
            .expect("record");
    }
    store
}

fuzz_target!(init: headway_fuzz::quiet_caught_panics(), |bytes: &[u8]| {
    headway_fuzz::abort_on_escaping_panic(|| {
        let store = seeded();
        let user = UserId::new("u").expect("a valid id");
        let before = store.items(&user, None).expect("items");
        let _ = store.peer_import(&user, bytes);
        if let Ok(message) = PeerMessage::decode(bytes) {
            let mut session = PeerSession::new(&user, Role::Responder);
            let _ = session.handle(&store, message);
        }
        for item in &before {
            let now = store
                .state(item.key())
                .expect("state")
                .expect("still there");
            assert!(now.covers(item.state()));
        }
        assert!(store.learners().expect("learners").iter().all(|u| u == "u"));
    });
});
