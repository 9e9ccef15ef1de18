//! `GET /v1/user/courses/list/{userId}`: the enrollment list, and its lag: course progress
//! comes from an asynchronous job over completions (Sunbird's Flink pipeline), and the list is
//! cached per learner.

use std::collections::BTreeMap;

use headway::{derive_course_progress, Timestamp};
use headway_sunbird::wire::{format_date, parse_date};
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use super::envelope::{envelope, server_error, LIST_API};
use super::{store_error, CourseService, Reply};
use crate::error::Result;

impl CourseService {
    /// `GET /v1/user/courses/list/{userId}`: active enrolments with course progress as the
    /// progress job last computed it, cached per learner unless `bypass_cache`.
    pub fn list(
        &self,
        caller: Option<&str>,
        path_user: &str,
        bypass_cache: bool,
        now: i64,
    ) -> Reply {
        let user = caller.unwrap_or(path_user).to_string();
        let lag = *self
            .lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !bypass_cache {
            let cache = self
                .list_cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, body)) = cache.get(&user) {
                if now - at < lag.list_cache_ms {
                    return Reply {
                        status: 200,
                        body: body.clone(),
                    };
                }
            }
        }
        if let Err(error) = self.run_progress_job(now - lag.progress_ms) {
            tracing::error!(%error, "progress job failed");
            return server_error(LIST_API, now);
        }
        match self.courses_of(&user) {
            Ok(courses) => {
                let reply = envelope(LIST_API, now, 200, None, json!({ "courses": courses }));
                self.list_cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(user, (now, reply.body.clone()));
                reply
            }
            Err(error) => {
                tracing::error!(%error, "list failed");
                server_error(LIST_API, now)
            }
        }
    }

    /// The asynchronous job of Sunbird's pipeline: completions up to `until` are folded into
    /// their enrolment's `contentStatus` and `progress` (completed leaf nodes).
    pub(super) fn run_progress_job(&self, until: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(store_error)?;
        let events: Vec<(i64, String, String, String, String)> = {
            let mut select = tx
                .prepare("SELECT seq, user_id, course_id, batch_id, content_id FROM progress_event WHERE at <= ?1 ORDER BY seq")
                .map_err(store_error)?;
            let rows = select
                .query_map(params![until], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(store_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(store_error)?
        };
        let mut grouped: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
        for (seq, user, course, batch, content) in events {
            grouped
                .entry((user, course, batch))
                .or_default()
                .push(content);
            tx.execute("DELETE FROM progress_event WHERE seq = ?1", params![seq])
                .map_err(store_error)?;
        }
        for ((user, course, batch), contents) in grouped {
            let current: Option<(String, Option<i64>)> = tx
                .query_row(
                    "SELECT content_status, completed_on FROM enrolment WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3",
                    params![user, course, batch],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(store_error)?;
            let Some((status_json, completed_on)) = current else {
                continue;
            };
            let mut statuses: BTreeMap<String, i64> =
                serde_json::from_str(&status_json).unwrap_or_default();
            for content in contents {
                statuses.insert(content, 2);
            }
            let leaf_nodes: Vec<String> = tx
                .query_row(
                    "SELECT leaf_nodes FROM course WHERE course_id = ?1",
                    params![course],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(store_error)?
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default();
            let completed = leaf_nodes
                .iter()
                .filter(|leaf| statuses.get(*leaf) == Some(&2))
                .count();
            let completed = u32::try_from(completed).unwrap_or(u32::MAX);
            let count = u32::try_from(leaf_nodes.len()).unwrap_or(u32::MAX);
            let (_, status) = derive_course_progress(completed, count);
            let completed_on = if status == 2 {
                completed_on.or(Some(until.min(i64::MAX / 2)))
            } else {
                completed_on
            };
            tx.execute(
                "UPDATE enrolment SET content_status = ?4, progress = ?5, status = ?6, completed_on = ?7
                WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3",
                params![user, course, batch, json!(statuses).to_string(), completed, status, completed_on],
            )
            .map_err(store_error)?;
        }
        tx.commit().map_err(store_error)
    }

    fn courses_of(&self, user: &str) -> Result<Vec<Value>> {
        let conn = self.conn();
        let mut select = conn
            .prepare(
                "SELECT e.course_id, e.batch_id, e.enrolled_at, e.progress, e.content_status,
                    e.completed_on, e.last_read_content_id, e.last_read_content_status,
                    e.last_content_access_time, c.name, c.leaf_nodes, b.status
                FROM enrolment e JOIN course c ON c.course_id = e.course_id
                LEFT JOIN batch b ON b.batch_id = e.batch_id
                WHERE e.user_id = ?1
                ORDER BY e.enrolled_at DESC",
            )
            .map_err(store_error)?;
        let rows = select
            .query_map(params![user], |r| {
                let course: String = r.get(0)?;
                let batch: String = r.get(1)?;
                let enrolled_at: i64 = r.get(2)?;
                let progress: u32 = r.get(3)?;
                let content_status: Value = serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or(json!({}));
                let leaf_nodes: Vec<String> = serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default();
                let count = u32::try_from(leaf_nodes.len()).unwrap_or(u32::MAX);
                let (percentage, status) = derive_course_progress(progress, count);
                let batch_status: Option<i64> = r.get(11)?;
                let enrolled = Timestamp::from_millis(enrolled_at).map(format_date).unwrap_or_default();
                Ok(json!({
                    "courseId": course, "collectionId": course, "contentId": course,
                    "batchId": batch, "userId": user, "courseName": r.get::<_, String>(9)?,
                    "active": true, "enrolledDate": enrolled, "dateTime": enrolled_at,
                    "completedOn": r.get::<_, Option<i64>>(5)?,
                    "leafNodesCount": count, "progress": progress,
                    "completionPercentage": percentage, "status": status,
                    "contentStatus": content_status,
                    "lastReadContentId": r.get::<_, Option<String>>(6)?,
                    "lastReadContentStatus": r.get::<_, Option<i64>>(7)?,
                    "lastContentAccessTime": r.get::<_, Option<String>>(8)?,
                    "content": {
                        "identifier": course, "mimeType": "application/vnd.ekstep.content-collection",
                        "primaryCategory": "Course", "trackable": {"enabled": "Yes", "autoBatch": "Yes"},
                        "leafNodes": leaf_nodes, "leafNodesCount": count, "status": "Live",
                        "batches": [{"batchId": batch, "status": batch_status, "enrollmentType": "open"}]
                    },
                    "batch": {"batchId": batch, "identifier": batch, "status": batch_status},
                    "issuedCertificates": [], "certificates": []
                }))
            })
            .map_err(store_error)?;
        let mut courses = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)?;
        // Sunbird re-sorts by last content access, most recent first.
        courses.sort_by_key(|c| {
            std::cmp::Reverse(
                c.get("lastContentAccessTime")
                    .and_then(Value::as_str)
                    .and_then(parse_date),
            )
        });
        Ok(courses)
    }
}
