//! What one sync did, item by item: the [`SyncReport`] the engine returns and
//! [`Event::SyncFinished`](crate::Event::SyncFinished) carries.

use std::time::Duration;

use crate::adapter::RetryCause;
use crate::content_state::{ContentKey, ContentState};
use crate::rejection::RejectionReason;

/// An item the server refused for good, the state it refused, and why.
///
/// ```
/// use headway::{ContentKey, ContentState, RejectedItem, RejectionReason};
/// let rejected = RejectedItem {
///     key: ContentKey::new("u", "c", "b", "k")?,
///     state: ContentState::default(),
///     reason: RejectionReason::BatchUnknown { text: "BATCH_NOT_EXISTS".into() },
/// };
/// assert_eq!(rejected.reason, "BATCH_NOT_EXISTS");
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedItem {
    /// Which content item.
    pub key: ContentKey,
    /// The state that was sent and refused (the item may have risen on the device since).
    pub state: ContentState,
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

    /// True when items were sent and the server answered, but dropped every one of them
    /// without a reason ([`RejectionReason::DroppedByServer`]): what Sunbird does with every
    /// item of a token that belongs to another learner (sunbird-api.md §7.5), so a strong
    /// sign the token is not this learner's (issue 17). Items refused for their batch (closed
    /// or unknown) beside them do not change that: Sunbird refuses a batch before it looks at
    /// whose items they are. A partial drop beside an acknowledged item, an item refused for
    /// itself, or one retrying is not.
    ///
    /// ```
    /// use headway::{ContentKey, ContentState, RejectedItem, RejectionReason, SyncReport};
    /// let key = ContentKey::new("bob", "do_c", "b1", "do_1")?;
    /// let dropped = RejectionReason::DroppedByServer { text: "NOT_IN_RESULT".into() };
    /// let state = ContentState::default();
    /// let report = SyncReport {
    ///     sent: 1,
    ///     rejected: vec![RejectedItem { key, state, reason: dropped }],
    ///     ..SyncReport::default()
    /// };
    /// assert!(report.every_item_dropped());
    /// assert!(!SyncReport::default().every_item_dropped()); // nothing sent
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn every_item_dropped(&self) -> bool {
        // Sunbird refuses a closed or unknown batch before it looks at whose items they are,
        // so those refusals say nothing about the token: every other item must be dropped.
        let dropped =
            |r: &&RejectedItem| matches!(r.reason, RejectionReason::DroppedByServer { .. });
        let about_the_batch = |r: &&RejectedItem| {
            matches!(
                r.reason,
                RejectionReason::BatchNotOngoing { .. } | RejectionReason::BatchUnknown { .. }
            )
        };
        self.sent > 0
            && self.acknowledged == 0
            && self.retrying.is_empty()
            && self.rejected.len() == self.sent
            && self.rejected.iter().any(|r| dropped(&r))
            && self
                .rejected
                .iter()
                .all(|r| dropped(&r) || about_the_batch(&r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(content: &str, reason: RejectionReason) -> RejectedItem {
        RejectedItem {
            key: ContentKey::new("bob", "do_c", "b1", content).unwrap(),
            state: ContentState::default(),
            reason,
        }
    }

    // Issue 17, review: only a drop of every item sent hints at another learner's token; a
    // partial drop, or a drop beside another refusal, is an ordinary report.
    #[test]
    fn a_partial_drop_is_not_every_item_dropped() {
        let dropped = || RejectionReason::DroppedByServer {
            text: "NOT_IN_RESULT".into(),
        };
        let all = SyncReport {
            sent: 2,
            rejected: vec![rejected("do_1", dropped()), rejected("do_2", dropped())],
            ..SyncReport::default()
        };
        assert!(all.every_item_dropped());
        let one_acknowledged = SyncReport {
            sent: 2,
            acknowledged: 1,
            rejected: vec![rejected("do_1", dropped())],
            ..SyncReport::default()
        };
        assert!(!one_acknowledged.every_item_dropped());
        let one_refused = SyncReport {
            sent: 2,
            rejected: vec![
                rejected("do_1", dropped()),
                rejected(
                    "do_2",
                    RejectionReason::RefusedByServer {
                        text: "FAILED".into(),
                    },
                ),
            ],
            ..SyncReport::default()
        };
        assert!(!one_refused.every_item_dropped());
        // Issue 17, second review: a closed batch's refusal beside items dropped for a foreign
        // token hid the token (Sunbird checks batches before it groups items by user).
        let one_in_a_closed_batch = SyncReport {
            sent: 2,
            rejected: vec![
                rejected("do_1", dropped()),
                rejected(
                    "do_2",
                    RejectionReason::BatchNotOngoing {
                        text: "NOT_A_ON_GOING_BATCH".into(),
                    },
                ),
            ],
            ..SyncReport::default()
        };
        assert!(one_in_a_closed_batch.every_item_dropped());
    }
}
