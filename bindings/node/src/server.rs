//! Where the course service is: [`Server`], a plain object, and the app's token provider,
//! asked per learner on the JavaScript thread.

use std::sync::Arc;

use async_trait::async_trait;
use headway_sunbird::{ApiKey, StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};
use napi::bindgen_prelude::{Either, FnArgs, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

use crate::error::Failure;
use crate::types::milliseconds;

/// The app's `tokenProvider(userId, refreshed)`, callable from headway's threads. Weak: it
/// does not keep the Node process alive.
type TokenFunction = ThreadsafeFunction<
    FnArgs<(String, bool)>,
    Either<String, Promise<String>>,
    FnArgs<(String, bool)>,
    napi::Status,
    false,
    true,
>;

/// A Sunbird course service: its base URL (scheme, host and port), the app's gateway key, and
/// either a fixed user token or a `tokenProvider` (which wins when both are given), asked per
/// learner; `refreshed` is true after the server refused the previous token (401 or 403).
#[napi(object, object_to_js = false)]
pub struct Server {
    /// Scheme, host and port, e.g. `https://diksha.gov.in`; `/api/course/...` is added.
    pub base_url: String,
    /// The gateway key, sent as `Authorization: Bearer <key>`.
    #[napi(ts_type = "string | null")]
    pub api_key: Option<String>,
    /// The learner's token, sent as `x-authenticated-user-token`.
    #[napi(ts_type = "string | null")]
    pub user_token: Option<String>,
    /// Where tokens come from: `(userId, refreshed) => token`, or a Promise of it.
    #[napi(ts_type = "((userId: string, refreshed: boolean) => Promise<string> | string) | null")]
    pub token_provider: Option<TokenFunction>,
    /// How long to wait for the token provider's answer, in whole ms (default 30,000): a
    /// provider that never answers fails the sync (everything stays pending) instead of
    /// hanging it, and the learner's next sync, which waits for it, with it.
    #[napi(ts_type = "number | null")]
    pub token_timeout_ms: Option<f64>,
}

/// The app's provider, as the adapter's. A provider that throws, rejects or gives no string
/// gives no token.
struct AppTokens(Arc<TokenFunction>);

impl AppTokens {
    async fn ask(
        &self,
        user: &headway::UserId,
        refreshed: bool,
    ) -> headway_sunbird::Result<UserToken> {
        let refused = |reason: &str| headway_sunbird::Error::Token {
            user: user.to_string(),
            reason: reason.to_string(),
        };
        let answer = self
            .0
            .call_async_catch(FnArgs::from((user.to_string(), refreshed)))
            .await
            .map_err(|e| refused(&failed("the app's token provider failed", &e)))?;
        // How long it may take is the adapter's (`SunbirdConfig::token_timeout`).
        let token = match answer {
            Either::A(token) => token,
            Either::B(promise) => promise.await.map_err(|e| {
                refused(&failed(
                    "the app's token provider's promise was rejected",
                    &e,
                ))
            })?,
        };
        if token.is_empty() {
            return Err(refused("the app's token provider has no token"));
        }
        Ok(UserToken::new(token))
    }
}

/// `what`, with the app's own error message (its first 200 characters): the app wrote it, so
/// it helps the app's developer; headway never puts a token in it.
fn failed(what: &str, error: &napi::Error) -> String {
    let said: String = error.reason.chars().take(200).collect();
    if said.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {said}")
    }
}

#[async_trait]
impl headway_sunbird::TokenProvider for AppTokens {
    async fn token(&self, user: &headway::UserId) -> headway_sunbird::Result<UserToken> {
        self.ask(user, false).await
    }

    async fn refresh(&self, user: &headway::UserId) -> headway_sunbird::Result<UserToken> {
        self.ask(user, true).await
    }
}

impl Server {
    /// The Sunbird adapter for this server.
    pub(crate) fn adapter(self) -> Result<SunbirdAdapter, Failure> {
        let mut config = SunbirdConfig::new(self.base_url);
        if let Some(ms) = self.token_timeout_ms {
            config = config.token_timeout(milliseconds("tokenTimeoutMs", ms, 1)?);
        }
        if let Some(key) = self.api_key {
            config = config.api_key(ApiKey::new(key));
        }
        let tokens: Arc<dyn headway_sunbird::TokenProvider> = match self.token_provider {
            Some(provider) => Arc::new(AppTokens(Arc::new(provider))),
            None => Arc::new(StaticToken::new(UserToken::new(
                self.user_token.unwrap_or_default(),
            ))),
        };
        Ok(SunbirdAdapter::new(config, tokens)?)
    }
}
