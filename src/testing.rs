//! The adapter conformance suite (feature `testing`): checks that any [`Adapter`], talking to
//! its server, keeps the sync engine's contract. An adapter crate implements [`Harness`] for
//! its adapter and a real server it controls, then runs every check in its tests, one test per
//! behaviour, with [`adapter_conformance_tests!`](crate::adapter_conformance_tests).
//!
//! Each check returns `Err(Violation)` naming what broke, so a test can also prove that a
//! deliberately broken adapter fails the suite.
//!
//! The contract:
//! - an acknowledged item is held by the server (read back through the adapter) and leaves
//!   the pending set;
//! - an item the server refuses is reported rejected, is never counted acknowledged and stays
//!   in the store, even when the same content is taken in another batch of the same push;
//! - a server or network fault leaves every item pending, and a later sync sends them all;
//! - the server's states merged back into a store never lower anything the store holds;
//! - a bulk push of many items takes far fewer requests than items;
//! - an answer for another learner than the one asked for (a token that belongs to someone
//!   else) is refused with [`AdapterError::WrongLearner`] and changes nothing (issue 17).

use async_trait::async_trait;

use crate::adapter::{Adapter, AdapterError};
use crate::content_state::{ContentItem, ContentKey, ContentState, Status};
use crate::error::Error;
use crate::id::{BatchId, ContentId, CourseId, UserId};
use crate::progress_update::ProgressUpdate;
use crate::store::Store;
use crate::sync::SyncOptions;
use crate::sync_report::SyncReport;

/// An adapter under test and the server it talks to, as the conformance suite needs them.
///
/// ```
/// # use async_trait::async_trait;
/// # use headway::testing::Harness;
/// # use headway::{Adapter, BatchId, CourseId, UserId};
/// /// Only the shape: a real harness starts a server and points its adapter at it.
/// struct Mine {
///     adapter: Box<dyn Adapter>, stranger: Box<dyn Adapter>, learner: UserId, other: UserId,
///     course: CourseId, open: BatchId, closed: BatchId,
/// }
/// #[async_trait]
/// impl Harness for Mine {
///     fn adapter(&self) -> &dyn Adapter { self.adapter.as_ref() }
///     fn learner(&self) -> &UserId { &self.learner }
///     fn other_learner(&self) -> &UserId { &self.other }
///     fn adapter_with_the_other_learners_credentials(&self) -> &dyn Adapter { self.stranger.as_ref() }
///     fn open_batch(&self) -> (CourseId, BatchId) { (self.course.clone(), self.open.clone()) }
///     fn refused_batch(&self) -> (CourseId, BatchId) { (self.course.clone(), self.closed.clone()) }
///     async fn break_server(&self) {}
///     async fn heal_server(&self) {}
///     fn update_requests(&self) -> u64 { 0 }
/// }
/// ```
#[async_trait]
pub trait Harness: Send + Sync {
    /// The adapter under test, talking to the harness's server.
    fn adapter(&self) -> &dyn Adapter;
    /// The learner the suite records progress for.
    fn learner(&self) -> &UserId;
    /// Another learner, enrolled in [`Harness::open_batch`] on the server.
    fn other_learner(&self) -> &UserId;
    /// The adapter under test, built the same way but holding
    /// [`Harness::other_learner`]'s credentials (a stale login on a shared device): the server
    /// answers it as that learner, whoever it asks for.
    fn adapter_with_the_other_learners_credentials(&self) -> &dyn Adapter;
    /// A course and batch whose updates the server takes.
    fn open_batch(&self) -> (CourseId, BatchId);
    /// A course and batch whose updates the server refuses for good (a closed batch, say).
    fn refused_batch(&self) -> (CourseId, BatchId);
    /// Makes every request fail until [`Harness::heal_server`] (a 5xx, a dropped connection).
    async fn break_server(&self);
    /// Ends [`Harness::break_server`].
    async fn heal_server(&self);
    /// How many update requests the server has received so far (counted by the server).
    fn update_requests(&self) -> u64;
}

/// A broken promise of the contract: which check, and what it saw.
///
/// ```
/// let v = headway::testing::Violation { check: "bulk", detail: "200 requests".into() };
/// assert_eq!(v.to_string(), "bulk: 200 requests");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The check that failed.
    pub check: &'static str,
    /// What it found.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

impl std::error::Error for Violation {}

/// A check's result.
pub type Checked = std::result::Result<(), Violation>;

fn ensure(check: &'static str, holds: bool, detail: impl FnOnce() -> String) -> Checked {
    if holds {
        Ok(())
    } else {
        Err(Violation {
            check,
            detail: detail(),
        })
    }
}

/// Turns a store or engine error into a violation of `check`.
fn step<T>(check: &'static str, result: crate::Result<T>) -> Result<T, Violation> {
    result.map_err(|e| Violation {
        check,
        detail: format!("the store failed: {e}"),
    })
}

/// The key of content `content` in `(course, batch)` for the harness's learner.
fn key(
    check: &'static str,
    h: &dyn Harness,
    (course, batch): (CourseId, BatchId),
    content: &str,
) -> Result<ContentKey, Violation> {
    let content = step(check, ContentId::new(content))?;
    Ok(ContentKey::from_ids(
        h.learner().clone(),
        course,
        batch,
        content,
    ))
}

fn record(
    check: &'static str,
    store: &Store,
    key: &ContentKey,
    status: Status,
    progress: i64,
) -> Result<(), Violation> {
    let update = step(check, ProgressUpdate::new(key.clone(), status, progress))?;
    step(check, store.record(update)).map(|_| ())
}

/// The server's states of the harness's learner in `(course, batch)`, read through the adapter.
async fn server_states(
    check: &'static str,
    h: &dyn Harness,
    (course, batch): (CourseId, BatchId),
) -> Result<Vec<ContentItem>, Violation> {
    h.adapter()
        .read_states(h.learner(), &course, &batch)
        .await
        .map_err(|e| Violation {
            check,
            detail: format!("reading the server's states failed: {e}"),
        })
}

/// One sync of the harness's learner through its adapter, with the default options.
async fn sync(
    check: &'static str,
    h: &dyn Harness,
    store: &Store,
) -> Result<SyncReport, Violation> {
    step(
        check,
        store
            .sync(h.learner(), h.adapter(), &SyncOptions::new())
            .await,
    )
}

fn held(items: &[ContentItem], key: &ContentKey) -> Option<ContentState> {
    items
        .iter()
        .find(|i| i.key().content() == key.content())
        .map(|i| *i.state())
}

/// The checks, one async function each, every one against a fresh in-memory store and
/// with content ids of its own (`conformance_*`), so they can share one server.
///
/// ```
/// // Run through `adapter_conformance_tests!`, or `checks::all(&harness).await`.
/// let _ = headway::testing::checks::acknowledged_items_are_held_by_the_server;
/// ```
pub mod checks {
    use super::*;

    /// Items the sync reports acknowledged are held by the server at the state sent or
    /// higher, and leave the pending set.
    pub async fn acknowledged_items_are_held_by_the_server(h: &dyn Harness) -> Checked {
        const CHECK: &str = "acknowledged items are held by the server";
        let store = step(CHECK, Store::open_in_memory())?;
        let mut keys = Vec::new();
        for (i, (status, progress)) in [
            (Status::Completed, 100),
            (Status::InProgress, 40),
            (Status::Completed, 100),
        ]
        .into_iter()
        .enumerate()
        {
            let key = key(CHECK, h, h.open_batch(), &format!("conformance_ack_{i}"))?;
            record(CHECK, &store, &key, status, progress)?;
            keys.push(key);
        }
        let report = sync(CHECK, h, &store).await?;
        ensure(CHECK, report.acknowledged == keys.len(), || {
            format!(
                "{} of {} acknowledged: {report:?}",
                report.acknowledged,
                keys.len()
            )
        })?;
        let pending = step(CHECK, store.pending(h.learner()))?;
        ensure(CHECK, pending.is_empty(), || {
            format!("acknowledged items still pending: {pending:?}")
        })?;
        let on_server = server_states(CHECK, h, h.open_batch()).await?;
        for key in &keys {
            let local = step(CHECK, store.state(key))?;
            let remote = held(&on_server, key);
            ensure(
                CHECK,
                matches!((remote, local), (Some(r), Some(l)) if r.covers(&l)),
                || {
                    format!(
                        "{key:?} acknowledged but the server holds {remote:?}, the store {local:?}"
                    )
                },
            )?;
        }
        Ok(())
    }

    /// An item the server refuses is reported rejected, never counted acknowledged, and kept
    /// in the store; the other items of the same push are acknowledged.
    pub async fn a_rejected_item_is_reported_and_never_acknowledged(h: &dyn Harness) -> Checked {
        const CHECK: &str = "a rejected item is reported and never acknowledged";
        let store = step(CHECK, Store::open_in_memory())?;
        let refused = key(CHECK, h, h.refused_batch(), "conformance_refused")?;
        let taken = key(CHECK, h, h.open_batch(), "conformance_taken")?;
        record(CHECK, &store, &refused, Status::Completed, 100)?;
        record(CHECK, &store, &taken, Status::Completed, 100)?;
        let report = sync(CHECK, h, &store).await?;
        ensure(
            CHECK,
            report.rejected.len() == 1 && report.rejected[0].key == refused,
            || format!("the refused item is not the one rejection: {report:?}"),
        )?;
        ensure(CHECK, report.acknowledged == 1, || {
            format!("expected only the other item acknowledged: {report:?}")
        })?;
        let rejected = step(CHECK, store.rejected(h.learner()))?;
        ensure(
            CHECK,
            rejected.iter().any(|(item, _)| item.key() == &refused),
            || format!("the store does not keep the rejection: {rejected:?}"),
        )?;
        let kept = step(CHECK, store.state(&refused))?;
        ensure(CHECK, kept.is_some(), || "the refused item vanished".into())?;
        let on_server = server_states(CHECK, h, h.open_batch()).await?;
        ensure(CHECK, held(&on_server, &taken).is_some(), || {
            "the item next to the refused one is not on the server".into()
        })
    }

    /// The same content in a batch the server takes and in one it refuses, sent in one sync:
    /// only the first is acknowledged. (Sunbird keys its answer by content id, so the
    /// `SUCCESS` of the one must not acknowledge the other.)
    pub async fn the_same_content_in_a_refused_batch_is_never_acknowledged(
        h: &dyn Harness,
    ) -> Checked {
        const CHECK: &str = "the same content in a refused batch is never acknowledged";
        let store = step(CHECK, Store::open_in_memory())?;
        let taken = key(CHECK, h, h.open_batch(), "conformance_both")?;
        let refused = key(CHECK, h, h.refused_batch(), "conformance_both")?;
        record(CHECK, &store, &taken, Status::Completed, 100)?;
        record(CHECK, &store, &refused, Status::Completed, 100)?;
        let report = sync(CHECK, h, &store).await?;
        ensure(
            CHECK,
            report.acknowledged == 1
                && report.rejected.len() == 1
                && report.rejected[0].key == refused,
            || {
                format!(
                    "expected the open batch's item acknowledged, the other rejected: {report:?}"
                )
            },
        )?;
        let pending = step(CHECK, store.pending(h.learner()))?;
        ensure(CHECK, pending.is_empty(), || {
            format!("expected nothing pending: {pending:?}")
        })?;
        let rejected = step(CHECK, store.rejected(h.learner()))?;
        ensure(
            CHECK,
            rejected.len() == 1 && rejected[0].0.key() == &refused,
            || format!("the store does not keep exactly the refused item: {rejected:?}"),
        )?;
        let on_server = server_states(CHECK, h, h.refused_batch()).await?;
        ensure(CHECK, held(&on_server, &refused).is_none(), || {
            format!("the refused batch holds the item on the server: {on_server:?}")
        })
    }

    /// While the server fails, a sync acknowledges nothing and every item stays pending; once
    /// it heals, the next sync sends them all.
    pub async fn a_fault_leaves_every_item_pending(h: &dyn Harness) -> Checked {
        const CHECK: &str = "a fault leaves every item pending";
        let store = step(CHECK, Store::open_in_memory())?;
        let mut keys = Vec::new();
        for i in 0..5 {
            let key = key(CHECK, h, h.open_batch(), &format!("conformance_fault_{i}"))?;
            record(CHECK, &store, &key, Status::Completed, 100)?;
            keys.push(key);
        }
        h.break_server().await;
        let during = sync(CHECK, h, &store).await;
        h.heal_server().await;
        let report = during?;
        ensure(CHECK, report.acknowledged == 0, || {
            format!("items acknowledged by a failing server: {report:?}")
        })?;
        let pending = step(CHECK, store.pending(h.learner()))?;
        ensure(CHECK, pending.len() == keys.len(), || {
            format!(
                "{} of {} items pending after a fault",
                pending.len(),
                keys.len()
            )
        })?;
        let report = sync(CHECK, h, &store).await?;
        ensure(CHECK, report.acknowledged == keys.len(), || {
            format!("the sync after the fault did not send everything: {report:?}")
        })?;
        let pending = step(CHECK, store.pending(h.learner()))?;
        ensure(CHECK, pending.is_empty(), || {
            format!("still pending after the server healed: {pending:?}")
        })
    }

    /// The server's states, read through the adapter and merged into a store that holds more,
    /// lower nothing; merged into a store that holds less, they raise it.
    pub async fn merging_the_servers_states_never_lowers_anything(h: &dyn Harness) -> Checked {
        const CHECK: &str = "merging the server's states never lowers anything";
        let ahead = step(CHECK, Store::open_in_memory())?;
        let behind = step(CHECK, Store::open_in_memory())?;
        let key = key(CHECK, h, h.open_batch(), "conformance_merge")?;
        record(CHECK, &behind, &key, Status::InProgress, 30)?;
        sync(CHECK, h, &behind).await?;
        record(CHECK, &ahead, &key, Status::Completed, 100)?;
        let on_server = server_states(CHECK, h, h.open_batch()).await?;
        step(CHECK, ahead.merge_server_states(&on_server))?;
        let kept = step(CHECK, ahead.state(&key))?;
        ensure(
            CHECK,
            kept.is_some_and(|s| s.status() == Status::Completed && s.progress().get() == 100),
            || format!("the server's lower state lowered the store: {kept:?}"),
        )?;
        sync(CHECK, h, &ahead).await?;
        let on_server = server_states(CHECK, h, h.open_batch()).await?;
        step(CHECK, behind.merge_server_states(&on_server))?;
        let raised = step(CHECK, behind.state(&key))?;
        ensure(
            CHECK,
            raised.is_some_and(|s| s.status() == Status::Completed),
            || format!("the server's higher state did not raise the store: {raised:?}"),
        )
    }

    /// Many items go in far fewer requests than items (at most one per 20 items, plus one).
    pub async fn a_bulk_push_takes_far_fewer_requests_than_items(h: &dyn Harness) -> Checked {
        const CHECK: &str = "a bulk push takes far fewer requests than items";
        const ITEMS: u64 = 200;
        let store = step(CHECK, Store::open_in_memory())?;
        for i in 0..ITEMS {
            let key = key(
                CHECK,
                h,
                h.open_batch(),
                &format!("conformance_bulk_{i:03}"),
            )?;
            record(CHECK, &store, &key, Status::Completed, 100)?;
        }
        let before = h.update_requests();
        let report = sync(CHECK, h, &store).await?;
        let requests = h.update_requests().saturating_sub(before);
        ensure(CHECK, report.acknowledged as u64 == ITEMS, || {
            format!("{} of {ITEMS} acknowledged", report.acknowledged)
        })?;
        ensure(CHECK, requests <= ITEMS / 20 + 1, || {
            format!("{ITEMS} items took {requests} requests")
        })
    }

    /// With another learner's credentials, an enrolment-list answer is refused with
    /// [`AdapterError::WrongLearner`], a content-state read hands over no item of another
    /// learner, and a refresh of the learner's courses fails with [`Error::WrongLearner`]
    /// and leaves the store as it was: no state merged, nothing marked held by the server,
    /// no course cached (issue 17).
    pub async fn an_answer_for_another_learner_changes_nothing(h: &dyn Harness) -> Checked {
        const CHECK: &str = "an answer for another learner changes nothing";
        let stranger = h.adapter_with_the_other_learners_credentials();
        // The other learner's progress, on the server.
        let theirs = step(CHECK, Store::open_in_memory())?;
        let (course, batch) = h.open_batch();
        let content = step(CHECK, ContentId::new("conformance_theirs"))?;
        let their_key =
            ContentKey::from_ids(h.other_learner().clone(), course, batch, content.clone());
        record(CHECK, &theirs, &their_key, Status::Completed, 100)?;
        let report = step(
            CHECK,
            theirs
                .sync(h.other_learner(), stranger, &SyncOptions::new())
                .await,
        )?;
        ensure(CHECK, report.acknowledged == 1, || {
            format!("the other learner's progress did not reach the server: {report:?}")
        })?;
        let listed = stranger.enrolled_courses(h.learner()).await;
        ensure(
            CHECK,
            matches!(listed, Err(AdapterError::WrongLearner { .. })),
            || format!("the enrolment list of another learner was not refused: {listed:?}"),
        )?;
        let (course, batch) = h.open_batch();
        if let Ok(items) = stranger.read_states(h.learner(), &course, &batch).await {
            let foreign = AdapterError::foreign_item(h.learner(), &items);
            ensure(CHECK, foreign.is_none(), || {
                format!("the read handed over another learner's items: {foreign:?}")
            })?;
        }
        // The learner's own store, with one item pending in the open batch.
        let store = step(CHECK, Store::open_in_memory())?;
        let mine = key(CHECK, h, h.open_batch(), "conformance_mine")?;
        record(CHECK, &store, &mine, Status::InProgress, 10)?;
        let pending = step(CHECK, store.pending(h.learner()))?;
        let refreshed = store
            .refresh_courses(h.learner(), stranger, &SyncOptions::new())
            .await;
        ensure(
            CHECK,
            matches!(refreshed, Err(Error::WrongLearner { .. })),
            || format!("a refresh with another learner's answers did not fail: {refreshed:?}"),
        )?;
        let theirs_here = key(CHECK, h, h.open_batch(), content.as_str())?;
        let merged = step(CHECK, store.state(&theirs_here))?;
        ensure(CHECK, merged.is_none(), || {
            format!("the other learner's state was merged as the learner's: {merged:?}")
        })?;
        let after = step(CHECK, store.pending(h.learner()))?;
        ensure(CHECK, after == pending, || {
            format!("the pending set changed from {pending:?} to {after:?}")
        })?;
        let cached = step(CHECK, store.courses(h.learner()))?;
        ensure(CHECK, cached.is_empty(), || {
            format!("the other learner's courses were cached: {cached:?}")
        })
    }

    /// Every check, in order; the first violation.
    pub async fn all(h: &dyn Harness) -> Checked {
        acknowledged_items_are_held_by_the_server(h).await?;
        a_rejected_item_is_reported_and_never_acknowledged(h).await?;
        the_same_content_in_a_refused_batch_is_never_acknowledged(h).await?;
        a_fault_leaves_every_item_pending(h).await?;
        merging_the_servers_states_never_lowers_anything(h).await?;
        a_bulk_push_takes_far_fewer_requests_than_items(h).await?;
        an_answer_for_another_learner_changes_nothing(h).await
    }
}

/// Generates one `#[tokio::test]` per check of the conformance suite, in a module named
/// `$name`. `$harness` is an async expression giving a fresh [`Harness`] for each test (the
/// calling crate needs tokio with `macros` and `rt-multi-thread`).
///
/// ```text
/// // adapters/sunbird/tests/conformance.rs, where `harness()` starts the reference server:
/// headway::adapter_conformance_tests!(sunbird_against_reference_server, harness().await);
/// ```
#[macro_export]
macro_rules! adapter_conformance_tests {
    ($name:ident, $harness:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::adapter_conformance_tests!(@check $harness,
                acknowledged_items_are_held_by_the_server,
                a_rejected_item_is_reported_and_never_acknowledged,
                the_same_content_in_a_refused_batch_is_never_acknowledged,
                a_fault_leaves_every_item_pending,
                merging_the_servers_states_never_lowers_anything,
                a_bulk_push_takes_far_fewer_requests_than_items,
                an_answer_for_another_learner_changes_nothing);
        }
    };
    (@check $harness:expr, $($check:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let harness = $harness;
                if let Err(violation) = $crate::testing::checks::$check(&harness).await {
                    panic!("{violation}");
                }
            }
        )+
    };
}
