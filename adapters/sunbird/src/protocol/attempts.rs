//! One request until it is answered for good, and the counters and deadline of one call.

use std::time::{Duration, Instant};

use headway::{Backoff, RetryCause};

use super::{Answer, Method, Request, Tally, TokenUse};
use crate::config::{SunbirdConfig, WhenUnreachable};
use crate::error::Error;

/// Counters and bounds of one push or read.
#[derive(Debug)]
pub(super) struct Traffic {
    pub(super) requests: usize,
    pub(super) bytes_sent: u64,
    pub(super) bytes_received: u64,
    /// No request starts after this.
    deadline: Instant,
    /// Set when the service proved unreachable and the call stops at once.
    halted: Option<RetryCause>,
}

impl Traffic {
    pub(super) fn new(config: &SunbirdConfig, now: Instant) -> Traffic {
        Traffic {
            requests: 0,
            bytes_sent: 0,
            bytes_received: 0,
            deadline: now + config.deadline,
            halted: None,
        }
    }

    /// Time left before the deadline.
    pub(super) fn left(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// Why no further request may start, if none may.
    pub(super) fn stopped(&self, now: Instant) -> Option<RetryCause> {
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
pub(super) struct Attempts {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    refreshed: bool,
    backoff: Backoff,
    wake: Option<Instant>,
    finished: Option<Result<(u16, Vec<u8>), RetryCause>>,
}

/// What [`Attempts::poll`] wants.
pub(super) enum Attempt {
    Send(Request),
    Wait(Duration),
    Finished(Result<(u16, Vec<u8>), RetryCause>),
}

impl Attempts {
    pub(super) fn new(
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

    pub(super) fn poll(
        &mut self,
        now: Instant,
        config: &SunbirdConfig,
        traffic: &Traffic,
    ) -> Attempt {
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
    pub(super) fn answer(
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
