//! What one sync did, item by item: the [`SyncReport`] the engine returns and
//! [`Event::SyncFinished`](crate::Event::SyncFinished) carries.

use std::fmt;
use std::time::Duration;

use crate::adapter::RetryCause;
use crate::content_state::{ContentKey, ContentState};
use crate::error::ErrorKind;
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

    /// Why this sync failed, or `None` when it did not: nothing reached the server (the
    /// credentials refused, named before any other cause, or the server unavailable), or the
    /// server dropped every item (as for another learner's token). Every caller that tells
    /// of a failed sync asks here.
    ///
    /// ```
    /// use headway::{ContentKey, RetryCause, RetryingItem, SyncFailure, SyncReport};
    /// let key = ContentKey::new("u", "c", "b", "k")?;
    /// let report = SyncReport {
    ///     sent: 1,
    ///     retrying: vec![RetryingItem { key, cause: RetryCause::Timeout }],
    ///     ..SyncReport::default()
    /// };
    /// let failure = SyncFailure::Unavailable { cause: "timed out".into(), pending: 1 };
    /// assert_eq!(report.failure(), Some(failure));
    /// assert_eq!(SyncReport::default().failure(), None);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn failure(&self) -> Option<SyncFailure> {
        if self.server_failed() {
            let pending = self.retrying.len();
            let refused = self.retrying.iter().find_map(|r| match r.cause {
                RetryCause::CredentialsRefused { status } => Some(status),
                _ => None,
            });
            if let Some(status) = refused {
                return Some(SyncFailure::CredentialsRefused { status, pending });
            }
            let cause = self
                .retrying
                .first()
                .map_or_else(|| "no answer".to_string(), |r| r.cause.to_string());
            return Some(SyncFailure::Unavailable { cause, pending });
        }
        self.every_item_dropped()
            .then_some(SyncFailure::EveryItemDropped { sent: self.sent })
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

/// Why a sync failed, as [`SyncReport::failure`] explains it: the one place that decides, for
/// the event, the last-sync record, the refresh, the CLI and the bindings. Deliberately not
/// `#[non_exhaustive]`: a new way to fail makes every caller decide what it means.
///
/// ```
/// use headway::SyncFailure;
/// let failure = SyncFailure::Unavailable { cause: "timed out".into(), pending: 3 };
/// assert_eq!(failure.to_string(), "server unavailable: timed out");
/// assert_eq!(failure.cause(), "timed out");
/// assert!(failure.left_everything_pending());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncFailure {
    /// Nothing reached the server, and it refused the learner's credentials (even after a
    /// refresh): the token, not the network, is the problem (issue 17).
    CredentialsRefused {
        /// The HTTP status, 401 or 403.
        status: u16,
        /// Items that stay pending.
        pending: usize,
    },
    /// Nothing reached the server: it could not be reached, or kept failing.
    Unavailable {
        /// Why, for the first item that stays pending (`no answer` if none says).
        cause: String,
        /// Items that stay pending.
        pending: usize,
    },
    /// The server answered but dropped every item sent without a reason: what Sunbird does
    /// with another learner's token (see [`SyncReport::every_item_dropped`]).
    EveryItemDropped {
        /// Items sent.
        sent: usize,
    },
}

impl SyncFailure {
    /// Why, without the kind's prefix: `credentials refused (401)`, the cause of an
    /// unavailable server (`timed out`, `server error 503`, ...), or
    /// `every item dropped by the server (as for another learner's token)`.
    ///
    /// ```
    /// let failure = headway::SyncFailure::CredentialsRefused { status: 401, pending: 1 };
    /// assert_eq!(failure.cause(), "credentials refused (401)");
    /// ```
    pub fn cause(&self) -> String {
        match self {
            SyncFailure::CredentialsRefused { status, .. } => {
                RetryCause::CredentialsRefused { status: *status }.to_string()
            }
            SyncFailure::Unavailable { cause, .. } => cause.clone(),
            SyncFailure::EveryItemDropped { .. } => {
                "every item dropped by the server (as for another learner's token)".to_string()
            }
        }
    }

    /// True when every item sent stays pending (the server was unavailable or refused the
    /// credentials); false when the server answered by dropping them.
    ///
    /// ```
    /// let dropped = headway::SyncFailure::EveryItemDropped { sent: 2 };
    /// assert!(!dropped.left_everything_pending());
    /// ```
    pub fn left_everything_pending(&self) -> bool {
        !matches!(self, SyncFailure::EveryItemDropped { .. })
    }

    /// The error an app is shown instead of the report, with its message, when the failure
    /// left everything pending; `None` when the server answered by dropping every item (the
    /// report says so). Every binding raises this one.
    ///
    /// ```
    /// use headway::{ErrorKind, SyncFailure};
    /// let failure = SyncFailure::CredentialsRefused { status: 401, pending: 2 };
    /// let (kind, message) = failure.as_error().unwrap();
    /// assert_eq!(kind, ErrorKind::CredentialsRefused);
    /// assert_eq!(message, "credentials refused (401); 2 item(s) stay pending");
    /// assert_eq!(SyncFailure::EveryItemDropped { sent: 2 }.as_error(), None);
    /// ```
    pub fn as_error(&self) -> Option<(ErrorKind, String)> {
        let (kind, pending) = match self {
            SyncFailure::CredentialsRefused { pending, .. } => {
                (ErrorKind::CredentialsRefused, pending)
            }
            SyncFailure::Unavailable { pending, .. } => (ErrorKind::ServerUnavailable, pending),
            SyncFailure::EveryItemDropped { .. } => return None,
        };
        Some((
            kind,
            format!("{}; {pending} item(s) stay pending", self.cause()),
        ))
    }
}

/// `credentials refused (<status>)`, `server unavailable: <cause>`, or
/// `every item dropped by the server (as for another learner's token)`.
impl fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncFailure::Unavailable { cause, .. } => write!(f, "server unavailable: {cause}"),
            other => f.write_str(&other.cause()),
        }
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

    fn retrying(content: &str, cause: RetryCause) -> RetryingItem {
        RetryingItem {
            key: ContentKey::new("bob", "do_c", "b1", content).unwrap(),
            cause,
        }
    }

    // Issue 18: one function explains a failed sync; the texts are the ones the last-sync
    // record, the CLI and the bindings showed before.
    #[test]
    fn a_failed_sync_names_refused_credentials_before_any_other_cause() {
        let report = SyncReport {
            sent: 2,
            retrying: vec![
                retrying("do_1", RetryCause::Timeout),
                retrying("do_2", RetryCause::CredentialsRefused { status: 403 }),
            ],
            ..SyncReport::default()
        };
        let failure = report.failure().unwrap();
        assert_eq!(
            failure,
            SyncFailure::CredentialsRefused {
                status: 403,
                pending: 2
            }
        );
        assert_eq!(failure.to_string(), "credentials refused (403)");
        let unavailable = SyncReport {
            sent: 1,
            retrying: vec![retrying("do_1", RetryCause::Server { status: 503 })],
            ..SyncReport::default()
        };
        let failure = unavailable.failure().unwrap();
        assert_eq!(failure.to_string(), "server unavailable: server error 503");
        assert_eq!(failure.cause(), "server error 503");
        assert!(failure.left_everything_pending());
        let dropped = SyncReport {
            sent: 1,
            rejected: vec![rejected(
                "do_1",
                RejectionReason::DroppedByServer {
                    text: "NOT_IN_RESULT".into(),
                },
            )],
            ..SyncReport::default()
        };
        let failure = dropped.failure().unwrap();
        assert_eq!(failure, SyncFailure::EveryItemDropped { sent: 1 });
        assert!(!failure.left_everything_pending());
        let partial = SyncReport {
            sent: 2,
            acknowledged: 1,
            retrying: vec![retrying("do_2", RetryCause::Timeout)],
            ..SyncReport::default()
        };
        assert_eq!(partial.failure(), None, "something reached the server");
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
