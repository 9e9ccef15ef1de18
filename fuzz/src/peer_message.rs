//! The peer fuzz target's runner: arbitrary bytes from a peer, as one message and as a
//! sequence of frames handed to a live session (responder and initiator), and as an imported
//! file. The sessions run on a [`MemoryReplica`], with no store and no socket: the protocol is
//! a machine, and the fuzzer drives it directly. A typed error or an accepted message; never a
//! panic, never a content state going down, never another learner's data; a device that was
//! fed hostile bytes still converges with an honest one; the limits before a hello accept
//! nothing an exchange refuses.
//!
//! Also compiled into `tests/fuzz_crashers.rs` (through `#[path]`), which replays the seeds
//! and every kept input: it uses only `headway` and `std`.

use headway::{
    ContentItem, ContentKey, FrameLimit, MemoryReplica, PeerMessage, PeerSession, ProgressUpdate,
    Role, Status, Store, UserId,
};

const USER: &str = "u";
/// The most frames of one input handed to a session: more only repeat what the round limit
/// already refuses.
const MAX_FRAMES: usize = 80;

fn user() -> UserId {
    UserId::new(USER).expect("the fuzz learner's id is valid")
}

fn update(i: i64) -> ProgressUpdate {
    let key = ContentKey::new(USER, "c", "b", format!("k{i}")).expect("a valid key");
    ProgressUpdate::new(key, Status::InProgress, 10 * i).expect("a valid update")
}

/// A device holding five contents of the learner.
fn victim() -> MemoryReplica {
    let replica = MemoryReplica::new("victim").expect("a valid device");
    for i in 0..5 {
        replica.record(update(i)).expect("record");
    }
    replica
}

/// Panics unless `replica` still holds everything of `before`, and no other learner.
fn assert_nothing_taken(replica: &MemoryReplica, before: &[ContentItem]) {
    for item in before {
        let now = replica.state(item.key());
        assert!(
            now.is_some_and(|s| s.covers(item.state())),
            "{item:?} went down to {now:?}"
        );
    }
    assert_eq!(replica.learners(), vec![user()], "another learner appeared");
}

/// The frames `bytes` holds, up to the first that does not read.
fn frames(mut bytes: &[u8]) -> Vec<PeerMessage> {
    let mut messages = Vec::new();
    while messages.len() < MAX_FRAMES {
        match PeerMessage::read_framed(&mut bytes) {
            Ok(Some(Ok(message))) => messages.push(message),
            _ => break,
        }
    }
    messages
}

/// Hands `messages` to a fresh session of `role` on `replica`, until one is refused.
fn feed(replica: &MemoryReplica, role: Role, messages: &[PeerMessage]) {
    let mut session = PeerSession::new(&user(), role);
    if role == Role::Initiator && session.start(replica).is_err() {
        return;
    }
    for message in messages {
        if session.handle(replica, message.clone()).is_err() {
            return;
        }
    }
}

/// One honest exchange, `a` initiating; panics unless both end holding the same states.
fn assert_converges(a: &MemoryReplica, b: &MemoryReplica) {
    let mut initiator = PeerSession::new(&user(), Role::Initiator);
    let mut responder = PeerSession::new(&user(), Role::Responder);
    let mut to_b = vec![initiator.start(a).expect("a hello")];
    while let Some(message) = to_b.pop() {
        let replies = responder.handle(b, message).expect("an honest exchange");
        for reply in replies {
            to_b.extend(initiator.handle(a, reply).expect("an honest exchange"));
        }
    }
    assert!(initiator.is_finished(), "the honest exchange did not end");
    assert_eq!(a.items(&user()), b.items(&user()), "no convergence");
}

/// Runs one input; panics when a property breaks.
pub fn run(bytes: &[u8]) {
    // Before a hello the limits are stricter, never looser (issue 17): what they accept, an
    // exchange's accept as the same message.
    let single = PeerMessage::decode(bytes).ok();
    if let Ok(early) = PeerMessage::decode_within(bytes, FrameLimit::Opening) {
        assert_eq!(single.as_ref(), Some(&early));
    }
    let mut messages: Vec<PeerMessage> = single.into_iter().collect();
    if messages.is_empty() {
        messages = frames(bytes);
    }
    if !messages.is_empty() {
        // The victim and a friend met before: they share an epoch and a sync state.
        let replica = victim();
        let friend = MemoryReplica::new("friend").expect("a valid device");
        friend.record(update(7)).expect("record");
        assert_converges(&friend, &replica);
        let before = replica.items(&user());
        for role in [Role::Responder, Role::Initiator] {
            feed(&replica, role, &messages);
            assert_nothing_taken(&replica, &before);
        }
        friend.record(update(8)).expect("record");
        assert_converges(&friend, &replica);
        assert_nothing_taken(&replica, &before);
    }
    // The same bytes as a file, imported by a store: refused whole or joined.
    let store = Store::open_in_memory().expect("store");
    for i in 0..5 {
        store.record(update(i)).expect("record");
    }
    let before = store.items(&user(), None).expect("items");
    let _ = store.peer_import(&user(), bytes);
    for item in &before {
        let now = store
            .state(item.key())
            .expect("state")
            .expect("still there");
        assert!(now.covers(item.state()));
    }
    assert!(store
        .learners()
        .expect("learners")
        .iter()
        .all(|u| u == USER));
}
