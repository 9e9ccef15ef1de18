//! How the CLI reaches a course service: the Sunbird adapter built from `--server`,
//! `--api-key`, `--user-token`, `--timeout` and `--deadline`, and a runtime to await it on.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use headway_sunbird::{
    ApiKey, PushProgress, StaticToken, SunbirdAdapter, SunbirdConfig, UserToken,
};

use crate::Failure;

/// How long the CLI waits for a course service.
#[derive(Args, Clone, Copy)]
pub struct Bounds {
    /// Seconds one request may take, connecting included.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_seconds)]
    timeout: f64,
    /// Seconds the whole exchange with the server may take; then everything not yet
    /// acknowledged stays pending.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = positive_seconds)]
    deadline: f64,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400 (for example 2.5)"
        )),
    }
}

/// A Sunbird adapter for `server` with a fixed user token (none: no token header).
pub fn adapter(
    server: &str,
    chunk: usize,
    api_key: Option<String>,
    user_token: Option<String>,
    bounds: Bounds,
    progress: Option<PushProgress>,
) -> Result<SunbirdAdapter, Failure> {
    let mut config = SunbirdConfig::new(server)
        .chunk(chunk)
        .timeout(Duration::from_secs_f64(bounds.timeout))
        .deadline(Duration::from_secs_f64(bounds.deadline));
    if let Some(key) = api_key {
        config = config.api_key(ApiKey::new(key));
    }
    if let Some(progress) = progress {
        config = config.on_progress(progress);
    }
    let token = UserToken::new(user_token.unwrap_or_default());
    SunbirdAdapter::new(config, Arc::new(StaticToken::new(token)))
        .map_err(|e| Failure::Input(format!("--server {server:?}: {e}")))
}

/// A single-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.into()))
}
