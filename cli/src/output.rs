//! How content items are printed: the JSON shape scripts rely on.

use headway::{ContentItem, Timestamp};
use serde_json::{json, Value};

/// One content item as JSON: `userId, courseId, batchId, contentId, status, progress,
/// lastAccessTime, lastCompletedTime`, times as RFC 3339 UTC strings or null.
pub fn item_json(item: &ContentItem) -> Value {
    let key = item.key();
    let state = item.state();
    json!({
        "userId": key.user(),
        "courseId": key.course(),
        "batchId": key.batch(),
        "contentId": key.content(),
        "status": state.status().code(),
        "progress": state.progress().get(),
        "lastAccessTime": state.last_access_time().map(Timestamp::to_rfc3339),
        "lastCompletedTime": state.last_completed_time().map(Timestamp::to_rfc3339),
    })
}

/// Prints items as one JSON array (`json`) or one JSON object per line.
pub fn print_items(items: &[ContentItem], json: bool) -> anyhow::Result<()> {
    if json {
        let all: Vec<Value> = items.iter().map(item_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for item in items {
            println!("{}", serde_json::to_string(&item_json(item))?);
        }
    }
    Ok(())
}

/// A progress bar of 20 cells for a percentage.
pub fn bar(percent: u8) -> String {
    let filled = usize::from(percent.min(100)) / 5;
    format!(
        "[{}{}] {percent:>3}%",
        "#".repeat(filled),
        ".".repeat(20 - filled)
    )
}
