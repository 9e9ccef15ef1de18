//! The online refresh of enrolled courses: sync first (design note, comment 3), then read the
//! enrollment list and each listed course batch's content states through the [`Adapter`], have
//! the store merge them in and cache the list, and answer with local progress merged in. When
//! the server cannot be reached, the cached list answers. The store's work runs off the async
//! executor.

use crate::adapter::{Adapter, AdapterError};
use crate::course::EnrolledCourse;
use crate::error::Result;
use crate::id::UserId;
use crate::store::Store;
use crate::sync::SyncOptions;
use crate::sync_report::SyncReport;
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
    /// The sync that ran first.
    pub sync: Option<SyncReport>,
}

impl Store {
    /// The online refresh of enrolled courses: first sync what is pending, then fetch the
    /// enrollment list, then read the server's content states of each listed course batch and
    /// merge them in (this is how another device's progress arrives), cache the list, and
    /// answer with local progress merged in. If the server cannot be reached or fails, the
    /// answer comes from the cache ([`CoursesSource::Cache`]); nothing pending is lost either
    /// way.
    pub async fn refresh_courses(
        &self,
        user: &UserId,
        adapter: &dyn Adapter,
        options: &SyncOptions,
    ) -> Result<CoursesAnswer> {
        let sync = self.sync(user, adapter, options).await?;
        if sync.server_failed() {
            let cause = sync
                .retrying
                .first()
                .map_or_else(|| "sync failed".to_string(), |r| r.cause.to_string());
            return self.cached_answer(user, cause, sync).await;
        }
        let list = match adapter.enrolled_courses(user).await {
            Ok(list) => list,
            Err(e) => return self.cached_answer(user, e.to_string(), sync).await,
        };
        for course in &list {
            match adapter
                .read_states(user, &course.course_id, &course.batch_id)
                .await
            {
                Ok(states) => {
                    self.off_executor(move |store| store.merge_server_states(&states))
                        .await?;
                }
                Err(error) => {
                    tracing::warn!(%error, course = %course.course_id, "cannot read the server's content states");
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
                store.cache_courses_at(&owner, &list, now)?;
                store.courses(&owner)
            })
            .await?;
        Ok(CoursesAnswer {
            courses,
            source: CoursesSource::Server,
            sync: Some(sync),
        })
    }

    /// The answer from the cached list, when the server was not used, and why.
    async fn cached_answer(
        &self,
        user: &UserId,
        cause: String,
        sync: SyncReport,
    ) -> Result<CoursesAnswer> {
        let owner = user.clone();
        let courses = self
            .off_executor(move |store| store.courses(&owner))
            .await?;
        Ok(CoursesAnswer {
            courses,
            source: CoursesSource::Cache { cause },
            sync: Some(sync),
        })
    }
}
