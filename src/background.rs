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
use crate::events::{ChangeOrigin, Event};
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
    seed: u64,
    sync: SyncOptions,
}

impl Default for BackgroundOptions {
    fn default() -> BackgroundOptions {
        BackgroundOptions::new()
    }
}

impl BackgroundOptions {
    /// The defaults: sync 1 s after a local record, check every 5 minutes when idle, back off
    /// from 2 s up to 5 minutes.
    pub fn new() -> BackgroundOptions {
        BackgroundOptions {
            debounce: Duration::from_secs(1),
            interval: Duration::from_secs(300),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            seed: 0,
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

    /// The seed of the back-off's jitter.
    pub fn seed(mut self, seed: u64) -> BackgroundOptions {
        self.seed = seed;
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
/// #     async fn push(&self, _: &str, items: &[Outgoing]) -> PushReport {
/// #         PushReport { requests: 1, ..PushReport::all(items.len(), ItemOutcome::Acknowledged) }
/// #     }
/// #     async fn read_states(&self, _: &str, _: &str, _: &str) -> std::result::Result<Vec<ContentItem>, AdapterError> { Ok(vec![]) }
/// #     async fn enrolled_courses(&self, _: &str) -> std::result::Result<Vec<EnrolledCourse>, AdapterError> { Ok(vec![]) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> headway::Result<()> {
/// use std::{sync::Arc, time::Duration};
/// let store = Arc::new(Store::open_in_memory()?);
/// let background = BackgroundSync::start(
///     store.clone(),
///     Arc::new(Accepting),
///     vec!["u".to_string()],
///     BackgroundOptions::new().debounce(Duration::from_millis(10)),
/// );
/// store.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
/// for _ in 0..200 {
///     if store.pending("u")?.is_empty() { break; }
///     tokio::time::sleep(Duration::from_millis(10)).await;
/// }
/// assert!(store.pending("u")?.is_empty());
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
        users: Vec<String>,
        options: BackgroundOptions,
    ) -> BackgroundSync {
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(store, adapter, users, options, receiver));
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

async fn run(
    store: Arc<Store>,
    adapter: Arc<dyn Adapter>,
    users: Vec<String>,
    options: BackgroundOptions,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let events = store.subscribe();
    let mut backoff = Backoff::new(options.backoff_base, options.backoff_max);
    // How often to look at the learner's new records.
    let tick = options
        .debounce
        .min(options.interval)
        .max(Duration::from_millis(20));
    // Something may be pending from before the app started: sync at once.
    let mut next_sync = Instant::now();
    let mut attempt: u64 = 0;
    loop {
        let wake = next_sync.min(Instant::now() + tick);
        let command = tokio::select! {
            command = commands.recv() => Some(command),
            () = tokio::time::sleep_until(wake) => None,
        };
        match command {
            Some(None | Some(Command::Stop)) => break,
            Some(Some(Command::SyncNow)) => {
                backoff.reset();
                next_sync = Instant::now();
            }
            None => {}
        }
        let recorded = events.drain().iter().any(|event| {
            matches!(event, Event::ContentStateChanged(c) if c.origin == ChangeOrigin::Local)
        });
        // While backing off, the back-off's own timer retries: new records ride along.
        if recorded && backoff.failures() == 0 {
            next_sync = next_sync.min(Instant::now() + options.debounce);
        }
        if next_sync > Instant::now() {
            continue;
        }
        let mut failed = false;
        for user in &users {
            match store.pending(user) {
                Ok(pending) if pending.is_empty() => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "background sync cannot read pending items");
                    failed = true;
                    continue;
                }
            }
            match store.sync(user, adapter.as_ref(), &options.sync).await {
                Ok(report) if report.is_complete() => {}
                Ok(_) => failed = true,
                Err(error) => {
                    tracing::warn!(%error, "background sync failed");
                    failed = true;
                }
            }
        }
        // Bring the documents up to date while idle, so `record` never pays for Automerge.
        for user in &users {
            if let Err(error) = store.flush(user) {
                tracing::warn!(%error, "background flush failed");
            }
        }
        attempt += 1;
        next_sync = if failed {
            backoff.record_failure();
            Instant::now() + backoff.delay(options.seed.wrapping_add(attempt))
        } else {
            backoff.reset();
            Instant::now() + options.interval
        };
    }
}
