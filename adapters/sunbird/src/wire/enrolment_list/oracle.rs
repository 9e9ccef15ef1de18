//! The enrolment-list reader before it went through serde structs (walking
//! `serde_json::Value` by hand), kept only as the oracle the product reader must agree with, and
//! the property test that compares them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

/// The enrollment-list reader before it went through serde structs (walking
/// `serde_json::Value` by hand), kept as the oracle its replacement must agree with on
/// every list whose ids the core takes. Each course as `EnrolledCourse` serializes.
fn parse_enrollment_list_by_hand(body: &[u8]) -> Result<Vec<Value>, String> {
    let envelope: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let courses = envelope
        .pointer("/result/courses")
        .and_then(Value::as_array)
        .ok_or("no result.courses")?;
    let mut out = Vec::new();
    for course in courses {
        let Some(fields) = course.as_object() else {
            continue;
        };
        let text = |name: &str| fields.get(name).and_then(Value::as_str);
        let Some(course_id) = text("courseId")
            .or_else(|| text("collectionId"))
            .or_else(|| text("contentId"))
        else {
            continue;
        };
        let Some(batch_id) = text("batchId") else {
            continue;
        };
        let number = |v: Option<&Value>| {
            v.and_then(Value::as_u64)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let content = fields.get("content");
        // Every text of `content.leafNodes`, in order.
        let leaf_nodes: Option<Vec<String>> = content
            .and_then(|c| c.get("leafNodes"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| Some(v.as_str()?.to_owned()))
                    .collect()
            });
        let leaf_nodes_count = number(fields.get("leafNodesCount"))
            .or_else(|| number(content.and_then(|c| c.get("leafNodesCount"))))
            .or_else(|| {
                leaf_nodes
                    .as_ref()
                    .map(|l| u32::try_from(l.len()).unwrap_or(u32::MAX))
            })
            .unwrap_or(0);
        let batch_status = fields
            .get("batch")
            .and_then(|b| b.get("status"))
            .and_then(Value::as_i64)
            .or_else(|| {
                content
                    .and_then(|c| c.get("batches"))
                    .and_then(Value::as_array)?
                    .iter()
                    .find(|b| b.get("batchId").and_then(Value::as_str) == Some(batch_id))?
                    .get("status")?
                    .as_i64()
            });
        let parsed;
        let status_map = match fields.get("contentStatus") {
            Some(Value::Object(map)) => Some(map),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => {
                    parsed = map;
                    Some(&parsed)
                }
                _ => None,
            },
            _ => None,
        };
        let content_status: BTreeMap<String, u8> = status_map
            .into_iter()
            .flatten()
            .filter_map(|(id, status)| {
                let s = status.as_u64()?.min(2);
                Some((id.clone(), u8::try_from(s).ok()?))
            })
            .collect();
        out.push(serde_json::json!({
            "courseId": course_id,
            "batchId": batch_id,
            "progress": number(fields.get("progress")).unwrap_or(0),
            "leafNodesCount": leaf_nodes_count,
            "completionPercentage": number(fields.get("completionPercentage")).unwrap_or(0),
            "status": fields
                .get("status")
                .and_then(Value::as_u64)
                .map_or(0, |s| u8::try_from(s.min(2)).unwrap_or(2)),
            "contentStatus": content_status,
            "leafNodes": leaf_nodes,
            "batchStatus": batch_status,
            "fields": fields,
        }));
    }
    Ok(out)
}

/// Any JSON value an enrollment list might hold in a place it should not: every text is
/// an id the core takes.
fn junk() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(vec![-1_i64, 0, 1, 2, 3, 7, 5_000_000_000]).prop_map(Value::from),
        Just(serde_json::json!(1.5)),
        prop::sample::select(vec!["do_1", "b1", "2", r#"{"do_1":2,"do_2":"1"}"#, "[1]"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["do_1", "status", "batchId"]),
                    inner
                ),
                0..3
            )
            .prop_map(|entries| Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect()
            )),
        ]
    })
}

/// An id (most of the time) or junk.
fn id_or_junk() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    prop_oneof![
        4 => prop::sample::select(vec!["do_c", "do_d", "b1", "b2"]).prop_map(Value::from),
        1 => junk(),
    ]
}

/// A count or status (most of the time) or junk.
fn number_or_junk() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    prop_oneof![
        3 => prop::sample::select(vec![0_u64, 1, 2, 3, 40, 5_000_000_000]).prop_map(Value::from),
        1 => junk(),
    ]
}

/// An object of the given optional fields.
fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value?)))
            .collect(),
    )
}

/// A batch: `batch` or an element of `content.batches`.
fn listed_batch() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (prop::option::of(id_or_junk()), prop::option::of(number_or_junk()))
            .prop_map(|(id, status)| object(vec![("batchId", id), ("status", status)])),
        1 => junk(),
    ]
}

/// `contentStatus`: a map, the same map as a string, or junk.
fn content_status_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let map = || {
        prop::collection::vec(
            (
                prop::sample::select(vec!["do_1", "do_2", "do_3"]),
                number_or_junk(),
            ),
            0..4,
        )
        .prop_map(|entries| {
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        })
    };
    prop_oneof![
        2 => map(),
        2 => map().prop_map(|m| Value::from(m.to_string())),
        1 => junk(),
    ]
}

/// An enrollment-list entry: Sunbird's fields, each perhaps missing or of another type.
fn listing_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaves = prop_oneof![
        3 => prop::collection::vec(id_or_junk(), 0..5).prop_map(Value::Array),
        1 => junk(),
    ];
    let content = prop_oneof![
        4 => (
            prop::option::of(leaves),
            prop::option::of(number_or_junk()),
            prop::option::of(prop_oneof![
                3 => prop::collection::vec(listed_batch(), 0..4).prop_map(Value::Array),
                1 => junk(),
            ]),
        )
            .prop_map(|(leaves, count, batches)| object(vec![
                ("leafNodes", leaves),
                ("leafNodesCount", count),
                ("batches", batches),
                ("name", Some(Value::from("Fractions"))),
            ])),
        1 => junk(),
    ];
    let ids = (
        prop::option::of(id_or_junk()),
        prop::option::of(id_or_junk()),
        prop::option::of(id_or_junk()),
        prop::option::of(id_or_junk()),
    );
    let figures = (
        prop::option::of(number_or_junk()),
        prop::option::of(number_or_junk()),
        prop::option::of(number_or_junk()),
        prop::option::of(number_or_junk()),
    );
    let rest = (
        prop::option::of(content_status_json()),
        prop::option::of(listed_batch()),
        prop::option::of(content),
        prop::option::of(junk()),
    );
    let entry = (ids, figures, rest).prop_map(
        |(
            (course, collection, content_id, batch),
            (progress, count, percentage, status),
            (statuses, listed, content, extra),
        )| {
            object(vec![
                ("courseId", course),
                ("collectionId", collection),
                ("contentId", content_id),
                ("batchId", batch),
                ("progress", progress),
                ("leafNodesCount", count),
                ("completionPercentage", percentage),
                ("status", status),
                ("contentStatus", statuses),
                ("batch", listed),
                ("content", content),
                ("courseName", extra),
            ])
        },
    );
    prop_oneof![8 => entry, 1 => junk()]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
    #[test]
    fn the_enrollment_list_reads_as_the_hand_walked_reader_read_it_when_every_id_is_taken(
        entries in proptest::collection::vec(listing_json(), 0..4),
    ) {
        let body = serde_json::json!({"result": {"courses": entries}}).to_string();
        let ours = parse_enrollment_list(body.as_bytes())
            .map(|courses| courses.iter().map(|c| serde_json::to_value(c).unwrap()).collect::<Vec<_>>());
        proptest::prop_assert_eq!(ours, parse_enrollment_list_by_hand(body.as_bytes()));
    }
}
