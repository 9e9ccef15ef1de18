//! Reading an update's items the way Sunbird's `RequestValidator` does: the first item that
//! fails refuses the whole request.

use headway_sunbird::wire::{format_date, parse_date};
use serde_json::Value;

use super::envelope::{client_error, server_error, UPDATE_API};
use super::Reply;

/// Re-formats a date the way the server's JVM would (UTC): the request is refused unless the
/// re-formatted string equals the input.
fn round_trips(text: &str) -> bool {
    parse_date(text).is_some_and(|t| format_date(t) == text)
}

/// The answer that refuses the whole update for its first invalid item, if one is invalid.
pub(super) fn refusal(contents: &[&Value], now: i64) -> Option<Reply> {
    let refused = |err: &str, msg: &str| Some(client_error(UPDATE_API, now, err, msg));
    for item in contents {
        let text = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("");
        if item.get("contentId").is_none_or(Value::is_null) {
            return refused("CONTENT_ID_REQUIRED_ERROR", "Content id is mandatory.");
        }
        if text("courseId").trim().is_empty() && text("collectionId").trim().is_empty() {
            return refused("COURSE_ID_REQUIRED_ERROR", "Course id is mandatory.");
        }
        if item.get("status").is_none_or(Value::is_null) {
            return refused(
                "CONTENT_STATUS_MISSING_ERROR",
                "content status is required .",
            );
        }
        for field in ["lastUpdatedTime", "lastCompletedTime"] {
            match item.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if round_trips(s) => {}
                Some(_) => return refused("DATE_FORMAT_ERRROR", "Date format error."),
            }
        }
        // lastAccessTime is parsed strictly inside the actor: a bad one is a server error.
        match item.get("lastAccessTime") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if parse_date(s).is_some() => {}
            Some(_) => return Some(server_error(UPDATE_API, now)),
        }
    }
    None
}

pub(super) fn content_of(item: &Value) -> String {
    match item.get("contentId") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A string field, trimmed; empty when absent or not a string.
pub(super) fn trimmed(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string()
}

pub(super) fn course_of(item: &Value) -> String {
    // `courseId` wins when the key is present.
    match trimmed(item.get("courseId")) {
        course if !course.is_empty() => course,
        _ => trimmed(item.get("collectionId")),
    }
}
