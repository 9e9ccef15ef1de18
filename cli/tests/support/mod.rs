//! Helpers shared by the binary's tests: a temporary directory, running `headway`, the
//! arguments of one `record`, and a reference server holding one course.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use headway_sunbird_server::{BatchStatus, ReferenceServer, ServerConfig};
use serde_json::Value;

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        // A name from the OS's random source, made by `create_dir` (never a folder that
        // someone else made first).
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "headway-cli-{name}-{:016x}",
            u64::from_le_bytes(random)
        ));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `headway --db DB ARGS...` with no `HEADWAY_DB` from the environment.
pub fn headway(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("HEADWAY_DB")
        .output()
        .unwrap()
}

/// `headway --db DB peer serve --addr 127.0.0.1:0 EXTRA...` with its stderr going to `stderr`;
/// returns the running process and the address it printed that it listens on.
pub fn peer_serve(db: &Path, extra: &[&str], stderr: Stdio) -> (Child, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_headway"))
        .arg("--db")
        .arg(db)
        .args(["peer", "serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .env_remove("HEADWAY_DB")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    (server, addr)
}

/// [`headway`] from async code, on a blocking thread so an in-process server keeps serving.
pub async fn headway_async(db: &Path, args: &[&str]) -> Output {
    let db = db.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        headway(&db, &args)
    })
    .await
    .unwrap()
}

/// A process's output as text, for assertions and their messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a `headway ... --json` that exited 0 printed; fails the test, showing stderr, otherwise.
pub fn json_of(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The arguments of `headway record` for one item, `[user, course, batch, content]`, with a
/// status and a progress as typed on a command line; extend them with flags such as `--at`.
pub fn record_args<'a>(item: [&'a str; 4], status: &'a str, progress: &'a str) -> Vec<&'a str> {
    let [user, course, batch, content] = item;
    vec![
        "record",
        "--user",
        user,
        "--course",
        course,
        "--batch",
        batch,
        "--content",
        content,
        "--status",
        status,
        "--progress",
        progress,
    ]
}

/// A reference server on 127.0.0.1 where batch `closed` of course `do_course` is closed.
pub async fn server_with_a_closed_batch() -> ReferenceServer {
    let server = ReferenceServer::start(ServerConfig::new("127.0.0.1:0"))
        .await
        .unwrap();
    server
        .service()
        .put_batch("closed", "do_course", BatchStatus::Closed)
        .unwrap();
    server
}

/// A reference server on 127.0.0.1 holding course `do_course` ("Fractions", leaves `do_0000`
/// to `do_0003`) with its ongoing batch `0130`, `user` enrolled in it at `enrolled_at` (ms).
pub async fn server_with_a_course(user: &str, enrolled_at: i64) -> ReferenceServer {
    let server = ReferenceServer::start(ServerConfig::new("127.0.0.1:0"))
        .await
        .unwrap();
    let leaves: Vec<String> = (0..4).map(|c| format!("do_{c:04}")).collect();
    server
        .service()
        .put_course("do_course", "Fractions", &leaves)
        .unwrap();
    server
        .service()
        .put_batch("0130", "do_course", BatchStatus::Ongoing)
        .unwrap();
    server
        .service()
        .enrol(user, "do_course", "0130", enrolled_at)
        .unwrap();
    server
}
