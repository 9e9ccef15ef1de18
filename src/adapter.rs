//! The seam between the core and a server: an [`Adapter`] sends a learner's pending content
//! states in bulk and says, item by item, what became of each; it also reads the server's
//! content states and enrolled courses. Adapters live under `adapters/`; the core knows no
//! server's JSON and does no network IO.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::content_state::{ContentItem, ContentKey, ContentState};
use crate::course::EnrolledCourse;
use crate::id::{BatchId, CourseId, UserId};
use crate::rejection::RejectionReason;

/// One item handed to [`Adapter::push`]: the state to send, and the highest state the server
/// is already known to hold for it (`None` if the server never confirmed this item, which some
/// servers treat as a first write).
///
/// ```
/// use headway::{ContentItem, ContentKey, ContentState, Outgoing};
/// let item = ContentItem::new(ContentKey::new("u", "c", "b", "k")?, ContentState::default());
/// let outgoing = Outgoing { item, server: None };
/// assert!(outgoing.server.is_none());
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The content item and the state to send.
    pub item: ContentItem,
    /// What the server is known to hold already.
    pub server: Option<ContentState>,
}

/// Why an item was not acknowledged this time; it stays pending and is sent again.
///
/// ```
/// use headway::RetryCause;
/// assert_eq!(RetryCause::Server { status: 503 }.to_string(), "server error 503");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryCause {
    /// The server answered 5xx (or another status that may pass).
    #[error("server error {status}")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The server could not be reached, or the connection broke.
    #[error("network: {detail}")]
    Network {
        /// What the transport reported.
        detail: String,
    },
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The answer could not be understood.
    #[error("unparsable answer: {detail}")]
    Unparsable {
        /// What was wrong with it.
        detail: String,
    },
    /// The credentials were refused even after a refresh.
    #[error("credentials refused ({status})")]
    CredentialsRefused {
        /// The HTTP status, 401 or 403.
        status: u16,
    },
    /// The server answered, but did not list this item as written.
    #[error("missing from the server's result")]
    NotInResult,
    /// The server took the item but holds less than was sent (a first write that the server
    /// stores lower); the item is sent again.
    #[error("the server holds less than was sent")]
    HeldLower,
    /// The server answered with a redirect, which is never followed: the credentials go only
    /// to the server they were configured for (issue 17).
    #[error("redirected to {to}, not followed (credentials go only to the configured server)")]
    Redirected {
        /// The host (and port) the redirect pointed to, or `an unnamed location`.
        to: String,
    },
    /// The answer was larger than the adapter reads; the rest was not read (issue 17).
    #[error("the answer exceeded {limit} bytes and was not read")]
    AnswerTooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
}

impl RetryCause {
    /// True for [`RetryCause::CredentialsRefused`]: the token, not the network, is the problem.
    ///
    /// ```
    /// use headway::RetryCause;
    /// assert!(RetryCause::CredentialsRefused { status: 401 }.is_credentials_refused());
    /// assert!(!RetryCause::Timeout.is_credentials_refused());
    /// ```
    pub fn is_credentials_refused(&self) -> bool {
        matches!(self, RetryCause::CredentialsRefused { .. })
    }

    /// True when the server as configured could not be reached or gave no usable answer at
    /// all: it could not be connected to ([`Network`](RetryCause::Network)), did not answer in
    /// time, redirected elsewhere, or answered past the size cap. Asking again at once would
    /// meet the same; a server that answered (5xx, an unparsable body, an item left out of its
    /// result) is not unreachable. The one place this set is decided: a sync makes no further
    /// round after it, and a refresh answers from the cache.
    ///
    /// ```
    /// use headway::RetryCause;
    /// assert!(RetryCause::Timeout.is_unreachable());
    /// assert!(RetryCause::Redirected { to: "elsewhere".into() }.is_unreachable());
    /// assert!(!RetryCause::Server { status: 503 }.is_unreachable());
    /// ```
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            RetryCause::Network { .. }
                | RetryCause::Timeout
                | RetryCause::Redirected { .. }
                | RetryCause::AnswerTooLarge { .. }
        )
    }
}

/// What became of one item handed to [`Adapter::push`].
///
/// ```
/// use headway::{ItemOutcome, RejectionReason};
/// let reason = RejectionReason::BatchNotOngoing { text: "the batch is closed".into() };
/// let outcome = ItemOutcome::Rejected { reason };
/// assert!(!outcome.is_acknowledged());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemOutcome {
    /// The server holds this state or a higher one.
    Acknowledged,
    /// The server took the item but holds at least `held` only, which is below what was sent
    /// (a server may store progress 0 for a first write that is not a completion). The item
    /// stays pending, and the sync sends it again in its next round (see
    /// [`SyncOptions::max_rounds`](crate::SyncOptions::max_rounds)) unless the server proved
    /// unreachable in this one.
    HeldLower {
        /// What the server holds at least.
        held: ContentState,
    },
    /// Refused: kept locally and reported. A refusal for good (a closed or unknown batch, a
    /// client error) is not resent until the state changes again or the app asks; an item
    /// the server dropped without a reason ([`RejectionReason::DroppedByServer`]) is sent
    /// again by the next sync.
    Rejected {
        /// What kind of refusal, with the server's text.
        reason: RejectionReason,
    },
    /// Not taken this time; stays pending and is retried.
    Retry {
        /// Why.
        cause: RetryCause,
    },
}

impl ItemOutcome {
    /// True for [`ItemOutcome::Acknowledged`].
    pub fn is_acknowledged(&self) -> bool {
        matches!(self, ItemOutcome::Acknowledged)
    }
}

/// What one [`Adapter::push`] did: the outcome of each item, keyed by its [`ContentKey`], and
/// what it cost. An item handed in without an outcome here stays pending (the engine reports it
/// retrying); an outcome for a key that was not handed in is ignored.
///
/// ```
/// use headway::{ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, PushReport};
/// let key = ContentKey::new("u", "c", "b", "k")?;
/// let items = [Outgoing { item: ContentItem::new(key.clone(), ContentState::default()), server: None }];
/// let report = PushReport::all(&items, ItemOutcome::Acknowledged);
/// assert_eq!(report.outcomes.get(&key), Some(&ItemOutcome::Acknowledged));
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// The outcome of each item handed in, by content key.
    pub outcomes: BTreeMap<ContentKey, ItemOutcome>,
    /// HTTP requests (or messages) made.
    pub requests: usize,
    /// Bytes sent, bodies included.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

impl PushReport {
    /// A report giving every one of `items` the same outcome, no request made.
    ///
    /// ```
    /// use headway::{ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, PushReport, RetryCause};
    /// let item = ContentItem::new(ContentKey::new("u", "c", "b", "k")?, ContentState::default());
    /// let items = [Outgoing { item, server: None }];
    /// let report = PushReport::all(&items, ItemOutcome::Retry { cause: RetryCause::Timeout });
    /// assert_eq!((report.outcomes.len(), report.requests), (1, 0));
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn all(items: &[Outgoing], outcome: ItemOutcome) -> PushReport {
        PushReport {
            outcomes: items
                .iter()
                .map(|out| (out.item.key().clone(), outcome.clone()))
                .collect(),
            ..PushReport::default()
        }
    }
}

/// A failed read from the server.
///
/// ```
/// use headway::AdapterError;
/// assert!(AdapterError::Network { detail: "connection refused".into() }.is_retryable());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The server could not be reached, timed out, or answered 5xx.
    #[error("server unavailable: {cause}")]
    Unavailable {
        /// Why.
        cause: RetryCause,
    },
    /// The server refused the request for good (4xx other than 401/403).
    #[error("refused by the server ({status}): {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's reason.
        reason: String,
    },
    /// A network failure described by the transport.
    #[error("network: {detail}")]
    Network {
        /// What the transport reported.
        detail: String,
    },
    /// The answer (or one row or entry of it) named another learner than the one asked for:
    /// the token belongs to someone else. Nothing of the answer may be used (issue 17).
    #[error("the server answered for learner {answered:?}, not {asked:?}: the token belongs to someone else")]
    WrongLearner {
        /// The learner asked for.
        asked: String,
        /// The learner the answer named.
        answered: String,
    },
}

impl AdapterError {
    /// True when trying again later may succeed.
    ///
    /// ```
    /// use headway::AdapterError;
    /// let wrong = AdapterError::WrongLearner { asked: "bob".into(), answered: "asha".into() };
    /// assert!(!wrong.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            AdapterError::Refused { .. } | AdapterError::WrongLearner { .. }
        )
    }

    /// The error for an answer naming `answered` when `asked` was asked for, if they differ.
    ///
    /// ```
    /// use headway::{AdapterError, UserId};
    /// let bob = UserId::new("bob")?;
    /// assert!(AdapterError::unless_learner(&bob, "bob").is_none());
    /// assert!(matches!(AdapterError::unless_learner(&bob, "asha"), Some(AdapterError::WrongLearner { .. })));
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn unless_learner(asked: &UserId, answered: &str) -> Option<AdapterError> {
        (asked.as_str() != answered).then(|| AdapterError::WrongLearner {
            asked: asked.to_string(),
            answered: answered.to_string(),
        })
    }

    /// The first item of `items` that belongs to another learner than `asked`, as an error:
    /// what every consumer of [`Adapter::read_states`] checks before merging.
    ///
    /// ```
    /// use headway::{AdapterError, ContentItem, ContentKey, ContentState, UserId};
    /// let asha = ContentItem::new(ContentKey::new("asha", "c", "b", "k")?, ContentState::default());
    /// let bob = UserId::new("bob")?;
    /// assert!(AdapterError::foreign_item(&bob, &[asha]).is_some());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn foreign_item(asked: &UserId, items: &[ContentItem]) -> Option<AdapterError> {
        items
            .iter()
            .find_map(|item| AdapterError::unless_learner(asked, item.key().user().as_str()))
    }
}

/// A server the core syncs with. Implementations live under `adapters/`.
///
/// ```
/// use async_trait::async_trait;
/// use headway::{
///     Adapter, AdapterError, BatchId, ContentItem, CourseId, EnrolledCourse, ItemOutcome, Outgoing,
///     PushReport, UserId,
/// };
/// /// A server that takes everything.
/// struct Accepting;
/// #[async_trait]
/// impl Adapter for Accepting {
///     async fn push(&self, _user: &UserId, items: &[Outgoing]) -> PushReport {
///         PushReport { requests: 1, ..PushReport::all(items, ItemOutcome::Acknowledged) }
///     }
///     async fn read_states(&self, _: &UserId, _: &CourseId, _: &BatchId) -> Result<Vec<ContentItem>, AdapterError> {
///         Ok(Vec::new())
///     }
///     async fn enrolled_courses(&self, _: &UserId) -> Result<Vec<EnrolledCourse>, AdapterError> {
///         Ok(Vec::new())
///     }
/// }
/// let adapter: std::sync::Arc<dyn Adapter> = std::sync::Arc::new(Accepting);
/// # let _ = adapter;
/// ```
#[async_trait]
pub trait Adapter: Send + Sync {
    /// Sends one learner's states in bulk; returns the outcome of each item by its key (an item
    /// left without one stays pending). A failure of the whole call is reported as
    /// [`ItemOutcome::Retry`] for every item, never lost.
    async fn push(&self, user: &UserId, items: &[Outgoing]) -> PushReport;

    /// Reads the server's content states of one learner in one course batch. Every item
    /// returned belongs to `user`; an answer naming another learner fails with
    /// [`AdapterError::WrongLearner`] (the core also refuses foreign items, issue 17).
    async fn read_states(
        &self,
        user: &UserId,
        course: &CourseId,
        batch: &BatchId,
    ) -> Result<Vec<ContentItem>, AdapterError>;

    /// Reads the learner's enrolled courses; an answer with any entry naming another learner
    /// fails with [`AdapterError::WrongLearner`]. An entry the server lists with an id the core
    /// refuses (see [`CourseId`]) cannot be tracked and is left out of the list, as an entry
    /// without its id would be.
    async fn enrolled_courses(&self, user: &UserId) -> Result<Vec<EnrolledCourse>, AdapterError>;
}
