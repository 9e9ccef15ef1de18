//! The course service's semantics, transport-free: the three endpoints as functions from a
//! request body (and the caller's resolved user) to an HTTP status and a JSON body, over a
//! SQLite store. The HTTP layer and the deterministic simulation call the same code. One file
//! per responsibility: `envelope` and `validation` (Sunbird's answers and refusals), `merge`
//! (the per-content merge), `batches` (the update: batch states, users, the result map, the
//! enrolment-sync form), `read` (the content-state read), `enrollment_list` (the list and its
//! lag).

mod batches;
mod enrollment_list;
mod envelope;
mod merge;
mod read;
mod validation;

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use envelope::UPDATE_API;
pub use envelope::{client_error, server_error, unauthorized};

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

/// The status a removed batch is kept with, so it is never taken for an unknown one.
const REMOVED_BATCH: i64 = -1;

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
}
