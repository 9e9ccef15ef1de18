//! The store's side of device-to-device sync: each step of a [`PeerSession`] is one
//! transaction over the learner's document, the table and the peer's persisted sync state.
//!
//! [`PeerSession`]: crate::PeerSession

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, OptionalExtension, Transaction};

use super::rows;
use super::write_behind::{epoch_actor, flush_in, OpenDocument};
use super::Store;
use crate::content_state::{ContentItem, ContentKey, ContentState};
use crate::document::{LearnerDocument, Written};
use crate::error::{Error, Result};
use crate::events::ContentStateChanged;
use crate::peer::{Hello, PeerMessage};

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
    documents: &mut HashMap<String, OpenDocument>,
    user: &str,
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
    let mut received: BTreeMap<ContentKey, ContentState> = BTreeMap::new();
    for (key, state) in written.values.into_iter().map(ContentItem::into_parts) {
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
        let in_document = open.doc.state(&key);
        let joined = in_document.map_or(value, |held| held.merge(&value));
        let stored = rows::select_one(tx, &key)?;
        let before_state = stored.as_ref().map(|row| row.state);
        let after = before_state.map_or(joined, |b| b.merge(&joined));
        if before_state == Some(after) {
            continue;
        }
        let mut row = stored.unwrap_or_else(|| rows::Row::new(key.clone(), after));
        row.state = after;
        // Folded already when the document holds exactly this; otherwise the next flush
        // raises the register to it.
        row.in_document = if in_document == Some(after) {
            rows::InDocument::Yes
        } else {
            rows::InDocument::No
        };
        rows::write(tx, &row)?;
        changes.push(ContentStateChanged {
            key,
            before: before_state,
            after,
            origin: crate::events::ChangeOrigin::Peer,
        });
    }
    Ok(changes)
}

/// What a step of the sync protocol did, checked in the same transaction as the step: our
/// document may have moved to a new epoch (a compaction) since the exchange agreed on one, and
/// then the step does nothing and the exchange starts again from a hello.
pub(crate) enum InEpoch<T> {
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
        user: &str,
        step: impl FnOnce(&Transaction<'_>, &mut HashMap<String, OpenDocument>, &[u8; 16]) -> Result<T>,
    ) -> Result<T> {
        self.raise_on_document(user, |tx, documents, device| {
            step(tx, documents, device).map(|value| (value, Vec::new()))
        })
    }

    /// [`Store::on_document`] for a step that raises table rows: the flush's changes and the
    /// step's are published before the store's lock is released, in commit order.
    fn raise_on_document<T>(
        &self,
        user: &str,
        step: impl FnOnce(
            &Transaction<'_>,
            &mut HashMap<String, OpenDocument>,
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
    pub(crate) fn document_epoch(&self, user: &str) -> Result<Option<[u8; 16]>> {
        self.on_document(user, |_, documents, _| {
            Ok(documents.get(user).and_then(|open| open.doc.epoch()))
        })
    }

    /// What this device says about its copy of `user`'s document. A learner this device has
    /// never held gets a hello with no epoch, and nothing is written: a peer naming learners
    /// cannot make this device create rows for them unless progress actually arrives.
    pub(crate) fn peer_hello(&self, user: &str) -> Result<Hello> {
        if !self.holds_learner(user)? {
            return Ok(Hello {
                user: user.to_string(),
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
            Ok(Hello {
                user: user.to_string(),
                device,
                epoch: open.doc.epoch(),
                changes: u64::try_from(open.doc.change_count()).unwrap_or(u64::MAX),
                heads,
            })
        })
    }

    /// True when this device holds anything of `user`: a content state or a document.
    fn holds_learner(&self, user: &str) -> Result<bool> {
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

    /// Records what a peer said it holds.
    pub(crate) fn peer_remember(&self, user: &str, hello: &Hello) -> Result<()> {
        let inner = self.lock()?;
        inner
            .conn
            .execute(
                "INSERT INTO peer (user_id, peer_id, their_epoch, heads) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT DO UPDATE SET their_epoch = excluded.their_epoch,
                    heads = excluded.heads",
                params![
                    user,
                    hello.device,
                    hello.epoch.map(|e| e.to_vec()),
                    heads_bytes(&hello.heads)
                ],
            )
            .map_err(Error::sqlite("remembering a peer"))?;
        Ok(())
    }

    /// The learner's whole document.
    pub(crate) fn peer_document(&self, user: &str) -> Result<Vec<u8>> {
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
    pub(crate) fn peer_receive_document(&self, user: &str, bytes: &[u8]) -> Result<()> {
        let mut theirs = LearnerDocument::load(user, bytes, None)?;
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
            let counter: i64 = tx
                .query_row(
                    "UPDATE learner SET epoch = epoch + 1 WHERE user_id = ?1 RETURNING epoch",
                    params![user],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("starting a new epoch"))?;
            let mut adopted =
                LearnerDocument::load(user, bytes, Some(epoch_actor(device, counter)))?;
            let snapshot = adopted.save();
            tx.execute("DELETE FROM doc_chunk WHERE user_id = ?1", params![user])
                .map_err(Error::sqlite("dropping the old document"))?;
            tx.execute(
                "INSERT INTO doc_chunk (user_id, seq, bytes) VALUES (?1, 0, ?2)",
                params![user, snapshot],
            )
            .map_err(Error::sqlite("storing the adopted document"))?;
            documents.insert(
                user.to_string(),
                OpenDocument {
                    doc: adopted,
                    epoch: counter,
                    reconciled: false,
                    loaded_through: 0,
                },
            );
            flush_in(tx, documents, device, user).map(|(changes, _)| ((), changes))
        })
    }

    /// Changes of our epoch from a peer's file.
    pub(crate) fn peer_receive_changes(&self, user: &str, bytes: &[u8]) -> Result<()> {
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
    pub(crate) fn peer_sync_state(&self, user: &str, peer: &str) -> Result<automerge::sync::State> {
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
        user: &str,
        peer: &str,
        epoch: Option<[u8; 16]>,
    ) -> Result<automerge::sync::State> {
        let inner = self.lock()?;
        type Stored = Option<(Option<Vec<u8>>, Option<Vec<u8>>)>;
        let stored: Stored = inner
            .conn
            .query_row(
                "SELECT sync_epoch, sync_state FROM peer WHERE user_id = ?1 AND peer_id = ?2",
                params![user, peer],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Error::sqlite("reading a peer's sync state"))?;
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
        user: &str,
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
        user: &str,
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
        user: &str,
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

    /// A file for a peer device: the changes it lacks if this device knows what `since_peer`
    /// holds in the same epoch, else the whole document.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, ProgressUpdate, Status, Store};
    /// let (school, phone) = (Store::open_in_memory()?, Store::open_in_memory()?);
    /// school.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// let file = school.peer_export("u", None)?;
    /// phone.peer_import("u", &file)?;
    /// assert_eq!(phone.items("u", None)?, school.items("u", None)?);
    /// # Ok(()) }
    /// ```
    pub fn peer_export(&self, user: &str, since_peer: Option<&str>) -> Result<Vec<u8>> {
        let hello = self.peer_hello(user)?;
        let known: Option<(Option<Vec<u8>>, Vec<u8>)> = match since_peer {
            Some(peer) => {
                let inner = self.lock()?;
                inner
                    .conn
                    .query_row(
                        "SELECT their_epoch, heads FROM peer WHERE user_id = ?1 AND peer_id = ?2",
                        params![user, peer],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(Error::sqlite("reading what a peer holds"))?
            }
            None => None,
        };
        let body = match known {
            Some((Some(epoch), heads)) if hello.epoch.is_some_and(|e| e[..] == epoch[..]) => {
                let their_heads = heads_from(&heads);
                let changes = self.on_document(user, |_, documents, _| {
                    let open = documents
                        .get_mut(user)
                        .ok_or_else(|| refuse("the document is not loaded"))?;
                    // Heads the peer has that we never saw mean it knows more than we think:
                    // send everything of the epoch instead.
                    let known_heads: Vec<_> = their_heads
                        .iter()
                        .copied()
                        .filter(|h| open.doc.has_change(h))
                        .collect();
                    Ok(open.doc.changes_after(&known_heads))
                })?;
                PeerMessage::Changes(changes)
            }
            _ => PeerMessage::Document(self.peer_document(user)?),
        };
        let mut file = PeerMessage::Hello(hello).encode();
        let body = body.encode();
        file.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        file.extend_from_slice(&body);
        let mut framed = u32::try_from(file.len() - body.len() - 4)
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        framed.extend_from_slice(&file);
        Ok(framed)
    }

    /// Imports a peer's file (see [`Store::peer_export`]): refused whole, changing nothing, if
    /// it is malformed, for another learner, or does not apply.
    pub fn peer_import(&self, user: &str, file: &[u8]) -> Result<()> {
        let mut messages = Vec::new();
        let mut rest = file;
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(refuse("the file is truncated"));
            }
            let len = usize::try_from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]))
                .map_err(|_| refuse("length"))?;
            let body = rest
                .get(4..4 + len)
                .ok_or_else(|| refuse("the file is truncated"))?;
            messages.push(PeerMessage::decode(body)?);
            rest = &rest[4 + len..];
            if messages.len() > 2 {
                return Err(refuse("the file holds more than a hello and a body"));
            }
        }
        let [PeerMessage::Hello(hello), body] = messages.as_slice() else {
            return Err(refuse(
                "the file is not a hello followed by a document or changes",
            ));
        };
        if hello.user != user {
            return Err(refuse(format!(
                "the file holds learner {:?}'s progress, not {user:?}'s",
                crate::error::shorten(&hello.user)
            )));
        }
        crate::content_state::check_id("device", hello.device.clone())
            .map_err(|e| refuse(e.to_string()))?;
        match body {
            PeerMessage::Document(bytes) => self.peer_receive_document(user, bytes)?,
            PeerMessage::Changes(bytes) => self.peer_receive_changes(user, bytes)?,
            _ => return Err(refuse("the file's body is neither a document nor changes")),
        }
        self.peer_remember(user, hello)
    }
}
