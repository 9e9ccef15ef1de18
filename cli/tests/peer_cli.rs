//! `headway peer` as processes: two stores converge through a file, and two processes converge
//! over the live transport on 127.0.0.1; a hostile file is refused with exit 2.
#![cfg(test)]

mod support;

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;
use support::{headway, json_of, record_args, TempDir};

fn record(db: &Path, content: &str, status: &str, progress: &str) {
    let mut args = record_args(["u1", "c", "b", content], status, progress);
    args.extend(["--at", "2024-05-01T10:15:30Z"]);
    let out = headway(db, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `headway peer export` of `user` from `db` to `file`.
fn export(db: &Path, user: &str, file: &Path) -> Output {
    let file = file.to_str().unwrap();
    headway(db, &["peer", "export", "--user", user, "--out", file])
}

/// `headway peer import` of `user`'s `file` into `db`.
fn import(db: &Path, user: &str, file: &Path) -> Output {
    headway(
        db,
        &["peer", "import", "--user", user, file.to_str().unwrap()],
    )
}

fn state(db: &Path) -> Value {
    json_of(&headway(db, &["state", "--user", "u1", "--json"]))
}

#[test]
fn two_stores_converge_through_a_file() {
    let dir = TempDir::new("file");
    let (school, phone) = (dir.0.join("school.db"), dir.0.join("phone.db"));
    record(&school, "do_1", "2", "100");
    record(&school, "do_2", "1", "40");
    record(&phone, "do_2", "1", "70");
    record(&phone, "do_3", "1", "10");
    let file = dir.0.join("usb.hwp");
    let out = export(&school, "u1", &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = import(&phone, "u1", &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = export(&phone, "u1", &file);
    assert!(out.status.success());
    let out = import(&school, "u1", &file);
    assert!(out.status.success());
    let merged = state(&phone);
    assert_eq!(merged, state(&school));
    let progress: Vec<i64> = merged
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["progress"].as_i64().unwrap())
        .collect();
    assert_eq!(progress, vec![100, 70, 10]);
    // A damaged file is refused with exit 2 and changes nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    let cut = bytes.len() / 2;
    bytes.truncate(cut);
    std::fs::write(&file, &bytes).unwrap();
    let out = import(&school, "u1", &file);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&school), merged);
    // Another learner's file cannot write into this learner's progress.
    let out = export(&school, "u1", &file);
    assert!(out.status.success());
    let out = import(&phone, "u2", &file);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn two_processes_converge_over_the_live_transport() {
    let dir = TempDir::new("live");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    record(&tablet, "do_1", "2", "100");
    record(&tablet, "do_2", "1", "20");
    record(&phone, "do_2", "1", "80");
    record(&phone, "do_4", "2", "100");
    let (mut server, addr) = serve(&tablet, &["--exchanges", "2"]);
    let out = headway(&phone, &["peer", "connect", &addr, "--user", "u1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second exchange after more progress on the phone, for every learner either device
    // holds (the tablet also has a second learner the phone never saw).
    record(&phone, "do_5", "1", "55");
    let out = headway(&tablet, &record_args(["u2", "c", "b", "do_9"], "2", "100"));
    assert!(out.status.success());
    let second = headway(&phone, &["peer", "connect", &addr]);
    let out = second.clone();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = server.wait().unwrap();
    assert!(status.success());
    let merged = state(&phone);
    assert_eq!(merged, state(&tablet));
    let progress: Vec<i64> = merged
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["progress"].as_i64().unwrap())
        .collect();
    assert_eq!(progress, vec![100, 80, 100, 55]);
    let u2 = headway(&phone, &["state", "--user", "u2", "--json"]);
    let u2: Value = serde_json::from_slice(&u2.stdout).unwrap();
    assert_eq!(
        u2.as_array().map(Vec::len),
        Some(1),
        "the second learner did not arrive: {}",
        String::from_utf8_lossy(&second.stdout)
    );
}

#[test]
fn connecting_to_nobody_exits_3() {
    let dir = TempDir::new("nobody");
    let db = dir.0.join("phone.db");
    record(&db, "do_1", "1", "10");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = headway(&db, &["peer", "connect", &addr, "--user", "u1"]);
    assert_eq!(out.status.code(), Some(3));
}

/// Starts `headway peer serve` on a free port with `extra` arguments; returns it and its address.
fn serve(db: &Path, extra: &[&str]) -> (std::process::Child, String) {
    let mut args = vec!["--no-auth"];
    args.extend(extra);
    support::peer_serve(db, &args, Stdio::null())
}

/// Reads one frame the way `peer connect` does.
fn read_frame(stream: &mut std::net::TcpStream) -> headway::PeerMessage {
    headway::PeerMessage::read_framed(stream)
        .unwrap()
        .expect("a frame")
        .unwrap()
}

#[test]
fn the_connecting_side_reports_why_the_peer_refused() {
    let dir = TempDir::new("refused");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    record(&phone, "do_1", "2", "100");
    let (mut server, addr) = serve(&tablet, &["--user", "someone-else", "--exchanges", "1"]);
    let out = headway(&phone, &["peer", "connect", &addr, "--user", "u1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("serves only learner") && !stderr.contains("closed the connection"),
        "{stderr}"
    );
    server.kill().unwrap();
    let _ = server.wait();
}

/// Issue 17 (fault 6): exchange slots are taken by peers whose hello arrived, not by sockets;
/// a frame too large for a hello is refused from its length, before it is read.
#[test]
fn peer_serve_bounds_its_exchanges_and_survives_hostile_frames() {
    use std::io::Write;
    let dir = TempDir::new("bounded");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    record(&phone, "do_1", "2", "100");
    let (mut server, addr) = serve(&tablet, &[]);
    let hello = |device: &str| {
        headway::PeerMessage::Hello(headway::Hello {
            user: headway::UserId::new("u1").unwrap(),
            device: device.into(),
            epoch: None,
            changes: 0,
            heads: Vec::new(),
        })
    };
    // Peers that said hello, were answered, and then idle mid-exchange.
    let mut idle = Vec::new();
    for i in 0..16 {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        hello(&format!("idle-{i}"))
            .write_framed(&mut stream)
            .unwrap();
        assert!(matches!(
            read_frame(&mut stream),
            headway::PeerMessage::Hello(_)
        ));
        idle.push(stream);
    }
    // One more is refused with a reason, not left hanging.
    let mut extra = std::net::TcpStream::connect(&addr).unwrap();
    extra
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    hello("one-too-many").write_framed(&mut extra).unwrap();
    match read_frame(&mut extra) {
        headway::PeerMessage::Refused(reason) => assert!(reason.contains("16 peers"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // `peer connect` reports a busy peer as unavailable for now (exit 3), not as refused input.
    let busy = headway(&phone, &["peer", "connect", &addr, "--user", "u1"]);
    let said = String::from_utf8_lossy(&busy.stderr);
    assert_eq!(busy.status.code(), Some(3), "{said}");
    assert!(said.contains("16 peers"), "{said}");
    // A peer announcing the largest frame before a hello is refused from the length alone.
    let mut huge = std::net::TcpStream::connect(&addr).unwrap();
    huge.write_all(&(64u32 * 1024 * 1024).to_be_bytes())
        .unwrap();
    match read_frame(&mut huge) {
        headway::PeerMessage::Refused(reason) => {
            assert!(reason.contains("before a hello"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Once they go, a real exchange goes through.
    drop(idle);
    let mut synced = None;
    for _ in 0..50 {
        let out = headway(&phone, &["peer", "connect", &addr, "--user", "u1"]);
        if out.status.success() {
            synced = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(synced.is_some(), "the server did not recover");
    assert_eq!(state(&tablet), state(&phone));
    server.kill().unwrap();
    let _ = server.wait();
}

/// A fake peer on 127.0.0.1 that does `then` with the first connection.
fn fake_peer(then: fn(&mut std::net::TcpStream)) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let worker = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        then(&mut stream);
    });
    (addr, worker)
}

#[test]
fn peer_connect_refuses_a_garbled_reply_with_exit_2() {
    use std::io::Write;
    let dir = TempDir::new("garbled");
    let phone = dir.0.join("phone.db");
    record(&phone, "do_1", "2", "100");
    let before = state(&phone);
    let (addr, worker) = fake_peer(|stream| {
        read_frame(stream);
        stream.write_all(&5u32.to_be_bytes()).unwrap();
        stream.write_all(b"junk!").unwrap();
    });
    let out = headway(&phone, &["peer", "connect", &addr, "--user", "u1"]);
    worker.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("headway: refused: "), "{stderr}");
    assert_eq!(state(&phone), before);
}

#[test]
fn peer_connect_to_a_peer_that_goes_away_mid_exchange_exits_3_naming_it() {
    use std::io::{Read, Write};
    let dir = TempDir::new("gone");
    let phone = dir.0.join("phone.db");
    record(&phone, "do_1", "2", "100");
    let before = state(&phone);
    let hang_ups: [fn(&mut std::net::TcpStream); 2] = [
        // Announces a frame, sends part of it, hangs up.
        |stream| {
            read_frame(stream);
            stream.write_all(&100u32.to_be_bytes()).unwrap();
            stream.write_all(b"abc").unwrap();
        },
        // Hangs up with the request unread (the kernel resets the connection).
        |stream| {
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        },
    ];
    for then in hang_ups {
        let (addr, worker) = fake_peer(then);
        let out = headway(&phone, &["peer", "connect", &addr, "--user", "u1"]);
        worker.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(&addr), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert_eq!(state(&phone), before);
    }
}
