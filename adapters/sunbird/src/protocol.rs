//! The Sunbird client without IO: which request to send next, and what each answer means.
//!
//! A push or a read is a pure state machine (samod's shape): its inputs are answers and the
//! time (`now`), its outputs are requests to send, pauses, and a final outcome. It plans the
//! bulk requests (at most `chunk` items, one course per batch, one item per (batch,
//! content)), reads every answer item by item, bisects a chunk refused with 400, asks for a
//! fresh token once after a 401/403, retries 429/5xx and broken connections with back-off,
//! stops at once when the service cannot be reached ([`WhenUnreachable::StopAtOnce`]), keeps
//! one deadline per call, and sends Sunbird's first writes with status 1 a second time (the
//! server stores progress 0 for them). No socket, clock, randomness or task is touched here:
//! [`SunbirdAdapter`](crate::SunbirdAdapter) drives a machine with reqwest, and the
//! deterministic simulation drives the same machine against the in-process course service.
//!
//! ```
//! use std::time::Instant;
//! use headway::{ContentItem, ContentKey, ContentState, Outgoing, Progress, Status};
//! use headway_sunbird::protocol::{Answer, Machine, Step, UpdatePush};
//! use headway_sunbird::SunbirdConfig;
//! let done = ContentState::new(Status::Completed, Progress::new(100)?, None, None);
//! let key = ContentKey::new("u1", "do_course", "b1", "do_1")?;
//! let items = [Outgoing { item: ContentItem::new(key, done), server: None }];
//! let config = SunbirdConfig::new("http://127.0.0.1:9000");
//! let user = headway::UserId::new("u1")?;
//! let mut push = UpdatePush::new(&config, &user, &items, Instant::now());
//! let Step::Send(request) = push.poll(Instant::now()) else { panic!("nothing to send") };
//! assert_eq!(request.path, "content/state/update");
//! let body = br#"{"responseCode":"OK","result":{"do_1":"SUCCESS"}}"#.to_vec();
//! push.answer(Instant::now(), Answer::Answered { status: 200, body });
//! let Step::Done(report) = push.poll(Instant::now()) else { panic!("not done") };
//! assert!(report.outcomes[items[0].item.key()].is_acknowledged());
//! assert_eq!(report.requests, 1);
//! # Ok::<(), headway::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use headway::{
    AdapterError, Backoff, BatchId, ContentItem, CourseId, ItemOutcome, Outgoing, PushReport,
    RejectionReason, RetryCause, UserId,
};

use crate::client::{SunbirdConfig, WhenUnreachable};
use crate::error::Error;
use crate::wire::{self, UpdateAnswer};

/// The HTTP method of a [`Request`].
///
/// ```
/// assert_ne!(headway_sunbird::protocol::Method::Get, headway_sunbird::protocol::Method::Patch);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET` (the enrollment list).
    Get,
    /// `POST` (the content-state read).
    Post,
    /// `PATCH` (the bulk content-state update).
    Patch,
}

/// Which of the learner's tokens a [`Request`] carries.
///
/// ```
/// assert_ne!(headway_sunbird::protocol::TokenUse::Current, headway_sunbird::protocol::TokenUse::Refreshed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenUse {
    /// The token the app's provider holds now.
    Current,
    /// A fresh one: the service refused the current token (401/403) in this call.
    Refreshed,
}

/// One request a machine wants sent. The driver adds the headers (the token named by
/// `token`, the API key) and sends `body` to `/api/course/v1/{path}`.
///
/// ```
/// use std::time::Instant;
/// use headway_sunbird::protocol::{Machine, Method, Read, Step};
/// let config = headway_sunbird::SunbirdConfig::new("http://127.0.0.1:9000");
/// let (user, course, batch) = ("u1".try_into()?, "do_course".try_into()?, "b1".try_into()?);
/// let mut read = Read::states(&config, &user, &course, &batch, Instant::now());
/// let Step::Send(request) = read.poll(Instant::now()) else { panic!() };
/// assert_eq!((request.method, request.path.as_str()), (Method::Post, "content/state/read"));
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The path after `/api/course/v1/`, query included.
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Vec<u8>>,
    /// Which token to send.
    pub token: TokenUse,
    /// How long the transport may wait for the answer: the per-request timeout, cut to what
    /// is left of the call's deadline.
    pub timeout: Duration,
}

/// What became of a [`Request`], as the driver saw it.
///
/// ```
/// use headway_sunbird::protocol::Answer;
/// let lost = Answer::Failed(headway_sunbird::Error::CannotConnect { address: "http://127.0.0.1:9".into() });
/// # let _ = lost;
/// ```
#[derive(Debug)]
pub enum Answer {
    /// The service answered with this status and body.
    Answered {
        /// The HTTP status.
        status: u16,
        /// The whole body.
        body: Vec<u8>,
    },
    /// No answer: the transport failed ([`Error::CannotConnect`] and [`Error::TimedOut`]
    /// mean the service is unreachable; [`Error::Transport`] a broken exchange).
    Failed(Error),
    /// The request could not be made (the app's token provider failed, a token or key is not
    /// a valid header value): nothing was sent, and it is not tried again.
    NotSent(Error),
}

/// What a machine wants next.
///
/// ```
/// use headway_sunbird::protocol::Step;
/// let step: Step<()> = Step::Wait(std::time::Duration::from_millis(200));
/// assert!(matches!(step, Step::Wait(_)));
/// ```
#[derive(Debug)]
pub enum Step<T> {
    /// Send this request, then hand its [`Answer`] to [`Machine::answer`].
    Send(Request),
    /// Poll again after this long (a back-off between attempts).
    Wait(Duration),
    /// The call is over.
    Done(T),
}

/// A sans-IO call: poll it for the next [`Step`], feed it each [`Answer`].
///
/// ```
/// use std::time::Instant;
/// use headway_sunbird::protocol::{Answer, Machine, Read, Step};
/// use headway_sunbird::SunbirdConfig;
/// let config = SunbirdConfig::new("http://127.0.0.1:9");
/// let mut read = Read::enrolled_courses(&config, &headway::UserId::new("u1")?, Instant::now());
/// let Step::Send(_) = read.poll(Instant::now()) else { panic!() };
/// read.answer(Instant::now(), Answer::Failed(headway_sunbird::Error::TimedOut));
/// // Stop at once (the default): a timeout ends the call with no retry.
/// assert!(matches!(read.poll(Instant::now()), Step::Done(Err(_))));
/// # Ok::<(), headway::Error>(())
/// ```
pub trait Machine {
    /// What the call ends with.
    type Output;
    /// The next step at time `now`.
    fn poll(&mut self, now: Instant) -> Step<Self::Output>;
    /// The answer to the last request sent, arrived at `now`.
    fn answer(&mut self, now: Instant, answer: Answer);
    /// `(items done, items in the call)` when it changed since the last call: what a progress
    /// bar follows. Only a push has items.
    fn take_progress(&mut self) -> Option<(usize, usize)> {
        None
    }
    /// How often this call bisected, refreshed the token and ran a second round so far.
    fn tally(&self) -> Tally;
}

/// How often the client's recovery paths ran in one call: what the simulation counts.
///
/// ```
/// let tally = headway_sunbird::protocol::Tally::default();
/// assert_eq!(tally.bisections + tally.token_refreshes + tally.second_rounds, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Chunks refused with 400 and split in two.
    pub bisections: usize,
    /// Requests sent again with a fresh token after a 401/403.
    pub token_refreshes: usize,
    /// Second rounds for first writes the server stored lower.
    pub second_rounds: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.bisections += other.bisections;
        self.token_refreshes += other.token_refreshes;
        self.second_rounds += other.second_rounds;
    }
}

/// Counters and bounds of one push or read.
#[derive(Debug)]
struct Traffic {
    requests: usize,
    bytes_sent: u64,
    bytes_received: u64,
    /// No request starts after this.
    deadline: Instant,
    /// Set when the service proved unreachable and the call stops at once.
    halted: Option<RetryCause>,
}

impl Traffic {
    fn new(config: &SunbirdConfig, now: Instant) -> Traffic {
        Traffic {
            requests: 0,
            bytes_sent: 0,
            bytes_received: 0,
            deadline: now + config.deadline,
            halted: None,
        }
    }

    /// Time left before the deadline.
    fn left(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// Why no further request may start, if none may.
    fn stopped(&self, now: Instant) -> Option<RetryCause> {
        if let Some(cause) = &self.halted {
            return Some(cause.clone());
        }
        self.left(now).is_zero().then_some(RetryCause::Timeout)
    }
}

/// What a failed request means for the items it carried.
fn retry_cause(error: &Error) -> RetryCause {
    match error {
        Error::TimedOut => RetryCause::Timeout,
        Error::Redirected { to } => RetryCause::Redirected { to: to.clone() },
        Error::AnswerTooLarge { limit } => RetryCause::AnswerTooLarge { limit: *limit },
        other => RetryCause::Network {
            detail: other.to_string(),
        },
    }
}

/// One request until it is answered for good: the token refreshed once after a 401/403, and
/// transport failures, 429 and 5xx retried with back-off up to `attempts` times.
#[derive(Debug)]
struct Attempts {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    refreshed: bool,
    backoff: Backoff,
    wake: Option<Instant>,
    finished: Option<Result<(u16, Vec<u8>), RetryCause>>,
}

/// What [`Attempts::poll`] wants.
enum Attempt {
    Send(Request),
    Wait(Duration),
    Finished(Result<(u16, Vec<u8>), RetryCause>),
}

impl Attempts {
    fn new(
        config: &SunbirdConfig,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
    ) -> Attempts {
        Attempts {
            method,
            path,
            body,
            refreshed: false,
            backoff: Backoff::new(config.retry_base, config.retry_base * 16),
            wake: None,
            finished: None,
        }
    }

    fn poll(&mut self, now: Instant, config: &SunbirdConfig, traffic: &Traffic) -> Attempt {
        if let Some(finished) = self.finished.take() {
            return Attempt::Finished(finished);
        }
        if let Some(wake) = self.wake {
            if now < wake {
                return Attempt::Wait(wake - now);
            }
            self.wake = None;
        }
        if let Some(cause) = traffic.stopped(now) {
            return Attempt::Finished(Err(cause));
        }
        Attempt::Send(Request {
            method: self.method,
            path: self.path.clone(),
            body: self.body.clone(),
            token: if self.refreshed {
                TokenUse::Refreshed
            } else {
                TokenUse::Current
            },
            timeout: config.timeout.min(traffic.left(now)),
        })
    }

    /// Takes the answer to the request last sent; the outcome, when this one is final, is
    /// handed out by the next `poll`.
    fn answer(
        &mut self,
        now: Instant,
        answer: Answer,
        config: &SunbirdConfig,
        traffic: &mut Traffic,
        tally: &mut Tally,
    ) {
        if !matches!(answer, Answer::NotSent(_)) {
            traffic.requests += 1;
            traffic.bytes_sent += self.body.as_ref().map_or(0, |b| b.len() as u64);
        }
        let cause = match answer {
            Answer::Answered {
                status: 401 | 403,
                body,
            } if !self.refreshed => {
                traffic.bytes_received += body.len() as u64;
                tracing::info!("token refused; refreshing once");
                self.refreshed = true;
                tally.token_refreshes += 1;
                return;
            }
            Answer::Answered { status, body } => {
                traffic.bytes_received += body.len() as u64;
                if matches!(status, 401 | 403) {
                    // Refused again with a fresh token: the token decides the user, so every
                    // further request of this call would be refused too. Nothing more is
                    // sent; the items not yet answered stay pending.
                    tracing::info!(status, "the fresh token was refused too; stopping");
                    traffic.halted = Some(RetryCause::CredentialsRefused { status });
                }
                if status == 429 || status >= 500 {
                    RetryCause::Server { status }
                } else {
                    self.finished = Some(Ok((status, body)));
                    return;
                }
            }
            // Nothing was sent: no retry.
            Answer::NotSent(error) => {
                self.finished = Some(Err(retry_cause(&error)));
                return;
            }
            Answer::Failed(error) => {
                let cause = retry_cause(&error);
                if matches!(
                    error,
                    Error::Redirected { .. } | Error::AnswerTooLarge { .. }
                ) {
                    // Every request of this call would meet the same redirect or oversized
                    // answer: nothing more is sent, the items not yet answered stay pending
                    // (issue 17).
                    tracing::warn!(%cause, "stopping the call");
                    traffic.halted = Some(cause.clone());
                    self.finished = Some(Err(cause));
                    return;
                }
                let unreachable = matches!(error, Error::CannotConnect { .. } | Error::TimedOut);
                if unreachable && config.when_unreachable == WhenUnreachable::StopAtOnce {
                    tracing::info!(%cause, "the course service is unreachable; stopping at once");
                    traffic.halted = Some(cause.clone());
                    self.finished = Some(Err(cause));
                    return;
                }
                cause
            }
        };
        self.backoff.record_failure();
        if self.backoff.failures() >= config.attempts {
            self.finished = Some(Err(cause));
            return;
        }
        tracing::debug!(%cause, attempt = self.backoff.failures(), "retrying a request");
        let pause = self
            .backoff
            .delay(traffic.requests as u64)
            .min(traffic.left(now));
        self.wake = Some(now + pause);
    }
}

/// Splits items into requests of at most `chunk` items such that no request holds two items
/// for one (batch, content) and every batch in a request belongs to one course (Sunbird reads
/// a batch's stored rows with the first item's course). Returns item indices per request,
/// taken from `indices`.
fn plan_requests(items: &[Outgoing], indices: &[usize], chunk: usize) -> Vec<Vec<usize>> {
    struct Planned<'a> {
        indices: Vec<usize>,
        course_of_batch: HashMap<&'a str, &'a str>,
        contents: HashSet<(&'a str, &'a str)>,
    }
    let mut requests: Vec<Planned<'_>> = Vec::new();
    let mut open_from = 0;
    for &index in indices {
        let key = items[index].item.key();
        let fits = |r: &Planned<'_>| {
            r.indices.len() < chunk
                && r.course_of_batch
                    .get(key.batch().as_str())
                    .is_none_or(|course| *course == key.course())
                && !r.contents.contains(&(key.batch(), key.content()))
        };
        let slot = requests[open_from..]
            .iter()
            .position(fits)
            .map(|p| p + open_from);
        let request = match slot {
            Some(i) => &mut requests[i],
            None => {
                requests.push(Planned {
                    indices: Vec::new(),
                    course_of_batch: HashMap::new(),
                    contents: HashSet::new(),
                });
                let last = requests.len() - 1;
                &mut requests[last]
            }
        };
        request.indices.push(index);
        request.course_of_batch.insert(key.batch(), key.course());
        request.contents.insert((key.batch(), key.content()));
        // Full requests are never looked at again.
        while requests
            .get(open_from)
            .is_some_and(|r| r.indices.len() >= chunk)
        {
            open_from += 1;
        }
    }
    requests.into_iter().map(|r| r.indices).collect()
}

/// One learner's bulk push: every planned request, each bisected on 400, then a second round
/// for the first writes Sunbird stored lower. Ends with one outcome per item, never
/// [`ItemOutcome::HeldLower`]: an item whose second round fails, or cannot start because the
/// call stopped, stays pending with that cause, so the sync engine does not push it again
/// within the same sync.
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
/// // A first write with status 1 is stored with progress 0: it is sent a second time.
/// assert_eq!((report.requests, push.tally().second_rounds), (2, 1));
/// assert_eq!(report.outcomes[items[0].item.key()], ItemOutcome::Acknowledged);
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Debug)]
pub struct UpdatePush<'a> {
    config: &'a SunbirdConfig,
    user: &'a UserId,
    items: &'a [Outgoing],
    /// The items of the second round: sent again, with what the server now holds.
    resent: HashMap<usize, Outgoing>,
    second_round: bool,
    traffic: Traffic,
    outcomes: Vec<Option<ItemOutcome>>,
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
            resent: HashMap::new(),
            second_round: false,
            traffic: Traffic::new(config, now),
            outcomes: vec![None; items.len()],
            planned: plan_requests(items, &all, config.chunk).into_iter(),
            halves: Vec::new(),
            current: None,
            done: 0,
            progress: None,
            tally: Tally::default(),
        }
    }

    /// What is sent for item `i`: in the second round, with what the server now holds.
    fn sent(&self, i: usize) -> &Outgoing {
        self.resent.get(&i).unwrap_or(&self.items[i])
    }

    fn set(&mut self, i: usize, outcome: ItemOutcome) {
        self.outcomes[i] = Some(outcome);
    }

    /// Applies the meaning of one request's answer to its items.
    fn decide(&mut self, indices: Vec<usize>, answer: UpdateAnswer) {
        let answered_before = self.outcomes.iter().filter(|o| o.is_some()).count();
        match answer {
            UpdateAnswer::Items(answers) => {
                for (&i, outcome) in indices.iter().zip(answers) {
                    self.set(i, outcome);
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
        let answered = self.outcomes.iter().filter(|o| o.is_some()).count();
        self.done += answered - answered_before;
        self.progress = Some((self.done, self.items.len()));
    }

    /// Starts the second round when first writes came back lower than sent: Sunbird stores
    /// progress 0 for a new row with status 1, and a second write keeps the max.
    fn start_second_round(&mut self) -> bool {
        for (i, (out, outcome)) in self.items.iter().zip(&self.outcomes).enumerate() {
            if let (None, Some(ItemOutcome::HeldLower { held })) = (&out.server, outcome) {
                let again = Outgoing {
                    item: out.item.clone(),
                    server: Some(*held),
                };
                self.resent.insert(i, again);
            }
        }
        if self.resent.is_empty() {
            return false;
        }
        self.tally.second_rounds += 1;
        let mut indices: Vec<usize> = self.resent.keys().copied().collect();
        indices.sort_unstable();
        self.planned = plan_requests(self.items, &indices, self.config.chunk).into_iter();
        true
    }

    /// The call stopped (unreachable, or out of time) before the second round: its items
    /// stay pending with that cause, like every other item not written as sent. Reported
    /// `HeldLower`, they would make the sync engine push them again at once, past the
    /// call's deadline and after the service proved unreachable.
    fn forgo_second_round(&mut self, cause: &RetryCause) {
        for outcome in &mut self.outcomes {
            if matches!(outcome, Some(ItemOutcome::HeldLower { .. })) {
                *outcome = Some(ItemOutcome::Retry {
                    cause: cause.clone(),
                });
            }
        }
    }

    fn report(&mut self) -> PushReport {
        PushReport {
            outcomes: self
                .items
                .iter()
                .zip(std::mem::take(&mut self.outcomes))
                .map(|(out, o)| {
                    let outcome = o.unwrap_or(ItemOutcome::Retry {
                        cause: RetryCause::NotInResult,
                    });
                    (out.item.key().clone(), outcome)
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
                                    indices.iter().map(|&i| self.sent(i)).collect();
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
                if !self.second_round {
                    self.second_round = true;
                    match self.traffic.stopped(now) {
                        None if self.start_second_round() => continue,
                        None => {}
                        Some(cause) => self.forgo_second_round(&cause),
                    }
                }
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
            let chunk: Vec<&ContentItem> = indices.iter().map(|&i| &self.sent(i).item).collect();
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

/// One read (content states of a course batch, or the enrollment list): one request with its
/// token refresh and retries. Ends with the body of a 2xx answer, or why there is none.
///
/// ```
/// use std::time::Instant;
/// use headway_sunbird::protocol::{Answer, Machine, Read, Step};
/// let config = headway_sunbird::SunbirdConfig::new("http://127.0.0.1:9000");
/// let now = Instant::now();
/// let (user, course, batch) = ("u1".try_into()?, "do_course".try_into()?, "b1".try_into()?);
/// let mut read = Read::states(&config, &user, &course, &batch, now);
/// let Step::Send(_) = read.poll(now) else { panic!() };
/// read.answer(now, Answer::Answered { status: 200, body: br#"{"result":{"contentList":[]}}"#.to_vec() });
/// assert!(matches!(read.poll(now), Step::Done(Ok(body)) if body.starts_with(b"{")));
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Debug)]
pub struct Read<'a> {
    config: &'a SunbirdConfig,
    traffic: Traffic,
    attempts: Attempts,
    tally: Tally,
}

impl<'a> Read<'a> {
    /// A read of `user`'s content states in one course batch.
    pub fn states(
        config: &'a SunbirdConfig,
        user: &UserId,
        course: &CourseId,
        batch: &BatchId,
        now: Instant,
    ) -> Read<'a> {
        // Serializing a `serde_json::Value` to bytes cannot fail.
        let body = serde_json::to_vec(&wire::read_body(user, course, batch)).unwrap_or_default();
        Read::new(
            config,
            Method::Post,
            "content/state/read".into(),
            Some(body),
            now,
        )
    }

    /// A read of `user`'s enrollment list: the SDK's query, plus the leaf nodes the offline
    /// answer counts completions against.
    pub fn enrolled_courses(config: &'a SunbirdConfig, user: &UserId, now: Instant) -> Read<'a> {
        let path = format!(
            "user/enrollment/list/{}?orgdetails=orgName,email&fields=contentType,topic,name,channel,pkgVersion,primaryCategory,trackable,leafNodes,leafNodesCount&batchDetails=name,endDate,startDate,status,enrollmentType,createdBy,certificates",
            path_segment(user)
        );
        Read::new(config, Method::Get, path, None, now)
    }

    fn new(
        config: &'a SunbirdConfig,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
        now: Instant,
    ) -> Read<'a> {
        Read {
            config,
            traffic: Traffic::new(config, now),
            attempts: Attempts::new(config, method, path, body),
            tally: Tally::default(),
        }
    }
}

impl Machine for Read<'_> {
    type Output = Result<Vec<u8>, AdapterError>;

    fn poll(&mut self, now: Instant) -> Step<Self::Output> {
        match self.attempts.poll(now, self.config, &self.traffic) {
            Attempt::Send(request) => Step::Send(request),
            Attempt::Wait(pause) => Step::Wait(pause),
            Attempt::Finished(Err(cause)) => Step::Done(Err(AdapterError::Unavailable { cause })),
            Attempt::Finished(Ok((status, body))) => Step::Done(check_status(status, body)),
        }
    }

    fn answer(&mut self, now: Instant, answer: Answer) {
        self.attempts
            .answer(now, answer, self.config, &mut self.traffic, &mut self.tally);
    }

    fn tally(&self) -> Tally {
        self.tally
    }
}

/// The body of a 2xx answer; what any other status means.
fn check_status(status: u16, body: Vec<u8>) -> Result<Vec<u8>, AdapterError> {
    match status {
        200..=299 => Ok(body),
        401 | 403 => Err(AdapterError::Unavailable {
            cause: RetryCause::CredentialsRefused { status },
        }),
        _ => Err(AdapterError::Refused {
            status,
            reason: wire::error_reason(&body).unwrap_or_else(|| format!("HTTP {status}")),
        }),
    }
}

/// Percent-encodes a value for one URL path segment (RFC 3986 unreserved characters stay).
fn path_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use headway::{ContentKey, ContentState, Progress, Status};

    fn out(course: &str, batch: &str, content: &str) -> Outgoing {
        Outgoing {
            item: ContentItem::new(
                ContentKey::new("u", course, batch, content).unwrap(),
                ContentState::default(),
            ),
            server: None,
        }
    }

    /// `n` first writes `do_0`.. of course `c`, batch `b`.
    fn items(n: usize) -> Vec<Outgoing> {
        (0..n).map(|i| out("c", "b", &format!("do_{i}"))).collect()
    }

    /// Pushes learner `u`'s `items` under `config` to the end, answering each request with
    /// `answer` (given the request); returns the report, the requests sent and the tally.
    fn run(
        config: &SunbirdConfig,
        items: &[Outgoing],
        mut answer: impl FnMut(&Request) -> Answer,
    ) -> (PushReport, Vec<Request>, Tally) {
        let mut now = Instant::now();
        let user = UserId::new("u").unwrap();
        let mut push = UpdatePush::new(config, &user, items, now);
        let mut sent = Vec::new();
        loop {
            match push.poll(now) {
                Step::Send(request) => {
                    let a = answer(&request);
                    sent.push(request);
                    push.answer(now, a);
                }
                Step::Wait(pause) => now += pause,
                Step::Done(report) => return (report, sent, push.tally()),
            }
        }
    }

    fn contents(request: &Request) -> Vec<String> {
        let body: serde_json::Value =
            serde_json::from_slice(request.body.as_deref().unwrap()).unwrap();
        body["request"]["contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contentId"].as_str().unwrap().to_string())
            .collect()
    }

    fn success(ids: &[String]) -> Answer {
        let result: serde_json::Map<String, serde_json::Value> = ids
            .iter()
            .map(|id| (id.clone(), serde_json::json!("SUCCESS")))
            .collect();
        Answer::Answered {
            status: 200,
            body: serde_json::to_vec(&serde_json::json!({ "result": result })).unwrap(),
        }
    }

    #[test]
    fn user_ids_are_percent_encoded_in_the_list_path() {
        assert_eq!(path_segment("95e4942d-cbe8"), "95e4942d-cbe8");
        assert_eq!(path_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }

    #[test]
    fn requests_hold_at_most_chunk_items_and_one_course_per_batch() {
        let mut items: Vec<Outgoing> = (0..250)
            .map(|i| out("c1", "b1", &format!("k{i}")))
            .collect();
        items.push(out("c2", "b1", "k0")); // same batch under another course: another request
        let all: Vec<usize> = (0..items.len()).collect();
        let plan = plan_requests(&items, &all, 100);
        assert_eq!(
            plan.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50, 1]
        );
        assert_eq!(plan[3], vec![250]);
        for request in &plan {
            let courses: std::collections::HashSet<&str> = request
                .iter()
                .map(|&i| items[i].item.key().course().as_str())
                .collect();
            assert_eq!(
                courses.len(),
                1,
                "a request mixed two courses for one batch"
            );
        }
    }

    #[test]
    fn a_400_is_bisected_down_to_the_one_refused_item() {
        let items = items(8);
        let config = SunbirdConfig::new("http://sim");
        let (report, sent, tally) = run(&config, &items, |request| {
            let ids = contents(request);
            if ids.iter().any(|id| id == "do_5") {
                Answer::Answered {
                    status: 400,
                    body: br#"{"params":{"err":"DATE_FORMAT_ERRROR"}}"#.to_vec(),
                }
            } else {
                success(&ids)
            }
        });
        assert!(
            matches!(&report.outcomes[items[5].item.key()], ItemOutcome::Rejected { reason } if reason == "DATE_FORMAT_ERRROR")
        );
        let acknowledged = report
            .outcomes
            .values()
            .filter(|o| o.is_acknowledged())
            .count();
        assert_eq!(acknowledged, 7);
        assert_eq!(tally.bisections, 3);
        assert_eq!(report.requests, sent.len());
        assert_eq!(
            sent.len(),
            7,
            "1 + 2 + 2 + 2 requests for 8 items and one poison"
        );
    }

    #[test]
    fn a_refused_token_is_refreshed_once_then_the_items_are_unauthorized() {
        let items = [out("c", "b", "do_1")];
        let config = SunbirdConfig::new("http://sim");
        let (report, sent, tally) = run(&config, &items, |_| Answer::Answered {
            status: 401,
            body: Vec::new(),
        });
        assert_eq!(
            sent.iter().map(|r| r.token).collect::<Vec<_>>(),
            vec![TokenUse::Current, TokenUse::Refreshed]
        );
        assert_eq!(
            report.outcomes.into_values().collect::<Vec<_>>(),
            vec![ItemOutcome::Retry {
                cause: RetryCause::CredentialsRefused { status: 401 }
            }]
        );
        assert_eq!(tally.token_refreshes, 1);
    }

    #[test]
    fn a_token_refused_after_its_refresh_ends_the_push_and_everything_stays_pending() {
        let items = items(250);
        let config = SunbirdConfig::new("http://sim");
        let (report, sent, _) = run(&config, &items, |_| Answer::Answered {
            status: 403,
            body: Vec::new(),
        });
        assert_eq!(
            sent.len(),
            2,
            "one request and its retry with a fresh token"
        );
        assert!(report.outcomes.values().all(|o| o
            == &ItemOutcome::Retry {
                cause: RetryCause::CredentialsRefused { status: 403 }
            }));
    }

    #[test]
    fn an_unreachable_service_ends_the_push_after_one_request_and_everything_stays_pending() {
        let items = items(250);
        let config = SunbirdConfig::new("http://sim");
        let (report, sent, _) = run(&config, &items, |_| {
            Answer::Failed(Error::CannotConnect {
                address: "http://sim".into(),
            })
        });
        assert_eq!(sent.len(), 1);
        assert!(report.outcomes.values().all(|o| matches!(
            o,
            ItemOutcome::Retry { cause: RetryCause::Network { detail } } if detail == "cannot connect to http://sim"
        )));
    }

    #[test]
    fn server_errors_are_retried_with_back_off_up_to_the_attempts() {
        let items = [out("c", "b", "do_1")];
        let config = SunbirdConfig::new("http://sim").attempts(3);
        let (report, sent, _) = run(&config, &items, |_| Answer::Answered {
            status: 503,
            body: Vec::new(),
        });
        assert_eq!(sent.len(), 3);
        assert_eq!(
            report.outcomes.into_values().collect::<Vec<_>>(),
            vec![ItemOutcome::Retry {
                cause: RetryCause::Server { status: 503 }
            }]
        );
    }

    fn first_write_at_60() -> [Outgoing; 1] {
        let watching =
            ContentState::new(Status::InProgress, Progress::new(60).unwrap(), None, None);
        [Outgoing {
            item: ContentItem::new(ContentKey::new("u", "c", "b", "do_1").unwrap(), watching),
            server: None,
        }]
    }

    /// A second round that fails leaves its items retrying with the real cause, not
    /// `HeldLower`: the sync engine pushes `HeldLower` items again at once, which after a
    /// timeout would send past the deadline to an unreachable service, and after 5xx would
    /// double the attempts.
    #[test]
    fn a_second_round_that_times_out_leaves_the_item_retrying_not_held_lower() {
        let items = first_write_at_60();
        let config = SunbirdConfig::new("http://sim");
        let mut first = true;
        let (report, sent, tally) = run(&config, &items, |request| {
            if std::mem::take(&mut first) {
                success(&contents(request))
            } else {
                Answer::Failed(Error::TimedOut)
            }
        });
        assert_eq!(sent.len(), 2);
        assert_eq!(
            report.outcomes.into_values().collect::<Vec<_>>(),
            vec![ItemOutcome::Retry {
                cause: RetryCause::Timeout
            }]
        );
        assert_eq!(tally.second_rounds, 1);
    }

    #[test]
    fn a_second_round_refused_with_5xx_is_tried_attempts_times_and_reports_the_server_error() {
        let items = first_write_at_60();
        let config = SunbirdConfig::new("http://sim").attempts(3);
        let mut first = true;
        let (report, sent, _) = run(&config, &items, |request| {
            if std::mem::take(&mut first) {
                success(&contents(request))
            } else {
                Answer::Answered {
                    status: 503,
                    body: Vec::new(),
                }
            }
        });
        assert_eq!(sent.len(), 1 + 3);
        assert_eq!(
            report.outcomes.into_values().collect::<Vec<_>>(),
            vec![ItemOutcome::Retry {
                cause: RetryCause::Server { status: 503 }
            }]
        );
    }

    #[test]
    fn a_push_out_of_time_before_its_second_round_reports_no_item_held_lower() {
        let items = first_write_at_60();
        let config = SunbirdConfig::new("http://sim").deadline(Duration::from_secs(2));
        let start = Instant::now();
        let user = UserId::new("u").unwrap();
        let mut push = UpdatePush::new(&config, &user, &items, start);
        let Step::Send(request) = push.poll(start) else {
            panic!("nothing sent")
        };
        // The answer arrives after the deadline: no second round may start.
        let late = start + Duration::from_secs(3);
        push.answer(late, success(&contents(&request)));
        let Step::Done(report) = push.poll(late) else {
            panic!("a request after the deadline")
        };
        assert_eq!(
            report.outcomes.into_values().collect::<Vec<_>>(),
            vec![ItemOutcome::Retry {
                cause: RetryCause::Timeout
            }]
        );
        assert_eq!(push.tally().second_rounds, 0);
    }
}
