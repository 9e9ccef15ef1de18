//! headway's adapter for Sunbird-Lern's course service: bulk content-state updates with
//! per-item outcomes, token refresh, bounded retries and bisection of refused chunks; reads of
//! content states and enrolled courses. The client logic is a sans-IO state machine
//! ([`protocol`]) that [`SunbirdAdapter`] drives with reqwest and the simulation drives
//! against the service's own code. The reference course service
//! that `headway serve` runs lives in its own crate, `headway-sunbird-server`.
//!
//! The crate is in layers that only look down: `config` (where the service is, how hard to
//! try), [`wire`] (Sunbird's JSON, one module per format), [`protocol`] (the machines, which
//! end with typed values) and `client` (reqwest drives the machines). `tests/module_graph.rs`
//! checks that no layer imports one above it.

mod client;
mod config;
mod error;
mod player_event;
pub mod protocol;
pub mod wire;

pub use client::{StaticToken, SunbirdAdapter, TokenProvider, UserToken};
pub use config::{ApiKey, PushProgress, SunbirdConfig, WhenUnreachable};
pub use error::{Error, Result};
pub use player_event::{
    player_event, progress_from_summary, CourseContext, Ignored, PlayerEvent, PlayerEventOutcome,
    RecordPlayerEvent,
};
