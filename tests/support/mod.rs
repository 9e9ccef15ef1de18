//! Helpers shared by the integration tests: temporary directories, ids, update builders,
//! seeds, snapshots, and the peer tests' live exchange and peer-file framing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use headway::{
    ContentKey, Hello, PairingKey, PeerChannel, PeerMessage, PeerSession, ProgressUpdate, Role,
    Status, Store, Timestamp, UserId,
};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        // A name from the OS's random source, made by `create_dir` (never a folder that
        // someone else made first).
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "headway-test-{name}-{:016x}",
            u64::from_le_bytes(random)
        ));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The learner `id`, validated (every id in these tests is valid).
pub fn user_id(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

pub fn key(user: &str, content: &str) -> ContentKey {
    ContentKey::new(user, "do_course", "0130000000000000001", content).unwrap()
}

/// An update consumed at `at_ms` milliseconds since the epoch.
pub fn update(user: &str, content: &str, status: i64, progress: i64, at_ms: i64) -> ProgressUpdate {
    ProgressUpdate::new(
        key(user, content),
        Status::try_from(status).unwrap(),
        progress,
    )
    .unwrap()
    .consumed_at(Timestamp::from_millis(at_ms).unwrap())
    .unwrap()
}

/// A small deterministic generator (SplitMix64) for tests that need randomness with a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A seed from `HEADWAY_SEED`, or from the clock; printed so a failure can be replayed.
pub fn test_seed() -> u64 {
    let seed = std::env::var("HEADWAY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Timestamp::now().as_millis() as u64);
    eprintln!("HEADWAY_SEED={seed}");
    seed
}

/// Each content item's joined state, as one device holds it.
pub type Snapshot = std::collections::BTreeMap<headway::ContentKey, headway::ContentState>;

/// A device's items as a [`Snapshot`].
pub fn snapshot(items: Vec<headway::ContentItem>) -> Snapshot {
    items
        .into_iter()
        .map(headway::ContentItem::into_parts)
        .collect()
}

/// Ok when every state in `lower` is covered by `upper`'s state for the same key.
pub fn covers(upper: &Snapshot, lower: &Snapshot) -> Result<(), String> {
    for (key, state) in lower {
        match upper.get(key) {
            Some(held) if held.covers(state) => {}
            other => return Err(format!("{key:?}: holds {other:?}, should cover {state:?}")),
        }
    }
    Ok(())
}

/// Runs a seeded scenario over many seeds and fails naming every seed that failed or
/// panicked: `HEADWAY_SEED=N` replays one; otherwise `count_var` (an environment variable)
/// sets how many seeds run, `default` when unset.
pub fn run_seeds(count_var: &str, default: u64, run: impl Fn(u64) -> Result<(), String>) {
    let seeds: Vec<u64> = match std::env::var("HEADWAY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => {
            let count = std::env::var(count_var)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(default);
            (0..count).collect()
        }
    };
    let mut failures = Vec::new();
    for &seed in &seeds {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed)))
            .unwrap_or_else(|p| Err(format!("panicked: {:?}", p.downcast_ref::<String>())));
        if let Err(reason) = outcome {
            eprintln!("HEADWAY_SEED={seed} fails: {reason}");
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed; replay with HEADWAY_SEED=N: {failures:?}",
        failures.len(),
        seeds.len()
    );
    eprintln!("{} seeds passed", seeds.len());
}

/// One live exchange for learner `user`, `initiator` starting, every message in both
/// directions carried as bytes (encoded, then decoded) the way a transport carries it.
/// Returns the bytes that crossed; the first error of either side, or a session that does not
/// finish, is an `Err` naming the side.
pub fn exchange(initiator: &Store, responder: &Store, user: &str) -> Result<usize, String> {
    exchange_cut_after(initiator, responder, user, None)?
        .ok_or_else(|| "an uncut exchange was cut".to_string())
}

/// [`exchange`], with the transport dropping after `cut` delivered messages when given:
/// `Ok(None)` when it dropped, what was delivered having been handled.
pub fn exchange_cut_after(
    initiator_store: &Store,
    responder_store: &Store,
    user: &str,
    cut: Option<usize>,
) -> Result<Option<usize>, String> {
    let mut initiator = PeerSession::new(&user_id(user), Role::Initiator);
    let mut responder = PeerSession::new(&user_id(user), Role::Responder);
    let carry = |message: PeerMessage, bytes: &mut usize| {
        let wire = message.encode();
        *bytes += wire.len();
        PeerMessage::decode(&wire).map_err(|e| e.to_string())
    };
    let mut bytes = 0;
    let mut delivered = 0;
    let mut outgoing = vec![initiator
        .start(initiator_store)
        .map_err(|e| e.to_string())?];
    while let Some(message) = outgoing.pop() {
        if cut.is_some_and(|c| delivered >= c) {
            return Ok(None);
        }
        delivered += 1;
        let message = carry(message, &mut bytes)?;
        for reply in responder
            .handle(responder_store, message)
            .map_err(|e| format!("responder: {e}"))?
        {
            if cut.is_some_and(|c| delivered >= c) {
                return Ok(None);
            }
            delivered += 1;
            let reply = carry(reply, &mut bytes)?;
            outgoing.extend(
                initiator
                    .handle(initiator_store, reply)
                    .map_err(|e| format!("initiator: {e}"))?,
            );
        }
    }
    if initiator.is_finished() {
        Ok(Some(bytes))
    } else {
        Err("the live exchange did not finish".into())
    }
}

/// [`exchange`] through the paired, encrypted channel ([`PeerChannel`]) both ends open with
/// `key`, over a Unix socket pair: the responder answers on its own thread, every message
/// framed as `peer serve` and `peer connect` frame it. Returns the framed bytes the initiator
/// sent and received (before encryption).
pub fn exchange_paired(
    initiator_store: &Store,
    responder_store: &Store,
    user: &str,
    key: &PairingKey,
) -> Result<usize, String> {
    let (a, b) = std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
    std::thread::scope(|scope| {
        let responder = scope.spawn(move || -> Result<(), String> {
            let keys = [key.clone()];
            let (mut channel, _) = PeerChannel::accept(b, &keys)
                .map_err(|e| format!("responder: {e}"))?
                .map_err(|e| format!("responder: {e}"))?;
            let mut session = PeerSession::new(&user_id(user), Role::Responder);
            while let Some(message) =
                PeerMessage::read_framed(&mut channel).map_err(|e| format!("responder: {e}"))?
            {
                let message = message.map_err(|e| format!("responder: {e}"))?;
                for reply in session
                    .handle(responder_store, message)
                    .map_err(|e| format!("responder: {e}"))?
                {
                    reply
                        .write_framed(&mut channel)
                        .map_err(|e| format!("responder: {e}"))?;
                }
            }
            Ok(())
        });
        let initiated = (|| -> Result<usize, String> {
            let mut channel = PeerChannel::connect(a, key)
                .map_err(|e| format!("initiator: {e}"))?
                .map_err(|e| format!("initiator: {e}"))?;
            let mut session = PeerSession::new(&user_id(user), Role::Initiator);
            let mut bytes = 0;
            let mut outgoing = vec![session.start(initiator_store).map_err(|e| e.to_string())?];
            while let Some(message) = outgoing.pop() {
                bytes += message
                    .write_framed(&mut channel)
                    .map_err(|e| format!("initiator: {e}"))?;
                let reply = PeerMessage::read_framed(&mut channel)
                    .map_err(|e| format!("initiator: {e}"))?
                    .ok_or("the responder hung up")?
                    .map_err(|e| format!("initiator: {e}"))?;
                bytes += reply.encode().len();
                outgoing.extend(
                    session
                        .handle(initiator_store, reply)
                        .map_err(|e| format!("initiator: {e}"))?,
                );
            }
            if session.is_finished() {
                Ok(bytes)
            } else {
                Err("the live exchange did not finish".into())
            }
            // The channel closes here: the responder sees the end and returns.
        })();
        let answered = responder
            .join()
            .map_err(|_| "the responder panicked".to_string())?;
        let bytes = initiated?;
        answered?;
        Ok(bytes)
    })
}

/// A full round of live exchanges for `user`: along the chain of `stores` and back, so that
/// every store ends up with what any of them held.
pub fn exchange_along_the_chain_and_back(stores: &[&Store], user: &str) -> Result<(), String> {
    for pair in stores.windows(2) {
        exchange(pair[0], pair[1], user).map_err(|e| format!("final: {e}"))?;
    }
    for pair in stores.windows(2).rev() {
        exchange(pair[1], pair[0], user).map_err(|e| format!("final: {e}"))?;
    }
    Ok(())
}

/// A peer file's hello and body, read with the product's framing
/// ([`PeerMessage::read_framed`]).
pub fn peer_file(file: &[u8]) -> (Hello, PeerMessage) {
    let mut input = file;
    let mut next = || {
        PeerMessage::read_framed(&mut input)
            .unwrap()
            .expect("a frame")
            .unwrap()
    };
    let PeerMessage::Hello(hello) = next() else {
        panic!("a peer file starts with a hello")
    };
    (hello, next())
}

/// `messages` framed one after the other ([`PeerMessage::write_framed`]), as a peer file or a
/// connection carries them.
pub fn framed(messages: &[PeerMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        message.write_framed(&mut out).unwrap();
    }
    out
}
