//! headway's adapter for Sunbird-Lern's course service: bulk content-state updates with
//! per-item outcomes, token refresh, bounded retries and bisection of refused chunks; reads of
//! content states and enrolled courses. With the `server` feature, also the reference course
//! service that `headway serve` runs for tests, benchmarks and the demo.

mod client;
mod enrollment;
mod error;
mod player_event;
#[cfg(feature = "server")]
mod server;
pub mod wire;

pub use client::{
    ApiKey, PushProgress, StaticToken, SunbirdAdapter, SunbirdConfig, TokenProvider, UserToken,
    WhenUnreachable,
};
pub use error::{Error, Result};
pub use player_event::{
    player_event, progress_from_summary, CourseContext, Ignored, PlayerEvent, PlayerEventOutcome,
    RecordPlayerEvent,
};
#[cfg(feature = "server")]
pub use server::{
    BatchStatus, CourseService, Faults, Lag, ReferenceServer, Reply, Seed, SeedBatch, SeedCourse,
    SeedEnrolment, ServerConfig, Stats, UnknownBatches,
};
