//! The online refresh of enrolled courses: read the enrollment list (which names whom the
//! token belongs to: an answer for another learner stops the refresh before anything is sent,
//! issue 17), sync (design note, comment 3), then read each listed course batch's content
//! states through the [`Adapter`], have
//! the store merge them in and cache the list, and answer with local progress merged in. When
//! the server cannot be reached, the cached list answers. The store's work runs off the async
//! executor.

use crate::adapter::{Adapter, AdapterError, RetryCause};
use crate::course::EnrolledCourse;
use crate::error::{Error, Result};
use crate::id::{CourseId, UserId};
use crate::store::Store;
use crate::sync::SyncOptions;
use crate::sync_report::{SyncFailure, SyncReport};
use crate::timestamp::Timestamp;

/// Where an answer about enrolled courses came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoursesSource {
    /// The server answered just now; its list was cached.
    Server,
    /// The server could not be reached (or failed): the cached list, with local progress.
    Cache {
        /// Why the server was not used.
        cause: String,
    },
}

/// The answer of [`Store::refresh_courses`].
#[derive(Clone, Debug, PartialEq)]
pub struct CoursesAnswer {
    /// The enrolled courses with merged progress, in the server's order.
    pub courses: Vec<EnrolledCourse>,
    /// Where the list came from.
    pub source: CoursesSource,
    /// The sync that ran first; `None` when the server could not be reached (or did not
    /// answer in time) for the enrollment list, so no sync was tried.
    pub sync: Option<SyncReport>,
    /// The listed courses whose content states could not be read from the server, and why
    /// (a redirect, an answer over the size cap, a server error): they show what this device
    /// knows, and the app may say so. Empty when every read succeeded or the cache answered.
    pub unread: Vec<(CourseId, String)>,
}

impl Store {
    /// The online refresh of enrolled courses: first fetch the enrollment list (whose entries
    /// name the learner the token belongs to), then sync what is pending, then read the
    /// server's content states of each listed course batch (the read is consistent with the
    /// sync at once; the list lags it anyway, sunbird-api.md §4.4) and merge them in (this is how another device's progress arrives), cache the list, and
    /// answer with local progress merged in. If the server cannot be reached or fails, the
    /// answer comes from the cache ([`CoursesSource::Cache`]); nothing pending is lost either
    /// way. Two failures are not hidden behind the cache, and change nothing: an answer for
    /// another learner than `user` ([`Error::WrongLearner`]: the token belongs to someone
    /// else), refused credentials ([`Error::CredentialsRefused`]), and a sync whose every item
    /// the server dropped without a reason ([`Error::EveryItemDropped`]: what Sunbird does
    /// with another learner's token, whose list names nobody when that learner is enrolled
    /// nowhere).
    pub async fn refresh_courses(
        &self,
        user: &UserId,
        adapter: &dyn Adapter,
        options: &SyncOptions,
    ) -> Result<CoursesAnswer> {
        // The list first: its entries name whom the token belongs to, so a token of another
        // learner is caught before anything is sent with it (issue 17).
        let listed = adapter.enrolled_courses(user).await;
        if let Err(e) = &listed {
            refuse_outright(e)?;
            // A server that could not be reached or did not answer in time would make the
            // sync wait just as long: the cache answers after one timeout, not two.
            // A redirect or an answer past the size cap says the server is not the one it
            // should be, or misbehaves: nothing is sent to it either (issue 17).
            if let AdapterError::Unavailable { cause } = e {
                if cause.is_unreachable() {
                    return self.cached_answer(user, e.to_string(), None).await;
                }
            }
        }
        let sync = self.sync(user, adapter, options).await?;
        match sync.failure() {
            Some(SyncFailure::CredentialsRefused { status, .. }) => {
                return Err(Error::CredentialsRefused { status });
            }
            Some(failure @ SyncFailure::Unavailable { .. }) => {
                return self.cached_answer(user, failure.cause(), Some(sync)).await;
            }
            // Every item dropped without a reason: Sunbird does so with another learner's
            // token. The list of such a token names nobody, so this is the refresh's only
            // sign: cache nothing, merge nothing (issue 17).
            Some(SyncFailure::EveryItemDropped { sent }) => {
                return Err(Error::EveryItemDropped { sent });
            }
            None => {}
        }
        let list = match listed {
            Ok(list) => list,
            Err(e) => return self.cached_answer(user, e.to_string(), Some(sync)).await,
        };
        // Every read is checked before anything is merged: one answer naming another learner
        // leaves the store as it was (issue 17).
        let mut states = Vec::new();
        let mut unread = Vec::new();
        for course in &list {
            match adapter
                .read_states(user, &course.course_id, &course.batch_id)
                .await
            {
                Ok(read) => {
                    if let Some(e) = AdapterError::foreign_item(user, &read) {
                        refuse_outright(&e)?;
                    }
                    states.extend(read);
                }
                Err(error) => {
                    refuse_outright(&error)?;
                    tracing::warn!(%error, course = %course.course_id, "cannot read the server's content states");
                    unread.push((course.course_id.clone(), error.to_string()));
                    // Unreachable or timed out: the other courses would wait just as long.
                    if matches!(error, AdapterError::Unavailable { .. }) {
                        break;
                    }
                }
            }
        }
        let (owner, now) = (user.clone(), Timestamp::now());
        let courses = self
            .off_executor(move |store| {
                store.merge_server_states(&states)?;
                store.cache_courses_at(&owner, &list, now)?;
                store.courses(&owner)
            })
            .await?;
        Ok(CoursesAnswer {
            courses,
            source: CoursesSource::Server,
            sync: Some(sync),
            unread,
        })
    }

    /// The answer from the cached list, when the server was not used, and why.
    async fn cached_answer(
        &self,
        user: &UserId,
        cause: String,
        sync: Option<SyncReport>,
    ) -> Result<CoursesAnswer> {
        let owner = user.clone();
        let courses = self
            .off_executor(move |store| store.courses(&owner))
            .await?;
        Ok(CoursesAnswer {
            courses,
            source: CoursesSource::Cache { cause },
            sync,
            unread: Vec::new(),
        })
    }
}

/// The HTTP status of a refusal of the credentials.
fn refused_status(cause: &RetryCause) -> Option<u16> {
    match cause {
        RetryCause::CredentialsRefused { status } => Some(*status),
        _ => None,
    }
}

/// Fails the refresh for an adapter error that a cached answer must not hide: an answer for
/// another learner, or refused credentials (issue 17). Any other error lets the cache answer.
fn refuse_outright(error: &AdapterError) -> Result<()> {
    match error {
        AdapterError::WrongLearner { asked, answered } => Err(Error::WrongLearner {
            asked: asked.clone(),
            answered: answered.clone(),
        }),
        AdapterError::Unavailable { cause } => match refused_status(cause) {
            Some(status) => Err(Error::CredentialsRefused { status }),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}
