//! What headway tells the app: every content state that changed, and where the change came
//! from.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use crate::content_state::{ContentKey, ContentState};

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
    pub user: String,
    /// The course.
    pub course: String,
    /// The batch.
    pub batch: String,
    /// The completion percentage before.
    pub before: u32,
    /// The completion percentage now.
    pub after: u32,
}

/// A sync could not reach the server, or the server kept failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncFailed {
    /// The learner.
    pub user: String,
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
}

/// The receiving end of [`Store::subscribe`](crate::Store::subscribe). Events arrive in the
/// order their changes were committed; none is dropped while the subscription lives.
#[derive(Debug)]
pub struct Subscription {
    receiver: Receiver<Event>,
}

impl Subscription {
    /// The next event if one is waiting.
    pub fn try_next(&self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }

    /// The next event, waiting at most `timeout`.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Event> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// Every event waiting now.
    pub fn drain(&self) -> Vec<Event> {
        std::iter::from_fn(|| self.try_next()).collect()
    }
}

/// Fans events out to every live subscription.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    senders: Mutex<Vec<Sender<Event>>>,
}

impl EventHub {
    pub(crate) fn subscribe(&self) -> Subscription {
        let (sender, receiver) = mpsc::channel();
        if let Ok(mut senders) = self.senders.lock() {
            senders.push(sender);
        }
        Subscription { receiver }
    }

    /// Sends each event to every subscriber, forgetting subscribers that went away.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = Event>) {
        let events: Vec<Event> = events.into_iter().collect();
        if events.is_empty() {
            return;
        }
        let Ok(mut senders) = self.senders.lock() else {
            return;
        };
        for event in events {
            senders.retain(|sender| sender.send(event.clone()).is_ok());
        }
    }
}
