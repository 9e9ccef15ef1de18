//! The one error type of the core crate.

/// Everything that can go wrong in the core crate. Every variant says what was refused or what
/// failed; when an input is refused, nothing was recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A status outside 0..=2 was given; nothing was recorded.
    #[error("status {status} is not one of 0 (not started), 1 (in progress), 2 (completed)")]
    StatusOutOfRange {
        /// The refused value.
        status: i64,
    },
    /// A progress outside 0..=100 was given; nothing was recorded.
    #[error("progress {percent} is outside 0..=100")]
    ProgressOutOfRange {
        /// The refused value.
        percent: i64,
    },
    /// An id (user, course, batch or content) was empty, too long or held a control character.
    #[error("{field} id {value:?} is invalid: {problem}")]
    InvalidId {
        /// Which id: `user`, `course`, `batch` or `content`.
        field: &'static str,
        /// The refused value (cut to 64 characters).
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A timestamp before 2000-01-01 or more than a day in the future was given.
    #[error("timestamp {millis} ms is {problem}")]
    TimestampOutOfRange {
        /// The refused value, in milliseconds since the Unix epoch.
        millis: i64,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A date string could not be parsed.
    #[error("cannot parse {input:?} as a {format} date")]
    InvalidDate {
        /// The refused text (cut to 64 characters).
        input: String,
        /// The expected format.
        format: &'static str,
    },
    /// A content player event could not be read; nothing was recorded.
    #[error("invalid player event: {reason}")]
    InvalidTelemetry {
        /// What is wrong with it.
        reason: String,
    },
    /// A message or file from a peer device was malformed, hostile, or for another learner;
    /// nothing was changed.
    #[error("refused peer message: {reason}")]
    PeerMessage {
        /// What is wrong with it.
        reason: String,
    },
    /// A peer's message would take more memory than this device has left for messages in
    /// flight (its [`MemoryBudget`](crate::MemoryBudget), shared by every connection); the
    /// message was refused and nothing was changed. It may pass once other messages are done.
    #[error("this device has no memory to spare for a message this large right now ({wanted} bytes, budget {budget} bytes); try again")]
    NoMemoryToSpare {
        /// The bytes the message held when it was refused.
        wanted: usize,
        /// The budget, in bytes, shared by every connection.
        budget: usize,
    },
    /// A pairing key file could not be made or read: missing, malformed, of another format,
    /// readable by others, or an existing file it would overwrite.
    #[error("pairing key refused: {reason}")]
    PairingKey {
        /// What is wrong with it.
        reason: String,
    },
    /// A peer or a peer file is not paired with this device: it holds another pairing key or
    /// none, a handshake or a seal did not verify, or it names a learner its key does not
    /// cover; nothing was changed.
    #[error("not paired: {reason}")]
    NotPaired {
        /// Why the peer or the file was refused.
        reason: String,
    },
    /// The store file could not be opened or is not a headway store.
    #[error("cannot open store {path}: {reason}")]
    StoreOpen {
        /// The file that was opened.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The store file is damaged: SQLite reported corruption or a check failed.
    #[error("store is corrupt: {reason}")]
    CorruptStore {
        /// What is damaged.
        reason: String,
    },
    /// The store was written by a newer version of headway; it was left untouched.
    #[error("store schema version {found} is newer than this build supports ({supported})")]
    StoreTooNew {
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Bytes that should hold an Automerge document or change could not be loaded.
    #[error("corrupt document for learner {user:?}: {reason}")]
    CorruptDocument {
        /// The learner whose document it is.
        user: String,
        /// What the loader reported.
        reason: String,
    },
    /// An operation on the Automerge document failed.
    #[error("document operation failed: {reason}")]
    Document {
        /// What Automerge reported.
        reason: String,
    },
    /// SQLite failed for a reason other than corruption (disk full, locked for too long, ...).
    #[error("sqlite failed while {step}: {source}")]
    Sqlite {
        /// What the store was doing.
        step: &'static str,
        /// The error SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// The store's lock was poisoned by a panic in another thread.
    #[error("store lock poisoned by a panic in another thread")]
    Poisoned,
    /// The async runtime shut down before the store's work could start; nothing was written.
    #[error("the async runtime shut down before the store's work started; nothing was written")]
    RuntimeShutDown,
    /// The OS's random source failed, so no new id (a device id, an actor id, a pairing key)
    /// could be made; nothing was written.
    #[error("the OS's random source failed: {reason}")]
    RandomSource {
        /// What the OS reported.
        reason: String,
    },
    /// The server answered for another learner than the one asked for (its token belongs to
    /// someone else, a stale login on a shared device, say); nothing of the answer was stored
    /// (issue 17).
    #[error(
        "the server answered for learner {answered:?}, not {asked:?}: the token belongs to someone else; nothing it answered was merged"
    )]
    WrongLearner {
        /// The learner asked for.
        asked: String,
        /// The learner the answer named.
        answered: String,
    },
    /// The server answered a sync but dropped every item sent without a reason, as Sunbird
    /// does with the items of a token that belongs to another learner: the token is probably
    /// not this learner's. The refresh cached no list and merged nothing; the dropped items
    /// are listed as rejected and sent again by the next sync (issue 17).
    #[error(
        "the server dropped every item sent ({sent}), as it does for another learner's token: the token is probably not this learner's; no list was cached and nothing was merged"
    )]
    EveryItemDropped {
        /// How many items were sent (and dropped).
        sent: usize,
    },
    /// The server refused the credentials (401 or 403) even after a token refresh; nothing
    /// was read, and every pending item stays pending.
    #[error("the server refused the credentials ({status}); every pending item stays pending")]
    CredentialsRefused {
        /// The HTTP status, 401 or 403.
        status: u16,
    },
}

/// The result type of the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the error came from refused input: the caller can fix the input, and nothing
    /// was stored.
    ///
    /// ```
    /// use headway::{Error, Progress};
    /// let err = Progress::new(101).unwrap_err();
    /// assert!(err.is_invalid_input());
    /// ```
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::StatusOutOfRange { .. }
                | Error::ProgressOutOfRange { .. }
                | Error::InvalidId { .. }
                | Error::TimestampOutOfRange { .. }
                | Error::InvalidDate { .. }
                | Error::InvalidTelemetry { .. }
                | Error::PairingKey { .. }
        )
    }

    /// True when the store's file (or a document inside it) is damaged.
    ///
    /// ```
    /// use headway::Error;
    /// let err = Error::CorruptStore { reason: "file is not a database".into() };
    /// assert!(err.is_corruption());
    /// ```
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::CorruptStore { .. } | Error::CorruptDocument { .. }
        )
    }

    /// What kind of failure this is for an app: the one classification every binding shows
    /// (the UniFFI facade's `HeadwayError` variants, the Node package's codes).
    ///
    /// ```
    /// use headway::{Error, ErrorKind, Progress};
    /// assert_eq!(Progress::new(101).unwrap_err().kind(), ErrorKind::InvalidInput);
    /// let err = Error::CorruptStore { reason: "file is not a database".into() };
    /// assert_eq!(err.kind(), ErrorKind::CorruptStore);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        if self.is_invalid_input() {
            return ErrorKind::InvalidInput;
        }
        if self.is_corruption() {
            return ErrorKind::CorruptStore;
        }
        match self {
            Error::PeerMessage { .. } => ErrorKind::RefusedPeerData,
            Error::NotPaired { .. } => ErrorKind::NotPaired,
            Error::StoreOpen { .. } | Error::StoreTooNew { .. } => ErrorKind::StoreUnavailable,
            Error::CredentialsRefused { .. }
            | Error::WrongLearner { .. }
            | Error::EveryItemDropped { .. } => ErrorKind::CredentialsRefused,
            _ => ErrorKind::Storage,
        }
    }

    /// Wraps a SQLite error, turning SQLite's corruption codes into [`Error::CorruptStore`].
    pub(crate) fn sqlite(step: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| {
            // Our own tables hold only values of the declared types: a value of another type,
            // or text that is not UTF-8, can only come from a damaged file.
            if matches!(
                source,
                rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
                    | rusqlite::Error::Utf8Error(..)
            ) {
                return Error::CorruptStore {
                    reason: format!("{source} (while {step})"),
                };
            }
            if let rusqlite::Error::SqliteFailure(e, msg) = &source {
                // A damaged header (schema format number, say) reads as a format SQLite does
                // not know: plain SQLITE_ERROR with this text.
                let unknown_format = msg.as_deref() == Some("unsupported file format");
                if unknown_format
                    || matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                    )
                {
                    let detail = msg.clone().unwrap_or_else(|| e.to_string());
                    return Error::CorruptStore {
                        reason: format!("{detail} (while {step})"),
                    };
                }
            }
            Error::Sqlite { step, source }
        }
    }
}

/// Cuts a refused value for an error message, so a huge input does not make a huge message.
pub(crate) fn shorten(value: &str) -> String {
    const LIMIT: usize = 64;
    match value.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// What kind of failure an error is for an app ([`Error::kind`]); adapters classify theirs the
/// same way (a server that cannot be reached is [`ErrorKind::ServerUnavailable`]).
///
/// ```
/// use headway::ErrorKind;
/// assert_ne!(ErrorKind::ServerUnavailable, ErrorKind::CredentialsRefused);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Refused input; nothing was changed.
    InvalidInput,
    /// The store file (or a document in it) is damaged, or is not a headway store.
    CorruptStore,
    /// The store cannot be opened, or was written by a newer headway.
    StoreUnavailable,
    /// The server could not be reached or kept failing; everything pending stays pending.
    ServerUnavailable,
    /// The server refused the user token, or answered for another learner.
    CredentialsRefused,
    /// A peer's file or message was malformed, hostile or for another learner.
    RefusedPeerData,
    /// A sealed peer file without its pairing key, with another, or changed.
    NotPaired,
    /// SQLite or Automerge failed for another reason.
    Storage,
}
