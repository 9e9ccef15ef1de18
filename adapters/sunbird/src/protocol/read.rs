//! One read: a course batch's content states, or the enrolment list, ending with typed values.

use std::time::Instant;

use headway::{AdapterError, BatchId, ContentItem, CourseId, EnrolledCourse, RetryCause, UserId};

use super::attempts::{Attempt, Attempts, Traffic};
use super::plan::enrolment_list_path;
use super::{Answer, Machine, Method, Step, Tally};
use crate::config::SunbirdConfig;
use crate::wire;

/// How a 2xx answer's body becomes the read's values, for the learner asked for.
type Parse<T> = fn(&UserId, &[u8]) -> Result<Vec<T>, AdapterError>;

/// One read (content states of a course batch, or the enrollment list): one request with its
/// token refresh and retries. Ends with what the answer holds, parsed and checked once: an
/// answer naming another learner anywhere is refused whole ([`AdapterError::WrongLearner`],
/// issue 17), and a body that cannot be read leaves nothing read.
///
/// ```
/// use std::time::Instant;
/// use headway_sunbird::protocol::{Answer, Machine, Read, Step};
/// let config = headway_sunbird::SunbirdConfig::new("http://127.0.0.1:9000");
/// let now = Instant::now();
/// let (user, course, batch) = ("u1".try_into()?, "do_course".try_into()?, "b1".try_into()?);
/// let mut read = Read::states(&config, &user, &course, &batch, now);
/// let Step::Send(_) = read.poll(now) else { panic!() };
/// let body = br#"{"result":{"contentList":[
///     {"contentId":"do_1","courseId":"do_course","batchId":"b1","status":2,"progress":100}
/// ]}}"#;
/// read.answer(now, Answer::Answered { status: 200, body: body.to_vec() });
/// let Step::Done(Ok(items)) = read.poll(now) else { panic!() };
/// assert_eq!(items[0].key().content().as_str(), "do_1");
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Debug)]
pub struct Read<'a, T> {
    config: &'a SunbirdConfig,
    user: UserId,
    traffic: Traffic,
    attempts: Attempts,
    tally: Tally,
    parse: Parse<T>,
}

impl<'a> Read<'a, ContentItem> {
    /// A read of `user`'s content states in one course batch.
    pub fn states(
        config: &'a SunbirdConfig,
        user: &UserId,
        course: &CourseId,
        batch: &BatchId,
        now: Instant,
    ) -> Read<'a, ContentItem> {
        // Serializing a `serde_json::Value` to bytes cannot fail.
        let body = serde_json::to_vec(&wire::read_body(user, course, batch)).unwrap_or_default();
        let path = "content/state/read".to_string();
        Read::new(config, user, (Method::Post, path, Some(body)), states, now)
    }
}

impl<'a> Read<'a, EnrolledCourse> {
    /// A read of `user`'s enrollment list: the SDK's query, plus the leaf nodes the offline
    /// answer counts completions against. Each course's leaf list is kept once, in
    /// `leaf_nodes` (not again in `fields`).
    pub fn enrolled_courses(
        config: &'a SunbirdConfig,
        user: &UserId,
        now: Instant,
    ) -> Read<'a, EnrolledCourse> {
        let request = (Method::Get, enrolment_list_path(user), None);
        Read::new(config, user, request, enrolled_courses, now)
    }
}

impl<'a, T> Read<'a, T> {
    fn new(
        config: &'a SunbirdConfig,
        user: &UserId,
        (method, path, body): (Method, String, Option<Vec<u8>>),
        parse: Parse<T>,
        now: Instant,
    ) -> Read<'a, T> {
        Read {
            config,
            user: user.clone(),
            traffic: Traffic::new(config, now),
            attempts: Attempts::new(config, method, path, body),
            tally: Tally::default(),
            parse,
        }
    }
}

impl<T> Machine for Read<'_, T> {
    type Output = Result<Vec<T>, AdapterError>;

    fn poll(&mut self, now: Instant) -> Step<Self::Output> {
        match self.attempts.poll(now, self.config, &self.traffic) {
            Attempt::Send(request) => Step::Send(request),
            Attempt::Wait(pause) => Step::Wait(pause),
            Attempt::Finished(Err(cause)) => Step::Done(Err(AdapterError::Unavailable { cause })),
            Attempt::Finished(Ok((status, body))) => Step::Done(
                check_status(status, &body).and_then(|()| (self.parse)(&self.user, &body)),
            ),
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

/// Whether the answer is a 2xx; what any other status means.
fn check_status(status: u16, body: &[u8]) -> Result<(), AdapterError> {
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(AdapterError::Unavailable {
            cause: RetryCause::CredentialsRefused { status },
        }),
        _ => Err(AdapterError::Refused {
            status,
            reason: wire::error_reason(body).unwrap_or_else(|| format!("HTTP {status}")),
        }),
    }
}

/// A body that cannot be read: nothing was read, the call may be tried again.
fn unparsable(detail: String) -> AdapterError {
    AdapterError::Unavailable {
        cause: RetryCause::Unparsable { detail },
    }
}

/// The content states of a read. A row naming anyone else, even as `42` or `null`: the token
/// belongs to someone else (issue 17). This one check of the raw rows is the adapter's only
/// identity check of a read.
fn states(user: &UserId, body: &[u8]) -> Result<Vec<ContentItem>, AdapterError> {
    if let Some(answered) = wire::other_learner_in_read(user, body) {
        return Err(AdapterError::WrongLearner {
            asked: user.to_string(),
            answered,
        });
    }
    wire::parse_read(user, body).map_err(unparsable)
}

/// The enrolled courses of a list. An entry naming anyone else, even as `42` or `null`, refuses
/// the whole list (issue 17).
fn enrolled_courses(user: &UserId, body: &[u8]) -> Result<Vec<EnrolledCourse>, AdapterError> {
    if let Some(answered) = wire::other_learner_in_list(user, body) {
        return Err(AdapterError::WrongLearner {
            asked: user.to_string(),
            answered,
        });
    }
    wire::parse_enrollment_list(body)
        .map(wire::for_the_core)
        .map_err(unparsable)
}
