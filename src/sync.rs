//! The sync engine: hands a learner's pending states to an [`Adapter`] in bulk, stores what
//! the server acknowledged, and reports every item's fate in a [`SyncReport`]. It does no IO of
//! its own: the adapter talks to the server.

mod backoff;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::adapter::{Adapter, ItemOutcome, Outgoing, RetryCause};
use crate::content_state::ContentKey;
use crate::error::Result;
use crate::events::{Event, SyncFailed};
use crate::store::Store;

pub use backoff::Backoff;

/// How a sync behaves.
///
/// ```
/// use std::time::Duration;
/// let options = headway::SyncOptions::new()
///     .max_rounds(2)                          // the default
///     .deadline(Duration::from_secs(30));     // default: none (the adapter bounds itself)
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct SyncOptions {
    max_rounds: usize,
    deadline: Option<Duration>,
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions::new()
    }
}

impl SyncOptions {
    /// The defaults: up to 2 rounds.
    pub fn new() -> SyncOptions {
        SyncOptions {
            max_rounds: 2,
            deadline: None,
        }
    }

    /// One deadline for the whole sync: a push still running when it passes is abandoned,
    /// its items stay pending (cause: timed out), and no further round starts. Default none,
    /// because adapters bound their own requests (`SunbirdConfig::deadline` defaults to 30 s).
    /// Needs a tokio runtime with timers enabled.
    pub fn deadline(mut self, deadline: Duration) -> SyncOptions {
        self.deadline = Some(deadline);
        self
    }

    /// How many pushes one sync may make: the first sends everything pending; later ones
    /// resend only items the server took but holds lower than sent (Sunbird's first write
    /// with status 1 stores progress 0). Default 2; at least 1.
    pub fn max_rounds(mut self, rounds: usize) -> SyncOptions {
        self.max_rounds = rounds.max(1);
        self
    }
}

/// An item the server refused for good, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedItem {
    /// Which content item.
    pub key: ContentKey,
    /// The server's reason.
    pub reason: String,
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

impl Store {
    /// Syncs a learner's pending states through `adapter`: one bulk push, then (if the server
    /// held some items lower than sent) a second push of those. A state leaves the pending set
    /// only when the server acknowledged it or a higher one; a state recorded while the push
    /// was in flight stays pending for the next sync; a rejected state is kept, reported and
    /// not resent until it changes.
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
    /// # fn main() -> headway::Result<()> {
    /// let store = Store::open_in_memory()?;
    /// store.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let report = runtime.block_on(store.sync("u", &Accepting, &SyncOptions::new()))?;
    /// assert_eq!((report.sent, report.acknowledged, report.requests), (1, 1, 1));
    /// assert!(store.pending("u")?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn sync(
        &self,
        user: &str,
        adapter: &dyn Adapter,
        options: &SyncOptions,
    ) -> Result<SyncReport> {
        let span = tracing::info_span!("sync", user = %user);
        let report = self
            .sync_rounds(user, adapter, options)
            .instrument(span)
            .await?;
        self.note_sync(user, &report);
        let event = if report.server_failed() {
            Event::SyncFailed(SyncFailed {
                user: user.to_string(),
                cause: report
                    .retrying
                    .first()
                    .map_or_else(String::new, |r| r.cause.to_string()),
                pending: report.retrying.len(),
            })
        } else {
            Event::SyncFinished(report.clone())
        };
        self.publish_event(event);
        Ok(report)
    }

    async fn sync_rounds(
        &self,
        user: &str,
        adapter: &dyn Adapter,
        options: &SyncOptions,
    ) -> Result<SyncReport> {
        let started = Instant::now();
        // Items the server dropped without a reason last time are sent again: the cause (a
        // token of another user, say) may have gone since.
        self.resend_dropped(user)?;
        let mut report = SyncReport::default();
        let mut sent = BTreeSet::new();
        let mut last: BTreeMap<ContentKey, ItemOutcome> = BTreeMap::new();
        for round in 0..options.max_rounds {
            let mut outgoing = self.outgoing(user)?;
            if round > 0 {
                outgoing.retain(|o| {
                    matches!(last.get(o.item.key()), Some(ItemOutcome::HeldLower { .. }))
                });
            }
            if outgoing.is_empty() {
                break;
            }
            tracing::debug!(round, items = outgoing.len(), "pushing");
            let push = match options.deadline {
                None => adapter.push(user, &outgoing).await,
                Some(deadline) => {
                    let left = deadline.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    match tokio::time::timeout(left, adapter.push(user, &outgoing)).await {
                        Ok(push) => push,
                        // Abandoned in flight: the server may have applied some of it, which
                        // is harmless (its merge is a max); every item stays pending.
                        Err(_) => {
                            tracing::warn!("the sync's deadline passed; everything stays pending");
                            crate::adapter::PushReport::all(
                                outgoing.len(),
                                ItemOutcome::Retry {
                                    cause: RetryCause::Timeout,
                                },
                            )
                        }
                    }
                }
            };
            let mut outcomes = push.outcomes;
            // An adapter that answers for fewer items than it was given leaves the rest
            // pending: an unanswered item is never taken as acknowledged.
            outcomes.resize(
                outgoing.len(),
                ItemOutcome::Retry {
                    cause: RetryCause::Unparsable {
                        detail: "the adapter gave no outcome for this item".into(),
                    },
                },
            );
            outcomes.truncate(outgoing.len());
            // A retried item's row stays as it is: only the other outcomes are written (offline,
            // that is none of them, so a failed sync of 10,000 items costs no write).
            let (answered, answers): (Vec<Outgoing>, Vec<ItemOutcome>) = outgoing
                .iter()
                .zip(&outcomes)
                .filter(|(_, outcome)| !matches!(outcome, ItemOutcome::Retry { .. }))
                .map(|(out, outcome)| (out.clone(), outcome.clone()))
                .unzip();
            if !answered.is_empty() {
                self.apply_outcomes(&answered, &answers)?;
            }
            report.requests += push.requests;
            report.bytes_sent += push.bytes_sent;
            report.bytes_received += push.bytes_received;
            for (out, outcome) in outgoing.iter().zip(outcomes) {
                sent.insert(out.item.key().clone());
                last.insert(out.item.key().clone(), outcome);
            }
        }
        report.sent = sent.len();
        for (key, outcome) in last {
            match outcome {
                ItemOutcome::Acknowledged => report.acknowledged += 1,
                ItemOutcome::Rejected { reason } | ItemOutcome::Dropped { reason } => {
                    report.rejected.push(RejectedItem { key, reason });
                }
                ItemOutcome::HeldLower { .. } => report.retrying.push(RetryingItem {
                    key,
                    cause: RetryCause::HeldLower,
                }),
                ItemOutcome::Retry { cause } => report.retrying.push(RetryingItem { key, cause }),
            }
        }
        report.duration = started.elapsed();
        tracing::info!(
            sent = report.sent,
            acknowledged = report.acknowledged,
            rejected = report.rejected.len(),
            retrying = report.retrying.len(),
            requests = report.requests,
            "sync finished"
        );
        Ok(report)
    }
}
