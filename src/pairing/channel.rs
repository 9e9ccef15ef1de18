//! The live channel between two paired devices: a clear preamble naming the key, a Noise
//! handshake proving both ends hold it, then every byte encrypted.
//!
//! Wire: the initiator sends `HWPK`, a version and the 16-byte key id, then the handshake's
//! first Noise message; the responder answers `HWPK` and a status byte: 0 and the second Noise
//! message, or a refusal (unknown key, failed handshake) and its reason. After that, each way,
//! Noise transport messages of at most 65535 bytes, each behind a 2-byte length. The framing
//! of [`PeerMessage`] runs inside unchanged.

use std::io::{self, Read, Write};

use crate::error::{Error, Result};
use crate::pairing::PairingKey;
use crate::peer::PeerMessage;

/// The Noise pattern: no static keys, the pairing secret as the pre-shared key from the
/// first message, so both ends prove they hold it before anything else is said.
const NOISE_PARAMS: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// What the preamble and the responder's answer start with.
const MAGIC: &[u8; 4] = b"HWPK";
/// The channel's version.
const VERSION: u8 = 1;
/// The largest Noise message.
const MAX_NOISE_MESSAGE: usize = 65535;
/// Noise's authentication tag.
const TAG_LEN: usize = 16;
/// The most plaintext one transport message carries.
const MAX_CHUNK: usize = MAX_NOISE_MESSAGE - TAG_LEN;

const STATUS_OK: u8 = 0;
const STATUS_UNKNOWN_KEY: u8 = 1;
const STATUS_HANDSHAKE_FAILED: u8 = 2;

/// The longest clear refusal read before a handshake.
const MAX_CLEAR_REFUSAL: usize = 8 * 1024;

/// A byte stream to a paired device: everything written is encrypted, everything read was
/// sent by a device holding the same pairing key, unaltered and in order. It buffers at most
/// one transport message (64 KiB) each way; `flush` sends what is buffered.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use headway::{PairingKey, PeerChannel, UserId};
/// let key = PairingKey::generate([UserId::new("asha")?])?;
/// let (a, b) = UnixStream::pair()?;
/// let server_keys = [key.clone()];
/// let server = std::thread::spawn(move || -> Result<Vec<u8>, String> {
///     let (mut channel, index) = PeerChannel::accept(b, &server_keys)
///         .map_err(|e| e.to_string())?
///         .map_err(|e| e.to_string())?;
///     assert_eq!(index, 0);
///     let mut hello = [0u8; 5];
///     channel.read_exact(&mut hello).map_err(|e| e.to_string())?;
///     Ok(hello.to_vec())
/// });
/// let mut channel = PeerChannel::connect(a, &key)??;
/// channel.write_all(b"hello")?;
/// channel.flush()?;
/// assert_eq!(server.join().unwrap()?, b"hello");
/// # Ok(()) }
/// ```
pub struct PeerChannel<S> {
    stream: S,
    noise: snow::TransportState,
    /// Decrypted bytes not read yet, and how far they were read.
    incoming: Vec<u8>,
    read_from: usize,
    /// Plaintext written but not sent yet (at most [`MAX_CHUNK`]).
    outgoing: Vec<u8>,
}

fn not_paired(reason: impl Into<String>) -> Error {
    Error::NotPaired {
        reason: reason.into(),
    }
}

fn noise_failed(e: snow::Error) -> Error {
    not_paired(format!("the pairing handshake failed: {e}"))
}

/// The handshake's prologue: the preamble and the key's learners, so two keys that share a
/// secret but name other learners never agree.
fn prologue(preamble: &[u8], key: &PairingKey) -> Vec<u8> {
    let mut out = preamble.to_vec();
    out.extend_from_slice(&key.learners_bytes());
    out
}

fn preamble(key: &PairingKey) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    out.extend_from_slice(key.id_bytes());
    out
}

fn builder<'a>(key: &'a PairingKey, prologue: &'a [u8]) -> Result<snow::Builder<'a>> {
    let params: snow::params::NoiseParams = NOISE_PARAMS
        .parse()
        .map_err(|e: snow::Error| not_paired(format!("noise parameters: {e}")))?;
    snow::Builder::new(params)
        .psk(0, key.secret())
        .and_then(|b| b.prologue(prologue))
        .map_err(noise_failed)
}

fn write_u16_message(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a noise message too large"))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)
}

/// One length-prefixed message, or `None` at a clean end before its length.
fn read_u16_message(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let mut filled = 0;
    while filled < len.len() {
        match input.read(&mut len[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(closed_mid_message()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(len))];
    input.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

fn closed_mid_message() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "it closed the connection mid-message",
    )
}

fn read_exact_or_closed(input: &mut impl Read, bytes: &mut [u8]) -> io::Result<()> {
    input.read_exact(bytes).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => closed_mid_message(),
        _ => e,
    })
}

impl<S: Read + Write> PeerChannel<S> {
    /// Opens the channel from the initiating side (`peer connect`): sends the preamble naming
    /// `key`, runs the handshake. The outer error is the transport's (unreachable, reset,
    /// timed out); the inner one, [`Error::NotPaired`], says why the peer refused or was
    /// refused (it does not hold this key, it talks without pairing, the handshake failed).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::os::unix::net::UnixStream;
    /// use headway::{Error, PairingKey, PeerChannel, UserId};
    /// let ours = PairingKey::generate([UserId::new("asha")?])?;
    /// let theirs = [PairingKey::generate([UserId::new("asha")?])?];
    /// let (a, b) = UnixStream::pair()?;
    /// let server = std::thread::spawn(move || PeerChannel::accept(b, &theirs).map(|r| r.is_ok()));
    /// let refused = PeerChannel::connect(a, &ours)?.unwrap_err();
    /// assert!(matches!(refused, Error::NotPaired { .. }));
    /// assert!(!server.join().unwrap()?); // the server refused it too
    /// # Ok(()) }
    /// ```
    pub fn connect(mut stream: S, key: &PairingKey) -> io::Result<Result<PeerChannel<S>>> {
        let preamble = preamble(key);
        let prologue = prologue(&preamble, key);
        let mut noise =
            match builder(key, &prologue).and_then(|b| b.build_initiator().map_err(noise_failed)) {
                Ok(noise) => noise,
                Err(e) => return Ok(Err(e)),
            };
        let mut first = vec![0u8; MAX_NOISE_MESSAGE];
        let len = match noise.write_message(&[], &mut first) {
            Ok(len) => len,
            Err(e) => return Ok(Err(noise_failed(e))),
        };
        stream.write_all(&preamble)?;
        write_u16_message(&mut stream, &first[..len])?;
        stream.flush()?;

        let mut head = [0u8; 4];
        read_exact_or_closed(&mut stream, &mut head)?;
        if &head != MAGIC {
            return Ok(Err(clear_answer(&mut stream, head)?));
        }
        let mut status = [0u8; 1];
        read_exact_or_closed(&mut stream, &mut status)?;
        let message = read_u16_message(&mut stream)?.ok_or_else(closed_mid_message)?;
        match status[0] {
            STATUS_OK => {}
            STATUS_UNKNOWN_KEY => {
                return Ok(Err(not_paired(format!(
                    "the peer does not hold pairing key {} ({}); pair the devices again with \
                     `headway peer pair`",
                    key.id(),
                    String::from_utf8_lossy(&message)
                ))))
            }
            STATUS_HANDSHAKE_FAILED => {
                return Ok(Err(not_paired(format!(
                    "the peer holds another key under id {} ({})",
                    key.id(),
                    String::from_utf8_lossy(&message)
                ))))
            }
            other => {
                return Ok(Err(not_paired(format!(
                    "the peer answered the pairing handshake with unknown status {other}"
                ))))
            }
        }
        let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
        if let Err(e) = noise.read_message(&message, &mut payload) {
            return Ok(Err(not_paired(format!(
                "the peer did not prove it holds pairing key {}: {e}",
                key.id()
            ))));
        }
        Ok(noise
            .into_transport_mode()
            .map(|noise| PeerChannel::new(stream, noise))
            .map_err(noise_failed))
    }

    /// Opens the channel from the answering side (`peer serve`) with whichever of `keys` the
    /// preamble names, returning its index. A peer that talks in clear, names an unknown key or
    /// fails the handshake is told why (in clear) and refused with [`Error::NotPaired`];
    /// nothing else is read from it. The outer error is the transport's.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::os::unix::net::UnixStream;
    /// use headway::{PairingKey, PeerChannel, PeerMessage, UserId};
    /// let keys = [PairingKey::generate([UserId::new("asha")?])?];
    /// let (mut a, b) = UnixStream::pair()?;
    /// let server = std::thread::spawn(move || PeerChannel::accept(b, &keys).map(|r| r.is_ok()));
    /// PeerMessage::ListLearners.write_framed(&mut a)?; // a client talking in clear
    /// let told = PeerMessage::read_framed(&mut a)?;
    /// assert!(matches!(told, Some(Ok(PeerMessage::Refused(_)))));
    /// drop(a);
    /// assert!(!server.join().unwrap()?);
    /// # Ok(()) }
    /// ```
    pub fn accept(
        mut stream: S,
        keys: &[PairingKey],
    ) -> io::Result<Result<(PeerChannel<S>, usize)>> {
        let mut head = [0u8; 4];
        read_exact_or_closed(&mut stream, &mut head)?;
        if &head != MAGIC {
            let reason = "this device talks only to paired peers: connect with --key KEYFILE \
                          (a key made by `headway peer pair`)";
            // Best effort: the peer may already be gone.
            let _ = PeerMessage::Refused(reason.into()).write_framed(&mut stream);
            drain(&mut stream);
            return Ok(Err(not_paired(
                "the peer talks without a pairing key (it sent no pairing preamble)",
            )));
        }
        let mut rest = [0u8; 17];
        read_exact_or_closed(&mut stream, &mut rest)?;
        let mut preamble = MAGIC.to_vec();
        preamble.extend_from_slice(&rest);
        if rest[0] != VERSION {
            let reason = format!("pairing channel version {} is not this device's", rest[0]);
            refuse_handshake(&mut stream, STATUS_HANDSHAKE_FAILED, &reason)?;
            return Ok(Err(not_paired(reason)));
        }
        let Some(index) = keys.iter().position(|k| k.id_bytes()[..] == rest[1..]) else {
            let reason = "this device holds no pairing key with that id";
            refuse_handshake(&mut stream, STATUS_UNKNOWN_KEY, reason)?;
            return Ok(Err(not_paired(format!(
                "the peer offered pairing key {}, which this device does not hold",
                rest[1..]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ))));
        };
        let key = &keys[index];
        let first = read_u16_message(&mut stream)?.ok_or_else(closed_mid_message)?;
        let prologue = prologue(&preamble, key);
        let mut noise =
            match builder(key, &prologue).and_then(|b| b.build_responder().map_err(noise_failed)) {
                Ok(noise) => noise,
                Err(e) => return Ok(Err(e)),
            };
        let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
        if noise.read_message(&first, &mut payload).is_err() {
            let reason = "the handshake failed: the two devices hold different keys under one id";
            refuse_handshake(&mut stream, STATUS_HANDSHAKE_FAILED, reason)?;
            return Ok(Err(not_paired(format!(
                "the peer did not prove it holds pairing key {}",
                key.id()
            ))));
        }
        let mut second = vec![0u8; MAX_NOISE_MESSAGE];
        let len = match noise.write_message(&[], &mut second) {
            Ok(len) => len,
            Err(e) => return Ok(Err(noise_failed(e))),
        };
        stream.write_all(MAGIC)?;
        stream.write_all(&[STATUS_OK])?;
        write_u16_message(&mut stream, &second[..len])?;
        stream.flush()?;
        Ok(noise
            .into_transport_mode()
            .map(|noise| (PeerChannel::new(stream, noise), index))
            .map_err(noise_failed))
    }

    fn new(stream: S, noise: snow::TransportState) -> PeerChannel<S> {
        PeerChannel {
            stream,
            noise,
            incoming: Vec::new(),
            read_from: 0,
            outgoing: Vec::new(),
        }
    }

    /// The stream underneath (to set a timeout, say).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::os::unix::net::UnixStream;
    /// use headway::{PairingKey, PeerChannel, UserId};
    /// let key = PairingKey::generate([UserId::new("asha")?])?;
    /// let keys = [key.clone()];
    /// let (a, b) = UnixStream::pair()?;
    /// let server = std::thread::spawn(move || PeerChannel::accept(b, &keys).map(|r| r.is_ok()));
    /// let channel = PeerChannel::connect(a, &key)??;
    /// channel.get_ref().set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    /// assert!(server.join().unwrap()?);
    /// # Ok(()) }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Encrypts and sends the buffered plaintext as one transport message.
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.outgoing.is_empty() {
            return Ok(());
        }
        let mut message = vec![0u8; self.outgoing.len() + TAG_LEN];
        let len = self
            .noise
            .write_message(&self.outgoing, &mut message)
            .map_err(|e| io::Error::other(format!("encrypting for the peer failed: {e}")))?;
        self.outgoing.clear();
        write_u16_message(&mut self.stream, &message[..len])
    }
}

/// Tells the initiator why its handshake is refused, then waits for it to hang up.
fn refuse_handshake(stream: &mut (impl Read + Write), status: u8, reason: &str) -> io::Result<()> {
    stream.write_all(MAGIC)?;
    stream.write_all(&[status])?;
    write_u16_message(stream, reason.as_bytes())?;
    stream.flush()?;
    drain(stream);
    Ok(())
}

/// The most bytes read from a refused peer while waiting for it to hang up.
const MAX_DRAINED: usize = MAX_NOISE_MESSAGE + 64;

/// Reads (and drops) what a refused peer still sends, until it hangs up, a read fails (the
/// caller's timeout), or [`MAX_DRAINED`] bytes: closing a socket with unread bytes resets
/// it, and the reset could reach the peer before the refusal does.
fn drain(stream: &mut impl Read) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < MAX_DRAINED {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// What a peer that answered the preamble without a handshake meant: a headway peer serving
/// without keys says so in a clear refusal; anything else is no paired peer.
fn clear_answer(stream: &mut impl Read, head: [u8; 4]) -> io::Result<Error> {
    if &head == b"HTTP" {
        return Ok(not_paired(
            "it answered like an HTTP server, not a headway peer",
        ));
    }
    let len = usize::try_from(u32::from_be_bytes(head)).unwrap_or(usize::MAX);
    if len > MAX_CLEAR_REFUSAL {
        return Ok(not_paired(
            "it answered without a pairing handshake: not a paired headway peer",
        ));
    }
    let mut bytes = vec![0u8; len];
    read_exact_or_closed(stream, &mut bytes)?;
    Ok(not_paired(match PeerMessage::decode(&bytes) {
        Ok(PeerMessage::Refused(reason)) => format!(
            "the peer talks without pairing (it serves with --no-auth) and refused the \
             pairing key: {}",
            crate::error::shorten(&reason)
        ),
        _ => "it answered without a pairing handshake: not a paired headway peer".into(),
    }))
}

impl<S: Read + Write> Read for PeerChannel<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.read_from == self.incoming.len() {
            let Some(message) = read_u16_message(&mut self.stream)? else {
                return Ok(0);
            };
            let mut plain = vec![0u8; message.len()];
            let len = self.noise.read_message(&message, &mut plain).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a message on the paired channel does not decrypt: not the paired peer, \
                     or bytes changed on the way",
                )
            })?;
            plain.truncate(len);
            self.incoming = plain;
            self.read_from = 0;
        }
        let n = buf.len().min(self.incoming.len() - self.read_from);
        buf[..n].copy_from_slice(&self.incoming[self.read_from..self.read_from + n]);
        self.read_from += n;
        Ok(n)
    }
}

impl<S: Read + Write> Write for PeerChannel<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.outgoing.len() == MAX_CHUNK {
            self.send_buffered()?;
        }
        let n = buf.len().min(MAX_CHUNK - self.outgoing.len());
        self.outgoing.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()?;
        self.stream.flush()
    }
}

impl<S> std::fmt::Debug for PeerChannel<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerChannel").finish_non_exhaustive()
    }
}
