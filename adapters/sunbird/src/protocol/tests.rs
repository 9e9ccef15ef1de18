//! The push machine, driven by hand: planning, bisection, token refresh, retries.

use std::time::Instant;

use headway::{
    ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, Progress, PushReport, RetryCause,
    Status, UserId,
};

use super::plan::{enrolment_list_path, plan_requests, LIST_QUERY};
use super::{Answer, Machine, Request, Step, Tally, TokenUse, UpdatePush};
use crate::config::SunbirdConfig;
use crate::error::Error;

fn out(course: &str, batch: &str, content: &str) -> Outgoing {
    Outgoing {
        item: ContentItem::new(
            ContentKey::new("u", course, batch, content).unwrap(),
            ContentState::default(),
        ),
        server: None,
    }
}

/// `n` first writes `do_0`.. of course `c`, batch `b`.
fn items(n: usize) -> Vec<Outgoing> {
    (0..n).map(|i| out("c", "b", &format!("do_{i}"))).collect()
}

/// Pushes learner `u`'s `items` under `config` to the end, answering each request with
/// `answer` (given the request); returns the report, the requests sent and the tally.
fn run(
    config: &SunbirdConfig,
    items: &[Outgoing],
    mut answer: impl FnMut(&Request) -> Answer,
) -> (PushReport, Vec<Request>, Tally) {
    let mut now = Instant::now();
    let user = UserId::new("u").unwrap();
    let mut push = UpdatePush::new(config, &user, items, now);
    let mut sent = Vec::new();
    loop {
        match push.poll(now) {
            Step::Send(request) => {
                let a = answer(&request);
                sent.push(request);
                push.answer(now, a);
            }
            Step::Wait(pause) => now += pause,
            Step::Done(report) => return (report, sent, push.tally()),
        }
    }
}

fn contents(request: &Request) -> Vec<String> {
    let body: serde_json::Value = serde_json::from_slice(request.body.as_deref().unwrap()).unwrap();
    body["request"]["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contentId"].as_str().unwrap().to_string())
        .collect()
}

fn success(ids: &[String]) -> Answer {
    let result: serde_json::Map<String, serde_json::Value> = ids
        .iter()
        .map(|id| (id.clone(), serde_json::json!("SUCCESS")))
        .collect();
    Answer::Answered {
        status: 200,
        body: serde_json::to_vec(&serde_json::json!({ "result": result })).unwrap(),
    }
}

#[test]
fn user_ids_are_percent_encoded_in_the_list_path() {
    let path = |user: &str| enrolment_list_path(&UserId::new(user).unwrap());
    assert_eq!(
        path("95e4942d-cbe8"),
        format!("user/enrollment/list/95e4942d-cbe8?{LIST_QUERY}")
    );
    assert_eq!(
        path("a/b?c#d e%"),
        format!("user/enrollment/list/a%2Fb%3Fc%23d%20e%25?{LIST_QUERY}")
    );
}

#[test]
fn requests_hold_at_most_chunk_items_and_one_course_per_batch() {
    let mut items: Vec<Outgoing> = (0..250)
        .map(|i| out("c1", "b1", &format!("k{i}")))
        .collect();
    items.push(out("c2", "b1", "k0")); // same batch under another course: another request
    let all: Vec<usize> = (0..items.len()).collect();
    let plan = plan_requests(&items, &all, 100);
    assert_eq!(
        plan.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![100, 100, 50, 1]
    );
    assert_eq!(plan[3], vec![250]);
    for request in &plan {
        let courses: std::collections::HashSet<&str> = request
            .iter()
            .map(|&i| items[i].item.key().course().as_str())
            .collect();
        assert_eq!(
            courses.len(),
            1,
            "a request mixed two courses for one batch"
        );
    }
}

#[test]
fn a_400_is_bisected_down_to_the_one_refused_item() {
    let items = items(8);
    let config = SunbirdConfig::new("http://sim");
    let (report, sent, tally) = run(&config, &items, |request| {
        let ids = contents(request);
        if ids.iter().any(|id| id == "do_5") {
            Answer::Answered {
                status: 400,
                body: br#"{"params":{"err":"DATE_FORMAT_ERRROR"}}"#.to_vec(),
            }
        } else {
            success(&ids)
        }
    });
    assert!(
        matches!(&report.outcomes[items[5].item.key()], ItemOutcome::Rejected { reason } if reason == "DATE_FORMAT_ERRROR")
    );
    let acknowledged = report
        .outcomes
        .values()
        .filter(|o| o.is_acknowledged())
        .count();
    assert_eq!(acknowledged, 7);
    assert_eq!(tally.bisections, 3);
    assert_eq!(report.requests, sent.len());
    assert_eq!(
        sent.len(),
        7,
        "1 + 2 + 2 + 2 requests for 8 items and one poison"
    );
}

#[test]
fn a_refused_token_is_refreshed_once_then_the_items_are_unauthorized() {
    let items = [out("c", "b", "do_1")];
    let config = SunbirdConfig::new("http://sim");
    let (report, sent, tally) = run(&config, &items, |_| Answer::Answered {
        status: 401,
        body: Vec::new(),
    });
    assert_eq!(
        sent.iter().map(|r| r.token).collect::<Vec<_>>(),
        vec![TokenUse::Current, TokenUse::Refreshed]
    );
    assert_eq!(
        report.outcomes.into_values().collect::<Vec<_>>(),
        vec![ItemOutcome::Retry {
            cause: RetryCause::CredentialsRefused { status: 401 }
        }]
    );
    assert_eq!(tally.token_refreshes, 1);
}

#[test]
fn a_token_refused_after_its_refresh_ends_the_push_and_everything_stays_pending() {
    let items = items(250);
    let config = SunbirdConfig::new("http://sim");
    let (report, sent, _) = run(&config, &items, |_| Answer::Answered {
        status: 403,
        body: Vec::new(),
    });
    assert_eq!(
        sent.len(),
        2,
        "one request and its retry with a fresh token"
    );
    assert!(report.outcomes.values().all(|o| o
        == &ItemOutcome::Retry {
            cause: RetryCause::CredentialsRefused { status: 403 }
        }));
}

#[test]
fn an_unreachable_service_ends_the_push_after_one_request_and_everything_stays_pending() {
    let items = items(250);
    let config = SunbirdConfig::new("http://sim");
    let (report, sent, _) = run(&config, &items, |_| {
        Answer::Failed(Error::CannotConnect {
            address: "http://sim".into(),
        })
    });
    assert_eq!(sent.len(), 1);
    assert!(report.outcomes.values().all(|o| matches!(
        o,
        ItemOutcome::Retry { cause: RetryCause::Network { detail } } if detail == "cannot connect to http://sim"
    )));
}

#[test]
fn server_errors_are_retried_with_back_off_up_to_the_attempts() {
    let items = [out("c", "b", "do_1")];
    let config = SunbirdConfig::new("http://sim").attempts(3);
    let (report, sent, _) = run(&config, &items, |_| Answer::Answered {
        status: 503,
        body: Vec::new(),
    });
    assert_eq!(sent.len(), 3);
    assert_eq!(
        report.outcomes.into_values().collect::<Vec<_>>(),
        vec![ItemOutcome::Retry {
            cause: RetryCause::Server { status: 503 }
        }]
    );
}

fn first_write_at_60() -> [Outgoing; 1] {
    let watching = ContentState::new(Status::InProgress, Progress::new(60).unwrap(), None, None);
    [Outgoing {
        item: ContentItem::new(ContentKey::new("u", "c", "b", "do_1").unwrap(), watching),
        server: None,
    }]
}

/// The engine owns the second round for Sunbird's first-write rule (issue 18): the push
/// sends a first write once and reports what the server holds, so the engine's next round
/// sends it with that state as the server's.
#[test]
fn a_first_write_stored_lower_is_sent_once_and_reported_held_lower() {
    let items = first_write_at_60();
    let config = SunbirdConfig::new("http://sim");
    let (report, sent, _) = run(&config, &items, |request| success(&contents(request)));
    assert_eq!(sent.len(), 1);
    let held = ContentState::new(Status::InProgress, Progress::default(), None, None);
    assert_eq!(
        report.outcomes[items[0].item.key()],
        ItemOutcome::HeldLower { held }
    );
    // The engine's second round: the same item, the server's state known.
    let again = [Outgoing {
        item: items[0].item.clone(),
        server: Some(held),
    }];
    let (report, sent, _) = run(&config, &again, |request| success(&contents(request)));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        report.outcomes[again[0].item.key()],
        ItemOutcome::Acknowledged
    );
}
