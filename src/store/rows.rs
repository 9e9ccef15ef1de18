//! One `content_state` row: reading it back with its checksum verified and its values
//! validated, and writing it with a fresh checksum.
//!
//! SQLite checks its page structure but not the bytes of a value: a flipped bit inside an id
//! or a progress would read back as a different, valid-looking state. Every row therefore
//! carries a 64-bit checksum of its stored values (all but the `in_document` mark), and
//! a row whose checksum does not match is reported as [`Error::CorruptStore`].

use rusqlite::types::{FromSqlResult, ValueRef};
use rusqlite::{params, Connection};

use crate::content_state::{ContentKey, ContentState, Progress, Status};
use crate::document::{pack, unpack_bytes};
use crate::error::{Error, Result};
use crate::events::{ChangeOrigin, ContentStateChanged};
use crate::id::{BatchId, ContentId, CourseId, UserId};
use crate::rejection::RejectionReason;
use crate::timestamp::Timestamp;

/// The columns every row read selects, in the order [`RawRow::from_sql`] expects.
const COLUMNS: &str = "course_id, batch_id, content_id, status, progress, last_access,
    last_completed, server_state, rejected_state, rejection, checksum, in_document";

/// A state the server refused, and why (which also says how long the refusal holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) state: ContentState,
    pub(crate) reason: RejectionReason,
}

/// What the row checksum covers of a rejection: the server's text, behind a marker naming its
/// kind (none for a refusal for good). These are the exact bytes schema version 3 stored in
/// `rejected_reason` for the two kinds it knew (a refusal's text, and a dropped item's text
/// behind `\u{1e}next-sync\u{1e}`), so rows written by every version keep their checksums
/// through the upgrades. This is a hash input only: what is stored is [`stored_reason`].
fn summed_reason(kind: &str, text: &str) -> String {
    match kind {
        "refused" => text.to_string(),
        "dropped" => format!("\u{1e}next-sync\u{1e}{text}"),
        other => format!("\u{1e}{other}\u{1e}{text}"),
    }
}

/// Separates a rejection's kind from the server's text in the `rejection` column (U+001E, record
/// separator; no kind name contains it, the text may).
const KIND_END: char = '\u{1e}';

/// What the `rejection` column stores (schema 5): the kind, [`KIND_END`], the server's text as it
/// sent it. One column for both, so a row that was never rejected spends nothing on the kind
/// (schema 4's own `rejected_kind` column cost every row a byte, +2.1% of the file).
fn stored_reason(kind: &str, text: &str) -> String {
    format!("{kind}{KIND_END}{text}")
}

/// The kind and the text of a stored rejection; a value without the separator has kind `""`
/// (which no reason has: the row then reads as corrupt).
fn split_reason(stored: &str) -> (&str, &str) {
    stored.split_once(KIND_END).unwrap_or(("", stored))
}

/// A validated row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) key: ContentKey,
    /// The join of everything this device knows.
    pub(crate) state: ContentState,
    /// The highest state the server is known to hold.
    pub(crate) server: Option<ContentState>,
    /// The state the server last refused for good, if the row has not risen since.
    pub(crate) rejected: Option<Rejection>,
    /// Whether `state` is folded into the learner's document yet.
    pub(crate) in_document: InDocument,
}

impl Row {
    /// A row for a content item seen for the first time.
    pub(crate) fn new(key: ContentKey, state: ContentState) -> Row {
        Row {
            key,
            state,
            server: None,
            rejected: None,
            in_document: InDocument::No,
        }
    }

    /// True when a sync sends this row: the server is not known to hold its state, and did
    /// not refuse exactly this state for good. A state the server dropped without a reason is
    /// a retry state of the row: the next sync sends it, with no pass that rewrites the row
    /// first ([`RejectionReason::DroppedByServer`]).
    pub(crate) fn is_sent_by_sync(&self) -> bool {
        let held = self.server.is_some_and(|s| s.covers(&self.state));
        let refused_for_good = self
            .rejection()
            .is_some_and(|r| !r.is_resent_at_next_sync());
        !held && !refused_for_good
    }

    /// True when the app is told this row is pending: a sync sends it, and it is not listed
    /// as rejected (a state the server dropped is listed so until the server answers
    /// otherwise for it).
    pub(crate) fn is_pending(&self) -> bool {
        self.is_sent_by_sync() && self.rejection().is_none()
    }

    /// Why the server refused exactly the current state, if it did.
    pub(crate) fn rejection(&self) -> Option<&RejectionReason> {
        self.rejected
            .as_ref()
            .filter(|r| r.state == self.state)
            .map(|r| &r.reason)
    }
}

/// One raise of a row: the state to join in, where it came from, and what else the writer
/// knows. Build it with [`Raise::new`] and the by-value setters.
pub(crate) struct Raise<'k> {
    key: &'k ContentKey,
    state: ContentState,
    origin: ChangeOrigin,
    document: Option<Option<ContentState>>,
    server: Option<ContentState>,
}

impl<'k> Raise<'k> {
    /// Joins `state` into the row of `key`; the row is left for the next flush to fold into
    /// the document.
    pub(crate) fn new(key: &'k ContentKey, state: ContentState, origin: ChangeOrigin) -> Raise<'k> {
        Raise {
            key,
            state,
            origin,
            document: None,
            server: None,
        }
    }

    /// The learner's document holds `held` for this key (a raise that comes from the
    /// document): the row counts as folded when the joined state is exactly that.
    pub(crate) fn document_holds(mut self, held: Option<ContentState>) -> Raise<'k> {
        self.document = Some(held);
        self
    }

    /// The server is known to hold at least `state` too (what it reported).
    pub(crate) fn server_holds(mut self, state: ContentState) -> Raise<'k> {
        self.server = Some(state);
        self
    }
}

/// The one way a row goes up: reads the row, joins the new state in (and what the server is
/// known to hold, if given), writes the row if anything rose, and returns the change to
/// announce, or `None` when the state did not rise. Nothing is ever lowered.
pub(crate) fn raise(conn: &Connection, raise: Raise<'_>) -> Result<Option<ContentStateChanged>> {
    let stored = select_one(conn, raise.key)?;
    raise_read(conn, stored, raise)
}

/// [`raise`] for a caller that has just read the row (`stored`, `None` when there is none) in
/// the same transaction: a flush folding thousands of rows reads each once.
pub(crate) fn raise_read(
    conn: &Connection,
    stored: Option<Row>,
    raise: Raise<'_>,
) -> Result<Option<ContentStateChanged>> {
    let before = stored.as_ref().map(|row| row.state);
    let after = before.map_or(raise.state, |b| b.merge(&raise.state));
    let mut row = stored.unwrap_or_else(|| Row::new(raise.key.clone(), after));
    let server = match raise.server {
        Some(held) => Some(row.server.map_or(held, |s| s.merge(&held))),
        None => row.server,
    };
    let rose = before != Some(after);
    if !rose && row.server == server {
        return Ok(None);
    }
    row.server = server;
    if rose {
        row.state = after;
        row.in_document = match raise.document {
            Some(held) if held == Some(after) => InDocument::Yes,
            _ => InDocument::No,
        };
    }
    write(conn, &row)?;
    Ok(rose.then(|| ContentStateChanged {
        key: raise.key.clone(),
        before,
        after,
        origin: raise.origin,
    }))
}

/// Which rows of a learner to read.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rows<'a> {
    /// Every row of the learner.
    All,
    /// The rows of one course.
    Course(&'a str),
    /// The rows raised since the last flush into the document.
    NotInDocument,
}

/// Whether a written row is already folded into the learner's document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InDocument {
    /// The row was raised: the next flush folds it in.
    No,
    /// The row's state is already in the document.
    Yes,
}

/// A row as stored, before its checksum is verified. Text and blobs are borrowed from SQLite's
/// row: only the ids that end up in the [`Row`] are copied, once (see [`KnownIds`]).
struct RawRow<'r> {
    course: &'r str,
    batch: &'r str,
    content: &'r str,
    status: i64,
    progress: i64,
    last_access: Option<i64>,
    last_completed: Option<i64>,
    server: Option<&'r [u8]>,
    rejected_state: Option<&'r [u8]>,
    rejection: Option<&'r str>,
    checksum: i64,
    in_document: i64,
}

/// Reads column `idx` of `row` without copying it.
fn borrowed<'r, T>(
    row: &'r rusqlite::Row<'_>,
    idx: usize,
    read: impl FnOnce(&ValueRef<'r>) -> FromSqlResult<T>,
) -> rusqlite::Result<T> {
    let value = row.get_ref(idx)?;
    read(&value)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, value.data_type(), e.into()))
}

impl<'r> RawRow<'r> {
    fn from_sql(row: &'r rusqlite::Row<'_>) -> rusqlite::Result<RawRow<'r>> {
        Ok(RawRow {
            course: borrowed(row, 0, ValueRef::as_str)?,
            batch: borrowed(row, 1, ValueRef::as_str)?,
            content: borrowed(row, 2, ValueRef::as_str)?,
            status: row.get(3)?,
            progress: row.get(4)?,
            last_access: row.get(5)?,
            last_completed: row.get(6)?,
            server: borrowed(row, 7, ValueRef::as_blob_or_null)?,
            rejected_state: borrowed(row, 8, ValueRef::as_blob_or_null)?,
            rejection: borrowed(row, 9, ValueRef::as_str_or_null)?,
            checksum: row.get(10)?,
            in_document: row.get(11)?,
        })
    }

    fn checksum(&self, user: &str) -> i64 {
        checksum(
            user,
            [self.course, self.batch, self.content],
            [self.status, self.progress],
            [self.last_access, self.last_completed],
            [self.server, self.rejected_state],
            self.rejection
                .map(|stored| {
                    let (kind, text) = split_reason(stored);
                    summed_reason(kind, text)
                })
                .as_deref(),
        )
    }

    fn validate(self, ids: &mut KnownIds) -> Result<Row> {
        let user: &str = &ids.user;
        if self.checksum(user) != self.checksum {
            return Err(Error::CorruptStore {
                reason: format!(
                    "checksum mismatch in the content state row of learner {:?}",
                    crate::error::shorten(user)
                ),
            });
        }
        // The ids were validated when the row was written and the checksum proves they are
        // unchanged, so they are not checked again.
        let key = ids.key(self.course, self.batch, self.content);
        let time = |t: Option<i64>| t.map(Timestamp::from_millis).transpose();
        let state = ContentState::new(
            Status::try_from(self.status).map_err(corrupt)?,
            Progress::new(self.progress).map_err(corrupt)?,
            time(self.last_access).map_err(corrupt)?,
            time(self.last_completed).map_err(corrupt)?,
        );
        let server = self.server.map(register).transpose()?;
        let rejected = match (self.rejected_state, self.rejection.map(split_reason)) {
            (Some(bytes), Some((kind, text))) => Some(Rejection {
                state: register(bytes)?,
                reason: RejectionReason::from_kind(kind, text.to_string())
                    .ok_or_else(|| corrupt_reason("a rejection is of an unknown kind"))?,
            }),
            (None, None) => None,
            _ => {
                return Err(corrupt_reason(
                    "a rejection lacks its state, kind or reason",
                ))
            }
        };
        let in_document = match self.in_document {
            0 => InDocument::No,
            _ => InDocument::Yes,
        };
        Ok(Row {
            key,
            state,
            server,
            rejected,
            in_document,
        })
    }
}

/// The ids of the row read last, shared with the next row that names the same ones. A
/// learner's rows come ordered by course and batch, so 10,000 items of 50 courses hold one copy
/// of the learner's id and one per course and batch, not one each per row. The ids come from
/// rows whose checksum matched: they were validated when written and are not checked again.
struct KnownIds {
    user: UserId,
    course: Option<CourseId>,
    batch: Option<BatchId>,
    content: Option<ContentId>,
}

impl KnownIds {
    /// Shares the ids of `key`, as when reading its own row back.
    fn of_key(key: &ContentKey) -> KnownIds {
        KnownIds {
            user: key.user().clone(),
            course: Some(key.course().clone()),
            batch: Some(key.batch().clone()),
            content: Some(key.content().clone()),
        }
    }

    fn of_user(user: &UserId) -> KnownIds {
        KnownIds {
            user: user.clone(),
            course: None,
            batch: None,
            content: None,
        }
    }

    fn key(&mut self, course: &str, batch: &str, content: &str) -> ContentKey {
        ContentKey::from_ids(
            self.user.clone(),
            shared(&mut self.course, course, CourseId::trusted),
            shared(&mut self.batch, batch, BatchId::trusted),
            shared(&mut self.content, content, ContentId::trusted),
        )
    }
}

/// The id known already if it reads `text`, else a new one from `text`, kept for the next row.
fn shared<I: Clone + PartialEq<str>>(known: &mut Option<I>, text: &str, new: fn(&str) -> I) -> I {
    match known {
        Some(id) if *id == *text => id.clone(),
        _ => known.insert(new(text)).clone(),
    }
}

/// A 64-bit hash over every stored value, with lengths so that moving bytes between fields
/// changes the sum.
fn checksum(
    user: &str,
    ids: [&str; 3],
    numbers: [i64; 2],
    times: [Option<i64>; 2],
    blobs: [Option<&[u8]>; 2],
    reason: Option<&str>,
) -> i64 {
    // Eight bytes per step (a multiply-rotate mix), each field closed by its length, so moving
    // bytes between fields changes the sum.
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |word: u64| {
        hash = (hash ^ word).wrapping_mul(K).rotate_left(29);
    };
    let mut eat = |bytes: &[u8]| {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            mix(u64::from_le_bytes(w));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        mix(u64::from_le_bytes(tail));
        mix(bytes.len() as u64 ^ 0xA5A5_A5A5_0000_0000);
    };
    eat(user.as_bytes());
    for id in ids {
        eat(id.as_bytes());
    }
    for n in numbers {
        eat(&n.to_le_bytes());
    }
    for t in times {
        eat(&t.map_or([0xee; 8], i64::to_le_bytes));
    }
    for blob in blobs {
        eat(blob.unwrap_or(&[0xee]));
    }
    eat(reason.map_or(&[0xee][..], str::as_bytes));
    // Reinterpreting the bits as i64 is what SQLite stores; no information is lost.
    hash as i64
}

fn corrupt(e: Error) -> Error {
    corrupt_reason(&format!("a content state row holds an invalid value: {e}"))
}

fn corrupt_reason(reason: &str) -> Error {
    Error::CorruptStore {
        reason: reason.to_string(),
    }
}

fn register(bytes: &[u8]) -> Result<ContentState> {
    unpack_bytes(bytes)
        .ok_or_else(|| corrupt_reason("a stored server or rejected state is malformed"))
}

/// Reads one row, or `None` if the content item was never seen.
pub(crate) fn select_one(conn: &Connection, key: &ContentKey) -> Result<Option<Row>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM content_state
        WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3 AND content_id = ?4"
    );
    let mut select = conn
        .prepare_cached(&sql)
        .map_err(Error::sqlite("reading a content state"))?;
    let mut rows = select
        .query(params![
            key.user().as_str(),
            key.course().as_str(),
            key.batch().as_str(),
            key.content().as_str()
        ])
        .map_err(Error::sqlite("reading a content state"))?;
    match rows
        .next()
        .map_err(Error::sqlite("reading a content state"))?
    {
        Some(row) => {
            let raw = RawRow::from_sql(row).map_err(Error::sqlite("reading a content state"))?;
            raw.validate(&mut KnownIds::of_key(key)).map(Some)
        }
        None => Ok(None),
    }
}

/// A learner's rows that a sync sends ([`Row::is_sent_by_sync`]), ordered by course, batch and
/// content: the one query behind [`Store::pending`](crate::Store::pending) and the items a
/// sync hands to the adapter.
pub(crate) fn select_unsent(conn: &Connection, user: &UserId) -> Result<Vec<Row>> {
    let mut rows = select_learner(conn, user, Rows::All)?;
    rows.retain(Row::is_sent_by_sync);
    Ok(rows)
}

/// Reads a learner's rows, ordered by course, batch and content.
pub(crate) fn select_learner(
    conn: &Connection,
    user: &UserId,
    which: Rows<'_>,
) -> Result<Vec<Row>> {
    let filter = match which {
        Rows::All => "",
        Rows::Course(_) => "AND course_id = ?2",
        Rows::NotInDocument => "AND in_document = 0",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM content_state WHERE user_id = ?1 {filter}
        ORDER BY course_id, batch_id, content_id"
    );
    let mut select = conn
        .prepare_cached(&sql)
        .map_err(Error::sqlite("reading content states"))?;
    let mut rows = match which {
        Rows::Course(course) => select.query(params![user.as_str(), course]),
        Rows::All | Rows::NotInDocument => select.query(params![user.as_str()]),
    }
    .map_err(Error::sqlite("reading content states"))?;
    let mut ids = KnownIds::of_user(user);
    let mut out = Vec::new();
    while let Some(row) = rows
        .next()
        .map_err(Error::sqlite("reading content states"))?
    {
        let raw = RawRow::from_sql(row).map_err(Error::sqlite("reading content states"))?;
        out.push(raw.validate(&mut ids)?);
    }
    Ok(out)
}

/// Writes a whole row with a fresh checksum.
pub(crate) fn write(conn: &Connection, row: &Row) -> Result<()> {
    let key = &row.key;
    let state = &row.state;
    let status = i64::from(state.status().code());
    let progress = i64::from(state.progress().get());
    let last_access = state.last_access_time().map(Timestamp::as_millis);
    let last_completed = state.last_completed_time().map(Timestamp::as_millis);
    let server = row.server.as_ref().map(pack);
    let rejected_state = row.rejected.as_ref().map(|r| pack(&r.state));
    let rejection = row
        .rejected
        .as_ref()
        .map(|r| stored_reason(r.reason.kind(), r.reason.text()));
    let summed = row
        .rejected
        .as_ref()
        .map(|r| summed_reason(r.reason.kind(), r.reason.text()));
    let sum = checksum(
        key.user(),
        [key.course(), key.batch(), key.content()],
        [status, progress],
        [last_access, last_completed],
        [server.as_deref(), rejected_state.as_deref()],
        summed.as_deref(),
    );
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO content_state
            (user_id, course_id, batch_id, content_id, status, progress, last_access,
             last_completed, server_state, rejected_state, rejection, checksum, in_document)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
            ON CONFLICT DO UPDATE SET status = excluded.status, progress = excluded.progress,
                last_access = excluded.last_access, last_completed = excluded.last_completed,
                server_state = excluded.server_state, rejected_state = excluded.rejected_state,
                rejection = excluded.rejection, checksum = excluded.checksum,
                in_document = excluded.in_document",
        )
        .map_err(Error::sqlite("writing a content state"))?;
    upsert
        .execute(params![
            key.user().as_str(),
            key.course().as_str(),
            key.batch().as_str(),
            key.content().as_str(),
            status,
            progress,
            last_access,
            last_completed,
            server,
            rejected_state,
            rejection,
            sum,
            i64::from(row.in_document == InDocument::Yes),
        ])
        .map_err(Error::sqlite("writing a content state"))?;
    // Keep the leaf status of enrolled courses in step (a no-op for a content that is not a
    // leaf of any cached course).
    if status > 0 {
        conn.prepare_cached(
            "UPDATE course_leaf SET status = ?5
            WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3 AND content_id = ?4
                AND status < ?5",
        )
        .map_err(Error::sqlite("updating a course leaf"))?
        .execute(params![
            key.user().as_str(),
            key.course().as_str(),
            key.batch().as_str(),
            key.content().as_str(),
            status
        ])
        .map_err(Error::sqlite("updating a course leaf"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{ContentKey, ProgressUpdate, Status, Store, UserId};

    #[test]
    fn a_rejection_reads_back_its_kind_and_the_whole_text_even_with_the_separator_in_it() {
        use super::{split_reason, stored_reason};
        for kind in ["refused", "dropped", "batch_not_ongoing", "batch_unknown"] {
            for text in ["", "plain", "a\u{1e}b", "\u{1e}next-sync\u{1e}x", "\u{1e}"] {
                assert_eq!(split_reason(&stored_reason(kind, text)), (kind, text));
            }
        }
        assert_eq!(split_reason("no separator"), ("", "no separator"));
    }

    /// Where an id's text lives: two ids that share one allocation have the same address.
    fn text_at(id: &str) -> *const u8 {
        id.as_ptr()
    }

    #[test]
    fn a_learners_rows_share_one_copy_of_the_learner_course_and_batch_ids() {
        let store = Store::open_in_memory().unwrap();
        let mut updates = Vec::new();
        for course in ["do_course_a", "do_course_b"] {
            for content in ["do_1", "do_2", "do_3"] {
                let key = ContentKey::new("learner-1", course, "0130", content).unwrap();
                updates.push(ProgressUpdate::new(key, Status::InProgress, 40).unwrap());
            }
        }
        store.record_batch(updates).unwrap();
        let items = store
            .items(&UserId::new("learner-1").unwrap(), None)
            .unwrap();
        assert_eq!(items.len(), 6);
        let keys: Vec<&ContentKey> = items.iter().map(|item| item.key()).collect();
        for key in &keys {
            assert_eq!(text_at(key.user()), text_at(keys[0].user()), "{key:?}");
        }
        for course in keys.chunks(3) {
            for key in course {
                assert_eq!(
                    text_at(key.course()),
                    text_at(course[0].course()),
                    "{key:?}"
                );
                assert_eq!(text_at(key.batch()), text_at(course[0].batch()), "{key:?}");
            }
        }
        assert_ne!(text_at(keys[0].course()), text_at(keys[3].course()));
        let contents: std::collections::BTreeSet<_> =
            keys.iter().map(|key| text_at(key.content())).collect();
        assert_eq!(contents.len(), 6, "each content id is its own");
    }
}
