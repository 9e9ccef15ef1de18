//! Arbitrary bytes from a peer: as a message to a live session, and as an imported file. A
//! typed error or an accepted message; never a panic, never a content state going down, never
//! another learner's data; the limits before a hello accept nothing an exchange refuses.
#![no_main]

use headway::{
    ContentKey, FrameLimit, PeerMessage, PeerSession, ProgressUpdate, Role, Status, Store, UserId,
};
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
        // Before a hello the limits are stricter, never looser (issue 17): what they accept,
        // an exchange's accept as the same message.
        if let Ok(early) = PeerMessage::decode_within(bytes, FrameLimit::Opening) {
            assert_eq!(PeerMessage::decode(bytes).ok(), Some(early));
        }
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
