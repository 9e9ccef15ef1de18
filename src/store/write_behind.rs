//! Write-behind: states raised in the table are folded into the learner's Automerge document
//! in batches, one change per flush, and the document is rebased onto a fresh snapshot when its
//! history grows.
//!
//! A flush commits the new change and clears the rows' `in_document = 0` marks in one
//! transaction, so after a crash exactly the rows raised since the last committed flush are
//! folded in again; folding is a join, so folding twice is harmless.

use automerge::ActorId;
use std::collections::HashMap;

use rusqlite::{params, Transaction};

use super::rows::{self, Raise, Rows};
use super::{write_transaction, Inner};
use crate::document::LearnerDocument;
use crate::error::{Error, Result};
use crate::events::{ChangeOrigin, ContentStateChanged};
use crate::id::UserId;
use crate::timestamp::Timestamp;

/// A learner's document as loaded in memory, and how much of the stored log it holds.
pub(super) struct OpenDocument {
    pub(super) doc: LearnerDocument,
    pub(super) epoch: i64,
    /// False until the document and the whole table were joined once since loading.
    pub(super) reconciled: bool,
    /// The highest `doc_chunk.seq` applied to `doc`.
    pub(super) loaded_through: i64,
}

/// The actor id a device signs a learner's changes with in one epoch: the device id followed
/// by the epoch. A rebase starts a new epoch, so the fresh snapshot's changes never reuse an
/// (actor, seq) pair of the dropped history.
pub(super) fn epoch_actor(device: &[u8; 16], epoch: i64) -> ActorId {
    let mut bytes = device.to_vec();
    bytes.extend_from_slice(&epoch.to_be_bytes());
    ActorId::from(bytes)
}

impl Inner {
    /// Flushes `user`'s raised rows into the document; returns the changes the document
    /// itself brought to the table (none unless another writer raised the document alone).
    pub(super) fn flush(&mut self, user: &UserId) -> Result<Vec<ContentStateChanged>> {
        let (changes, seq, ()) = self.with_document(user, |_, _, _| Ok(()))?;
        self.unflushed.remove(user);
        if seq >= i64::try_from(self.options.compact_after).unwrap_or(i64::MAX) {
            let mut more = changes;
            more.extend(self.compact(user)?);
            self.give_back_free_pages();
            return Ok(more);
        }
        Ok(changes)
    }

    /// Runs `step` on the learner's document, brought up to date first (a flush), inside one
    /// write transaction. On any error the transaction rolls back and the cached document is
    /// dropped: it may hold a change that was never stored, and the next use reloads it from
    /// the file. Returns the flush's table changes, the seq of the last stored chunk, and what
    /// `step` returned.
    pub(super) fn with_document<T>(
        &mut self,
        user: &UserId,
        step: impl FnOnce(&Transaction<'_>, &mut HashMap<UserId, OpenDocument>, &[u8; 16]) -> Result<T>,
    ) -> Result<(Vec<ContentStateChanged>, i64, T)> {
        let Inner {
            conn,
            device,
            documents,
            ..
        } = self;
        let outcome = write_transaction(conn, "writing on the document", |tx| {
            let (changes, seq) = flush_in(tx, documents, device, user)?;
            step(tx, documents, device).map(|value| (changes, seq, value))
        });
        if outcome.is_err() {
            documents.remove(user);
        }
        outcome
    }

    /// Rebases `user`'s document onto a fresh snapshot of the current values, in a new epoch.
    pub(super) fn compact(&mut self, user: &UserId) -> Result<Vec<ContentStateChanged>> {
        let Inner {
            conn,
            device,
            documents,
            ..
        } = self;
        // The snapshot is built from the table, so first join the whole document into it
        // (a full reconcile, as after a load): whatever the document holds, however it got
        // there, is in the table before the history that carried it is dropped.
        if let Some(open) = documents.get_mut(user) {
            open.reconciled = false;
        }
        let outcome = write_transaction(conn, "compacting", |tx| {
            let (changes, _) = flush_in(tx, documents, device, user)?;
            // The snapshot holds the table, which covers the document after the reconcile.
            let mut open = replace_document(tx, device, user, |actor| {
                let mut snapshot = LearnerDocument::with_actor(user, actor)?;
                for row in rows::select_learner(tx, user, Rows::All)? {
                    snapshot.raise(&row.key, &row.state)?;
                }
                Ok(snapshot)
            })?;
            open.reconciled = true;
            Ok((changes, open))
        });
        documents.remove(user);
        let (changes, open) = outcome?;
        documents.insert(user.clone(), open);
        Ok(changes)
    }
}

/// The flush, inside the caller's transaction: returns the table changes the document brought
/// and the seq of the last chunk.
pub(super) fn flush_in(
    tx: &Transaction<'_>,
    documents: &mut std::collections::HashMap<UserId, OpenDocument>,
    device: &[u8; 16],
    user: &UserId,
) -> Result<(Vec<ContentStateChanged>, i64)> {
    let open = load_document(tx, documents, device, user)?;
    // The first flush after loading joins the document with the whole table, both ways, so
    // that after any restart they agree even if one lost a row or a chunk (the join repairs
    // whichever side is lower; nothing is ever lowered). Later flushes fold raised rows only.
    let which = if open.reconciled {
        Rows::NotInDocument
    } else {
        Rows::All
    };
    let rows_to_fold = rows::select_learner(tx, user, which)?;
    // The document holds whatever peers wrote: a time in it more than a day after this
    // device's clock stays out of the table (issue 17), as at every boundary.
    let now = Timestamp::now();
    let mut in_table = std::collections::HashSet::new();
    let mut changes = Vec::new();
    for row in rows_to_fold {
        let joined = open.doc.raise(&row.key, &row.state)?;
        if !open.reconciled {
            in_table.insert(row.key.clone());
        }
        if joined != row.state {
            // The document held more than the table for this key: raise the table to match.
            let key = row.key.clone();
            let raise = Raise::new(&key, joined.without_future_times(now), ChangeOrigin::Peer)
                .document_holds(Some(joined));
            changes.extend(rows::raise_read(tx, Some(row), raise)?);
        }
    }
    if !open.reconciled {
        for item in open.doc.items() {
            if !in_table.contains(item.key()) {
                // No row in the table (every row was read above).
                let state = *item.state();
                let raise = Raise::new(
                    item.key(),
                    state.without_future_times(now),
                    ChangeOrigin::Peer,
                )
                .document_holds(Some(state));
                changes.extend(rows::raise_read(tx, None, raise)?);
            }
        }
        open.reconciled = true;
    }
    let mut seq = open.loaded_through;
    if let Some(bytes) = open.doc.commit_change() {
        seq = open.loaded_through + 1;
        tx.execute(
            "INSERT INTO doc_chunk (user_id, seq, bytes) VALUES (?1, ?2, ?3)",
            params![user, seq, bytes],
        )
        .map_err(Error::sqlite("storing a document change"))?;
        open.loaded_through = seq;
    }
    tx.execute(
        "UPDATE content_state SET in_document = 1 WHERE user_id = ?1 AND in_document = 0",
        params![user],
    )
    .map_err(Error::sqlite("marking states as folded"))?;
    Ok((changes, seq))
}

/// Makes sure `documents[user]` holds every stored chunk of the learner's current epoch,
/// loading or catching up as needed (another process may have written to the file).
pub(super) fn load_document<'d>(
    tx: &Transaction<'_>,
    documents: &'d mut std::collections::HashMap<UserId, OpenDocument>,
    device: &[u8; 16],
    user: &UserId,
) -> Result<&'d mut OpenDocument> {
    let epoch: i64 = match tx
        .query_row(
            "SELECT epoch FROM learner WHERE user_id = ?1",
            params![user],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })
        .map_err(Error::sqlite("reading the learner's epoch"))?
    {
        Some(epoch) => epoch,
        None => {
            tx.execute(
                "INSERT INTO learner (user_id, epoch) VALUES (?1, 0)",
                params![user],
            )
            .map_err(Error::sqlite("adding a learner"))?;
            0
        }
    };
    let stale = documents.get(user).is_some_and(|open| open.epoch != epoch);
    if stale {
        documents.remove(user);
    }
    let since = documents.get(user).map_or(-1, |open| open.loaded_through);
    let mut select = tx
        .prepare_cached(
            "SELECT seq, bytes FROM doc_chunk WHERE user_id = ?1 AND seq > ?2 ORDER BY seq",
        )
        .map_err(Error::sqlite("reading the document"))?;
    let chunks = select
        .query_map(params![user, since], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(Error::sqlite("reading the document"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::sqlite("reading the document"))?;
    let last = chunks.last().map_or(since, |(seq, _)| *seq);
    match documents.entry(user.clone()) {
        std::collections::hash_map::Entry::Occupied(entry) => {
            let open = entry.into_mut();
            for (_, bytes) in &chunks {
                open.doc.load_more(bytes)?;
            }
            open.loaded_through = last;
            Ok(open)
        }
        std::collections::hash_map::Entry::Vacant(entry) => {
            let actor = epoch_actor(device, epoch);
            let doc = if chunks.is_empty() {
                LearnerDocument::with_actor(user, actor)?
            } else {
                let bytes: Vec<u8> = chunks.iter().flat_map(|(_, b)| b.iter().copied()).collect();
                LearnerDocument::load(user, &bytes, Some(actor))?
            };
            Ok(entry.insert(OpenDocument {
                doc,
                epoch,
                reconciled: false,
                loaded_through: last,
            }))
        }
    }
}

/// The one way a learner's document is replaced (a compaction's snapshot, or a peer's document
/// adopted): starts a new epoch, builds the document with that epoch's actor (never used
/// before, so no (actor, seq) pair of the dropped history is reused), drops every stored chunk
/// and stores the document whole as the first chunk of the epoch. Returns it loaded, not yet
/// reconciled with the table.
pub(super) fn replace_document(
    tx: &Transaction<'_>,
    device: &[u8; 16],
    user: &UserId,
    build: impl FnOnce(ActorId) -> Result<LearnerDocument>,
) -> Result<OpenDocument> {
    let epoch: i64 = tx
        .query_row(
            "UPDATE learner SET epoch = epoch + 1 WHERE user_id = ?1 RETURNING epoch",
            params![user],
            |row| row.get(0),
        )
        .map_err(Error::sqlite("starting a new epoch"))?;
    let mut doc = build(epoch_actor(device, epoch))?;
    let snapshot = doc.save();
    tx.execute("DELETE FROM doc_chunk WHERE user_id = ?1", params![user])
        .map_err(Error::sqlite("dropping old document history"))?;
    tx.execute(
        "INSERT INTO doc_chunk (user_id, seq, bytes) VALUES (?1, 0, ?2)",
        params![user, snapshot],
    )
    .map_err(Error::sqlite("storing the document snapshot"))?;
    Ok(OpenDocument {
        doc,
        epoch,
        reconciled: false,
        loaded_through: 0,
    })
}
