//! The course service's semantics, transport-free: the three endpoints as functions from a
//! request body (and the caller's resolved user) to an HTTP status and a JSON body, over a
//! SQLite store. The HTTP layer and the deterministic simulation call the same code.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use headway::{derive_course_progress, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use headway_sunbird::wire::{format_date, parse_date};

/// An HTTP status and a JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

/// How a batch stands: only ongoing batches take updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStatus {
    /// 0: not started yet.
    Upcoming,
    /// 1: ongoing.
    Ongoing,
    /// 2: completed (closed).
    Closed,
}

impl BatchStatus {
    fn code(self) -> i64 {
        match self {
            BatchStatus::Upcoming => 0,
            BatchStatus::Ongoing => 1,
            BatchStatus::Closed => 2,
        }
    }
}

/// What an update for a batch the service never heard of gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownBatches {
    /// The batch is taken as ongoing (and remembered), so the service works out of the box.
    /// A batch removed with [`CourseService::remove_batch`] still answers `BATCH_NOT_EXISTS`.
    Ongoing,
    /// `BATCH_NOT_EXISTS`, as Sunbird answers for a batch missing from its search index.
    Missing,
}

/// How long the enrollment list lags behind updates, like Sunbird's asynchronous course
/// progress job and its response cache.
#[derive(Clone, Copy, Debug)]
pub struct Lag {
    /// Completions reach a course's progress only this many milliseconds after the update.
    pub progress_ms: i64,
    /// A learner's list is cached this many milliseconds (bypassed by `cache=false`).
    pub list_cache_ms: i64,
}

impl Default for Lag {
    fn default() -> Lag {
        Lag {
            progress_ms: 2_000,
            list_cache_ms: 60_000,
        }
    }
}

/// The reference course service's state and rules.
pub struct CourseService {
    conn: Mutex<Connection>,
    unknown_batches: Mutex<UnknownBatches>,
    lag: Mutex<Lag>,
    list_cache: Mutex<HashMap<String, (i64, Value)>>,
}

impl std::fmt::Debug for CourseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CourseService").finish_non_exhaustive()
    }
}

fn store_error(e: rusqlite::Error) -> Error {
    Error::ServerStore {
        reason: e.to_string(),
    }
}

/// The envelope of every answer.
fn envelope(api: &str, now: i64, status: u16, err: Option<(&str, &str)>, result: Value) -> Reply {
    let (response_code, params) = match (status, err) {
        (200, _) => (
            "OK",
            json!({"resmsgid": null, "msgid": null, "err": null, "status": "success", "errmsg": null}),
        ),
        (code, Some((err, msg))) => {
            let response_code = match code {
                400 => "CLIENT_ERROR",
                401 => "UNAUTHORIZED",
                _ => "SERVER_ERROR",
            };
            let status_text = if code >= 500 { "SERVER_ERROR" } else { err };
            (
                response_code,
                json!({"resmsgid": null, "msgid": null, "err": err, "status": status_text, "errmsg": msg}),
            )
        }
        (_, None) => (
            "SERVER_ERROR",
            json!({"resmsgid": null, "msgid": null, "err": "INTERNAL_ERROR", "status": "SERVER_ERROR",
                   "errmsg": "Process failed,please try again later."}),
        ),
    };
    let ts = Timestamp::from_millis(now)
        .map(format_date)
        .unwrap_or_default();
    Reply {
        status,
        body: json!({"id": api, "ver": "v1", "ts": ts, "params": params,
                     "responseCode": response_code, "result": result}),
    }
}

fn client_error(api: &str, now: i64, err: &str, msg: &str) -> Reply {
    envelope(api, now, 400, Some((err, msg)), json!({}))
}

/// The 401 the gateway answers for a missing or refused token.
pub fn unauthorized(api: &str, now: i64) -> Reply {
    envelope(
        api,
        now,
        401,
        Some(("UNAUTHORIZED_USER", "You are not authorized.")),
        json!({}),
    )
}

/// A 500 with Sunbird's server-error envelope.
pub fn server_error(api: &str, now: i64) -> Reply {
    envelope(api, now, 500, None, json!({}))
}

/// The status a removed batch is kept with, so it is never taken for an unknown one.
const REMOVED_BATCH: i64 = -1;

const UPDATE_API: &str = "api.content.state.update";
const READ_API: &str = "api.content.state.read";
const LIST_API: &str = "api.user.courses.list";

/// A stored consumption row.
#[derive(Clone, Debug)]
struct Consumption {
    status: i64,
    progress: i64,
    last_access: Option<String>,
    last_completed: Option<String>,
}

/// Re-formats a date the way the server's JVM would (UTC): the request is refused unless the
/// re-formatted string equals the input.
fn round_trips(text: &str) -> bool {
    parse_date(text).is_some_and(|t| format_date(t) == text)
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

impl CourseService {
    /// Opens (or creates) the service's store; `None` keeps it in memory.
    pub fn open(path: Option<&std::path::Path>) -> Result<CourseService> {
        let conn = match path {
            Some(path) => Connection::open(path),
            None => Connection::open_in_memory(),
        }
        .map_err(store_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS course (
                course_id TEXT PRIMARY KEY, name TEXT NOT NULL, leaf_nodes TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS batch (
                batch_id TEXT PRIMARY KEY, course_id TEXT NOT NULL, status INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS enrolment (
                user_id TEXT NOT NULL, course_id TEXT NOT NULL, batch_id TEXT NOT NULL,
                enrolled_at INTEGER NOT NULL, progress INTEGER NOT NULL DEFAULT 0,
                status INTEGER NOT NULL DEFAULT 0, content_status TEXT NOT NULL DEFAULT '{}',
                completed_on INTEGER, last_read_content_id TEXT, last_read_content_status INTEGER,
                last_content_access_time TEXT,
                PRIMARY KEY (user_id, course_id, batch_id));
            CREATE TABLE IF NOT EXISTS consumption (
                user_id TEXT NOT NULL, course_id TEXT NOT NULL, batch_id TEXT NOT NULL,
                content_id TEXT NOT NULL, status INTEGER NOT NULL, progress INTEGER NOT NULL,
                last_access_time TEXT, last_completed_time TEXT, last_updated_time TEXT,
                PRIMARY KEY (user_id, course_id, batch_id, content_id));
            CREATE TABLE IF NOT EXISTS progress_event (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,
                course_id TEXT NOT NULL, batch_id TEXT NOT NULL, content_id TEXT NOT NULL,
                at INTEGER NOT NULL);",
        )
        .map_err(store_error)?;
        Ok(CourseService {
            conn: Mutex::new(conn),
            unknown_batches: Mutex::new(UnknownBatches::Ongoing),
            lag: Mutex::new(Lag::default()),
            list_cache: Mutex::new(HashMap::new()),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets what updates for unknown batches get.
    pub fn set_unknown_batches(&self, policy: UnknownBatches) {
        *self
            .unknown_batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = policy;
    }

    /// Sets how far the enrollment list lags.
    pub fn set_lag(&self, lag: Lag) {
        *self
            .lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = lag;
        self.list_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Adds or replaces a course and its leaf nodes.
    pub fn put_course(&self, course_id: &str, name: &str, leaf_nodes: &[String]) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO course (course_id, name, leaf_nodes) VALUES (?1, ?2, ?3)",
                params![course_id, name, json!(leaf_nodes).to_string()],
            )
            .map_err(store_error)?;
        Ok(())
    }

    /// Adds a batch of a course, or changes its status.
    pub fn put_batch(&self, batch_id: &str, course_id: &str, status: BatchStatus) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO batch (batch_id, course_id, status) VALUES (?1, ?2, ?3)",
                params![batch_id, course_id, status.code()],
            )
            .map_err(store_error)?;
        Ok(())
    }

    /// Removes a batch: updates for it answer `BATCH_NOT_EXISTS`.
    pub fn remove_batch(&self, batch_id: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO batch (batch_id, course_id, status) VALUES (?1, '', ?2)",
                params![batch_id, REMOVED_BATCH],
            )
            .map_err(store_error)?;
        Ok(())
    }

    /// Enrolls a learner in a course batch (as `POST /api/course/v1/enrol` would).
    pub fn enrol(&self, user: &str, course_id: &str, batch_id: &str, now: i64) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO enrolment (user_id, course_id, batch_id, enrolled_at)
                VALUES (?1, ?2, ?3, ?4)",
                params![user, course_id, batch_id, now],
            )
            .map_err(store_error)?;
        self.forget_list(user);
        Ok(())
    }

    fn forget_list(&self, user: &str) {
        self.list_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(user);
    }

    /// Every stored content state of a learner, as the read endpoint shows rows (for tests).
    pub fn states_of(&self, user: &str) -> Result<Vec<Value>> {
        let conn = self.conn();
        let mut select = conn
            .prepare(
                "SELECT course_id, batch_id, content_id, status, progress, last_access_time,
                    last_completed_time
                FROM consumption WHERE user_id = ?1 ORDER BY course_id, batch_id, content_id",
            )
            .map_err(store_error)?;
        let rows = select
            .query_map(params![user], |row| {
                Ok(json!({
                    "courseId": row.get::<_, String>(0)?,
                    "batchId": row.get::<_, String>(1)?,
                    "contentId": row.get::<_, String>(2)?,
                    "status": row.get::<_, i64>(3)?,
                    "progress": row.get::<_, i64>(4)?,
                    "lastAccessTime": row.get::<_, Option<String>>(5)?,
                    "lastCompletedTime": row.get::<_, Option<String>>(6)?,
                }))
            })
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// `PATCH /v1/content/state/update`. `caller` is the user the token decided (`None`: the
    /// gateway trusts the request's user ids).
    pub fn update(&self, caller: Option<&str>, body: &Value, now: i64) -> Reply {
        match self.try_update(caller, body, now) {
            Ok(reply) => reply,
            Err(error) => {
                tracing::error!(%error, "update failed");
                server_error(UPDATE_API, now)
            }
        }
    }

    fn try_update(&self, caller: Option<&str>, body: &Value, now: i64) -> Result<Reply> {
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
        // Validation: the first failing item fails the whole request.
        for item in &contents {
            let text = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("");
            if item.get("contentId").is_none_or(Value::is_null) {
                return Ok(client_error(
                    UPDATE_API,
                    now,
                    "CONTENT_ID_REQUIRED_ERROR",
                    "Content id is mandatory.",
                ));
            }
            if text("courseId").trim().is_empty() && text("collectionId").trim().is_empty() {
                return Ok(client_error(
                    UPDATE_API,
                    now,
                    "COURSE_ID_REQUIRED_ERROR",
                    "Course id is mandatory.",
                ));
            }
            if item.get("status").is_none_or(Value::is_null) {
                return Ok(client_error(
                    UPDATE_API,
                    now,
                    "CONTENT_STATUS_MISSING_ERROR",
                    "content status is required .",
                ));
            }
            for field in ["lastUpdatedTime", "lastCompletedTime"] {
                match item.get(field) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) if round_trips(s) => {}
                    Some(_) => {
                        return Ok(client_error(
                            UPDATE_API,
                            now,
                            "DATE_FORMAT_ERRROR",
                            "Date format error.",
                        ));
                    }
                }
            }
            // lastAccessTime is parsed strictly inside the actor: a bad one is a server error.
            match item.get("lastAccessTime") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if parse_date(s).is_some() => {}
                Some(_) => return Ok(server_error(UPDATE_API, now)),
            }
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
        // Group by batch, keeping the order of first appearance; blank batches are dropped.
        let mut batches: Vec<(String, Vec<&Value>)> = Vec::new();
        for item in &contents {
            let batch = item
                .get("batchId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            if batch.is_empty() {
                continue;
            }
            match batches.iter_mut().find(|(b, _)| b == batch) {
                Some((_, items)) => items.push(item),
                None => batches.push((batch.to_string(), vec![item])),
            }
        }
        let now_text = Timestamp::from_millis(now).map(format_date).ok();
        let unknown = *self
            .unknown_batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(store_error)?;
        let mut touched_users = Vec::new();
        for (batch, items) in batches {
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
                        params![batch, course_of(items[0])],
                    )
                    .map_err(store_error)?;
                    Some(1)
                }
                (status, _) => status,
            };
            match status {
                None | Some(REMOVED_BATCH) => {
                    not_exists.push(batch);
                    continue;
                }
                Some(s) if s != 1 => {
                    not_ongoing.push(batch);
                    continue;
                }
                Some(_) => {}
            }
            // Group by user: blank means the primary user; anyone else is dropped silently.
            let mut by_user: Vec<(String, Vec<&Value>)> = Vec::new();
            for item in items {
                let given = item
                    .get("userId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .trim();
                let user = if given.is_empty() {
                    match &primary {
                        Some(p) => p.clone(),
                        None => continue,
                    }
                } else {
                    given.to_string()
                };
                if caller.is_some_and(|c| c != user) {
                    continue;
                }
                match by_user.iter_mut().find(|(u, _)| *u == user) {
                    Some((_, list)) => list.push(item),
                    None => by_user.push((user, vec![item])),
                }
            }
            for (user, items) in by_user {
                // Stored rows are read once per (batch, user) with the first item's course, and
                // each item is merged against that snapshot, not against earlier items.
                let course = course_of(items[0]);
                let mut snapshot: HashMap<String, Consumption> = HashMap::new();
                for item in &items {
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
                let mut latest_access: Option<(String, String, i64)> = None;
                for item in &items {
                    let content = content_of(item);
                    let merged = merge(snapshot.get(&content), item, now_text.as_deref());
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
                touched_users.push(user);
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
    fn run_progress_job(&self, until: i64) -> Result<()> {
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

fn content_of(item: &Value) -> String {
    match item.get("contentId") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A string field, trimmed; empty when absent or not a string.
fn trimmed(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string()
}

fn course_of(item: &Value) -> String {
    // `courseId` wins when the key is present.
    match trimmed(item.get("courseId")) {
        course if !course.is_empty() => course,
        _ => trimmed(item.get("collectionId")),
    }
}

/// Sunbird's per-content merge (`ContentConsumptionActor`).
fn merge(stored: Option<&Consumption>, item: &Value, now: Option<&str>) -> Consumption {
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
