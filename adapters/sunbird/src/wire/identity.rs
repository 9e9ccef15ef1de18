//! Whose data an answer carries: the first `userId` that is not the learner asked for.

use headway::UserId;
use serde_json::Value;

/// The first `userId` in the rows of a content-state read (`result.contentList`) that is
/// present with any value other than `user`'s id string, as the server wrote it (a string as
/// is, anything else as its JSON text), shortened to [`ANSWERED_LEN`] characters. A row with
/// no `userId` key names nobody (Sunbird's read leaves it out); a `userId` of `42`, `null`,
/// `""` or `["bob"]` names someone else: the whole answer is refused (issue 17).
///
/// ```
/// let bob = headway::UserId::new("bob")?;
/// let read = |rows: &str| format!(r#"{{"result":{{"contentList":[{rows}]}}}}"#);
/// let named = |rows: &str| headway_sunbird::wire::other_learner_in_read(&bob, read(rows).as_bytes());
/// assert_eq!(named(r#"{"contentId":"do_1"},{"userId":"bob"}"#), None);
/// assert_eq!(named(r#"{"userId":7}"#).as_deref(), Some("7"));
/// assert_eq!(named(r#"{"userId":"asha"}"#).as_deref(), Some("asha"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn other_learner_in_read(user: &UserId, body: &[u8]) -> Option<String> {
    other_learner(user, body, "contentList")
}

/// The first `userId` in the entries of an enrollment list (`result.courses`) that is present
/// with any value other than `user`'s id string, as [`other_learner_in_read`] reads it.
///
/// ```
/// let bob = headway::UserId::new("bob")?;
/// let body = br#"{"result":{"courses":[{"courseId":"do_c","userId":42}]}}"#;
/// assert_eq!(headway_sunbird::wire::other_learner_in_list(&bob, body).as_deref(), Some("42"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn other_learner_in_list(user: &UserId, body: &[u8]) -> Option<String> {
    other_learner(user, body, "courses")
}

/// How many characters of a foreign `userId` an error repeats.
pub const ANSWERED_LEN: usize = 64;

/// The first `userId` of `result.<rows>` that is not `user`'s id string, shortened.
fn other_learner(user: &UserId, body: &[u8], rows: &str) -> Option<String> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let rows = answer.get("result")?.get(rows)?.as_array()?;
    rows.iter()
        .filter_map(|row| row.as_object()?.get("userId"))
        .find(|named| named.as_str() != Some(user.as_str()))
        .map(|named| {
            let text = match named {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            match text.char_indices().nth(ANSWERED_LEN) {
                Some((end, _)) => format!("{}...", &text[..end]),
                None => text,
            }
        })
}
