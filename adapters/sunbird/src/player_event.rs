//! Sunbird's content player telemetry as a trigger: START and END events become progress
//! updates, derived the way Sunbird's progress calculator does (EkStep mime types, the
//! `contentplayer` pid). The core knows none of this: it records the update the calculator
//! derives. A malformed event is refused with the core's [`headway::Error::InvalidTelemetry`]
//! (a generic refusal of the app's input) and records nothing.

use headway::{
    BatchId, ContentId, ContentKey, ContentState, CourseId, Error, ProgressUpdate, Result, Status,
    Store, Timestamp, UserId,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The course context the app keeps while a learner plays a course's contents (Sunbird's
/// `{"userId", "courseId", "batchId", "batchStatus"}`), plus the mime type of the content being
/// played, which decides how its progress is calculated.
///
/// ```
/// let context: headway_sunbird::CourseContext = serde_json::from_str(
///     r#"{"userId":"u1","courseId":"do_course","batchId":"0130","batchStatus":1,"mimeType":"video/mp4"}"#,
/// )?;
/// assert_eq!(context.batch_status, Some(1));
/// // Ids are checked as they are read.
/// let padded = r#"{"userId":"u1","courseId":" do_course","batchId":"0130"}"#;
/// assert!(serde_json::from_str::<headway_sunbird::CourseContext>(padded).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseContext {
    /// The learner.
    pub user_id: UserId,
    /// The course being played.
    pub course_id: CourseId,
    /// The batch the learner is enrolled in.
    pub batch_id: BatchId,
    /// The batch's status: only 1 (ongoing) accepts updates; missing counts as 0.
    #[serde(default)]
    pub batch_status: Option<i64>,
    /// The played content's mime type (`video/mp4`, `application/pdf`, ...).
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// Why a player event recorded nothing, though it was well formed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ignored {
    /// Not a START or END event.
    NotStartOrEnd {
        /// The event's `eid`.
        eid: String,
    },
    /// The event did not come from the content player (`context.pdata.pid`).
    NotFromThePlayer,
    /// The course batch is not ongoing: the server would refuse the update.
    BatchNotOngoing,
    /// The END of the course itself (a trackable collection), not of a content.
    CourseEnded,
    /// A START for a content already started.
    AlreadyStarted,
    /// An END for a content already completed.
    AlreadyCompleted,
    /// An END whose summary holds no non-zero progress.
    NoProgress,
}

/// What a player event amounts to, given where the learner stands on the content now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlayerEvent {
    /// The event reports progress: record this update.
    Update(ProgressUpdate),
    /// The event changes nothing.
    Ignored(Ignored),
}

/// The video and document types whose progress counts as complete past the end page, the
/// content end, or more than 20% viewed.
const VIEWED_TYPES: [&str; 5] = [
    "video/x-youtube",
    "video/mp4",
    "video/webm",
    "application/pdf",
    "application/epub",
];

/// Interactive types that count as complete at any non-zero progress.
const INTERACTIVE_TYPES: [&str; 2] = [
    "application/vnd.ekstep.h5p-archive",
    "application/vnd.ekstep.html-archive",
];

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidTelemetry {
        reason: reason.into(),
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

fn number(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sunbird's progress calculator: the `summary` entries merged into one map (later keys win),
/// then by mime type. A missing or zero progress gives 0.
///
/// ```
/// use serde_json::json;
/// use headway_sunbird::progress_from_summary;
/// let watched = json!([{"progress": 30}, {"totallength": 100}, {"visitedlength": 25}]);
/// assert_eq!(progress_from_summary(watched.as_array().unwrap(), "video/mp4"), 100); // > 20% seen
/// let pdf = json!([{"progress": 40}]);
/// assert_eq!(progress_from_summary(pdf.as_array().unwrap(), "application/pdf"), 40);
/// let h5p = json!([{"progress": 10}]);
/// assert_eq!(progress_from_summary(h5p.as_array().unwrap(), "application/vnd.ekstep.h5p-archive"), 100);
/// let other = json!([{"progress": 99}]);
/// assert_eq!(progress_from_summary(other.as_array().unwrap(), "application/vnd.ekstep.ecml-archive"), 0);
/// ```
pub fn progress_from_summary(summary: &[Value], mime_type: &str) -> u8 {
    let mut merged = Map::new();
    for entry in summary {
        if let Some(object) = entry.as_object() {
            for (k, v) in object {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    let progress = number(merged.get("progress"));
    if progress <= 0.0 || progress.is_nan() {
        return 0;
    }
    let raw = progress.clamp(0.0, 100.0);
    if VIEWED_TYPES.contains(&mime_type) {
        let total = number(merged.get("totallength"));
        let visited = number(merged.get("visitedlength"));
        let seen_enough = total != 0.0 && visited * 100.0 / total > 20.0;
        if truthy(merged.get("endpageseen"))
            || truthy(merged.get("visitedcontentend"))
            || seen_enough
        {
            100
        } else {
            // In 0..=100 after the clamp, so the cast cannot truncate.
            raw.floor() as u8
        }
    } else if INTERACTIVE_TYPES.contains(&mime_type) || raw >= 100.0 {
        // Interactive content counts as complete at any progress; anything else at 100.
        100
    } else {
        0
    }
}

/// Reads a content player event (telemetry v3 JSON) in a course context and decides what it
/// means given the content's current state. A malformed event is an
/// [`Error::InvalidTelemetry`]; a well-formed one that changes nothing is
/// [`PlayerEvent::Ignored`] with the reason.
///
/// ```
/// use headway::Status;
/// use headway_sunbird::{player_event, CourseContext, PlayerEvent};
/// let context = CourseContext {
///     user_id: "u1".try_into()?, course_id: "do_course".try_into()?, batch_id: "0130".try_into()?,
///     batch_status: Some(1), mime_type: Some("video/mp4".into()),
/// };
/// let end = br#"{"eid":"END","ets":1714558530123,"actor":{"id":"u1"},
///   "context":{"pdata":{"pid":"sunbird.app.contentplayer"}},"object":{"id":"do_1"},
///   "edata":{"summary":[{"progress":100},{"endpageseen":true}]}}"#;
/// match player_event(end, &context, None)? {
///     PlayerEvent::Update(update) => assert_eq!(update.state().status(), Status::Completed),
///     other => panic!("{other:?}"),
/// }
/// assert!(player_event(b"{not json", &context, None).is_err());
/// # Ok::<(), headway::Error>(())
/// ```
pub fn player_event(
    event: &[u8],
    context: &CourseContext,
    current: Option<&ContentState>,
) -> Result<PlayerEvent> {
    ParsedEvent::read(event, context, Timestamp::now())?.decide(context, current)
}

/// A well-formed player event: everything [`player_event`] checks before it looks at the
/// content's current state.
struct ParsedEvent {
    eid: String,
    from_player: bool,
    key: ContentKey,
    at: Timestamp,
    now: Timestamp,
    summary: Vec<Value>,
}

impl ParsedEvent {
    /// Reads and checks every field the trigger uses; a malformed event is an error. `now`
    /// bounds the event's time (no more than a day ahead) and stands in for a missing one.
    fn read(event: &[u8], context: &CourseContext, now: Timestamp) -> Result<ParsedEvent> {
        let event: Value = serde_json::from_slice(event)
            .map_err(|e| invalid(format!("the event is not JSON: {e}")))?;
        let event = event
            .as_object()
            .ok_or_else(|| invalid("the event is not a JSON object"))?;
        let eid = event
            .get("eid")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the event has no eid"))?;
        let pid = event
            .get("context")
            .and_then(|c| c.get("pdata"))
            .and_then(|p| p.get("pid"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the event has no context.pdata.pid"))?;
        let content = event
            .get("object")
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the event has no object.id"))?;
        if let Some(actor) = event.get("actor").and_then(|a| a.get("id")) {
            let actor = actor
                .as_str()
                .ok_or_else(|| invalid("actor.id is not a string"))?;
            if actor != context.user_id {
                return Err(invalid(format!(
                    "the event's actor {actor:?} is not the context's learner"
                )));
            }
        }
        let key = ContentKey::from_ids(
            context.user_id.clone(),
            context.course_id.clone(),
            context.batch_id.clone(),
            ContentId::new(content)?,
        );
        let at = match event.get("ets") {
            None | Some(Value::Null) => now,
            Some(ets) => {
                let millis = ets
                    .as_i64()
                    .ok_or_else(|| invalid("ets is not an integer of milliseconds"))?;
                Timestamp::from_millis(millis)?.not_after_tomorrow(now)?
            }
        };
        let summary = match event.get("edata").and_then(|e| e.get("summary")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(entries)) => entries.clone(),
            Some(_) => return Err(invalid("edata.summary is not an array")),
        };
        Ok(ParsedEvent {
            eid: eid.to_string(),
            from_player: pid.contains("contentplayer"),
            key,
            at,
            now,
            summary,
        })
    }

    /// What the event means given where the learner stands on the content now.
    fn decide(
        self,
        context: &CourseContext,
        current: Option<&ContentState>,
    ) -> Result<PlayerEvent> {
        let ignored = |reason| Ok(PlayerEvent::Ignored(reason));
        if self.eid != "START" && self.eid != "END" {
            return ignored(Ignored::NotStartOrEnd { eid: self.eid });
        }
        if !self.from_player {
            return ignored(Ignored::NotFromThePlayer);
        }
        if context.batch_status != Some(1) {
            return ignored(Ignored::BatchNotOngoing);
        }
        if self.key.content().as_str() == context.course_id {
            return ignored(Ignored::CourseEnded);
        }
        let status = current.map_or(Status::NotStarted, ContentState::status);
        if self.eid == "START" {
            if status != Status::NotStarted {
                return ignored(Ignored::AlreadyStarted);
            }
            // Sunbird's SDK sends progress 5 here, which the server discards for a new row.
            let update = ProgressUpdate::new(self.key, Status::InProgress, 0)?
                .consumed_at_checked(self.at, self.now)?;
            return Ok(PlayerEvent::Update(update));
        }
        if status == Status::Completed {
            return ignored(Ignored::AlreadyCompleted);
        }
        let has_progress = self
            .summary
            .iter()
            .any(|entry| entry.get("progress").is_some_and(|p| truthy(Some(p))));
        if !has_progress {
            return ignored(Ignored::NoProgress);
        }
        let progress =
            progress_from_summary(&self.summary, context.mime_type.as_deref().unwrap_or(""));
        let status = if progress == 100 {
            Status::Completed
        } else {
            Status::InProgress
        };
        let update = ProgressUpdate::new(self.key, status, i64::from(progress))?
            .consumed_at_checked(self.at, self.now)?;
        Ok(PlayerEvent::Update(update))
    }
}

/// What [`RecordPlayerEvent::record_player_event`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlayerEventOutcome {
    /// The derived update was recorded; `None` if it was not above the stored state.
    Recorded(Option<headway::ContentStateChanged>),
    /// Nothing to record, and why.
    Ignored(Ignored),
}

/// Records Sunbird player events in a [`Store`]: the calculator derives the update, the store
/// records it. Import the trait to call `store.record_player_event(..)`.
pub trait RecordPlayerEvent {
    /// Derives the progress update of a content player START or END event (see
    /// [`player_event`]) against the content's stored state and records it. A malformed event
    /// records nothing and gives [`Error::InvalidTelemetry`].
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{Store, UserId};
    /// use headway_sunbird::{CourseContext, PlayerEventOutcome, RecordPlayerEvent};
    /// let store = Store::open_in_memory()?;
    /// let context = CourseContext {
    ///     user_id: "u1".try_into()?, course_id: "do_course".try_into()?, batch_id: "0130".try_into()?,
    ///     batch_status: Some(1), mime_type: Some("application/pdf".into()),
    /// };
    /// let end = br#"{"eid":"END","context":{"pdata":{"pid":"sunbird.app.contentplayer"}},
    ///   "object":{"id":"do_1"},"edata":{"summary":[{"progress":40}]}}"#;
    /// assert!(matches!(store.record_player_event(end, &context)?, PlayerEventOutcome::Recorded(Some(_))));
    /// assert_eq!(store.items(&UserId::new("u1")?, None)?[0].state().progress().get(), 40);
    /// # Ok(()) }
    /// ```
    fn record_player_event(
        &self,
        event: &[u8],
        context: &CourseContext,
    ) -> Result<PlayerEventOutcome>;
}

impl RecordPlayerEvent for Store {
    fn record_player_event(
        &self,
        event: &[u8],
        context: &CourseContext,
    ) -> Result<PlayerEventOutcome> {
        let parsed = ParsedEvent::read(event, context, Timestamp::now())?;
        let current = self.state(&parsed.key)?;
        match parsed.decide(context, current.as_ref())? {
            PlayerEvent::Update(update) => Ok(PlayerEventOutcome::Recorded(self.record(update)?)),
            PlayerEvent::Ignored(reason) => Ok(PlayerEventOutcome::Ignored(reason)),
        }
    }
}
