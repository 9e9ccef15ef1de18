//! The store's side of device-to-device sync: each step of a peer exchange (`crate::peer`)
//! is one transaction over the learner's document, the table and the peer's persisted sync
//! state. This module knows documents, epochs and sync states, not the peer protocol's
//! messages.

use std::collections::{BTreeMap, HashMap};

use rusqlite::types::FromSql;
use rusqlite::{params, OptionalExtension, Transaction};

use super::rows::{self, Raise};
use super::write_behind::{flush_in, replace_document, OpenDocument};
use super::Store;
use crate::content_state::{ContentItem, ContentKey, ContentState};
use crate::document::{LearnerDocument, Written};
use crate::error::{Error, Result};
use crate::events::{ChangeOrigin, ContentStateChanged};
use crate::id::UserId;
use crate::timestamp::Timestamp;

fn refuse(reason: impl Into<String>) -> Error {
    Error::PeerMessage {
        reason: reason.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn heads_bytes(heads: &[[u8; 32]]) -> Vec<u8> {
    heads.iter().flatten().copied().collect()
}

fn heads_from(bytes: &[u8]) -> Vec<automerge::ChangeHash> {
    bytes
        .chunks_exact(32)
        .filter_map(|c| automerge::ChangeHash::try_from(c).ok())
        .collect()
}

/// Appends the changes the document gained since `before` as a chunk, then raises the table
/// row of every content item the received changes wrote to the join of the row, the
/// document's value and every received value (`written`: taken from the changes' ops, so a
/// value that is not Automerge's visible winner, or that waits for its dependencies, still
/// reaches the table). Every raised row was folded into the document before the peer's changes
/// arrived, so the document covers the table otherwise. Returns the table changes.
fn persist_and_reconcile(
    tx: &Transaction<'_>,
    documents: &mut HashMap<UserId, OpenDocument>,
    user: &UserId,
    before: &[automerge::ChangeHash],
    written: Written,
) -> Result<Vec<ContentStateChanged>> {
    let open = documents
        .get_mut(user)
        .ok_or_else(|| refuse("the document is not loaded"))?;
    let gained = open.doc.changes_after(before);
    if !gained.is_empty() {
        open.loaded_through += 1;
        tx.execute(
            "INSERT INTO doc_chunk (user_id, seq, bytes) VALUES (?1, ?2, ?3)",
            params![user, open.loaded_through, gained],
        )
        .map_err(Error::sqlite("storing a peer's changes"))?;
    }
    // Times from a peer are bounded by this device's clock before they reach the table, each
    // received value on its own (so a far-future value does not hide a valid one).
    let now = Timestamp::now();
    let mut received: BTreeMap<ContentKey, ContentState> = BTreeMap::new();
    for (key, state) in written.values.into_iter().map(ContentItem::into_parts) {
        let state = state.without_future_times(now);
        let joined = received.get(&key).map_or(state, |held| held.merge(&state));
        received.insert(key, joined);
    }
    // A register the changes touched without a value (a delete, something that is not a
    // register) must not stay hidden: the next flush writes the row's value back over it.
    for key in written.touched {
        if received.contains_key(&key) {
            continue;
        }
        if let Some(mut row) = rows::select_one(tx, &key)? {
            if open.doc.state(&key) != Some(row.state) && row.in_document == rows::InDocument::Yes {
                row.in_document = rows::InDocument::No;
                rows::write(tx, &row)?;
            }
        }
    }
    let mut changes = Vec::new();
    for (key, value) in received {
        // Folded already when the document holds exactly the joined state; otherwise the next
        // flush raises the register to it.
        let in_document = open.doc.state(&key);
        let joined = in_document.map_or(value, |held| held.without_future_times(now).merge(&value));
        let raise = Raise::new(&key, joined, ChangeOrigin::Peer).document_holds(in_document);
        changes.extend(rows::raise(tx, raise)?);
    }
    Ok(changes)
}

/// What a step of the sync protocol did, checked in the same transaction as the step: our
/// document may have moved to a new epoch (a compaction) since the exchange agreed on one, and
/// then the step does nothing and the exchange starts again from a hello.
///
/// ```
/// use headway::InEpoch;
/// let step: InEpoch<()> = InEpoch::Moved;
/// assert!(matches!(step, InEpoch::Moved));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InEpoch<T> {
    /// The document was still in the agreed epoch; the step ran.
    Done(T),
    /// The document left the agreed epoch; nothing was done.
    Moved,
}

impl Store {
    /// Runs `step` on the learner's up-to-date document in one write transaction (see
    /// `Inner::with_document`), then publishes what bringing it up to date changed.
    fn on_document<T>(
        &self,
        user: &UserId,
        step: impl FnOnce(&Transaction<'_>, &mut HashMap<UserId, OpenDocument>, &[u8; 16]) -> Result<T>,
    ) -> Result<T> {
        self.raise_on_document(user, |tx, documents, device| {
            step(tx, documents, device).map(|value| (value, Vec::new()))
        })
    }

    /// [`Store::on_document`] for a step that raises table rows: the flush's changes and the
    /// step's are published before the store's lock is released, in commit order.
    fn raise_on_document<T>(
        &self,
        user: &UserId,
        step: impl FnOnce(
            &Transaction<'_>,
            &mut HashMap<UserId, OpenDocument>,
            &[u8; 16],
        ) -> Result<(T, Vec<ContentStateChanged>)>,
    ) -> Result<T> {
        let mut inner = self.lock()?;
        let (mut changes, _, (value, raised)) = inner.with_document(user, step)?;
        changes.extend(raised);
        self.publish(&inner, changes);
        drop(inner);
        Ok(value)
    }

    /// The epoch of `user`'s document (without counting its changes, as a hello does).
    pub(crate) fn document_epoch(&self, user: &UserId) -> Result<Option<[u8; 16]>> {
        self.on_document(user, |_, documents, _| {
            Ok(documents.get(user).and_then(|open| open.doc.epoch()))
        })
    }

    /// What this device holds of `user`'s document: what a peer hello says. A learner this
    /// device has never held gets no epoch, and nothing is written: a peer naming learners
    /// cannot make this device create rows for them unless progress actually arrives.
    pub(crate) fn document_summary(&self, user: &UserId) -> Result<DocumentSummary> {
        if !self.holds_learner(user)? {
            return Ok(DocumentSummary {
                device: hex(&self.lock()?.device),
                epoch: None,
                changes: 0,
                heads: Vec::new(),
            });
        }
        self.on_document(user, |_, documents, device| {
            let device = hex(device);
            let open = documents
                .get_mut(user)
                .ok_or_else(|| refuse("the document is not loaded"))?;
            let heads = open.doc.heads().iter().map(|h| h.0).collect();
            Ok(DocumentSummary {
                device,
                epoch: open.doc.epoch(),
                changes: u64::try_from(open.doc.change_count()).unwrap_or(u64::MAX),
                heads,
            })
        })
    }

    /// True when this device holds anything of `user`: a content state or a document.
    fn holds_learner(&self, user: &UserId) -> Result<bool> {
        let inner = self.lock()?;
        inner
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM learner WHERE user_id = ?1)
                    OR EXISTS (SELECT 1 FROM content_state WHERE user_id = ?1)",
                params![user],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("looking the learner up"))
    }

    /// Records what a peer said it holds of `user`'s document.
    pub(crate) fn remember_peer(
        &self,
        user: &UserId,
        peer: &str,
        epoch: Option<[u8; 16]>,
        heads: &[[u8; 32]],
    ) -> Result<()> {
        let inner = self.lock()?;
        inner
            .conn
            .execute(
                "INSERT INTO peer (user_id, peer_id, their_epoch, heads) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT DO UPDATE SET their_epoch = excluded.their_epoch,
                    heads = excluded.heads",
                params![user, peer, epoch.map(|e| e.to_vec()), heads_bytes(heads)],
            )
            .map_err(Error::sqlite("remembering a peer"))?;
        Ok(())
    }

    /// The learner's whole document.
    pub(crate) fn peer_document(&self, user: &UserId) -> Result<Vec<u8>> {
        self.on_document(user, |_, documents, _| {
            let open = documents
                .get_mut(user)
                .ok_or_else(|| refuse("the document is not loaded"))?;
            Ok(open.doc.save())
        })
    }

    /// A whole document from a peer: merged if it is of our epoch, otherwise adopted: it becomes
    /// this device's document and every state of ours is raised into it (a join), so both
    /// devices share its epoch from now on and later exchanges carry only changes. (In a live
    /// exchange the leaner document is the one sent, so a compaction is not undone.)
    pub(crate) fn peer_receive_document(&self, user: &UserId, bytes: &[u8]) -> Result<()> {
        // Bytes that do not load are the peer's bad data, not a damaged store of ours.
        let mut theirs = LearnerDocument::load(user, bytes, None).map_err(|e| match e {
            Error::CorruptDocument { reason, .. } => {
                refuse(format!("the document does not load: {reason}"))
            }
            other => other,
        })?;
        let their_epoch = theirs.epoch();
        self.raise_on_document(user, |tx, documents, device| {
            let open = documents
                .get_mut(user)
                .ok_or_else(|| refuse("the document is not loaded"))?;
            let before = open.doc.heads();
            let epoch = open.doc.epoch();
            if epoch.is_some() && epoch == their_epoch {
                open.doc.merge(&mut theirs)?;
                let written = open.doc.written_since(&before)?;
                return persist_and_reconcile(tx, documents, user, &before, written)
                    .map(|changes| ((), changes));
            }
            // A new local epoch: our actor must never reuse a (actor, seq) of history we drop.
            let adopted = replace_document(tx, device, user, |actor| {
                LearnerDocument::load(user, bytes, Some(actor))
            })?;
            documents.insert(user.clone(), adopted);
            flush_in(tx, documents, device, user).map(|(changes, _)| ((), changes))
        })
    }

    /// Changes of our epoch from a peer's file.
    pub(crate) fn peer_receive_changes(&self, user: &UserId, bytes: &[u8]) -> Result<()> {
        self.raise_on_document(user, |tx, documents, _| {
            let open = documents
                .get_mut(user)
                .ok_or_else(|| refuse("the document is not loaded"))?;
            let before = open.doc.heads();
            let written = open
                .doc
                .receive(bytes)
                .map_err(|e| refuse(format!("the changes do not apply: {e}")))?;
            persist_and_reconcile(tx, documents, user, &before, written).map(|c| ((), c))
        })
    }

    /// The persisted Automerge sync state for `peer`, if it belongs to our document's current
    /// epoch and our document holds every change it says both sides share; a fresh one
    /// otherwise. (A device can leave an epoch and come back to it by adopting an older copy:
    /// a state saved before then names changes neither side may hold, and the protocol would
    /// never settle from it.)
    pub(crate) fn peer_sync_state(
        &self,
        user: &UserId,
        peer: &str,
    ) -> Result<automerge::sync::State> {
        let epoch = self.document_epoch(user)?;
        let state = self.stored_sync_state(user, peer, epoch)?;
        let usable = self.on_document(user, |_, documents, _| {
            Ok(documents
                .get_mut(user)
                .is_some_and(|open| open.doc.has_all(&state.shared_heads)))
        })?;
        Ok(if usable {
            state
        } else {
            automerge::sync::State::new()
        })
    }

    /// The sync state saved for `peer` in `epoch`, or a fresh one.
    fn stored_sync_state(
        &self,
        user: &UserId,
        peer: &str,
        epoch: Option<[u8; 16]>,
    ) -> Result<automerge::sync::State> {
        type Stored = Option<(Option<Vec<u8>>, Option<Vec<u8>>)>;
        let stored: Stored = self.peer_row(
            user,
            peer,
            "sync_epoch, sync_state",
            "reading a peer's sync state",
        )?;
        Ok(match stored {
            Some((Some(stored_epoch), Some(bytes)))
                if epoch.is_some_and(|e| e[..] == stored_epoch[..]) =>
            {
                automerge::sync::State::decode(&bytes).unwrap_or_default()
            }
            _ => automerge::sync::State::new(),
        })
    }

    /// Persists the Automerge sync state for `peer`, tied to our document's current epoch.
    pub(crate) fn peer_save_sync_state(
        &self,
        user: &UserId,
        peer: &str,
        state: &automerge::sync::State,
    ) -> Result<()> {
        let epoch = self.document_epoch(user)?.map(|e| e.to_vec());
        // The heads both sides are known to hold: what a later file export can start from.
        let shared: Vec<u8> = state.shared_heads.iter().flat_map(|h| h.0).collect();
        let inner = self.lock()?;
        inner
            .conn
            .execute(
                "INSERT INTO peer (user_id, peer_id, their_epoch, heads, sync_epoch, sync_state)
                VALUES (?1, ?2, ?3, ?4, ?3, ?5)
                ON CONFLICT DO UPDATE SET sync_epoch = excluded.sync_epoch,
                    sync_state = excluded.sync_state,
                    their_epoch = CASE WHEN length(excluded.heads) > 0
                        THEN excluded.their_epoch ELSE their_epoch END,
                    heads = CASE WHEN length(excluded.heads) > 0
                        THEN excluded.heads ELSE heads END",
                params![user, peer, epoch, shared, state.encode()],
            )
            .map_err(Error::sqlite("saving a peer's sync state"))?;
        Ok(())
    }

    /// The next Automerge sync message, advancing `state`.
    pub(crate) fn peer_generate(
        &self,
        user: &UserId,
        state: &mut automerge::sync::State,
        epoch: Option<[u8; 16]>,
    ) -> Result<InEpoch<Option<Vec<u8>>>> {
        self.on_document(user, |_, documents, _| {
            let open = documents
                .get_mut(user)
                .ok_or_else(|| refuse("the document is not loaded"))?;
            if open.doc.epoch() != epoch {
                return Ok(InEpoch::Moved);
            }
            open.doc.generate_sync_message(state).map(InEpoch::Done)
        })
    }

    /// Applies a peer's Automerge sync message, stores what it brought, and joins it into the
    /// table (events with origin `Peer`), if our document is still in `epoch`.
    pub(crate) fn peer_receive(
        &self,
        user: &UserId,
        state: &mut automerge::sync::State,
        bytes: &[u8],
        epoch: Option<[u8; 16]>,
    ) -> Result<InEpoch<()>> {
        self.raise_on_document(user, |tx, documents, _| {
            let open = documents
                .get_mut(user)
                .ok_or_else(|| refuse("the document is not loaded"))?;
            if open.doc.epoch() != epoch {
                return Ok((InEpoch::Moved, Vec::new()));
            }
            let before = open.doc.heads();
            let written = open.doc.receive_sync_message(state, bytes)?;
            persist_and_reconcile(tx, documents, user, &before, written)
                .map(|c| (InEpoch::Done(()), c))
        })
    }

    /// What this device remembers `peer` holding of `user`'s document: its epoch and heads.
    pub(crate) fn what_peer_holds(&self, user: &UserId, peer: &str) -> Result<Option<PeerHolds>> {
        let known: Option<(Option<Vec<u8>>, Vec<u8>)> = self.peer_row(
            user,
            peer,
            "their_epoch, heads",
            "reading what a peer holds",
        )?;
        Ok(known.map(|(epoch, heads)| {
            let epoch = epoch.and_then(|e| <[u8; 16]>::try_from(e.as_slice()).ok());
            (epoch, heads_from(&heads))
        }))
    }

    /// Two `columns` of what this device keeps about `peer` for `user` (the `peer` row), or
    /// `None` when it keeps nothing; `step` names the read in an error.
    fn peer_row<A: FromSql, B: FromSql>(
        &self,
        user: &UserId,
        peer: &str,
        columns: &'static str,
        step: &'static str,
    ) -> Result<Option<(A, B)>> {
        let inner = self.lock()?;
        inner
            .conn
            .query_row(
                &format!("SELECT {columns} FROM peer WHERE user_id = ?1 AND peer_id = ?2"),
                params![user, peer],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Error::sqlite(step))
    }

    /// The changes of `user`'s document a peer holding `their_heads` lacks. Heads the peer has
    /// that we never saw mean it knows more than we think: then every change of the epoch.
    pub(crate) fn changes_for_peer(
        &self,
        user: &UserId,
        their_heads: &[automerge::ChangeHash],
    ) -> Result<Vec<u8>> {
        self.on_document(user, |_, documents, _| {
            let open = documents
                .get_mut(user)
                .ok_or_else(|| refuse("the document is not loaded"))?;
            let known_heads: Vec<_> = their_heads
                .iter()
                .copied()
                .filter(|h| open.doc.has_change(h))
                .collect();
            Ok(open.doc.changes_after(&known_heads))
        })
    }
}

/// What a peer was last known to hold of a learner's document: its epoch and heads.
pub(crate) type PeerHolds = (Option<[u8; 16]>, Vec<automerge::ChangeHash>);

/// What a device holds of one learner's document, as a peer hello tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DocumentSummary {
    /// This device's id, hex.
    pub(crate) device: String,
    /// The document's epoch; `None` when this device never held the learner.
    pub(crate) epoch: Option<[u8; 16]>,
    /// How many changes the document holds.
    pub(crate) changes: u64,
    /// The document's heads.
    pub(crate) heads: Vec<[u8; 32]>,
}
