//! `PATCH /v1/content/state/update`: items grouped by batch, only ongoing batches written,
//! items of another user than the token's dropped, each item merged against the stored row in
//! one transaction, and the result map; an update with no contents is the enrolment-sync form.

use std::collections::HashMap;

use headway::Timestamp;
use headway_sunbird::wire::{format_date, parse_date};
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Map, Value};

use super::envelope::{client_error, envelope, UPDATE_API};
use super::merge::{merge, Consumption};
use super::validation::{content_of, course_of, refusal, trimmed};
use super::{store_error, CourseService, Reply, UnknownBatches, REMOVED_BATCH};
use crate::error::Result;

/// How a batch named by an update stands.
enum Standing {
    /// Ongoing: its items are written.
    Ongoing,
    /// Known but not ongoing: listed under `NOT_A_ON_GOING_BATCH`.
    NotOngoing,
    /// Unknown or removed: listed under `BATCH_NOT_EXISTS`.
    Missing,
}

/// Groups items under the key `key` gives each, in the order the keys first appear; an item
/// with no key is dropped.
fn group_in_order<'a>(
    items: impl IntoIterator<Item = &'a Value>,
    key: impl Fn(&Value) -> Option<String>,
) -> Vec<(String, Vec<&'a Value>)> {
    let mut groups: Vec<(String, Vec<&Value>)> = Vec::new();
    for item in items {
        let Some(key) = key(item) else {
            continue;
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(item),
            None => groups.push((key, vec![item])),
        }
    }
    groups
}

/// Groups items by batch, in the order of first appearance; items with a blank batch are
/// dropped (Sunbird drops them without a trace).
fn by_batch<'a>(contents: &[&'a Value]) -> Vec<(String, Vec<&'a Value>)> {
    group_in_order(contents.iter().copied(), |item| {
        Some(trimmed(item.get("batchId"))).filter(|batch| !batch.is_empty())
    })
}

/// Groups one batch's items by user: blank means the primary user; an item of anyone but the
/// token's user is dropped silently.
fn by_user<'a>(
    items: Vec<&'a Value>,
    caller: Option<&str>,
    primary: Option<&str>,
) -> Vec<(String, Vec<&'a Value>)> {
    group_in_order(items, |item| {
        let user = match trimmed(item.get("userId")) {
            given if given.is_empty() => primary?.to_string(),
            given => given,
        };
        caller.is_none_or(|c| c == user).then_some(user)
    })
}

/// How `batch` stands; an unknown batch is taken as ongoing (and remembered) when the policy
/// says so, under the course of its first item.
fn standing(
    tx: &Transaction<'_>,
    batch: &str,
    first: &Value,
    unknown: UnknownBatches,
) -> Result<Standing> {
    let status: Option<i64> = tx
        .query_row(
            "SELECT status FROM batch WHERE batch_id = ?1",
            params![batch],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_error)?;
    let status = match (status, unknown) {
        (None, UnknownBatches::Ongoing) => {
            tx.execute(
                "INSERT INTO batch (batch_id, course_id, status) VALUES (?1, ?2, 1)",
                params![batch, course_of(first)],
            )
            .map_err(store_error)?;
            Some(1)
        }
        (status, _) => status,
    };
    Ok(match status {
        None | Some(REMOVED_BATCH) => Standing::Missing,
        Some(s) if s != 1 => Standing::NotOngoing,
        Some(_) => Standing::Ongoing,
    })
}

/// The stored rows of one (batch, user) group, read once with the first item's course: each
/// item is merged against this snapshot, not against earlier items.
fn snapshot(
    tx: &Transaction<'_>,
    user: &str,
    course: &str,
    batch: &str,
    items: &[&Value],
) -> Result<HashMap<String, Consumption>> {
    let mut snapshot = HashMap::new();
    for item in items {
        let content = content_of(item);
        let row = tx
            .prepare_cached(
                "SELECT status, progress, last_access_time, last_completed_time
                FROM consumption WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3
                    AND content_id = ?4",
            )
            .map_err(store_error)?
            .query_row(params![user, course, batch, content], |r| {
                Ok(Consumption {
                    status: r.get(0)?,
                    progress: r.get(1)?,
                    last_access: r.get(2)?,
                    last_completed: r.get(3)?,
                })
            })
            .optional()
            .map_err(store_error)?;
        if let Some(row) = row {
            snapshot.insert(content, row);
        }
    }
    Ok(snapshot)
}

/// Merges and writes one (batch, user) group: the rows, a progress event per completion (for
/// the list's job), the enrolment's last-read content; marks each item `SUCCESS` in `result`.
fn write_group(
    tx: &Transaction<'_>,
    (batch, user): (&str, &str),
    items: &[&Value],
    (now, now_text): (i64, Option<&str>),
    result: &mut Map<String, Value>,
) -> Result<()> {
    let course = course_of(items[0]);
    let snapshot = snapshot(tx, user, &course, batch, items)?;
    let mut latest_access: Option<(String, String, i64)> = None;
    for item in items {
        let content = content_of(item);
        let merged = merge(snapshot.get(&content), item, now_text);
        tx.prepare_cached(
            "INSERT OR REPLACE INTO consumption (user_id, course_id, batch_id,
                content_id, status, progress, last_access_time, last_completed_time,
                last_updated_time)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(store_error)?
        .execute(params![
            user,
            course,
            batch,
            content,
            merged.status,
            merged.progress,
            merged.last_access,
            merged.last_completed,
            now_text
        ])
        .map_err(store_error)?;
        if merged.status >= 2 {
            tx.prepare_cached(
                "INSERT INTO progress_event (user_id, course_id, batch_id, content_id, at)
                VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(store_error)?
            .execute(params![user, course, batch, content, now])
            .map_err(store_error)?;
        }
        let access = merged.last_access.clone().unwrap_or_default();
        if latest_access
            .as_ref()
            .is_none_or(|(a, _, _)| parse_date(&access) > parse_date(a))
        {
            latest_access = Some((access, content.clone(), merged.status));
        }
        result.insert(content, json!("SUCCESS"));
    }
    if let Some((access, content, status)) = latest_access {
        tx.execute(
            "UPDATE enrolment SET last_read_content_id = ?4, last_read_content_status = ?5,
                last_content_access_time = ?6
            WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3",
            params![user, course, batch, content, status, access],
        )
        .map_err(store_error)?;
    }
    Ok(())
}

impl CourseService {
    pub(super) fn try_update(&self, caller: Option<&str>, body: &Value, now: i64) -> Result<Reply> {
        let Some(request) = body.get("request").and_then(Value::as_object) else {
            return Ok(client_error(
                UPDATE_API,
                now,
                "INVALID_REQUESTED_DATA",
                "Invalid request.",
            ));
        };
        let contents: Vec<&Value> = request
            .get("contents")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if contents.is_empty() {
            return self.enrolment_sync(caller, request, now);
        }
        if let Some(refused) = refusal(&contents, now) {
            return Ok(refused);
        }
        let primary = caller.map(str::to_string).or_else(|| {
            request
                .get("userId")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let mut result = Map::new();
        let mut not_ongoing: Vec<String> = Vec::new();
        let mut not_exists: Vec<String> = Vec::new();
        let now_text = Timestamp::from_millis(now).map(format_date).ok();
        let unknown = *self
            .unknown_batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(store_error)?;
        for (batch, items) in by_batch(&contents) {
            match standing(&tx, &batch, items[0], unknown)? {
                Standing::Missing => not_exists.push(batch),
                Standing::NotOngoing => not_ongoing.push(batch),
                Standing::Ongoing => {
                    for (user, items) in by_user(items, caller, primary.as_deref()) {
                        write_group(
                            &tx,
                            (&batch, &user),
                            &items,
                            (now, now_text.as_deref()),
                            &mut result,
                        )?;
                    }
                }
            }
        }
        tx.commit().map_err(store_error)?;
        drop(conn);
        if !not_ongoing.is_empty() {
            result.insert("NOT_A_ON_GOING_BATCH".into(), json!(not_ongoing));
        }
        if !not_exists.is_empty() {
            result.insert("BATCH_NOT_EXISTS".into(), json!(not_exists));
        }
        Ok(envelope(UPDATE_API, now, 200, None, Value::Object(result)))
    }

    /// The enrolment-sync form: an update with no contents asks for a recompute.
    fn enrolment_sync(
        &self,
        caller: Option<&str>,
        request: &Map<String, Value>,
        now: i64,
    ) -> Result<Reply> {
        let text = |name: &str| trimmed(request.get(name));
        let course = Some(text("courseId"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| text("collectionId"));
        let (batch, user) = (text("batchId"), text("userId"));
        if course.is_empty() {
            return Ok(client_error(
                UPDATE_API,
                now,
                "COURSE_ID_REQUIRED_ERROR",
                "Course id is mandatory.",
            ));
        }
        if batch.is_empty() {
            return Ok(client_error(
                UPDATE_API,
                now,
                "COURSE_BATCH_ID_MISSING",
                "Course batch Id required",
            ));
        }
        if user.is_empty() {
            return Ok(client_error(
                UPDATE_API,
                now,
                "USERID_MISSING",
                "UserId is mandatory.",
            ));
        }
        let user = caller.map_or(user, str::to_string);
        let found: Option<i64> = self
            .conn()
            .query_row(
                "SELECT 1 FROM enrolment WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3",
                params![user, course, batch],
                |r| r.get(0),
            )
            .optional()
            .map_err(store_error)?;
        if found.is_none() {
            let msg = format!(
                "No Enrolment found for userId: {user}, batchId: {batch}, courseId: {course}"
            );
            return Ok(client_error(
                UPDATE_API,
                now,
                "INVALID_REQUESTED_DATA",
                &msg,
            ));
        }
        self.run_progress_job(i64::MAX)?;
        self.forget_list(&user);
        Ok(envelope(
            UPDATE_API,
            now,
            200,
            None,
            json!({"response": "SUCCESS"}),
        ))
    }
}
