//! headway's adapter for Sunbird-Lern's course service: bulk content-state updates with
//! per-item outcomes, token refresh, bounded retries and bisection of refused chunks; reads of
//! content states and enrolled courses. The reference course service
//! that `headway serve` runs lives in its own crate, `headway-sunbird-server`.

mod client;
mod error;
pub mod wire;

pub use client::{
    ApiKey, PushProgress, StaticToken, SunbirdAdapter, SunbirdConfig, TokenProvider, UserToken,
    WhenUnreachable,
};
pub use error::{Error, Result};
