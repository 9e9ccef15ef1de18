//! Pairing for `headway peer`: `peer pair`, reading `--key` files, the checks `peer serve`
//! makes before it listens, opening a connection paired or in clear, and the learners a
//! connection may touch.

use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use clap::Args;
use headway::{PairingKey, PeerChannel, PeerMessage, UserId};

use super::deadline::DeadlineStream;
use crate::Failure;

#[derive(Args)]
pub struct PairArgs {
    /// A learner (userId) the key covers; repeat for several.
    #[arg(long, required = true)]
    user: Vec<String>,
    /// The key file to write (readable by you only; an existing file is never overwritten).
    #[arg(long)]
    out: PathBuf,
}

/// `peer pair`: a new key for the learners, written to a new file.
pub fn pair(args: PairArgs) -> Result<(), Failure> {
    let learners = args
        .user
        .into_iter()
        .map(UserId::new)
        .collect::<headway::Result<Vec<_>>>()?;
    let key = PairingKey::generate(learners)?;
    key.write_new(&args.out)?;
    say!(
        "wrote pairing key {} for {} to {}; copy it to the other device (keep it secret)",
        key.id(),
        key.learners()
            .iter()
            .map(UserId::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        args.out.display()
    )?;
    Ok(())
}

/// Reads a `--key` file; any problem is refused input (exit 2).
pub fn read_key(path: &Path) -> Result<PairingKey, Failure> {
    PairingKey::read(path).map_err(|e| Failure::Input(e.to_string()))
}

/// The key must cover `user` (exit 2 before anything is touched).
pub fn check_covers(key: &PairingKey, user: &UserId) -> Result<(), Failure> {
    if key.covers(user) {
        return Ok(());
    }
    Err(Failure::Input(format!(
        "pairing key {} does not cover learner {user}; it covers {}",
        key.id(),
        names(key.learners())
    )))
}

fn names(learners: &[UserId]) -> String {
    learners
        .iter()
        .map(UserId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How `peer serve` authenticates its peers.
pub enum Auth {
    /// Only peers holding one of these keys.
    Paired(Vec<PairingKey>),
    /// Anyone, in clear (`--no-auth`, loopback only).
    NoAuth,
}

/// What `peer serve` was told: keys, or `--no-auth` on a loopback address; anything else is
/// refused before it listens.
pub fn serve_auth(keys: &[PathBuf], no_auth: bool, addr: &str) -> Result<Auth, Failure> {
    match (keys.is_empty(), no_auth) {
        (false, true) => Err(Failure::Input(
            "--no-auth and --key exclude each other".into(),
        )),
        (false, false) => Ok(Auth::Paired(
            keys.iter().map(|k| read_key(k)).collect::<Result<_, _>>()?,
        )),
        (true, false) => Err(Failure::Input(
            "peer serve needs a pairing key: make one with `headway peer pair --user U --out \
             KEYFILE`, copy it to the other device, and pass --key KEYFILE (or --no-auth to \
             serve anyone on a loopback address, for tests)"
                .into(),
        )),
        (true, true) => {
            let addrs: Vec<SocketAddr> = addr
                .to_socket_addrs()
                .map_err(|e| Failure::Input(format!("--addr {addr:?}: {e}")))?
                .collect();
            if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
                return Err(Failure::Input(format!(
                    "--no-auth serves anyone: refused on --addr {addr}, which is not a loopback \
                     address; pair the devices with `headway peer pair` and pass --key"
                )));
            }
            Ok(Auth::NoAuth)
        }
    }
}

/// The learners a connection may read and write.
#[derive(Clone)]
pub enum Scope {
    /// Any learner (no key: `--no-auth`, or a `peer connect` without `--key`).
    Any,
    /// Only the learners the connection's pairing key names.
    Key(PairingKey),
}

impl Scope {
    /// True when the connection may touch `user`.
    pub fn allows(&self, user: &UserId) -> bool {
        match self {
            Scope::Any => true,
            Scope::Key(key) => key.covers(user),
        }
    }

    /// Why a learner outside the scope is refused.
    pub fn refusal(&self, user: &UserId) -> String {
        match self {
            Scope::Any => String::new(),
            Scope::Key(key) => format!(
                "learner {user} is not covered by the connection's pairing key {} (it covers {})",
                key.id(),
                names(key.learners())
            ),
        }
    }
}

/// A connection to a peer: paired (encrypted) or in clear, over the TCP stream that keeps the
/// exchange's deadlines (the handshake's included).
pub enum PeerStream {
    /// No pairing: `--no-auth` on the serving side.
    Clear(DeadlineStream),
    /// A paired, encrypted channel.
    Paired(Box<PeerChannel<DeadlineStream>>),
}

impl Read for PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            PeerStream::Clear(stream) => stream.read(buf),
            PeerStream::Paired(channel) => channel.read(buf),
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            PeerStream::Clear(stream) => stream.write(buf),
            PeerStream::Paired(channel) => channel.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            PeerStream::Clear(stream) => stream.flush(),
            PeerStream::Paired(channel) => channel.flush(),
        }
    }
}

/// What the pairing preamble starts with (see `headway::PeerChannel`).
const PAIRING_MAGIC: &[u8; 4] = b"HWPK";

/// The serving side of a new connection: the pairing handshake with one of the keys (the
/// connection then touches only that key's learners), or, with `--no-auth`, a clear stream
/// whose peer did not offer a key. A refused peer was told why; the error says it for the log.
pub fn accept(stream: DeadlineStream, auth: &Auth) -> anyhow::Result<(PeerStream, Scope)> {
    match auth {
        Auth::Paired(keys) => {
            let (channel, index) = PeerChannel::accept(stream, keys)??;
            let key = keys
                .get(index)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no key at index {index}"))?;
            Ok((PeerStream::Paired(Box::new(channel)), Scope::Key(key)))
        }
        Auth::NoAuth => {
            let mut stream = stream;
            let mut head = [0u8; 4];
            let seen = stream.peek(&mut head)?;
            if seen == head.len() && &head == PAIRING_MAGIC {
                let reason =
                    "this device serves without pairing (--no-auth): connect without --key";
                let _ = PeerMessage::Refused(reason.into()).write_framed(&mut stream);
                // Unread bytes at close would reset the connection before the refusal
                // arrives: read what the peer sent until it hangs up (bounded).
                let _ = std::io::copy(&mut (&mut stream).take(70_000), &mut std::io::sink());
                anyhow::bail!(
                    "the peer offered a pairing key, but this device serves without pairing \
                     (--no-auth)"
                );
            }
            Ok((PeerStream::Clear(stream), Scope::Any))
        }
    }
}

/// The connecting side: the pairing handshake with `key`, or a clear stream without one. A
/// refused key is refused input (exit 2); a transport failure is the peer unavailable (3).
pub fn open(
    stream: DeadlineStream,
    key: Option<&PairingKey>,
    addr: &str,
) -> Result<(PeerStream, Scope), Failure> {
    let Some(key) = key else {
        return Ok((PeerStream::Clear(stream), Scope::Any));
    };
    match PeerChannel::connect(stream, key) {
        Ok(Ok(channel)) => Ok((
            PeerStream::Paired(Box::new(channel)),
            Scope::Key(key.clone()),
        )),
        Ok(Err(refused)) => Err(Failure::Input(format!("{addr}: {refused}"))),
        Err(e) => Err(Failure::Unavailable(format!(
            "the peer {addr} during the pairing handshake: {e}"
        ))),
    }
}
