//! The sync engine: hands a learner's pending states to an [`Adapter`] in bulk, has the store
//! keep what the server acknowledged, and reports every item's fate in a [`SyncReport`]. It does
//! no IO of its own: the adapter talks to the server, and the store's work runs off the async
//! executor ([`Store::off_executor`]). The decisions (what each round sends, which answers are
//! stored, the report) are [`Rounds`], which reads no clock; the driver reads it.

mod backoff;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::adapter::{Adapter, ItemOutcome, Outgoing, PushReport, RetryCause};
use crate::content_state::ContentKey;
use crate::error::Result;
use crate::events::{Event, SyncFailed};
use crate::id::UserId;
use crate::store::Store;
use crate::sync_report::{RejectedItem, RetryingItem, SyncReport};
use crate::timestamp::Timestamp;

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
    /// because adapters bound their own requests.
    /// Needs a tokio runtime with timers enabled.
    pub fn deadline(mut self, deadline: Duration) -> SyncOptions {
        self.deadline = Some(deadline);
        self
    }

    /// How many pushes one sync may make: the first sends everything pending; later ones
    /// resend only items the server took but holds lower than sent (a server may store a
    /// first write lower, see [`ItemOutcome::HeldLower`]). Default 2; at least 1.
    pub fn max_rounds(mut self, rounds: usize) -> SyncOptions {
        self.max_rounds = rounds.max(1);
        self
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
    /// # use headway::UserId;
    /// # use async_trait::async_trait;
    /// # use headway::*;
    /// # struct Accepting;
    /// # #[async_trait]
    /// # impl Adapter for Accepting {
    /// #     async fn push(&self, _: &UserId, items: &[Outgoing]) -> PushReport {
    /// #         PushReport { requests: 1, ..PushReport::all(items.len(), ItemOutcome::Acknowledged) }
    /// #     }
    /// #     async fn read_states(&self, _: &UserId, _: &CourseId, _: &BatchId) -> std::result::Result<Vec<ContentItem>, AdapterError> { Ok(vec![]) }
    /// #     async fn enrolled_courses(&self, _: &UserId) -> std::result::Result<Vec<EnrolledCourse>, AdapterError> { Ok(vec![]) }
    /// # }
    /// # fn main() -> headway::Result<()> {
    /// let store = Store::open_in_memory()?;
    /// store.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let report = runtime.block_on(store.sync(&UserId::new("u")?, &Accepting, &SyncOptions::new()))?;
    /// assert_eq!((report.sent, report.acknowledged, report.requests), (1, 1, 1));
    /// assert!(store.pending(&UserId::new("u")?)?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn sync(
        &self,
        user: &UserId,
        adapter: &dyn Adapter,
        options: &SyncOptions,
    ) -> Result<SyncReport> {
        let span = tracing::info_span!("sync", user = %user);
        let report = run(self, user, adapter, options).instrument(span).await?;
        let (owner, at) = (user.clone(), Timestamp::now());
        self.off_executor(move |store| {
            store.note_sync(&owner, &report, at);
            store.publish_event(sync_event(&owner, &report));
            Ok(report)
        })
        .await
    }
}

/// What the app hears when a sync ends: it failed when nothing reached the server.
fn sync_event(user: &UserId, report: &SyncReport) -> Event {
    if report.server_failed() {
        Event::SyncFailed(SyncFailed {
            user: user.clone(),
            cause: report
                .retrying
                .first()
                .map_or_else(String::new, |r| r.cause.to_string()),
            pending: report.retrying.len(),
        })
    } else {
        Event::SyncFinished(report.clone())
    }
}

/// Drives one sync: reads the pending items, pushes, stores the answers, round after round as
/// [`Rounds`] decides. Reads the clock for the deadline and the report's duration only.
async fn run(
    store: &Store,
    user: &UserId,
    adapter: &dyn Adapter,
    options: &SyncOptions,
) -> Result<SyncReport> {
    let started = Instant::now();
    // Items the server dropped without a reason last time are sent again: the cause (a token
    // of another user, say) may have gone since.
    let owner = user.clone();
    store
        .off_executor(move |store| store.resend_dropped(&owner))
        .await?;
    let mut rounds = Rounds::new(options.max_rounds);
    loop {
        let owner = user.clone();
        let pending = store
            .off_executor(move |store| store.outgoing(&owner))
            .await?;
        let Some(outgoing) = rounds.next(pending) else {
            break;
        };
        tracing::debug!(round = rounds.round, items = outgoing.len(), "pushing");
        let push = match options.deadline {
            None => adapter.push(user, &outgoing).await,
            Some(deadline) => {
                let left = deadline.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                match tokio::time::timeout(left, adapter.push(user, &outgoing)).await {
                    Ok(push) => push,
                    // Abandoned in flight: the server may have applied some of it, which is
                    // harmless (its merge is a max); every item stays pending.
                    Err(_) => {
                        tracing::warn!("the sync's deadline passed; everything stays pending");
                        PushReport::all(
                            outgoing.len(),
                            ItemOutcome::Retry {
                                cause: RetryCause::Timeout,
                            },
                        )
                    }
                }
            }
        };
        let (answered, answers) = rounds.answer(&outgoing, push);
        if !answered.is_empty() {
            store
                .off_executor(move |store| store.apply_outcomes(&answered, &answers))
                .await?;
        }
    }
    let report = rounds.finish(started.elapsed());
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

/// The engine's decisions for one sync, apart from any IO and any clock: what each round
/// sends, which answers the store keeps, and the report.
#[derive(Debug)]
struct Rounds {
    max_rounds: usize,
    round: usize,
    sent: BTreeSet<ContentKey>,
    last: BTreeMap<ContentKey, ItemOutcome>,
    report: SyncReport,
}

impl Rounds {
    fn new(max_rounds: usize) -> Rounds {
        Rounds {
            max_rounds,
            round: 0,
            sent: BTreeSet::new(),
            last: BTreeMap::new(),
            report: SyncReport::default(),
        }
    }

    /// What the next round sends, given what is pending now, or `None` when the sync is over.
    /// The first round sends everything pending; later ones resend only items the server took
    /// but holds lower than sent.
    fn next(&mut self, mut pending: Vec<Outgoing>) -> Option<Vec<Outgoing>> {
        if self.round >= self.max_rounds {
            return None;
        }
        if self.round > 0 {
            pending.retain(|o| {
                matches!(
                    self.last.get(o.item.key()),
                    Some(ItemOutcome::HeldLower { .. })
                )
            });
        }
        self.round += 1;
        (!pending.is_empty()).then_some(pending)
    }

    /// Takes a push's answer for `outgoing`; returns the items and outcomes the store must
    /// keep. A retried item's row stays as it is, so only the other outcomes are returned
    /// (offline, that is none of them: a failed sync of 10,000 items costs no write).
    fn answer(
        &mut self,
        outgoing: &[Outgoing],
        push: PushReport,
    ) -> (Vec<Outgoing>, Vec<ItemOutcome>) {
        let mut outcomes = push.outcomes;
        // An adapter that answers for fewer items than it was given leaves the rest pending:
        // an unanswered item is never taken as acknowledged.
        outcomes.resize(
            outgoing.len(),
            ItemOutcome::Retry {
                cause: RetryCause::Unparsable {
                    detail: "the adapter gave no outcome for this item".into(),
                },
            },
        );
        outcomes.truncate(outgoing.len());
        self.report.requests += push.requests;
        self.report.bytes_sent += push.bytes_sent;
        self.report.bytes_received += push.bytes_received;
        let mut answered = (Vec::new(), Vec::new());
        for (out, outcome) in outgoing.iter().zip(outcomes) {
            if !matches!(outcome, ItemOutcome::Retry { .. }) {
                answered.0.push(out.clone());
                answered.1.push(outcome.clone());
            }
            self.sent.insert(out.item.key().clone());
            self.last.insert(out.item.key().clone(), outcome);
        }
        answered
    }

    /// The report, each item counted by its last outcome.
    fn finish(mut self, duration: Duration) -> SyncReport {
        self.report.sent = self.sent.len();
        for (key, outcome) in self.last {
            match outcome {
                ItemOutcome::Acknowledged => self.report.acknowledged += 1,
                ItemOutcome::Rejected { reason } => {
                    self.report.rejected.push(RejectedItem { key, reason });
                }
                ItemOutcome::HeldLower { .. } => self.report.retrying.push(RetryingItem {
                    key,
                    cause: RetryCause::HeldLower,
                }),
                ItemOutcome::Retry { cause } => {
                    self.report.retrying.push(RetryingItem { key, cause })
                }
            }
        }
        self.report.duration = duration;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_state::{ContentItem, ContentState, Progress, Status};

    fn pending(content: &str, progress: i64) -> Outgoing {
        let key = ContentKey::new("u", "c", "b", content).unwrap();
        let state = ContentState::new(
            Status::InProgress,
            Progress::new(progress).unwrap(),
            None,
            None,
        );
        Outgoing {
            item: ContentItem::new(key, state),
            server: None,
        }
    }

    #[test]
    fn a_second_round_resends_only_what_the_server_holds_lower_and_unanswered_items_stay_pending() {
        let mut rounds = Rounds::new(2);
        let first = rounds
            .next(vec![pending("a", 10), pending("b", 20), pending("c", 30)])
            .unwrap();
        let held = ContentState::new(Status::InProgress, Progress::new(0).unwrap(), None, None);
        // The adapter answers for two of three items: the third is never acknowledged.
        let push = PushReport {
            outcomes: vec![ItemOutcome::Acknowledged, ItemOutcome::HeldLower { held }],
            requests: 1,
            ..PushReport::default()
        };
        let (answered, answers) = rounds.answer(&first, push);
        assert_eq!(answered.len(), 2, "the retried item's row is not written");
        assert_eq!(answers[1], ItemOutcome::HeldLower { held });
        // Everything is still pending as far as the store says; the second round takes only
        // the item held lower.
        let second = rounds
            .next(vec![pending("b", 20), pending("c", 30)])
            .unwrap();
        assert_eq!(second, vec![pending("b", 20)]);
        rounds.answer(
            &second,
            PushReport {
                requests: 1,
                ..PushReport::all(1, ItemOutcome::Acknowledged)
            },
        );
        assert_eq!(
            rounds.next(vec![pending("c", 30)]),
            None,
            "two rounds at most"
        );
        let report = rounds.finish(Duration::from_millis(5));
        assert_eq!(
            (report.sent, report.acknowledged, report.requests),
            (3, 2, 2)
        );
        assert_eq!(report.retrying.len(), 1);
        assert_eq!(report.retrying[0].key.content(), "c");
        assert!(matches!(
            report.retrying[0].cause,
            RetryCause::Unparsable { .. }
        ));
        assert_eq!(report.duration, Duration::from_millis(5));
    }

    #[test]
    fn nothing_pending_means_no_round() {
        let mut rounds = Rounds::new(2);
        assert_eq!(rounds.next(Vec::new()), None);
        let report = rounds.finish(Duration::ZERO);
        assert_eq!(report, SyncReport::default());
    }
}
