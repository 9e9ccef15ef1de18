//! The one error type of the Sunbird adapter crate.

/// What can go wrong in the Sunbird adapter. A push reports per item instead; its requests'
/// transport failures reach the client's state machine as these variants.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL or another setting is unusable.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The app's token provider could not give a token.
    #[error("no user token for {user:?}: {reason}")]
    Token {
        /// The learner.
        user: String,
        /// What the provider said.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {reason}")]
    Client {
        /// What reqwest said.
        reason: String,
    },
    /// A token or the API key is not a valid HTTP header value; nothing was sent.
    #[error("the {what} is not a valid header value")]
    InvalidHeader {
        /// `user token` or `API key`.
        what: String,
    },
    /// The course service could not be reached (connection refused, no route, DNS failure).
    #[error("cannot connect to {address}")]
    CannotConnect {
        /// `scheme://host:port` of the service (never a path, query or header).
        address: String,
    },
    /// No answer within the request's timeout.
    #[error("timed out")]
    TimedOut,
    /// The service answered with a redirect (3xx), which is never followed: the user token
    /// travels only to the configured server (issue 17). The request's items stay pending.
    #[error("redirected to {to}, not followed (credentials go only to the configured server)")]
    Redirected {
        /// `host:port` the `Location` header pointed to, or `an unnamed location`.
        to: String,
    },
    /// The answer was larger than [`crate::SunbirdConfig::max_answer_bytes`]; reading stopped
    /// at the cap (issue 17). The request's items stay pending.
    #[error("the answer exceeded {limit} bytes and was not read")]
    AnswerTooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The exchange broke after connecting (the connection closed while reading the answer,
    /// say).
    #[error("{detail}")]
    Transport {
        /// What happened.
        detail: String,
    },
}

impl Error {
    /// What kind of failure this is for an app: a setting that is unusable is refused input;
    /// everything else is a server that could not be reached or answered wrong.
    ///
    /// ```
    /// use headway::ErrorKind;
    /// assert_eq!(headway_sunbird::Error::TimedOut.kind(), ErrorKind::ServerUnavailable);
    /// ```
    pub fn kind(&self) -> headway::ErrorKind {
        match self {
            Error::InvalidConfig { .. } => headway::ErrorKind::InvalidInput,
            _ => headway::ErrorKind::ServerUnavailable,
        }
    }
}

/// The result type of the Sunbird adapter crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
