//! What the app tells headway: one validated change of a learner's progress.

use crate::content_state::{ContentKey, ContentState, Progress, Status};
use crate::error::Result;
use crate::timestamp::Timestamp;

/// One progress change reported by the app: which content, the new status and progress, and
/// when the learner consumed it. Once a `ProgressUpdate` exists it is valid: ids, status,
/// progress and time were checked when it was built.
///
/// ```
/// use headway::{ContentKey, ProgressUpdate, Status, Timestamp};
/// let key = ContentKey::new("learner-1", "do_course", "0130", "do_1")?;
/// let at = Timestamp::parse_rfc3339("2024-05-01T10:15:30.123Z")?;
/// let update = ProgressUpdate::new(key, Status::Completed, 100)?.consumed_at(at)?;
/// assert_eq!(update.state().last_completed_time(), Some(at));
/// assert!(ProgressUpdate::new(update.key().clone(), Status::InProgress, 101).is_err());
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressUpdate {
    key: ContentKey,
    state: ContentState,
}

impl ProgressUpdate {
    /// An update consumed now. `progress` must be in 0..=100; a completed status records
    /// progress 100 whatever was given.
    pub fn new(key: ContentKey, status: Status, progress: i64) -> Result<ProgressUpdate> {
        let progress = Progress::new(progress)?;
        Ok(ProgressUpdate::with_time(
            key,
            status,
            progress,
            Timestamp::now(),
        ))
    }

    /// Sets when the learner consumed the content, refusing a time more than a day after the
    /// system clock's now.
    pub fn consumed_at(self, at: Timestamp) -> Result<ProgressUpdate> {
        self.consumed_at_checked(at, Timestamp::now())
    }

    /// Like [`ProgressUpdate::consumed_at`], with the clock given: for deterministic tests
    /// and simulations.
    ///
    /// ```
    /// use headway::{ContentKey, ProgressUpdate, Status, Timestamp};
    /// let key = ContentKey::new("u", "c", "b", "k")?;
    /// let now = Timestamp::from_millis(1_714_558_530_123)?;
    /// let later = Timestamp::from_millis(now.as_millis() + 2 * 86_400_000)?;
    /// let update = ProgressUpdate::new(key, Status::InProgress, 10)?;
    /// assert!(update.clone().consumed_at_checked(now, now).is_ok());
    /// assert!(update.consumed_at_checked(later, now).is_err());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn consumed_at_checked(self, at: Timestamp, now: Timestamp) -> Result<ProgressUpdate> {
        let at = at.not_after_tomorrow(now)?;
        Ok(ProgressUpdate::with_time(
            self.key,
            self.state.status(),
            self.state.progress(),
            at,
        ))
    }

    /// An update that reports a whole state, both times included: what a bulk import of
    /// exported items uses, so an item round-trips exactly. Times more than a day after the
    /// system clock's now are refused; a completed status records progress 100.
    ///
    /// ```
    /// use headway::{ContentKey, ContentState, Progress, ProgressUpdate, Status, Timestamp};
    /// let done = Timestamp::parse_rfc3339("2024-05-01T10:15:30Z")?;
    /// let seen = Timestamp::parse_rfc3339("2024-05-02T08:00:00Z")?;
    /// let state = ContentState::new(Status::Completed, Progress::new(100)?, Some(seen), Some(done));
    /// let update = ProgressUpdate::from_state(ContentKey::new("u", "c", "b", "k")?, state)?;
    /// assert_eq!(update.state(), &state);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn from_state(key: ContentKey, state: ContentState) -> Result<ProgressUpdate> {
        let now = Timestamp::now();
        for time in [state.last_access_time(), state.last_completed_time()]
            .into_iter()
            .flatten()
        {
            time.not_after_tomorrow(now)?;
        }
        Ok(ProgressUpdate {
            key,
            state: ContentState::new(
                state.status(),
                state.progress(),
                state.last_access_time(),
                state.last_completed_time(),
            ),
        })
    }

    fn with_time(key: ContentKey, status: Status, progress: Progress, at: Timestamp) -> Self {
        let completed = (status == Status::Completed).then_some(at);
        ProgressUpdate {
            key,
            state: ContentState::new(status, progress, Some(at), completed),
        }
    }

    /// Which content item changed.
    pub fn key(&self) -> &ContentKey {
        &self.key
    }

    /// The state this update reports.
    pub fn state(&self) -> &ContentState {
        &self.state
    }
}
