//! One learner's bulk push of content states.

use std::collections::BTreeMap;
use std::time::Instant;

use headway::{
    ContentItem, ContentKey, ItemOutcome, Outgoing, PushReport, RejectionReason, RetryCause, UserId,
};

use super::attempts::{Attempt, Attempts, Traffic};
use super::plan::plan_requests;
use super::{Answer, Machine, Method, Step, Tally};
use crate::config::SunbirdConfig;
use crate::wire::{self, UpdateAnswer};

/// One learner's bulk push: every planned request, each bisected on 400. Ends with one
/// outcome per item. A first write Sunbird stored lower than sent comes back
/// [`ItemOutcome::HeldLower`] with what the server holds; the sync engine's next round sends it
/// again with that state as the server's, and the server's max-merge then keeps it whole.
///
/// ```
/// use std::time::Instant;
/// use headway::{ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, Progress, Status};
/// use headway_sunbird::protocol::{Answer, Machine, Step, UpdatePush};
/// let watching = ContentState::new(Status::InProgress, Progress::new(60)?, None, None);
/// let key = ContentKey::new("u1", "do_course", "b1", "do_video")?;
/// let items = [Outgoing { item: ContentItem::new(key, watching), server: None }];
/// let config = headway_sunbird::SunbirdConfig::new("http://127.0.0.1:9000");
/// let now = Instant::now();
/// let user = headway::UserId::new("u1")?;
/// let mut push = UpdatePush::new(&config, &user, &items, now);
/// let report = loop {
///     match push.poll(now) {
///         Step::Send(_) => {
///             let body = br#"{"result":{"do_video":"SUCCESS"}}"#.to_vec();
///             push.answer(now, Answer::Answered { status: 200, body });
///         }
///         Step::Wait(_) => unreachable!(),
///         Step::Done(report) => break report,
///     }
/// };
/// // A first write with status 1 is stored with progress 0: the engine sends it again.
/// assert_eq!(report.requests, 1);
/// assert!(matches!(report.outcomes[items[0].item.key()], ItemOutcome::HeldLower { .. }));
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Debug)]
pub struct UpdatePush<'a> {
    config: &'a SunbirdConfig,
    user: &'a UserId,
    items: &'a [Outgoing],
    traffic: Traffic,
    /// Each item's outcome once decided, by its key.
    outcomes: BTreeMap<ContentKey, ItemOutcome>,
    /// The planned requests of this round not yet started.
    planned: std::vec::IntoIter<Vec<usize>>,
    /// Halves of bisected requests still to send (bisection without recursion).
    halves: Vec<Vec<usize>>,
    /// The request in flight and its attempts.
    current: Option<(Vec<usize>, Attempts)>,
    done: usize,
    progress: Option<(usize, usize)>,
    tally: Tally,
}

impl<'a> UpdatePush<'a> {
    /// A push of `items` for `user`, starting at `now` (the call's deadline runs from here).
    pub fn new(
        config: &'a SunbirdConfig,
        user: &'a UserId,
        items: &'a [Outgoing],
        now: Instant,
    ) -> UpdatePush<'a> {
        let all: Vec<usize> = (0..items.len()).collect();
        UpdatePush {
            config,
            user,
            items,
            traffic: Traffic::new(config, now),
            outcomes: BTreeMap::new(),
            planned: plan_requests(items, &all, config.chunk).into_iter(),
            halves: Vec::new(),
            current: None,
            done: 0,
            progress: None,
            tally: Tally::default(),
        }
    }

    fn set(&mut self, i: usize, outcome: ItemOutcome) {
        self.outcomes
            .insert(self.items[i].item.key().clone(), outcome);
    }

    /// Applies the meaning of one request's answer to its items.
    fn decide(&mut self, indices: Vec<usize>, answer: UpdateAnswer) {
        let answered_before = self.outcomes.len();
        match answer {
            UpdateAnswer::Items(mut answers) => {
                // Matched by key: an item the answer says nothing of stays undecided (and
                // pending), an outcome for an item not in this request is ignored.
                for &i in &indices {
                    if let Some(outcome) = answers.remove(self.items[i].item.key()) {
                        self.set(i, outcome);
                    }
                }
            }
            UpdateAnswer::ClientError { reason } if indices.len() == 1 => {
                tracing::warn!(%reason, "the server refused an item");
                let reason = RejectionReason::RefusedByServer { text: reason };
                self.set(indices[0], ItemOutcome::Rejected { reason });
            }
            UpdateAnswer::ClientError { .. } => {
                self.tally.bisections += 1;
                let (left, right) = indices.split_at(indices.len() / 2);
                self.halves.push(right.to_vec());
                self.halves.push(left.to_vec());
            }
            UpdateAnswer::Unauthorized { status } => {
                for &i in &indices {
                    self.set(
                        i,
                        ItemOutcome::Retry {
                            cause: RetryCause::CredentialsRefused { status },
                        },
                    );
                }
            }
            UpdateAnswer::Retry(cause) => {
                for &i in &indices {
                    self.set(
                        i,
                        ItemOutcome::Retry {
                            cause: cause.clone(),
                        },
                    );
                }
            }
        }
        let answered = self.outcomes.len();
        self.done += answered - answered_before;
        self.progress = Some((self.done, self.items.len()));
    }

    fn report(&mut self) -> PushReport {
        PushReport {
            outcomes: self
                .items
                .iter()
                .map(|out| {
                    let key = out.item.key();
                    let outcome = self.outcomes.remove(key).unwrap_or(ItemOutcome::Retry {
                        cause: RetryCause::NotInResult,
                    });
                    (key.clone(), outcome)
                })
                .collect(),
            requests: self.traffic.requests,
            bytes_sent: self.traffic.bytes_sent,
            bytes_received: self.traffic.bytes_received,
        }
    }
}

impl Machine for UpdatePush<'_> {
    type Output = PushReport;

    fn poll(&mut self, now: Instant) -> Step<PushReport> {
        loop {
            if let Some((indices, attempts)) = &mut self.current {
                match attempts.poll(now, self.config, &self.traffic) {
                    Attempt::Send(request) => return Step::Send(request),
                    Attempt::Wait(pause) => return Step::Wait(pause),
                    Attempt::Finished(result) => {
                        let indices = std::mem::take(indices);
                        self.current = None;
                        let answer = match result {
                            Ok((status, body)) => {
                                let chunk: Vec<&Outgoing> =
                                    indices.iter().map(|&i| &self.items[i]).collect();
                                wire::interpret_update(status, &body, &chunk)
                            }
                            Err(cause) => UpdateAnswer::Retry(cause),
                        };
                        self.decide(indices, answer);
                        continue;
                    }
                }
            }
            let Some(indices) = self.halves.pop().or_else(|| self.planned.next()) else {
                return Step::Done(self.report());
            };
            if let Some(cause) = self.traffic.stopped(now) {
                // Unreachable or out of time: nothing more is sent, everything stays pending.
                for &i in &indices {
                    self.set(
                        i,
                        ItemOutcome::Retry {
                            cause: cause.clone(),
                        },
                    );
                }
                continue;
            }
            let chunk: Vec<&ContentItem> = indices.iter().map(|&i| &self.items[i].item).collect();
            match serde_json::to_vec(&wire::update_body(self.user, &chunk)) {
                Ok(body) => {
                    let attempts = Attempts::new(
                        self.config,
                        Method::Patch,
                        "content/state/update".into(),
                        Some(body),
                    );
                    self.current = Some((indices, attempts));
                }
                Err(e) => self.decide(
                    indices,
                    UpdateAnswer::Retry(RetryCause::Unparsable {
                        detail: e.to_string(),
                    }),
                ),
            }
        }
    }

    fn answer(&mut self, now: Instant, answer: Answer) {
        if let Some((_, attempts)) = &mut self.current {
            attempts.answer(now, answer, self.config, &mut self.traffic, &mut self.tally);
        }
    }

    fn take_progress(&mut self) -> Option<(usize, usize)> {
        self.progress.take()
    }

    fn tally(&self) -> Tally {
        self.tally
    }
}
