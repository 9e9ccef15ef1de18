//! Slow and inflating peers against real `headway peer` processes on 127.0.0.1 (issue 17,
//! fault 6): sockets that trickle bytes hold no slot and no connection past its deadlines, a
//! trickling peer does not keep `peer connect` past its own, and inflation bombs do not grow
//! `peer serve`'s memory.
#![cfg(test)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use headway::{PeerMessage, PeerSession, Role, Store, UserId};
use support::{headway, record_args, text, TempDir};

/// A generous ceiling for anything that should end in a second or two.
const CEILING: Duration = Duration::from_secs(60);

fn record(db: &Path, content: &str) {
    let out = headway(db, &record_args(["u1", "c", "b", content], "2", "100"));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn state(db: &Path) -> String {
    text(&headway(db, &["state", "--user", "u1", "--json"]).stdout)
}

/// `headway peer serve` on a free port with `extra` arguments, its stderr going to `log`;
/// returns it and its address.
fn serve(db: &Path, log: &Path, extra: &[&str]) -> (Child, String) {
    support::peer_serve(db, extra, Stdio::from(std::fs::File::create(log).unwrap()))
}

/// Runs `headway --db DB ARGS...`, killing it past [`CEILING`]; returns its output and how
/// long it ran.
fn headway_within_ceiling(db: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("HEADWAY_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > CEILING {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out, started.elapsed())
}

/// Sockets to `addr` that each announce a 200-byte frame and then send one byte of it every
/// 100 ms, until stopped or closed by the other side.
struct Tricklers {
    streams: Vec<TcpStream>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl Tricklers {
    fn start(addr: &str, n: usize) -> Tricklers {
        Tricklers::sending(addr, n, &200u32.to_be_bytes(), b"H")
    }

    /// Sockets that send `first` at once, then `then` one byte every 100 ms (the last byte
    /// again and again once `then` is spent), until stopped or closed by the other side.
    fn sending(addr: &str, n: usize, first: &[u8], then: &'static [u8]) -> Tricklers {
        let streams: Vec<TcpStream> = (0..n)
            .map(|_| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.write_all(first).unwrap();
                stream
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers: Vec<TcpStream> = streams.iter().map(|s| s.try_clone().unwrap()).collect();
        let stopped = stop.clone();
        let worker = std::thread::spawn(move || {
            let mut sent = 0;
            while !stopped.load(Ordering::SeqCst) {
                let byte = then[sent.min(then.len() - 1)];
                sent += 1;
                // A socket the server dropped fails its write; the others go on.
                for stream in &mut writers {
                    let _ = stream.write_all(&[byte]);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Tricklers {
            streams,
            stop,
            worker: Some(worker),
        }
    }
}

impl Drop for Tricklers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Issue 17 (fault 6): 16 sockets trickling bytes used to hold every slot of `peer serve`,
/// and a 17th well-behaved peer was refused. Default deadlines: slots alone let it in, on a
/// device serving in clear on loopback and on one serving a pairing key (where the tricklers
/// send the pairing preamble's magic one byte at a time and the peer holds the key).
#[test]
fn sixteen_trickling_sockets_do_not_keep_a_well_behaved_peer_out() {
    let dir = TempDir::new("trickling-sockets");
    let key = dir.0.join("u1.key");
    let key = key.to_str().unwrap();
    let paired = headway(
        &dir.0.join("unused.db"),
        &["peer", "pair", "--user", "u1", "--out", key],
    );
    assert!(paired.status.success(), "{}", text(&paired.stderr));
    let auths: [&[&str]; 2] = [&["--no-auth"], &["--key", key]];
    for (round, auth) in auths.into_iter().enumerate() {
        let tablet = dir.0.join(format!("tablet-{round}.db"));
        let phone = dir.0.join(format!("phone-{round}.db"));
        record(&phone, "do_1");
        let (mut server, addr) = serve(&tablet, &dir.0.join("serve.log"), auth);
        let tricklers = match round {
            0 => Tricklers::start(&addr, 16),
            _ => Tricklers::sending(&addr, 16, b"", b"HWPK"),
        };
        std::thread::sleep(Duration::from_millis(300));
        let mut connect = vec!["peer", "connect", &addr, "--user", "u1"];
        if round == 1 {
            connect.extend(["--key", key]);
        }
        let (out, _) = headway_within_ceiling(&phone, &connect);
        assert!(out.status.success(), "{auth:?}: {}", text(&out.stderr));
        assert_eq!(state(&tablet), state(&phone));
        drop(tricklers);
        server.kill().unwrap();
        let _ = server.wait();
    }
}

/// Reads what the server says on a socket until it closes it (within [`CEILING`]): a refusal,
/// if one arrived before the close (bytes still unread on the server's side make the close a
/// reset, which may discard it).
fn refusal(stream: &mut TcpStream) -> Option<String> {
    let started = Instant::now();
    stream.set_read_timeout(Some(CEILING)).unwrap();
    let mut said = Vec::new();
    let ended = match stream.read_to_end(&mut said) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(
        ended && started.elapsed() < CEILING,
        "the server kept the connection"
    );
    match PeerMessage::read_framed(&mut said.as_slice()) {
        Ok(Some(Ok(PeerMessage::Refused(reason)))) => Some(reason),
        _ => None,
    }
}

/// Issue 17 (fault 6): with a short handshake deadline, trickling sockets are dropped (with
/// the reason, and one log line each) even though bytes keep coming, and the slots are free.
#[test]
fn trickling_sockets_are_dropped_past_the_handshake_deadline_with_one_log_line_each() {
    let dir = TempDir::new("handshake-deadline");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    record(&phone, "do_1");
    let log = dir.0.join("serve.log");
    let (mut server, addr) = serve(&tablet, &log, &["--no-auth", "--handshake-timeout", "0.3"]);
    let started = Instant::now();
    let mut tricklers = Tricklers::start(&addr, 16);
    for stream in &mut tricklers.streams {
        if let Some(reason) = refusal(stream) {
            assert!(reason.contains("handshake deadline"), "{reason}");
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < CEILING);
    drop(tricklers);
    let (out, _) = headway_within_ceiling(&phone, &["peer", "connect", &addr, "--user", "u1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    server.kill().unwrap();
    let _ = server.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    let dropped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("handshake deadline"))
        .collect();
    assert_eq!(dropped.len(), 16, "{log}");
    assert!(dropped.iter().all(|l| l.contains("127.0.0.1:")), "{log}");
}

/// A fake peer that accepts one connection and trickles one byte every 100 ms (a frame that
/// never ends) until the other side goes.
fn trickling_peer() -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let worker = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(&1000u32.to_be_bytes());
        while stream.write_all(b"H").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (addr, worker)
}

/// Issue 17 (fault 6): `peer connect` to a peer that trickles bytes never returned (killed at
/// 100 s); now it exits 3 past its exchange deadline (or its handshake deadline), naming the
/// peer and the deadline.
#[test]
fn peer_connect_to_a_trickling_peer_exits_3_past_its_deadlines_naming_them() {
    let dir = TempDir::new("trickling-peer");
    let phone = dir.0.join("phone.db");
    record(&phone, "do_1");
    let before = state(&phone);
    for (flags, deadline, at_least) in [
        (
            ["--exchange-timeout", "1", "--handshake-timeout", "30"],
            "exchange deadline",
            1.0,
        ),
        (
            ["--handshake-timeout", "0.5", "--message-timeout", "30"],
            "handshake deadline",
            0.5,
        ),
    ] {
        let (addr, worker) = trickling_peer();
        let mut args = vec!["peer", "connect", &addr, "--user", "u1"];
        args.extend(flags);
        let (out, took) = headway_within_ceiling(&phone, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains(&addr) && stderr.contains(deadline),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(took >= Duration::from_secs_f64(at_least), "{took:?}");
        worker.join().unwrap();
    }
    assert_eq!(state(&phone), before);
}

/// The highest resident set size `pid` has reached, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 17 (fault 6): a 292 KB frame inflated to 64 MiB before any hello, and 16 such
/// connections took `peer serve` from 17 MB to 1.0 GB. Now its peak RSS stays under 64 MiB.
#[test]
fn peer_serve_stays_under_64_mib_under_16_inflation_bomb_connections() {
    let dir = TempDir::new("bombs");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    record(&tablet, "do_1");
    record(&phone, "do_2");
    // In clear on loopback: the bombs reach the framing (with a key they would not pass the
    // pairing preamble).
    let (mut server, addr) = serve(&tablet, &dir.0.join("serve.log"), &["--no-auth"]);
    // The bomb (64 MiB of zeros as a sync message), and one small enough to pass a
    // frame's length limit before a hello, so that only the refusal to inflate stops it.
    let bombs = [64usize << 20, 16 << 20].map(|n| {
        let mut frame = Vec::new();
        PeerMessage::Sync(vec![0; n])
            .write_framed(&mut frame)
            .unwrap();
        frame
    });
    let before = peak_rss_kib(server.id());
    let mut connections: Vec<TcpStream> = (0..16)
        .map(|i| {
            let mut stream = TcpStream::connect(&addr).unwrap();
            // The server may refuse a bomb from its length and close before it is all sent.
            let _ = stream.write_all(&bombs[i % 2]);
            stream
        })
        .collect();
    // Each was refused and closed: the server has read and judged every bomb.
    for stream in &mut connections {
        refusal(stream);
    }
    let peak = peak_rss_kib(server.id());
    println!(
        "peer serve peak RSS: {:.1} MiB before, {:.1} MiB after 16 bombs of {} and {} bytes",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        bombs[0].len(),
        bombs[1].len()
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    // And it still serves.
    let (out, _) = headway_within_ceiling(&phone, &["peer", "connect", &addr, "--user", "u1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(state(&tablet), state(&phone));
    server.kill().unwrap();
    let _ = server.wait();
}

/// A sync message of 1 MiB of noise then 60 MiB of zeros (about 1.3 MB deflated, inflating
/// to 61 MiB, about 47 times), framed: the bomb a paired peer can send after its hello.
fn bomb_after_a_hello() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut payload: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    payload.resize(61 << 20, 0);
    let mut frame = Vec::new();
    PeerMessage::Sync(payload).write_framed(&mut frame).unwrap();
    frame
}

/// Connects to `addr`, says hello for learner u1 (as a device holding nothing) and reads the
/// answer: the connection is inside an exchange.
fn inside_an_exchange(addr: &str) -> TcpStream {
    let user = UserId::new("u1").unwrap();
    let scratch = Store::open_in_memory().unwrap();
    let hello = PeerSession::new(&user, Role::Initiator)
        .start(&scratch)
        .unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CEILING)).unwrap();
    hello.write_framed(&mut stream).unwrap();
    let answer = PeerMessage::read_framed(&mut stream)
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        !matches!(answer, PeerMessage::Refused(_)),
        "the hello was refused: {answer:?}"
    );
    stream
}

/// Issue 17: inside an exchange, 16 connections each sending a bomb of 1.3 MB inflating to
/// 61 MiB took `peer serve` to 1.07 GB (the ratio cap let each inflate to 61 MiB). Now one
/// memory budget, shared by every connection, refuses them with its reason: peak RSS stays
/// under 64 MiB, and the server still serves.
#[test]
fn peer_serve_stays_under_64_mib_under_16_inflation_bombs_sent_after_a_hello() {
    let dir = TempDir::new("bombs-after-hello");
    let (tablet, phone) = (dir.0.join("tablet.db"), dir.0.join("phone.db"));
    record(&tablet, "do_1");
    record(&phone, "do_2");
    let (mut server, addr) = serve(&tablet, &dir.0.join("serve.log"), &["--no-auth"]);
    let bomb = Arc::new(bomb_after_a_hello());
    let before = peak_rss_kib(server.id());
    // One bomb alone is refused with the budget's reason.
    let mut alone = inside_an_exchange(&addr);
    let _ = alone.write_all(&bomb);
    let reason = refusal(&mut alone).unwrap_or_default();
    // Sixteen at once, each from inside an exchange.
    let ready = Arc::new(std::sync::Barrier::new(16));
    let bombers: Vec<JoinHandle<Option<String>>> = (0..16)
        .map(|_| {
            let (addr, bomb, ready) = (addr.clone(), bomb.clone(), ready.clone());
            std::thread::spawn(move || {
                let mut stream = inside_an_exchange(&addr);
                ready.wait();
                let _ = stream.write_all(&bomb);
                refusal(&mut stream)
            })
        })
        .collect();
    let reasons: Vec<Option<String>> = bombers.into_iter().map(|b| b.join().unwrap()).collect();
    let peak = peak_rss_kib(server.id());
    println!(
        "peer serve peak RSS: {:.1} MiB before, {:.1} MiB after 1 + 16 bombs of {} bytes sent after a hello",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        bomb.len(),
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    assert!(
        reason.contains("no memory to spare"),
        "refused with {reason:?}"
    );
    assert!(
        reasons
            .iter()
            .flatten()
            .all(|r| r.contains("no memory to spare")),
        "{reasons:?}"
    );
    // And it still serves a well-behaved peer.
    let (out, _) = headway_within_ceiling(&phone, &["peer", "connect", &addr, "--user", "u1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(state(&tablet), state(&phone));
    server.kill().unwrap();
    let _ = server.wait();
}

#[test]
fn deadline_flags_that_are_not_seconds_above_0_are_refused_with_exit_2_and_create_no_store() {
    let dir = TempDir::new("deadline-flags");
    let db = dir.0.join("never.db");
    for flag in [
        "--handshake-timeout",
        "--message-timeout",
        "--exchange-timeout",
    ] {
        for value in ["0", "-1", "soon", "86401"] {
            for command in [
                &["peer", "serve", "--addr", "127.0.0.1:0"][..],
                &["peer", "connect", "127.0.0.1:9"][..],
            ] {
                let given = format!("{flag}={value}");
                let mut args = command.to_vec();
                args.push(&given);
                let out = headway(&db, &args);
                assert_eq!(
                    out.status.code(),
                    Some(2),
                    "{args:?}: {}",
                    text(&out.stderr)
                );
                assert!(text(&out.stderr).contains(flag), "{}", text(&out.stderr));
                assert!(!db.exists());
            }
        }
    }
}
