//! [`Store`]: a device's store of learners' progress, as the app sees it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use headway::{BackgroundOptions, BackgroundSync, CourseId, StoreOptions, UserId};
use headway_sunbird::{PlayerEventOutcome, RecordPlayerEvent};

use crate::app_calls::{is_shut_down, WakeThroughGate};
use crate::error::{guard, HeadwayError};
use crate::events::{deliver, EventListener};
use crate::server::SunbirdServer;
use crate::types::{
    ContentItem, CourseContext, Durability, EnrolledCourse, ProgressUpdate, RejectedItem,
    SyncReport,
};

/// The runtime network calls and the background sync run on: built on first use, two worker
/// threads, kept for the life of the process.
fn runtime() -> Result<&'static tokio::runtime::Runtime, HeadwayError> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("headway-net")
        .enable_all()
        .build()
        .map_err(|e| HeadwayError::Internal {
            message: format!("cannot start headway's runtime: {e}"),
        })?;
    Ok(RUNTIME.get_or_init(|| built))
}

/// Runs `work` on headway's runtime and waits for it without blocking the caller's executor;
/// a panic in it becomes [`HeadwayError::Internal`]. The app is woken through the gate (see
/// `WakeThroughGate`): the runtime's thread that finishes `work` wakes it.
async fn on_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, HeadwayError>> + Send + 'static,
) -> Result<T, HeadwayError> {
    match WakeThroughGate(runtime()?.spawn(work)).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(HeadwayError::from_panic(e.into_panic())),
        Err(e) => Err(HeadwayError::Internal {
            message: format!("headway's task stopped: {e}"),
        }),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A device's durable store of learners' course progress, in one SQLite file. Local calls
/// block (they are fast); `sync` and `refresh_courses` are async. Progress never goes down:
/// an update below what is stored changes nothing.
///
/// ```
/// use headway_ffi::{ProgressUpdate, Status, Store};
/// let dir = std::env::temp_dir().join(format!("headway-ffi-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = Store::new(dir.join("progress.db").display().to_string(), None)?;
/// let update = |progress, consumed_at_ms| ProgressUpdate {
///     user_id: "learner-1".into(), course_id: "do_course".into(), batch_id: "0130".into(),
///     content_id: "do_video".into(), status: Status::InProgress, progress, consumed_at_ms,
/// };
/// assert!(store.record(update(60, None))?);
/// let earlier = Some(1_700_000_000_000); // an old session's update arrives late
/// assert!(!store.record(update(20, earlier))?); // stale: changes nothing
/// assert_eq!(store.state("learner-1".into(), None)?[0].progress, 60);
/// # drop(store); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), headway_ffi::HeadwayError>(())
/// ```
#[derive(uniffi::Object)]
pub struct Store {
    store: Arc<headway::Store>,
    listeners: Mutex<Vec<Arc<AtomicBool>>>,
    background: Mutex<Option<BackgroundSync>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Ok(listeners) = self.listeners.lock() {
            for stop in listeners.iter() {
                stop.store(true, Ordering::Release);
            }
        }
        // Dropping a background sync tells its task to stop.
        if let Ok(mut background) = self.background.lock() {
            background.take();
        }
    }
}

impl Store {
    fn wrap(store: headway::Store) -> Arc<Store> {
        Arc::new(Store {
            store: Arc::new(store),
            listeners: Mutex::new(Vec::new()),
            background: Mutex::new(None),
        })
    }

    /// A store that lives in memory only: for Rust tests and examples.
    ///
    /// ```
    /// let store = headway_ffi::Store::open_in_memory()?;
    /// assert!(store.state("learner-1".into(), None)?.is_empty());
    /// # Ok::<(), headway_ffi::HeadwayError>(())
    /// ```
    pub fn open_in_memory() -> Result<Arc<Store>, HeadwayError> {
        guard(|| Ok(Store::wrap(headway::Store::open_in_memory()?)))
    }
}

#[uniffi::export]
impl Store {
    /// Opens (or creates) the store file at `path`. A file that is not a headway store, is
    /// damaged or was written by a newer headway is refused with a typed error and left
    /// untouched. `durability` defaults to `PowerLoss`; `ProcessCrash` is faster.
    #[uniffi::constructor(default(durability))]
    pub fn new(path: String, durability: Option<Durability>) -> Result<Arc<Store>, HeadwayError> {
        guard(|| {
            let options = StoreOptions::new().durability(durability.unwrap_or_default().into());
            Ok(Store::wrap(headway::Store::open_with(path, options)?))
        })
    }

    /// Records one progress update; returns once it is durable. True when it raised the stored
    /// state, false when the update was stale (nothing changed). Refused input raises
    /// `InvalidInput` and records nothing.
    pub fn record(&self, update: ProgressUpdate) -> Result<bool, HeadwayError> {
        guard(|| {
            let update = headway::ProgressUpdate::try_from(update)?;
            Ok(self.store.record(update)?.is_some())
        })
    }

    /// The learner's content items, of one course or of all, ordered by course, batch and
    /// content.
    pub fn state(
        &self,
        user_id: String,
        course_id: Option<String>,
    ) -> Result<Vec<ContentItem>, HeadwayError> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let course_id = course_id.map(CourseId::new).transpose()?;
            let items = self.store.items(&user_id, course_id.as_ref())?;
            Ok(items.iter().map(ContentItem::from).collect())
        })
    }

    /// The items the next sync would send: those the server is not known to hold, leaving
    /// out states it rejected (until they change).
    pub fn pending(&self, user_id: String) -> Result<Vec<ContentItem>, HeadwayError> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            Ok(self
                .store
                .pending(&user_id)?
                .iter()
                .map(ContentItem::from)
                .collect())
        })
    }

    /// The learner's enrolled courses, offline: the last list the server gave with the
    /// device's completions merged in, never lower than what the server or the device knows.
    /// Empty until a `refresh_courses` reached the server once.
    pub fn courses(&self, user_id: String) -> Result<Vec<EnrolledCourse>, HeadwayError> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            Ok(self
                .store
                .courses(&user_id)?
                .iter()
                .map(EnrolledCourse::from)
                .collect())
        })
    }

    /// Records what a content player START or END event (telemetry v3 JSON) means in the
    /// course context. Returns the item after the change, or `None` when the event changed
    /// nothing (not a START/END of the player, a batch not ongoing, already completed, ...).
    /// A malformed event raises `InvalidInput` and records nothing.
    pub fn record_player_event(
        &self,
        event_json: String,
        context: CourseContext,
    ) -> Result<Option<ContentItem>, HeadwayError> {
        guard(|| {
            let context = headway_sunbird::CourseContext::try_from(context)?;
            match self
                .store
                .record_player_event(event_json.as_bytes(), &context)?
            {
                PlayerEventOutcome::Recorded(Some(change)) => {
                    Ok(Some(ContentItem::new(&change.key, &change.after)))
                }
                _ => Ok(None),
            }
        })
    }

    /// Calls `listener` for every change from now on, in commit order, on a headway thread.
    /// The listener lives as long as the store.
    pub fn subscribe(&self, listener: Box<dyn EventListener>) -> Result<(), HeadwayError> {
        guard(|| {
            let stop = Arc::new(AtomicBool::new(false));
            deliver(&self.store, listener, stop.clone())?;
            self.listeners
                .lock()
                .map_err(|_| HeadwayError::Internal {
                    message: "listener list poisoned".into(),
                })?
                .push(stop);
            Ok(())
        })
    }

    /// This device's id, which another device passes to `peer_export` as `since_peer` to get
    /// only what it lacks.
    pub fn device_id(&self) -> Result<String, HeadwayError> {
        guard(|| Ok(self.store.device_id()?))
    }

    /// A file for another device of the learner (a USB stick between a school server and a
    /// phone): only what it lacks if this device has met `since_peer` before, else everything.
    /// With `key` (a key file from `headway peer pair`, covering the learner) the file is
    /// sealed: only a device holding that key opens it.
    #[uniffi::method(default(key))]
    pub fn peer_export(
        &self,
        user_id: String,
        since_peer: Option<String>,
        key: Option<String>,
    ) -> Result<Vec<u8>, HeadwayError> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            Ok(match key {
                Some(path) => {
                    let key = headway::PairingKey::read(Path::new(&path))?;
                    self.store
                        .peer_export_sealed(&user_id, since_peer.as_deref(), &key)?
                }
                None => self.store.peer_export(&user_id, since_peer.as_deref())?,
            })
        })
    }

    /// Imports another device's file; returns how many content items it raised. A malformed
    /// or hostile file, or one for another learner, raises `RefusedPeerData` and changes
    /// nothing. A sealed file opens only with `key`, the key it was sealed with (which
    /// must cover the learner): without it, or with another key, or changed since it was
    /// sealed, it raises `NotPaired` and changes nothing. An unsealed file needs no key, and
    /// with one it raises `NotPaired` (it cannot be verified).
    #[uniffi::method(default(key))]
    pub fn peer_import(
        &self,
        user_id: String,
        data: Vec<u8>,
        key: Option<String>,
    ) -> Result<u32, HeadwayError> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let key = key
                .map(|path| headway::PairingKey::read(Path::new(&path)))
                .transpose()?;
            Ok(count(self.store.peer_import_counted(
                &user_id,
                &data,
                key.as_ref(),
            )?))
        })
    }

    /// Sends the learner's pending progress to the server in bulk (100 items per request).
    /// An item leaves the pending set only once the server holds it; a refused item is kept
    /// and reported in `rejected`. Raises `ServerUnavailable` when nothing reached the
    /// server, or `CredentialsRefused` when the server refused the user token; everything
    /// stays pending then.
    pub async fn sync(
        &self,
        user_id: String,
        server: SunbirdServer,
    ) -> Result<SyncReport, HeadwayError> {
        let store = self.store.clone();
        // The app's objects in `server` are freed here, on the caller's thread.
        let adapter = server.adapter();
        drop(server);
        if is_shut_down() {
            // The app could not be woken when the work ends: nothing is started.
            return Err(HeadwayError::ServerUnavailable {
                message: "headway was shut down: nothing is sent, every item stays pending".into(),
            });
        }
        on_runtime(async move {
            let user_id = UserId::new(user_id)?;
            let adapter = adapter?;
            let report = store
                .sync(&user_id, &adapter, &headway::SyncOptions::new())
                .await?;
            // Unreachable or refused credentials raise; a server that answered (every item
            // dropped included) is reported, as it always was.
            if let Some((kind, message)) = report.failure().and_then(|f| f.as_error()) {
                return Err(HeadwayError::of_kind(kind, message));
            }
            Ok(SyncReport::new(&report))
        })
        .await
    }

    /// The online refresh of enrolled courses: reads the server's list (which names whom the
    /// token belongs to), syncs, then reads the listed content states (how another device's
    /// progress arrives), caches the list and
    /// answers with local progress merged in. When the server cannot be reached, the cached
    /// list answers (as `courses` does) and a `SyncFailed` event says why. Raises
    /// `CredentialsRefused` when the server refused the user token or answered for another
    /// learner; nothing was changed then.
    pub async fn refresh_courses(
        &self,
        user_id: String,
        server: SunbirdServer,
    ) -> Result<Vec<EnrolledCourse>, HeadwayError> {
        let store = self.store.clone();
        // The app's objects in `server` are freed here, on the caller's thread.
        let adapter = server.adapter();
        drop(server);
        if is_shut_down() {
            // The app could not be woken when the work ends: the cached list answers, as
            // when the server cannot be reached.
            return self.courses(user_id);
        }
        on_runtime(async move {
            let user_id = UserId::new(user_id)?;
            let adapter = adapter?;
            let answer = store
                .refresh_courses(&user_id, &adapter, &headway::SyncOptions::new())
                .await?;
            Ok(answer.courses.iter().map(EnrolledCourse::from).collect())
        })
        .await
    }

    /// Starts syncing the learner's progress in the background: shortly after each record,
    /// backing off while the server fails. Replaces a background sync already running.
    pub fn start_background_sync(
        &self,
        user_id: String,
        server: SunbirdServer,
    ) -> Result<(), HeadwayError> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let adapter = Arc::new(server.adapter()?);
            let runtime = runtime()?;
            let _entered = runtime.enter();
            let started = BackgroundSync::start(
                self.store.clone(),
                adapter,
                vec![user_id],
                BackgroundOptions::new(),
            );
            // The one it replaces is dropped, which stops it.
            self.background_slot()?.replace(started);
            Ok(())
        })
    }

    /// The network came back: the background sync syncs at once, forgetting its back-off.
    pub fn network_up(&self) -> Result<(), HeadwayError> {
        guard(|| {
            if let Some(background) = self.background_slot()?.as_ref() {
                background.network_up();
            }
            Ok(())
        })
    }

    /// The app came back to the foreground: the background sync syncs at once.
    pub fn app_resumed(&self) -> Result<(), HeadwayError> {
        guard(|| {
            if let Some(background) = self.background_slot()?.as_ref() {
                background.app_resumed();
            }
            Ok(())
        })
    }

    /// Stops the background sync after the sync in flight, if any, finished.
    pub fn stop_background_sync(&self) -> Result<(), HeadwayError> {
        guard(|| {
            let Some(background) = self.background_slot()?.take() else {
                return Ok(());
            };
            if tokio::runtime::Handle::try_current().is_ok() {
                // Called from headway's own runtime (a token provider, say): it cannot wait
                // here; dropping it tells it to stop.
                drop(background);
            } else {
                runtime()?.block_on(background.stop());
            }
            Ok(())
        })
    }

    /// The items whose current state the server refused for good, with the reasons.
    pub fn rejected(&self, user_id: String) -> Result<Vec<RejectedItem>, HeadwayError> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            Ok(self
                .store
                .rejected(&user_id)?
                .iter()
                .map(|(item, reason)| RejectedItem {
                    item: item.into(),
                    reason: reason.to_string(),
                })
                .collect())
        })
    }

    /// Forgets the learner's rejections so the next sync sends those items again (after the
    /// batch reopened, say). Returns how many were forgotten.
    pub fn resend_rejected(&self, user_id: String) -> Result<u32, HeadwayError> {
        guard(|| Ok(count(self.store.resend_rejected(&UserId::new(user_id)?)?)))
    }
}

impl Store {
    fn background_slot(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, Option<BackgroundSync>>, HeadwayError> {
        self.background.lock().map_err(|_| HeadwayError::Internal {
            message: "background sync slot poisoned".into(),
        })
    }
}
