//! What a learner's progress on one content item is, and how two views of it join.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{BatchId, ContentId, CourseId, UserId};
use crate::timestamp::Timestamp;

/// Where a learner stands on a content item: 0 not started, 1 in progress, 2 completed.
/// Statuses are ordered, and a merge keeps the highest.
///
/// ```
/// use headway::Status;
/// assert_eq!(Status::try_from(2)?, Status::Completed);
/// assert!(Status::Completed > Status::InProgress);
/// assert!(Status::try_from(3).is_err());
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub enum Status {
    /// 0: the learner has not opened the content.
    #[default]
    NotStarted,
    /// 1: the learner opened the content but has not finished it.
    InProgress,
    /// 2: the learner finished the content.
    Completed,
}

impl Status {
    /// The number Sunbird uses for this status.
    ///
    /// ```
    /// assert_eq!(headway::Status::InProgress.code(), 1);
    /// ```
    pub fn code(self) -> u8 {
        match self {
            Status::NotStarted => 0,
            Status::InProgress => 1,
            Status::Completed => 2,
        }
    }
}

impl TryFrom<i64> for Status {
    type Error = Error;
    fn try_from(status: i64) -> Result<Status> {
        match status {
            0 => Ok(Status::NotStarted),
            1 => Ok(Status::InProgress),
            2 => Ok(Status::Completed),
            _ => Err(Error::StatusOutOfRange { status }),
        }
    }
}

impl From<Status> for i64 {
    fn from(status: Status) -> i64 {
        i64::from(status.code())
    }
}

/// How far through a content item the learner got, 0..=100 percent.
///
/// ```
/// use headway::Progress;
/// assert_eq!(Progress::new(40)?.get(), 40);
/// assert!(Progress::new(101).is_err());
/// assert!(Progress::new(-1).is_err());
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Progress(u8);

impl Progress {
    /// 100 percent.
    pub const COMPLETE: Progress = Progress(100);

    /// Accepts a percentage in 0..=100.
    pub fn new(percent: i64) -> Result<Progress> {
        let valid = u8::try_from(percent).ok().filter(|p| *p <= 100);
        valid
            .map(Progress)
            .ok_or(Error::ProgressOutOfRange { percent })
    }

    /// The percentage, 0..=100.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Progress {
    type Error = Error;
    fn try_from(percent: i64) -> Result<Progress> {
        Progress::new(percent)
    }
}

impl From<Progress> for i64 {
    fn from(progress: Progress) -> i64 {
        i64::from(progress.0)
    }
}

/// Which content item of which course, in which batch, for which learner: the identity of one
/// progress register, built from four validated ids.
///
/// ```
/// use headway::{BatchId, ContentId, ContentKey, CourseId, UserId};
/// let key = ContentKey::new("learner-1", "do_course", "0130", "do_1")?;
/// assert_eq!(key.content(), "do_1");
/// assert!(ContentKey::new("learner-1", "do_course", "", "do_1").is_err());
/// let user = UserId::new("learner-1")?;
/// let (course, batch) = (CourseId::new("do_course")?, BatchId::new("0130")?);
/// let same = ContentKey::from_ids(user, course, batch, ContentId::new("do_1")?);
/// assert_eq!(same, key);
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentKey {
    #[serde(rename = "userId")]
    user: UserId,
    #[serde(rename = "courseId")]
    course: CourseId,
    #[serde(rename = "batchId")]
    batch: BatchId,
    #[serde(rename = "contentId")]
    content: ContentId,
}

impl ContentKey {
    /// Validates the four ids of a content item.
    pub fn new(
        user: impl Into<String>,
        course: impl Into<String>,
        batch: impl Into<String>,
        content: impl Into<String>,
    ) -> Result<ContentKey> {
        Ok(ContentKey {
            user: UserId::new(user)?,
            course: CourseId::new(course)?,
            batch: BatchId::new(batch)?,
            content: ContentId::new(content)?,
        })
    }

    /// A key from four ids validated already.
    pub fn from_ids(
        user: UserId,
        course: CourseId,
        batch: BatchId,
        content: ContentId,
    ) -> ContentKey {
        ContentKey {
            user,
            course,
            batch,
            content,
        }
    }

    /// The learner (Sunbird `userId`).
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The course (Sunbird `courseId`).
    pub fn course(&self) -> &CourseId {
        &self.course
    }

    /// The batch of the course the learner is enrolled in (Sunbird `batchId`).
    pub fn batch(&self) -> &BatchId {
        &self.batch
    }

    /// The content item (Sunbird `contentId`).
    pub fn content(&self) -> &ContentId {
        &self.content
    }
}

/// Where a learner stands on one content item: the value of a max-wins register. Each field
/// only grows, and a completed content always has progress 100.
///
/// ```
/// use headway::{ContentState, Progress, Status};
/// let watching = ContentState::new(Status::InProgress, Progress::new(40)?, None, None);
/// let finished = ContentState::new(Status::Completed, Progress::new(0)?, None, None);
/// assert_eq!(finished.progress().get(), 100); // completed implies 100
/// let merged = watching.merge(&finished);
/// assert_eq!(merged, finished);
/// assert!(merged.covers(&watching) && merged.covers(&finished));
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentState {
    status: Status,
    progress: Progress,
    last_access_time: Option<Timestamp>,
    last_completed_time: Option<Timestamp>,
}

impl ContentState {
    /// A state from its fields; a completed status raises progress to 100.
    pub fn new(
        status: Status,
        progress: Progress,
        last_access_time: Option<Timestamp>,
        last_completed_time: Option<Timestamp>,
    ) -> ContentState {
        let progress = if status == Status::Completed {
            Progress::COMPLETE
        } else {
            progress
        };
        ContentState {
            status,
            progress,
            last_access_time,
            last_completed_time,
        }
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The progress; 100 whenever the status is completed.
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// When the learner last opened the content.
    pub fn last_access_time(&self) -> Option<Timestamp> {
        self.last_access_time
    }

    /// When the learner last completed the content.
    pub fn last_completed_time(&self) -> Option<Timestamp> {
        self.last_completed_time
    }

    /// The join of two states: every field is the max of both. The join is commutative,
    /// associative and idempotent, and the result covers both inputs, so replicas that
    /// exchange states in any order end up equal.
    pub fn merge(&self, other: &ContentState) -> ContentState {
        // The max of two normalized states is normalized: if either is completed, its progress
        // is already 100, which is the max.
        ContentState {
            status: self.status.max(other.status),
            progress: self.progress.max(other.progress),
            last_access_time: self.last_access_time.max(other.last_access_time),
            last_completed_time: self.last_completed_time.max(other.last_completed_time),
        }
    }

    /// This state with every time more than a day after `now` dropped, status and progress
    /// kept: how a state from outside this device's own `record` (the server's, a peer's, an
    /// imported line) is bounded before it touches the store. A consumption time cannot lie in
    /// the future, and one that did would freeze its register for good, since a register only
    /// goes up (issue 17). The day of slack is [`Timestamp::not_after_tomorrow`]'s.
    ///
    /// ```
    /// use headway::{ContentState, Progress, Status, Timestamp};
    /// let now = Timestamp::parse_rfc3339("2026-05-01T10:00:00Z")?;
    /// let seen = Timestamp::parse_rfc3339("2026-05-01T09:00:00Z")?;
    /// let far = Timestamp::parse_rfc3339("9999-01-01T00:00:00Z")?;
    /// let from_server = ContentState::new(Status::Completed, Progress::new(100)?, Some(far), Some(seen));
    /// let bounded = from_server.without_future_times(now);
    /// assert_eq!(bounded.last_access_time(), None);        // dropped
    /// assert_eq!(bounded.last_completed_time(), Some(seen)); // kept
    /// assert_eq!((bounded.status(), bounded.progress().get()), (Status::Completed, 100));
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn without_future_times(&self, now: Timestamp) -> ContentState {
        let bounded = |t: Option<Timestamp>| t.filter(|t| t.not_after_tomorrow(now).is_ok());
        ContentState {
            last_access_time: bounded(self.last_access_time),
            last_completed_time: bounded(self.last_completed_time),
            ..*self
        }
    }

    /// True when no field of `other` is above this state's: this state already holds
    /// everything `other` says.
    pub fn covers(&self, other: &ContentState) -> bool {
        self.merge(other) == *self
    }
}

/// One content item and where the learner stands on it.
///
/// ```
/// use headway::{ContentItem, ContentKey, ContentState};
/// let item = ContentItem::new(ContentKey::new("u", "c", "b", "k")?, ContentState::default());
/// assert_eq!(item.key().content(), "k");
/// assert_eq!(item.state().progress().get(), 0);
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContentItem {
    key: ContentKey,
    state: ContentState,
}

impl ContentItem {
    /// Pairs a key with a state.
    pub fn new(key: ContentKey, state: ContentState) -> ContentItem {
        ContentItem { key, state }
    }

    /// Which content item.
    pub fn key(&self) -> &ContentKey {
        &self.key
    }

    /// Where the learner stands on it.
    pub fn state(&self) -> &ContentState {
        &self.state
    }

    /// Splits the item into its key and state.
    pub fn into_parts(self) -> (ContentKey, ContentState) {
        (self.key, self.state)
    }
}
