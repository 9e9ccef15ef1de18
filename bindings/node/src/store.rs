//! [`Store`]: a device's store of learners' progress, as JavaScript sees it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use headway::{BackgroundSync, CourseId, StoreOptions, UserId};
use headway_sunbird::{PlayerEventOutcome, RecordPlayerEvent};
use napi::bindgen_prelude::{Buffer, Function, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use crate::error::{guard, guard_async, Code, Failure};
use crate::events::{deliver, Listener};
use crate::packed::{pack_items, raised, unpack_updates, PackedItems, PackedUpdates};
use crate::server::Server;
use crate::types::{
    count, BackgroundSyncOptions, CourseContext, EnrolledCourse, OpenOptions, ProgressUpdate,
    RejectedItem, SyncReport,
};

/// What an open store holds; `close` drops it.
struct Open {
    store: Arc<headway::Store>,
    /// One stop flag per subscribed listener.
    listeners: Vec<Arc<AtomicBool>>,
    background: Option<BackgroundSync>,
}

impl Drop for Open {
    fn drop(&mut self) {
        for stop in &self.listeners {
            stop.store(true, Ordering::Release);
        }
        // Dropping a background sync tells its task to stop.
        self.background.take();
    }
}

/// A device's durable store of learners' course progress, in one SQLite file. Local calls
/// are synchronous (they are fast); `sync` and `refreshCourses` return Promises. Progress never
/// goes down: an update below what is stored changes nothing. Every failure is a
/// `HeadwayError` with a `code`.
///
/// ```js
/// const { Store, Status } = require("headway");
/// const store = Store.open("progress.db");
/// store.record({ userId: "learner-1", courseId: "do_course", batchId: "0130",
///                contentId: "do_video", status: Status.InProgress, progress: 60 }); // true
/// store.state("learner-1")[0].progress; // 60
/// store.close();
/// ```
#[napi]
pub struct Store {
    open: Mutex<Option<Open>>,
}

impl Store {
    fn wrap(store: headway::Store) -> Store {
        Store {
            open: Mutex::new(Some(Open {
                store: Arc::new(store),
                listeners: Vec::new(),
                background: None,
            })),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Open>> {
        // `Open` holds plain fields that no panic leaves half-written.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open store, or `STORE_UNAVAILABLE` after `close`.
    fn store(&self) -> Result<Arc<headway::Store>, Failure> {
        self.slot()
            .as_ref()
            .map(|open| open.store.clone())
            .ok_or_else(closed)
    }
}

fn closed() -> Failure {
    Failure::new(Code::StoreUnavailable, "the store was closed")
}

#[napi]
impl Store {
    /// Opens (or creates) the store file at `path`. A file that is not a headway store, is
    /// damaged or was written by a newer headway is refused with a typed error (`CORRUPT_STORE`,
    /// `STORE_UNAVAILABLE`) and left untouched. `options.durability` is `"powerLoss"` (the
    /// default) or `"processCrash"` (faster; a power loss may drop the last commits). Two
    /// stores (two worker threads, two processes) may open the same file.
    #[napi(factory)]
    pub fn open(path: String, options: Option<OpenOptions>) -> napi::Result<Store> {
        guard(|| {
            // SQLite reads "" as a temporary file and stops a path at a NUL.
            if path.is_empty() || path.contains('\0') {
                return Err(Failure::invalid(
                    "a store's path is a file path, not empty and without NUL",
                ));
            }
            let durability = options.unwrap_or_default().durability.unwrap_or_default();
            let options = StoreOptions::new().durability(durability.into());
            Ok(Store::wrap(headway::Store::open_with(path, options)?))
        })
    }

    /// A store that lives in memory only, for tests and examples.
    #[napi(factory)]
    pub fn open_in_memory() -> napi::Result<Store> {
        guard(|| Ok(Store::wrap(headway::Store::open_in_memory()?)))
    }

    /// Closes the store: listeners hear nothing more and the background sync stops. Closing
    /// twice does nothing; any other call afterwards throws `STORE_UNAVAILABLE`. A sync in
    /// flight keeps running and its Promise settles.
    #[napi]
    pub fn close(&self) -> napi::Result<()> {
        guard(|| {
            let open = self.slot().take();
            drop(open);
            Ok(())
        })
    }

    /// Records one progress update; returns once it is durable. True when it raised the stored
    /// state, false when the update was stale (nothing changed). Refused input throws
    /// `INVALID_INPUT` and records nothing.
    #[napi]
    pub fn record(&self, update: ProgressUpdate) -> napi::Result<bool> {
        guard(|| {
            let update = headway::ProgressUpdate::try_from(update)?;
            Ok(self.store()?.record(update)?.is_some())
        })
    }

    /// Records many updates in one transaction; returns how many raised the stored state. One
    /// refused update throws `INVALID_INPUT` naming its index and records none of them.
    #[napi(ts_args_type = "updates: Array<ProgressUpdate>")]
    pub fn record_batch(&self, updates: PackedUpdates) -> napi::Result<u32> {
        guard(|| {
            // `index.js` packed the array (see `packed.rs`).
            let updates = unpack_updates(&updates)?;
            Ok(raised(&self.store()?.record_batch(updates)?))
        })
    }

    /// The learner's content items, of one course or of all, ordered by course, batch and
    /// content.
    #[napi(ts_return_type = "Array<ContentItem>")]
    pub fn state(&self, user_id: String, course_id: Option<String>) -> napi::Result<PackedItems> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let course_id = course_id.map(CourseId::new).transpose()?;
            let items = self.store()?.items(&user_id, course_id.as_ref())?;
            // `index.js` unpacks it (see `packed.rs`).
            Ok(pack_items(&user_id, &items))
        })
    }

    /// The items the next sync would send: those the server is not known to hold, leaving out
    /// states it rejected (until they change).
    #[napi(ts_return_type = "Array<ContentItem>")]
    pub fn pending(&self, user_id: String) -> napi::Result<PackedItems> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let items = self.store()?.pending(&user_id)?;
            Ok(pack_items(&user_id, &items))
        })
    }

    /// The learner's enrolled courses, offline: the last list the server gave with the
    /// device's completions merged in, never lower than what the server or the device knows.
    /// Empty until a `refreshCourses` reached the server once.
    #[napi]
    pub fn courses(&self, user_id: String) -> napi::Result<Vec<EnrolledCourse>> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let courses = self.store()?.courses(&user_id)?;
            Ok(courses.iter().map(EnrolledCourse::from).collect())
        })
    }

    /// The items whose current state the server refused for good, with the reasons.
    #[napi]
    pub fn rejected(&self, user_id: String) -> napi::Result<Vec<RejectedItem>> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let rejected = self.store()?.rejected(&user_id)?;
            Ok(rejected
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
    #[napi]
    pub fn resend_rejected(&self, user_id: String) -> napi::Result<u32> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            Ok(count(self.store()?.resend_rejected(&user_id)?))
        })
    }

    /// This device's id, which another device passes to `peerExport` as `sincePeer` to get
    /// only what it lacks.
    #[napi]
    pub fn device_id(&self) -> napi::Result<String> {
        guard(|| Ok(self.store()?.device_id()?))
    }

    /// Records what a content player START or END event (telemetry v3, a JSON string or an
    /// object) means in the course context. True when it raised the stored state; false when
    /// the event changed nothing (not a START/END of the player, a batch not ongoing, already
    /// completed, ...). A malformed event throws `INVALID_INPUT` and records nothing.
    #[napi(ts_args_type = "event: string | object, context: CourseContext")]
    pub fn record_player_event(&self, event: String, context: CourseContext) -> napi::Result<bool> {
        guard(|| {
            let context = headway_sunbird::CourseContext::try_from(context)?;
            // `index.js` turns an object into its JSON text.
            let outcome = self
                .store()?
                .record_player_event(event.as_bytes(), &context)?;
            Ok(matches!(outcome, PlayerEventOutcome::Recorded(Some(_))))
        })
    }

    /// Calls `listener` with every change of this store from now on, in commit order, on the
    /// JavaScript thread, never re-entrantly (a change the listener itself makes arrives after
    /// it returns); a listener that falls more than 16,384 events behind gets a `Lagged` event
    /// saying how many it missed (re-read the store then). Returns the function that
    /// unsubscribes it. A subscribed listener does not keep the process alive.
    #[napi(
        ts_args_type = "listener: (event: Event) => void",
        ts_return_type = "() => void"
    )]
    pub fn subscribe<'env>(
        &self,
        env: &'env Env,
        listener: Listener,
    ) -> napi::Result<Function<'env, (), ()>> {
        let stop = guard(|| {
            let mut slot = self.slot();
            let open = slot.as_mut().ok_or_else(closed)?;
            let stop = Arc::new(AtomicBool::new(false));
            deliver(&open.store, listener, stop.clone())?;
            open.listeners.push(stop.clone());
            Ok(stop)
        })?;
        env.create_function_from_closure("unsubscribe", move |_| {
            stop.store(true, Ordering::Release);
            Ok(())
        })
    }

    /// A file (bytes) for another device of the learner: only what it lacks if this device has
    /// met `sincePeer` before, else everything. With `key` (the path of a key file from
    /// `headway peer pair`, covering the learner) the file is sealed: only a device holding
    /// that key opens it.
    #[napi]
    pub fn peer_export(
        &self,
        user_id: String,
        since_peer: Option<String>,
        key: Option<String>,
    ) -> napi::Result<Buffer> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let store = self.store()?;
            let bytes = match key {
                Some(path) => {
                    let key = headway::PairingKey::read(Path::new(&path))?;
                    store.peer_export_sealed(&user_id, since_peer.as_deref(), &key)?
                }
                None => store.peer_export(&user_id, since_peer.as_deref())?,
            };
            Ok(bytes.into())
        })
    }

    /// Imports another device's file; returns how many content items it raised. A malformed
    /// or hostile file, or one for another learner, throws `REFUSED_PEER_DATA` and changes
    /// nothing. A sealed file opens only with `key`, the path of the key file it was sealed
    /// with: without it, with another, or changed since it was sealed, it throws `NOT_PAIRED`
    /// and changes nothing.
    #[napi]
    pub fn peer_import(
        &self,
        user_id: String,
        data: Buffer,
        key: Option<String>,
    ) -> napi::Result<u32> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let store = self.store()?;
            let key = key
                .map(|path| headway::PairingKey::read(Path::new(&path)))
                .transpose()?;
            Ok(count(store.peer_import_counted(
                &user_id,
                &data,
                key.as_ref(),
            )?))
        })
    }

    /// Sends the learner's pending progress to the server in bulk (100 items per request).
    /// An item leaves the pending set only once the server holds it; a refused item is kept
    /// and reported in `rejected`. Rejects with `SERVER_UNAVAILABLE` when nothing reached the
    /// server, or `CREDENTIALS_REFUSED` when the server refused the user token; everything
    /// stays pending then.
    #[napi(ts_return_type = "Promise<SyncReport>")]
    pub fn sync<'env>(
        &self,
        env: &'env Env,
        user_id: String,
        server: Server,
    ) -> napi::Result<PromiseRaw<'env, SyncReport>> {
        // Taken now, on the caller's thread: a `close()` right after still lets this sync run.
        let store = guard(|| self.store())?;
        env.spawn_future(guard_async(async move {
            let user_id = UserId::new(user_id)?;
            let adapter = server.adapter()?;
            let report = store
                .sync(&user_id, &adapter, &headway::SyncOptions::new())
                .await?;
            // Unreachable or refused credentials reject; a server that answered is reported.
            if let Some((kind, message)) = report.failure().and_then(|f| f.as_error()) {
                return Err(Failure::of_kind(kind, message));
            }
            Ok(SyncReport::new(&report))
        }))
    }

    /// The online refresh of enrolled courses: reads the server's list (which names whom the
    /// token belongs to), syncs, then reads the listed content states (how another device's
    /// progress arrives), caches the list and answers with local progress merged in. When the
    /// server cannot be reached, the cached list answers (as `courses` does) and a
    /// `SyncFailed` event says why. Rejects with `CREDENTIALS_REFUSED` when the server refused
    /// the user token or answered for another learner; nothing was changed then.
    #[napi(ts_return_type = "Promise<Array<EnrolledCourse>>")]
    pub fn refresh_courses<'env>(
        &self,
        env: &'env Env,
        user_id: String,
        server: Server,
    ) -> napi::Result<PromiseRaw<'env, Vec<EnrolledCourse>>> {
        // Taken now, on the caller's thread: a `close()` right after still lets it run.
        let store = guard(|| self.store())?;
        env.spawn_future(guard_async(async move {
            let user_id = UserId::new(user_id)?;
            let adapter = server.adapter()?;
            let answer = store
                .refresh_courses(&user_id, &adapter, &headway::SyncOptions::new())
                .await?;
            Ok(answer.courses.iter().map(EnrolledCourse::from).collect())
        }))
    }

    /// Starts syncing the learner's progress in the background: shortly after each record,
    /// backing off while the server fails. Replaces a background sync already running. It does
    /// not keep the process alive.
    #[napi]
    pub fn start_background_sync(
        &self,
        user_id: String,
        server: Server,
        options: Option<BackgroundSyncOptions>,
    ) -> napi::Result<()> {
        guard(|| {
            let user_id = UserId::new(user_id)?;
            let options = headway::BackgroundOptions::try_from(options.unwrap_or_default())?;
            let adapter = Arc::new(server.adapter()?);
            let mut slot = self.slot();
            let open = slot.as_mut().ok_or_else(closed)?;
            let store = open.store.clone();
            let started = napi::bindgen_prelude::within_runtime_if_available(|| {
                BackgroundSync::start(store, adapter, vec![user_id], options)
            });
            // The one it replaces is dropped, which stops it.
            open.background = Some(started);
            Ok(())
        })
    }

    /// The network came back: the background sync syncs at once, forgetting its back-off.
    #[napi]
    pub fn network_up(&self) -> napi::Result<()> {
        guard(|| {
            let slot = self.slot();
            let open = slot.as_ref().ok_or_else(closed)?;
            if let Some(background) = &open.background {
                background.network_up();
            }
            Ok(())
        })
    }

    /// The app came back to the foreground: the background sync syncs at once.
    #[napi]
    pub fn app_resumed(&self) -> napi::Result<()> {
        guard(|| {
            let slot = self.slot();
            let open = slot.as_ref().ok_or_else(closed)?;
            if let Some(background) = &open.background {
                background.app_resumed();
            }
            Ok(())
        })
    }

    /// Stops the background sync; a sync it has in flight finishes on its own.
    #[napi]
    pub fn stop_background_sync(&self) -> napi::Result<()> {
        guard(|| {
            let mut slot = self.slot();
            let open = slot.as_mut().ok_or_else(closed)?;
            // Dropping it tells its task to stop; the JavaScript thread never waits.
            open.background.take();
            Ok(())
        })
    }
}
