//! The records and enums the app sees, and their conversions to and from the library's types.
//! Times are milliseconds since the Unix epoch (UTC).

use crate::error::HeadwayError;

/// Where a learner stands on a content item (or a course): 0 not started < 1 in progress <
/// 2 completed. It only goes up.
///
/// ```
/// assert!(headway_ffi::Status::Completed > headway_ffi::Status::InProgress);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, uniffi::Enum)]
pub enum Status {
    /// Not started (Sunbird's 0).
    NotStarted,
    /// In progress (Sunbird's 1).
    InProgress,
    /// Completed (Sunbird's 2); progress is then 100.
    Completed,
}

impl From<headway::Status> for Status {
    fn from(status: headway::Status) -> Status {
        match status {
            headway::Status::NotStarted => Status::NotStarted,
            headway::Status::InProgress => Status::InProgress,
            headway::Status::Completed => Status::Completed,
        }
    }
}

impl From<Status> for headway::Status {
    fn from(status: Status) -> headway::Status {
        match status {
            Status::NotStarted => headway::Status::NotStarted,
            Status::InProgress => headway::Status::InProgress,
            Status::Completed => headway::Status::Completed,
        }
    }
}

/// How durable a `record` is once it returns.
///
/// ```
/// let store = headway_ffi::Store::open_in_memory()?;
/// # let _ = (store, headway_ffi::Durability::ProcessCrash);
/// # Ok::<(), headway_ffi::HeadwayError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Enum)]
pub enum Durability {
    /// Survives the process being killed and the device losing power (every commit is
    /// fsynced). The default.
    #[default]
    PowerLoss,
    /// Survives the process being killed; a power loss may drop the last commits. Faster.
    ProcessCrash,
}

impl From<Durability> for headway::Durability {
    fn from(durability: Durability) -> headway::Durability {
        match durability {
            Durability::PowerLoss => headway::Durability::PowerLoss,
            Durability::ProcessCrash => headway::Durability::ProcessCrash,
        }
    }
}

/// One progress change the app reports. `consumed_at_ms` is when the learner consumed the
/// content (default: now); it may not be before 2000 or more than a day in the future.
///
/// ```
/// use headway_ffi::{ProgressUpdate, Status, Store};
/// let store = Store::open_in_memory()?;
/// let update = ProgressUpdate {
///     user_id: "learner-1".into(), course_id: "do_course".into(), batch_id: "0130".into(),
///     content_id: "do_video".into(), status: Status::Completed, progress: 100, consumed_at_ms: None,
/// };
/// assert!(store.record(update)?);
/// # Ok::<(), headway_ffi::HeadwayError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ProgressUpdate {
    /// The learner.
    pub user_id: String,
    /// The course.
    pub course_id: String,
    /// The batch the learner is enrolled in.
    pub batch_id: String,
    /// The content item.
    pub content_id: String,
    /// The new status.
    pub status: Status,
    /// The new progress, 0..=100 (100 whenever the status is completed).
    pub progress: u8,
    /// When the learner consumed the content, in ms since the Unix epoch; `None` means now.
    #[uniffi(default = None)]
    pub consumed_at_ms: Option<i64>,
}

impl TryFrom<ProgressUpdate> for headway::ProgressUpdate {
    type Error = HeadwayError;

    fn try_from(update: ProgressUpdate) -> Result<headway::ProgressUpdate, HeadwayError> {
        let key = headway::ContentKey::new(
            update.user_id,
            update.course_id,
            update.batch_id,
            update.content_id,
        )?;
        let mut built =
            headway::ProgressUpdate::new(key, update.status.into(), i64::from(update.progress))?;
        if let Some(ms) = update.consumed_at_ms {
            built = built.consumed_at(headway::Timestamp::from_millis(ms)?)?;
        }
        Ok(built)
    }
}

/// One content item and where the learner stands on it.
///
/// ```
/// use headway_ffi::{ProgressUpdate, Status, Store};
/// let store = Store::open_in_memory()?;
/// store.record(ProgressUpdate {
///     user_id: "u".into(), course_id: "c".into(), batch_id: "b".into(), content_id: "k".into(),
///     status: Status::InProgress, progress: 40, consumed_at_ms: None,
/// })?;
/// let item = &store.state("u".into(), None)?[0];
/// assert_eq!((item.status, item.progress), (Status::InProgress, 40));
/// # Ok::<(), headway_ffi::HeadwayError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ContentItem {
    /// The learner.
    pub user_id: String,
    /// The course.
    pub course_id: String,
    /// The batch.
    pub batch_id: String,
    /// The content item.
    pub content_id: String,
    /// The status.
    pub status: Status,
    /// The progress, 0..=100.
    pub progress: u8,
    /// When the learner last opened the content, in ms since the Unix epoch.
    pub last_access_time_ms: Option<i64>,
    /// When the learner last completed the content, in ms since the Unix epoch.
    pub last_completed_time_ms: Option<i64>,
}

impl ContentItem {
    pub(crate) fn new(key: &headway::ContentKey, state: &headway::ContentState) -> ContentItem {
        ContentItem {
            user_id: key.user().to_string(),
            course_id: key.course().to_string(),
            batch_id: key.batch().to_string(),
            content_id: key.content().to_string(),
            status: state.status().into(),
            progress: state.progress().get(),
            last_access_time_ms: state.last_access_time().map(headway::Timestamp::as_millis),
            last_completed_time_ms: state
                .last_completed_time()
                .map(headway::Timestamp::as_millis),
        }
    }
}

impl From<&headway::ContentItem> for ContentItem {
    fn from(item: &headway::ContentItem) -> ContentItem {
        ContentItem::new(item.key(), item.state())
    }
}

/// A course the learner is enrolled in, with progress merged from the server's list and the
/// device's completions. `progress` counts completed leaf nodes; `extra_json` holds every field
/// the server sent (a JSON object), so the app can show them.
///
/// ```
/// let store = headway_ffi::Store::open_in_memory()?;
/// assert!(store.courses("learner-1".into())?.is_empty()); // nothing cached yet
/// # Ok::<(), headway_ffi::HeadwayError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct EnrolledCourse {
    /// The course.
    pub course_id: String,
    /// The batch the learner is enrolled in.
    pub batch_id: String,
    /// Completed leaf nodes (contents) of the course.
    pub progress: u32,
    /// Leaf nodes of the course.
    pub leaf_nodes_count: u32,
    /// `progress * 100 / leaf_nodes_count`, 0..=100.
    pub completion_percentage: u32,
    /// The course's status, derived from `progress`.
    pub status: Status,
    /// Every field the server sent for this course, as a JSON object.
    pub extra_json: String,
}

impl From<&headway::EnrolledCourse> for EnrolledCourse {
    fn from(course: &headway::EnrolledCourse) -> EnrolledCourse {
        let status = headway::Status::try_from(i64::from(course.status))
            .unwrap_or(headway::Status::NotStarted);
        EnrolledCourse {
            course_id: course.course_id.to_string(),
            batch_id: course.batch_id.to_string(),
            progress: course.progress,
            leaf_nodes_count: course.leaf_nodes_count,
            completion_percentage: course.completion_percentage,
            status: status.into(),
            extra_json: serde_json::Value::Object(course.fields.clone()).to_string(),
        }
    }
}

/// An item the server refused for good: kept on the device, reported, and not sent again
/// until it changes or the app calls `resend_rejected`.
///
/// ```
/// let store = headway_ffi::Store::open_in_memory()?;
/// assert!(store.rejected("learner-1".into())?.is_empty());
/// # Ok::<(), headway_ffi::HeadwayError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RejectedItem {
    /// The refused item, at the state the server refused (it may have risen on the device
    /// since).
    pub item: ContentItem,
    /// Why the server refused it (`NOT_A_ON_GOING_BATCH`, `BATCH_NOT_EXISTS`, `NOT_IN_RESULT`, ...).
    pub reason: String,
}

/// What a sync did: distinct items sent, acknowledged and rejected, how many stay pending to
/// be retried, and how many HTTP requests it took (items travel in bulk, 100 per request).
///
/// ```
/// let report = headway_ffi::SyncReport { sent: 3, acknowledged: 3, rejected: vec![], retrying: 0, requests: 1 };
/// assert!(report.requests < report.sent);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Distinct items sent.
    pub sent: u32,
    /// Items the server now holds (this state or a higher one).
    pub acknowledged: u32,
    /// Items refused for good, with the reasons.
    pub rejected: Vec<RejectedItem>,
    /// Items that stay pending and are retried by the next sync.
    pub retrying: u32,
    /// HTTP requests made.
    pub requests: u32,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl SyncReport {
    pub(crate) fn new(report: &headway::SyncReport) -> SyncReport {
        let rejected = report
            .rejected
            .iter()
            .map(|r| RejectedItem {
                item: ContentItem::new(&r.key, &r.state),
                reason: r.reason.to_string(),
            })
            .collect();
        SyncReport {
            sent: count(report.sent),
            acknowledged: count(report.acknowledged),
            rejected,
            retrying: count(report.retrying.len()),
            requests: count(report.requests),
        }
    }
}

/// The course context the app keeps while the learner plays a course's contents, as Sunbird's
/// app does, plus the played content's mime type, which decides how its progress is derived
/// (videos and documents complete past the end page or 20% viewed; H5P and HTML at any
/// progress). `batch_status` 1 means ongoing: only then are events recorded.
///
/// ```
/// let context = headway_ffi::CourseContext {
///     user_id: "learner-1".into(), course_id: "do_course".into(), batch_id: "0130".into(),
///     batch_status: Some(1), mime_type: Some("video/mp4".into()),
/// };
/// # let _ = context;
/// ```
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CourseContext {
    /// The learner.
    pub user_id: String,
    /// The course being played.
    pub course_id: String,
    /// The batch the learner is enrolled in.
    pub batch_id: String,
    /// The batch's status: 1 ongoing; anything else (or none) records nothing.
    pub batch_status: Option<i64>,
    /// The played content's mime type (`video/mp4`, `application/pdf`, ...).
    #[uniffi(default = None)]
    pub mime_type: Option<String>,
}

/// The ids are checked here, at the boundary: a refused one is `InvalidInput`.
impl TryFrom<CourseContext> for headway_sunbird::CourseContext {
    type Error = headway::Error;
    fn try_from(context: CourseContext) -> Result<headway_sunbird::CourseContext, headway::Error> {
        Ok(headway_sunbird::CourseContext {
            user_id: context.user_id.try_into()?,
            course_id: context.course_id.try_into()?,
            batch_id: context.batch_id.try_into()?,
            batch_status: context.batch_status,
            mime_type: context.mime_type,
        })
    }
}

/// Something the app may react to instead of polling, delivered to its `EventListener`.
///
/// ```
/// use headway_ffi::Event;
/// let event = Event::CourseProgressChanged {
///     user_id: "u".into(), course_id: "c".into(), batch_id: "b".into(),
///     old_percentage: 25, new_percentage: 50,
/// };
/// # let _ = event;
/// ```
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Event {
    /// A content state went up (a local record, a server answer or another device);
    /// `before` is `None` for a content seen for the first time.
    ContentStateChanged {
        /// The item before.
        before: Option<ContentItem>,
        /// The item now; every field at least `before`'s.
        after: ContentItem,
    },
    /// A cached course's completion percentage moved.
    CourseProgressChanged {
        /// The learner.
        user_id: String,
        /// The course.
        course_id: String,
        /// The batch.
        batch_id: String,
        /// The percentage before.
        old_percentage: u32,
        /// The percentage now.
        new_percentage: u32,
    },
    /// A sync reached the server; the report says what became of each item.
    SyncFinished {
        /// What the sync did.
        report: SyncReport,
    },
    /// A sync could not reach the server; everything pending stays pending.
    SyncFailed {
        /// The learner.
        user_id: String,
        /// Why, for the first item that stays pending.
        cause: String,
        /// How many items stay pending.
        pending: u32,
    },
    /// The listener fell behind and the oldest `missed` events were dropped: re-read what it
    /// shows from the store.
    Lagged {
        /// How many events were dropped.
        missed: u32,
    },
}

impl Event {
    /// The facade's event for a library event, if the app is told about that kind.
    pub(crate) fn new(event: &headway::Event) -> Option<Event> {
        Some(match event {
            headway::Event::ContentStateChanged(change) => Event::ContentStateChanged {
                before: change.before.map(|b| ContentItem::new(&change.key, &b)),
                after: ContentItem::new(&change.key, &change.after),
            },
            headway::Event::CourseProgressChanged(change) => Event::CourseProgressChanged {
                user_id: change.user.to_string(),
                course_id: change.course.to_string(),
                batch_id: change.batch.to_string(),
                old_percentage: change.before,
                new_percentage: change.after,
            },
            headway::Event::SyncFinished(report) => Event::SyncFinished {
                report: SyncReport::new(report),
            },
            headway::Event::SyncFailed(failed) => Event::SyncFailed {
                user_id: failed.user.to_string(),
                cause: failed.cause.clone(),
                pending: count(failed.pending),
            },
            headway::Event::Lagged { missed } => Event::Lagged {
                missed: u32::try_from(*missed).unwrap_or(u32::MAX),
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_player_event_in_a_context_with_a_refused_id_is_invalid_input_and_records_nothing() {
        let store = crate::Store::open_in_memory().unwrap();
        let end = r#"{"eid":"END","context":{"pdata":{"pid":"sunbird.app.contentplayer"}},
            "object":{"id":"do_1"},"edata":{"summary":[{"progress":40}]}}"#;
        let context = |course_id: &str| CourseContext {
            user_id: "learner-1".into(),
            course_id: course_id.into(),
            batch_id: "0130".into(),
            batch_status: Some(1),
            mime_type: Some("application/pdf".into()),
        };
        let refused = store.record_player_event(end.into(), context(" do_course"));
        assert!(
            matches!(refused, Err(HeadwayError::InvalidInput { .. })),
            "{refused:?}"
        );
        assert!(store.pending("learner-1".into()).unwrap().is_empty());
        let taken = store.record_player_event(end.into(), context("do_course"));
        assert_eq!(taken.unwrap().map(|item| item.progress), Some(40));
    }

    // The Node package's review: a listener that fell behind was told nothing (the library's
    // `Lagged` was dropped here), so an app showed counts it had silently missed.
    #[test]
    fn a_listener_that_fell_behind_is_told_how_many_events_it_missed() {
        let event = Event::new(&headway::Event::Lagged { missed: 7 });
        assert_eq!(event, Some(Event::Lagged { missed: 7 }));
    }

    // Issue 18: the report's rejected item is the state the server refused, converted; the
    // facade no longer reads the store back (which showed the state of now, or a default).
    #[test]
    fn a_rejected_item_shows_the_state_that_was_refused_not_the_state_of_now() {
        let key = headway::ContentKey::new("learner-1", "do_course", "0130", "do_1").unwrap();
        let at_40 = headway::ContentState::new(
            headway::Status::InProgress,
            headway::Progress::new(40).unwrap(),
            None,
            None,
        );
        let report = headway::SyncReport {
            sent: 1,
            rejected: vec![headway::RejectedItem {
                key,
                state: at_40,
                reason: headway::RejectionReason::BatchNotOngoing {
                    text: "NOT_A_ON_GOING_BATCH".into(),
                },
            }],
            ..headway::SyncReport::default()
        };
        let converted = SyncReport::new(&report);
        assert_eq!(converted.rejected[0].item.progress, 40);
        assert_eq!(converted.rejected[0].reason, "NOT_A_ON_GOING_BATCH");
    }
}
