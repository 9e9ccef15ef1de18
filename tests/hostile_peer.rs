//! Review of issue 9 (hostile tester): a well-formed change from a hostile peer that *deletes*
//! a register (or overwrites it with a value that is not a register) applies: the receiver's
//! table keeps the value, but its document no longer holds it, so document and table disagree
//! and a device that adopts the receiver's document never hears of the value.
#![cfg(test)]

mod support;

use automerge::{transaction::Transactable, AutoCommit, ReadDoc, ROOT};
use headway::{Hello, PeerMessage, Store};
use support::{exchange, framed, key, peer_file, update, user_id, TempDir};

const T0: i64 = 1_714_558_530_123;

fn hostile_change(vandalise: impl Fn(&mut AutoCommit, &str)) {
    let dir = TempDir::new("review-hostile-delete");
    let victim = Store::open(dir.file("victim.db")).unwrap();
    let friend = Store::open(dir.file("friend.db")).unwrap();
    victim.record(update("u", "k", 2, 100, T0)).unwrap();
    victim.record(update("u", "other", 1, 10, T0)).unwrap();
    // The hostile peer gets the victim's document as any peer would, and deletes "k".
    let (hello, body) = peer_file(&victim.peer_export(&user_id("u"), None).unwrap());
    let PeerMessage::Document(bytes) = body else {
        panic!("a whole document")
    };
    let mut doc = AutoCommit::load(&bytes).unwrap();
    let before = doc.get_heads();
    let name = doc
        .keys(ROOT)
        .find(|k| k.ends_with("\u{1f}k"))
        .expect("the register");
    vandalise(&mut doc, &name);
    let changes = doc.save_after(&before);
    let file = framed(&[
        PeerMessage::Hello(Hello {
            device: "hostile".into(),
            ..hello
        }),
        PeerMessage::Changes(changes),
    ]);
    let _ = victim.peer_import(&user_id("u"), &file);
    let table = victim.items(&user_id("u"), None).unwrap();
    assert_eq!(table.len(), 2, "the table keeps the value");
    // A friend's device syncs with the victim: it must hear of everything the victim holds.
    exchange(&friend, &victim, "u").unwrap();
    assert_eq!(
        friend.state(&key("u", "k")).unwrap(),
        victim.state(&key("u", "k")).unwrap(),
        "a device syncing with the victim never hears of the value the hostile change removed"
    );
    assert_eq!(
        victim.document_items(&user_id("u")).unwrap(),
        table,
        "document and table disagree after a hostile change"
    );
}

#[test]
fn a_peers_change_deleting_a_register_does_not_hide_the_value_from_other_devices() {
    hostile_change(|doc, name| doc.delete(ROOT, name).unwrap());
}

#[test]
fn a_peers_change_overwriting_a_register_with_garbage_does_not_hide_the_value() {
    hostile_change(|doc, name| doc.put(ROOT, name, "not a register").unwrap());
}
