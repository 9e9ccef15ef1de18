//! `POST /v1/content/state/read`: a learner's rows of one course batch, consistent at once
//! with every update.

use rusqlite::params;
use serde_json::{json, Map, Value};

use super::envelope::{client_error, envelope, server_error, READ_API};
use super::validation::trimmed;
use super::{CourseService, Reply};

impl CourseService {
    /// `POST /v1/content/state/read`.
    pub fn read(&self, caller: Option<&str>, body: &Value, now: i64) -> Reply {
        let request = body.get("request").cloned().unwrap_or(Value::Null);
        let text = |name: &str| trimmed(request.get(name));
        let mut course = text("courseId");
        if course.is_empty() {
            course = text("collectionId");
        }
        if course.is_empty() {
            course = request
                .get("courseIds")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
        let batch = text("batchId");
        if course.is_empty() {
            return client_error(
                READ_API,
                now,
                "MANDATORY_PARAMETER_MISSING",
                "Mandatory parameter courseId is missing.",
            );
        }
        if batch.is_empty() {
            return client_error(
                READ_API,
                now,
                "MANDATORY_PARAMETER_MISSING",
                "Mandatory parameter batchId is missing.",
            );
        }
        let user = caller.map_or_else(|| text("userId"), str::to_string);
        let wanted: Option<Vec<String>> =
            request
                .get("contentIds")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                });
        let conn = self.conn();
        let rows = (|| -> rusqlite::Result<Vec<Value>> {
            let mut select = conn.prepare(
                "SELECT content_id, status, progress, last_access_time, last_completed_time
                FROM consumption WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3
                ORDER BY content_id",
            )?;
            let rows = select.query_map(params![user, course, batch], |r| {
                let mut row = Map::new();
                row.insert("contentId".into(), json!(r.get::<_, String>(0)?));
                row.insert("courseId".into(), json!(course));
                row.insert("collectionId".into(), json!(course));
                row.insert("batchId".into(), json!(batch));
                row.insert("status".into(), json!(r.get::<_, i64>(1)?));
                row.insert("progress".into(), json!(r.get::<_, i64>(2)?));
                row.insert("viewCount".into(), json!(1));
                row.insert(
                    "completedCount".into(),
                    json!(i64::from(r.get::<_, i64>(1)? >= 2)),
                );
                row.insert("progressdetails".into(), json!({}));
                if let Some(t) = r.get::<_, Option<String>>(3)? {
                    row.insert("lastAccessTime".into(), json!(t));
                }
                if let Some(t) = r.get::<_, Option<String>>(4)? {
                    row.insert("lastCompletedTime".into(), json!(t));
                }
                Ok(Value::Object(row))
            })?;
            rows.collect()
        })();
        drop(conn);
        match rows {
            Ok(rows) => {
                let rows = rows
                    .into_iter()
                    .filter(|row| {
                        wanted.as_ref().is_none_or(|ids| {
                            row.get("contentId")
                                .and_then(Value::as_str)
                                .is_some_and(|id| ids.iter().any(|w| w == id))
                        })
                    })
                    .collect::<Vec<_>>();
                envelope(READ_API, now, 200, None, json!({ "contentList": rows }))
            }
            Err(error) => {
                tracing::error!(%error, "read failed");
                server_error(READ_API, now)
            }
        }
    }
}
