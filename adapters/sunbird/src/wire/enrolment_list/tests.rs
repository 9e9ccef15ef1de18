//! The enrolment list's entries: ids, leaves, counts, statuses and kept fields.

use headway::EnrolledCourse;

use super::*;

/// The courses of an enrollment list whose `result.courses` is `entries`.
fn listed(entries: &str) -> Vec<EnrolledCourse> {
    let body = format!(r#"{{"result":{{"courses":[{entries}]}}}}"#);
    parse_enrollment_list(body.as_bytes()).unwrap()
}

fn ids(courses: &[EnrolledCourse]) -> Vec<(&str, &str)> {
    courses
        .iter()
        .map(|c| (c.course_id.as_str(), c.batch_id.as_str()))
        .collect()
}

#[test]
fn an_enrollment_entry_takes_its_course_id_from_course_id_then_collection_id_then_content_id() {
    let courses = listed(
        r#"{"courseId":"do_a","collectionId":"do_x","contentId":"do_y","batchId":"b1"},
        {"collectionId":"do_b","contentId":"do_y","batchId":"b1"},
        {"contentId":"do_c","batchId":"b1"},
        {"courseId":7,"collectionId":"do_d","batchId":"b1"}"#,
    );
    assert_eq!(
        ids(&courses),
        [
            ("do_a", "b1"),
            ("do_b", "b1"),
            ("do_c", "b1"),
            ("do_d", "b1")
        ]
    );
}

#[test]
fn an_enrollment_entry_whose_ids_the_core_refuses_is_skipped_like_one_missing_its_ids() {
    let courses = listed(
        r#"{"courseId":"do_ok","batchId":"b1"},
        {"courseId":"do_no_batch"},
        {"batchId":"b1"},
        {"courseId":" ","batchId":"b1"},
        {"courseId":"do_blank_batch","batchId":""},
        {"courseId":"do_padded_batch","batchId":"b1 "},
        {"courseId":"do_numbered_batch","batchId":130},
        {"courseId":"","collectionId":"do_fallback","batchId":"b2"}"#,
    );
    // A refused course id reads as absent, so the next name of the course is used.
    assert_eq!(ids(&courses), [("do_ok", "b1"), ("do_fallback", "b2")]);
}

#[test]
fn an_enrollment_entry_that_is_not_an_object_is_skipped() {
    let courses =
        listed(r#"["do_array","b1"], "do_text", 3, null, {"courseId":"do_ok","batchId":"b1"}"#);
    assert_eq!(ids(&courses), [("do_ok", "b1")]);
}

#[test]
fn an_enrollment_list_without_result_courses_is_an_error() {
    for body in [
        &br#"{"result":{}}"#[..],
        br#"{"result":{"courses":{}}}"#,
        br#"{"result":"courses"}"#,
        br#"[]"#,
    ] {
        assert_eq!(parse_enrollment_list(body), Err("no result.courses".into()));
    }
    assert!(parse_enrollment_list(b"{not json").is_err());
    assert_eq!(
        parse_enrollment_list(br#"{"result":{"courses":[]}}"#),
        Ok(vec![])
    );
}

#[test]
fn the_leaves_come_from_content_and_refused_or_non_text_leaves_are_left_out() {
    let courses = listed(
        r#"{"courseId":"do_c","batchId":"b1","leafNodesCount":4,
            "content":{"leafNodes":["do_1","",7,"do_2 ","do_3"]}}"#,
    );
    let leaves: Vec<&str> = courses[0]
        .leaf_nodes
        .iter()
        .flatten()
        .map(|leaf| leaf.as_str())
        .collect();
    assert_eq!(leaves, ["do_1", "do_3"]);
    assert_eq!(courses[0].leaf_nodes_count, 4);
}

#[test]
fn the_leaf_count_is_the_lists_else_the_contents_else_the_number_of_leaves_listed() {
    let courses = listed(
        r#"{"courseId":"do_a","batchId":"b1","leafNodesCount":9,
            "content":{"leafNodesCount":5,"leafNodes":["do_1"]}},
        {"courseId":"do_b","batchId":"b1","leafNodesCount":"9",
            "content":{"leafNodesCount":5,"leafNodes":["do_1"]}},
        {"courseId":"do_c","batchId":"b1","content":{"leafNodes":["do_1","do_2"]}},
        {"courseId":"do_d","batchId":"b1","content":"do_d"},
        {"courseId":"do_e","batchId":"b1","leafNodesCount":99999999999}"#,
    );
    let counts: Vec<u32> = courses.iter().map(|c| c.leaf_nodes_count).collect();
    assert_eq!(counts, [9, 5, 2, 0, u32::MAX]);
    assert_eq!(courses[3].leaf_nodes, None);
}

#[test]
fn the_batch_status_is_the_batchs_else_that_of_the_enrolled_batch_in_content_batches() {
    let courses = listed(
        r#"{"courseId":"do_a","batchId":"b1","batch":{"batchId":"b1","status":2},
            "content":{"batches":[{"batchId":"b1","status":1}]}},
        {"courseId":"do_b","batchId":"b1",
            "content":{"batches":[{"batchId":"b0","status":2},"b1",{"batchId":"b1","status":1}]}},
        {"courseId":"do_c","batchId":"b1","batch":["b1",2],
            "content":{"batches":[{"batchId":"b1","status":"1"},{"batchId":"b1","status":1}]}},
        {"courseId":"do_d","batchId":"b1","batch":{"status":"2"}}"#,
    );
    let statuses: Vec<Option<i64>> = courses.iter().map(|c| c.batch_status).collect();
    // A batch given as an array is not read field by field; the first enrolled batch in
    // `content.batches` decides, even when its status is of another type.
    assert_eq!(statuses, [Some(2), Some(1), None, None]);
}

#[test]
fn the_lists_figures_of_another_type_read_as_absent_and_a_status_above_2_as_completed() {
    let courses = listed(
        r#"{"courseId":"do_a","batchId":"b1","progress":"3","completionPercentage":-1,
            "status":7,"leafNodesCount":4},
        {"courseId":"do_b","batchId":"b1","progress":3,"completionPercentage":75,"status":1.0,
            "leafNodesCount":4}"#,
    );
    let figures: Vec<(u32, u32, u8)> = courses
        .iter()
        .map(|c| (c.progress, c.completion_percentage, c.status))
        .collect();
    assert_eq!(figures, [(0, 0, 2), (3, 75, 0)]);
}

#[test]
fn content_status_keeps_only_numbered_entries_under_ids_the_core_takes() {
    let courses = listed(
        r#"{"courseId":"do_a","batchId":"b1",
            "contentStatus":{"do_1":2,"do_2":"2","":1,"do_3":5,"do_4":-1,"do_5":1}},
        {"courseId":"do_b","batchId":"b1","contentStatus":"{\"do_1\":1,\"do_2\":null}"},
        {"courseId":"do_c","batchId":"b1","contentStatus":"not a map"},
        {"courseId":"do_d","batchId":"b1","contentStatus":["do_1"]}"#,
    );
    let statuses: Vec<Vec<(&str, u8)>> = courses
        .iter()
        .map(|c| {
            c.content_status
                .iter()
                .map(|(id, s)| (id.as_str(), *s))
                .collect()
        })
        .collect();
    assert_eq!(
        statuses,
        [
            vec![("do_1", 2), ("do_3", 2), ("do_5", 1)],
            vec![("do_1", 1)],
            vec![],
            vec![],
        ]
    );
}

/// Issue 18: a cached list spells `contentStatus` as `contentstatus`; unread, the course
/// said 100% while its one leaf read status 0. The payload is lms-service's own cached
/// answer, `getRedisString()` in
/// `course-mw/enrolment-actor/src/test/scala/org/sunbird/enrolments/CourseEnrolmentTest.scala`
/// (Sunbird-Lern/lms-service), with `content` abridged to the fields headway reads.
#[test]
fn a_cached_lists_lower_case_contentstatus_is_read() {
    let body = br#"{"id":null,"ver":null,"ts":null,"params":null,"responseCode":"OK","result":{"courses":[{"dateTime":1594219912979,"lastReadContentStatus":2,"completionpercentage":100,"enrolledDate":"1594219912979","addedBy":"6cf06951-55fe-2a81-4e37-4475428ece80","delta":null,"contentId":"do_11305984881537024012255","active":true,"description":"Enter description for Course","contentstatus":{"do_11305605610466508811":2},"batchId":"0130598559365038081","userId":"95e4942d-cbe8-477d-aebd-ad8e6de4bfc8","content":{"leafNodes":["do_11305605610466508811"],"identifier":"do_11305984881537024012255","name":"Auto-cert-issue-9th","status":"Live","batches":[{"createdFor":["ORG_001"],"endDate":null,"name":"Auto-cert-issue-9th","batchId":"0130598559365038081","enrollmentType":"open","enrollmentEndDate":null,"startDate":"2020-07-08","status":1}],"leafNodesCount":1},"completionPercentage":100,"courseName":"Auto-cert-issue-9th","certificates":[],"completedOn":1595422618082,"leafNodesCount":1,"grade":null,"progress":1,"lastReadContentId":"do_11305605610466508811","courseId":"do_11305984881537024012255","status":2}]}}"#;
    let courses = parse_enrollment_list(body).unwrap();
    assert_eq!(courses.len(), 1);
    assert_eq!(courses[0].completion_percentage, 100);
    assert_eq!(
        courses[0]
            .content_status
            .iter()
            .map(|(id, s)| (id.as_str(), *s))
            .collect::<Vec<_>>(),
        vec![("do_11305605610466508811", 2)]
    );
    // The camel-case map wins when both are sent.
    let both = br#"{"result":{"courses":[{"courseId":"do_c","batchId":"b1",
        "contentStatus":{"do_1":1},"contentstatus":{"do_1":2}}]}}"#;
    let courses = parse_enrollment_list(both).unwrap();
    assert_eq!(
        courses[0]
            .content_status
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [1]
    );
}

#[test]
fn every_field_of_an_enrollment_entry_is_kept_as_the_server_sent_it() {
    let entry = serde_json::json!({
        "courseId": "do_c", "collectionId": "do_c", "batchId": "b1", "userId": "u1",
        "courseName": "Fractions", "active": true, "dateTime": 1_594_191_696_100_i64,
        "progress": "1", "status": 1, "contentStatus": "{\"do_1\":2}",
        "content": {"leafNodes": ["do_1", ""], "batches": [{"batchId": "b1", "status": 1}]},
        "batch": [1, 2], "certificates": [{"lastIssuedOn": "2020-07-22T12:57:44.335+00:00"}],
    });
    let courses = listed(&entry.to_string());
    assert_eq!(serde_json::Value::Object(courses[0].fields.clone()), entry);
}

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
