//! Sunbird's enrollment list, as the core keeps it: a course is its leaf contents
//! (`leaf_nodes`) and the server's other fields are kept for the app, whole, in `fields`. The
//! leaf list Sunbird sends inside `content.leafNodes` is modelled by `leaf_nodes` already, so
//! it is taken out of the kept fields (a course of thousands of leaves would otherwise be
//! stored twice).

use headway::EnrolledCourse;
use serde_json::Value;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_list_is_kept_once_and_every_other_field_stays() {
        let (course, batch) = ("do_course".try_into().unwrap(), "0130".try_into().unwrap());
        let mut course = EnrolledCourse::new(course, batch, 2);
        course.leaf_nodes = Some(vec!["do_1".try_into().unwrap(), "do_2".try_into().unwrap()]);
        let fields = serde_json::json!({
            "courseId": "do_course",
            "content": {"name": "Photosynthesis", "leafNodes": ["do_1", "do_2"], "leafNodesCount": 2},
        });
        course.fields = fields.as_object().cloned().unwrap_or_default();
        let kept = for_the_core(vec![course]);
        assert_eq!(
            serde_json::Value::Object(kept[0].fields.clone()),
            serde_json::json!({
                "courseId": "do_course",
                "content": {"name": "Photosynthesis", "leafNodesCount": 2},
            })
        );
        assert_eq!(kept[0].leaf_nodes.as_ref().map(Vec::len), Some(2));
    }
}
