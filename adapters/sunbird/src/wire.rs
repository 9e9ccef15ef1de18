//! Sunbird's JSON and date strings, and what each answer means for each item sent. Pure
//! functions, no IO: the client and the fuzz targets share them.

use std::collections::{BTreeMap, BTreeSet};

use headway::{
    ContentItem, ContentKey, ContentState, EnrolledCourse, ItemOutcome, Outgoing, Progress,
    RetryCause, Status, Timestamp,
};
use serde_json::{json, Map, Value};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// Formats a time the way Sunbird's course service wants it: `yyyy-MM-dd HH:mm:ss:SSSZ` in
/// UTC, e.g. `2024-05-01 10:15:30:123+0000`.
///
/// ```
/// use headway::Timestamp;
/// let t = Timestamp::from_millis(1_714_558_530_123)?;
/// assert_eq!(headway_sunbird::wire::format_date(t), "2024-05-01 10:15:30:123+0000");
/// # Ok::<(), headway::Error>(())
/// ```
pub fn format_date(t: Timestamp) -> String {
    // Formatting a valid date-time with a fixed description cannot fail.
    t.to_offset_date_time()
        .format(SUNBIRD_DATE)
        .unwrap_or_default()
}

/// `yyyy-MM-dd HH:mm:ss:SSSZ` (Java's `SimpleDateFormat`), with an RFC 822 zone such as `+0000`.
const SUNBIRD_DATE: &[FormatItem<'_>] = format_description!(
    "[year]-[month]-[day] [hour]:[minute]:[second]:[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
);

/// Parses Sunbird's `yyyy-MM-dd HH:mm:ss:SSSZ` strictly (a colon before exactly three
/// millisecond digits, a `±hhmm` zone); anything else is `None`.
///
/// ```
/// use headway_sunbird::wire::parse_date;
/// assert_eq!(parse_date("2024-05-01 15:45:30:123+0530").map(|t| t.as_millis()), Some(1_714_558_530_123));
/// assert!(parse_date("2024-05-01T10:15:30.123Z").is_none());
/// assert!(parse_date("2024-05-01 10:15:30.123+0000").is_none());
/// assert!(parse_date("2024-05-01 10:15:30:123+00:00").is_none());
/// ```
pub fn parse_date(text: &str) -> Option<Timestamp> {
    let at = OffsetDateTime::parse(text, SUNBIRD_DATE).ok()?;
    Timestamp::from_offset_date_time(at).ok()
}

/// The body of one bulk update: `{"request":{"userId":U,"contents":[...]}}`, each item with its
/// own `userId` too. Fields without a
/// value are left out rather than sent as null (Sunbird copies nulls over stored values), and
/// `lastCompletedTime` goes only with status 2.
///
/// ```
/// use headway::{ContentItem, ContentKey, ContentState, Progress, Status};
/// let item = ContentItem::new(
///     ContentKey::new("u1", "do_c", "0130", "do_1")?,
///     ContentState::new(Status::InProgress, Progress::new(40)?, None, None),
/// );
/// let body = headway_sunbird::wire::update_body("u1", &[&item]);
/// assert_eq!(body["request"]["contents"][0]["progress"], 40);
/// assert!(body["request"]["contents"][0].get("lastAccessTime").is_none());
/// # Ok::<(), headway::Error>(())
/// ```
pub fn update_body(user: &str, items: &[&ContentItem]) -> Value {
    let contents: Vec<Value> = items
        .iter()
        .map(|item| {
            let (key, state) = (item.key(), item.state());
            let mut content = Map::new();
            // The item's own userId: with a token of another learner the server drops the item
            // (it stays pending) instead of crediting the progress to the wrong account.
            content.insert("userId".into(), json!(key.user()));
            content.insert("contentId".into(), json!(key.content()));
            content.insert("courseId".into(), json!(key.course()));
            content.insert("batchId".into(), json!(key.batch()));
            content.insert("status".into(), json!(state.status().code()));
            content.insert("progress".into(), json!(state.progress().get()));
            if let Some(t) = state.last_access_time() {
                content.insert("lastAccessTime".into(), json!(format_date(t)));
            }
            if state.status() == Status::Completed {
                if let Some(t) = state.last_completed_time() {
                    content.insert("lastCompletedTime".into(), json!(format_date(t)));
                }
            }
            Value::Object(content)
        })
        .collect();
    json!({ "request": { "userId": user, "contents": contents } })
}

/// The reason given for an item the server's `result` does not mention.
pub const NOT_IN_RESULT: &str = "NOT_IN_RESULT";

/// What one answer to a bulk update means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateAnswer {
    /// The server answered item by item: one outcome per item sent, in order.
    Items(Vec<ItemOutcome>),
    /// HTTP 400 `CLIENT_ERROR`: the whole request was refused because of (at least) one item.
    ClientError {
        /// `params.err: params.errmsg`, or the status.
        reason: String,
    },
    /// 401 or 403: the token was refused.
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// Nothing was decided: every item stays pending.
    Retry(RetryCause),
}

/// Reads the answer to one bulk update of `sent` items.
///
/// An item is acknowledged when `result[contentId] == "SUCCESS"` and its batch is in neither
/// `NOT_A_ON_GOING_BATCH` nor `BATCH_NOT_EXISTS`; rejected when its batch is in one of them,
/// when `result` holds another value for it (legacy `FAILED`, ...), or when `result` does not
/// mention it at all (Sunbird drops such items for good: a blank batch, a foreign user). Because Sunbird stores progress 0 for a first write with a status
/// below 2, such an item the server never confirmed before comes back as
/// [`ItemOutcome::HeldLower`], so the sync sends it once more.
///
/// ```
/// use headway::{ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, Progress, Status};
/// use headway_sunbird::wire::{interpret_update, UpdateAnswer};
/// let done = ContentState::new(Status::Completed, Progress::new(100)?, None, None);
/// let sent = Outgoing { item: ContentItem::new(ContentKey::new("u", "c", "b1", "do_1")?, done), server: None };
/// let body = br#"{"responseCode":"OK","result":{"do_1":"SUCCESS"}}"#;
/// assert_eq!(interpret_update(200, body, &[&sent]), UpdateAnswer::Items(vec![ItemOutcome::Acknowledged]));
/// let closed = br#"{"responseCode":"OK","result":{"do_1":"SUCCESS","NOT_A_ON_GOING_BATCH":["b1"]}}"#;
/// assert!(matches!(&interpret_update(200, closed, &[&sent]), UpdateAnswer::Items(o) if !o[0].is_acknowledged()));
/// # Ok::<(), headway::Error>(())
/// ```
pub fn interpret_update(status: u16, body: &[u8], sent: &[&Outgoing]) -> UpdateAnswer {
    match status {
        200..=299 => {}
        400 => {
            return UpdateAnswer::ClientError {
                reason: error_reason(body).unwrap_or_else(|| "HTTP 400".into()),
            }
        }
        401 | 403 => return UpdateAnswer::Unauthorized { status },
        other => return UpdateAnswer::Retry(RetryCause::Server { status: other }),
    }
    let unparsable = |detail: &str| {
        UpdateAnswer::Retry(RetryCause::Unparsable {
            detail: detail.to_string(),
        })
    };
    let Ok(envelope) = serde_json::from_slice::<Value>(body) else {
        return unparsable("the body is not JSON");
    };
    let Some(result) = envelope.get("result").and_then(Value::as_object) else {
        return unparsable("no result object");
    };
    let listed = |name: &str| -> BTreeSet<&str> {
        result
            .get(name)
            .and_then(Value::as_array)
            .map(|batches| batches.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let not_ongoing = listed("NOT_A_ON_GOING_BATCH");
    let missing = listed("BATCH_NOT_EXISTS");
    let outcomes = sent
        .iter()
        .map(|out| {
            let (key, state) = (out.item.key(), out.item.state());
            for (list, reason) in [
                (&not_ongoing, "NOT_A_ON_GOING_BATCH"),
                (&missing, "BATCH_NOT_EXISTS"),
            ] {
                if list.contains(key.batch()) {
                    return ItemOutcome::Rejected {
                        reason: reason.into(),
                    };
                }
                // The server names batches as it stored them (trimmed, say): a listed batch
                // that matches no batch sent exactly but this one loosely may be this one, and
                // `result` is keyed by content id only, so a SUCCESS cannot clear it.
                if list
                    .iter()
                    .any(|named| loosely_same_batch(named, key.batch()))
                {
                    return ItemOutcome::Rejected {
                        reason: reason.into(),
                    };
                }
            }
            match result.get(key.content()) {
                Some(Value::String(s)) if s == "SUCCESS" => acknowledged(out, state),
                Some(Value::String(other)) => ItemOutcome::Rejected {
                    reason: other.clone(),
                },
                Some(_) => ItemOutcome::Retry {
                    cause: RetryCause::Unparsable {
                        detail: format!("result for {} is not a string", key.content()),
                    },
                },
                // Sunbird drops such an item without a trace (a user other than the token's; a
                // blank batch cannot be sent): reported, and sent again on the next sync, when
                // the token may be the right one.
                None => ItemOutcome::Dropped {
                    reason: NOT_IN_RESULT.into(),
                },
            }
        })
        .collect();
    UpdateAnswer::Items(outcomes)
}

/// True when a batch id the server named and a batch id sent differ only by surrounding white
/// space or ASCII case.
fn loosely_same_batch(named: &str, sent: &str) -> bool {
    named != sent && named.trim().eq_ignore_ascii_case(sent.trim())
}

/// An acknowledgement, or `HeldLower` when Sunbird's first-write rule stored less than sent.
fn acknowledged(out: &Outgoing, state: &ContentState) -> ItemOutcome {
    let first_write = out.server.is_none();
    if first_write && state.status() != Status::Completed && state.progress().get() > 0 {
        return ItemOutcome::HeldLower {
            held: ContentState::new(
                state.status(),
                Progress::default(),
                state.last_access_time(),
                None,
            ),
        };
    }
    ItemOutcome::Acknowledged
}

/// `params.err: params.errmsg` from an error envelope.
pub fn error_reason(body: &[u8]) -> Option<String> {
    let envelope: Value = serde_json::from_slice(body).ok()?;
    let params = envelope.get("params")?;
    let err = params.get("err").and_then(Value::as_str).unwrap_or("");
    let msg = params.get("errmsg").and_then(Value::as_str).unwrap_or("");
    match (err.is_empty(), msg.is_empty()) {
        (true, true) => None,
        (false, true) => Some(err.to_string()),
        (true, false) => Some(msg.to_string()),
        (false, false) => Some(format!("{err}: {msg}")),
    }
}

/// The body of a content-state read for one course batch.
pub fn read_body(user: &str, course: &str, batch: &str) -> Value {
    json!({ "request": { "userId": user, "courseId": course, "batchId": batch } })
}

/// Reads `result.contentList` of a content-state read into content items of `user`. Rows with
/// missing ids are skipped; a status above 2 reads as completed, and dates that do not parse
/// read as unknown.
pub fn parse_read(user: &str, body: &[u8]) -> Result<Vec<ContentItem>, String> {
    let envelope: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let list = envelope
        .pointer("/result/contentList")
        .and_then(Value::as_array)
        .ok_or("no result.contentList")?;
    let mut items = Vec::new();
    for row in list {
        let text = |name: &str| row.get(name).and_then(Value::as_str);
        let course = text("courseId").or_else(|| text("collectionId"));
        let (Some(content), Some(course), Some(batch)) =
            (text("contentId"), course, text("batchId"))
        else {
            continue;
        };
        let Ok(key) = ContentKey::new(user, course, batch, content) else {
            continue;
        };
        let status = match row.get("status").and_then(Value::as_i64).unwrap_or(0) {
            s if s >= 2 => Status::Completed,
            1 => Status::InProgress,
            _ => Status::NotStarted,
        };
        let progress = row
            .get("progress")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .clamp(0, 100);
        let progress = Progress::new(progress).map_err(|e| e.to_string())?;
        let date = |name: &str| text(name).and_then(parse_date);
        let completed = if status == Status::Completed {
            date("lastCompletedTime")
        } else {
            None
        };
        let state = ContentState::new(status, progress, date("lastAccessTime"), completed);
        items.push(ContentItem::new(key, state));
    }
    Ok(items)
}

/// Reads `result.courses` of an enrollment list. Every course keeps all the fields the server
/// sent (`fields`); `contentStatus` is accepted as a map or as a JSON string.
pub fn parse_enrollment_list(body: &[u8]) -> Result<Vec<EnrolledCourse>, String> {
    let envelope: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let courses = envelope
        .pointer("/result/courses")
        .and_then(Value::as_array)
        .ok_or("no result.courses")?;
    let mut out = Vec::new();
    for course in courses {
        let Some(fields) = course.as_object() else {
            continue;
        };
        let text = |name: &str| fields.get(name).and_then(Value::as_str);
        let Some(course_id) = text("courseId")
            .or_else(|| text("collectionId"))
            .or_else(|| text("contentId"))
        else {
            continue;
        };
        let Some(batch_id) = text("batchId") else {
            continue;
        };
        let number = |v: Option<&Value>| {
            v.and_then(Value::as_u64)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let content = fields.get("content");
        let leaf_nodes: Option<Vec<String>> = content
            .and_then(|c| c.get("leafNodes"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            });
        let leaf_nodes_count = number(fields.get("leafNodesCount"))
            .or_else(|| number(content.and_then(|c| c.get("leafNodesCount"))))
            .or_else(|| {
                leaf_nodes
                    .as_ref()
                    .map(|l| u32::try_from(l.len()).unwrap_or(u32::MAX))
            })
            .unwrap_or(0);
        let batch_status = fields
            .get("batch")
            .and_then(|b| b.get("status"))
            .and_then(Value::as_i64)
            .or_else(|| {
                content
                    .and_then(|c| c.get("batches"))
                    .and_then(Value::as_array)?
                    .iter()
                    .find(|b| b.get("batchId").and_then(Value::as_str) == Some(batch_id))?
                    .get("status")?
                    .as_i64()
            });
        let mut enrolled = EnrolledCourse::new(course_id, batch_id, leaf_nodes_count);
        enrolled.progress = number(fields.get("progress")).unwrap_or(0);
        enrolled.completion_percentage = number(fields.get("completionPercentage")).unwrap_or(0);
        enrolled.status = fields
            .get("status")
            .and_then(Value::as_u64)
            .map_or(0, |s| u8::try_from(s.min(2)).unwrap_or(2));
        enrolled.content_status = content_status(fields.get("contentStatus"));
        enrolled.leaf_nodes = leaf_nodes;
        enrolled.batch_status = batch_status;
        enrolled.fields = fields.clone();
        out.push(enrolled);
    }
    Ok(out)
}

fn content_status(value: Option<&Value>) -> BTreeMap<String, u8> {
    let parsed;
    let map = match value {
        Some(Value::Object(map)) => map,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => {
                parsed = map;
                &parsed
            }
            _ => return BTreeMap::new(),
        },
        _ => return BTreeMap::new(),
    };
    map.iter()
        .filter_map(|(id, status)| {
            let s = status.as_u64()?.min(2);
            Some((id.clone(), u8::try_from(s).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(content: &str, batch: &str, status: Status, progress: i64) -> ContentItem {
        ContentItem::new(
            ContentKey::new("u1", "do_course", batch, content).unwrap(),
            ContentState::new(status, Progress::new(progress).unwrap(), None, None),
        )
    }

    fn out(item: ContentItem, confirmed: bool) -> Outgoing {
        let server = confirmed.then(ContentState::default);
        Outgoing { item, server }
    }

    #[test]
    fn an_item_whose_batch_the_answer_names_only_loosely_is_never_acknowledged() {
        let closed = out(item("do_1", "B-Closed", Status::Completed, 100), true);
        let open = out(item("do_2", "b-open", Status::Completed, 100), true);
        let body = br#"{"responseCode":"OK","result":{"do_1":"SUCCESS","do_2":"SUCCESS",
            "NOT_A_ON_GOING_BATCH":[" b-closed"]}}"#;
        let UpdateAnswer::Items(outcomes) = interpret_update(200, body, &[&closed, &open]) else {
            panic!("not per-item outcomes");
        };
        assert!(
            matches!(&outcomes[0], ItemOutcome::Rejected { reason } if reason.starts_with("NOT_A_ON_GOING_BATCH")),
            "{:?}",
            outcomes[0]
        );
        assert_eq!(outcomes[1], ItemOutcome::Acknowledged);
    }

    proptest::proptest! {
        #[test]
        fn every_timestamp_round_trips_in_sunbird_format(ms in 946_684_800_000i64..=253_402_300_799_999) {
            let t = Timestamp::from_millis(ms).unwrap();
            proptest::prop_assert_eq!(parse_date(&format_date(t)), Some(t));
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
        }
    }

    #[test]
    fn dates_round_trip_in_sunbird_format() {
        for ms in [946_684_800_000, 1_714_558_530_123, 1_900_000_000_999] {
            let t = Timestamp::from_millis(ms).unwrap();
            assert_eq!(parse_date(&format_date(t)), Some(t));
        }
        for bad in [
            "2024-05-01 10:15:30+0000",
            "2024-13-01 10:15:30:123+0000",
            "2024-05-01 10:15:30:123Z",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn mixed_result_acknowledges_and_rejects_item_by_item() {
        let sent = [
            out(item("do_1", "b_ok", Status::Completed, 100), true),
            out(item("do_2", "b_closed", Status::Completed, 100), true),
            out(item("do_3", "b_gone", Status::Completed, 100), true),
            out(item("do_4", "b_ok", Status::Completed, 100), true),
            out(item("do_5", "b_ok", Status::Completed, 100), true),
        ];
        let refs: Vec<&Outgoing> = sent.iter().collect();
        let body = br#"{"id":"api.content.state.update","responseCode":"OK","result":{
            "do_1":"SUCCESS","do_2":"SUCCESS","do_5":"FAILED",
            "NOT_A_ON_GOING_BATCH":["b_closed"],"BATCH_NOT_EXISTS":["b_gone"]}}"#;
        let UpdateAnswer::Items(outcomes) = interpret_update(200, body, &refs) else {
            panic!("not per item")
        };
        assert_eq!(outcomes[0], ItemOutcome::Acknowledged);
        assert_eq!(
            outcomes[1],
            ItemOutcome::Rejected {
                reason: "NOT_A_ON_GOING_BATCH".into()
            }
        );
        assert_eq!(
            outcomes[2],
            ItemOutcome::Rejected {
                reason: "BATCH_NOT_EXISTS".into()
            }
        );
        assert!(matches!(&outcomes[3], ItemOutcome::Dropped { reason } if reason == NOT_IN_RESULT));
        assert_eq!(
            outcomes[4],
            ItemOutcome::Rejected {
                reason: "FAILED".into()
            }
        );
    }

    #[test]
    fn first_write_with_status_1_is_held_lower() {
        let first = out(item("do_1", "b", Status::InProgress, 60), false);
        let again = out(item("do_1", "b", Status::InProgress, 60), true);
        let body = br#"{"result":{"do_1":"SUCCESS"}}"#;
        assert!(matches!(
            interpret_update(200, body, &[&first]),
            UpdateAnswer::Items(o) if matches!(o[0], ItemOutcome::HeldLower { .. })
        ));
        assert_eq!(
            interpret_update(200, body, &[&again]),
            UpdateAnswer::Items(vec![ItemOutcome::Acknowledged])
        );
    }

    #[test]
    fn statuses_map_to_answers() {
        let sent = out(item("do_1", "b", Status::Completed, 100), true);
        let body = br#"{"params":{"err":"DATE_FORMAT_ERRROR","errmsg":"Date format error."},"responseCode":"CLIENT_ERROR","result":{}}"#;
        assert_eq!(
            interpret_update(400, body, &[&sent]),
            UpdateAnswer::ClientError {
                reason: "DATE_FORMAT_ERRROR: Date format error.".into()
            }
        );
        assert_eq!(
            interpret_update(401, b"", &[&sent]),
            UpdateAnswer::Unauthorized { status: 401 }
        );
        assert_eq!(
            interpret_update(503, b"", &[&sent]),
            UpdateAnswer::Retry(RetryCause::Server { status: 503 })
        );
        assert!(matches!(
            interpret_update(200, b"<html>", &[&sent]),
            UpdateAnswer::Retry(_)
        ));
    }

    #[test]
    fn enrollment_list_accepts_content_status_as_a_string_and_keeps_unknown_fields() {
        let body = br#"{"result":{"courses":[{"courseId":"do_c","batchId":"b1","progress":1,
            "leafNodesCount":3,"completionPercentage":33,"status":1,"courseName":"Fractions",
            "contentStatus":"{\"do_1\":2}","content":{"leafNodes":["do_1","do_2","do_3"],
            "batches":[{"batchId":"b1","status":1}]}}]}}"#;
        let courses = parse_enrollment_list(body).unwrap();
        assert_eq!(courses[0].content_status.get("do_1"), Some(&2));
        assert_eq!(courses[0].leaf_nodes.as_ref().map(Vec::len), Some(3));
        assert_eq!(courses[0].batch_status, Some(1));
        assert_eq!(courses[0].fields["courseName"], "Fractions");
    }
}
