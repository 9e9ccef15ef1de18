//! Device-to-device sync of a learner's document over any transport: the messages two devices
//! exchange, their byte format, and the session that drives one exchange.
//!
//! Two documents of the same *epoch* (the snapshot their history starts from) exchange changes
//! with Automerge's sync protocol, from a sync state kept per peer, so a later sync sends only
//! what the peer lacks. Documents of different epochs (one side compacted, or they never met)
//! first converge on one: the side whose document holds more history adopts the other's
//! document and raises its own states into it (a join), then the sync protocol runs. Bytes
//! from a peer are untrusted: every message is checked, and a bad one changes nothing.
//!
//! The session ([`PeerSession`], in `session.rs`) is a machine without IO: it reaches the
//! learner's document only through a [`PeerReplica`] (`replica.rs`), which the store
//! implements (`store_replica.rs`, a thin driver over the steps of `src/store/peers.rs`) and
//! [`MemoryReplica`] (`memory.rs`) implements in memory, for tests, simulations and fuzzing.

mod budget;
mod memory;
mod replica;
mod session;
mod store_replica;

use std::io::{self, Read, Write};

pub use crate::store::InEpoch;
pub use budget::{Charge, MemoryBudget, FREE_PER_MESSAGE};
pub use memory::MemoryReplica;
pub use replica::PeerReplica;
pub use session::{PeerSession, Role};

use crate::error::{Error, Result};
use crate::id::UserId;

const MAGIC: &[u8; 4] = b"HWPS";
/// What a sealed peer file starts with (read as a frame's length, past any message's).
pub(crate) const SEALED_FILE_MAGIC: &[u8; 4] = b"HWPF";
const VERSION: u8 = 1;
/// The largest message accepted: a learner's whole document is far smaller.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// The largest frame accepted before a hello: a hello with 4,096 heads and two ids of 4,096
/// bytes (the most [`PeerMessage::decode`] takes) is about 136 KiB.
pub const OPENING_FRAME_LEN: usize = 256 * 1024;

/// How many times its deflated size a payload may inflate to: about deflate's own maximum
/// (1,032), so no legitimate payload is refused for being repetitive (issue 17: a ratio of 64
/// refused a 300,000-byte sync message of period 251). What bounds a bomb's memory is the
/// [`MemoryBudget`] the reader charges as the payload inflates, and [`MAX_MESSAGE_LEN`].
pub const MAX_INFLATION_RATIO: usize = 1024;

/// How much one frame may carry at a point of a live exchange (issue 17: a 292 KB frame used
/// to inflate to 64 MiB before any hello).
///
/// ```
/// use headway::{FrameLimit, PeerMessage};
/// let zeros = PeerMessage::Sync(vec![0; 1_000_000]).encode(); // about 1 KB on the wire
/// assert!(PeerMessage::decode_within(&zeros, FrameLimit::Opening).is_err()); // before a hello
/// assert!(PeerMessage::decode_within(&zeros, FrameLimit::Exchange).is_ok()); // inside one
/// let hello_first = PeerMessage::ListLearners.encode();
/// assert!(PeerMessage::decode_within(&hello_first, FrameLimit::Opening).is_ok());
/// assert_eq!(FrameLimit::Opening.max_frame(), headway::OPENING_FRAME_LEN);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameLimit {
    /// Before a hello was accepted: frames of at most [`OPENING_FRAME_LEN`] bytes, and no
    /// payload inflates (a hello, an idle, a list request are never deflated).
    Opening,
    /// Inside an exchange: frames of at most [`MAX_MESSAGE_LEN`] bytes; a document, changes
    /// or a sync message inflate to at most [`MAX_INFLATION_RATIO`] times their deflated
    /// size, and never past [`MAX_MESSAGE_LEN`].
    Exchange,
}

impl FrameLimit {
    /// The longest frame (after its 4-byte length) accepted at this point.
    ///
    /// ```
    /// use headway::{FrameLimit, MAX_MESSAGE_LEN};
    /// assert_eq!(FrameLimit::Exchange.max_frame(), MAX_MESSAGE_LEN);
    /// ```
    pub fn max_frame(self) -> usize {
        match self {
            FrameLimit::Opening => OPENING_FRAME_LEN,
            FrameLimit::Exchange => MAX_MESSAGE_LEN,
        }
    }

    /// The most bytes a deflated payload of `deflated` bytes may inflate to at this point
    /// (`None`: no payload may inflate here).
    ///
    /// ```
    /// use headway::FrameLimit;
    /// assert_eq!(FrameLimit::Opening.max_inflated(1_000), None);
    /// assert_eq!(FrameLimit::Exchange.max_inflated(1_000), Some(1_024_000));
    /// ```
    pub fn max_inflated(self, deflated: usize) -> Option<usize> {
        match self {
            FrameLimit::Opening => None,
            FrameLimit::Exchange => Some(
                deflated
                    .saturating_mul(MAX_INFLATION_RATIO)
                    .min(MAX_MESSAGE_LEN),
            ),
        }
    }
}

/// What a device says about its copy of a learner's document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The learner.
    pub user: UserId,
    /// The sending device's id.
    pub device: String,
    /// The document's epoch.
    pub epoch: Option<[u8; 16]>,
    /// How many changes the document's history holds.
    pub changes: u64,
    /// The document's heads (32-byte change hashes).
    pub heads: Vec<[u8; 32]>,
}

/// One message between two devices.
///
/// ```
/// use headway::PeerMessage;
/// let message = PeerMessage::Sync(vec![1, 2, 3]);
/// assert_eq!(PeerMessage::decode(&message.encode())?, message);
/// let ids: Vec<u8> = (0..10_000).flat_map(|i| format!("do_{i};").into_bytes()).collect();
/// let large = PeerMessage::Document(ids.clone());
/// assert!(large.encode().len() < ids.len() / 2); // deflated on the wire
/// assert_eq!(PeerMessage::decode(&large.encode())?, large);
/// assert!(PeerMessage::decode(b"garbage").is_err());
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerMessage {
    /// Who is speaking, for which learner, from which epoch.
    Hello(Hello),
    /// "Send me your whole document": the sender will adopt it.
    NeedDocument,
    /// A whole document (the receiver adopts it, or joins its state).
    Document(Vec<u8>),
    /// Changes of the sender's epoch (a file export since the peer's last known heads).
    Changes(Vec<u8>),
    /// An Automerge sync message.
    Sync(Vec<u8>),
    /// Nothing more to send.
    Idle,
    /// "Which learners do you hold?" (before exchanges for every learner).
    ListLearners,
    /// The learners a device holds.
    Learners(Vec<UserId>),
    /// The sender abandons the exchange, and why (sent instead of silently closing, so the
    /// other side can report the real reason).
    Refused(String),
}

fn refuse(reason: impl Into<String>) -> Error {
    Error::PeerMessage {
        reason: reason.into(),
    }
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(refuse("the message is truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize> {
        let b = self.take(4)?;
        usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).map_err(|_| refuse("length"))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()?;
        if n > MAX_MESSAGE_LEN {
            return Err(refuse("the message is too large"));
        }
        self.take(n)
    }

    fn text(&mut self) -> Result<String> {
        let n = self.u32()?;
        if n > MAX_TEXT_LEN {
            return Err(refuse("a text field is too long"));
        }
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| refuse("a text field is not UTF-8"))
    }
}

/// The longest text field (an id, a reason) a message may carry.
const MAX_TEXT_LEN: usize = 4096;

/// `text` cut to at most `max` bytes on a character boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Payloads at least this long are deflated: Automerge's sync messages carry changes raw, and a
/// change holding a thousand content ids shrinks several times.
const COMPRESS_FROM: usize = 512;
/// The kind byte's flag for a deflated payload.
const DEFLATED: u8 = 0x80;

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// A buffer whose every growth is charged to a message's [`Charge`] before it is allocated,
/// and never grows past `max` bytes: capacity is charged, not length, so doubling is counted.
struct ChargedVec<'c> {
    bytes: Vec<u8>,
    max: usize,
    charge: &'c mut Charge,
    /// Why the charge refused to grow, kept to return as itself.
    refused: Option<Error>,
}

impl<'c> ChargedVec<'c> {
    fn new(max: usize, charge: &'c mut Charge) -> ChargedVec<'c> {
        ChargedVec {
            bytes: Vec::new(),
            max,
            charge,
            refused: None,
        }
    }

    /// The error for a failed write: the budget's refusal if that was it, else `other`.
    fn failure(&mut self, other: impl FnOnce() -> Error) -> Error {
        self.refused.take().unwrap_or_else(other)
    }
}

impl Write for ChargedVec<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let needed = self.bytes.len().saturating_add(data.len());
        let capacity = self.bytes.capacity();
        if needed > capacity {
            let wanted = capacity
                .saturating_mul(2)
                .max(needed)
                .max(FRAME_BUFFER_START)
                .min(self.max.max(needed));
            if let Err(refused) = self.charge.grow(wanted - capacity) {
                self.refused = Some(refused);
                return Err(io::Error::new(io::ErrorKind::OutOfMemory, "budget"));
            }
            self.bytes.reserve_exact(wanted - self.bytes.len());
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Inflates a payload within what `limit` allows for its size and what `charge` can take: a
/// hostile payload cannot exhaust memory, alone or with others.
fn inflate(bytes: &[u8], limit: FrameLimit, charge: &mut Charge) -> Result<Vec<u8>> {
    let cap = limit.max_inflated(bytes.len()).unwrap_or(0);
    let mut out = ChargedVec::new(cap.saturating_add(1), charge);
    match inflate_into(bytes, limit, &mut out) {
        Ok(()) => Ok(out.bytes),
        Err(other) => Err(out.failure(|| other)),
    }
}

/// Inflates `bytes` into `out`, reading the inflated stream through [`Read::take`]: at most one
/// byte past the cap ever reaches `out`, so a bomb is refused before it is allocated.
fn inflate_into(bytes: &[u8], limit: FrameLimit, out: &mut impl Write) -> Result<()> {
    let Some(cap) = limit.max_inflated(bytes.len()) else {
        return Err(refuse("a compressed payload before a hello"));
    };
    let mut inflated = flate2::read::DeflateDecoder::new(bytes)
        .take(u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1));
    let written = io::copy(&mut inflated, out)
        .map_err(|e| refuse(format!("a compressed payload does not inflate: {e}")))?;
    if written > u64::try_from(cap).unwrap_or(u64::MAX) {
        return Err(refuse(format!(
            "a compressed payload of {} bytes inflates past {cap} bytes, more than its kind can need",
            bytes.len()
        )));
    }
    Ok(())
}

/// Writes a payload with its kind, deflated when that pays.
fn put_payload(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    if bytes.len() >= COMPRESS_FROM {
        let packed = deflate(bytes);
        if packed.len() < bytes.len() && !packed.is_empty() {
            out.push(kind | DEFLATED);
            put_blob(out, &packed);
            return;
        }
    }
    out.push(kind);
    put_blob(out, bytes);
}

fn put_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl PeerMessage {
    /// The message as bytes: `HWPS`, a version, a kind, then the fields, lengths big-endian;
    /// payloads of 512 bytes or more are deflated (the kind's high bit says so).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        match self {
            PeerMessage::Hello(hello) => {
                out.push(1);
                put_blob(&mut out, hello.user.as_bytes());
                put_blob(&mut out, hello.device.as_bytes());
                match hello.epoch {
                    Some(epoch) => {
                        out.push(1);
                        out.extend_from_slice(&epoch);
                    }
                    None => out.push(0),
                }
                out.extend_from_slice(&hello.changes.to_be_bytes());
                out.extend_from_slice(&u32::try_from(hello.heads.len()).unwrap_or(0).to_be_bytes());
                for head in &hello.heads {
                    out.extend_from_slice(head);
                }
            }
            PeerMessage::NeedDocument => out.push(2),
            PeerMessage::Document(bytes) => put_payload(&mut out, 3, bytes),
            PeerMessage::Changes(bytes) => put_payload(&mut out, 4, bytes),
            PeerMessage::Sync(bytes) => put_payload(&mut out, 5, bytes),
            PeerMessage::Idle => out.push(6),
            PeerMessage::ListLearners => out.push(7),
            PeerMessage::Refused(reason) => {
                out.push(9);
                put_blob(&mut out, truncate_utf8(reason, MAX_TEXT_LEN).as_bytes());
            }
            PeerMessage::Learners(users) => {
                out.push(8);
                out.extend_from_slice(&u32::try_from(users.len()).unwrap_or(0).to_be_bytes());
                for user in users {
                    put_blob(&mut out, user.as_bytes());
                }
            }
        }
        out
    }

    /// Reads one message inside an exchange (see [`FrameLimit::Exchange`]); anything
    /// malformed is [`Error::PeerMessage`].
    pub fn decode(bytes: &[u8]) -> Result<PeerMessage> {
        PeerMessage::decode_within(bytes, FrameLimit::Exchange)
    }

    /// Reads one message within what `limit` allows: a payload that would inflate past its
    /// cap is refused before it is inflated whole (see [`FrameLimit`]).
    ///
    /// ```
    /// use headway::{FrameLimit, PeerMessage};
    /// let sync = PeerMessage::Sync(b"a sync message".repeat(100));
    /// assert_eq!(PeerMessage::decode_within(&sync.encode(), FrameLimit::Exchange)?, sync);
    /// assert!(PeerMessage::decode_within(&sync.encode(), FrameLimit::Opening).is_err());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn decode_within(bytes: &[u8], limit: FrameLimit) -> Result<PeerMessage> {
        PeerMessage::decode_charged(bytes, limit, &mut MemoryBudget::unlimited().charge())
    }

    /// [`PeerMessage::decode_within`], charging the payload it copies or inflates to `charge`
    /// as it grows: past the budget it is refused ([`Error::NoMemoryToSpare`]).
    fn decode_charged(bytes: &[u8], limit: FrameLimit, charge: &mut Charge) -> Result<PeerMessage> {
        let mut r = Reader { bytes };
        if r.take(4)? != MAGIC {
            return Err(refuse("not a headway peer message"));
        }
        if r.u8()? != VERSION {
            return Err(refuse("unknown peer message version"));
        }
        let kind = r.u8()?;
        let deflated = kind & DEFLATED != 0 && matches!(kind & !DEFLATED, 3..=5);
        let mut payload = |r: &mut Reader<'_>| -> Result<Vec<u8>> {
            let blob = r.blob()?;
            if deflated {
                inflate(blob, limit, charge)
            } else {
                charge.grow(blob.len())?;
                Ok(blob.to_vec())
            }
        };
        let kind = if deflated { kind & !DEFLATED } else { kind };
        let message = match kind {
            1 => {
                let user = UserId::new(r.text()?).map_err(|e| refuse(e.to_string()))?;
                let device = r.text()?;
                let epoch = match r.u8()? {
                    0 => None,
                    1 => {
                        let mut e = [0u8; 16];
                        e.copy_from_slice(r.take(16)?);
                        Some(e)
                    }
                    _ => return Err(refuse("bad epoch flag")),
                };
                let changes = r.u64()?;
                let count = r.u32()?;
                if count > 4096 {
                    return Err(refuse("too many heads"));
                }
                let mut heads = Vec::with_capacity(count);
                for _ in 0..count {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(r.take(32)?);
                    heads.push(h);
                }
                PeerMessage::Hello(Hello {
                    user,
                    device,
                    epoch,
                    changes,
                    heads,
                })
            }
            2 => PeerMessage::NeedDocument,
            3 => PeerMessage::Document(payload(&mut r)?),
            4 => PeerMessage::Changes(payload(&mut r)?),
            5 => PeerMessage::Sync(payload(&mut r)?),
            6 => PeerMessage::Idle,
            7 => PeerMessage::ListLearners,
            8 => {
                let count = r.u32()?;
                if count > 100_000 {
                    return Err(refuse("too many learners"));
                }
                let mut users = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    let user = UserId::new(r.text()?).map_err(|e| refuse(e.to_string()))?;
                    users.push(user);
                }
                PeerMessage::Learners(users)
            }
            9 => PeerMessage::Refused(r.text()?),
            other => return Err(refuse(format!("unknown peer message kind {other}"))),
        };
        if !r.bytes.is_empty() {
            return Err(refuse("trailing bytes after the message"));
        }
        Ok(message)
    }
}

/// The 4 bytes an HTTP answer starts with, read as a frame's length prefix.
const HTTP_ANSWER: &[u8; 4] = b"HTTP";

/// How much a frame's buffer may grow before the bytes to fill it arrived.
const FRAME_BUFFER_START: usize = 64 * 1024;

/// Framing: how messages travel, over a live connection (a frame per message) or in a peer
/// file (a hello's frame, then a document's or changes' frame).
impl PeerMessage {
    /// Writes the message as one frame: its length (4 bytes, big-endian), then
    /// [`PeerMessage::encode`]'s bytes; flushes, and returns the message's length.
    ///
    /// ```
    /// use headway::PeerMessage;
    /// let mut wire = Vec::new();
    /// let sent = PeerMessage::Idle.write_framed(&mut wire)?;
    /// assert_eq!(wire.len(), 4 + sent);
    /// let mut input = wire.as_slice();
    /// assert_eq!(PeerMessage::read_framed(&mut input)?.transpose()?, Some(PeerMessage::Idle));
    /// assert!(PeerMessage::read_framed(&mut input)?.is_none()); // a clean end
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_framed(&self, out: &mut impl Write) -> io::Result<usize> {
        let bytes = self.encode();
        let len = u32::try_from(bytes.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the message is too large"))?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(&bytes)?;
        out.flush()?;
        Ok(bytes.len())
    }

    /// Reads one frame (see [`PeerMessage::write_framed`]) and decodes its message; `Ok(None)`
    /// when the input ends before a frame starts. Memory follows the bytes that arrive, never
    /// the length the other side announces.
    ///
    /// Two layers of errors, the transport's and the message's. The outer [`io::Error`] is the
    /// input's own, or one of the framing's: [`io::ErrorKind::InvalidData`] when the other side
    /// is not a headway peer (a length prefix that is an HTTP answer or larger than
    /// [`MAX_MESSAGE_LEN`]; the error's text says which), [`io::ErrorKind::UnexpectedEof`]
    /// when the input ends mid-message. The inner [`Error::PeerMessage`] is a whole frame whose
    /// message is malformed.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use headway::PeerMessage;
    /// let http = PeerMessage::read_framed(&mut &b"HTTP/1.1 400 Bad Request"[..]).unwrap_err();
    /// assert_eq!(http.kind(), ErrorKind::InvalidData);
    /// assert_eq!(http.to_string(), "it answered like an HTTP server");
    /// let cut = PeerMessage::read_framed(&mut &[0, 0, 0, 9, b'H'][..]).unwrap_err();
    /// assert_eq!(cut.kind(), ErrorKind::UnexpectedEof);
    /// let garbled = PeerMessage::read_framed(&mut &[0, 0, 0, 2, 1, 2][..])?;
    /// assert!(matches!(garbled, Some(Err(headway::Error::PeerMessage { .. }))));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_framed(input: &mut impl Read) -> io::Result<Option<Result<PeerMessage>>> {
        PeerMessage::read_framed_within(input, FrameLimit::Exchange)
    }

    /// [`PeerMessage::read_framed`] within what `limit` allows: before a hello
    /// ([`FrameLimit::Opening`]) a frame longer than [`OPENING_FRAME_LEN`] is refused from its
    /// length alone, [`io::ErrorKind::InvalidData`], and no payload inflates.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use headway::{FrameLimit, PeerMessage};
    /// let mut wire = Vec::new();
    /// PeerMessage::Document(vec![0; 300_000]).write_framed(&mut wire)?;
    /// let early = PeerMessage::read_framed_within(&mut wire.as_slice(), FrameLimit::Opening)?;
    /// assert!(matches!(early, Some(Err(headway::Error::PeerMessage { .. }))));
    /// let huge = [0x00, 0x10, 0x00, 0x00]; // announces 1 MiB
    /// let refused = PeerMessage::read_framed_within(&mut &huge[..], FrameLimit::Opening);
    /// assert_eq!(refused.unwrap_err().kind(), ErrorKind::InvalidData);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_framed_within(
        input: &mut impl Read,
        limit: FrameLimit,
    ) -> io::Result<Option<Result<PeerMessage>>> {
        let read = PeerMessage::read_framed_budgeted(input, limit, &MemoryBudget::unlimited())?;
        Ok(read.map(|message| message.map(|(message, _charge)| message)))
    }

    /// [`PeerMessage::read_framed_within`], charging `budget` (shared by every connection a
    /// device serves) as the frame's bytes arrive and as its payload inflates, past the
    /// message's first [`FREE_PER_MESSAGE`] bytes. Past the budget the message is refused,
    /// [`Error::NoMemoryToSpare`], with the frame maybe unread to its end (close the
    /// connection). The message comes with its [`Charge`]: hold it while handling the message.
    ///
    /// ```
    /// use headway::{Error, FrameLimit, MemoryBudget, PeerMessage};
    /// let budget = MemoryBudget::new(1024 * 1024);
    /// let mut wire = Vec::new();
    /// PeerMessage::Sync(vec![7; 200_000]).write_framed(&mut wire)?; // 1 KB on the wire
    /// let read = PeerMessage::read_framed_budgeted(&mut wire.as_slice(), FrameLimit::Exchange, &budget)?;
    /// let (message, charge) = read.expect("a frame").expect("a message");
    /// assert!(budget.in_use() > 0);
    /// drop((message, charge));
    /// assert_eq!(budget.in_use(), 0);
    /// let mut bomb = Vec::new();
    /// PeerMessage::Sync(vec![0; 8_000_000]).write_framed(&mut bomb)?;
    /// let read = PeerMessage::read_framed_budgeted(&mut bomb.as_slice(), FrameLimit::Exchange, &budget)?;
    /// assert!(matches!(read, Some(Err(Error::NoMemoryToSpare { .. }))));
    /// assert_eq!(budget.in_use(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_framed_budgeted(
        input: &mut impl Read,
        limit: FrameLimit,
        budget: &MemoryBudget,
    ) -> io::Result<Option<Result<(PeerMessage, Charge)>>> {
        let mut prefix = [0u8; 4];
        let mut filled = 0;
        while filled < prefix.len() {
            match input.read(&mut prefix[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(closed_mid_message()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if &prefix == HTTP_ANSWER {
            return Err(not_a_peer("it answered like an HTTP server".into()));
        }
        let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
        if len > MAX_MESSAGE_LEN {
            return Err(not_a_peer(format!(
                "its first bytes {:?} are no headway frame",
                String::from_utf8_lossy(&prefix)
            )));
        }
        if len > limit.max_frame() {
            return Err(not_a_peer(format!(
                "it announced a frame of {len} bytes before a hello (at most {} before one)",
                limit.max_frame()
            )));
        }
        let mut frame_charge = budget.charge();
        let mut frame = ChargedVec::new(len, &mut frame_charge);
        let copied = io::copy(
            &mut input.take(u64::try_from(len).unwrap_or(u64::MAX)),
            &mut frame,
        );
        if let Some(refused) = frame.refused.take() {
            return Ok(Some(Err(refused)));
        }
        if copied? < u64::try_from(len).unwrap_or(u64::MAX) {
            return Err(closed_mid_message());
        }
        let bytes = frame.bytes;
        // The frame's own allowance stays with the frame; the message is charged afresh, and
        // the frame's charge is given back once the message is decoded.
        let mut charge = budget.charge();
        let message = PeerMessage::decode_charged(&bytes, limit, &mut charge);
        drop(bytes);
        drop(frame_charge);
        Ok(Some(message.map(|message| (message, charge))))
    }
}

fn not_a_peer(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn closed_mid_message() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "it closed the connection mid-message",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that only counts what reaches it.
    #[derive(Default)]
    struct Counted(u64);

    impl Write for Counted {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len() as u64;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Issue 17 (fault 6): a small frame used to inflate to 64 MiB before anything looked at it.
    #[test]
    fn a_payload_that_would_inflate_past_its_kinds_cap_is_refused_without_allocating_it() {
        let bomb = deflate(&vec![0; MAX_MESSAGE_LEN + 1024 * 1024]);
        let cap = FrameLimit::Exchange.max_inflated(bomb.len()).unwrap();
        assert_eq!(cap, MAX_MESSAGE_LEN, "the bomb is {} bytes", bomb.len());
        let mut sink = Counted::default();
        let refused = inflate_into(&bomb, FrameLimit::Exchange, &mut sink).unwrap_err();
        assert!(
            refused.to_string().contains("more than its kind can need"),
            "{refused}"
        );
        assert!(sink.0 <= cap as u64 + 1, "{} bytes inflated", sink.0);
        // The same payload as a framed sync message is refused whole.
        let mut frame = MAGIC.to_vec();
        frame.extend([VERSION, 5 | DEFLATED]);
        put_blob(&mut frame, &bomb);
        assert!(matches!(
            PeerMessage::decode(&frame),
            Err(Error::PeerMessage { .. })
        ));
    }

    /// Issue 17 (fault 6): before a hello nothing inflates, and no frame is large.
    #[test]
    fn before_a_hello_nothing_inflates_and_no_frame_is_large() {
        let ids: Vec<u8> = (0..1000)
            .flat_map(|i| format!("do_{i};").into_bytes())
            .collect();
        let sync = PeerMessage::Sync(ids).encode();
        assert_eq!(sync[5], 5 | DEFLATED);
        assert!(PeerMessage::decode_within(&sync, FrameLimit::Opening).is_err());
        assert!(PeerMessage::decode_within(&sync, FrameLimit::Exchange).is_ok());
        let mut sink = Counted::default();
        assert!(inflate_into(&sync[10..], FrameLimit::Opening, &mut sink).is_err());
        assert_eq!(sink.0, 0);
        let mut wire = (u32::try_from(OPENING_FRAME_LEN + 1).unwrap())
            .to_be_bytes()
            .to_vec();
        wire.extend(b"HWPS");
        let early = PeerMessage::read_framed_within(&mut wire.as_slice(), FrameLimit::Opening);
        assert_eq!(early.unwrap_err().kind(), io::ErrorKind::InvalidData);
        // The largest hello the decoder takes fits before a hello.
        let hello = PeerMessage::Hello(Hello {
            user: UserId::new("u".repeat(crate::id::MAX_ID_LEN)).unwrap(),
            device: "d".repeat(MAX_TEXT_LEN),
            epoch: Some([1; 16]),
            changes: u64::MAX,
            heads: vec![[2; 32]; 4096],
        });
        let mut wire = Vec::new();
        hello.write_framed(&mut wire).unwrap();
        let read = PeerMessage::read_framed_within(&mut wire.as_slice(), FrameLimit::Opening);
        assert_eq!(read.unwrap().unwrap().unwrap(), hello);
    }

    /// Issue 17: a bomb inside an exchange is refused once it passes the shared budget, with
    /// the budget's reason, having charged no more than the budget; everything comes back.
    #[test]
    fn a_bomb_past_the_shared_budget_is_refused_and_its_charge_comes_back() {
        let budget = MemoryBudget::new(4 * 1024 * 1024);
        let held = budget.charge();
        let mut wire = Vec::new();
        PeerMessage::Sync(vec![0; 60 * 1024 * 1024])
            .write_framed(&mut wire)
            .unwrap();
        let read =
            PeerMessage::read_framed_budgeted(&mut wire.as_slice(), FrameLimit::Exchange, &budget)
                .unwrap()
                .unwrap();
        let refused = read.map(|_| ()).unwrap_err();
        assert!(
            matches!(refused, Error::NoMemoryToSpare { budget: b, .. } if b == 4 * 1024 * 1024),
            "{refused}"
        );
        assert_eq!(budget.in_use(), 0);
        drop(held);
        // A repetitive payload well past 64 times its deflated size still passes.
        let periodic: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        PeerMessage::Sync(periodic.clone())
            .write_framed(&mut wire)
            .unwrap();
        let (message, charge) =
            PeerMessage::read_framed_budgeted(&mut wire.as_slice(), FrameLimit::Exchange, &budget)
                .unwrap()
                .unwrap()
                .unwrap();
        assert_eq!(message, PeerMessage::Sync(periodic));
        assert!(budget.in_use() > 0);
        drop(charge);
        assert_eq!(budget.in_use(), 0);
    }
}
