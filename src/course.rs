//! A course the learner is enrolled in, with its progress, as a server lists it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::{BatchId, ContentId, CourseId};

/// One enrolled course: a course is a set of leaf contents, and its progress is how many of
/// them are completed. `progress` counts the completed leaf nodes, not a percentage;
/// `completion_percentage` and `status` follow from it and `leaf_nodes_count`
/// ([`derive_course_progress`]). The server's other fields are kept for the app in `fields`.
///
/// ```
/// use headway::{BatchId, CourseId, EnrolledCourse};
/// let course = EnrolledCourse::new(CourseId::new("do_course")?, BatchId::new("0130")?, 3).with_progress(1);
/// assert_eq!((course.progress, course.completion_percentage, course.status), (1, 33, 1));
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolledCourse {
    /// The course.
    pub course_id: CourseId,
    /// The batch the learner is enrolled in.
    pub batch_id: BatchId,
    /// Completed leaf nodes.
    pub progress: u32,
    /// Leaf nodes (trackable contents) of the course.
    pub leaf_nodes_count: u32,
    /// `progress * 100 / leaf_nodes_count`, integer; 100 at or above the count.
    pub completion_percentage: u32,
    /// 0 not started, 1 in progress, 2 completed, derived from `progress`.
    pub status: u8,
    /// Status per content, as far as known.
    pub content_status: BTreeMap<ContentId, u8>,
    /// The course's leaf node ids, when the server listed them (or the app supplied them).
    pub leaf_nodes: Option<Vec<ContentId>>,
    /// The batch's status (1 ongoing), when the server listed it.
    pub batch_status: Option<i64>,
    /// The server's fields as it sent them, including those headway does not model, so the
    /// app can show them (an adapter may leave out what it models elsewhere, such as the leaf
    /// list already in `leaf_nodes`).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl EnrolledCourse {
    /// A course with no progress.
    pub fn new(course_id: CourseId, batch_id: BatchId, leaf_nodes_count: u32) -> EnrolledCourse {
        EnrolledCourse {
            course_id,
            batch_id,
            progress: 0,
            leaf_nodes_count,
            completion_percentage: 0,
            status: 0,
            content_status: BTreeMap::new(),
            leaf_nodes: None,
            batch_status: None,
            fields: serde_json::Map::new(),
        }
    }

    /// Sets the completed-leaf count and derives `completion_percentage` and `status` from it.
    pub fn with_progress(mut self, progress: u32) -> EnrolledCourse {
        self.progress = progress;
        let (percentage, status) = derive_course_progress(progress, self.leaf_nodes_count);
        self.completion_percentage = percentage;
        self.status = status;
        self
    }
}

/// A course's percentage and status from its completed-leaf count: 0 completed → (0, status 0); at or above the leaf count → (100,
/// status 2); otherwise (progress * 100 / count, status 1).
///
/// ```
/// assert_eq!(headway::derive_course_progress(1, 3), (33, 1));
/// assert_eq!(headway::derive_course_progress(4, 3), (100, 2));
/// assert_eq!(headway::derive_course_progress(0, 3), (0, 0));
/// ```
pub fn derive_course_progress(progress: u32, leaf_nodes_count: u32) -> (u32, u8) {
    if progress == 0 {
        (0, 0)
    } else if progress >= leaf_nodes_count {
        (100, 2)
    } else {
        // Widened: a count near u32::MAX times 100 must not wrap (or panic in a debug build).
        let percentage = u64::from(progress) * 100 / u64::from(leaf_nodes_count);
        (u32::try_from(percentage).unwrap_or(100).min(99), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_percentage_of_huge_counts_does_not_wrap() {
        assert_eq!(derive_course_progress(50_000_000, 60_000_000), (83, 1));
        assert_eq!(derive_course_progress(u32::MAX - 1, u32::MAX), (99, 1));
        assert_eq!(derive_course_progress(u32::MAX, u32::MAX), (100, 2));
        assert_eq!(derive_course_progress(1, u32::MAX), (0, 1));
    }
}
