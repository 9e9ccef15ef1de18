//! Enrolled courses as this device knows them: the last list the server gave, with the
//! learner's local progress merged in, the leaves of each course, and the course-progress
//! events that content changes cause. The online refresh is `crate::refresh`.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::{write_transaction, Store};
use crate::content_state::Status;
use crate::course::{derive_course_progress, EnrolledCourse};
use crate::error::{Error, Result};
use crate::events::{ContentStateChanged, CourseProgressChanged, Event};
use crate::id::{BatchId, ContentId, CourseId, UserId};
use crate::timestamp::Timestamp;

/// One course's figures: what the server said and what the device counts.
#[derive(Clone, Copy)]
struct Figures {
    server_progress: u32,
    leaf_nodes_count: u32,
    local_completed: u32,
}

impl Figures {
    /// The merged completed-leaf count: never below the server's (which lags) nor the device's.
    fn progress(&self) -> u32 {
        self.server_progress.max(self.local_completed)
    }

    fn percentage(&self) -> u32 {
        derive_course_progress(self.progress(), self.leaf_nodes_count).0
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A course's leaf count: the server's, or when the list gave none, the leaves the app supplied.
fn leaf_count(listed: u32, supplied: u32) -> u32 {
    if listed == 0 {
        supplied
    } else {
        listed
    }
}

fn figures(
    conn: &Connection,
    user: &UserId,
    course: &CourseId,
    batch: &BatchId,
) -> Result<Option<Figures>> {
    let cached: Option<(u32, u32)> = conn
        .prepare_cached(
            "SELECT server_progress, leaf_nodes_count FROM enrolled_course
            WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3",
        )
        .map_err(Error::sqlite("reading a cached course"))?
        .query_row(params![user, course, batch], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(Error::sqlite("reading a cached course"))?;
    let Some((server_progress, leaf_nodes_count)) = cached else {
        return Ok(None);
    };
    let (local_completed, leaves): (u32, u32) = conn
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE status >= 2), count(*) FROM course_leaf
            WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3",
        )
        .map_err(Error::sqlite("counting completed leaves"))?
        .query_row(params![user, course, batch], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(Error::sqlite("counting completed leaves"))?;
    Ok(Some(Figures {
        server_progress,
        leaf_nodes_count: leaf_count(leaf_nodes_count, leaves),
        local_completed,
    }))
}

fn is_leaf(
    conn: &Connection,
    user: &UserId,
    course: &CourseId,
    batch: &BatchId,
    content: &ContentId,
) -> Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM course_leaf
        WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3 AND content_id = ?4",
    )
    .map_err(Error::sqlite("reading a course leaf"))?
    .query_row(params![user, course, batch, content], |_| Ok(()))
    .optional()
    .map_err(Error::sqlite("reading a course leaf"))
    .map(|found| found.is_some())
}

impl Store {
    /// The course-progress events that committed content changes caused: a course moves only
    /// when one of its leaf nodes became completed.
    pub(super) fn course_events(
        conn: &Connection,
        changes: &[ContentStateChanged],
    ) -> Result<Vec<Event>> {
        let completions: Vec<&ContentStateChanged> = changes
            .iter()
            .filter(|c| {
                let was_completed = c.before.is_some_and(|b| b.status() == Status::Completed);
                c.after.status() == Status::Completed && !was_completed
            })
            .collect();
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups: BTreeMap<(UserId, CourseId, BatchId), u32> = BTreeMap::new();
        for change in completions {
            let key = &change.key;
            if is_leaf(conn, key.user(), key.course(), key.batch(), key.content())? {
                let group = (
                    key.user().clone(),
                    key.course().clone(),
                    key.batch().clone(),
                );
                *groups.entry(group).or_default() += 1;
            }
        }
        let mut events = Vec::new();
        for ((user, course, batch), completed_now) in groups {
            let Some(after) = figures(conn, &user, &course, &batch)? else {
                continue;
            };
            let before = Figures {
                local_completed: after.local_completed.saturating_sub(completed_now),
                ..after
            };
            if before.percentage() != after.percentage() {
                events.push(Event::CourseProgressChanged(CourseProgressChanged {
                    user,
                    course,
                    batch,
                    before: before.percentage(),
                    after: after.percentage(),
                }));
            }
        }
        Ok(events)
    }

    /// The learner's enrolled courses as the server last listed them, with the device's
    /// progress merged in: per course, `progress` is the larger of the server's completed-leaf
    /// count and the device's, `completion_percentage` and `status` follow from it, and
    /// `content_status` joins the server's map with the device's leaf statuses. Works offline.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{BatchId, ContentId, ContentKey, CourseId, EnrolledCourse, ProgressUpdate, Status, Store, UserId};
    /// let store = Store::open_in_memory()?;
    /// let mut listed = EnrolledCourse::new(CourseId::new("do_course")?, BatchId::new("0130")?, 4);
    /// let leaves = ["do_1", "do_2", "do_3", "do_4"].map(ContentId::new);
    /// listed.leaf_nodes = Some(leaves.into_iter().collect::<headway::Result<_>>()?);
    /// store.cache_courses(&UserId::new("u")?, &[listed])?; // what a refresh stores
    /// store.record(ProgressUpdate::new(ContentKey::new("u", "do_course", "0130", "do_1")?, Status::Completed, 100)?)?;
    /// let course = &store.courses(&UserId::new("u")?)?[0];
    /// assert_eq!((course.progress, course.completion_percentage, course.status), (1, 25, 1));
    /// # Ok(()) }
    /// ```
    pub fn courses(&self, user: &UserId) -> Result<Vec<EnrolledCourse>> {
        let inner = self.lock()?;
        courses_in(&inner.conn, user)
    }

    /// Stores an enrollment list as the learner's cached list, replacing the previous one.
    /// Leaf nodes come from each course's `leaf_nodes`; a course listed without them keeps the
    /// ones the app supplied ([`Store::set_leaf_nodes`]).
    ///
    /// ```
    /// # use headway::{BatchId, CourseId, EnrolledCourse, UserId};
    /// # fn main() -> headway::Result<()> {
    /// let store = headway::Store::open_in_memory()?;
    /// let listed = EnrolledCourse::new(CourseId::new("do_course")?, BatchId::new("0130")?, 3);
    /// store.cache_courses(&UserId::new("u")?, &[listed])?;
    /// assert_eq!(store.courses(&UserId::new("u")?)?.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn cache_courses(&self, user: &UserId, list: &[EnrolledCourse]) -> Result<()> {
        self.cache_courses_at(user, list, Timestamp::now())
    }

    /// [`Store::cache_courses`], noting the list as fetched at `now`.
    pub(crate) fn cache_courses_at(
        &self,
        user: &UserId,
        list: &[EnrolledCourse],
        now: Timestamp,
    ) -> Result<()> {
        // Before, write and after under one hold of the lock, and the events published before
        // it is released: a record committing meanwhile cannot slip between them, so course
        // events never say a course went down (`tests/course_events.rs`).
        let mut inner = self.lock()?;
        let before = courses_in(&inner.conn, user)?;
        {
            write_transaction(&mut inner.conn, "caching courses", |tx| {
                tx.execute(
                    "DELETE FROM enrolled_course WHERE user_id = ?1",
                    params![user],
                )
                .map_err(Error::sqlite("replacing cached courses"))?;
                let listed: BTreeSet<(&str, &str)> = list
                    .iter()
                    .map(|c| (c.course_id.as_str(), c.batch_id.as_str()))
                    .collect();
                // Leaves of courses no longer listed go; those of listed courses stay unless the
                // list brings its own.
                let mut stale = Vec::new();
                {
                    let mut select = tx
                    .prepare(
                        "SELECT DISTINCT course_id, batch_id FROM course_leaf WHERE user_id = ?1",
                    )
                    .map_err(Error::sqlite("reading course leaves"))?;
                    let rows = select
                        .query_map(params![user], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                        })
                        .map_err(Error::sqlite("reading course leaves"))?;
                    for row in rows {
                        let (course, batch) =
                            row.map_err(Error::sqlite("reading course leaves"))?;
                        if !listed.contains(&(course.as_str(), batch.as_str())) {
                            stale.push((course, batch));
                        }
                    }
                }
                for (course, batch) in stale {
                    tx.execute(
                    "DELETE FROM course_leaf WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3",
                    params![user, course, batch],
                )
                .map_err(Error::sqlite("dropping course leaves"))?;
                }
                let now = now.as_millis();
                for (position, course) in list.iter().enumerate() {
                    let fields = serde_json::to_string(&course.fields).map_err(corrupt)?;
                    let content_status =
                        serde_json::to_string(&course.content_status).map_err(corrupt)?;
                    tx.execute(
                        "INSERT INTO enrolled_course (user_id, course_id, batch_id, position,
                        server_progress, leaf_nodes_count, batch_status, content_status, fields,
                        fetched_at)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            user,
                            course.course_id,
                            course.batch_id,
                            i64::try_from(position).unwrap_or(i64::MAX),
                            course.progress,
                            course.leaf_nodes_count,
                            course.batch_status,
                            content_status,
                            fields,
                            now
                        ],
                    )
                    .map_err(Error::sqlite("caching a course"))?;
                    if let Some(leaves) = &course.leaf_nodes {
                        write_leaves(tx, user, &course.course_id, &course.batch_id, leaves)?;
                    }
                }
                Ok(())
            })?;
        }
        let after = courses_in(&inner.conn, user)?;
        self.events.publish(progress_moves(user, &before, &after));
        drop(inner);
        Ok(())
    }

    /// Supplies the leaf nodes of an enrolled course batch, for a server whose list does not
    /// carry them (the app has them from the course hierarchy). Completing a content that is
    /// not a leaf never moves course progress.
    ///
    /// ```
    /// # use headway::{BatchId, ContentId, CourseId, EnrolledCourse, UserId};
    /// # fn main() -> headway::Result<()> {
    /// let store = headway::Store::open_in_memory()?;
    /// let (course, batch) = (CourseId::new("do_course")?, BatchId::new("0130")?);
    /// store.cache_courses(&UserId::new("u")?, &[EnrolledCourse::new(course.clone(), batch.clone(), 0)])?;
    /// let leaves = [ContentId::new("do_1")?, ContentId::new("do_2")?];
    /// store.set_leaf_nodes(&UserId::new("u")?, &course, &batch, &leaves)?;
    /// assert_eq!(store.courses(&UserId::new("u")?)?[0].leaf_nodes_count, 2);
    /// # Ok(()) }
    /// ```
    pub fn set_leaf_nodes(
        &self,
        user: &UserId,
        course: &CourseId,
        batch: &BatchId,
        leaves: &[ContentId],
    ) -> Result<()> {
        let mut inner = self.lock()?;
        let before = courses_in(&inner.conn, user)?;
        {
            write_transaction(&mut inner.conn, "storing leaf nodes", |tx| {
                write_leaves(tx, user, course, batch, leaves)
            })?;
        }
        let after = courses_in(&inner.conn, user)?;
        self.events.publish(progress_moves(user, &before, &after));
        drop(inner);
        Ok(())
    }
}

/// Each cached course batch's stored leaves: the content id (`None` when the core refuses it)
/// and the learner's status.
type StoredLeaves = BTreeMap<(String, String), Vec<(Option<ContentId>, u8)>>;

/// The learner's cached courses with local progress merged in (see [`Store::courses`]).
fn courses_in(conn: &Connection, user: &UserId) -> Result<Vec<EnrolledCourse>> {
    // A leaf counts as stored, but is listed only when the core takes its id: a version
    // before ids were checked may have stored one it refuses (no progress can be recorded
    // for it, so it is never completed).
    let mut leaves: StoredLeaves = BTreeMap::new();
    {
        let mut select = conn
            .prepare_cached(
                "SELECT course_id, batch_id, content_id, status FROM course_leaf
                WHERE user_id = ?1",
            )
            .map_err(Error::sqlite("reading course leaves"))?;
        let rows = select
            .query_map(params![user], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .map_err(Error::sqlite("reading course leaves"))?;
        for row in rows {
            let (course, batch, content, status) =
                row.map_err(Error::sqlite("reading course leaves"))?;
            let status = u8::try_from(status.clamp(0, 2)).unwrap_or(0);
            leaves
                .entry((course, batch))
                .or_default()
                .push((ContentId::new(content).ok(), status));
        }
    }
    let mut select = conn
        .prepare_cached(
            "SELECT course_id, batch_id, server_progress, leaf_nodes_count, batch_status,
                content_status, fields
            FROM enrolled_course WHERE user_id = ?1 ORDER BY position",
        )
        .map_err(Error::sqlite("reading cached courses"))?;
    let rows = select
        .query_map(params![user], |row| {
            // A JSON column that holds no text reads as an empty object.
            let json = |i: usize| -> rusqlite::Result<Vec<u8>> {
                Ok(row.get_ref(i)?.as_bytes().unwrap_or(b"{}").to_vec())
            };
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, u32>(2)?,
                row.get::<_, u32>(3)?,
                row.get::<_, Option<i64>>(4)?,
                json(5)?,
                json(6)?,
            ))
        })
        .map_err(Error::sqlite("reading cached courses"))?;
    let mut courses = Vec::new();
    for row in rows {
        let (
            course,
            batch,
            server_progress,
            leaf_nodes_count,
            batch_status,
            content_status,
            fields,
        ) = row.map_err(Error::sqlite("reading cached courses"))?;
        let content_status: BTreeMap<String, u8> =
            serde_json::from_slice(&content_status).map_err(corrupt)?;
        let fields: serde_json::Map<String, Value> =
            serde_json::from_slice(&fields).map_err(corrupt)?;
        let course_leaves = leaves.remove(&(course.clone(), batch.clone()));
        // A course cached by a version before ids were checked, under an id the core refuses,
        // is left out, as an enrollment list leaves out such an entry now.
        let (Ok(course), Ok(batch)) = (CourseId::new(course), BatchId::new(batch)) else {
            continue;
        };
        let local_completed = course_leaves
            .as_ref()
            .map_or(0, |l| count(l.iter().filter(|(_, s)| *s >= 2).count()));
        let supplied = course_leaves.as_ref().map_or(0, |l| count(l.len()));
        let leaf_nodes_count = leaf_count(leaf_nodes_count, supplied);
        let figures = Figures {
            server_progress,
            leaf_nodes_count,
            local_completed,
        };
        let mut enrolled =
            EnrolledCourse::new(course, batch, leaf_nodes_count).with_progress(figures.progress());
        // Likewise a content id cached before ids were checked that the core refuses.
        enrolled.content_status = content_status
            .into_iter()
            .filter_map(|(content, status)| Some((ContentId::new(content).ok()?, status)))
            .collect();
        let course_leaves: Option<Vec<(ContentId, u8)>> = course_leaves.map(|l| {
            l.into_iter()
                .filter_map(|(content, status)| Some((content?, status)))
                .collect()
        });
        if let Some(l) = &course_leaves {
            for (content, status) in l {
                let entry = enrolled.content_status.entry(content.clone()).or_insert(0);
                *entry = (*entry).max(*status);
            }
        }
        enrolled.leaf_nodes = course_leaves.map(|l| l.into_iter().map(|(c, _)| c).collect());
        enrolled.batch_status = batch_status;
        enrolled.fields = fields;
        courses.push(enrolled);
    }
    Ok(courses)
}

fn write_leaves(
    conn: &Connection,
    user: &UserId,
    course: &CourseId,
    batch: &BatchId,
    leaves: &[ContentId],
) -> Result<()> {
    conn.execute(
        "DELETE FROM course_leaf WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3",
        params![user, course, batch],
    )
    .map_err(Error::sqlite("replacing course leaves"))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO course_leaf (user_id, course_id, batch_id, content_id, status)
            VALUES (?1, ?2, ?3, ?4, coalesce((SELECT status FROM content_state
                WHERE user_id = ?1 AND course_id = ?2 AND batch_id = ?3 AND content_id = ?4), 0))",
        )
        .map_err(Error::sqlite("storing course leaves"))?;
    for leaf in leaves {
        insert
            .execute(params![user, course, batch, leaf])
            .map_err(Error::sqlite("storing course leaves"))?;
    }
    Ok(())
}

/// A course-progress event for each course whose percentage moved between two answers.
fn progress_moves(
    user: &UserId,
    before: &[EnrolledCourse],
    after: &[EnrolledCourse],
) -> Vec<Event> {
    after
        .iter()
        .filter_map(|course| {
            let old = before
                .iter()
                .find(|b| b.course_id == course.course_id && b.batch_id == course.batch_id)
                .map_or(0, |b| b.completion_percentage);
            (old != course.completion_percentage).then(|| {
                Event::CourseProgressChanged(CourseProgressChanged {
                    user: user.clone(),
                    course: course.course_id.clone(),
                    batch: course.batch_id.clone(),
                    before: old,
                    after: course.completion_percentage,
                })
            })
        })
        .collect()
}

fn corrupt(e: serde_json::Error) -> Error {
    Error::CorruptStore {
        reason: format!("a cached course does not parse: {e}"),
    }
}
