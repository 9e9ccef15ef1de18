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
use crate::content_state::{ContentKey, ContentState};
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
    /// first write lower, see [`ItemOutcome::HeldLower`]). Default 2; at least 1. The
    /// engine is the one owner of that second round: with 1, a Sunbird first write with
    /// status 1 stays at progress 0 on the server, and pending here, until the next sync.
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
    /// #         PushReport { requests: 1, ..PushReport::all(items, ItemOutcome::Acknowledged) }
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
        // One sync of a learner at a time on this store: a second waits, then sends what is
        // still pending (see `src/store/turns.rs`).
        let _turn = self.learner_turn(user).await;
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

/// What the app hears when a sync ends: it failed when nothing reached the server (see
/// [`SyncReport::failure`]).
fn sync_event(user: &UserId, report: &SyncReport) -> Event {
    match report.failure() {
        Some(failure) if failure.left_everything_pending() => Event::SyncFailed(SyncFailed {
            user: user.clone(),
            cause: failure.cause(),
            pending: report.retrying.len(),
        }),
        _ => Event::SyncFinished(report.clone()),
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
    // Items the server dropped without a reason last time are among those sent again (a
    // retry state of the row): the cause (a token of another user, say) may have gone since.
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
                            &outgoing,
                            ItemOutcome::Retry {
                                cause: RetryCause::Timeout,
                            },
                        )
                    }
                }
            }
        };
        let answered = rounds.answer(&outgoing, push);
        if !answered.is_empty() {
            store
                .off_executor(move |store| store.apply_outcomes(&answered))
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
/// sends, which answers the store keeps, and the report. It alone decides Sunbird's first-write
/// second round: an item the server holds lower than sent is sent again by the next round,
/// unless a round could not reach the server.
#[derive(Debug)]
struct Rounds {
    max_rounds: usize,
    round: usize,
    sent: BTreeSet<ContentKey>,
    /// Each item's state as last sent, and what became of it.
    last: BTreeMap<ContentKey, (ContentState, ItemOutcome)>,
    /// Why the server could not be reached in a round, if it could not: no round follows.
    stopped: Option<RetryCause>,
    report: SyncReport,
}

/// True when a push answered with `cause` for an item ends the sync: the server could not be
/// reached (see [`RetryCause::is_unreachable`]) or refused the credentials, so another round
/// now would meet the same.
fn ends_the_sync(cause: &RetryCause) -> bool {
    cause.is_unreachable() || cause.is_credentials_refused()
}

impl Rounds {
    fn new(max_rounds: usize) -> Rounds {
        Rounds {
            max_rounds,
            round: 0,
            sent: BTreeSet::new(),
            last: BTreeMap::new(),
            stopped: None,
            report: SyncReport::default(),
        }
    }

    /// What the next round sends, given what is pending now, or `None` when the sync is over.
    /// The first round sends everything pending; later ones resend only items the server took
    /// but holds lower than sent, and none follows a round that could not reach the server.
    fn next(&mut self, mut pending: Vec<Outgoing>) -> Option<Vec<Outgoing>> {
        if self.round >= self.max_rounds || self.stopped.is_some() {
            return None;
        }
        if self.round > 0 {
            pending.retain(|o| {
                matches!(
                    self.last.get(o.item.key()),
                    Some((_, ItemOutcome::HeldLower { .. }))
                )
            });
        }
        self.round += 1;
        (!pending.is_empty()).then_some(pending)
    }

    /// Takes a push's answer for `outgoing`; returns each item with the outcome the store must
    /// keep. An item the adapter gave no outcome for stays pending; an outcome for a key that
    /// was not sent is ignored. A retried item's row stays as it is, so it is not returned
    /// (offline, that is none of them: a failed sync of 10,000 items costs no write).
    fn answer(&mut self, outgoing: &[Outgoing], push: PushReport) -> Vec<(Outgoing, ItemOutcome)> {
        let PushReport {
            mut outcomes,
            requests,
            bytes_sent,
            bytes_received,
        } = push;
        self.report.requests += requests;
        self.report.bytes_sent += bytes_sent;
        self.report.bytes_received += bytes_received;
        let mut answered = Vec::new();
        for out in outgoing {
            let key = out.item.key();
            // An unanswered item is never taken as acknowledged.
            let outcome = outcomes.remove(key).unwrap_or_else(|| ItemOutcome::Retry {
                cause: RetryCause::Unparsable {
                    detail: "the adapter gave no outcome for this item".into(),
                },
            });
            match &outcome {
                ItemOutcome::Retry { cause } => {
                    if self.stopped.is_none() && ends_the_sync(cause) {
                        self.stopped = Some(cause.clone());
                    }
                }
                _ => answered.push((out.clone(), outcome.clone())),
            }
            self.sent.insert(key.clone());
            self.last.insert(key.clone(), (*out.item.state(), outcome));
        }
        if !outcomes.is_empty() {
            tracing::warn!(
                ignored = outcomes.len(),
                "the adapter answered for items it was not given"
            );
        }
        answered
    }

    /// The report, each item counted by its last outcome. An item held lower is retrying: with
    /// the cause that stopped the sync if one did, else [`RetryCause::HeldLower`].
    fn finish(mut self, duration: Duration) -> SyncReport {
        self.report.sent = self.sent.len();
        for (key, (state, outcome)) in self.last {
            match outcome {
                ItemOutcome::Acknowledged => self.report.acknowledged += 1,
                ItemOutcome::Rejected { reason } => {
                    self.report
                        .rejected
                        .push(RejectedItem { key, state, reason });
                }
                ItemOutcome::HeldLower { .. } => self.report.retrying.push(RetryingItem {
                    key,
                    cause: self.stopped.clone().unwrap_or(RetryCause::HeldLower),
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

    /// A push's report giving each `(item, outcome)` its outcome, by key.
    fn answering(outcomes: &[(&Outgoing, ItemOutcome)]) -> PushReport {
        PushReport {
            outcomes: outcomes
                .iter()
                .map(|(out, outcome)| (out.item.key().clone(), outcome.clone()))
                .collect(),
            requests: 1,
            ..PushReport::default()
        }
    }

    fn held_at_0() -> ContentState {
        ContentState::new(Status::InProgress, Progress::new(0).unwrap(), None, None)
    }

    #[test]
    fn a_second_round_resends_only_what_the_server_holds_lower_and_unanswered_items_stay_pending() {
        let mut rounds = Rounds::new(2);
        let first = rounds
            .next(vec![pending("a", 10), pending("b", 20), pending("c", 30)])
            .unwrap();
        let held = held_at_0();
        // The adapter answers for two of three items: the third is never acknowledged.
        let push = answering(&[
            (&first[0], ItemOutcome::Acknowledged),
            (&first[1], ItemOutcome::HeldLower { held }),
        ]);
        let answered = rounds.answer(&first, push);
        assert_eq!(answered.len(), 2, "the retried item's row is not written");
        assert_eq!(
            answered[1],
            (pending("b", 20), ItemOutcome::HeldLower { held })
        );
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
                ..PushReport::all(&second, ItemOutcome::Acknowledged)
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
    fn an_item_the_adapter_gave_no_outcome_for_stays_pending_whatever_the_order_of_the_answers() {
        let mut rounds = Rounds::new(1);
        let sent = rounds
            .next(vec![pending("a", 10), pending("b", 20), pending("c", 30)])
            .unwrap();
        // Answers for the last and the first item, in that order: matched by key, not by place.
        let answered = rounds.answer(
            &sent,
            answering(&[
                (&sent[2], ItemOutcome::Acknowledged),
                (&sent[0], ItemOutcome::Acknowledged),
            ]),
        );
        let keys: Vec<&str> = answered
            .iter()
            .map(|(out, _)| out.item.key().content().as_str())
            .collect();
        assert_eq!(keys, ["a", "c"]);
        let report = rounds.finish(Duration::ZERO);
        assert_eq!((report.sent, report.acknowledged), (3, 2));
        assert_eq!(report.retrying.len(), 1);
        assert_eq!(report.retrying[0].key.content(), "b");
        assert!(matches!(
            &report.retrying[0].cause,
            RetryCause::Unparsable { detail } if detail == "the adapter gave no outcome for this item"
        ));
    }

    #[test]
    fn an_outcome_for_a_key_that_was_not_sent_is_ignored() {
        let mut rounds = Rounds::new(1);
        let sent = rounds.next(vec![pending("a", 10)]).unwrap();
        let stranger = pending("never-sent", 90);
        let answered = rounds.answer(
            &sent,
            answering(&[
                (&sent[0], ItemOutcome::Acknowledged),
                (&stranger, ItemOutcome::Acknowledged),
            ]),
        );
        assert_eq!(
            answered,
            vec![(pending("a", 10), ItemOutcome::Acknowledged)]
        );
        let report = rounds.finish(Duration::ZERO);
        assert_eq!((report.sent, report.acknowledged), (1, 1));
        assert!(report.retrying.is_empty());
    }

    // Issue 18: the first-write second round has one owner, the engine; a round that could not
    // reach the server is the last, as the protocol's own second round used to decide.
    #[test]
    fn no_second_round_follows_a_round_that_could_not_reach_the_server() {
        for cause in [
            RetryCause::Network {
                detail: "cannot connect".into(),
            },
            RetryCause::Timeout,
            RetryCause::Redirected {
                to: "elsewhere:443".into(),
            },
            RetryCause::CredentialsRefused { status: 401 },
        ] {
            let mut rounds = Rounds::new(2);
            let first = rounds
                .next(vec![pending("a", 10), pending("b", 20)])
                .unwrap();
            rounds.answer(
                &first,
                answering(&[
                    (&first[0], ItemOutcome::HeldLower { held: held_at_0() }),
                    (
                        &first[1],
                        ItemOutcome::Retry {
                            cause: cause.clone(),
                        },
                    ),
                ]),
            );
            assert_eq!(
                rounds.next(vec![pending("a", 10), pending("b", 20)]),
                None,
                "{cause:?}"
            );
            let report = rounds.finish(Duration::ZERO);
            // The item held lower is retrying with the cause that ended the sync.
            let causes: Vec<_> = report.retrying.iter().map(|r| r.cause.clone()).collect();
            assert_eq!(causes, [cause.clone(), cause.clone()], "{cause:?}");
        }
    }

    #[test]
    fn a_second_round_follows_a_server_error_and_resends_what_was_held_lower() {
        let mut rounds = Rounds::new(2);
        let first = rounds
            .next(vec![pending("a", 10), pending("b", 20)])
            .unwrap();
        rounds.answer(
            &first,
            answering(&[
                (&first[0], ItemOutcome::HeldLower { held: held_at_0() }),
                (
                    &first[1],
                    ItemOutcome::Retry {
                        cause: RetryCause::Server { status: 503 },
                    },
                ),
            ]),
        );
        let second = rounds.next(vec![pending("a", 10), pending("b", 20)]);
        assert_eq!(second, Some(vec![pending("a", 10)]));
    }

    #[test]
    fn a_rejected_item_is_reported_with_the_state_that_was_sent() {
        let mut rounds = Rounds::new(1);
        let sent = rounds.next(vec![pending("a", 40)]).unwrap();
        let reason = crate::RejectionReason::BatchNotOngoing {
            text: "NOT_A_ON_GOING_BATCH".into(),
        };
        rounds.answer(
            &sent,
            answering(&[(&sent[0], ItemOutcome::Rejected { reason })]),
        );
        let report = rounds.finish(Duration::ZERO);
        assert_eq!(report.rejected[0].state, *pending("a", 40).item.state());
    }

    #[test]
    fn nothing_pending_means_no_round() {
        let mut rounds = Rounds::new(2);
        assert_eq!(rounds.next(Vec::new()), None);
        let report = rounds.finish(Duration::ZERO);
        assert_eq!(report, SyncReport::default());
    }
}
