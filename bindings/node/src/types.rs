//! The plain objects JavaScript passes and gets, and their conversions to and from the
//! library's types. Times are milliseconds since the Unix epoch (UTC); a time that is not known
//! is `null`.

use napi_derive::napi;

use crate::error::Failure;

/// Where a learner stands on a content item (or a course): 0 not started < 1 in progress <
/// 2 completed (Sunbird's numbers). It only goes up.
#[napi]
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// Not started (Sunbird's 0).
    NotStarted = 0,
    /// In progress (Sunbird's 1).
    InProgress = 1,
    /// Completed (Sunbird's 2); progress is then 100.
    Completed = 2,
}

pub(crate) fn status_number(status: headway::Status) -> u32 {
    match status {
        headway::Status::NotStarted => 0,
        headway::Status::InProgress => 1,
        headway::Status::Completed => 2,
    }
}

/// How durable a `record` is once it returns.
#[napi(string_enum = "camelCase")]
#[derive(Debug, Default, PartialEq, Eq)]
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

/// How `Store.open` opens a store.
#[napi(object, object_to_js = false)]
#[derive(Debug, Default)]
pub struct OpenOptions {
    /// `"powerLoss"` (the default) or `"processCrash"`.
    #[napi(ts_type = "'powerLoss' | 'processCrash' | null")]
    pub durability: Option<Durability>,
}

/// One progress change the app reports. `consumedAtMs` is when the learner consumed the
/// content (absent or `null`: now); it may not be before 2000 or more than a day in the
/// future.
#[napi(object, object_to_js = false)]
#[derive(Debug)]
pub struct ProgressUpdate {
    /// The learner.
    pub user_id: String,
    /// The course.
    pub course_id: String,
    /// The batch the learner is enrolled in.
    pub batch_id: String,
    /// The content item.
    pub content_id: String,
    /// The new status: 0, 1 or 2 (`Status`).
    #[napi(ts_type = "Status | number")]
    pub status: f64,
    /// The new progress, an integer 0..=100 (100 whenever the status is completed).
    pub progress: f64,
    /// When the learner consumed the content, in ms since the Unix epoch; absent or `null`
    /// means now.
    #[napi(ts_type = "number | null")]
    pub consumed_at_ms: Option<f64>,
}

/// A JavaScript number that must be a whole number: `what` names it in the error.
fn whole(what: &str, value: f64) -> Result<i64, Failure> {
    // Every whole f64 within ±2^53 is exact; beyond, it is not a time or a count.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.fract() != 0.0 || !value.is_finite() || value.abs() > EXACT {
        return Err(Failure::invalid(format!(
            "\"{what}\" must be a whole number, got {value}"
        )));
    }
    // In range and whole: the cast is exact.
    Ok(value as i64)
}

impl TryFrom<ProgressUpdate> for headway::ProgressUpdate {
    type Error = Failure;

    fn try_from(update: ProgressUpdate) -> Result<headway::ProgressUpdate, Failure> {
        let key = headway::ContentKey::new(
            update.user_id,
            update.course_id,
            update.batch_id,
            update.content_id,
        )?;
        let status = headway::Status::try_from(whole("status", update.status)?)?;
        let progress = whole("progress", update.progress)?;
        let mut built = headway::ProgressUpdate::new(key, status, progress)?;
        if let Some(ms) = update.consumed_at_ms {
            let ms = whole("consumedAtMs", ms)?;
            built = built.consumed_at(headway::Timestamp::from_millis(ms)?)?;
        }
        Ok(built)
    }
}

/// One content item and where the learner stands on it.
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentItem {
    /// The learner.
    pub user_id: String,
    /// The course.
    pub course_id: String,
    /// The batch.
    pub batch_id: String,
    /// The content item.
    pub content_id: String,
    /// The status: 0, 1 or 2 (`Status`).
    #[napi(ts_type = "Status")]
    pub status: u32,
    /// The progress, 0..=100.
    pub progress: u32,
    /// When the learner last opened the content, in ms since the Unix epoch; `null` when not
    /// known.
    pub last_access_time_ms: Option<i64>,
    /// When the learner last completed the content, in ms since the Unix epoch; `null` when
    /// not known.
    pub last_completed_time_ms: Option<i64>,
}

impl ContentItem {
    pub(crate) fn new(key: &headway::ContentKey, state: &headway::ContentState) -> ContentItem {
        ContentItem {
            user_id: key.user().to_string(),
            course_id: key.course().to_string(),
            batch_id: key.batch().to_string(),
            content_id: key.content().to_string(),
            status: status_number(state.status()),
            progress: u32::from(state.progress().get()),
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
/// device's completions. `progress` counts completed leaf nodes; `extraJson` holds every field
/// the server sent (a JSON object), so the app can show them; `leafNodes` the course's leaf
/// contents when the server listed them (`null` otherwise).
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolledCourse {
    /// The course.
    pub course_id: String,
    /// The batch the learner is enrolled in.
    pub batch_id: String,
    /// Completed leaf nodes (contents) of the course.
    pub progress: u32,
    /// Leaf nodes of the course.
    pub leaf_nodes_count: u32,
    /// `progress * 100 / leafNodesCount`, 0..=100.
    pub completion_percentage: u32,
    /// The course's status, derived from `progress`: 0, 1 or 2 (`Status`).
    #[napi(ts_type = "Status")]
    pub status: u32,
    /// The course's leaf contents (Sunbird's `content.leafNodes`), when the server listed them;
    /// `null` otherwise.
    pub leaf_nodes: Option<Vec<String>>,
    /// Every other field the server sent for this course, as a JSON object (`JSON.parse` it).
    pub extra_json: String,
}

impl From<&headway::EnrolledCourse> for EnrolledCourse {
    fn from(course: &headway::EnrolledCourse) -> EnrolledCourse {
        EnrolledCourse {
            course_id: course.course_id.to_string(),
            batch_id: course.batch_id.to_string(),
            progress: course.progress,
            leaf_nodes_count: course.leaf_nodes_count,
            completion_percentage: course.completion_percentage,
            status: u32::from(course.status.min(2)),
            leaf_nodes: course
                .leaf_nodes
                .as_ref()
                .map(|leaves| leaves.iter().map(ToString::to_string).collect()),
            extra_json: serde_json::Value::Object(course.fields.clone()).to_string(),
        }
    }
}

/// An item the server refused for good: kept on the device, reported, and not sent again
/// until it changes or the app calls `resendRejected`.
#[napi(object, object_from_js = false)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedItem {
    /// The refused item, at the state the server refused (it may have risen on the device
    /// since).
    pub item: ContentItem,
    /// Why the server refused it (`NOT_A_ON_GOING_BATCH`, `BATCH_NOT_EXISTS`, ...).
    pub reason: String,
}

/// What a sync did: distinct items sent, acknowledged and rejected, how many stay pending to
/// be retried, and how many HTTP requests it took (items travel in bulk, 100 per request).
#[napi(object, object_from_js = false)]
#[derive(Clone, Debug, PartialEq, Eq)]
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

pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl SyncReport {
    pub(crate) fn new(report: &headway::SyncReport) -> SyncReport {
        SyncReport {
            sent: count(report.sent),
            acknowledged: count(report.acknowledged),
            rejected: report
                .rejected
                .iter()
                .map(|r| RejectedItem {
                    item: ContentItem::new(&r.key, &r.state),
                    reason: r.reason.to_string(),
                })
                .collect(),
            retrying: count(report.retrying.len()),
            requests: count(report.requests),
        }
    }
}

/// The course context the app keeps while the learner plays a course's contents, plus the
/// played content's mime type, which decides how its progress is derived (videos and
/// documents complete past the end page or 20% viewed; H5P and HTML at any progress).
/// `batchStatus` 1 means ongoing: only then are events recorded.
#[napi(object, object_to_js = false)]
#[derive(Debug)]
pub struct CourseContext {
    /// The learner.
    pub user_id: String,
    /// The course being played.
    pub course_id: String,
    /// The batch the learner is enrolled in.
    pub batch_id: String,
    /// The batch's status: 1 ongoing; anything else (or none) records nothing.
    #[napi(ts_type = "number | null")]
    pub batch_status: Option<f64>,
    /// The played content's mime type (`video/mp4`, `application/pdf`, ...).
    #[napi(ts_type = "string | null")]
    pub mime_type: Option<String>,
}

/// The ids are checked here, at the boundary: a refused one is `INVALID_INPUT`.
impl TryFrom<CourseContext> for headway_sunbird::CourseContext {
    type Error = Failure;
    fn try_from(context: CourseContext) -> Result<headway_sunbird::CourseContext, Failure> {
        Ok(headway_sunbird::CourseContext {
            user_id: context.user_id.try_into()?,
            course_id: context.course_id.try_into()?,
            batch_id: context.batch_id.try_into()?,
            batch_status: context
                .batch_status
                .map(|s| whole("batchStatus", s))
                .transpose()?,
            mime_type: context.mime_type,
        })
    }
}

/// How the background sync paces itself; every field is optional.
#[napi(object, object_to_js = false)]
#[derive(Debug, Default)]
pub struct BackgroundSyncOptions {
    /// How long after a local record to sync, in whole ms, 0 or more (default 1,000).
    #[napi(ts_type = "number | null")]
    pub debounce_ms: Option<f64>,
    /// How often to look for pending progress when nothing happens, in whole ms, more than 0
    /// (default 300,000).
    #[napi(ts_type = "number | null")]
    pub interval_ms: Option<f64>,
}

/// A duration of whole ms from JavaScript, at least `least` and at most a day.
pub(crate) fn milliseconds(
    what: &str,
    value: f64,
    least: i64,
) -> Result<std::time::Duration, Failure> {
    const A_DAY: i64 = 86_400_000;
    let ms = whole(what, value)?;
    if !(least..=A_DAY).contains(&ms) {
        return Err(Failure::invalid(format!(
            "\"{what}\" must be {least} to {A_DAY} ms, got {value}"
        )));
    }
    // In 0..=A_DAY: not negative.
    Ok(std::time::Duration::from_millis(ms.unsigned_abs()))
}

impl TryFrom<BackgroundSyncOptions> for headway::BackgroundOptions {
    type Error = Failure;
    fn try_from(options: BackgroundSyncOptions) -> Result<headway::BackgroundOptions, Failure> {
        let mut built = headway::BackgroundOptions::new();
        if let Some(ms) = options.debounce_ms {
            built = built.debounce(milliseconds("debounceMs", ms, 0)?);
        }
        if let Some(ms) = options.interval_ms {
            built = built.interval(milliseconds("intervalMs", ms, 1)?);
        }
        Ok(built)
    }
}

/// Something the app may react to instead of polling, given to `subscribe`'s listener; `type`
/// says which.
#[napi(discriminant = "type", object_from_js = false, use_nullable = true)]
#[derive(Clone, Debug)]
pub enum Event {
    /// A content state went up (a local record, a server answer or another device); `before`
    /// is `null` for a content seen for the first time.
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
    /// The package's event for a library event, if the app is told about that kind.
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
