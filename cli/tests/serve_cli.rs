//! `headway serve` as a client population sees it: clients that stall half-way through a
//! request are cut off after the configured deadline, and others are answered meanwhile.
#![cfg(test)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `headway serve` on a free port of 127.0.0.1 with `args`; returns the child and its address.
fn spawn_serve(args: &[&str]) -> (Child, String) {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_headway"))
        .args(["serve", "--addr", &addr])
        .args(args)
        .env_remove("HEADWAY_API_KEY")
        .env_remove("HEADWAY_TOKENS")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains(&addr), "{line}");
    (child, addr)
}

/// Sends `bytes` and leaves the connection open, as a stalled client does.
fn stall(addr: &str, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

/// Waits (at most `ceiling`) for the server to end the connection; returns what it sent first.
fn closed_by_the_server(mut stream: TcpStream, ceiling: Duration) -> String {
    stream.set_read_timeout(Some(ceiling)).unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server kept a stalled connection open past {ceiling:?}: {e}"),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// One complete request; returns the status code.
fn get_status(addr: &str, path: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

// Issue 17, fault 9: 1,100 partial request lines held `headway serve` for as long as they stayed
// open (axum::serve sets no deadline on a request's head or body).
#[test]
fn clients_stalled_mid_request_are_cut_off_and_others_are_answered_meanwhile() {
    let (mut server, addr) = spawn_serve(&["--request-timeout-ms", "300"]);
    let started = Instant::now();
    let half_lines: Vec<TcpStream> = (0..8)
        .map(|_| stall(&addr, b"GET /api/course/v1/user/enrollment/li"))
        .collect();
    let half_body = stall(
        &addr,
        b"PATCH /api/course/v1/content/state/update HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"request\":",
    );
    // While they stall, another client is answered.
    assert_eq!(get_status(&addr, "/admin/stats"), 200);
    // Generous ceiling: the deadline is 300 ms, a loaded machine may take far longer.
    let ceiling = Duration::from_secs(20);
    for stream in half_lines {
        let answer = closed_by_the_server(stream, ceiling);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    let answer = closed_by_the_server(half_body, ceiling);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // And the service still answers.
    assert_eq!(get_status(&addr, "/admin/stats"), 200);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_request_timeout_of_zero_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_headway"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--request-timeout-ms",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
