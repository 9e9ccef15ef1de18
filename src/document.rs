//! How a learner's progress lives in Automerge: one document per learner, one max-wins
//! register per content item.
//!
//! The root map holds `"learner"` (the user id, so a document cannot be mistaken for another
//! learner's) and one key per content item, `course \u{1f} batch \u{1f} content`, whose value is a
//! packed register: a version byte, status, progress, and the two timestamps as varints (0 for
//! none). Concurrent writers leave several conflicting values under one key; a read joins *all*
//! of them (`get_all`), never Automerge's default winner, and a write stores the join of every
//! visible value and the new one, so it can only raise the register.

mod varint;

use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::{
    transaction::Transactable, ActorId, AutoCommit, ReadDoc, ScalarValue, Value, ROOT,
};

use crate::content_state::{ContentItem, ContentKey, ContentState, Progress, Status};
use crate::error::{Error, Result};
use crate::id::{random_bytes, BatchId, ContentId, CourseId, UserId};
use crate::timestamp::Timestamp;
use varint::VarintError;

const LEARNER_KEY: &str = "learner";
const EPOCH_KEY: &str = "epoch";
const KEY_SEPARATOR: char = '\u{1f}';
const REGISTER_VERSION: u8 = 1;

/// One learner's content states as an Automerge document of max-wins registers.
///
/// ```
/// use headway::{ContentKey, ContentState, LearnerDocument, Progress, Status, UserId};
/// let key = ContentKey::new("learner-1", "c", "b", "do_1")?;
/// let mut phone = LearnerDocument::new(&UserId::new("learner-1")?)?;
/// let mut tablet = LearnerDocument::new(&UserId::new("learner-1")?)?;
/// phone.raise(&key, &ContentState::new(Status::InProgress, Progress::new(60)?, None, None))?;
/// tablet.raise(&key, &ContentState::new(Status::InProgress, Progress::new(30)?, None, None))?;
/// phone.merge(&mut tablet)?;
/// tablet.merge(&mut phone)?;
/// assert_eq!(phone.state(&key).map(|s| s.progress().get()), Some(60));
/// assert_eq!(tablet.state(&key), phone.state(&key));
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Debug)]
pub struct LearnerDocument {
    user: UserId,
    doc: AutoCommit,
}

impl LearnerDocument {
    /// A new, empty document for `user`, with a random actor id.
    pub fn new(user: &UserId) -> Result<LearnerDocument> {
        LearnerDocument::with_actor(user, ActorId::from(random_bytes::<16>()?))
    }

    /// A new, empty document for `user` whose changes are signed by `actor`.
    pub fn with_actor(user: &UserId, actor: ActorId) -> Result<LearnerDocument> {
        let user = user.clone();
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(ROOT, LEARNER_KEY, user.as_str())
            .map_err(document_error)?;
        // A fresh document starts a new epoch: its own root, which peers recognise by this id.
        let epoch = random_bytes::<16>()?;
        doc.put(ROOT, EPOCH_KEY, ScalarValue::Bytes(epoch.to_vec()))
            .map_err(document_error)?;
        Ok(LearnerDocument { user, doc })
    }

    /// The document's epoch: the id of the snapshot its history starts from. Two documents of
    /// one epoch share their root change, so they can exchange changes; documents of different
    /// epochs exchange state. `None` for a document that never had one.
    ///
    /// ```
    /// # use headway::UserId;
    /// let a = headway::LearnerDocument::new(&UserId::new("u")?)?;
    /// let b = headway::LearnerDocument::new(&UserId::new("u")?)?;
    /// assert!(a.epoch().is_some());
    /// assert_ne!(a.epoch(), b.epoch());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn epoch(&self) -> Option<[u8; 16]> {
        let values = self.doc.get_all(ROOT, EPOCH_KEY).ok()?;
        values
            .iter()
            .filter_map(|(value, _)| match value {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Bytes(b) => <[u8; 16]>::try_from(b.as_slice()).ok(),
                    _ => None,
                },
                Value::Object(_) => None,
            })
            .max()
    }

    /// True when the document holds the change with this hash.
    pub(crate) fn has_change(&mut self, hash: &automerge::ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }

    /// True when the document holds every change named in `heads`.
    pub(crate) fn has_all(&mut self, heads: &[automerge::ChangeHash]) -> bool {
        heads.iter().all(|hash| self.has_change(hash))
    }

    /// The heads of the document's history.
    pub fn heads(&mut self) -> Vec<automerge::ChangeHash> {
        self.doc.get_heads()
    }

    /// The register values written by the changes after `before` (every put on the root
    /// map, whoever's value Automerge shows as the winner).
    pub(crate) fn written_since(&mut self, before: &[automerge::ChangeHash]) -> Result<Written> {
        let changes = self.doc.get_changes(before);
        self.written_by(&changes).map(|(written, _)| written)
    }

    /// What `changes` wrote on the root map: every register value they put, whether or not it
    /// wins Automerge's visible value and whether or not the change can apply yet (a diff of
    /// the visible state would miss a received value that loses to a local write with a
    /// higher Lamport counter; a change waiting for its dependencies shows nothing at all), and
    /// every register they touched in any way (a delete or a value that is not a register:
    /// the store writes its own value back over those). Registers are max-wins, so every
    /// value written is a valid lower bound whatever the causal order. A change that names
    /// another learner is refused. The flag says whether the changes belong to another epoch
    /// (they rewrite the document's epoch), so they must not join this document's history.
    fn written_by(&self, changes: &[automerge::Change]) -> Result<(Written, bool)> {
        use automerge::legacy::{Key, ObjectId, OpType};
        let mut written = Written::default();
        let mut foreign_epoch = false;
        let ours = self.epoch();
        for change in changes {
            let decoded = match catch_unwind(AssertUnwindSafe(|| change.decode())) {
                Ok(decoded) => decoded,
                Err(_) => return Err(self.corrupt("a change made automerge panic".into())),
            };
            for op in decoded.operations {
                // Registers live on the root map; nothing else in the document is read.
                let (ObjectId::Root, Key::Map(name)) = (&op.obj, &op.key) else {
                    continue;
                };
                let value = match &op.action {
                    OpType::Put(value) => Some(value),
                    _ => None,
                };
                match name.as_str() {
                    LEARNER_KEY => {
                        let named = value.and_then(|v| v.as_str());
                        if named != Some(self.user.as_str()) {
                            return Err(self.corrupt(format!(
                                "a change names learner {:?}",
                                named.unwrap_or("?")
                            )));
                        }
                    }
                    EPOCH_KEY => {
                        let epoch = match value {
                            Some(ScalarValue::Bytes(b)) => <[u8; 16]>::try_from(b.as_slice()).ok(),
                            _ => None,
                        };
                        foreign_epoch |= epoch.is_none() || epoch != ours;
                    }
                    register => {
                        let Some(key) = key_from_register_name(&self.user, register) else {
                            continue;
                        };
                        let state = match value {
                            Some(ScalarValue::Bytes(bytes)) => unpack_bytes(bytes),
                            _ => None,
                        };
                        if let Some(state) = state {
                            written.values.push(ContentItem::new(key.clone(), state));
                        }
                        written.touched.push(key);
                    }
                }
            }
        }
        Ok((written, foreign_epoch))
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::CorruptDocument {
            user: self.user.to_string(),
            reason,
        }
    }

    /// Every change after `heads` (which must be in the document), committing pending writes.
    pub fn changes_after(&mut self, heads: &[automerge::ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// The next Automerge sync message for a peer, if any. Never advertises or uses whole-
    /// document (V2) messages: after a rebase a document has about one change, and automerge
    /// 0.12 would then send the whole document for any catch-up.
    pub(crate) fn generate_sync_message(
        &mut self,
        state: &mut automerge::sync::State,
    ) -> Result<Option<Vec<u8>>> {
        use automerge::sync::{Capability, SyncDoc};
        self.doc.commit();
        state.their_capabilities = Some(vec![Capability::MessageV1]);
        let doc = &mut self.doc;
        // automerge 0.12 `expect`s a peer's advertised needs to be in the document: a hostile
        // peer could make it panic, so the panic is caught here.
        match catch_unwind(AssertUnwindSafe(|| doc.sync().generate_sync_message(state))) {
            Ok(message) => Ok(message.map(automerge::sync::Message::encode)),
            Err(_) => Err(Error::PeerMessage {
                reason: "the peer's sync state made automerge panic".into(),
            }),
        }
    }

    /// Applies a peer's Automerge sync message and returns the register values its changes
    /// wrote (see [`LearnerDocument::written_by`]). Changes whose dependencies have not arrived
    /// yet are kept aside by automerge, which asks the peer for what is missing; their values
    /// are returned all the same. Malformed or hostile bytes give a typed error; then the
    /// document may hold part of them: drop it and reload from storage.
    pub(crate) fn receive_sync_message(
        &mut self,
        state: &mut automerge::sync::State,
        bytes: &[u8],
    ) -> Result<Written> {
        use automerge::sync::SyncDoc;
        let bad = |reason: String| Error::PeerMessage { reason };
        let message = match catch_unwind(|| automerge::sync::Message::decode(bytes)) {
            Ok(Ok(message)) => message,
            Ok(Err(e)) => return Err(bad(format!("malformed sync message: {e}"))),
            Err(_) => return Err(bad("a sync message made automerge panic".into())),
        };
        let changes = parse_changes(message.changes.iter())
            .map_err(|reason| bad(format!("malformed change in a sync message: {reason}")))?;
        let (written, foreign_epoch) = self.written_by(&changes)?;
        if foreign_epoch {
            return Err(bad(
                "the peer sent changes of another epoch; the next exchange starts afresh".into(),
            ));
        }
        let doc = &mut self.doc;
        match catch_unwind(AssertUnwindSafe(|| {
            doc.sync().receive_sync_message(state, message)
        })) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(bad(format!("sync message refused: {e}"))),
            Err(_) => return Err(bad("a sync message made automerge panic".into())),
        }
        self.check_learner_name()?;
        Ok(written)
    }

    /// Applies a peer's changes (for example [`LearnerDocument::changes_after`] on another
    /// device) and returns every register value they wrote, one item per write, whoever's
    /// value Automerge shows as the winner. Changes whose dependencies this document lacks
    /// cannot join the history yet, but their values are returned all the same, so a caller
    /// that joins them into its own state loses nothing they carry.
    ///
    /// ```
    /// use headway::{ContentKey, ContentState, LearnerDocument, Progress, Status, UserId};
    /// let key = ContentKey::new("u", "c", "b", "k")?;
    /// let mut phone = LearnerDocument::new(&UserId::new("u")?)?;
    /// let mut tablet = LearnerDocument::load(&UserId::new("u")?, &phone.save(), None)?;
    /// let before = phone.heads();
    /// phone.raise(&key, &ContentState::new(Status::Completed, Progress::new(100)?, None, None))?;
    /// let written = tablet.receive_changes(&phone.changes_after(&before))?;
    /// assert_eq!(written.len(), 1);
    /// assert_eq!(tablet.state(&key), phone.state(&key));
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn receive_changes(&mut self, bytes: &[u8]) -> Result<Vec<ContentItem>> {
        self.receive(bytes).map(|written| written.values)
    }

    /// [`LearnerDocument::receive_changes`] for the store: also the registers the changes
    /// touched. Changes of another epoch (an old file from before a compaction, say) do not
    /// join this document's history at all; their values are returned all the same.
    pub(crate) fn receive(&mut self, bytes: &[u8]) -> Result<Written> {
        let changes = parse_changes(split_chunks(bytes).map_err(|r| self.corrupt(r))?)
            .map_err(|reason| self.corrupt(reason))?;
        let (mut written, foreign_epoch) = self.written_by(&changes)?;
        if foreign_epoch {
            written.touched.clear();
            return Ok(written);
        }
        let doc = &mut self.doc;
        match catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.corrupt(e.to_string())),
            Err(_) => return Err(self.corrupt("automerge panicked applying changes".into())),
        }
        self.check_learner_name()?;
        Ok(written)
    }

    /// Loads a document from bytes (a saved document, changes, or both concatenated). Malformed
    /// bytes give [`Error::CorruptDocument`], never a panic; a document of another learner is
    /// refused the same way.
    ///
    /// ```
    /// use headway::{LearnerDocument, UserId};
    /// let mut doc = LearnerDocument::new(&UserId::new("learner-1")?)?;
    /// let bytes = doc.save();
    /// assert!(LearnerDocument::load(&UserId::new("learner-1")?, &bytes, None).is_ok());
    /// assert!(LearnerDocument::load(&UserId::new("learner-2")?, &bytes, None).is_err());
    /// assert!(LearnerDocument::load(&UserId::new("learner-1")?, b"not automerge", None).is_err());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn load(user: &UserId, bytes: &[u8], actor: Option<ActorId>) -> Result<LearnerDocument> {
        let user = user.clone();
        let corrupt = |reason: String| Error::CorruptDocument {
            user: user.to_string(),
            reason,
        };
        check_chunk_types(
            bytes,
            &[CHUNK_DOCUMENT, CHUNK_CHANGE, CHUNK_COMPRESSED_CHANGE],
        )
        .map_err(corrupt)?;
        // automerge 0.12 can panic on malformed bytes; this is the one place bytes become a
        // document, so the panic is caught here and becomes a typed error.
        let doc = match catch_unwind(|| AutoCommit::load(bytes)) {
            Ok(Ok(doc)) => doc,
            Ok(Err(e)) => return Err(corrupt(e.to_string())),
            Err(_) => return Err(corrupt("automerge panicked while loading".into())),
        };
        let doc = match actor {
            Some(actor) => doc.with_actor(actor),
            None => doc,
        };
        let mut loaded = LearnerDocument { user, doc };
        loaded.check_learner(&[])?;
        Ok(loaded)
    }

    /// Applies more bytes (changes or a saved document) to this document. On error the
    /// document may hold part of the bytes: drop it and load again from storage.
    ///
    /// ```
    /// use headway::{ContentKey, ContentState, LearnerDocument, Status, Progress, UserId};
    /// let key = ContentKey::new("u", "c", "b", "k")?;
    /// let mut a = LearnerDocument::new(&UserId::new("u")?)?;
    /// let mut b = LearnerDocument::load(&UserId::new("u")?, &a.save(), None)?;
    /// a.raise(&key, &ContentState::new(Status::Completed, Progress::new(100)?, None, None))?;
    /// b.load_more(&a.save_incremental())?;
    /// assert_eq!(b.state(&key), a.state(&key));
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn load_more(&mut self, bytes: &[u8]) -> Result<()> {
        check_chunk_types(
            bytes,
            &[CHUNK_DOCUMENT, CHUNK_CHANGE, CHUNK_COMPRESSED_CHANGE],
        )
        .map_err(|reason| self.corrupt(reason))?;
        // Changes a peer sent mid-sync may be waiting for their dependencies already; only
        // what these bytes leave incomplete is a fault of theirs.
        let waiting = self.doc.get_missing_deps(&[]);
        let doc = &mut self.doc;
        let outcome = catch_unwind(AssertUnwindSafe(|| doc.load_incremental(bytes)));
        let reason = match outcome {
            Ok(Ok(_)) => return self.check_learner(&waiting),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "automerge panicked while loading changes".into(),
        };
        Err(Error::CorruptDocument {
            user: self.user.to_string(),
            reason,
        })
    }

    /// Refuses a document that holds changes whose dependencies are missing (they would
    /// silently not apply), other than those in `waiting` (missing before, from a peer
    /// mid-sync), or whose `learner` key names someone else.
    fn check_learner(&mut self, waiting: &[automerge::ChangeHash]) -> Result<()> {
        // Changes waiting for their dependencies are fine in the middle of a sync, but a
        // loaded document must be complete.
        let missing: Vec<_> = self
            .doc
            .get_missing_deps(&[])
            .into_iter()
            .filter(|hash| !waiting.contains(hash))
            .collect();
        if !missing.is_empty() {
            return Err(Error::CorruptDocument {
                user: self.user.to_string(),
                reason: format!("{} changes are missing their dependencies", missing.len()),
            });
        }
        self.check_learner_name()
    }

    /// Refuses a document whose `learner` key names someone else.
    fn check_learner_name(&mut self) -> Result<()> {
        let names: Vec<String> = self
            .doc
            .get_all(ROOT, LEARNER_KEY)
            .map_err(document_error)?
            .into_iter()
            .map(|(value, _)| value.as_str().unwrap_or("").to_string())
            .collect();
        match names.iter().find(|name| **name != self.user) {
            Some(other) => Err(Error::CorruptDocument {
                user: self.user.to_string(),
                reason: format!("the document belongs to learner {other:?}"),
            }),
            None => Ok(()),
        }
    }

    /// The learner this document belongs to.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The join of every value of the register for `key`, or `None` if nobody wrote it.
    pub fn state(&self, key: &ContentKey) -> Option<ContentState> {
        self.read(&register_name(key))
    }

    fn read(&self, name: &str) -> Option<ContentState> {
        let values = self.doc.get_all(ROOT, name).ok()?;
        values
            .iter()
            .filter_map(|(value, _)| unpack(value))
            .reduce(|a, b| a.merge(&b))
    }

    /// Every content item in the document with its joined state, in key order.
    pub fn items(&self) -> Vec<ContentItem> {
        self.doc
            .keys(ROOT)
            .filter_map(|name| {
                let key = key_from_register_name(&self.user, &name)?;
                let state = self.read(&name)?;
                Some(ContentItem::new(key, state))
            })
            .collect()
    }

    /// Raises the register for `key` to the join of what it holds and `state`, and returns
    /// that join. A state that is not above the register writes nothing, unless concurrent
    /// values are waiting to be resolved into one.
    pub fn raise(&mut self, key: &ContentKey, state: &ContentState) -> Result<ContentState> {
        if *key.user() != self.user {
            return Err(Error::InvalidId {
                field: "user",
                value: crate::error::shorten(key.user()),
                problem: "it is not the learner of this document",
            });
        }
        let name = register_name(key);
        let values = self
            .doc
            .get_all(ROOT, name.as_str())
            .map_err(document_error)?;
        let held: Vec<Option<ContentState>> = values.iter().map(|(v, _)| unpack(v)).collect();
        let joined = held
            .iter()
            .flatten()
            .fold(*state, |acc, current| acc.merge(current));
        let settled = held.len() == 1 && held[0] == Some(joined);
        if !settled {
            self.doc
                .put(ROOT, name, ScalarValue::Bytes(pack(&joined)))
                .map_err(document_error)?;
        }
        Ok(joined)
    }

    /// Closes the pending writes into one Automerge change; true if there was anything.
    pub fn commit(&mut self) -> bool {
        self.doc.commit().is_some()
    }

    /// Closes the pending writes into one Automerge change and returns that change's bytes
    /// (compressed), or `None` if nothing was written since the last commit.
    ///
    /// ```
    /// use headway::{ContentKey, ContentState, LearnerDocument, UserId};
    /// let mut doc = LearnerDocument::new(&UserId::new("u")?)?;
    /// assert!(doc.commit_change().is_some()); // the learner's name
    /// assert!(doc.commit_change().is_none());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn commit_change(&mut self) -> Option<Vec<u8>> {
        self.doc.commit()?;
        self.doc
            .get_last_local_change()
            .map(|mut change| change.bytes().into_owned())
    }

    /// Every change since the last `save` or `save_incremental`, committing pending writes.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    /// The whole document, history included, committing pending writes. Changes still
    /// waiting for their dependencies (from a peer mid-sync) are left out: a saved document is
    /// always complete.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save_with_options(automerge::SaveOptions {
            deflate: true,
            retain_orphans: false,
        })
    }

    /// Merges every change of `other` into this document. Registers written on both sides
    /// read as the join of all values afterwards.
    pub fn merge(&mut self, other: &mut LearnerDocument) -> Result<()> {
        if other.user != self.user {
            return Err(Error::CorruptDocument {
                user: self.user.to_string(),
                reason: format!("cannot merge the document of learner {:?}", other.user),
            });
        }
        self.doc.merge(&mut other.doc).map_err(document_error)?;
        Ok(())
    }

    /// The number of changes in the document's history.
    pub fn change_count(&mut self) -> usize {
        self.doc.get_changes(&[]).len()
    }
}

/// What received changes wrote: each register value put (a key may repeat) and each register
/// touched in any way.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub(crate) values: Vec<ContentItem>,
    pub(crate) touched: Vec<ContentKey>,
}

/// The magic bytes every Automerge storage chunk starts with.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Automerge's chunk types: headway writes documents and (compressed) changes, never bundles.
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED_CHANGE: u8 = 2;

/// Refuses bytes that are not a sequence of well-framed chunks of the `allowed` types, before
/// automerge parses them: automerge 0.12 expands a 43-byte "bundle" chunk (type 3) to gigabytes
/// before any checksum is checked (found by the `load_document` fuzz target).
fn check_chunk_types(bytes: &[u8], allowed: &[u8]) -> std::result::Result<(), String> {
    for chunk in split_chunks(bytes)? {
        let kind = chunk[8];
        if !allowed.contains(&kind) {
            return Err(format!(
                "an automerge chunk of type {kind} where only {allowed:?} belong"
            ));
        }
    }
    Ok(())
}

/// Splits concatenated Automerge chunks (magic, checksum, type, LEB128 length, body).
fn split_chunks(mut bytes: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 9 || bytes[..4] != CHUNK_MAGIC {
            return Err("not a sequence of automerge changes".into());
        }
        let (length, body) = varint::read(&bytes[9..]).map_err(|e| match e {
            VarintError::Truncated => "a change's length is truncated",
            VarintError::TooLong => "a change's length does not fit 64 bits",
        })?;
        let at = bytes.len() - body.len();
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| at.checked_add(length))
            .filter(|end| *end <= bytes.len())
            .ok_or("a change is truncated")?;
        chunks.push(&bytes[..end]);
        bytes = &bytes[end..];
    }
    Ok(chunks)
}

/// Parses change chunks; automerge's panics on malformed bytes are caught.
fn parse_changes<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> std::result::Result<Vec<automerge::Change>, String> {
    chunks
        .into_iter()
        .map(|chunk| {
            check_chunk_types(chunk, &[CHUNK_CHANGE, CHUNK_COMPRESSED_CHANGE])?;
            match catch_unwind(|| automerge::Change::try_from(chunk)) {
                Ok(Ok(change)) => Ok(change),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("a change made automerge panic".into()),
            }
        })
        .collect()
}

fn document_error(e: automerge::AutomergeError) -> Error {
    Error::Document {
        reason: e.to_string(),
    }
}

/// The root-map key of a content item's register.
fn register_name(key: &ContentKey) -> String {
    format!(
        "{}{KEY_SEPARATOR}{}{KEY_SEPARATOR}{}",
        key.course(),
        key.batch(),
        key.content()
    )
}

fn key_from_register_name(user: &UserId, name: &str) -> Option<ContentKey> {
    let mut parts = name.split(KEY_SEPARATOR);
    let (course, batch, content) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(ContentKey::from_ids(
        user.clone(),
        CourseId::new(course).ok()?,
        BatchId::new(batch).ok()?,
        ContentId::new(content).ok()?,
    ))
}

/// Packs a state into a register value: version, status, progress, two varint timestamps.
pub(crate) fn pack(state: &ContentState) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.push(REGISTER_VERSION);
    out.push(state.status().code());
    out.push(state.progress().get());
    for time in [state.last_access_time(), state.last_completed_time()] {
        varint::write(time.map_or(0, |t| t.as_millis().unsigned_abs()), &mut out);
    }
    out
}

/// Reads a register value; anything malformed reads as `None` and is left out of joins.
pub(crate) fn unpack_bytes(bytes: &[u8]) -> Option<ContentState> {
    let (&version, rest) = bytes.split_first()?;
    if version != REGISTER_VERSION {
        return None;
    }
    let (&status, rest) = rest.split_first()?;
    let (&progress, mut rest) = rest.split_first()?;
    let mut times = [None, None];
    for slot in &mut times {
        let (value, tail) = varint::read(rest).ok()?;
        rest = tail;
        *slot = match value {
            0 => None,
            millis => Some(Timestamp::from_millis(i64::try_from(millis).ok()?).ok()?),
        };
    }
    if !rest.is_empty() {
        return None;
    }
    let status = Status::try_from(i64::from(status)).ok()?;
    let progress = Progress::new(i64::from(progress)).ok()?;
    Some(ContentState::new(status, progress, times[0], times[1]))
}

fn unpack(value: &Value<'_>) -> Option<ContentState> {
    match value {
        Value::Scalar(scalar) => match scalar.as_ref() {
            ScalarValue::Bytes(bytes) => unpack_bytes(bytes),
            _ => None,
        },
        Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_register_round_trips() {
        let t = Timestamp::from_millis(1_714_558_530_123).unwrap();
        for state in [
            ContentState::default(),
            ContentState::new(
                Status::InProgress,
                Progress::new(42).unwrap(),
                Some(t),
                None,
            ),
            ContentState::new(
                Status::Completed,
                Progress::new(0).unwrap(),
                Some(t),
                Some(t),
            ),
        ] {
            assert_eq!(unpack_bytes(&pack(&state)), Some(state));
        }
    }

    #[test]
    fn a_chunk_whose_length_is_truncated_or_too_long_is_refused_before_automerge() {
        let header = [&CHUNK_MAGIC[..], &[0, 0, 0, 0, CHUNK_CHANGE]].concat();
        let truncated = [&header[..], &[0x80]].concat();
        let too_long = [&header[..], &[0xff; 11]].concat();
        let empty_body = [&header[..], &[0]].concat();
        assert!(split_chunks(&truncated).is_err());
        assert!(split_chunks(&too_long).is_err());
        assert_eq!(split_chunks(&empty_body), Ok(vec![&empty_body[..]]));
    }

    #[test]
    fn malformed_register_reads_as_nothing() {
        for bad in [
            &[][..],
            &[2, 0, 0, 0, 0],
            &[1, 3, 0, 0, 0],
            &[1, 1, 101, 0, 0],
            &[1, 1, 1, 0],
        ] {
            assert_eq!(unpack_bytes(bad), None, "{bad:?}");
        }
        // A time whose tenth varint byte carries bits past the 64th: the reader once dropped
        // them and read a valid time (issue 18: one varint codec, which refuses it).
        let mut overflowing = vec![1, 1, 1];
        overflowing.extend([0x80; 9]);
        overflowing.extend([0x02, 0]);
        assert_eq!(unpack_bytes(&overflowing), None);
    }
}
