//! Where the course service is: [`SunbirdServer`], and the app's [`TokenProvider`] for fresh
//! user tokens after a 401 or 403.

use std::sync::Arc;

use async_trait::async_trait;
use headway_sunbird::{ApiKey, StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};

use crate::app_calls::AppObject;
use crate::error::HeadwayError;

/// Gives the learner's user token to the Sunbird adapter; implemented by the app (its login
/// session). After the server refuses a token (401 or 403), `refresh` is asked once for a new
/// one. Return `None` when there is no token. It is called from headway's own threads.
#[uniffi::export(with_foreign)]
pub trait TokenProvider: Send + Sync {
    /// The current token of `user_id`.
    fn token(&self, user_id: String) -> Option<String>;
    /// A new token for `user_id`, after the server refused the current one.
    fn refresh(&self, user_id: String) -> Option<String>;
}

/// A Sunbird course service: its base URL (scheme, host and port), the app's gateway key, and
/// either a fixed user token or a [`TokenProvider`] (which wins when both are given).
///
/// ```
/// let server = headway_ffi::SunbirdServer {
///     base_url: "http://127.0.0.1:9000".into(), api_key: None, user_token: Some("t".into()),
///     token_provider: None,
/// };
/// # let _ = server;
/// ```
#[derive(Clone, uniffi::Record)]
pub struct SunbirdServer {
    /// Scheme, host and port, e.g. `https://diksha.gov.in`; `/api/course/...` is added.
    pub base_url: String,
    /// The gateway key, sent as `Authorization: Bearer <key>`.
    #[uniffi(default = None)]
    pub api_key: Option<String>,
    /// The learner's token, sent as `x-authenticated-user-token`.
    #[uniffi(default = None)]
    pub user_token: Option<String>,
    /// Where fresh tokens come from; when set, `user_token` is not used.
    #[uniffi(default = None)]
    pub token_provider: Option<Arc<dyn TokenProvider>>,
}

impl std::fmt::Debug for SunbirdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SunbirdServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The app's provider, as the adapter's. A provider that throws gives no token. It is freed
/// through the gate (see `AppObject`): the adapter may be dropped on headway's threads.
struct AppTokens(AppObject<Arc<dyn TokenProvider>>);

impl AppTokens {
    fn ask(
        &self,
        user: &str,
        call: impl FnOnce(&dyn TokenProvider, String) -> Option<String>,
    ) -> headway_sunbird::Result<UserToken> {
        let answer = self.0.call(|provider| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                call(provider.as_ref(), user.into())
            }))
        });
        // `None`: after `shutdown` the app's runtime may be exiting, so it is not called.
        let Some(answer) = answer else {
            return Err(headway_sunbird::Error::Token {
                user: user.to_string(),
                reason: "headway was shut down: the app's token provider is not called".into(),
            });
        };
        match answer {
            Ok(Some(token)) => Ok(UserToken::new(token)),
            Ok(None) => Err(headway_sunbird::Error::Token {
                user: user.to_string(),
                reason: "the app's token provider has no token".into(),
            }),
            Err(_) => Err(headway_sunbird::Error::Token {
                user: user.to_string(),
                reason: "the app's token provider failed".into(),
            }),
        }
    }
}

#[async_trait]
impl headway_sunbird::TokenProvider for AppTokens {
    async fn token(&self, user: &headway::UserId) -> headway_sunbird::Result<UserToken> {
        self.ask(user, |p, u| p.token(u))
    }

    async fn refresh(&self, user: &headway::UserId) -> headway_sunbird::Result<UserToken> {
        self.ask(user, |p, u| p.refresh(u))
    }
}

impl SunbirdServer {
    /// The Sunbird adapter for this server.
    pub(crate) fn adapter(&self) -> Result<SunbirdAdapter, HeadwayError> {
        let mut config = SunbirdConfig::new(self.base_url.clone());
        if let Some(key) = &self.api_key {
            config = config.api_key(ApiKey::new(key.clone()));
        }
        let tokens: Arc<dyn headway_sunbird::TokenProvider> = match &self.token_provider {
            Some(provider) => Arc::new(AppTokens(AppObject::new(provider.clone()))),
            None => Arc::new(StaticToken::new(UserToken::new(
                self.user_token.clone().unwrap_or_default(),
            ))),
        };
        Ok(SunbirdAdapter::new(config, tokens)?)
    }
}
