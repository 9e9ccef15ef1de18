//! The update answer read item by item, dates, the read's rows and the error envelope.

use headway::{
    ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, Progress, RejectionReason,
    RetryCause, Status, Timestamp,
};

use super::*;

fn item(content: &str, batch: &str, status: Status, progress: i64) -> ContentItem {
    ContentItem::new(
        ContentKey::new("u1", "do_course", batch, content).unwrap(),
        ContentState::new(status, Progress::new(progress).unwrap(), None, None),
    )
}

fn out(item: ContentItem, confirmed: bool) -> Outgoing {
    let server = confirmed.then(ContentState::default);
    Outgoing { item, server }
}

/// A keyed answer's outcomes in the order the items were sent.
fn in_order(
    outcomes: std::collections::BTreeMap<headway::ContentKey, ItemOutcome>,
    sent: &[&Outgoing],
) -> Vec<ItemOutcome> {
    sent.iter()
        .map(|out| outcomes[out.item.key()].clone())
        .collect()
}

/// The outcomes of `body` for an item in batch `b1` and one with the same content id in
/// `bclosed` (Sunbird keys `result` by content id, so one `SUCCESS` covers both).
fn same_content_in_two_batches(body: &[u8]) -> Vec<ItemOutcome> {
    let open = out(item("do_1", "b1", Status::Completed, 100), true);
    let closed = out(item("do_1", "bclosed", Status::Completed, 100), true);
    match interpret_update(200, body, &[&open, &closed]) {
        UpdateAnswer::Items(outcomes) => in_order(outcomes, &[&open, &closed]),
        other => panic!("not per-item outcomes: {other:?}"),
    }
}

#[test]
fn a_rejection_list_of_another_type_never_turns_into_an_acknowledgement() {
    for list in [
        r#""bclosed""#,
        r#"{"batchId":"bclosed"}"#,
        r#"[{"batchId":"bclosed"}]"#,
        r#"[130000000000000001]"#,
        r#"true"#,
    ] {
        for name in ["NOT_A_ON_GOING_BATCH", "BATCH_NOT_EXISTS"] {
            let body =
                format!(r#"{{"responseCode":"OK","result":{{"do_1":"SUCCESS","{name}":{list}}}}}"#);
            let outcomes = same_content_in_two_batches(body.as_bytes());
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, ItemOutcome::Retry { .. })),
                "{name}: {list} gave {outcomes:?}"
            );
        }
    }
    // A readable list still rejects what it names, next to an unreadable one.
    let body = br#"{"result":{"do_1":"SUCCESS","NOT_A_ON_GOING_BATCH":["bclosed"],"BATCH_NOT_EXISTS":"x"}}"#;
    let outcomes = same_content_in_two_batches(body);
    assert!(
        matches!(outcomes[0], ItemOutcome::Retry { .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], ItemOutcome::Rejected { reason } if reason == "NOT_A_ON_GOING_BATCH")
    );
    // No list at all (null) names no batch.
    let body = br#"{"result":{"do_1":"SUCCESS","NOT_A_ON_GOING_BATCH":null}}"#;
    assert_eq!(
        same_content_in_two_batches(body),
        vec![ItemOutcome::Acknowledged, ItemOutcome::Acknowledged]
    );
}

#[test]
fn a_rejection_list_written_twice_rejects_what_either_names() {
    let body = br#"{"result":{"do_1":"SUCCESS","NOT_A_ON_GOING_BATCH":["bclosed"],"NOT_A_ON_GOING_BATCH":[]}}"#;
    let outcomes = same_content_in_two_batches(body);
    assert_eq!(outcomes[0], ItemOutcome::Acknowledged);
    assert!(
        matches!(&outcomes[1], ItemOutcome::Rejected { reason } if reason == "NOT_A_ON_GOING_BATCH"),
        "{outcomes:?}"
    );
}

#[test]
fn a_content_id_written_twice_with_different_values_is_not_acknowledged() {
    let sent = out(item("do_1", "b1", Status::Completed, 100), true);
    for body in [
        &br#"{"result":{"do_1":"FAILED","do_1":"SUCCESS"}}"#[..],
        br#"{"result":{"do_1":"SUCCESS","do_1":1}}"#,
        br#"{"result":{"do_1":"SUCCESS"},"result":{"do_2":"SUCCESS"}}"#,
        br#"{"result":{"do_1":"SUCCESS"},"result":null}"#,
    ] {
        assert!(
            matches!(&interpret_update(200, body, &[&sent]), UpdateAnswer::Items(o) if matches!(o[sent.item.key()], ItemOutcome::Retry { .. }))
                || matches!(
                    interpret_update(200, body, &[&sent]),
                    UpdateAnswer::Retry(_)
                ),
            "{}: {:?}",
            String::from_utf8_lossy(body),
            interpret_update(200, body, &[&sent])
        );
    }
    // The same value twice is still that value.
    let body = br#"{"result":{"do_1":"SUCCESS","do_1":"SUCCESS"}}"#;
    assert_eq!(
        interpret_update(200, body, &[&sent]),
        UpdateAnswer::Items([(sent.item.key().clone(), ItemOutcome::Acknowledged)].into())
    );
}

#[test]
fn a_result_value_of_another_type_is_never_an_acknowledgement() {
    let sent = out(item("do_1", "b1", Status::Completed, 100), true);
    for value in [
        "1",
        "true",
        "null",
        r#"["SUCCESS"]"#,
        r#"{"status":"SUCCESS"}"#,
    ] {
        let body = format!(r#"{{"result":{{"do_1":{value}}}}}"#);
        assert!(
            matches!(&interpret_update(200, body.as_bytes(), &[&sent]), UpdateAnswer::Items(o) if matches!(o[sent.item.key()], ItemOutcome::Retry { .. })),
            "{value}"
        );
    }
    for body in [
        &b"[]"[..],
        b"\"SUCCESS\"",
        b"{}",
        br#"{"result":"SUCCESS"}"#,
        b"{",
    ] {
        assert!(matches!(
            interpret_update(200, body, &[&sent]),
            UpdateAnswer::Retry(_)
        ));
    }
}

#[test]
fn an_item_whose_batch_the_answer_names_only_loosely_is_never_acknowledged() {
    let closed = out(item("do_1", "B-Closed", Status::Completed, 100), true);
    let open = out(item("do_2", "b-open", Status::Completed, 100), true);
    let body = br#"{"responseCode":"OK","result":{"do_1":"SUCCESS","do_2":"SUCCESS",
        "NOT_A_ON_GOING_BATCH":[" b-closed"]}}"#;
    let UpdateAnswer::Items(outcomes) = interpret_update(200, body, &[&closed, &open]) else {
        panic!("not per-item outcomes");
    };
    let outcomes = in_order(outcomes, &[&closed, &open]);
    assert!(
        matches!(&outcomes[0], ItemOutcome::Rejected { reason: RejectionReason::BatchNotOngoing { text } } if text.starts_with("NOT_A_ON_GOING_BATCH")),
        "{:?}",
        outcomes[0]
    );
    assert_eq!(outcomes[1], ItemOutcome::Acknowledged);
}

proptest::proptest! {
    #[test]
    fn every_timestamp_round_trips_in_sunbird_format(ms in 946_684_800_000i64..=253_402_300_799_999) {
        let t = Timestamp::from_millis(ms).unwrap();
        proptest::prop_assert_eq!(parse_date(&format_date(t)), Some(t));
        proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
    }
}

#[test]
fn dates_round_trip_in_sunbird_format() {
    for ms in [946_684_800_000, 1_714_558_530_123, 1_900_000_000_999] {
        let t = Timestamp::from_millis(ms).unwrap();
        assert_eq!(parse_date(&format_date(t)), Some(t));
    }
    for bad in [
        "2024-05-01 10:15:30+0000",
        "2024-13-01 10:15:30:123+0000",
        "2024-05-01 10:15:30:123Z",
        "",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn mixed_result_acknowledges_and_rejects_item_by_item() {
    let sent = [
        out(item("do_1", "b_ok", Status::Completed, 100), true),
        out(item("do_2", "b_closed", Status::Completed, 100), true),
        out(item("do_3", "b_gone", Status::Completed, 100), true),
        out(item("do_4", "b_ok", Status::Completed, 100), true),
        out(item("do_5", "b_ok", Status::Completed, 100), true),
    ];
    let refs: Vec<&Outgoing> = sent.iter().collect();
    let body = br#"{"id":"api.content.state.update","responseCode":"OK","result":{
        "do_1":"SUCCESS","do_2":"SUCCESS","do_5":"FAILED",
        "NOT_A_ON_GOING_BATCH":["b_closed"],"BATCH_NOT_EXISTS":["b_gone"]}}"#;
    let UpdateAnswer::Items(outcomes) = interpret_update(200, body, &refs) else {
        panic!("not per item")
    };
    let outcomes = in_order(outcomes, &refs);
    assert_eq!(outcomes[0], ItemOutcome::Acknowledged);
    assert_eq!(
        outcomes[1],
        ItemOutcome::Rejected {
            reason: RejectionReason::BatchNotOngoing {
                text: "NOT_A_ON_GOING_BATCH".into()
            }
        }
    );
    assert_eq!(
        outcomes[2],
        ItemOutcome::Rejected {
            reason: RejectionReason::BatchUnknown {
                text: "BATCH_NOT_EXISTS".into()
            }
        }
    );
    assert!(
        matches!(&outcomes[3], ItemOutcome::Rejected { reason: RejectionReason::DroppedByServer { text } } if text == NOT_IN_RESULT)
    );
    assert_eq!(
        outcomes[4],
        ItemOutcome::Rejected {
            reason: RejectionReason::RefusedByServer {
                text: "FAILED".into()
            }
        }
    );
}

#[test]
fn first_write_with_status_1_is_held_lower() {
    let first = out(item("do_1", "b", Status::InProgress, 60), false);
    let again = out(item("do_1", "b", Status::InProgress, 60), true);
    let body = br#"{"result":{"do_1":"SUCCESS"}}"#;
    assert!(matches!(
        interpret_update(200, body, &[&first]),
        UpdateAnswer::Items(o) if matches!(o[first.item.key()], ItemOutcome::HeldLower { .. })
    ));
    assert_eq!(
        interpret_update(200, body, &[&again]),
        UpdateAnswer::Items([(again.item.key().clone(), ItemOutcome::Acknowledged)].into())
    );
}

#[test]
fn statuses_map_to_answers() {
    let sent = out(item("do_1", "b", Status::Completed, 100), true);
    let body = br#"{"params":{"err":"DATE_FORMAT_ERRROR","errmsg":"Date format error."},"responseCode":"CLIENT_ERROR","result":{}}"#;
    assert_eq!(
        interpret_update(400, body, &[&sent]),
        UpdateAnswer::ClientError {
            reason: "DATE_FORMAT_ERRROR: Date format error.".into()
        }
    );
    assert_eq!(
        interpret_update(401, b"", &[&sent]),
        UpdateAnswer::Unauthorized { status: 401 }
    );
    assert_eq!(
        interpret_update(503, b"", &[&sent]),
        UpdateAnswer::Retry(RetryCause::Server { status: 503 })
    );
    assert!(matches!(
        interpret_update(200, b"<html>", &[&sent]),
        UpdateAnswer::Retry(_)
    ));
}

#[test]
fn fields_of_an_unexpected_type_read_as_absent_never_as_an_acknowledgement() {
    let sent = out(item("do_1", "b1", Status::Completed, 100), true);
    let other = out(item("do_2", "b2", Status::Completed, 100), true);
    // A rejection list with a number in it still names b1; a non-string result is no
    // acknowledgement.
    let body =
        br#"{"result":{"do_1":"SUCCESS","do_2":{"ok":true},"NOT_A_ON_GOING_BATCH":[7,"b1"]}}"#;
    let UpdateAnswer::Items(outcomes) = interpret_update(200, body, &[&sent, &other]) else {
        panic!("not per item")
    };
    let outcomes = in_order(outcomes, &[&sent, &other]);
    assert!(
        matches!(&outcomes[0], ItemOutcome::Rejected { reason } if reason == "NOT_A_ON_GOING_BATCH")
    );
    assert!(matches!(
        &outcomes[1],
        ItemOutcome::Retry {
            cause: RetryCause::Unparsable { .. }
        }
    ));
    for (body, detail) in [
        (&b"{oops"[..], "the body is not JSON"),
        (b"[1,2]", "no result object"),
        (br#"{"result":[]}"#, "no result object"),
    ] {
        assert_eq!(
            interpret_update(200, body, &[&sent]),
            UpdateAnswer::Retry(RetryCause::Unparsable {
                detail: detail.into()
            })
        );
    }
    // A read: rows that are not objects are skipped, `collectionId` stands in for
    // `courseId`, a status of another type reads as 0, a progress out of range is clamped.
    let read = br#"{"result":{"contentList":[5,{"contentId":"do_1","collectionId":"c",
        "batchId":"b","status":"2","progress":250},{"contentId":"do_2","courseId":7,
        "batchId":"b","status":2}]}}"#;
    let items = parse_read(&"u1".try_into().unwrap(), read).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].key().course(), "c");
    assert_eq!(items[0].state().status(), Status::NotStarted);
    assert_eq!(items[0].state().progress().get(), 100);
    assert_eq!(
        parse_read(&"u1".try_into().unwrap(), br#"{"result":{}}"#),
        Err("no result.contentList".into())
    );
    assert!(parse_read(&"u1".try_into().unwrap(), b"not json").is_err());
    assert_eq!(
        error_reason(br#"{"params":{"err":5,"errmsg":"Date format error."}}"#),
        Some("Date format error.".into())
    );
    assert_eq!(error_reason(br#"{"params":"x"}"#), None);
}

#[test]
fn enrollment_list_accepts_content_status_as_a_string_and_keeps_unknown_fields() {
    let body = br#"{"result":{"courses":[{"courseId":"do_c","batchId":"b1","progress":1,
        "leafNodesCount":3,"completionPercentage":33,"status":1,"courseName":"Fractions",
        "contentStatus":"{\"do_1\":2}","content":{"leafNodes":["do_1","do_2","do_3"],
        "batches":[{"batchId":"b1","status":1}]}}]}}"#;
    let courses = parse_enrollment_list(body).unwrap();
    assert_eq!(courses[0].content_status.get("do_1"), Some(&2));
    assert_eq!(courses[0].leaf_nodes.as_ref().map(Vec::len), Some(3));
    assert_eq!(courses[0].batch_status, Some(1));
    assert_eq!(courses[0].fields["courseName"], "Fractions");
}

/// Issue 18: lms-legacy's `LearnerStateUpdateActor` refused an item of a batch out of its
/// dates with this text under the content id; it was read as a generic refusal. The answer
/// is one such server's, as recorded in a Sunbird portal's test data (2018); sunbird-api.md
/// §3 names the legacy values.
#[test]
fn the_legacy_batch_not_started_or_closed_answer_is_a_closed_batch() {
    let body = br#"{"id":"api.content.state.update","ver":"v1","ts":"2018-05-15 06:30:48:133+0000",
        "params":{"resmsgid":null,"msgid":"8e27cbf5-e299-43b0-bca7-8347f7e5abcf","err":null,"status":"success","errmsg":null},
        "responseCode":"OK","result":{"do_2122528233578250241233":"BATCH NOT STARTED OR BATCH CLOSED"}}"#;
    let sent = out(
        item("do_2122528233578250241233", "b1", Status::Completed, 100),
        true,
    );
    assert_eq!(
        interpret_update(200, body, &[&sent]),
        UpdateAnswer::Items(
            [(
                sent.item.key().clone(),
                ItemOutcome::Rejected {
                    reason: RejectionReason::BatchNotOngoing {
                        text: "BATCH NOT STARTED OR BATCH CLOSED".into()
                    }
                }
            )]
            .into()
        )
    );
}
