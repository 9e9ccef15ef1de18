//! The Sunbird client without IO: which request to send next, and what each answer means.
//!
//! A push or a read is a pure state machine (samod's shape): its inputs are answers and the
//! time (`now`), its outputs are requests to send, pauses, and a final outcome. It plans the
//! bulk requests (at most `chunk` items, one course per batch, one item per (batch,
//! content)), reads every answer item by item, bisects a chunk refused with 400, asks for a
//! fresh token once after a 401/403, retries 429/5xx and broken connections with back-off,
//! stops at once when the service cannot be reached
//! ([`WhenUnreachable::StopAtOnce`](crate::WhenUnreachable::StopAtOnce)), and keeps one
//! deadline per call. A read ends with typed values, its answer checked for another learner's
//! rows once. A first write that Sunbird stored lower than sent (progress 0 for status 1) is
//! reported [`ItemOutcome::HeldLower`](headway::ItemOutcome::HeldLower): the sync engine owns
//! the second round that sends it again. No socket, clock, randomness or task is touched here:
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

use std::time::{Duration, Instant};

use crate::error::Error;

mod attempts;
mod plan;
mod push;
mod read;
#[cfg(test)]
mod tests;

pub use push::UpdatePush;
pub use read::Read;

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
    /// How often this call bisected and refreshed the token so far.
    fn tally(&self) -> Tally;
}

/// How often the client's recovery paths ran in one call: what the simulation counts.
///
/// ```
/// let tally = headway_sunbird::protocol::Tally::default();
/// assert_eq!(tally.bisections + tally.token_refreshes, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Chunks refused with 400 and split in two.
    pub bisections: usize,
    /// Requests sent again with a fresh token after a 401/403.
    pub token_refreshes: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.bisections += other.bisections;
        self.token_refreshes += other.token_refreshes;
    }
}
