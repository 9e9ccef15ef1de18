//! Issue 17, fault 5, in the library: pairing keys (made, written, read back, refused when
//! malformed or readable by others), the paired channel over a real Unix socket pair (an
//! exchange converges through it, a large message crosses in chunks, an unknown key, another
//! learner list and clear bytes are refused), and sealed peer files (round trip, another key,
//! a changed byte, sealed without a key, unsealed with one).
#![cfg(test)]

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use headway::{Error, PairingKey, PeerChannel, PeerMessage, Store};
use support::{exchange_paired, update, user_id, TempDir};

const T0: i64 = 1_714_558_530_123;

fn asha_key() -> PairingKey {
    PairingKey::generate([user_id("asha")]).unwrap()
}

/// Opens both ends of a channel over a socket pair; the responder holds `server_keys`.
fn open_pair(
    client_key: &PairingKey,
    server_keys: &[PairingKey],
) -> (
    Result<PeerChannel<UnixStream>, Error>,
    Result<PeerChannel<UnixStream>, Error>,
) {
    let (a, b) = UnixStream::pair().unwrap();
    std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            PeerChannel::accept(b, server_keys)
                .unwrap()
                .map(|(channel, _)| channel)
        });
        let client = PeerChannel::connect(a, client_key).unwrap();
        (client, server.join().unwrap())
    })
}

// Issue 17, fault 5: peers authenticated nothing; keys in use must still converge.
#[test]
fn a_live_exchange_through_the_paired_channel_converges() {
    let dir = TempDir::new("paired-exchange");
    let phone = Store::open(dir.file("phone.db")).unwrap();
    let tablet = Store::open(dir.file("tablet.db")).unwrap();
    phone.record(update("asha", "k1", 2, 100, T0)).unwrap();
    tablet.record(update("asha", "k2", 1, 30, T0)).unwrap();
    let key = asha_key();
    exchange_paired(&phone, &tablet, "asha", &key).unwrap();
    assert_eq!(
        phone.items(&user_id("asha"), None).unwrap(),
        tablet.items(&user_id("asha"), None).unwrap()
    );
    assert_eq!(phone.items(&user_id("asha"), None).unwrap().len(), 2);
}

#[test]
fn a_message_larger_than_one_noise_message_crosses_in_chunks() {
    let key = asha_key();
    let (client, server) = open_pair(&key, std::slice::from_ref(&key));
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    let large = PeerMessage::Sync((0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect());
    std::thread::scope(|scope| {
        scope.spawn(|| large.write_framed(&mut client).unwrap());
        let got = PeerMessage::read_framed(&mut server)
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got, large);
    });
}

#[test]
fn a_responder_without_the_key_refuses_it_and_both_sides_say_why() {
    let (client, server) = open_pair(&asha_key(), &[asha_key(), asha_key()]);
    let client = client.unwrap_err().to_string();
    let server = server.unwrap_err().to_string();
    assert!(client.contains("does not hold pairing key"), "{client}");
    assert!(server.contains("does not hold"), "{server}");
}

#[test]
fn a_key_with_the_same_secret_but_other_learners_fails_the_handshake() {
    let key = asha_key();
    let mut json: serde_json::Value = serde_json::from_str(&key.to_json()).unwrap();
    json["learners"] = serde_json::json!(["asha", "bob"]);
    let widened = PairingKey::from_json(&json.to_string()).unwrap();
    assert_eq!(widened.id(), key.id());
    let (client, server) = open_pair(&widened, &[key]);
    assert!(matches!(client, Err(Error::NotPaired { .. })));
    assert!(matches!(server, Err(Error::NotPaired { .. })));
}

#[test]
fn clear_bytes_are_refused_before_and_after_the_handshake() {
    // Before: a peer that talks without a key is told so in clear, and refused.
    let (mut a, b) = UnixStream::pair().unwrap();
    let keys = [asha_key()];
    let server = std::thread::spawn(move || PeerChannel::accept(b, &keys).unwrap().map(|_| ()));
    PeerMessage::ListLearners.write_framed(&mut a).unwrap();
    match PeerMessage::read_framed(&mut a).unwrap() {
        Some(Ok(PeerMessage::Refused(reason))) => assert!(reason.contains("paired"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(a);
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::NotPaired { .. })
    ));
    // After: clear bytes injected where a Noise message is expected do not decrypt.
    let key = asha_key();
    let (a, b) = UnixStream::pair().unwrap();
    let mut raw = a.try_clone().unwrap();
    std::thread::scope(|scope| {
        let keys = [key.clone()];
        let server = scope.spawn(move || PeerChannel::accept(b, &keys).unwrap().unwrap().0);
        let _client = PeerChannel::connect(a, &key).unwrap().unwrap();
        let mut server = server.join().unwrap();
        let clear = PeerMessage::ListLearners.encode();
        raw.write_all(&u16::try_from(clear.len()).unwrap().to_be_bytes())
            .unwrap();
        raw.write_all(&clear).unwrap();
        let mut buf = [0u8; 16];
        let error = server.read(&mut buf).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
    });
}

#[test]
fn a_key_file_is_written_for_its_owner_only_and_read_back_whole() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("key-file");
    let path = dir.file("asha.key");
    let key = PairingKey::generate([user_id("bob"), user_id("asha"), user_id("asha")]).unwrap();
    key.write_new(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let read = PairingKey::read(&path).unwrap();
    assert_eq!(read.id(), key.id());
    assert_eq!(read.learners(), [user_id("asha"), user_id("bob")]);
    assert!(matches!(
        key.write_new(&path),
        Err(Error::PairingKey { .. })
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let refused = PairingKey::read(&path).unwrap_err().to_string();
    assert!(refused.contains("may be read by others"), "{refused}");
}

#[test]
fn a_malformed_key_is_refused_with_what_is_wrong() {
    let good: serde_json::Value = serde_json::from_str(&asha_key().to_json()).unwrap();
    let cases: [(&str, serde_json::Value, &str); 7] = [
        ("format", "ssh-rsa".into(), "format"),
        ("version", 2.into(), "version"),
        ("id", "abc".into(), "key id"),
        ("secret", "00".repeat(31).into(), "secret"),
        // Issue 17, second review: a hand-edited all-zero secret was accepted.
        ("secret", "00".repeat(32).into(), "all zeros"),
        ("learners", serde_json::json!([]), "at least one"),
        ("learners", serde_json::json!([" padded "]), "user id"),
    ];
    for (field, value, says) in cases {
        let mut json = good.clone();
        json[field] = value;
        let error = PairingKey::from_json(&json.to_string())
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{field}: {error}");
    }
    assert!(PairingKey::from_json("{\"format\":1}").is_err());
}

// Issue 17, second review: a FIFO given as the key file hung the command.
#[test]
fn a_key_path_that_is_not_a_regular_file_is_refused_without_blocking() {
    let dir = TempDir::new("fifo-key");
    let fifo = dir.file("asha.key");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let error = PairingKey::read(&fifo).unwrap_err().to_string();
    assert!(error.contains("not a regular file"), "{error}");
    let error = PairingKey::read(&dir.file("")).unwrap_err().to_string();
    assert!(error.contains("not a regular file"), "{error}");
}

#[test]
fn a_sealed_file_opens_only_with_its_key_and_unchanged() {
    let dir = TempDir::new("sealed");
    let school = Store::open(dir.file("school.db")).unwrap();
    let phone = Store::open(dir.file("phone.db")).unwrap();
    school.record(update("asha", "k1", 2, 100, T0)).unwrap();
    school.record(update("bob", "k1", 2, 100, T0)).unwrap();
    let (asha, bob) = (user_id("asha"), user_id("bob"));
    let key = asha_key();
    let sealed = school.peer_export_sealed(&asha, None, &key).unwrap();
    // The key must cover the learner, on both sides.
    assert!(matches!(
        school.peer_export_sealed(&bob, None, &key),
        Err(Error::NotPaired { .. })
    ));
    let empty = phone.items(&asha, None).unwrap();
    let refusals = [
        phone.peer_import(&asha, &sealed),
        phone.peer_import_sealed(&asha, &sealed, &asha_key()),
        phone.peer_import_sealed(&bob, &sealed, &PairingKey::generate([bob.clone()]).unwrap()),
    ];
    for refused in refusals {
        assert!(
            matches!(refused, Err(Error::NotPaired { .. })),
            "{refused:?}"
        );
    }
    assert!(phone
        .peer_import(&asha, &sealed)
        .unwrap_err()
        .to_string()
        .contains("sealed"));
    for at in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[at] ^= 0x20;
        assert!(
            phone.peer_import_sealed(&asha, &tampered, &key).is_err(),
            "byte {at} changed and the file still opened"
        );
    }
    assert_eq!(phone.items(&asha, None).unwrap(), empty);
    phone.peer_import_sealed(&asha, &sealed, &key).unwrap();
    assert_eq!(
        phone.items(&asha, None).unwrap(),
        school.items(&asha, None).unwrap()
    );
    // An unsealed file needs no key, and is refused with one: asked to verify, nothing
    // unverified is taken (issue 17: a swapped file on the stick would pass otherwise).
    let plain = school.peer_export(&bob, None).unwrap();
    let bob_key = PairingKey::generate([bob.clone()]).unwrap();
    assert!(matches!(
        phone.peer_import_sealed(&bob, &plain, &bob_key),
        Err(Error::NotPaired { .. })
    ));
    assert!(phone.items(&bob, None).unwrap().is_empty());
    phone.peer_import(&bob, &plain).unwrap();
    assert_eq!(
        phone.items(&bob, None).unwrap(),
        school.items(&bob, None).unwrap()
    );
}
