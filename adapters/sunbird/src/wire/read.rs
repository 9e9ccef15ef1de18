//! The content-state read: its request body, and the rows of its answer.

use headway::{BatchId, ContentItem, ContentKey, ContentState, CourseId, Progress, Status, UserId};
use serde::{Deserialize, Serialize};

use super::date::parse_date;
use super::lenient::Lenient;

/// The answer to a content-state read: `result.contentList`.
#[derive(Deserialize)]
struct ReadEnvelope {
    #[serde(default)]
    result: Lenient<ReadResult>,
}

#[derive(Deserialize)]
struct ReadResult {
    #[serde(default, rename = "contentList")]
    content_list: Lenient<Vec<Lenient<ReadRow>>>,
}

/// One row of a content-state read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadRow {
    #[serde(default)]
    user_id: Lenient<String>,
    #[serde(default)]
    content_id: Lenient<String>,
    #[serde(default)]
    course_id: Lenient<String>,
    #[serde(default)]
    collection_id: Lenient<String>,
    #[serde(default)]
    batch_id: Lenient<String>,
    #[serde(default)]
    status: Lenient<i64>,
    #[serde(default)]
    progress: Lenient<i64>,
    #[serde(default)]
    last_access_time: Lenient<String>,
    #[serde(default)]
    last_completed_time: Lenient<String>,
}

/// The body of a content-state read for one course batch.
///
/// ```
/// let (user, course, batch) = ("u1".try_into()?, "do_c".try_into()?, "b1".try_into()?);
/// let body = headway_sunbird::wire::read_body(&user, &course, &batch);
/// assert_eq!(
///     serde_json::to_string(&body)?,
///     r#"{"request":{"userId":"u1","courseId":"do_c","batchId":"b1"}}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_body<'a>(
    user: &'a UserId,
    course: &'a CourseId,
    batch: &'a BatchId,
) -> ReadRequest<'a> {
    ReadRequest {
        request: ReadFilter {
            user_id: user,
            course_id: course,
            batch_id: batch,
        },
    }
}

/// The body of a content-state read (see [`read_body`]); serialize it to send it.
///
/// ```
/// let (user, course, batch) = ("u1".try_into()?, "do_c".try_into()?, "b1".try_into()?);
/// let body = headway_sunbird::wire::read_body(&user, &course, &batch);
/// assert!(serde_json::to_vec(&body).is_ok());
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct ReadRequest<'a> {
    request: ReadFilter<'a>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadFilter<'a> {
    user_id: &'a str,
    course_id: &'a str,
    batch_id: &'a str,
}

/// Reads `result.contentList` of a content-state read into content items. A row is keyed by
/// the learner it names in `userId`, else by `user` (Sunbird's read leaves `userId` out of its
/// rows, sunbird-api.md §2.6): the caller compares the keys with the learner it asked for
/// (issue 17). Rows with missing ids are skipped; a status above 2 reads as completed, and
/// dates that do not parse read as unknown.
///
/// ```
/// let asked = headway::UserId::new("bob")?;
/// let body = br#"{"result":{"contentList":[
///     {"userId":"asha","contentId":"do_1","courseId":"do_c","batchId":"b1","status":2},
///     {"contentId":"do_2","courseId":"do_c","batchId":"b1","status":1}
/// ]}}"#;
/// let items = headway_sunbird::wire::parse_read(&asked, body)?;
/// assert_eq!(items[0].key().user().as_str(), "asha"); // not bob's: the caller refuses it
/// assert_eq!(items[1].key().user().as_str(), "bob");  // no userId: the learner asked for
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_read(user: &UserId, body: &[u8]) -> Result<Vec<ContentItem>, String> {
    let envelope: Lenient<ReadEnvelope> =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let list = envelope
        .0
        .and_then(|e| e.result.0)
        .and_then(|r| r.content_list.0)
        .ok_or("no result.contentList")?;
    let mut items = Vec::new();
    for row in list.into_iter().filter_map(|row| row.0) {
        let course = row.course_id.0.or(row.collection_id.0);
        let (Some(content), Some(course), Some(batch)) = (row.content_id.0, course, row.batch_id.0)
        else {
            continue;
        };
        let owner = match row.user_id.0.filter(|named| !named.trim().is_empty()) {
            None => user.clone(),
            Some(named) => UserId::new(named.as_str())
                .map_err(|_| format!("a row names learner {named:?}, which is not a user id"))?,
        };
        let Ok(key) = ContentKey::new(owner.as_str(), course, batch, content) else {
            continue;
        };
        let status = match row.status.0.unwrap_or(0) {
            s if s >= 2 => Status::Completed,
            1 => Status::InProgress,
            _ => Status::NotStarted,
        };
        let progress =
            Progress::new(row.progress.0.unwrap_or(0).clamp(0, 100)).map_err(|e| e.to_string())?;
        let date = |text: Option<String>| text.as_deref().and_then(parse_date);
        let completed = if status == Status::Completed {
            date(row.last_completed_time.0)
        } else {
            None
        };
        let state = ContentState::new(status, progress, date(row.last_access_time.0), completed);
        items.push(ContentItem::new(key, state));
    }
    Ok(items)
}
