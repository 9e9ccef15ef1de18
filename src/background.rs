//! The background sync task the app starts while it runs: it syncs pending progress shortly
//! after the learner records some, folds recorded progress into the Automerge documents, backs off exponentially (with jitter, bounded) while the
//! server fails, starts over at once when the app says the network is back or the app resumed,
//! and stops cleanly. It never waits for a new record to retry what is pending.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::adapter::Adapter;
use crate::events::{ChangeOrigin, ContentStateChanged, Event};
use crate::id::UserId;
use crate::store::Store;
use crate::sync::{Backoff, SyncOptions};

/// How the background sync behaves.
///
/// ```
/// use std::time::Duration;
/// let options = headway::BackgroundOptions::new()
///     .debounce(Duration::from_secs(1))       // after a record, the default
///     .interval(Duration::from_secs(300))     // idle check, the default
///     .backoff(Duration::from_secs(2), Duration::from_secs(300)) // the default
///     .seed(7);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct BackgroundOptions {
    debounce: Duration,
    interval: Duration,
    backoff_base: Duration,
    backoff_max: Duration,
    seed: Option<u64>,
    sync: SyncOptions,
}

impl Default for BackgroundOptions {
    fn default() -> BackgroundOptions {
        BackgroundOptions::new()
    }
}

impl BackgroundOptions {
    /// The defaults: sync 1 s after a local record, check every 5 minutes when idle, back off
    /// from 2 s up to 5 minutes, with jitter seeded from the store's device id (see
    /// [`BackgroundOptions::seed`]).
    pub fn new() -> BackgroundOptions {
        BackgroundOptions {
            debounce: Duration::from_secs(1),
            interval: Duration::from_secs(300),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            seed: None,
            sync: SyncOptions::new(),
        }
    }

    /// How long after a local record to sync (more records meanwhile ride along).
    pub fn debounce(mut self, delay: Duration) -> BackgroundOptions {
        self.debounce = delay;
        self
    }

    /// How often to look for pending progress when nothing happens.
    pub fn interval(mut self, interval: Duration) -> BackgroundOptions {
        self.interval = interval;
        self
    }

    /// The back-off after failed syncs: from `base`, doubling, never above `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> BackgroundOptions {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// The seed of the back-off's jitter, for reproducible schedules in tests. By default the
    /// seed comes from the store's device id (random per store), so after an outage the
    /// devices of a school do not all retry at the same instant.
    pub fn seed(mut self, seed: u64) -> BackgroundOptions {
        self.seed = Some(seed);
        self
    }

    /// The options of each sync.
    pub fn sync_options(mut self, options: SyncOptions) -> BackgroundOptions {
        self.sync = options;
        self
    }
}

enum Command {
    /// Sync now, forgetting the back-off (the network is back, the app resumed, or asked).
    SyncNow,
    Stop,
}

/// A running background sync for some learners. Dropping it stops the task too.
///
/// ```
/// # use async_trait::async_trait;
/// # use headway::*;
/// # struct Accepting;
/// # #[async_trait]
/// # impl Adapter for Accepting {
/// #     async fn push(&self, _: &UserId, items: &[Outgoing]) -> PushReport {
/// #         PushReport { requests: 1, ..PushReport::all(items, ItemOutcome::Acknowledged) }
/// #     }
/// #     async fn read_states(&self, _: &UserId, _: &CourseId, _: &BatchId) -> std::result::Result<Vec<ContentItem>, AdapterError> { Ok(vec![]) }
/// #     async fn enrolled_courses(&self, _: &UserId) -> std::result::Result<Vec<EnrolledCourse>, AdapterError> { Ok(vec![]) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> headway::Result<()> {
/// use std::{sync::Arc, time::Duration};
/// let store = Arc::new(Store::open_in_memory()?);
/// let background = BackgroundSync::start(
///     store.clone(),
///     Arc::new(Accepting),
///     vec![UserId::new("u")?],
///     BackgroundOptions::new().debounce(Duration::from_millis(10)),
/// );
/// store.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
/// for _ in 0..3_000 { // up to 30 s: a generous ceiling, a loaded machine is slow
///     if store.pending(&UserId::new("u")?)?.is_empty() { break; }
///     tokio::time::sleep(Duration::from_millis(10)).await;
/// }
/// assert!(store.pending(&UserId::new("u")?)?.is_empty());
/// background.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BackgroundSync {
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
}

impl BackgroundSync {
    /// Starts the task on the current tokio runtime.
    pub fn start(
        store: Arc<Store>,
        adapter: Arc<dyn Adapter>,
        users: Vec<UserId>,
        options: BackgroundOptions,
    ) -> BackgroundSync {
        let (commands, receiver) = mpsc::unbounded_channel();
        let seed = jitter_seed(&options, &store);
        let task = tokio::spawn(run(store, adapter, users, options, seed, receiver));
        BackgroundSync {
            commands,
            task: Some(task),
        }
    }

    /// The network came back: sync at once, forgetting the back-off.
    pub fn network_up(&self) {
        let _ = self.commands.send(Command::SyncNow);
    }

    /// The app came back to the foreground: sync at once.
    pub fn app_resumed(&self) {
        let _ = self.commands.send(Command::SyncNow);
    }

    /// Stops the task after the sync in flight (if any) finished, and waits for it.
    pub async fn stop(mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BackgroundSync {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
    }
}

/// When the background task syncs next: the task's decisions, apart from any IO. Time is
/// passed in (`now`), and the back-off's jitter comes from the seed it is given.
#[derive(Debug)]
struct Schedule {
    next_sync: Instant,
    backoff: Backoff,
    attempt: u64,
    seed: u64,
    debounce: Duration,
    interval: Duration,
}

impl Schedule {
    /// Something may be pending from before the app started: the first sync is due at once.
    /// `seed` is the jitter's ([`jitter_seed`]).
    fn new(options: &BackgroundOptions, seed: u64, now: Instant) -> Schedule {
        Schedule {
            next_sync: now,
            backoff: Backoff::new(options.backoff_base, options.backoff_max),
            attempt: 0,
            seed,
            debounce: options.debounce,
            interval: options.interval,
        }
    }

    /// The app asked to sync now (network up, app resumed): forget the back-off.
    fn sync_now(&mut self, now: Instant) {
        self.backoff.reset();
        self.next_sync = now;
    }

    /// The learner recorded progress: sync after the debounce. While backing off, the
    /// back-off's own timer retries and new records ride along.
    fn recorded(&mut self, now: Instant) {
        if self.backoff.failures() == 0 {
            self.next_sync = self.next_sync.min(now + self.debounce);
        }
    }

    fn is_due(&self, now: Instant) -> bool {
        self.next_sync <= now
    }

    /// A round of syncs ended at `now`: retry after the back-off if one failed, else look
    /// again after the interval.
    fn finished(&mut self, failed: bool, now: Instant) {
        self.attempt += 1;
        self.next_sync = if failed {
            self.backoff.record_failure();
            now + self.backoff.delay(self.seed.wrapping_add(self.attempt))
        } else {
            self.backoff.reset();
            now + self.interval
        };
    }
}

/// The back-off's jitter seed: the caller's ([`BackgroundOptions::seed`]), else one drawn from
/// the store's device id (random per store; issue 17: a seed of 0 for every device made every
/// phone retry at the same instant after an outage).
fn jitter_seed(options: &BackgroundOptions, store: &Store) -> u64 {
    options.seed.unwrap_or_else(|| store.jitter_seed())
}

/// What woke the task.
enum Wake {
    Command(Option<Command>),
    Event(Event),
    Due,
}

async fn run(
    store: Arc<Store>,
    adapter: Arc<dyn Adapter>,
    users: Vec<UserId>,
    options: BackgroundOptions,
    seed: u64,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let events = store.subscribe();
    let mut schedule = Schedule::new(&options, seed, Instant::now());
    loop {
        // Sleeps until a command, an event or the next sync: no polling.
        let wake = tokio::select! {
            command = commands.recv() => Wake::Command(command),
            event = events.next() => Wake::Event(event),
            () = tokio::time::sleep_until(schedule.next_sync) => Wake::Due,
        };
        match wake {
            Wake::Command(None | Some(Command::Stop)) => break,
            Wake::Command(Some(Command::SyncNow)) => schedule.sync_now(Instant::now()),
            Wake::Event(event) => {
                // Everything waiting is looked at now: a batch of records wakes the task once.
                if std::iter::once(event)
                    .chain(events.drain())
                    .any(|e| is_a_record(&e))
                {
                    schedule.recorded(Instant::now());
                }
            }
            Wake::Due => {}
        }
        if !schedule.is_due(Instant::now()) {
            continue;
        }
        let failed = sync_all(&store, adapter.as_ref(), &users, &options.sync).await;
        schedule.finished(failed, Instant::now());
    }
}

/// True for a local record, or a lag marker (the missed events may have held records).
fn is_a_record(event: &Event) -> bool {
    matches!(
        event,
        Event::ContentStateChanged(ContentStateChanged {
            origin: ChangeOrigin::Local,
            ..
        }) | Event::Lagged { .. }
    )
}

/// Syncs every learner with something a sync would send (pending items, and items the server
/// dropped without a reason, which the next sync sends again), then brings their documents up
/// to date (so `record` never pays for Automerge); the store's work runs off the executor.
/// Returns true if a sync failed or left items pending.
async fn sync_all(
    store: &Store,
    adapter: &dyn Adapter,
    users: &[UserId],
    options: &SyncOptions,
) -> bool {
    let mut failed = false;
    for user in users {
        let owner = user.clone();
        match store
            .off_executor(move |store| store.outgoing(&owner))
            .await
        {
            Ok(outgoing) if outgoing.is_empty() => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "background sync cannot read pending items");
                failed = true;
                continue;
            }
        }
        match store.sync(user, adapter, options).await {
            Ok(report) if report.is_complete() => {}
            Ok(_) => failed = true,
            Err(error) => {
                tracing::warn!(%error, "background sync failed");
                failed = true;
            }
        }
    }
    let owners = users.to_vec();
    let flushed = store
        .off_executor(move |store| {
            for user in &owners {
                if let Err(error) = store.flush(user) {
                    tracing::warn!(%error, "background flush failed");
                }
            }
            Ok(())
        })
        .await;
    if let Err(error) = flushed {
        tracing::warn!(%error, "background flush failed");
    }
    failed
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::{
        AdapterError, BatchId, ContentItem, ContentKey, CourseId, EnrolledCourse, ItemOutcome,
        Outgoing, ProgressUpdate, PushReport, RejectionReason, RetryCause, Status,
    };

    fn options() -> BackgroundOptions {
        BackgroundOptions::new()
            .debounce(Duration::from_secs(1))
            .interval(Duration::from_secs(300))
            .backoff(Duration::from_secs(2), Duration::from_secs(60))
            .seed(7)
    }

    #[test]
    fn the_schedule_syncs_at_once_then_after_records_and_backs_off_on_failure() {
        let start = Instant::now();
        let mut schedule = Schedule::new(&options(), 7, start);
        assert!(
            schedule.is_due(start),
            "pending work from before the app started"
        );
        schedule.finished(false, start);
        assert!(!schedule.is_due(start + Duration::from_secs(299)));
        assert!(schedule.is_due(start + Duration::from_secs(300)));
        schedule.recorded(start + Duration::from_secs(10));
        assert!(!schedule.is_due(start + Duration::from_millis(10_999)));
        assert!(schedule.is_due(start + Duration::from_secs(11)));
        // A failure backs off (2 s with jitter: between 1 and 2 s); a record meanwhile does
        // not bring the retry forward, and network-up does.
        let failed_at = start + Duration::from_secs(20);
        schedule.finished(true, failed_at);
        assert!(!schedule.is_due(failed_at + Duration::from_millis(999)));
        assert!(schedule.is_due(failed_at + Duration::from_secs(2)));
        schedule.recorded(failed_at);
        assert!(!schedule.is_due(failed_at + Duration::from_millis(999)));
        schedule.sync_now(failed_at);
        assert!(schedule.is_due(failed_at));
    }

    #[test]
    fn the_same_seed_gives_the_same_retry_times() {
        let start = Instant::now();
        let retries = |seed: u64| {
            let mut schedule = Schedule::new(&options(), seed, start);
            (0..5)
                .map(|_| {
                    schedule.finished(true, start);
                    schedule.next_sync - start
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(retries(3), retries(3));
    }

    /// The back-off delays a default schedule for `store` waits after each of 8 failures.
    fn default_retries(store: &Store, options: &BackgroundOptions) -> Vec<Duration> {
        let start = Instant::now();
        let mut schedule = Schedule::new(options, jitter_seed(options, store), start);
        (0..8)
            .map(|_| {
                schedule.finished(true, start);
                schedule.next_sync - start
            })
            .collect()
    }

    // Issue 17, fault 8: the seed defaulted to 0, so every device backed off in step.
    #[test]
    fn two_stores_default_schedules_retry_at_different_times() {
        let options =
            BackgroundOptions::new().backoff(Duration::from_secs(2), Duration::from_secs(300));
        let (phone, tablet) = (
            Store::open_in_memory().unwrap(),
            Store::open_in_memory().unwrap(),
        );
        assert_ne!(phone.device_id().unwrap(), tablet.device_id().unwrap());
        assert_ne!(
            default_retries(&phone, &options),
            default_retries(&tablet, &options)
        );
        // One store's own default is stable: the seed is its device's, not the moment's.
        assert_eq!(
            default_retries(&phone, &options),
            default_retries(&phone, &options)
        );
    }

    #[test]
    fn an_explicit_seed_wins_over_the_devices() {
        let options = BackgroundOptions::new().seed(3);
        let (phone, tablet) = (
            Store::open_in_memory().unwrap(),
            Store::open_in_memory().unwrap(),
        );
        assert_eq!(jitter_seed(&options, &phone), 3);
        assert_eq!(
            default_retries(&phone, &options),
            default_retries(&tablet, &options)
        );
    }

    // The task itself (not only its `Schedule`) on tokio's paused clock: every wait below is
    // virtual, so the instants are exact and the machine's load changes nothing.

    /// An in-process server that answers from its script, then fails every push until told
    /// otherwise, and notes when each
    /// push arrived (on tokio's clock) and how many items it carried.
    #[derive(Default)]
    struct Server {
        failing: AtomicBool,
        /// Outcomes for the next pushes, first first, before `failing` decides.
        script: Mutex<Vec<ItemOutcome>>,
        pushes: Mutex<Vec<(Instant, usize)>>,
    }

    impl Server {
        fn failing() -> Arc<Server> {
            let server = Server::default();
            server.failing.store(true, Ordering::SeqCst);
            Arc::new(server)
        }

        /// When each push arrived, counted from `start`, and how many items it carried.
        fn pushes_since(&self, start: Instant) -> Vec<(Duration, usize)> {
            let pushes = self.pushes.lock().unwrap();
            pushes.iter().map(|(at, n)| (*at - start, *n)).collect()
        }
    }

    #[async_trait]
    impl Adapter for Server {
        async fn push(&self, _user: &UserId, items: &[Outgoing]) -> PushReport {
            self.pushes
                .lock()
                .unwrap()
                .push((Instant::now(), items.len()));
            let mut script = self.script.lock().unwrap();
            let outcome = if !script.is_empty() {
                script.remove(0)
            } else if self.failing.load(Ordering::SeqCst) {
                ItemOutcome::Retry {
                    cause: RetryCause::Server { status: 503 },
                }
            } else {
                ItemOutcome::Acknowledged
            };
            PushReport {
                requests: 1,
                ..PushReport::all(items, outcome)
            }
        }
        async fn read_states(
            &self,
            _user: &UserId,
            _course: &CourseId,
            _batch: &BatchId,
        ) -> std::result::Result<Vec<ContentItem>, AdapterError> {
            Ok(Vec::new())
        }
        async fn enrolled_courses(
            &self,
            _user: &UserId,
        ) -> std::result::Result<Vec<EnrolledCourse>, AdapterError> {
            Ok(Vec::new())
        }
    }

    fn learner() -> UserId {
        UserId::new("learner-1").unwrap()
    }

    fn complete(store: &Store, content: &str) {
        let key = ContentKey::new("learner-1", "do_course", "0130", content).unwrap();
        store
            .record(ProgressUpdate::new(key, Status::Completed, 100).unwrap())
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_server_is_retried_after_each_backoff_without_a_new_record() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        complete(&store, "do_1");
        let server = Server::failing();
        let start = Instant::now();
        let background =
            BackgroundSync::start(store.clone(), server.clone(), vec![learner()], options());
        tokio::time::sleep(Duration::from_secs(200)).await;
        background.stop().await;
        let pushes = server.pushes_since(start);
        assert_eq!(pushes[0].0, Duration::ZERO, "pending from before the start");
        // The n-th wait is drawn from [c/2, c] with c = min(60 s, 2 s * 2^(n-1)): 2, 4, 8,
        // 16, 32, 60, 60... seconds, never one per debounce (1 s).
        for (n, pair) in (1u32..).zip(pushes.windows(2)) {
            let ceiling = Duration::from_secs(2 << (n - 1).min(5)).min(Duration::from_secs(60));
            let waited = pair[1].0 - pair[0].0;
            assert!(
                waited >= ceiling / 2 && waited <= ceiling,
                "wait {n}: {waited:?}, not within [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        // 200 s hold at least 0 + 2 + 4 + 8 + 16 + 32 + 60 + 60 = 182 s of waits.
        assert!(pushes.len() >= 8, "{pushes:?}");
        assert_eq!(store.pending(&learner()).unwrap().len(), 1);
    }

    // Issue 18: a dropped item is a retry state of its row, not a pending one; the task must
    // still send it again (it looked only at `pending()`, so a learner whose only item was
    // dropped was never synced again until something new was recorded).
    #[tokio::test(start_paused = true)]
    async fn an_item_the_server_dropped_is_retried_by_the_task_until_the_server_takes_it() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        complete(&store, "do_1");
        let dropped = ItemOutcome::Rejected {
            reason: RejectionReason::DroppedByServer {
                text: "left out of the answer".into(),
            },
        };
        let unreachable = ItemOutcome::Retry {
            cause: RetryCause::Network {
                detail: "cannot connect".into(),
            },
        };
        let server = Arc::new(Server {
            script: Mutex::new(vec![dropped, unreachable]),
            ..Server::default()
        });
        let background =
            BackgroundSync::start(store.clone(), server.clone(), vec![learner()], options());
        // The drop ends that sync; the next look (the 300 s interval) sends it again, the
        // server is unreachable, and the back-off's retry (2 s) gets it through.
        tokio::time::sleep(Duration::from_secs(400)).await;
        background.stop().await;
        assert_eq!(
            server.pushes.lock().unwrap().len(),
            3,
            "dropped, unreachable, taken"
        );
        assert!(store.pending(&learner()).unwrap().is_empty());
        assert!(store.rejected(&learner()).unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_retries_at_the_same_instants() {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let store = Arc::new(Store::open_in_memory().unwrap());
            complete(&store, "do_1");
            let server = Server::failing();
            let start = Instant::now();
            let background =
                BackgroundSync::start(store.clone(), server.clone(), vec![learner()], options());
            tokio::time::sleep(Duration::from_secs(100)).await;
            background.stop().await;
            runs.push(server.pushes_since(start));
        }
        assert_eq!(runs[0], runs[1]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_network_coming_back_syncs_at_once_instead_of_waiting_out_the_backoff() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        complete(&store, "do_1");
        let server = Server::failing();
        let hours = options().backoff(Duration::from_secs(3_600), Duration::from_secs(7_200));
        let start = Instant::now();
        let background =
            BackgroundSync::start(store.clone(), server.clone(), vec![learner()], hours);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(server.pushes_since(start).len(), 1, "backing off");
        server.failing.store(false, Ordering::SeqCst);
        let back = Instant::now();
        background.network_up();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pushes = server.pushes_since(back);
        assert_eq!(pushes.len(), 2, "{pushes:?}");
        assert_eq!(
            pushes[1].0,
            Duration::ZERO,
            "at once, not after the back-off"
        );
        assert!(store.pending(&learner()).unwrap().is_empty());
        background.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_is_synced_one_debounce_later_with_the_records_made_meanwhile() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let server = Arc::new(Server::default());
        let start = Instant::now();
        let background =
            BackgroundSync::start(store.clone(), server.clone(), vec![learner()], options());
        tokio::time::sleep(Duration::from_secs(10)).await;
        complete(&store, "do_1");
        tokio::time::sleep(Duration::from_millis(500)).await;
        complete(&store, "do_2");
        tokio::time::sleep(Duration::from_millis(499)).await;
        assert!(server.pushes_since(start).is_empty(), "within the debounce");
        tokio::time::sleep(Duration::from_secs(60)).await;
        // Nothing was pending at the start (no push); the first record's debounce (1 s)
        // carries both records.
        assert_eq!(server.pushes_since(start), [(Duration::from_secs(11), 2)]);
        assert!(store.pending(&learner()).unwrap().is_empty());
        background.stop().await;
    }
}
