//! The bulk update: its request body, and what each answer means for each item sent. An
//! update's `result` is read more strictly than other answers, because it decides
//! acknowledgements: a rejection list of another type, or a key written twice with different
//! values, acknowledges nothing it could concern.

use std::collections::{BTreeMap, BTreeSet};

use headway::{
    ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, Progress, RejectionReason,
    RetryCause, Status, UserId,
};
use serde::Serialize;
use serde_json::Value;

use super::date::format_date;
use super::entries::{Entries, UpdateEnvelope};
use super::error_answer::error_reason;

/// The body of one bulk update: `{"request":{"userId":U,"contents":[...]}}`, each item with its
/// own `userId` too. Fields without a value are left out rather than sent as null (Sunbird
/// copies nulls over stored values), and `lastCompletedTime` goes only with status 2.
///
/// ```
/// use headway::{ContentItem, ContentKey, ContentState, Progress, Status};
/// let item = ContentItem::new(
///     ContentKey::new("u1", "do_c", "0130", "do_1")?,
///     ContentState::new(Status::InProgress, Progress::new(40)?, None, None),
/// );
/// let body = serde_json::to_value(headway_sunbird::wire::update_body(&"u1".try_into()?, &[&item]))?;
/// assert_eq!(body["request"]["contents"][0]["progress"], 40);
/// assert!(body["request"]["contents"][0].get("lastAccessTime").is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn update_body<'a>(user: &'a UserId, items: &[&'a ContentItem]) -> UpdateRequest<'a> {
    let contents = items
        .iter()
        .map(|item| {
            let (key, state) = (item.key(), item.state());
            ContentUpdate {
                // The item's own userId: with a token of another learner the server drops the
                // item (it stays pending) instead of crediting the progress to the wrong
                // account.
                user_id: key.user(),
                content_id: key.content(),
                course_id: key.course(),
                batch_id: key.batch(),
                status: state.status().code(),
                progress: state.progress().get(),
                last_access_time: state.last_access_time().map(format_date),
                last_completed_time: state
                    .last_completed_time()
                    .filter(|_| state.status() == Status::Completed)
                    .map(format_date),
            }
        })
        .collect();
    UpdateRequest {
        request: UpdateContents {
            user_id: user,
            contents,
        },
    }
}

/// The body of one bulk update (see [`update_body`]); serialize it to send it.
///
/// ```
/// let user = headway::UserId::new("u1")?;
/// let body = headway_sunbird::wire::update_body(&user, &[]);
/// assert_eq!(serde_json::to_string(&body)?, r#"{"request":{"userId":"u1","contents":[]}}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct UpdateRequest<'a> {
    request: UpdateContents<'a>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateContents<'a> {
    user_id: &'a str,
    contents: Vec<ContentUpdate<'a>>,
}

/// One item of an update, in Sunbird's field order.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentUpdate<'a> {
    user_id: &'a str,
    content_id: &'a str,
    course_id: &'a str,
    batch_id: &'a str,
    status: u8,
    progress: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_access_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_completed_time: Option<String>,
}

/// An update's `result`, read for what it says about each item sent.
#[derive(Default)]
struct UpdateResult {
    /// Batch ids the server listed under `NOT_A_ON_GOING_BATCH`.
    not_ongoing: BTreeSet<String>,
    /// Batch ids the server listed under `BATCH_NOT_EXISTS`.
    missing: BTreeSet<String>,
    /// A rejection list that is not a list of batch ids: which batches it names is unknown.
    unreadable_list: bool,
    /// Every value given for each other key, in order.
    values: BTreeMap<String, Vec<Value>>,
}

impl UpdateResult {
    fn read(entries: Entries) -> UpdateResult {
        let mut result = UpdateResult::default();
        for (key, value) in entries {
            let list = match key.as_str() {
                "NOT_A_ON_GOING_BATCH" => &mut result.not_ongoing,
                "BATCH_NOT_EXISTS" => &mut result.missing,
                _ => {
                    result.values.entry(key).or_default().push(value);
                    continue;
                }
            };
            match value {
                // No list at all names no batch.
                Value::Null => {}
                Value::Array(batches) => {
                    for batch in batches {
                        match batch {
                            Value::String(batch) => {
                                list.insert(batch);
                            }
                            _ => result.unreadable_list = true,
                        }
                    }
                }
                _ => result.unreadable_list = true,
            }
        }
        result
    }
}

/// What lms-legacy's `LearnerStateUpdateActor` (about 2018) wrote under a content id whose
/// batch had not started or had ended: the same refusal as today's `NOT_A_ON_GOING_BATCH`.
const LEGACY_BATCH_CLOSED: &str = "BATCH NOT STARTED OR BATCH CLOSED";

/// The reason given for an item the server's `result` does not mention.
pub const NOT_IN_RESULT: &str = "NOT_IN_RESULT";

/// A batch the server lists under `NOT_A_ON_GOING_BATCH`: not running (yet, or any more).
fn batch_not_ongoing() -> RejectionReason {
    RejectionReason::BatchNotOngoing {
        text: "NOT_A_ON_GOING_BATCH".into(),
    }
}

/// A batch the server lists under `BATCH_NOT_EXISTS`.
fn batch_unknown() -> RejectionReason {
    RejectionReason::BatchUnknown {
        text: "BATCH_NOT_EXISTS".into(),
    }
}

/// What one answer to a bulk update means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateAnswer {
    /// The server answered item by item: one outcome per item sent, by its key.
    Items(BTreeMap<ContentKey, ItemOutcome>),
    /// HTTP 400 `CLIENT_ERROR`: the whole request was refused because of (at least) one item.
    ClientError {
        /// `params.err: params.errmsg`, or the status.
        reason: String,
    },
    /// 401 or 403: the token was refused.
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// Nothing was decided: every item stays pending.
    Retry(RetryCause),
}

/// Reads the answer to one bulk update of `sent` items.
///
/// An item is acknowledged when `result[contentId] == "SUCCESS"` and its batch is in neither
/// `NOT_A_ON_GOING_BATCH` nor `BATCH_NOT_EXISTS`; rejected when its batch is in one of them
/// (a legacy server's `BATCH NOT STARTED OR BATCH CLOSED` under the content id is the same
/// closed batch), when `result` holds another value for it (legacy `FAILED`, ...), or when `result` does not
/// mention it at all (Sunbird drops such items for good: a blank batch, a foreign user). Because Sunbird stores progress 0 for a first write with a status
/// below 2, such an item the server never confirmed before comes back as
/// [`ItemOutcome::HeldLower`], so the sync sends it once more.
///
/// ```
/// use headway::{ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, Progress, Status};
/// use headway_sunbird::wire::{interpret_update, UpdateAnswer};
/// let done = ContentState::new(Status::Completed, Progress::new(100)?, None, None);
/// let sent = Outgoing { item: ContentItem::new(ContentKey::new("u", "c", "b1", "do_1")?, done), server: None };
/// let body = br#"{"responseCode":"OK","result":{"do_1":"SUCCESS"}}"#;
/// let key = sent.item.key().clone();
/// assert_eq!(interpret_update(200, body, &[&sent]), UpdateAnswer::Items([(key, ItemOutcome::Acknowledged)].into()));
/// let closed = br#"{"responseCode":"OK","result":{"do_1":"SUCCESS","NOT_A_ON_GOING_BATCH":["b1"]}}"#;
/// assert!(matches!(&interpret_update(200, closed, &[&sent]), UpdateAnswer::Items(o) if !o[sent.item.key()].is_acknowledged()));
/// # Ok::<(), headway::Error>(())
/// ```
pub fn interpret_update(status: u16, body: &[u8], sent: &[&Outgoing]) -> UpdateAnswer {
    match status {
        200..=299 => {}
        400 => {
            return UpdateAnswer::ClientError {
                reason: error_reason(body).unwrap_or_else(|| "HTTP 400".into()),
            }
        }
        401 | 403 => return UpdateAnswer::Unauthorized { status },
        other => return UpdateAnswer::Retry(RetryCause::Server { status: other }),
    }
    let unparsable = |detail: &str| {
        UpdateAnswer::Retry(RetryCause::Unparsable {
            detail: detail.to_string(),
        })
    };
    let envelope = match serde_json::from_slice::<UpdateEnvelope>(body) {
        Ok(envelope) => envelope,
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() => {
            return unparsable("no result object")
        }
        Err(_) => return unparsable("the body is not JSON"),
    };
    // Two `result` objects could each say something else about an item: neither is trusted.
    let mut results = envelope.results.into_iter();
    let entries = match (results.next(), results.next()) {
        (Some(Some(entries)), None) => entries,
        (Some(_), Some(_)) => return unparsable("more than one result"),
        _ => return unparsable("no result object"),
    };
    let result = UpdateResult::read(entries);
    let outcomes = sent
        .iter()
        .map(|out| (out.item.key().clone(), outcome_of(out, &result)))
        .collect();
    UpdateAnswer::Items(outcomes)
}

/// What `result` says of one item sent.
fn outcome_of(out: &Outgoing, result: &UpdateResult) -> ItemOutcome {
    let (key, state) = (out.item.key(), out.item.state());
    let lists: [(_, fn() -> RejectionReason); 2] = [
        (&result.not_ongoing, batch_not_ongoing),
        (&result.missing, batch_unknown),
    ];
    for (list, reason) in lists {
        if list.contains(key.batch().as_str()) {
            return ItemOutcome::Rejected { reason: reason() };
        }
        // The server names batches as it stored them (trimmed, say): a listed batch
        // that matches no batch sent exactly but this one loosely may be this one, and
        // `result` is keyed by content id only, so a SUCCESS cannot clear it.
        if list
            .iter()
            .any(|named| loosely_same_batch(named, key.batch()))
        {
            return ItemOutcome::Rejected { reason: reason() };
        }
    }
    // A rejection list that cannot be read may name this item's batch: a `SUCCESS` for
    // its content id (perhaps written under another batch) proves nothing.
    if result.unreadable_list {
        return ItemOutcome::Retry {
            cause: RetryCause::Unparsable {
                detail: "a rejection list of the result is not a list of batch ids".into(),
            },
        };
    }
    match result.values.get(key.content().as_str()).map(Vec::as_slice) {
        // Sunbird drops such an item without a trace (a user other than the token's; a
        // blank batch cannot be sent): reported, and sent again on the next sync, when
        // the token may be the right one.
        None | Some([]) => ItemOutcome::Rejected {
            reason: RejectionReason::DroppedByServer {
                text: NOT_IN_RESULT.into(),
            },
        },
        Some([Value::String(s), rest @ ..]) if rest.iter().all(|v| v.as_str() == Some(s)) => {
            if s == "SUCCESS" {
                acknowledged(out, state)
            } else if s == LEGACY_BATCH_CLOSED {
                ItemOutcome::Rejected {
                    reason: RejectionReason::BatchNotOngoing { text: s.clone() },
                }
            } else {
                ItemOutcome::Rejected {
                    reason: RejectionReason::RefusedByServer { text: s.clone() },
                }
            }
        }
        Some([_]) => ItemOutcome::Retry {
            cause: RetryCause::Unparsable {
                detail: format!("result for {} is not a string", key.content()),
            },
        },
        // The key written twice with different values: which one holds is unknown.
        Some(_) => ItemOutcome::Retry {
            cause: RetryCause::Unparsable {
                detail: format!("result names {} twice, differently", key.content()),
            },
        },
    }
}

/// True when a batch id the server named and a batch id sent differ only by surrounding white
/// space or ASCII case.
fn loosely_same_batch(named: &str, sent: &str) -> bool {
    named != sent && named.trim().eq_ignore_ascii_case(sent.trim())
}

/// An acknowledgement, or `HeldLower` when Sunbird's first-write rule stored less than sent.
fn acknowledged(out: &Outgoing, state: &ContentState) -> ItemOutcome {
    let first_write = out.server.is_none();
    if first_write && state.status() != Status::Completed && state.progress().get() > 0 {
        return ItemOutcome::HeldLower {
            held: ContentState::new(
                state.status(),
                Progress::default(),
                state.last_access_time(),
                None,
            ),
        };
    }
    ItemOutcome::Acknowledged
}
