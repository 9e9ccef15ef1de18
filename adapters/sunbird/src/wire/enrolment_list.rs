//! The enrolment list (sunbird-api.md §4.1): its entries read into [`EnrolledCourse`], every
//! field the server sent kept whole in `fields`, and the leaf list (`content.leafNodes`) kept
//! once, in `leaf_nodes` ([`for_the_core`]).

use std::collections::BTreeMap;

use headway::{BatchId, ContentId, CourseId, EnrolledCourse};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::lenient::Lenient;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

/// Reads `result.courses` of an enrollment list. Every course keeps all the fields the server
/// sent (`fields`); `contentStatus` is accepted as a map or as a JSON string. The course id is
/// `courseId`, else `collectionId`, else `contentId`; the leaves are `content.leafNodes`; the
/// leaf count is `leafNodesCount`, else `content.leafNodesCount`, else the leaves listed; the
/// batch's status is `batch.status`, else that of the enrolled batch in `content.batches`.
/// A field of another type than Sunbird's reads as absent, and so does an id the core refuses
/// ([`CourseId`] and the other id types): an entry without a usable course or batch id is
/// skipped, and a leaf or a `contentStatus` entry under a refused content id is left out.
///
/// ```
/// let body = br#"{"result":{"courses":[
///     {"collectionId":"do_c","batchId":"b1","progress":1,"leafNodesCount":2,"courseName":"Fractions"},
///     {"courseId":"do_d"}
/// ]}}"#;
/// let courses = headway_sunbird::wire::parse_enrollment_list(body)?;
/// assert_eq!(courses.len(), 1); // the second has no batch
/// assert_eq!((courses[0].course_id.as_str(), courses[0].progress), ("do_c", 1));
/// assert_eq!(courses[0].fields["courseName"], "Fractions");
/// # Ok::<(), String>(())
/// ```
pub fn parse_enrollment_list(body: &[u8]) -> Result<Vec<EnrolledCourse>, String> {
    let envelope: Lenient<ListEnvelope> =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let courses = envelope
        .0
        .and_then(|e| e.result.0)
        .and_then(|r| r.courses.0)
        .ok_or("no result.courses")?;
    Ok(courses
        .into_iter()
        .filter_map(|entry| entry.0.and_then(Object::into_course))
        .collect())
}

/// The enrollment list as the core keeps it: each course's `content.leafNodes` taken out of
/// its kept fields (the leaves are in `leaf_nodes`).
pub(crate) fn for_the_core(courses: Vec<EnrolledCourse>) -> Vec<EnrolledCourse> {
    courses
        .into_iter()
        .map(|mut course| {
            if let Some(Value::Object(content)) = course.fields.get_mut("content") {
                content.remove("leafNodes");
            }
            course
        })
        .collect()
}

/// An enrollment list's answer: `result.courses`.
#[derive(Deserialize)]
struct ListEnvelope {
    #[serde(default)]
    result: Lenient<ListResult>,
}

#[derive(Deserialize)]
struct ListResult {
    #[serde(default)]
    courses: Lenient<Vec<Lenient<Object<ListedCourse>>>>,
}

/// A JSON object read as `T`, with the object itself kept. Only an object is read: serde's
/// derived structs would also read an array, field by field.
struct Object<T> {
    typed: T,
    fields: Map<String, Value>,
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Object<T>, D::Error> {
        let fields = Map::deserialize(deserializer)?;
        let typed = T::deserialize(&fields).map_err(serde::de::Error::custom)?;
        Ok(Object { typed, fields })
    }
}

/// One entry of an enrollment list, as far as headway models it (sunbird-api.md §4.1; every
/// field may be missing or of another type, as the list drifts between server versions).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedCourse {
    #[serde(default)]
    course_id: Lenient<CourseId>,
    #[serde(default)]
    collection_id: Lenient<CourseId>,
    #[serde(default)]
    content_id: Lenient<CourseId>,
    #[serde(default)]
    batch_id: Lenient<BatchId>,
    #[serde(default)]
    progress: Lenient<u64>,
    #[serde(default)]
    leaf_nodes_count: Lenient<u64>,
    #[serde(default)]
    completion_percentage: Lenient<u64>,
    #[serde(default)]
    status: Lenient<u64>,
    #[serde(default)]
    content_status: Lenient<ContentStatus>,
    /// `contentStatus` as the list cached in Redis spells it (the column name of
    /// `user_enrolments`), read when `contentStatus` is absent.
    #[serde(default, rename = "contentstatus")]
    content_status_cached: Lenient<ContentStatus>,
    #[serde(default)]
    batch: Lenient<Object<ListedBatch>>,
    #[serde(default)]
    content: Lenient<Object<ListedContent>>,
}

/// The course's content, from content search: its leaves and batches.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedContent {
    #[serde(default)]
    leaf_nodes: Lenient<Vec<Lenient<ContentId>>>,
    #[serde(default)]
    leaf_nodes_count: Lenient<u64>,
    #[serde(default)]
    batches: Lenient<Vec<Lenient<Object<ListedBatch>>>>,
}

/// A batch of the course: `batch` (with `batchDetails`) or an element of `content.batches`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedBatch {
    #[serde(default)]
    batch_id: Lenient<String>,
    #[serde(default)]
    status: Lenient<i64>,
}

/// `contentStatus`: content id → status, as a map or as the same map in a JSON string (the
/// mobile SDK's model types it as a string).
#[derive(Deserialize)]
#[serde(untagged)]
enum ContentStatus {
    Map(BTreeMap<String, Lenient<u64>>),
    Text(String),
}

impl ContentStatus {
    /// The statuses, each at most 2; an entry that is not a number, or whose id the core
    /// refuses, is left out, and a string that is not such a map reads as empty.
    fn statuses(self) -> BTreeMap<ContentId, u8> {
        let map = match self {
            ContentStatus::Map(map) => map,
            ContentStatus::Text(text) => serde_json::from_str(&text).unwrap_or_default(),
        };
        map.into_iter()
            .filter_map(|(id, status)| {
                let status = u8::try_from(status.0?.min(2)).ok()?;
                Some((ContentId::new(id).ok()?, status))
            })
            .collect()
    }
}

/// A count as the core keeps it: saturated at `u32::MAX`.
fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Object<ListedCourse> {
    /// The enrolled course this entry lists, or `None` when it has no usable course or batch id.
    fn into_course(self) -> Option<EnrolledCourse> {
        let Object {
            typed: listed,
            fields,
        } = self;
        let course_id = listed
            .course_id
            .0
            .or(listed.collection_id.0)
            .or(listed.content_id.0)?;
        let batch_id = listed.batch_id.0?;
        let content = listed.content.0.map(|c| c.typed);
        let (leaf_nodes, content_count, batches) = match content {
            Some(c) => (c.leaf_nodes.0, c.leaf_nodes_count.0, c.batches.0),
            None => (None, None, None),
        };
        let leaf_nodes: Option<Vec<ContentId>> =
            leaf_nodes.map(|l| l.into_iter().filter_map(|leaf| leaf.0).collect());
        let leaf_nodes_count = listed
            .leaf_nodes_count
            .0
            .or(content_count)
            .map(count)
            .or_else(|| {
                let listed = leaf_nodes.as_ref()?.len();
                Some(count(u64::try_from(listed).unwrap_or(u64::MAX)))
            })
            .unwrap_or(0);
        let batch_status = listed.batch.0.and_then(|b| b.typed.status.0).or_else(|| {
            // The first batch listed under the enrolled batch's id.
            batches?
                .into_iter()
                .filter_map(|b| b.0.map(|b| b.typed))
                .find(|b| b.batch_id.0.as_deref() == Some(batch_id.as_str()))?
                .status
                .0
        });
        let mut enrolled = EnrolledCourse::new(course_id, batch_id, leaf_nodes_count);
        enrolled.progress = listed.progress.0.map_or(0, count);
        enrolled.completion_percentage = listed.completion_percentage.0.map_or(0, count);
        enrolled.status = listed
            .status
            .0
            .map_or(0, |s| u8::try_from(s.min(2)).unwrap_or(2));
        enrolled.content_status = listed
            .content_status
            .0
            .or(listed.content_status_cached.0)
            .map(ContentStatus::statuses)
            .unwrap_or_default();
        enrolled.leaf_nodes = leaf_nodes;
        enrolled.batch_status = batch_status;
        enrolled.fields = fields;
        Some(enrolled)
    }
}
