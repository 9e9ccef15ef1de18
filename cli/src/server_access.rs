//! How the CLI reaches a course service: the Sunbird adapter built from `--server`,
//! `--api-key` and `--user-token`, and a runtime to await it on.

use std::sync::Arc;

use headway_sunbird::{ApiKey, StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};

use crate::Failure;

/// A Sunbird adapter for `server` with a fixed user token (none: no token header).
pub fn adapter(
    server: &str,
    chunk: usize,
    api_key: Option<String>,
    user_token: Option<String>,
) -> Result<SunbirdAdapter, Failure> {
    let mut config = SunbirdConfig::new(server).chunk(chunk);
    if let Some(key) = api_key {
        config = config.api_key(ApiKey::new(key));
    }
    let token = UserToken::new(user_token.unwrap_or_default());
    SunbirdAdapter::new(config, Arc::new(StaticToken::new(token)))
        .map_err(|e| Failure::Input(e.to_string()))
}

/// A single-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.into()))
}
