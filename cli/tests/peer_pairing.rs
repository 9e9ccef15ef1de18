//! Issue 17, fault 5: peers pair before they talk. `headway peer pair` keys, `peer serve
//! --key` and `peer connect --key` between real processes on 127.0.0.1, the hostile-peer
//! test's key part (a key scoped to one of three learners; no key; a wrong key), `--no-auth`,
//! and sealed peer files.
#![cfg(test)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use headway::{PairingKey, PeerChannel, PeerMessage, PeerSession, Role, Store, UserId};
use serde_json::Value;
use support::{headway, record_args, TempDir};

const LEARNERS: [&str; 3] = ["asha", "bob", "cara"];

fn record(db: &Path, user: &str, content: &str, status: &str, progress: &str) {
    let mut args = record_args([user, "c", "b", content], status, progress);
    args.extend(["--at", "2024-05-01T10:15:30Z"]);
    let out = headway(db, &args);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `state --user U --json` of `db`, `[]` when the learner has nothing.
fn state(db: &Path, user: &str) -> Value {
    let out = headway(db, &["state", "--user", user, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every learner's items on `db`.
fn every_state(db: &Path) -> Vec<Value> {
    LEARNERS.iter().map(|u| state(db, u)).collect()
}

/// `headway peer pair` for `users` into `dir/name`.
fn pair(dir: &Path, name: &str, users: &[&str]) -> PathBuf {
    let key = dir.join(name);
    let mut args = vec!["peer", "pair", "--out", key.to_str().unwrap()];
    for user in users {
        args.extend(["--user", user]);
    }
    let out = headway(&dir.join("unused.db"), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    key
}

/// A device holding three learners' progress, each with two items.
fn device_with_three_learners(db: &Path) {
    for user in LEARNERS {
        record(db, user, "k1", "1", "40");
        record(db, user, "k2", "2", "100");
    }
}

/// `headway peer serve` on a free 127.0.0.1 port with `extra` arguments; returns it and its
/// address.
fn serve(db: &Path, extra: &[&str]) -> (Child, String) {
    support::peer_serve(db, extra, Stdio::null())
}

fn stop(mut server: Child) {
    server.kill().unwrap();
    let _ = server.wait();
}

/// A paired channel to `addr` with the key at `key`, as a hostile client would open it with
/// the library instead of the binary.
fn channel(addr: &str, key: &Path) -> PeerChannel<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    PeerChannel::connect(stream, &PairingKey::read(key).unwrap())
        .unwrap()
        .unwrap()
}

fn ask(channel: &mut PeerChannel<TcpStream>, message: &PeerMessage) -> PeerMessage {
    message.write_framed(channel).unwrap();
    PeerMessage::read_framed(channel)
        .unwrap()
        .expect("an answer")
        .unwrap()
}

// Issue 17, fault 5: from an empty store, `peer connect` pulled every learner's progress from
// a serving device, and a device that recorded another learner's contents as completed
// raised them there.
#[test]
fn a_key_scoped_to_one_learner_neither_reads_nor_raises_the_other_two() {
    let dir = TempDir::new("scoped");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    device_with_three_learners(&tablet);
    let key = pair(&dir.0, "asha.key", &["asha"]);
    let key_arg = key.to_str().unwrap();
    let before = every_state(&tablet);
    let (server, addr) = serve(&tablet, &["--key", key_arg]);

    // Reading: `peer connect` exchanges only the key's learner.
    let out = headway(&phone, &["peer", "connect", &addr, "--key", key_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(state(&phone, "asha"), before[0]);
    assert_eq!(state(&phone, "bob"), Value::Array(vec![]));
    assert_eq!(state(&phone, "cara"), Value::Array(vec![]));
    // A client speaking the protocol itself is told only of the key's learners, and a hello
    // for another is refused with a reason.
    let mut raw = channel(&addr, &key);
    assert_eq!(
        ask(&mut raw, &PeerMessage::ListLearners),
        PeerMessage::Learners(vec![UserId::new("asha").unwrap()])
    );
    let bob = UserId::new("bob").unwrap();
    let hostile = Store::open(dir.0.join("hostile.db")).unwrap();
    let hello = PeerSession::new(&bob, Role::Initiator)
        .start(&hostile)
        .unwrap();
    match ask(&mut raw, &hello) {
        PeerMessage::Refused(reason) => assert!(reason.contains("not covered"), "{reason}"),
        other => panic!("a hello for bob was answered with {other:?}"),
    }
    drop(raw);

    // Raising: the phone records bob's contents as completed; `--user bob` with asha's key is
    // refused before connecting, and a hand-driven exchange for bob is refused by the server.
    record(&phone, "bob", "k1", "2", "100");
    record(&phone, "bob", "k3", "2", "100");
    let out = headway(
        &phone,
        &["peer", "connect", &addr, "--key", key_arg, "--user", "bob"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not cover learner bob"),
        "{}",
        stderr(&out)
    );
    let phone_store = Store::open(&phone).unwrap();
    let mut raw = channel(&addr, &key);
    let mut session = PeerSession::new(&bob, Role::Initiator);
    let first = session.start(&phone_store).unwrap();
    assert!(matches!(ask(&mut raw, &first), PeerMessage::Refused(_)));
    drop(raw);
    // Without --user, the phone's bob stays on the phone.
    let out = headway(&phone, &["peer", "connect", &addr, "--key", key_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    stop(server);
    assert_eq!(every_state(&tablet), before, "the serving device changed");
}

#[test]
fn a_peer_without_a_key_or_with_a_wrong_key_gets_nothing_and_changes_nothing() {
    let dir = TempDir::new("strangers");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    device_with_three_learners(&tablet);
    let key = pair(&dir.0, "asha.key", &["asha"]);
    let other = pair(&dir.0, "other.key", &["asha"]);
    // A key with asha's id but another secret (a forged or damaged copy).
    let forged = dir.0.join("forged.key");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    json["secret"] = Value::String("ab".repeat(32));
    write_owner_only(&forged, &json.to_string());
    // The same id and secret, but naming another learner list.
    let widened = dir.0.join("widened.key");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    json["learners"] = serde_json::json!(["asha", "bob", "cara"]);
    write_owner_only(&widened, &json.to_string());

    record(&phone, "asha", "k1", "2", "100");
    record(&phone, "bob", "k9", "2", "100");
    let before = every_state(&tablet);
    let (server, addr) = serve(&tablet, &["--key", key.to_str().unwrap()]);
    let attempts: [(&[&str], &str); 5] = [
        (&[], "paired peers"),
        (&["--user", "bob"], "paired peers"),
        (
            &["--key", other.to_str().unwrap()],
            "does not hold pairing key",
        ),
        (&["--key", forged.to_str().unwrap()], "another key"),
        (
            &["--key", widened.to_str().unwrap(), "--user", "bob"],
            "another key",
        ),
    ];
    for (extra, says) in attempts {
        let mut args = vec!["peer", "connect", &addr];
        args.extend(extra);
        let out = headway(&phone, &args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    // Clear bytes where the encrypted channel is expected get nothing either.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    PeerMessage::ListLearners.write_framed(&mut stream).unwrap();
    let answer = PeerMessage::read_framed(&mut stream).unwrap();
    assert!(
        matches!(answer, Some(Ok(PeerMessage::Refused(_)))),
        "{answer:?}"
    );
    stop(server);
    assert_eq!(state(&phone, "cara"), Value::Array(vec![]));
    assert_eq!(state(&phone, "asha").as_array().map(Vec::len), Some(1));
    assert_eq!(every_state(&tablet), before, "the serving device changed");
}

fn write_owner_only(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Runs `headway --db DB ARGS` that should exit at once; one still running after a
/// generous minute is killed (and fails the caller's exit-code check).
fn exits_by_itself(db: &Path, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if std::fs::metadata(format!("/proc/{pid}")).is_err() {
                return;
            }
        }
        let _ = Command::new("kill").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().unwrap();
    watchdog.join().unwrap();
    out
}

// Issue 17, fault 5: `peer serve` served anyone who connected.
#[test]
fn peer_serve_without_a_key_refuses_to_start_and_names_peer_pair() {
    let dir = TempDir::new("nokey");
    let db = dir.0.join("tablet.db");
    let out = exits_by_itself(&db, &["peer", "serve", "--addr", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("headway peer pair"),
        "{}",
        stderr(&out)
    );
    assert!(!db.exists(), "a refused serve created a store");
}

/// Issue 17 (hostile review): `peer serve --key K --user U` with U outside K started, and
/// then refused every peer.
#[test]
fn peer_serve_refuses_a_user_its_keys_do_not_cover() {
    let dir = TempDir::new("serve-user");
    let db = dir.0.join("tablet.db");
    let key = pair(&dir.0, "asha.key", &["asha"]);
    let out = exits_by_itself(
        &db,
        &[
            "peer",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--key",
            key.to_str().unwrap(),
            "--user",
            "bob",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bob"), "{}", stderr(&out));
    assert!(!db.exists());
}

#[test]
fn no_auth_is_refused_on_an_address_other_than_loopback() {
    let dir = TempDir::new("noauth");
    let db = dir.0.join("tablet.db");
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = exits_by_itself(&db, &["peer", "serve", "--no-auth", "--addr", addr]);
        assert_eq!(out.status.code(), Some(2), "{addr}: {}", stderr(&out));
        assert!(stderr(&out).contains("not a loopback"), "{}", stderr(&out));
    }
    let key = pair(&dir.0, "asha.key", &["asha"]);
    let both = headway(
        &db,
        &["peer", "serve", "--no-auth", "--key", key.to_str().unwrap()],
    );
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

#[test]
fn a_keyed_client_and_a_no_auth_server_say_why_they_do_not_talk() {
    let dir = TempDir::new("mismatch");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    device_with_three_learners(&tablet);
    let key = pair(&dir.0, "asha.key", &["asha"]);
    let before = every_state(&tablet);
    let (server, addr) = serve(&tablet, &["--no-auth"]);
    let out = headway(
        &phone,
        &["peer", "connect", &addr, "--key", key.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--no-auth"), "{}", stderr(&out));
    // Without a key, a --no-auth server answers (tests and demos on one machine).
    let out = headway(&phone, &["peer", "connect", &addr, "--user", "asha"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stop(server);
    assert_eq!(every_state(&tablet), before);
}

#[test]
fn peer_pair_writes_a_key_only_its_owner_reads_and_never_overwrites_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("pair");
    let key = pair(&dir.0, "k.key", &["asha", "bob"]);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let parsed = PairingKey::read(&key).unwrap();
    assert_eq!(parsed.learners().len(), 2);
    let db = dir.0.join("h.db");
    let again = headway(
        &db,
        &[
            "peer",
            "pair",
            "--user",
            "cara",
            "--out",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert_eq!(PairingKey::read(&key).unwrap().id(), parsed.id());
    let blank = dir.0.join("blank.key");
    let out = headway(
        &db,
        &[
            "peer",
            "pair",
            "--user",
            " ",
            "--out",
            blank.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!blank.exists());
    // Readable by others: refused like an SSH key.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = headway(
        &db,
        &[
            "peer",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("may be read by others"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_sealed_peer_file_opens_only_with_its_key_and_unchanged() {
    let dir = TempDir::new("sealed");
    let (school, phone) = (dir.0.join("school.db"), dir.0.join("phone.db"));
    device_with_three_learners(&school);
    let key = pair(&dir.0, "asha.key", &["asha"]);
    let other = pair(&dir.0, "other.key", &["asha"]);
    let (key, other) = (key.to_str().unwrap(), other.to_str().unwrap());
    let file = dir.0.join("asha.hwp");
    let file_arg = file.to_str().unwrap();
    let export = |user: &str, key: &str| {
        headway(
            &school,
            &[
                "peer", "export", "--user", user, "--out", file_arg, "--key", key,
            ],
        )
    };
    // The key must cover the learner.
    let out = export("bob", key);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!file.exists());
    let out = export("asha", key);
    assert!(out.status.success(), "{}", stderr(&out));
    let sealed = std::fs::read(&file).unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec!["peer", "import", "--user", "asha", file_arg];
        args.extend(extra);
        headway(&phone, &args)
    };
    record(&phone, "asha", "k0", "1", "10");
    let phone_before = state(&phone, "asha");
    let refusals: [(&[&str], &str); 2] =
        [(&[], "sealed"), (&["--key", other], "another pairing key")];
    for (extra, says) in refusals {
        let out = import(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
        assert_eq!(state(&phone, "asha"), phone_before);
    }
    // One changed byte anywhere (header, nonce or sealed body) is refused.
    for at in [6, 30, sealed.len() / 2, sealed.len() - 1] {
        let mut tampered = sealed.clone();
        tampered[at] ^= 0x01;
        std::fs::write(&file, &tampered).unwrap();
        let out = import(&["--key", key]);
        assert_eq!(out.status.code(), Some(2), "byte {at}: {}", stderr(&out));
        assert_eq!(state(&phone, "asha"), phone_before);
    }
    std::fs::write(&file, &sealed).unwrap();
    let out = import(&["--key", key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let school_asha = state(&school, "asha");
    let got = state(&phone, "asha");
    assert_eq!(got.as_array().unwrap().len(), 3);
    assert!(school_asha
        .as_array()
        .unwrap()
        .iter()
        .all(|item| got.as_array().unwrap().contains(item)));
    // An unsealed file is still imported without a key: the person carrying it is trusted.
    let plain = headway(
        &school,
        &["peer", "export", "--user", "bob", "--out", file_arg],
    );
    assert!(plain.status.success(), "{}", stderr(&plain));
    // With --key it must be sealed: an unsealed file cannot be verified, and is refused.
    let before = state(&phone, "bob");
    let bob_key = pair(&dir.0, "bob.key", &["bob"]);
    let out = headway(
        &phone,
        &[
            "peer",
            "import",
            "--user",
            "bob",
            file_arg,
            "--key",
            bob_key.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not sealed"), "{}", stderr(&out));
    assert_eq!(state(&phone, "bob"), before);
    let out = headway(&phone, &["peer", "import", "--user", "bob", file_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(state(&phone, "bob"), state(&school, "bob"));
}

#[test]
fn peer_serve_holding_two_keys_answers_each_peer_with_its_own_keys_learners() {
    let dir = TempDir::new("two-keys");
    let tablet = dir.0.join("tablet.db");
    device_with_three_learners(&tablet);
    let asha = pair(&dir.0, "asha.key", &["asha"]);
    let bob_and_cara = pair(&dir.0, "bc.key", &["bob", "cara"]);
    let before = every_state(&tablet);
    let (server, addr) = serve(
        &tablet,
        &[
            "--key",
            asha.to_str().unwrap(),
            "--key",
            bob_and_cara.to_str().unwrap(),
        ],
    );
    for (name, key, holds) in [
        ("a.db", &asha, [true, false, false]),
        ("bc.db", &bob_and_cara, [false, true, true]),
    ] {
        let phone = dir.0.join(name);
        let out = headway(
            &phone,
            &["peer", "connect", &addr, "--key", key.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        for ((user, held), expected) in LEARNERS.iter().zip(holds).zip(&before) {
            let got = state(&phone, user);
            if held {
                assert_eq!(&got, expected, "{name}: {user}");
            } else {
                assert_eq!(got, Value::Array(vec![]), "{name}: {user} leaked");
            }
        }
    }
    stop(server);
    assert_eq!(every_state(&tablet), before);
}

/// Issue 17 (hostile review): refused connections used to count towards `--exchanges`, so a
/// stranger's probe made `peer serve --exchanges 1` quit before the paired device synced.
/// Only connections that exchanged a learner count now.
#[test]
fn strangers_do_not_use_up_the_exchanges_peer_serve_was_told_to_answer() {
    let dir = TempDir::new("exchanges");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    device_with_three_learners(&tablet);
    let key = pair(&dir.0, "asha.key", &["asha"]);
    let other = pair(&dir.0, "other.key", &["asha"]);
    let (mut server, addr) = serve(
        &tablet,
        &[
            "--key",
            key.to_str().unwrap(),
            "--exchanges",
            "1",
            "--handshake-timeout",
            "0.5",
        ],
    );
    // A probe that says nothing, one that talks in clear, and a device with another key.
    drop(TcpStream::connect(&addr).unwrap());
    let clear = headway(&phone, &["peer", "connect", &addr, "--user", "asha"]);
    assert_eq!(clear.status.code(), Some(2), "{}", stderr(&clear));
    let stranger = headway(
        &phone,
        &["peer", "connect", &addr, "--key", other.to_str().unwrap()],
    );
    assert_eq!(stranger.status.code(), Some(2), "{}", stderr(&stranger));
    std::thread::sleep(Duration::from_millis(800)); // past the probe's handshake deadline
    assert!(server.try_wait().unwrap().is_none(), "peer serve quit");
    let paired = headway(
        &phone,
        &["peer", "connect", &addr, "--key", key.to_str().unwrap()],
    );
    assert!(paired.status.success(), "{}", stderr(&paired));
    assert_eq!(state(&phone, "asha"), state(&tablet, "asha"));
    // The one exchange it was told to answer happened: it ends by itself, exit 0.
    let ceiling = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < ceiling,
            "peer serve did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
