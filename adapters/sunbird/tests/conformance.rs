//! The adapter conformance suite (`headway::testing`) run against the Sunbird adapter talking
//! to the reference course service over 127.0.0.1, one test per behaviour; and against
//! deliberately broken adapters, each of which the suite must fail.
#![cfg(test)]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use headway::testing::{checks, Harness};
use headway::{
    Adapter, AdapterError, BatchId, ContentItem, ContentKey, CourseId, EnrolledCourse, ItemOutcome,
    Outgoing, PushReport, UserId,
};
use headway_sunbird::{StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};
use headway_sunbird_server::{BatchStatus, Faults, ReferenceServer, ServerConfig};

const LEARNER: &str = "learner-1";
/// Another learner: the harness's second adapter holds this learner's token.
const OTHER: &str = "learner-2";
const COURSE: &str = "do_course";
const OPEN: &str = "batch-open";
const CLOSED: &str = "batch-closed";

/// The reference course service on a free port, and an adapter (perhaps a broken one) that
/// talks to it.
struct SunbirdHarness {
    server: ReferenceServer,
    adapter: Box<dyn Adapter>,
    stranger: Box<dyn Adapter>,
}

#[async_trait]
impl Harness for SunbirdHarness {
    fn adapter(&self) -> &dyn Adapter {
        self.adapter.as_ref()
    }
    fn learner(&self) -> &UserId {
        static ID: LazyLock<UserId> = LazyLock::new(|| UserId::new(LEARNER).unwrap());
        &ID
    }
    fn other_learner(&self) -> &UserId {
        static ID: LazyLock<UserId> = LazyLock::new(|| UserId::new(OTHER).unwrap());
        &ID
    }
    fn adapter_with_the_other_learners_credentials(&self) -> &dyn Adapter {
        self.stranger.as_ref()
    }
    fn open_batch(&self) -> (CourseId, BatchId) {
        (CourseId::new(COURSE).unwrap(), BatchId::new(OPEN).unwrap())
    }
    fn refused_batch(&self) -> (CourseId, BatchId) {
        (
            CourseId::new(COURSE).unwrap(),
            BatchId::new(CLOSED).unwrap(),
        )
    }
    async fn break_server(&self) {
        self.server.set_faults(Faults {
            fail_next: u32::MAX,
            fail_status: 503,
            ..Faults::default()
        });
    }
    async fn heal_server(&self) {
        self.server.set_faults(Faults::default());
    }
    fn update_requests(&self) -> u64 {
        self.server.stats().update_requests
    }
}

/// How a deliberately broken adapter breaks the contract.
#[derive(Clone, Copy)]
enum Breakage {
    /// Reports every item acknowledged and sends nothing.
    AcknowledgesWithoutSending,
    /// Turns the server's rejections into acknowledgements.
    AcknowledgesRejections,
    /// Sends one request per item.
    OneRequestPerItem,
    /// Reads nothing back from the server.
    ReadsNothing,
    /// Takes a `SUCCESS` for a content id as an acknowledgement of every item with that
    /// content id, whatever the rejection lists say (Sunbird keys `result` by content id).
    TrustsSuccessByContentId,
    /// Takes an answer for another learner as the learner asked for (main before issue 17):
    /// it asks again as the learner the answer named and hands the rows over as the asked
    /// learner's.
    IgnoresWhoAnswered,
}

/// The real Sunbird adapter with one promise broken.
struct Broken {
    inner: SunbirdAdapter,
    breakage: Breakage,
}

#[async_trait]
impl Adapter for Broken {
    async fn push(&self, user: &UserId, items: &[Outgoing]) -> PushReport {
        match self.breakage {
            Breakage::AcknowledgesWithoutSending => {
                PushReport::all(items, ItemOutcome::Acknowledged)
            }
            Breakage::AcknowledgesRejections => {
                let mut report = self.inner.push(user, items).await;
                for outcome in report.outcomes.values_mut() {
                    if matches!(outcome, ItemOutcome::Rejected { .. }) {
                        *outcome = ItemOutcome::Acknowledged;
                    }
                }
                report
            }
            Breakage::OneRequestPerItem => {
                let mut report = PushReport::default();
                for item in items {
                    let one = self.inner.push(user, std::slice::from_ref(item)).await;
                    report.outcomes.extend(one.outcomes);
                    report.requests += one.requests;
                }
                report
            }
            Breakage::ReadsNothing | Breakage::IgnoresWhoAnswered => {
                self.inner.push(user, items).await
            }
            Breakage::TrustsSuccessByContentId => {
                let mut report = self.inner.push(user, items).await;
                let succeeded: Vec<&str> = report
                    .outcomes
                    .iter()
                    .filter(|(_, o)| o.is_acknowledged())
                    .map(|(key, _)| key.content().as_str())
                    .collect();
                let trusted: Vec<_> = report
                    .outcomes
                    .keys()
                    .filter(|key| succeeded.contains(&key.content().as_str()))
                    .cloned()
                    .collect();
                for key in trusted {
                    report.outcomes.insert(key, ItemOutcome::Acknowledged);
                }
                report
            }
        }
    }

    async fn read_states(
        &self,
        user: &UserId,
        course: &CourseId,
        batch: &BatchId,
    ) -> Result<Vec<ContentItem>, AdapterError> {
        match self.breakage {
            Breakage::ReadsNothing => Ok(Vec::new()),
            Breakage::IgnoresWhoAnswered => {
                let items = self.inner.read_states(user, course, batch).await;
                let Err(AdapterError::WrongLearner { answered, .. }) = items else {
                    return items;
                };
                let answered = UserId::new(answered).unwrap();
                let items = self.inner.read_states(&answered, course, batch).await?;
                Ok(items
                    .into_iter()
                    .map(|item| {
                        let (key, state) = item.into_parts();
                        let key = ContentKey::from_ids(
                            user.clone(),
                            key.course().clone(),
                            key.batch().clone(),
                            key.content().clone(),
                        );
                        ContentItem::new(key, state)
                    })
                    .collect())
            }
            _ => self.inner.read_states(user, course, batch).await,
        }
    }

    async fn enrolled_courses(&self, user: &UserId) -> Result<Vec<EnrolledCourse>, AdapterError> {
        let listed = self.inner.enrolled_courses(user).await;
        match (self.breakage, listed) {
            (Breakage::IgnoresWhoAnswered, Err(AdapterError::WrongLearner { answered, .. })) => {
                let answered = UserId::new(answered).unwrap();
                self.inner.enrolled_courses(&answered).await
            }
            (_, listed) => listed,
        }
    }
}

/// The reference server, where each learner's token decides who the caller is; the adapter
/// holding `LEARNER`'s token, and the same adapter holding `OTHER`'s (enrolled in `OPEN`).
async fn started() -> (ReferenceServer, SunbirdAdapter, SunbirdAdapter) {
    let config = ServerConfig::new("127.0.0.1:0")
        .token("token-of-learner-1", LEARNER)
        .token("token-of-learner-2", OTHER);
    let server = ReferenceServer::start(config).await.unwrap();
    let service = server.service();
    service
        .put_course(COURSE, "Conformance", &["conformance_theirs".to_string()])
        .unwrap();
    service
        .put_batch(OPEN, COURSE, BatchStatus::Ongoing)
        .unwrap();
    service
        .put_batch(CLOSED, COURSE, BatchStatus::Closed)
        .unwrap();
    service
        .enrol(OTHER, COURSE, OPEN, 1_714_558_530_123)
        .unwrap();
    let adapter = |token: &str| {
        let config = SunbirdConfig::new(server.url()).retry_base(Duration::from_millis(5));
        let tokens = Arc::new(StaticToken::new(UserToken::new(token)));
        SunbirdAdapter::new(config, tokens).unwrap()
    };
    let (mine, theirs) = (adapter("token-of-learner-1"), adapter("token-of-learner-2"));
    (server, mine, theirs)
}

async fn harness() -> SunbirdHarness {
    let (server, adapter, stranger) = started().await;
    SunbirdHarness {
        server,
        adapter: Box::new(adapter),
        stranger: Box::new(stranger),
    }
}

async fn broken(breakage: Breakage) -> SunbirdHarness {
    let (server, inner, stranger) = started().await;
    SunbirdHarness {
        server,
        adapter: Box::new(Broken { inner, breakage }),
        stranger: Box::new(Broken {
            inner: stranger,
            breakage,
        }),
    }
}

headway::adapter_conformance_tests!(sunbird_against_reference_server, harness().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_fails_an_adapter_that_acknowledges_what_it_never_sent() {
    let h = broken(Breakage::AcknowledgesWithoutSending).await;
    let violation = checks::acknowledged_items_are_held_by_the_server(&h)
        .await
        .unwrap_err();
    assert_eq!(violation.check, "acknowledged items are held by the server");
    let violation = checks::a_fault_leaves_every_item_pending(&h)
        .await
        .unwrap_err();
    assert_eq!(violation.check, "a fault leaves every item pending");
    assert!(checks::all(&h).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_fails_an_adapter_that_turns_rejections_into_acknowledgements() {
    let h = broken(Breakage::AcknowledgesRejections).await;
    let violation = checks::a_rejected_item_is_reported_and_never_acknowledged(&h)
        .await
        .unwrap_err();
    assert_eq!(
        violation.check,
        "a rejected item is reported and never acknowledged"
    );
    assert!(checks::all(&h).await.is_err());
}

// Review of the conformance suite: an adapter that let a content id's SUCCESS acknowledge the
// same content in a refused batch passed every check (each refused item had a content id of
// its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_fails_an_adapter_that_trusts_a_success_for_every_batch_of_a_content() {
    let h = broken(Breakage::TrustsSuccessByContentId).await;
    checks::a_rejected_item_is_reported_and_never_acknowledged(&h)
        .await
        .unwrap();
    let violation = checks::the_same_content_in_a_refused_batch_is_never_acknowledged(&h)
        .await
        .unwrap_err();
    assert_eq!(
        violation.check,
        "the same content in a refused batch is never acknowledged"
    );
    assert!(checks::all(&h).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_fails_an_adapter_that_sends_one_request_per_item() {
    let h = broken(Breakage::OneRequestPerItem).await;
    let violation = checks::a_bulk_push_takes_far_fewer_requests_than_items(&h)
        .await
        .unwrap_err();
    assert_eq!(violation.detail, "200 items took 200 requests");
    assert!(checks::all(&h).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_fails_an_adapter_that_reads_nothing_back() {
    let h = broken(Breakage::ReadsNothing).await;
    let violation = checks::merging_the_servers_states_never_lowers_anything(&h)
        .await
        .unwrap_err();
    assert!(
        violation.detail.contains("did not raise the store"),
        "{violation}"
    );
    assert!(checks::all(&h).await.is_err());
}

// Issue 17: with a stale login on a shared tablet, another learner's answers became this
// learner's progress, marked as held by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_fails_an_adapter_that_ignores_whom_the_server_answered_for() {
    let h = broken(Breakage::IgnoresWhoAnswered).await;
    let violation = checks::an_answer_for_another_learner_changes_nothing(&h)
        .await
        .unwrap_err();
    assert_eq!(
        violation.check,
        "an answer for another learner changes nothing"
    );
    assert!(violation.detail.contains("enrolment list"), "{violation}");
    assert!(checks::all(&h).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_sunbird_adapter_passes_every_check_on_one_server() {
    checks::all(&harness().await).await.unwrap();
}
