//! What headway tells the app: every content state that changed, and where the change came
//! from.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::content_state::{ContentKey, ContentState};
use crate::id::{BatchId, CourseId, UserId};

/// Where a change came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeOrigin {
    /// The app recorded progress on this device.
    Local,
    /// The server reported a higher state (another device's progress, or its own merge).
    Server,
    /// Another device's document was merged in.
    Peer,
}

/// A content state went up. `before` is `None` when headway had never seen the content.
///
/// ```
/// use headway::{ContentKey, ProgressUpdate, Status, Store, Event};
/// let store = Store::open_in_memory()?;
/// let events = store.subscribe();
/// let key = ContentKey::new("u", "c", "b", "k")?;
/// store.record(ProgressUpdate::new(key, Status::InProgress, 30)?)?;
/// match events.try_next() {
///     Some(Event::ContentStateChanged(change)) => {
///         assert_eq!(change.before, None);
///         assert_eq!(change.after.progress().get(), 30);
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentStateChanged {
    /// Which content item.
    pub key: ContentKey,
    /// The state before, if any.
    pub before: Option<ContentState>,
    /// The state now; it covers `before`.
    pub after: ContentState,
    /// Where the change came from.
    pub origin: ChangeOrigin,
}

/// A course's completion percentage moved, in the merged view of [`Store::courses`](crate::Store::courses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CourseProgressChanged {
    /// The learner.
    pub user: UserId,
    /// The course.
    pub course: CourseId,
    /// The batch.
    pub batch: BatchId,
    /// The completion percentage before.
    pub before: u32,
    /// The completion percentage now.
    pub after: u32,
}

/// A sync could not reach the server, or the server kept failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncFailed {
    /// The learner.
    pub user: UserId,
    /// Why, for the first item that stays pending.
    pub cause: String,
    /// How many items stay pending.
    pub pending: usize,
}

/// Something the app may want to react to; each kind says what changed (instead of one
/// "course status updated" broadcast).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A content state went up (a local record, a server answer or another device).
    ContentStateChanged(ContentStateChanged),
    /// A cached course's completion percentage moved.
    CourseProgressChanged(CourseProgressChanged),
    /// A sync reached the server; the report says what became of each item.
    SyncFinished(crate::sync_report::SyncReport),
    /// A sync could not reach the server; everything pending stays pending.
    SyncFailed(SyncFailed),
    /// This subscription fell behind: its queue was full, so the `missed` oldest events were
    /// dropped to make room. The events after this marker are the newest, in commit order;
    /// an app that needs the whole picture re-reads the store.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

/// How many events a subscription holds before the oldest make way for new ones (see
/// [`Event::Lagged`]): at most some megabytes for a subscriber that never reads.
pub const SUBSCRIPTION_CAPACITY: usize = 16_384;

/// The receiving end of [`Store::subscribe`](crate::Store::subscribe). Events arrive in the
/// order their changes were committed. The queue is bounded ([`SUBSCRIPTION_CAPACITY`]): a
/// subscriber that falls behind loses the oldest events and then reads one
/// [`Event::Lagged`] saying how many, before the newest; memory never grows without bound.
///
/// ```
/// use headway::{ContentKey, Event, ProgressUpdate, Status, Store};
/// let store = Store::open_in_memory()?;
/// let events = store.subscribe_with_capacity(2);
/// for progress in [10, 20, 30] {
///     store.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::InProgress, progress)?)?;
/// }
/// assert_eq!(events.try_next(), Some(Event::Lagged { missed: 1 }));
/// assert_eq!(events.drain().len(), 2); // the two newest
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Debug)]
pub struct Subscription {
    queue: Arc<Queue>,
}

impl Subscription {
    /// The next event if one is waiting.
    pub fn try_next(&self) -> Option<Event> {
        self.queue.waiting().ok()?.pop()
    }

    /// The next event, waiting at most `timeout`.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut waiting = self.queue.waiting().ok()?;
        loop {
            if let Some(event) = waiting.pop() {
                return Some(event);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            waiting = self.queue.arrived.wait_timeout(waiting, left).ok()?.0;
        }
    }

    /// The next event, waiting for it without blocking a thread (for async code).
    pub async fn next(&self) -> Event {
        loop {
            if let Some(event) = self.try_next() {
                return event;
            }
            // A publish between `try_next` and here leaves a permit: this returns at once.
            self.queue.notify.notified().await;
        }
    }

    /// Every event waiting now.
    pub fn drain(&self) -> Vec<Event> {
        std::iter::from_fn(|| self.try_next()).collect()
    }
}

/// One subscription's bounded queue.
#[derive(Debug)]
struct Queue {
    waiting: Mutex<Waiting>,
    /// Wakes `next_timeout`.
    arrived: Condvar,
    /// Wakes `next`.
    notify: tokio::sync::Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Waiting {
    events: VecDeque<Event>,
    missed: u64,
}

impl Waiting {
    /// The lag marker first, if events were dropped, then the oldest event kept.
    fn pop(&mut self) -> Option<Event> {
        if self.missed > 0 {
            let missed = std::mem::take(&mut self.missed);
            return Some(Event::Lagged { missed });
        }
        self.events.pop_front()
    }
}

impl Queue {
    fn waiting(&self) -> Result<MutexGuard<'_, Waiting>, ()> {
        self.waiting.lock().map_err(|_| ())
    }

    fn push(&self, events: &[Event]) {
        let Ok(mut waiting) = self.waiting() else {
            return;
        };
        for event in events {
            if waiting.events.len() >= self.capacity {
                waiting.events.pop_front();
                waiting.missed += 1;
            }
            waiting.events.push_back(event.clone());
        }
        drop(waiting);
        self.arrived.notify_all();
        self.notify.notify_one();
    }
}

/// Fans events out to every live subscription.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    queues: Mutex<Vec<Weak<Queue>>>,
}

impl EventHub {
    pub(crate) fn subscribe(&self, capacity: usize) -> Subscription {
        let queue = Arc::new(Queue {
            waiting: Mutex::new(Waiting::default()),
            arrived: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            capacity: capacity.max(1),
        });
        if let Ok(mut queues) = self.queues.lock() {
            queues.push(Arc::downgrade(&queue));
        }
        Subscription { queue }
    }

    /// Queues the events on every live subscription, forgetting those that went away.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = Event>) {
        let events: Vec<Event> = events.into_iter().collect();
        if events.is_empty() {
            return;
        }
        let Ok(mut queues) = self.queues.lock() else {
            return;
        };
        queues.retain(|queue| match queue.upgrade() {
            Some(queue) => {
                queue.push(&events);
                true
            }
            None => false,
        });
    }
}
