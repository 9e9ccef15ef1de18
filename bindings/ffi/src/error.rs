//! The facade's one error type: the library's error classes, each carrying its message.

use std::any::Any;

/// Everything a call into headway can fail with. Each variant carries the library's message;
/// when an input is refused, or bytes from a peer are refused, nothing was changed.
///
/// ```
/// use headway_ffi::{HeadwayError, ProgressUpdate, Status, Store};
/// let store = Store::open_in_memory()?;
/// let update = ProgressUpdate {
///     user_id: "learner-1".into(), course_id: "do_course".into(), batch_id: "0130".into(),
///     content_id: "do_video".into(), status: Status::InProgress, progress: 101, consumed_at_ms: None,
/// };
/// assert!(matches!(store.record(update), Err(HeadwayError::InvalidInput { .. })));
/// # Ok::<(), HeadwayError>(())
/// ```
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum HeadwayError {
    /// Refused input (a status, progress, id, time or player event out of bounds); nothing was
    /// recorded.
    #[error("{message}")]
    InvalidInput {
        /// What was refused and why.
        message: String,
    },
    /// The store file is damaged, or is not a headway store; it was left untouched.
    #[error("{message}")]
    CorruptStore {
        /// What is damaged.
        message: String,
    },
    /// The store file could not be opened (a missing directory, no permission), or was
    /// written by a newer headway.
    #[error("{message}")]
    StoreUnavailable {
        /// Why.
        message: String,
    },
    /// The server could not be reached or kept failing; everything pending stays pending.
    #[error("{message}")]
    ServerUnavailable {
        /// The first cause and how many items stay pending.
        message: String,
    },
    /// The server refused the user token (401 or 403, even after a refresh), or answered for
    /// another learner than the one asked for (the token belongs to someone else): a sync or
    /// refresh changed nothing and everything pending stays pending. Not a network failure:
    /// the app should ask the learner to sign in again (issue 17).
    #[error("{message}")]
    CredentialsRefused {
        /// What was refused, never the token.
        message: String,
    },
    /// A file or message from a peer device was malformed, hostile or for another learner;
    /// nothing was changed.
    #[error("{message}")]
    RefusedPeerData {
        /// What is wrong with it.
        message: String,
    },
    /// A peer file is not paired with this device: sealed with another pairing key (or none
    /// given for a sealed file), changed since it was sealed, or for a learner the key does not
    /// cover; nothing was changed. A key file that cannot be read is `InvalidInput`.
    #[error("{message}")]
    NotPaired {
        /// Why the file or the key was refused.
        message: String,
    },
    /// SQLite or Automerge failed for another reason (disk full, locked for too long, ...).
    #[error("{message}")]
    Storage {
        /// What failed.
        message: String,
    },
    /// A bug: headway panicked. The panic was caught at the boundary; report it.
    #[error("{message}")]
    Internal {
        /// The panic's message.
        message: String,
    },
}

impl HeadwayError {
    /// The variant of `kind` (the library's classification), carrying `message`.
    pub(crate) fn of_kind(kind: headway::ErrorKind, message: String) -> HeadwayError {
        match kind {
            headway::ErrorKind::InvalidInput => HeadwayError::InvalidInput { message },
            headway::ErrorKind::CorruptStore => HeadwayError::CorruptStore { message },
            headway::ErrorKind::StoreUnavailable => HeadwayError::StoreUnavailable { message },
            headway::ErrorKind::ServerUnavailable => HeadwayError::ServerUnavailable { message },
            headway::ErrorKind::CredentialsRefused => HeadwayError::CredentialsRefused { message },
            headway::ErrorKind::RefusedPeerData => HeadwayError::RefusedPeerData { message },
            headway::ErrorKind::NotPaired => HeadwayError::NotPaired { message },
            // `Storage`, and any kind a later library adds.
            _ => HeadwayError::Storage { message },
        }
    }
}

impl From<headway::Error> for HeadwayError {
    fn from(error: headway::Error) -> HeadwayError {
        HeadwayError::of_kind(error.kind(), error.to_string())
    }
}

impl From<headway_sunbird::Error> for HeadwayError {
    fn from(error: headway_sunbird::Error) -> HeadwayError {
        HeadwayError::of_kind(error.kind(), error.to_string())
    }
}

impl HeadwayError {
    /// The error a caught panic becomes.
    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> HeadwayError {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        HeadwayError::Internal {
            message: format!("headway panicked: {what}"),
        }
    }
}

/// Runs `call`, turning a panic into [`HeadwayError::Internal`]: no panic crosses the boundary.
pub(crate) fn guard<T>(call: impl FnOnce() -> Result<T, HeadwayError>) -> Result<T, HeadwayError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .unwrap_or_else(|payload| Err(HeadwayError::from_panic(payload)))
}
