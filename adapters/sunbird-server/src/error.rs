//! The one error type of the reference course service.

/// What can go wrong starting, seeding or running the reference course service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A seed or another setting is unusable.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
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

/// The result type of the reference course service.
pub type Result<T, E = Error> = std::result::Result<T, E>;
