//! How progress lives on disk: a SQLite file (WAL) holding a table of joined content states,
//! which every read is answered from, and each learner's Automerge document, which the table
//! is folded into in batches (write-behind).

mod courses;
mod peers;
mod rows;
mod schema;
mod server_state;
mod sync_log;
mod turns;
mod write_behind;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::content_state::{ContentItem, ContentKey, ContentState};
use crate::document::LearnerDocument;
use crate::error::{Error, Result};
use crate::events::{ChangeOrigin, ContentStateChanged, Event, EventHub, Subscription};
use crate::id::{CourseId, UserId};
use crate::progress_update::ProgressUpdate;

pub use peers::InEpoch;
use rows::{Raise, Row, Rows};
pub use schema::Durability;
pub use sync_log::LastSync;
use write_behind::OpenDocument;

/// How a [`Store`] behaves. Build it with [`StoreOptions::new`] and the by-value setters.
///
/// ```
/// use headway::{Durability, StoreOptions};
/// let options = StoreOptions::new()
///     .durability(Durability::PowerLoss) // the default
///     .flush_after(256)                  // fold inside `record` every 256 states (default: never)
///     .compact_after(32);                // the default
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct StoreOptions {
    durability: Durability,
    flush_after: usize,
    compact_after: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions::new()
    }
}

impl StoreOptions {
    /// The defaults: power-loss durability, no flush inside `record` (see
    /// [`StoreOptions::flush_after`]), a compaction every 32 flushes.
    pub fn new() -> StoreOptions {
        StoreOptions {
            durability: Durability::PowerLoss,
            flush_after: usize::MAX,
            compact_after: 32,
        }
    }

    /// How durable a commit is when `record` returns. Default [`Durability::PowerLoss`].
    pub fn durability(mut self, durability: Durability) -> StoreOptions {
        self.durability = durability;
        self
    }

    /// How many raised states of one learner wait in the table before `record` itself folds
    /// them into the learner's Automerge document as one change. By default `record` never
    /// does (an Automerge write costs more than the whole SQLite commit): the table is the
    /// journal, and the document is brought up to date by [`Store::flush`], before every peer
    /// exchange, by compaction, and by [`BackgroundSync`](crate::BackgroundSync) when idle.
    pub fn flush_after(mut self, states: usize) -> StoreOptions {
        self.flush_after = states.max(1);
        self
    }

    /// How many changes pile up in a learner's document before it is rebased onto a fresh
    /// snapshot of current values, which bounds file size, memory and load time. Default 32;
    /// at least 1.
    pub fn compact_after(mut self, changes: usize) -> StoreOptions {
        self.compact_after = changes.max(1);
        self
    }
}

/// A device's durable store of every learner's content states.
///
/// Every write is one SQLite transaction: when [`Store::record`] returns, the update survives
/// the process being killed (and, with the default [`Durability::PowerLoss`], the device
/// losing power). States only go up: a stale update changes nothing.
///
/// ```
/// # fn main() -> headway::Result<()> {
/// use headway::{ContentKey, ProgressUpdate, Status, Store};
/// let store = Store::open_in_memory()?;
/// let key = ContentKey::new("learner-1", "course-1", "batch-1", "do_1")?;
/// store.record(ProgressUpdate::new(key.clone(), Status::Completed, 100)?)?;
/// store.record(ProgressUpdate::new(key.clone(), Status::InProgress, 40)?)?; // stale
/// assert_eq!(store.state(&key)?.map(|s| s.progress().get()), Some(100));
/// # Ok(()) }
/// ```
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    events: Arc<EventHub>,
    turns: Arc<turns::LearnerTurns>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

struct Inner {
    conn: Connection,
    device: [u8; 16],
    options: StoreOptions,
    documents: HashMap<UserId, OpenDocument>,
    unflushed: HashMap<UserId, usize>,
}

impl Store {
    /// Opens (or creates) the store at `path` with default options.
    ///
    /// A file that is not a headway store, is damaged, or was written by a newer version is
    /// refused with a typed error and left untouched.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// let dir = std::env::temp_dir().join(format!("headway-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let store = headway::Store::open(dir.join("progress.db"))?;
    /// assert!(store.learners()?.is_empty());
    /// # drop(store); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::new())
    }

    /// Opens (or creates) the store at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref();
        check_header(path)?;
        let conn = Connection::open(path).map_err(|e| Error::StoreOpen {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Store::from_connection(conn, options)
    }

    /// A store that lives in memory only: for tests and examples.
    ///
    /// ```
    /// let store = headway::Store::open_in_memory()?;
    /// # let _ = store;
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory().map_err(|e| Error::StoreOpen {
            path: ":memory:".into(),
            reason: e.to_string(),
        })?;
        Store::from_connection(conn, StoreOptions::new())
    }

    fn from_connection(mut conn: Connection, options: StoreOptions) -> Result<Store> {
        schema::prepare(&mut conn, options.durability)?;
        let device = schema::device_id(&conn)?;
        Ok(Store {
            inner: Arc::new(Mutex::new(Inner {
                conn,
                device,
                options,
                documents: HashMap::new(),
                unflushed: HashMap::new(),
            })),
            events: Arc::new(EventHub::default()),
            turns: Arc::new(turns::LearnerTurns::default()),
        })
    }

    /// Waits for `user`'s turn to exchange with a server (see `turns.rs`); it lasts as long
    /// as the guard.
    pub(crate) async fn learner_turn(&self, user: &UserId) -> tokio::sync::OwnedMutexGuard<()> {
        self.turns.take(user).await
    }

    /// Another handle on this store, for work that must own one (a blocking task).
    fn handle(&self) -> Store {
        Store {
            inner: Arc::clone(&self.inner),
            events: Arc::clone(&self.events),
            turns: Arc::clone(&self.turns),
        }
    }

    /// Runs store work (SQLite, Automerge, fsyncs) off the async executor: on tokio's blocking
    /// pool inside a tokio runtime, in place elsewhere. The async entry points (the sync
    /// engine, the courses refresh, the background task) call the store only through here, so
    /// an app's executor threads never wait on the disk.
    pub(crate) async fn off_executor<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.handle();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return work(&store);
        };
        match runtime.spawn_blocking(move || work(&store)).await {
            Ok(done) => done,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(Error::RuntimeShutDown),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| Error::Poisoned)
    }

    /// Checks the whole file's structure (SQLite's `quick_check`, about one full read) and every
    /// row's checksum. Opening a store checks only what it reads; run this after a crash or
    /// before a backup, for example.
    ///
    /// ```
    /// let store = headway::Store::open_in_memory()?;
    /// store.check_integrity()?;
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn check_integrity(&self) -> Result<()> {
        let learners = self.learners()?;
        {
            let inner = self.lock()?;
            schema::integrity_check(&inner.conn)?;
        }
        for user in learners {
            self.items(&user, None)?;
            self.pending(&user)?;
        }
        Ok(())
    }

    /// This device's id (16 bytes, hex): the stem of the actor ids it signs Automerge
    /// changes with. It is made when the store is created and never changes.
    ///
    /// ```
    /// let store = headway::Store::open_in_memory()?;
    /// assert_eq!(store.device_id()?.len(), 32);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn device_id(&self) -> Result<String> {
        let inner = self.lock()?;
        Ok(inner.device.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A seed for the background sync's back-off jitter, drawn from this device's id (random
    /// per store), so devices do not retry in step. The id is written once, when the store
    /// opens, so a lock poisoned since still holds it whole.
    pub(crate) fn jitter_seed(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (high, low) = inner.device.split_at(8);
        let word = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        word(high) ^ word(low)
    }

    /// Records one progress update and returns once it is durable. Returns the change, or
    /// `None` when the update is not above the stored state: progress never goes backwards.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, ProgressUpdate, Status, Store};
    /// let store = Store::open_in_memory()?;
    /// let key = ContentKey::new("learner-1", "course-1", "batch-1", "do_1")?;
    /// assert!(store.record(ProgressUpdate::new(key.clone(), Status::InProgress, 60)?)?.is_some());
    /// let stale = ProgressUpdate::new(key.clone(), Status::InProgress, 20)?
    ///     .consumed_at(headway::Timestamp::from_millis(1_700_000_000_000)?)?;
    /// assert!(store.record(stale)?.is_none());
    /// # Ok(()) }
    /// ```
    pub fn record(&self, update: ProgressUpdate) -> Result<Option<ContentStateChanged>> {
        let mut changes = self.record_batch(vec![update])?;
        Ok(changes.pop().flatten())
    }

    /// Records many updates in one transaction: all of them or, on error, none. Returns one
    /// entry per update, in order: the change it made, or `None` if it changed nothing.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, ProgressUpdate, Status, Store, UserId};
    /// let store = Store::open_in_memory()?;
    /// let updates = (0..3)
    ///     .map(|i| ProgressUpdate::new(ContentKey::new("u", "c", "b", format!("do_{i}"))?, Status::Completed, 100))
    ///     .collect::<headway::Result<Vec<_>>>()?;
    /// let changes = store.record_batch(updates)?;
    /// assert!(changes.iter().all(Option::is_some));
    /// assert_eq!(store.items(&UserId::new("u")?, None)?.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn record_batch(
        &self,
        updates: Vec<ProgressUpdate>,
    ) -> Result<Vec<Option<ContentStateChanged>>> {
        let mut inner = self.lock()?;
        let changes = inner.raise_all(
            updates.iter().map(|u| (u.key(), u.state())),
            ChangeOrigin::Local,
        )?;
        let mut raised_users = BTreeSet::new();
        for change in changes.iter().flatten() {
            *inner
                .unflushed
                .entry(change.key.user().clone())
                .or_default() += 1;
            raised_users.insert(change.key.user().clone());
        }
        let mut extra = Vec::new();
        for user in raised_users {
            let due = inner.unflushed.get(&user).copied().unwrap_or(0) >= inner.options.flush_after;
            if due {
                // The records above are committed whatever happens here: a failed flush leaves
                // the rows marked for the next one.
                match inner.flush(&user) {
                    Ok(more) => extra.extend(more),
                    Err(error) => tracing::warn!(%error, "write-behind flush failed; will retry"),
                }
            }
        }
        self.publish(&inner, changes.iter().flatten().cloned().chain(extra));
        drop(inner);
        Ok(changes)
    }

    /// Announces committed content changes, then the course-progress moves they caused. Called
    /// with the store's lock still held (`inner` proves it), so two threads' events reach every
    /// subscription in commit order; publishing only queues them on channels, so no app code
    /// runs under the lock.
    fn publish(&self, inner: &Inner, changes: impl IntoIterator<Item = ContentStateChanged>) {
        let changes: Vec<ContentStateChanged> = changes.into_iter().collect();
        if changes.is_empty() {
            return;
        }
        let course_events = Store::course_events(&inner.conn, &changes).unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot compute course progress events");
            Vec::new()
        });
        self.events.publish(
            changes
                .into_iter()
                .map(Event::ContentStateChanged)
                .chain(course_events),
        );
    }

    pub(crate) fn publish_event(&self, event: Event) {
        self.events.publish([event]);
    }

    /// The joined state of one content item, or `None` if nothing was recorded for it.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// let store = headway::Store::open_in_memory()?;
    /// let key = headway::ContentKey::new("u", "c", "b", "k")?;
    /// assert_eq!(store.state(&key)?, None);
    /// # Ok(()) }
    /// ```
    pub fn state(&self, key: &ContentKey) -> Result<Option<ContentState>> {
        let inner = self.lock()?;
        Ok(rows::select_one(&inner.conn, key)?.map(|row| row.state))
    }

    /// Every content item of a learner, optionally of one course, ordered by course, batch
    /// and content.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, CourseId, ProgressUpdate, Status, Store, UserId};
    /// let store = Store::open_in_memory()?;
    /// store.record(ProgressUpdate::new(ContentKey::new("u", "c1", "b", "k")?, Status::InProgress, 5)?)?;
    /// store.record(ProgressUpdate::new(ContentKey::new("u", "c2", "b", "k")?, Status::InProgress, 5)?)?;
    /// let (user, course) = (UserId::new("u")?, CourseId::new("c1")?);
    /// assert_eq!(store.items(&user, None)?.len(), 2);
    /// assert_eq!(store.items(&user, Some(&course))?.len(), 1);
    /// assert_eq!(store.items(&UserId::new("someone-else")?, None)?.len(), 0);
    /// # Ok(()) }
    /// ```
    pub fn items(&self, user: &UserId, course: Option<&CourseId>) -> Result<Vec<ContentItem>> {
        let inner = self.lock()?;
        let which = course.map_or(Rows::All, |course| Rows::Course(course));
        let rows = rows::select_learner(&inner.conn, user, which)?;
        Ok(rows
            .into_iter()
            .map(|row| ContentItem::new(row.key, row.state))
            .collect())
    }

    /// The items waiting for a sync: those whose state the server is not known to hold,
    /// leaving out states the server rejected (until they change again). An item the server
    /// dropped without a reason is listed by [`Store::rejected`] instead, though the next sync
    /// sends it again.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, ProgressUpdate, Status, Store, UserId};
    /// let store = Store::open_in_memory()?;
    /// store.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// assert_eq!(store.pending(&UserId::new("u")?)?.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn pending(&self, user: &UserId) -> Result<Vec<ContentItem>> {
        let inner = self.lock()?;
        let rows = rows::select_unsent(&inner.conn, user)?;
        Ok(rows
            .into_iter()
            .filter(Row::is_pending)
            .map(|row| ContentItem::new(row.key, row.state))
            .collect())
    }

    /// Every learner with at least one content state in this store.
    ///
    /// ```
    /// let store = headway::Store::open_in_memory()?;
    /// assert!(store.learners()?.is_empty());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn learners(&self) -> Result<Vec<UserId>> {
        let inner = self.lock()?;
        let mut select = inner
            .conn
            .prepare_cached("SELECT DISTINCT user_id FROM content_state ORDER BY user_id")
            .map_err(Error::sqlite("listing learners"))?;
        let rows = select
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(Error::sqlite("listing learners"))?;
        let ids = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("listing learners"))?;
        // Only validated ids are written; one that fails now was changed behind our back.
        ids.into_iter()
            .map(|id| {
                UserId::new(id).map_err(|e| Error::CorruptStore {
                    reason: format!("a stored learner id is invalid: {e}"),
                })
            })
            .collect()
    }

    /// Folds every state raised since the last flush into the learner's Automerge document,
    /// as one change, committed with the marker that says so.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, ProgressUpdate, Status, Store, UserId};
    /// let store = Store::open_in_memory()?;
    /// let key = ContentKey::new("u", "c", "b", "k")?;
    /// store.record(ProgressUpdate::new(key.clone(), Status::InProgress, 50)?)?;
    /// store.flush(&UserId::new("u")?)?;
    /// assert_eq!(store.document_items(&UserId::new("u")?)?, store.items(&UserId::new("u")?, None)?);
    /// # Ok(()) }
    /// ```
    pub fn flush(&self, user: &UserId) -> Result<()> {
        self.read_flushed_document(user, |_| ())
    }

    /// Rebases the learner's document onto a fresh snapshot of its current values, dropping
    /// the change history, and gives the freed pages back to the file system.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, ProgressUpdate, Status, Store, UserId};
    /// let store = Store::open_in_memory()?;
    /// let key = ContentKey::new("u", "c", "b", "k")?;
    /// store.record(ProgressUpdate::new(key.clone(), Status::InProgress, 50)?)?;
    /// store.compact(&UserId::new("u")?)?;
    /// assert_eq!(store.document_items(&UserId::new("u")?)?, store.items(&UserId::new("u")?, None)?);
    /// # Ok(()) }
    /// ```
    pub fn compact(&self, user: &UserId) -> Result<()> {
        let mut inner = self.lock()?;
        let extra = inner.compact(user)?;
        inner.give_back_free_pages();
        self.publish(&inner, extra);
        drop(inner);
        Ok(())
    }

    /// The learner's content items as the Automerge document holds them, after a flush: equal
    /// to [`Store::items`] (the invariant the crash tests check).
    pub fn document_items(&self, user: &UserId) -> Result<Vec<ContentItem>> {
        self.read_flushed_document(user, |doc| doc.items())
    }

    /// A learner's document as bytes: a snapshot of every current value.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, LearnerDocument, ProgressUpdate, Status, Store, UserId};
    /// let store = Store::open_in_memory()?;
    /// store.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// let doc = LearnerDocument::load(&UserId::new("u")?, &store.save_document(&UserId::new("u")?)?, None)?;
    /// assert_eq!(doc.items(), store.items(&UserId::new("u")?, None)?);
    /// # Ok(()) }
    /// ```
    pub fn save_document(&self, user: &UserId) -> Result<Vec<u8>> {
        self.read_flushed_document(user, LearnerDocument::save)
    }

    /// Flushes the learner's raised rows into their document, then reads the document with
    /// `read` (`T::default()` for a learner without one); the flush's events are published
    /// before the store's lock is released.
    fn read_flushed_document<T: Default>(
        &self,
        user: &UserId,
        read: impl FnOnce(&mut LearnerDocument) -> T,
    ) -> Result<T> {
        let mut inner = self.lock()?;
        let extra = inner.flush(user)?;
        let value = inner
            .documents
            .get_mut(user)
            .map(|open| read(&mut open.doc))
            .unwrap_or_default();
        self.publish(&inner, extra);
        drop(inner);
        Ok(value)
    }

    /// Subscribes to change events: every content state that goes up from now on, from a
    /// local record or a merge, is delivered once, in commit order, unless the subscriber
    /// falls more than [`SUBSCRIPTION_CAPACITY`](crate::SUBSCRIPTION_CAPACITY) events behind
    /// (then it reads [`Event::Lagged`](crate::Event::Lagged)).
    pub fn subscribe(&self) -> Subscription {
        self.events.subscribe(crate::events::SUBSCRIPTION_CAPACITY)
    }

    /// [`Store::subscribe`] with a queue of `capacity` events (at least 1).
    ///
    /// ```
    /// let store = headway::Store::open_in_memory()?;
    /// let events = store.subscribe_with_capacity(100);
    /// assert!(events.try_next().is_none());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn subscribe_with_capacity(&self, capacity: usize) -> Subscription {
        self.events.subscribe(capacity)
    }
}

impl Inner {
    /// Raises each (key, state) in one transaction; returns the change each made.
    fn raise_all<'a>(
        &mut self,
        raises: impl Iterator<Item = (&'a ContentKey, &'a ContentState)>,
        origin: ChangeOrigin,
    ) -> Result<Vec<Option<ContentStateChanged>>> {
        write_transaction(&mut self.conn, "recording", |tx| {
            raises
                .map(|(key, state)| rows::raise(tx, Raise::new(key, *state, origin)))
                .collect()
        })
    }

    /// Gives the pages a compaction freed back to the file system. Housekeeping only: the
    /// compaction has committed already, so a failure (another connection reading, say) is
    /// logged and the next compaction tries again; it never waits for readers.
    fn give_back_free_pages(&mut self) {
        if let Err(error) = self.try_give_back_free_pages() {
            tracing::warn!(%error, "the space a compaction freed stays in the file for now");
        }
    }

    fn try_give_back_free_pages(&mut self) -> Result<()> {
        let mut vacuum = self
            .conn
            .prepare("PRAGMA incremental_vacuum")
            .map_err(Error::sqlite("vacuuming"))?;
        let mut rows = vacuum.query([]).map_err(Error::sqlite("vacuuming"))?;
        while rows.next().map_err(Error::sqlite("vacuuming"))?.is_some() {}
        drop(rows);
        drop(vacuum);
        // A truncating checkpoint waits for readers: try it without the busy timeout.
        self.conn
            .busy_timeout(std::time::Duration::ZERO)
            .map_err(Error::sqlite("checkpointing"))?;
        let checkpoint = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(Error::sqlite("checkpointing"));
        self.conn
            .busy_timeout(schema::BUSY_TIMEOUT)
            .map_err(Error::sqlite("restoring the busy timeout"))?;
        checkpoint
    }
}

/// Runs `body` in one write transaction (taken at once, `BEGIN IMMEDIATE`, so it never fails
/// half-way for want of the write lock): committed when `body` returns `Ok`, rolled back when it
/// returns an error (the transaction is dropped). `step` names the work in errors. Every write
/// of the store goes through here.
pub(crate) fn write_transaction<T>(
    conn: &mut Connection,
    step: &'static str,
    body: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::sqlite(step))?;
    let value = body(&tx)?;
    tx.commit().map_err(Error::sqlite(step))?;
    Ok(value)
}

/// Refuses a non-empty file that does not start with SQLite's magic string before SQLite sees
/// it: SQLite would take a short file for an empty database and write over it.
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(()); // Missing: SQLite creates it. Unreadable: SQLite reports why.
    };
    let mut head = Vec::with_capacity(16);
    file.take(16)
        .read_to_end(&mut head)
        .map_err(|e| Error::StoreOpen {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if head.is_empty() || head.as_slice() == MAGIC {
        return Ok(());
    }
    Err(Error::CorruptStore {
        reason: format!(
            "{} is not a SQLite file ({} bytes of header do not match)",
            path.display(),
            head.len()
        ),
    })
}
