//! What one sync did, item by item: the [`SyncReport`] the engine returns and
//! [`Event::SyncFinished`](crate::Event::SyncFinished) carries.

use std::time::Duration;

use crate::adapter::RetryCause;
use crate::content_state::ContentKey;
use crate::rejection::RejectionReason;

/// An item the server refused for good, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedItem {
    /// Which content item.
    pub key: ContentKey,
    /// Why, with the server's text (its `Display`).
    pub reason: RejectionReason,
}

/// An item that stays pending, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryingItem {
    /// Which content item.
    pub key: ContentKey,
    /// Why it was not acknowledged.
    pub cause: RetryCause,
}

/// What one sync did.
///
/// ```
/// let report = headway::SyncReport::default();
/// assert!(report.is_complete());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Distinct items sent.
    pub sent: usize,
    /// Items the server now holds (at the state sent or higher).
    pub acknowledged: usize,
    /// Items refused for good.
    pub rejected: Vec<RejectedItem>,
    /// Items that stay pending for a later sync.
    pub retrying: Vec<RetryingItem>,
    /// Requests made.
    pub requests: usize,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// How long the sync took.
    pub duration: Duration,
}

impl SyncReport {
    /// True when nothing stays pending for a retry.
    pub fn is_complete(&self) -> bool {
        self.retrying.is_empty()
    }

    /// True when items were sent and none reached the server: it was unreachable or kept
    /// failing.
    pub fn server_failed(&self) -> bool {
        self.sent > 0 && self.acknowledged == 0 && self.rejected.is_empty()
    }
}
