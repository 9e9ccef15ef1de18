//! The one error type of the Sunbird adapter crate.

/// What can go wrong in the Sunbird adapter outside a push (which reports per item instead).
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
    /// The reference server failed to start or serve.
    #[error("reference server: {reason}")]
    Server {
        /// What went wrong.
        reason: String,
    },
    /// The reference server's store failed.
    #[error("reference server store: {reason}")]
    ServerStore {
        /// What SQLite said.
        reason: String,
    },
}

/// The result type of the Sunbird adapter crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
