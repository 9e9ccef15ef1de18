//! The adapter itself: a thin reqwest driver of the sans-IO machines in `protocol`, which plan
//! the bulk `PATCH .../content/state/update` requests, read the answers, refresh the token,
//! retry and bisect. Here: headers, sockets, sleeps, the clock and the progress callback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use headway::{
    Adapter, AdapterError, BatchId, ContentItem, CourseId, EnrolledCourse, Outgoing, PushReport,
    UserId,
};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION};

use crate::config::SunbirdConfig;
use crate::error::{Error, Result};
use crate::protocol::{Answer, Machine, Method, Read, Request, Step, TokenUse, UpdatePush};

/// A learner's access token, sent as `x-authenticated-user-token`. Its `Debug` hides it.
///
/// ```
/// let token = headway_sunbird::UserToken::new("eyJhbGciOi...");
/// assert_eq!(format!("{token:?}"), "UserToken(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UserToken(String);

impl UserToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> UserToken {
        UserToken(token.into())
    }
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserToken(..)")
    }
}

/// Where user tokens come from: the app implements it (its login session). After a 401 or 403
/// the adapter asks for a fresh token once and retries.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// The current token of `user`.
    async fn token(&self, user: &UserId) -> Result<UserToken>;
    /// A new token for `user`, after the server refused the current one.
    async fn refresh(&self, user: &UserId) -> Result<UserToken> {
        self.token(user).await
    }
}

/// A provider that always gives the same token (the CLI's `--user-token`).
///
/// ```
/// use headway_sunbird::{StaticToken, UserToken};
/// let tokens = StaticToken::new(UserToken::new("t1"));
/// # let _ = tokens;
/// ```
#[derive(Clone, Debug)]
pub struct StaticToken(UserToken);

impl StaticToken {
    /// A provider of `token`.
    pub fn new(token: UserToken) -> StaticToken {
        StaticToken(token)
    }
}

#[async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self, _user: &UserId) -> Result<UserToken> {
        Ok(self.0.clone())
    }
}

/// `{base_url}/api/course/v1/`, the base URL's own path kept (a service behind a path prefix).
fn api_url(base_url: &str) -> Result<url::Url> {
    let invalid = |reason: String| Error::InvalidConfig { reason };
    let mut api =
        url::Url::parse(base_url).map_err(|e| invalid(format!("base URL {base_url:?}: {e}")))?;
    api.set_query(None);
    api.set_fragment(None);
    api.path_segments_mut()
        .map_err(|()| invalid(format!("base URL {base_url:?} cannot have a path")))?
        .pop_if_empty()
        .extend(["api", "course", "v1", ""]);
    Ok(api)
}

/// headway's adapter for Sunbird-Lern's course service.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use headway::{Store, SyncOptions, UserId};
/// use headway_sunbird::{StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};
/// let store = Store::open("progress.db")?;
/// let tokens = Arc::new(StaticToken::new(UserToken::new("user-token")));
/// let adapter = SunbirdAdapter::new(SunbirdConfig::new("https://example.org"), tokens)?;
/// let report = store.sync(&UserId::new("learner-1")?, &adapter, &SyncOptions::new()).await?;
/// println!("{} acknowledged", report.acknowledged);
/// # Ok(()) }
/// ```
pub struct SunbirdAdapter {
    http: reqwest::Client,
    config: SunbirdConfig,
    /// `{base URL}/api/course/v1/`: every request's path is joined to it.
    api: url::Url,
    tokens: Arc<dyn TokenProvider>,
    /// The base URL is plain http to another host (decided once, not per request).
    clear_text: bool,
    /// Set once the warning about a token sent in the clear was logged.
    warned_clear_text: AtomicBool,
}

impl std::fmt::Debug for SunbirdAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SunbirdAdapter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SunbirdAdapter {
    /// An adapter for `config`, asking `tokens` for user tokens.
    pub fn new(config: SunbirdConfig, tokens: Arc<dyn TokenProvider>) -> Result<SunbirdAdapter> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(Error::InvalidConfig {
                reason: format!("base URL {:?} is not http(s)", config.base_url),
            });
        }
        let api = api_url(&config.base_url)?;
        // A redirect is never followed: reqwest would carry `x-authenticated-user-token` (a
        // custom header) to whatever host the `Location` names, and an https base URL never
        // falls back to http (issue 17).
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(config.base_url.starts_with("https://"))
            .build()
            .map_err(|e| Error::Client {
                reason: e.to_string(),
            })?;
        Ok(SunbirdAdapter {
            http,
            api,
            tokens,
            clear_text: config.sends_credentials_in_the_clear(),
            warned_clear_text: AtomicBool::new(false),
            config,
        })
    }

    /// Where a redirect answer pointed: `host:port` of its `Location` (resolved against the
    /// request's URL), never its path or query.
    fn redirect_target(response: &reqwest::Response) -> String {
        response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| response.url().join(location).ok())
            .and_then(|url| {
                let host = url.host_str()?.to_string();
                Some(match url.port_or_known_default() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                })
            })
            .unwrap_or_else(|| "an unnamed location".to_string())
    }

    /// Reads the body of `response`, at most [`SunbirdConfig::answer_cap`] bytes: a
    /// `Content-Length` over the cap is refused before reading, and a body that grows past it
    /// is dropped at the cap (the connection closes).
    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>> {
        let limit = self.config.answer_cap();
        let too_large = Error::AnswerTooLarge { limit };
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if (body.len() as u64).saturating_add(chunk.len() as u64) > limit {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// What kind of transport failure `e` was, naming the service's address for a failed
    /// connection; never the URL's path, query or headers.
    fn transport_error(&self, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::TimedOut;
        }
        if e.is_connect() {
            return Error::CannotConnect {
                address: self.config.address(),
            };
        }
        let detail = if e.is_body() || e.is_decode() {
            "the connection closed while reading the answer"
        } else if e.is_request() {
            "the request failed"
        } else {
            "transport error"
        };
        Error::Transport {
            detail: detail.to_string(),
        }
    }

    async fn headers(&self, user: &UserId, token: TokenUse) -> Result<HeaderMap> {
        let asked = async {
            match token {
                TokenUse::Current => self.tokens.token(user).await,
                TokenUse::Refreshed => self.tokens.refresh(user).await,
            }
        };
        let wait = self.config.token_timeout;
        let token = tokio::time::timeout(wait, asked)
            .await
            .map_err(|_| Error::Token {
                user: user.to_string(),
                reason: format!(
                    "the token provider did not answer within {} ms",
                    wait.as_millis()
                ),
            })??;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let invalid = |what: &str| Error::InvalidHeader {
            what: what.to_string(),
        };
        if !token.0.is_empty() {
            if self.clear_text && !self.warned_clear_text.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    server = %self.config.address(),
                    "the user token is sent over plain http to a host other than this device"
                );
            }
            let mut user_token =
                HeaderValue::from_str(&token.0).map_err(|_| invalid("user token"))?;
            user_token.set_sensitive(true);
            headers.insert("x-authenticated-user-token", user_token);
        }
        if let Some(key) = &self.config.api_key {
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", key.0))
                .map_err(|_| invalid("API key"))?;
            bearer.set_sensitive(true);
            headers.insert(AUTHORIZATION, bearer);
        }
        Ok(headers)
    }

    /// Sends one request the machine asked for; no retry here.
    async fn send(&self, user: &UserId, request: Request) -> Answer {
        let headers = match self.headers(user, request.token).await {
            Ok(headers) => headers,
            Err(e) => return Answer::NotSent(e),
        };
        let url = match self.api.join(&request.path) {
            Ok(url) => url,
            Err(e) => {
                return Answer::NotSent(Error::InvalidConfig {
                    reason: format!("request path {:?}: {e}", request.path),
                })
            }
        };
        let builder = match request.method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
            Method::Patch => self.http.patch(url),
        }
        .headers(headers)
        .timeout(request.timeout);
        let builder = match request.body {
            Some(body) => builder.body(body),
            None => builder,
        };
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return Answer::Failed(self.transport_error(&e)),
        };
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            // Not followed, and its body is not read (issue 17).
            return Answer::Failed(Error::Redirected {
                to: Self::redirect_target(&response),
            });
        }
        match self.read_capped(response).await {
            Ok(body) => Answer::Answered { status, body },
            // The server may have applied the update and then dropped the connection: the
            // items stay pending, and resending them is harmless (the server's merge is a max).
            Err(e) => Answer::Failed(e),
        }
    }

    /// Runs `machine` to its end over HTTP: sends what it asks, sleeps its back-offs, and
    /// reports its progress.
    async fn drive<M: Machine + Send>(&self, user: &UserId, mut machine: M) -> M::Output {
        loop {
            let step = machine.poll(Instant::now());
            if let (Some(progress), Some((done, total))) =
                (&self.config.progress, machine.take_progress())
            {
                (progress.0)(done, total);
            }
            match step {
                Step::Send(request) => {
                    let answer = self.send(user, request).await;
                    machine.answer(Instant::now(), answer);
                }
                Step::Wait(pause) => tokio::time::sleep(pause).await,
                Step::Done(output) => return output,
            }
        }
    }
}

#[async_trait]
impl Adapter for SunbirdAdapter {
    async fn push(&self, user: &UserId, items: &[Outgoing]) -> PushReport {
        let push = UpdatePush::new(&self.config, user, items, Instant::now());
        self.drive(user, push).await
    }

    async fn read_states(
        &self,
        user: &UserId,
        course: &CourseId,
        batch: &BatchId,
    ) -> std::result::Result<Vec<ContentItem>, AdapterError> {
        let read = Read::states(&self.config, user, course, batch, Instant::now());
        self.drive(user, read).await
    }

    async fn enrolled_courses(
        &self,
        user: &UserId,
    ) -> std::result::Result<Vec<EnrolledCourse>, AdapterError> {
        let read = Read::enrolled_courses(&self.config, user, Instant::now());
        self.drive(user, read).await
    }
}
