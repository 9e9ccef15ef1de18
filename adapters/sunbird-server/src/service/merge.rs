//! Sunbird's per-content merge (`ContentConsumptionActor`): status and progress never go
//! down, times take the later value, and a first write with status 1 stores progress 0.

use headway_sunbird::wire::parse_date;
use serde_json::Value;

/// A stored consumption row.
#[derive(Clone, Debug)]
pub(super) struct Consumption {
    pub(super) status: i64,
    pub(super) progress: i64,
    pub(super) last_access: Option<String>,
    pub(super) last_completed: Option<String>,
}

fn later(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (ta, tb) = (parse_date(&a), parse_date(&b));
            if ta >= tb {
                Some(a)
            } else {
                Some(b)
            }
        }
        (a, b) => a.or(b),
    }
}

/// Sunbird's per-content merge (`ContentConsumptionActor`).
pub(super) fn merge(stored: Option<&Consumption>, item: &Value, now: Option<&str>) -> Consumption {
    let input_status = item.get("status").and_then(Value::as_i64).unwrap_or(0);
    let input_progress = item.get("progress").and_then(Value::as_i64).unwrap_or(0);
    let date = |name: &str| item.get(name).and_then(Value::as_str).map(String::from);
    let now = now.map(String::from);
    match stored {
        None => {
            let completed = input_status >= 2;
            Consumption {
                status: input_status,
                progress: if completed { 100 } else { 0 },
                last_access: date("lastAccessTime").or(now.clone()),
                last_completed: if completed {
                    date("lastCompletedTime").or(now)
                } else {
                    None
                },
            }
        }
        Some(row) => {
            let status = if input_status >= row.status {
                input_status.min(2)
            } else {
                row.status
            };
            let progress = if status >= 2 {
                100
            } else {
                input_progress.max(row.progress)
            };
            let last_access =
                later(date("lastAccessTime"), row.last_access.clone()).or(now.clone());
            let last_completed = if input_status >= 2 {
                later(date("lastCompletedTime"), row.last_completed.clone()).or(now)
            } else {
                row.last_completed.clone()
            };
            Consumption {
                status,
                progress,
                last_access,
                last_completed,
            }
        }
    }
}
