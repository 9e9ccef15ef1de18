//! The errors JavaScript sees: one code per variant of the UniFFI facade's `HeadwayError`, the
//! library's classes, carried across the boundary in the error's message and turned into a
//! `HeadwayError` (a subclass of `Error` with a `code`) by the package's `index.js`.

use std::any::Any;

/// What failed, as the `code` of a JavaScript `HeadwayError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Refused input: nothing was recorded.
    InvalidInput,
    /// A damaged store or one that is not headway's: left untouched.
    CorruptStore,
    /// The store cannot be opened, was written by a newer headway, or was closed.
    StoreUnavailable,
    /// The server could not be reached or kept failing; everything stays pending.
    ServerUnavailable,
    /// The server refused the user token, or answered for another learner.
    CredentialsRefused,
    /// A peer's file or message was malformed, hostile or for another learner.
    RefusedPeerData,
    /// A sealed peer file without its pairing key, or with another.
    NotPaired,
    /// SQLite or Automerge failed for another reason.
    Storage,
    /// A bug: headway panicked (caught at the boundary).
    Internal,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::InvalidInput => "INVALID_INPUT",
            Code::CorruptStore => "CORRUPT_STORE",
            Code::StoreUnavailable => "STORE_UNAVAILABLE",
            Code::ServerUnavailable => "SERVER_UNAVAILABLE",
            Code::CredentialsRefused => "CREDENTIALS_REFUSED",
            Code::RefusedPeerData => "REFUSED_PEER_DATA",
            Code::NotPaired => "NOT_PAIRED",
            Code::Storage => "STORAGE",
            Code::Internal => "INTERNAL",
        }
    }
}

/// A failure on its way to JavaScript.
#[derive(Debug)]
pub struct Failure {
    code: Code,
    message: String,
}

/// Marks the code at the start of an error's message; `index.js` takes it off again. A byte
/// no message of headway's contains.
const MARK: char = '\u{1}';

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(Code::InvalidInput, message)
    }

    /// The same failure, naming the update of a batch it is about (0-based, as in the array).
    pub(crate) fn at_index(self, at: usize) -> Failure {
        Failure {
            message: format!("update {at}: {}", self.message),
            ..self
        }
    }

    /// The error a caught panic becomes.
    fn from_panic(payload: Box<dyn Any + Send>) -> Failure {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Failure::new(Code::Internal, format!("headway panicked: {what}"))
    }
}

impl From<Failure> for napi::Error {
    fn from(failure: Failure) -> napi::Error {
        let code = failure.code.as_str();
        napi::Error::new(
            napi::Status::GenericFailure,
            format!("{MARK}{code}{MARK}{}", failure.message),
        )
    }
}

impl Code {
    /// The code of `kind` (the library's classification).
    fn of_kind(kind: headway::ErrorKind) -> Code {
        match kind {
            headway::ErrorKind::InvalidInput => Code::InvalidInput,
            headway::ErrorKind::CorruptStore => Code::CorruptStore,
            headway::ErrorKind::StoreUnavailable => Code::StoreUnavailable,
            headway::ErrorKind::ServerUnavailable => Code::ServerUnavailable,
            headway::ErrorKind::CredentialsRefused => Code::CredentialsRefused,
            headway::ErrorKind::RefusedPeerData => Code::RefusedPeerData,
            headway::ErrorKind::NotPaired => Code::NotPaired,
            // `Storage`, and any kind a later library adds.
            _ => Code::Storage,
        }
    }
}

impl Failure {
    /// A failure of the library's `kind`, carrying `message`.
    pub(crate) fn of_kind(kind: headway::ErrorKind, message: String) -> Failure {
        Failure::new(Code::of_kind(kind), message)
    }
}

impl From<headway::Error> for Failure {
    fn from(error: headway::Error) -> Failure {
        Failure::new(Code::of_kind(error.kind()), error.to_string())
    }
}

impl From<headway_sunbird::Error> for Failure {
    fn from(error: headway_sunbird::Error) -> Failure {
        Failure::new(Code::of_kind(error.kind()), error.to_string())
    }
}

/// Runs `call`, turning a failure into a JavaScript error and a panic into `INTERNAL`: no
/// panic crosses the boundary.
pub(crate) fn guard<T>(call: impl FnOnce() -> Result<T, Failure>) -> napi::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .unwrap_or_else(|payload| Err(Failure::from_panic(payload)))
        .map_err(napi::Error::from)
}

/// [`guard`] for a future: a panic while it runs becomes `INTERNAL`.
pub(crate) async fn guard_async<T>(
    work: impl std::future::Future<Output = Result<T, Failure>> + Send + 'static,
) -> napi::Result<T>
where
    T: Send + 'static,
{
    // A spawned task's panic is caught by tokio and handed back as a `JoinError`.
    match tokio::spawn(work).await {
        Ok(result) => result.map_err(napi::Error::from),
        Err(e) if e.is_panic() => Err(Failure::from_panic(e.into_panic()).into()),
        Err(e) => Err(Failure::new(Code::Internal, format!("headway's task stopped: {e}")).into()),
    }
}
